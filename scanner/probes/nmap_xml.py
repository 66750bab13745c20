"""Read an nmap ``-oX`` file safely into format-1 evidence records (one per host that is up).

Parsed with defusedxml's iterparse (entity declarations refused), one ``<host>`` at a time, the file
size and host count capped. Per host: IPv4/IPv6 address, MAC (with nmap's vendor name as
``mac_vendor``), host name; per open port:

- the raw replies nmap kept in ``servicefp`` (unrecognised services: exactly the bytes the device sent,
  e.g. a Dahua ``Server: Webs`` header) -> ``http`` / ``rtsp`` entries, or a ``banners`` entry;
- ``http-server-header`` / ``http-title`` / ``http-favicon`` / ``http-auth`` scripts -> an ``http`` entry;
- ``rtsp-methods`` -> an ``rtsp`` entry; ``ssl-cert`` -> a ``tls`` entry; ``banner`` -> ``banners``;
- nmap's own answers, which are its reading and not bytes from the device, go in ``discovery`` entries of
  protocol ``nmap`` (identify fields ``discovery.nmap.<key>``, read by fingerprints/rules/nmap.yaml):
  per port its service match (``service``, ``product``, ``version``, ``extrainfo``, ``devicetype``,
  ``ostype``, ``hostname``, ``cpe``; ``"source": "nmap-service"``), per host its OS detection classes of
  90% accuracy or more (``os_class``, ``os_match``, ``accuracy``, ``os_cpe``; ``"source": "nmap-os"``).
"""

from __future__ import annotations

import os
import re
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from scanner.errors import CamsweepError
from scanner.evidence import normalize_mac
from scanner.probes.http import parse_http_response
from scanner.probes.rtsp import parse_rtsp_response

MAX_NMAP_BYTES = 256 * 1024 * 1024
MAX_HOSTS = 65_536
MAX_PORTS = 256
MAX_FP = 64 * 1024


class NmapXmlError(CamsweepError):
    """An nmap XML file that cannot be read."""


