"""Target sets stay linear (issue 13, item 7) and IPv6 link-local targets keep their scope (item 13).

The speed itself is measured by bench/targets.py; here: the answers equal a plain reference built the
obvious (quadratic) way, and no spec is asked once per earlier spec.
"""

from __future__ import annotations

import ipaddress
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.errors import TargetError
from scanner.targets import Cover, IntRange, ScopedV6, V4Octets, parse_spec, parse_targets


def reference(specs: list[str], excludes: list[str]) -> list[str]:
    """What the targets mean, computed naively: each spec's addresses, minus exclusions, first occurrence."""
    objs = [parse_spec(s) for s in specs]
    ex = [parse_spec(e) for e in excludes]
    ex = [e.__class__(e.text, e.octets, None) if isinstance(e, V4Octets) else e for e in ex]
    out, seen = [], set()
    for s in objs:
        for ip in s:
            if any(e.contains(ip) for e in ex) or ip in seen:
                continue
            seen.add(ip)
            out.append(str(ip))
    return out


def spec_texts(rng: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        kind = rng.randrange(6)
        c, d = rng.randrange(4), rng.randrange(256)
        if kind == 0:
            out.append(f"198.18.{c}.{d}")
        elif kind == 1:
            out.append(f"198.18.{c}.{d & 0xF0}/{rng.choice((28, 29, 30, 31, 32))}")
        elif kind == 2:
            lo = rng.randrange(250)
            out.append(f"198.18.{c}-{min(3, c + rng.randrange(2))}.{lo}-{lo + rng.randrange(6)}")
        elif kind == 3:
            out.append(f"198.18.{c}.{d},{(d + 7) % 256},{(d + 9) % 256}")
        elif kind == 4:
            out.append(f"198.18.{c}.{d}-198.18.{c}.{min(255, d + rng.randrange(20))}")
        else:
            out.append(f"198.18.*.{d}")
    return out


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 12), st.integers(0, 4))
def test_set_equals_the_naive_reference(seed, n_specs, n_ex):
    rng = random.Random(seed)
    specs = spec_texts(rng, n_specs)
    excludes = [e for e in spec_texts(rng, n_ex) if "," not in e]  # --exclude splits on commas
    want = reference(specs, excludes)
    if not want:
        with pytest.raises(TargetError):
            parse_targets(specs, exclude=excludes)
        return
    ts = parse_targets(specs, exclude=excludes)
    assert list(ts) == want
    assert len(ts) == len(want)
    wanted = set(want)
    for probe in [*want[:50], *(f"198.18.{rng.randrange(5)}.{rng.randrange(256)}" for _ in range(50))]:
        assert (probe in ts) == (probe in wanted), probe


def test_many_single_addresses_ask_no_spec_per_earlier_spec(monkeypatch):
    """4,096 single addresses (and 512 exclusions): no contains() call per pair of specs."""
    calls = [0]
    for cls in (V4Octets, IntRange):
        orig = cls.contains

        def counting(self, ip, _orig=orig):
            calls[0] += 1
            return _orig(self, ip)

        monkeypatch.setattr(cls, "contains", counting)
    specs = [f"198.18.{i // 256}.{i % 256}" for i in range(4096)]
    ts = parse_targets(specs + specs[:100], exclude=specs[::8])
    assert len(ts) == 4096 - 512
    assert sum(1 for _ in ts) == 4096 - 512
    assert "198.18.3.1" in ts and "198.18.0.0" not in ts
    assert calls[0] == 0
    nets = ts.networks()
    assert nets == [ipaddress.ip_network("198.18.0.0/20")]  # joined, not 4,096 /32s


def test_cover_owner_is_the_first_spec():
    specs = [parse_spec("198.18.0.10-20"), parse_spec("198.18.0.0/24"), parse_spec("198.18.*.15")]
    c = Cover(specs)
    assert c.owner(4, int(ipaddress.ip_address("198.18.0.15"))) == 0
    assert c.owner(4, int(ipaddress.ip_address("198.18.0.30"))) == 1
    assert c.owner(4, int(ipaddress.ip_address("198.18.0.0"))) is None  # the block's network address
    assert c.owner(4, int(ipaddress.ip_address("198.18.9.15"))) == 2
    assert c.owner(4, int(ipaddress.ip_address("198.18.0.30")), before=1) is None


def test_link_local_targets_keep_their_scope():
    spec = parse_spec("fe80::1%eth0")
    assert isinstance(spec, ScopedV6)
    ts = parse_targets(["fe80::1%eth0", "fe80::1%eth1", "fe80::1%eth0", "fd00::1"])
    assert list(ts) == ["fe80::1%eth0", "fe80::1%eth1", "fd00::1"]
    assert "fe80::1%eth0" in ts and "fe80::1" not in ts and "fe80::1%eth9" not in ts
    assert list(parse_targets(["fe80::1%eth0", "fe80::2%eth0"], exclude=["fe80::2%eth0"])) == ["fe80::1%eth0"]
    assert list(parse_targets(["fe80::1", "fe80::1%eth0"])) == ["fe80::1", "fe80::1%eth0"]  # two addresses
    with pytest.raises(TargetError):
        parse_spec("fe80::1%a b")
