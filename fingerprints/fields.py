"""The (field, value) pairs rules are matched against: the record's own dotted fields
(``EvidenceRecord.iter_fields``) plus a few derived from them, all pure and bounded:

- ``http.header_names``: the header names as received (case kept), comma-joined;
- ``http.api``: which vendor API answered (``ISAPI deviceInfo``, ``magicBox getSystemInfo``), and
  ``http.isapi.<tag>`` / ``http.cgi.<key>`` for the fields of those answers (leaf elements and
  key=value lines read with bounded regexes: no XML parser, no entity expansion);
- ``http.path_ok``: a probed path the device answered with 2xx (or with a body, status unknown), unless
  the web server answers 2xx to anything (a catch-all: a path that cannot exist, such as the scanner's
  canary ``/camsweep-<random>``, answered 2xx, or two different vendor paths answered the same body), in
  which case an answered path proves nothing and ``http.catch_all`` is set instead;
- ``rtsp.path``: the path of a non-OPTIONS request the device answered with 2xx (its URL scheme);
- ``wsd.scope.<key>``: ONVIF scopes split into key and URL-decoded value;
- ``discovery.protocol``: the protocol of each discovery reply that carried fields;
- ``http.api`` also names the non-restricted makers' device-info APIs that answered in their own format
  (scanner/probes/vendorapi.py parses them into discovery replies: VAPIX, SUNAPI, RCP+, LAPI, ...), unless
  the web server is a catch-all.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from scanner.evidence import EvidenceRecord

_XML_LEAF = re.compile(r"<([A-Za-z][\w\-]{0,40})(?:\s[^<>]{0,200})?>([^<>]{1,256})</\1>")
_XMLNS = re.compile(r"<DeviceInfo\b[^>]{0,300}?\bxmlns\s*=\s*\"([^\"]{1,200})\"")
_KV = re.compile(r"^([A-Za-z][\w.\[\]]{0,60})=(.{0,256})$", re.M)
_SCOPE = re.compile(r"^onvif://www\.onvif\.org/([A-Za-z_]+)/(.+)$", re.I)
_RTSP_REQ = re.compile(r"^([A-Z_]{3,20})\s+rtsp://[^/\s]*(/[^\s]*)?", re.I)
_ACTION = re.compile(r"action=(\w+)")
MAX_SCAN = 16384


CANARY_PREFIX = "/camsweep-"

# discovery protocol (scanner/probes/vendorapi.py) -> the ``http.api`` value its answer gives
VENDOR_APIS = {
    "vapix": "VAPIX basicdeviceinfo",
    "vapix_param": "VAPIX param.cgi",
    "sunapi": "SUNAPI deviceinfo",
    "rcp": "RCP+ over CGI",
    "vivotek": "Vivotek getparam",
    "lapi": "LAPI DeviceInfo",
    "ipro": "i-PRO getinfo",
    "mobotix": "MOBOTIX camerainfo",
    "reolink": "Reolink api.cgi",
    "rpc2_magicbox": "Dahua RPC2 magicBox",
    "milesight": "Milesight system.information",
    "tapo": "TP-Link Tapo login",
}


def _answered(h) -> bool:  # type: ignore[no-untyped-def]
    return (h.status is not None and 200 <= h.status < 300) or (h.status is None and bool(h.body))


def is_catch_all(rec: EvidenceRecord) -> bool:
    """True when the device's web server answers 2xx to paths that cannot all exist."""
    bodies: dict[tuple[int | None, str], set[str]] = {}
    for h in rec.http:
        if not h.path or h.path == "/" or not _answered(h):
            continue
        if h.path.startswith(CANARY_PREFIX):
            return True
        if h.body:
            bodies.setdefault((h.port, h.body[:4096]), set()).add(h.path.split("?", 1)[0])
    return any(len(paths) >= 2 for paths in bodies.values())


