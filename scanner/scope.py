"""Which packets a scan may send on an attached segment (issue 13, item 1): nmap's contract, that an
address the user did not name, or excluded, gets no packet at all.

* ARP: one request per target address on the segment (exclusions already taken out of the target set),
  never a sweep of the whole network the targets happen to lie in; an octet range such as
  ``10.0.0-3.5`` asks 4 addresses, not 769.
* Multicast questions (WS-Discovery, SSDP, mDNS, SADP, DHIP) reach every device of a segment by nature,
  so they are asked only where the targets cover the attached segment (every host address of it, the
  scanner's own aside), or where the user asked for them (``--multicast``). ``--no-multicast``: never.

Pure functions over a :class:`~scanner.targets.TargetSet`; nothing here sends a packet.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from scanner.targets import TargetSet

PER_ADDRESS_CHECK = 1 << 16  # segments up to this size may be checked address by address (sparse specs)


def segment_addresses(targets: TargetSet, networks: Iterable[ipaddress.IPv4Network], *, everywhere: bool = False,
                      skip: Iterable[str] = ()) -> list[str]:
    """The IPv4 targets (exclusions already out) that lie on ``networks``, in target order; with
    ``everywhere`` every IPv4 target (an interface the user named, with no route of its own)."""
    nets = [(int(n.network_address), int(n.broadcast_address)) for n in networks if n.version == 4]
    skipped = set(skip)
    out: list[str] = []
    for n, text in targets.pairs():
        if ":" in text or text in skipped:
            continue
        if everywhere or any(lo <= n <= hi for lo, hi in nets):
            out.append(text)
    return out


def covers_segment(targets: TargetSet, network: ipaddress.IPv4Network, own: Iterable[str] = ()) -> bool:
    """Whether every host address of ``network`` is a target (not excluded), the scanner's own ``own``
    addresses aside: only then may a multicast question, which every device there hears, be asked
    unprompted."""
    if network.version != 4 or network.prefixlen == 0:
        return False
    first, last = int(network.network_address), int(network.broadcast_address)
    if network.num_addresses > 2:
        first, last = first + 1, last - 1
    own_ints = {int(ipaddress.ip_address(a)) for a in own if ":" not in a}
    own_in = {n for n in own_ints if first <= n <= last}
    want = last - first + 1
    if targets.upper_bound() < want - len(own_in):
        return False  # too few targets to cover it: no need to look further
    cover, ex = targets.cover, targets.exclusion_cover
    sparse = bool(cover.sparse) or bool(ex is not None and ex.sparse)
    if sparse:
        if want > PER_ADDRESS_CHECK:
            return False  # unusual target forms over a huge segment: ask for --multicast
        return all(str(ipaddress.IPv4Address(n)) in targets for n in range(first, last + 1) if n not in own_in)
    covered = 0
    own_covered = 0
    for lo, hi in cover.segments(4):
        a, b = max(lo, first), min(hi, last)
        if a <= b:
            covered += b - a + 1
            own_covered += sum(1 for n in own_in if a <= n <= b)
    if covered + (len(own_in) - own_covered) < want:
        return False
    if ex is not None:
        for lo, hi in ex.segments(4):
            a, b = max(lo, first), min(hi, last)
            if a <= b and any(n not in own_in for n in range(a, min(b, a + len(own_in)) + 1)):
                return False
    return True
