"""The (field, value) pairs rules are matched against: the record's own dotted fields
(``EvidenceRecord.iter_fields``) plus a few derived from them, all pure and bounded:

- ``http.header_names``: the header names as received (case kept), comma-joined;
- ``http.api``: which vendor API answered (``ISAPI deviceInfo``, ``magicBox getSystemInfo``), and
  ``http.isapi.<tag>`` / ``http.cgi.<key>`` for the fields of those answers (leaf elements and
  key=value lines read with bounded regexes: no XML parser, no entity expansion);
- ``http.path_ok``: a probed path the device answered with 2xx (or with a body, status unknown);
- ``rtsp.path``: the path of a non-OPTIONS request the device answered with 2xx (its URL scheme);
- ``wsd.scope.<key>``: ONVIF scopes split into key and URL-decoded value;
- ``discovery.protocol``: the protocol of each discovery reply that carried fields.
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


def record_fields(rec: EvidenceRecord) -> list[tuple[str, str]]:
    out = list(rec.iter_fields())
    add = out.append
    for h in rec.http:
        if h.headers:
            add(("http.header_names", ",".join(h.headers)[:1024]))
        if h.path and h.path != "/" and ((h.status is not None and 200 <= h.status < 300)
                                         or (h.status is None and h.body)):
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
    for d in rec.discovery:
        if d.fields and d.protocol:
            add(("discovery.protocol", d.protocol))
    return out