def record_fields(rec: EvidenceRecord) -> list[tuple[str, str]]:
    out = list(rec.iter_fields())
    add = out.append
    catch_all = is_catch_all(rec) if rec.http else False
    if catch_all:
        add(("http.catch_all", "true"))
    for h in rec.http:
        if h.headers:
            add(("http.header_names", ",".join(h.headers)[:1024]))
        if not catch_all and h.path and h.path != "/" and _answered(h):
            add(("http.path_ok", h.path))  # the path exists: answered 2xx (a 401 may be a catch-all)
        body = h.body
        if not body:
            continue
        ok = h.status is None or 200 <= h.status < 300
        path = h.path or ""
        head = body[:MAX_SCAN]
        if "<DeviceInfo" in head:
            if ok:
                add(("http.api", "ISAPI deviceInfo"))
            m = _XMLNS.search(head)
            if m:
                add(("http.isapi.xmlns", m.group(1)))
            leaves = {}
            for tag, val in _XML_LEAF.findall(head)[:64]:
                val = val.strip()
                if val:
                    leaves.setdefault(tag.lower(), val)
                    add(("http.isapi." + tag.lower(), val))
            if "firmwareversion" in leaves and "firmwarereleaseddate" in leaves:
                add(("http.isapi.firmware", f"{leaves['firmwareversion']} {leaves['firmwarereleaseddate']}"))
        elif "/cgi-bin/" in path or "magicBox" in path:
            pairs = _KV.findall(head.replace("\r\n", "\n"))[:64]
            if pairs:
                if ok and "magicBox" in path:
                    action = _ACTION.search(path)
                    add(("http.api", "magicBox " + (action.group(1) if action else "")))
                for key, val in pairs:
                    val = val.strip()
                    if val:
                        add(("http.cgi." + key.lower(), val))
    for r in rec.rtsp:
        if r.request and r.status is not None and 200 <= r.status < 300:
            m = _RTSP_REQ.match(r.request)
            if m and m.group(1).upper() != "OPTIONS" and m.group(2):
                add(("rtsp.path", m.group(2)[:512]))
    for w in rec.wsd:
        for s in w.scopes:
            m = _SCOPE.match(s)
            if m:
                add(("wsd.scope." + m.group(1).lower(), unquote(m.group(2))[:256]))
    apis: set[str] = set()
    if rec.http and not catch_all:
        for fname, value in _vendor_answers(rec):
            if fname == "http.api":
                apis.add(value)
            add((fname, value))
    for d in rec.discovery:
        if d.fields and d.protocol:
            add(("discovery.protocol", d.protocol))
            label = VENDOR_APIS.get(d.protocol)
            if label and not catch_all and label not in apis:
                apis.add(label)
                add(("http.api", label))
    return out


# Where the makers' device-info endpoints live (scanner/probes/vendorapi.py ENDPOINTS): a record that
# carries such an answer as a raw HTTP entry (written by another tool, by hand, or by an older scanner)
# is read with the probe's own parsers, as if the probe had asked.
_VENDOR_PATH_HINTS = ("/axis-cgi/", "/stw-cgi/", "/rcp.xml", "/cgi-bin/viewer/getparam", "/LAPI/",
                      "/cgi-bin/getinfo", "/control/camerainfo", "/cgi-bin/admin/admin.cgi", "/api.cgi")


def _vendor_answers(rec: EvidenceRecord) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    have = {d.protocol for d in rec.discovery}
    for h in rec.http:
        if not h.body or not h.path or not _answered(h) or not any(p in h.path for p in _VENDOR_PATH_HINTS):
            continue
        from scanner.probes.vendorapi import ENDPOINTS  # only for such records: it imports httpx

        base = h.path.split("?", 1)[0]
        for ep in ENDPOINTS:
            if ep.path.split("?", 1)[0] != base:
                continue
            entry = ep.parse(h.body[:MAX_SCAN])
            proto = entry.get("protocol") if entry else None
            if not entry or not proto or proto in have:
                break
            have.add(proto)
            out.append(("discovery.protocol", proto))
            for k, v in entry.get("fields", {}).items():
                out.append((f"discovery.{proto}.{str(k).lower()}", str(v)))
            label = VENDOR_APIS.get(proto)
            if label:
                out.append(("http.api", label))
            break
    return out
