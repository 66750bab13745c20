"""The one registry of probes: which protocol modules a scan runs, and in what order.

``HOST_PROBES``: per-host probes, in the order they start (each module's ``probe(host, ctx)``).
``DISCOVERY_PROBES``: segment-wide discovery (each module's ``discover(ctx)``): ARP, then the multicast
protocols. ``MULTICAST_COVERS``: per-host probes that a multicast round on the host's own segment
already covers (the engine skips them for such hosts).

The modules are imported when a scan asks for them, not with this module: a discovery-only scan never
pays for the HTTP stack.
"""

from __future__ import annotations

from collections.abc import Iterable

from scanner.options import DiscoverFn, ProbeFn

HOST_PROBES = ("http", "rtsp", "onvif", "tls", "banner", "sadp", "dhip", "wsd", "ssdp", "snmp", "dvrip", "mdns")
DISCOVERY_PROBES = ("arp", "wsd", "ssdp", "mdns", "sadp", "dhip")
MULTICAST = tuple(n for n in DISCOVERY_PROBES if n != "arp")  # the discovery protocols that ask a whole segment
MULTICAST_COVERS = {n: n for n in MULTICAST}  # per-host probe -> the multicast round that covers it


def host_probes(names: Iterable[str] | None = None) -> dict[str, ProbeFn]:
    """The per-host probes ``names`` (default: all, in HOST_PROBES order); an unknown name is left out."""
    names = HOST_PROBES if names is None else tuple(names)
    if not set(names) & set(HOST_PROBES):
        return {}  # (a discovery-only scan: nothing to import)
    from scanner.probes import banner, dhip, dvrip, http, mdns, onvif, rtsp, sadp, snmp, ssdp, tls, wsd

    every: dict[str, ProbeFn] = {
        "http": http.probe, "rtsp": rtsp.probe, "onvif": onvif.probe, "tls": tls.probe, "banner": banner.probe,
        "sadp": sadp.probe, "dhip": dhip.probe, "wsd": wsd.probe, "ssdp": ssdp.probe, "snmp": snmp.probe,
        "dvrip": dvrip.probe, "mdns": mdns.probe,
    }
    return {n: every[n] for n in names if n in every}


def discoverers(names: Iterable[str] = DISCOVERY_PROBES) -> dict[str, DiscoverFn]:
    """The discoverers ``names``; the multicast ones are imported only when one of them is asked for."""
    names = list(names)
    every: dict[str, DiscoverFn] = {}
    if "arp" in names:
        from scanner.probes import arp

        every["arp"] = arp.discover
    if any(n in MULTICAST for n in names):
        from scanner.probes import dhip, mdns, sadp, ssdp, wsd

        every.update({"wsd": wsd.discover, "ssdp": ssdp.discover, "mdns": mdns.discover, "sadp": sadp.discover,
                      "dhip": dhip.discover})
    return {n: every[n] for n in names if n in every}