_FP_PROBE = re.compile(r'r\(([A-Za-z0-9_-]{1,40}),([0-9A-Fa-f]{1,6}),"((?:[^"\\]|\\.)*)"\)', re.S)
_ESC = re.compile(r"\\(x[0-9A-Fa-f]{2}|.)", re.S)
_SIMPLE = {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\x00", "a": b"\x07", "f": b"\x0c", "v": b"\x0b"}


def _unescape(s: str) -> bytes:
    out = bytearray()
    pos = 0
    for m in _ESC.finditer(s):
        out += s[pos : m.start()].encode("latin-1", "replace")
        esc = m.group(1)
        if esc[0] == "x" and len(esc) == 3:
            out.append(int(esc[1:], 16))
        else:
            out += _SIMPLE.get(esc, esc.encode("latin-1", "replace"))
        pos = m.end()
    out += s[pos:].encode("latin-1", "replace")
    return bytes(out)


def parse_servicefp(fp: str) -> list[tuple[str, bytes]]:
    """nmap's ``servicefp`` -> [(probe name, the raw reply bytes)]. Never raises."""
    try:
        text = "".join(line[3:] if line.startswith("SF:") else line for line in fp[:MAX_FP].splitlines())
        text = text.replace("SF-Port", "\nSF-Port")
        return [(m.group(1), _unescape(m.group(3))) for m in _FP_PROBE.finditer(text)][:16]
    except Exception:
        return []


def _script_elems(script: Any, key: str) -> dict[str, str]:
    for table in script.iter("table"):
        if table.get("key") == key:
            return {e.get("key", ""): (e.text or "")[:256] for e in table.findall("elem") if e.get("key")}
    return {}


_DN = (("commonName", "CN"), ("organizationName", "O"), ("organizationalUnitName", "OU"),
       ("localityName", "L"), ("stateOrProvinceName", "ST"), ("countryName", "C"))


def _dn(d: dict[str, str]) -> str:
    return ",".join(f"{short}={d[long]}" for long, short in _DN if d.get(long))


def _port_evidence(port: Any, rec: dict[str, Any]) -> None:
    state = port.find("state")
    if state is None or state.get("state") not in ("open", "open|filtered"):
        return
    try:
        portid = int(port.get("portid", "0"))
    except ValueError:
        return
    svc = port.find("service")
    name = (svc.get("name", "") if svc is not None else "") or "tcp"
    tunnel = svc.get("tunnel", "") if svc is not None else ""
    tls = tunnel == "ssl" or name in ("https", "ssl/http")
    scripts = {s.get("id", ""): s for s in port.findall("script")}

    def add(key: str, entry: dict) -> None:
        lst = rec.setdefault(key, [])
        if len(lst) < 64:
            lst.append(entry)

    got_http = got_rtsp = False
    if svc is not None and svc.get("servicefp"):
        for probe, raw in parse_servicefp(svc.get("servicefp", "")):
            if raw.startswith(b"HTTP/") and not got_http:
                e = parse_http_response(raw, port=portid, tls=tls, path="/")
                if e:
                    e["source"] = f"nmap-servicefp:{probe}"
                    add("http", e)
                    got_http = True
            elif raw.startswith(b"RTSP/") and not got_rtsp:
                e = parse_rtsp_response(raw, port=portid, request=f"nmap {probe}")
                if e:
                    e["source"] = f"nmap-servicefp:{probe}"
                    add("rtsp", e)
                    got_rtsp = True
            elif probe == "NULL" and raw:
                from scanner.probes.banner import parse_banner

                b = parse_banner(raw, port=portid, protocol=name if name in ("telnet", "ssh", "ftp", "smtp") else "tcp")
                if b:
                    b["source"] = "nmap-servicefp:NULL"
                    add("banners", b)
    if not got_http and any(k in scripts for k in ("http-server-header", "http-title", "http-favicon", "http-auth")):
        headers: dict[str, str] = {}
        if "http-server-header" in scripts:
            headers["Server"] = (scripts["http-server-header"].get("output") or "").strip()[:1024]
        entry: dict[str, Any] = {"port": portid, "tls": tls, "path": "/", "headers": headers, "source": "nmap-script"}
        if "http-title" in scripts:
            title = next((e.text for e in scripts["http-title"].findall("elem") if e.get("key") == "title"), None)
            title = (title or scripts["http-title"].get("output") or "").strip()[:512]
            if not title.startswith(("Site doesn't have a title", "Did not follow redirect")):
                entry["title"] = title
        if "http-auth" in scripts:
            out = scripts["http-auth"].get("output") or ""
            m = re.search(r"(Digest|Basic)\s+realm=([^\n]+)", out)
            if m:
                headers["WWW-Authenticate"] = f'{m.group(1)} realm="{m.group(2).strip().strip(chr(34))}"'
                entry["status"] = 401
        if "http-favicon" in scripts:
            out = scripts["http-favicon"].get("output") or ""
            m = re.search(r"\b([0-9a-fA-F]{32})\b", out)
            if m:
                entry["favicon_md5"] = m.group(1).lower()
        add("http", {k: v for k, v in entry.items() if v not in ("", {}, None) or k == "tls"})
    if not got_rtsp and "rtsp-methods" in scripts:
        add("rtsp", {"port": portid, "request": "OPTIONS", "headers":
                     {"Public": (scripts["rtsp-methods"].get("output") or "").strip()[:1024]}, "source": "nmap-script"})
    if "ssl-cert" in scripts:
        s = scripts["ssl-cert"]
        subject, issuer = _dn(_script_elems(s, "subject")), _dn(_script_elems(s, "issuer"))
        if not subject:
            out = s.get("output") or ""
            m1, m2 = re.search(r"Subject:\s*([^\n]+)", out), re.search(r"Issuer:\s*([^\n]+)", out)
            subject, issuer = (m1.group(1).strip() if m1 else ""), (m2.group(1).strip() if m2 else "")
        if subject or issuer:
            add("tls", {"port": portid, "subject": subject, "issuer": issuer, "source": "nmap-script"})
    if "banner" in scripts:
        text = (scripts["banner"].get("output") or "").strip()
        if text:
            add("banners", {"protocol": name, "port": portid, "text": text[:4096], "source": "nmap-script"})
    if svc is not None:
        for entry in service_entries(svc, portid):
            add("discovery", entry)


_SERVICE_KEYS = ("product", "version", "extrainfo", "devicetype", "ostype", "hostname", "vendor")
MAX_CPES = 4  # per service or OS class
MAX_OS_MATCHES = 3
MAX_OS_CLASSES = 3  # per OS match
MIN_OS_ACCURACY = 90  # nmap's OS guesses below this are left out


def _cpes(el: Any) -> list[str]:
    out = []
    for c in el.findall("cpe")[:MAX_CPES]:
        text = (c.text or "").strip()[:256]
        if text.startswith("cpe:/") and text not in out:
            out.append(text)
    return out


def service_entries(svc: Any, portid: int) -> list[dict[str, Any]]:
    """nmap's own reading of one port (its service match: product, version, extra info, device type,
    OS type, host name, CPE names) -> ``discovery`` entries of protocol ``nmap`` (identify fields
    ``discovery.nmap.<key>``). The first CPE rides in the main entry, the others in entries of their own.
    A port nmap only named from its port table (no probe matched) gives nothing."""
    fields = {k: (svc.get(k) or "").strip()[:256] for k in _SERVICE_KEYS}
    fields = {k: v for k, v in fields.items() if v}
    cpes = _cpes(svc)
    if not fields and not cpes:
        return []
    name = (svc.get("name") or "").strip()[:64]
    if name:
        fields = {"service": name, **fields}
    out = []
    for i, cpe in enumerate(cpes or [""]):
        f = dict(fields) if i == 0 else {}
        if cpe:
            f["cpe"] = cpe
        out.append({"protocol": "nmap", "port": portid, "source": "nmap-service", "fields": f})
    return out


def _accuracy(el: Any) -> int:
    try:
        return int(el.get("accuracy", "0"))
    except ValueError:
        return 0


def os_entries(os_el: Any) -> list[dict[str, Any]]:
    """nmap's OS detection (``<os><osmatch><osclass>``) -> ``discovery`` entries of protocol ``nmap``:
    per class of at least MIN_OS_ACCURACY (the first class of each vendor: nmap's alternative guesses
    are one observation), ``os_class`` in nmap-os-db's own notation (``vendor | family | generation |
    type``, e.g. ``AXIS | embedded || webcam``), ``os_match`` (the match's name), ``accuracy`` and its
    CPE names as ``os_cpe``."""
    out: list[dict[str, Any]] = []
    vendors: set[str] = set()
    matches = [m for m in os_el.findall("osmatch")[:16] if _accuracy(m) >= MIN_OS_ACCURACY]
    for m in matches[:MAX_OS_MATCHES]:
        name = (m.get("name") or "").strip()[:256]
        classes = m.findall("osclass")[:MAX_OS_CLASSES]
        if not classes and name:
            out.append({"protocol": "nmap", "source": "nmap-os",
                        "fields": {"os_match": name, "accuracy": str(_accuracy(m))}})
        for c in classes:
            vendor, family = (c.get("vendor") or "").strip()[:80], (c.get("osfamily") or "").strip()[:80]
            gen, kind = (c.get("osgen") or "").strip()[:40], (c.get("type") or "").strip()[:80]
            accuracy = min(_accuracy(c) or _accuracy(m), 100)
            if not vendor or vendor.lower() in vendors or accuracy < MIN_OS_ACCURACY:
                continue
            vendors.add(vendor.lower())
            f = {"os_match": name, "os_class": f"{vendor} | {family} |{f' {gen} ' if gen else ''}| {kind}",
                 "accuracy": str(accuracy)}
            cpes = _cpes(c)
            for i, cpe in enumerate(cpes or [""]):
                g = dict(f) if i == 0 else {}
                if cpe:
                    g["os_cpe"] = cpe
                out.append({"protocol": "nmap", "source": "nmap-os", "fields": {k: v for k, v in g.items() if v}})
    return out


def _host_record(host: Any) -> dict | None:
    status = host.find("status")
    if status is not None and status.get("state") not in ("up", None):
        return None
    rec: dict[str, Any] = {}
    for addr in host.findall("address"):
        kind, value = addr.get("addrtype", ""), addr.get("addr", "")
        if kind in ("ipv4", "ipv6") and "ip" not in rec and value:
            rec["ip"] = value[:64]
        elif kind == "mac":
            mac = normalize_mac(value)
            if mac:
                rec["mac"] = mac
                if addr.get("vendor"):
                    rec["mac_vendor"] = addr.get("vendor", "")[:256]
    hn = host.find("hostnames")
    if hn is not None:
        names = [h.get("name", "") for h in hn.findall("hostname") if h.get("name")]
        if names:
            rec["hostname"] = names[0][:256]
    os_el = host.find("os")
    if os_el is not None:
        for entry in os_entries(os_el):
            if len(rec.setdefault("discovery", [])) < 16:
                rec["discovery"].append(entry)
    ports = host.find("ports")
    if ports is not None:
        for port in ports.findall("port")[:MAX_PORTS]:
            _port_evidence(port, rec)
    if not rec.get("ip") and not rec.get("mac"):
        return None
    rec["id"] = f"nmap:{rec.get('ip') or rec.get('mac')}"
    return rec


def read_nmap_xml(path: str, *, max_hosts: int = MAX_HOSTS) -> list[dict]:
    """Records for every host that is up in an nmap XML file. Raises NmapXmlError (clear message)."""
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise NmapXmlError(f"cannot read {path!r}: {exc.strerror or exc}") from None
    if size > MAX_NMAP_BYTES:
        raise NmapXmlError(f"{path!r} is larger than {MAX_NMAP_BYTES // (1024 * 1024)} MiB")
    out: list[dict] = []
    seen_root = False
    try:
        with open(path, "rb") as fh:
            for event, el in iterparse(fh, events=("start", "end"), forbid_dtd=False, forbid_entities=True,
                                       forbid_external=True):
                if event == "start":
                    if not seen_root:
                        if el.tag != "nmaprun":
                            raise NmapXmlError(f"{path!r} is XML but not nmap output (root <{el.tag}>)")
                        seen_root = True
                    continue
                if el.tag == "host":
                    rec = _host_record(el)
                    if rec:
                        out.append(rec)
                    el.clear()
                    if len(out) >= max_hosts:
                        break
    except NmapXmlError:
        raise
    except DefusedXmlException as exc:
        raise NmapXmlError(f"{path!r} was refused: {type(exc).__name__} (entity or DTD tricks)") from None
    except SyntaxError as exc:
        if out:
            return out  # a scan cut short: keep the hosts that were complete
        raise NmapXmlError(f"{path!r} is not well-formed XML ({exc})") from None
    except (OSError, ValueError, RecursionError) as exc:
        raise NmapXmlError(f"cannot read {path!r}: {exc}") from None
    if not seen_root:
        raise NmapXmlError(f"{path!r} is empty")
    return out
