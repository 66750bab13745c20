"""Rapid7 Recog's fingerprints behind camsweep's own matcher.

The Recog XML files shipped in ``fingerprints/third_party/recog/xml`` (BSD 2-clause; the commit is
in ``SOURCE.json`` and the README there) each cover one kind of reply. :data:`SOURCES` says which
camsweep evidence field each file reads and how the field's value is turned into the string Recog's
examples are written against:

======================= ============================================= ==============================
file                    camsweep field(s)                             value given to the patterns
======================= ============================================= ==============================
http_servers.xml        http.headers.server                           as received
http_wwwauth.xml        http.headers.www-authenticate                 the whole header value
                                                                      (``Basic realm="..."``)
html_title.xml          http.title                                    as received
favicons.xml            http.favicon_md5                              lower-case hex
rtsp_servers.xml        rtsp.headers.server                           as received
telnet_banners.xml      banners.telnet                                whitespace trimmed both ends
ssh_banners.xml         banners.ssh                                   the software part of the
                                                                      identification line (after
                                                                      ``SSH-2.0-``)
ftp_banners.xml         banners.ftp                                   first line, without the
                                                                      ``220`` code
sip_banners.xml         banners.sip                                   the ``Server:`` header of a
                                                                      SIP reply, or the text itself
sip_user_agents.xml     banners.sip                                   the ``User-Agent:`` header, or
                                                                      the text itself
snmp_sysdescr.xml       discovery.snmp.sysdescr, banners.snmp         as received
snmp_sysobjid.xml       discovery.snmp.sysobjectid                    the OID without a leading dot
                                                                      (patterns that also expect the
                                                                      sysDescr after it do not match)
x509_subjects.xml       tls.subject                                   RFC 4514 string (``CN=..,O=..``)
x509_issuers.xml        tls.issuer                                    RFC 4514 string
mdns_device-info_txt    mdns.txt.model, mdns.txt.osxvers              ``key=value``, one TXT entry
dhcp_vendor_class.xml   dhcp.vendor_class                             as received
======================= ============================================= ==============================

Recog's semantics are kept: in each file the first fingerprint that matches wins (files are ordered
specific-first); patterns are Ruby regular expressions, compiled with the ``regex`` module in its
re-compatible mode so that every search has a time limit (MATCH_TIMEOUT: a few patterns backtrack
without end on hostile text); as in Ruby, ``^``/``$`` match at line breaks (re.M),
``REG_DOT_NEWLINE``/``REG_MULTILINE`` (and an inline ``(?m)``) make ``.`` match a newline (re.S),
``REG_ICASE`` is re.I, ``\\w``/``\\d``/``\\s`` are ASCII (re.A), ``\\h`` is a hex digit, ``\\z`` is the
end of the string, POSIX bracket classes are spelled out, and an inline ``(?i)`` that is not at the
start applies to the whole pattern (Python refuses it there; the match can only get wider). A
pattern Python still cannot compile is kept in :attr:`RecogFile.uncompiled` with the reason (a test
lists them); it never matches.

Parameters: ``pos="0"`` is a fixed value (``{name}`` in it is replaced by that parameter's value),
``pos="N"`` the N-th capture group. camsweep reads:

- the maker, from ``hw.vendor``; else ``os.vendor`` unless it names an operating-system or software
  vendor whose software runs on others' hardware (Microsoft, Wind River, Linux distributions...:
  ``software_vendors`` in recog_vendors.yaml); else ``service.vendor`` only when it names a device
  maker of camsweep's own registry (``Hikvision-Webs`` is Hikvision's firmware; ``Boa``, ``GoAhead``,
  ``lighttpd`` are generic servers and name nobody). Names resolve through
  ``fingerprints/recog_vendors.yaml`` (Recog name -> vendor id, or a vendor entry of its own, on no
  restriction list), then through the registry's own aliases.
- ``hw.product``/``hw.model`` -> model, ``hw.version`` (or the maker's own ``os.version``) ->
  firmware, ``hw.serial_number`` -> serial, ``host.mac`` -> mac, ``hw.device``/``os.device`` ->
  device_type (mapped to camsweep's vocabulary; other kinds of device are left out).

A maker claim is ``medium`` evidence (``weak`` from an HTML title that is not matched whole, or when
Recog's own certainty for it is below 0.8; none below 0.5). A weak claim alone is not a verdict
(scanner/identify.py): it needs a second, independent clue. A match that names no maker is reported as a ``hint`` (it shows in
the evidence, claims nothing). Each file is parsed and compiled the first time its field is seen.
"""

from __future__ import annotations

import base64
import json
import operator
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from re import _constants as _C  # noqa: PLC2701 - the parse tree's opcodes
from re import _parser as _sre_parse  # noqa: PLC2701 - Python's own reading of a pattern
from typing import TYPE_CHECKING, Any

import regex

from scanner.errors import FingerprintError

if TYPE_CHECKING:
    from fingerprints.db import Database, Rule, RuleMatch

HERE = Path(__file__).parent
RECOG_DIR = HERE / "third_party" / "recog"
VENDORS_PATH = HERE / "recog_vendors.yaml"
MAX_XML = 8 * 1024 * 1024  # bytes of one XML file
MAX_VALUE = 4096
# Recog's patterns are third-party regular expressions over text a device chooses, and a few backtrack
# badly (snmp_sysdescr's Aruba pattern is cubic in a run of spaces: minutes on 4 KiB with re). Every
# search is given this many seconds; a search that runs out is a non-match (counted in RecogFile.timeouts).
MATCH_TIMEOUT = 0.05


# ---------------------------------------------------------------------------------------- adapters
def _as_is(value: str) -> str | None:
    return value


def _strip(value: str) -> str | None:
    return value.strip() or None


def _lower(value: str) -> str | None:
    return value.strip().lower() or None


_SSH_ID = re.compile(r"^SSH-\d+(?:\.\d+)?-")


def _ssh(value: str) -> str | None:
    line = value.strip().split("\n", 1)[0].strip()
    m = _SSH_ID.match(line)
    return (line[m.end():] if m else line) or None


_FTP_CODE = re.compile(r"^220[ -]")


def _ftp(value: str) -> str | None:
    line = value.strip().split("\n", 1)[0].strip()
    return _FTP_CODE.sub("", line, count=1) or None


def _sip_header(name: str) -> Callable[[str], str | None]:
    rx = re.compile(r"^" + name + r"[ \t]*:[ \t]*(.{1,512}?)[ \t]*\r?$", re.I | re.M)

    def adapt(value: str) -> str | None:
        if "\n" not in value.strip():
            return value.strip() or None  # the header value itself (nmap, a User-Agent column)
        m = rx.search(value)
        return m.group(1) if m else None

    return adapt


def _oid(value: str) -> str | None:
    return value.strip().lstrip(".") or None


def _txt(key: str) -> Callable[[str], str | None]:
    def adapt(value: str) -> str | None:
        return f"{key}={value}"

    return adapt


@dataclass(frozen=True)
class Source:
    file: str
    matches: str  # the root element's ``matches=`` (checked on load and on update)
    fields: tuple[tuple[str, Callable[[str], str | None]], ...]
    maker_strength: str = "medium"


SOURCES: tuple[Source, ...] = (
    Source("http_servers.xml", "http_header.server", (("http.headers.server", _as_is),)),
    Source("http_wwwauth.xml", "http_header.wwwauth", (("http.headers.www-authenticate", _as_is),)),
    Source("html_title.xml", "html_title", (("http.title", _as_is),), maker_strength="weak"),
    Source("favicons.xml", "favicon.md5", (("http.favicon_md5", _lower),)),
    Source("rtsp_servers.xml", "rtsp_header.server", (("rtsp.headers.server", _as_is),)),
    Source("telnet_banners.xml", "", (("banners.telnet", _strip),)),
    Source("ssh_banners.xml", "ssh.banner", (("banners.ssh", _ssh),)),
    Source("ftp_banners.xml", "ftp.banner", (("banners.ftp", _ftp),)),
    Source("sip_banners.xml", "sip_header.server", (("banners.sip", _sip_header("Server")),)),
    Source("sip_user_agents.xml", "sip_header.user_agent", (("banners.sip", _sip_header("User-Agent")),)),
    Source("snmp_sysdescr.xml", "snmp.sys_description",
           (("discovery.snmp.sysdescr", _as_is), ("banners.snmp", _as_is))),
    Source("snmp_sysobjid.xml", "snmp.sys_object_id", (("discovery.snmp.sysobjectid", _oid),)),
    Source("x509_subjects.xml", "x509.subject", (("tls.subject", _as_is),)),
    Source("x509_issuers.xml", "x509.issuer", (("tls.issuer", _as_is),)),
    Source("mdns_device-info_txt.xml", "mdns.device-info.txt",
           (("mdns.txt.model", _txt("model")), ("mdns.txt.osxvers", _txt("osxvers")))),
    Source("dhcp_vendor_class.xml", "dhcp_vendor_class", (("dhcp.vendor_class", _as_is),)),
)
SOURCE_BY_FILE = {s.file: s for s in SOURCES}

# Recog's hw.device / os.device -> camsweep's device types (docs/contracts.md); others are left out.
DEVICE_TYPE_MAP = {
    "ip camera": "camera", "web cam": "camera", "camera": "camera", "network camera": "camera",
    "dvr": "dvr", "nvr": "nvr", "cloud network video recorder": "nvr", "video encoder": "encoder",
    "printer": "printer", "multifunction device": "printer",
    "nas": "nas", "storage": "nas", "storage appliance": "nas",
    "router": "router", "broadband router": "router", "wap": "router", "switch": "router", "firewall": "router",
    "vpn": "router", "security appliance": "router", "sd-wan appliance": "router", "dsl modem": "router",
    "adsl modem": "router", "cable modem": "router", "docsis cable modem": "router", "wlan repeater": "router",
    "wireless controller": "router",
    "laptop": "host", "desktop": "host", "thin client": "host",
    "hypervisor": "server", "lights out management": "server",
}


# ---------------------------------------------------------------------------------------- patterns
_POSIX = {"alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
          "space": r"\s", "xdigit": "0-9A-Fa-f", "punct": r"!-/:-@\[-`{-~", "print": r"\x20-\x7e",
          "graph": r"\x21-\x7e", "blank": r" \t", "cntrl": r"\x00-\x1f\x7f", "word": r"\w"}
_REGEX_FLAGS = ((re.I, regex.I), (re.M, regex.M), (re.S, regex.S), (re.X, regex.X), (re.A, regex.A))
_POSIX_RX = re.compile(r"\[:(\w+):\]")
_INLINE_FLAGS = re.compile(r"\(\?([imx]+)\)")


def translate_pattern(pattern: str, flags: str) -> tuple[str, int]:
    """A Recog (Ruby) pattern and its flags attribute -> (Python pattern, re flags)."""
    rx_flags = re.M | re.A
    for flag in (f.strip() for f in (flags or "").split(",") if f.strip()):
        if flag == "REG_ICASE":
            rx_flags |= re.I
        elif flag in ("REG_DOT_NEWLINE", "REG_MULTILINE", "REG_LINE_ANY_CRLF"):
            rx_flags |= re.S
        else:
            raise ValueError(f"unsupported flag {flag}")
    text = _ruby_escapes(pattern) if _RUBY_ESCAPE.search(pattern) else pattern
    if "[:" in text:
        text = _POSIX_RX.sub(lambda m: _POSIX.get(m.group(1), m.group(0)), text)
    if "(?" in text:
        def inline(m: re.Match[str]) -> str:
            nonlocal rx_flags
            for ch in m.group(1):
                rx_flags |= {"i": re.I, "m": re.S, "x": re.X}[ch]  # Ruby's m is Python's s
            return ""

        text = _INLINE_FLAGS.sub(inline, text)
    return text, rx_flags


_RUBY_ESCAPE = re.compile(r"\\[hHzZ]")
_OUTSIDE = {"h": "[0-9a-fA-F]", "H": "[^0-9a-fA-F]", "z": r"\Z", "Z": r"(?=\n?\Z)"}
_INSIDE = {"h": "0-9a-fA-F"}


def _regex_tokens(pattern: str) -> Iterator[tuple[str, bool]]:
    """A regex's pieces with whether each stands inside a character class: an escape pair, a class's
    opening (with a leading ``^`` and a leading ``]``, which is a literal there), or one character."""
    i, n, in_class = 0, len(pattern), False
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            yield pattern[i:i + 2], in_class
            i += 2
        elif c == "[" and not in_class:
            j = i + 1
            for lead in ("^", "]"):
                if j < n and pattern[j] == lead:
                    j += 1
            yield pattern[i:j], False
            in_class, i = True, j
        else:
            yield c, in_class
            if c == "]" and in_class:
                in_class = False
            i += 1


def _ruby_escapes(pattern: str) -> str:
    """Ruby's \\h, \\H, \\z, \\Z in Python's spelling (\\h inside a class too)."""
    out = []
    for tok, in_class in _regex_tokens(pattern):
        if len(tok) == 2 and tok[0] == "\\":
            tok = (_INSIDE if in_class else _OUTSIDE).get(tok[1], tok)
        out.append(tok)
    return "".join(out)


def _top_level_alternation(text: str) -> bool:
    depth = 0
    for tok, in_class in _regex_tokens(text):
        if in_class:
            continue
        if tok == "(":
            depth += 1
        elif tok == ")":
            depth -= 1
        elif tok == "|" and depth == 0:
            return True
    return False


_LITERAL = re.compile(r"(?:\^|\\A)?((?:[^\\.^$*+?{}\[\]()|]|\\[^A-Za-z0-9_])+)")
_UNESCAPE = re.compile(r"\\(.)")
_UNIT = re.compile(r"\\.|.", re.S)


def required_literal(text: str, rx_flags: int) -> str:
    """A string every match must contain (the literal run a translated pattern starts with, after
    ``^`` or ``\\A``), lower-cased when the pattern ignores case; "" when there is none. Matching
    first checks it with ``in``: most patterns of a file are ruled out without running (or even
    compiling) them."""
    if rx_flags & re.X:
        return ""
    m = _LITERAL.match(text)
    if m is None:
        return ""
    raw, end = m.group(1), m.end()
    if end < len(text) and text[end] in "?*{":  # the last character is optional or counted
        raw = "".join(_UNIT.findall(raw)[:-1])
    if len(raw) < 2 or ("|" in text and _top_level_alternation(text)):
        return ""
    lit = _UNESCAPE.sub(r"\1", raw) if "\\" in raw else raw
    if rx_flags & re.I:
        lit = lit.lower()
    return lit if len(lit) >= 2 else ""


_MIN_NEED = 3  # a condition whose shortest literal is shorter than this is not worth checking
_MAX_CONDITIONS = 3  # the most selective conditions kept (all must hold)


def prefilter(text: str, rx_flags: int) -> tuple[tuple[tuple[str, ...], ...], bool]:
    """(conditions every match meets, whether they are compared with the lower-cased value); ((), False)
    when there is none worth checking. A condition is a set of strings of which a match contains at least
    one; a value is tried only when it meets them all (at most _MAX_CONDITIONS, the most selective).

    Read from Python's own parse of the translated pattern, so the pattern's whole literal runs count,
    not only its start: ``^Server: (\\w+) Boa/`` needs "server: " (the longer run). Alternatives that
    each need a literal give a set (``(?:Axis|AXIS) ``). Sound by construction: a run of literal
    characters outside any optional part, inside a repeat of at least one, or a set that every branch of
    an alternative shares; anything else ends a run. When the pattern ignores case anywhere, literals
    are lower-cased (ASCII only: a non-ASCII letter ends the run) and compared with the lower-cased
    value. A pattern Python's parser does not read (syntax of the ``regex`` module only) gets none."""
    try:
        parsed = _sre_parse.parse(text, rx_flags)
    except Exception:  # noqa: BLE001 - Python's parser refuses what the regex module accepts: no condition
        return (), False
    fold = bool(parsed.state.flags & re.I) or _any_icase(parsed.data)
    conds = {tuple(sorted(c)) for c in _need(parsed.data, fold) if _score(c)[0] >= _MIN_NEED}
    if not conds:
        return (), False
    order = sorted(conds, key=lambda c: (_score(frozenset(c)), c), reverse=True)  # the same in every process
    return tuple(order[:_MAX_CONDITIONS]), fold


def _any_icase(items: Any) -> bool:
    for op, av in items:
        if op is _C.SUBPATTERN:
            if av[1] & re.I or _any_icase(av[3]):
                return True
        elif op in (_C.MAX_REPEAT, _C.MIN_REPEAT, _C.POSSESSIVE_REPEAT):
            if _any_icase(av[2]):
                return True
        elif op is _C.BRANCH:
            if any(_any_icase(a) for a in av[1]):
                return True
        elif op in (_C.ASSERT, _C.ASSERT_NOT):
            if _any_icase(av[1]):
                return True
        elif op is _C.ATOMIC_GROUP:
            if _any_icase(av):
                return True
    return False


def _score(cond: frozenset[str]) -> tuple[int, int]:
    return (min(len(x) for x in cond), -len(cond))


def _need(items: Any, icase: bool) -> list[frozenset[str]]:
    """Conditions every match of this sequence meets, each an any-of set of literals it contains."""
    conds: list[frozenset[str]] = []
    run: list[str] = []

    def close() -> None:
        if run:
            pieces = [x for x in "".join(run).split("\x00") if x]
            run.clear()
            if pieces:
                conds.append(frozenset({max(pieces, key=len)}))

    for op, av in items:
        if op is _C.LITERAL:
            ch = chr(av)
            if not icase:
                run.append(ch)
            elif ch.isascii():
                run.append(ch.lower())
            else:  # a non-ASCII letter under ignore-case: left out of every literal
                run.append("\x00")
            continue
        if op is _C.SUBPATTERN and not av[1] and not av[2] and av[3] and all(o is _C.LITERAL for o, _ in av[3]):
            for _, c in av[3]:  # a group of plain characters: the run goes on through it
                ch = chr(c)
                run.append(ch if not icase else ch.lower() if ch.isascii() else "\x00")
            continue
        close()
        if op is _C.SUBPATTERN:
            conds += _need(av[3], icase)
        elif op is _C.ATOMIC_GROUP:
            conds += _need(av, icase)
        elif op in (_C.MAX_REPEAT, _C.MIN_REPEAT, _C.POSSESSIVE_REPEAT):
            if av[0] >= 1:
                conds += _need(av[2], icase)
        elif op is _C.BRANCH:
            alts = [_need(a, icase) for a in av[1]]
            if alts and all(alts):
                conds.append(frozenset().union(*(max(a, key=_score) for a in alts)))
    close()
    return conds


# ---------------------------------------------------------------------------------------- vendors
@dataclass
class VendorMap:
    """Recog vendor names -> camsweep vendor ids (recog_vendors.yaml)."""

    aliases: dict[str, str | None] = field(default_factory=dict)  # normalised Recog name -> id (None: nobody)
    software: frozenset[str] = frozenset()  # normalised names: software/OS vendors, never a device's maker
    own: list[dict[str, Any]] = field(default_factory=list)  # vendor entries of Recog's own names

    @classmethod
    def load(cls, path: Path = VENDORS_PATH) -> VendorMap:
        import yaml

        from fingerprints.db import norm_name

        try:
            with open(path, encoding="utf-8") as f:
                data = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}  # noqa: S506
        except (OSError, yaml.YAMLError) as exc:
            raise FingerprintError(f"{path.name}: cannot load ({exc})") from None
        out = cls()
        for name, vid in (data.get("aliases") or {}).items():
            out.aliases[norm_name(str(name))] = vid
        out.software = frozenset(norm_name(str(x)) for x in data.get("software_vendors") or ())
        for v in data.get("vendors") or ():
            if not v.get("id") or not v.get("name"):
                raise FingerprintError(f"{path.name}: vendor entry without id or name: {v!r}")
            out.own.append(v)
            for name in (v["name"], *(v.get("recog") or ())):
                out.aliases.setdefault(norm_name(str(name)), v["id"])
        return out


# ---------------------------------------------------------------------------------------- fingerprints
@dataclass(slots=True)
class Fingerprint:
    file: str
    index: int  # 1-based position in its file
    line: int | None
    description: str
    pattern: str
    flags: str
    regex: Any  # the compiled pattern; None until compiled, or when the pattern does not compile
    error: str | None  # why the pattern does not compile
    params: tuple[tuple[str, int, str], ...]  # (name, pos, fixed value)
    examples: tuple[tuple[str, dict[str, str]], ...]  # (text, expected params)
    rule: Rule | None = None  # the camsweep rule a match is reported as
    vendor_id: str | None = None  # the maker it names (fixed parameters), or None
    vendor_pos: tuple[tuple[str, int], ...] = ()  # vendor parameters taken from a capture group
    weak: bool = False  # Recog's certainty for the maker is below 0.8
    text: str = ""  # the translated (Python) pattern
    rx_flags: int = 0
    literal: str = ""  # the literal a match starts with (lower case when icase); "" when unknown
    icase: bool = False
    need: tuple[tuple[str, ...], ...] = ()  # conditions every match meets (prefilter; lower case when ``fold``)
    fold: bool = False  # ``need`` is compared with the lower-cased value
    ready: bool = False  # compiled (or found not to compile)

    def compile(self) -> Any:
        """The compiled pattern (the ``regex`` module, in its re-compatible V0 mode, so that a search
        can be given a time limit), or None when it does not compile (``error`` says why)."""
        if not self.ready:
            flags = regex.V0
            for python, theirs in _REGEX_FLAGS:
                if self.rx_flags & python:
                    flags |= theirs
            try:
                self.regex = regex.compile(self.text, flags)
            except (regex.error, re.error, OverflowError, RecursionError, ValueError) as exc:
                self.error = f"{type(exc).__name__}: {exc}"
            self.ready = True
        return self.regex

    def params_for(self, m: Any) -> dict[str, str | None]:
        """Recog's own result for a match: fixed values (interpolated) and capture groups."""
        out: dict[str, str | None] = {}
        later = []
        for name, pos, value in self.params:
            if pos == 0:
                out[name] = value
                if "{" in value:
                    later.append(name)
            else:
                try:
                    out[name] = m.group(pos)
                except (IndexError, re.error, regex.error):
                    out[name] = None
        for name in later:
            text = out[name] or ""
            for ref in re.findall(r"\{([^\s{}]+)\}", text):
                got = out.get(ref)
                if got is None:
                    if name.endswith(".cpe23") and ref.endswith(".version"):
                        got = "-"
                    else:
                        continue
                text = text.replace("{" + ref + "}", got)
            out[name] = text
        return out


def _text_of(elem: Any) -> str:
    return "".join(elem.itertext())


def _parse_xml(path: Path, installed: bool) -> Any:
    """The root element of a Recog file, at most MAX_XML bytes, never expanding an entity.

    Files offered for installation go through defusedxml. The installed files (checked that way when
    they were installed) are read with the C parser after refusing any DTD outright: without a DOCTYPE
    no entity can be declared, so none can be expanded (four times faster: the first record waits less)."""
    from xml.etree.ElementTree import ParseError, XMLParser

    from defusedxml import ElementTree as SafeET
    from defusedxml.common import DefusedXmlException

    try:
        size = path.stat().st_size
        if size > MAX_XML:
            raise FingerprintError(f"{path.name}: {size} bytes, more than the {MAX_XML} a Recog file may have")
        data = path.read_bytes()
        if not installed:
            return SafeET.fromstring(data, forbid_dtd=True)
        if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
            raise FingerprintError(f"{path.name}: declares a DTD or entities, which Recog files never do")
        parser = XMLParser()
        parser.feed(data)
        return parser.close()
    except OSError as exc:
        raise FingerprintError(f"{path.name}: cannot read ({exc.strerror or exc})") from None
    except (DefusedXmlException, ParseError, SafeET.ParseError) as exc:
        raise FingerprintError(f"{path.name}: not a Recog fingerprint file ({exc})") from None


def parse_file(path: Path, source: Source | None = None, compile_now: bool = True,
               installed: bool = False) -> tuple[str, list[Fingerprint]]:
    """One Recog XML file -> (its ``matches=``, its fingerprints), parsed safely (no DTD, no entity
    expansion), at most MAX_XML bytes. Raises FingerprintError with the file's name. With
    ``compile_now`` false each pattern is compiled the first time a value gets past its literal;
    ``installed`` files skip their examples (they were run when the files were installed)."""
    root = _parse_xml(path, installed)
    if root.tag != "fingerprints":
        raise FingerprintError(f"{path.name}: root element is <{root.tag}>, not <fingerprints>")
    matches = root.get("matches") or ""
    fps: list[Fingerprint] = []
    for i, fp in enumerate(root.iter("fingerprint"), 1):
        pattern = fp.get("pattern")
        if not pattern:
            raise FingerprintError(f"{path.name}: fingerprint {i} has no pattern")
        flags = fp.get("flags") or ""
        desc_el = fp.find("description")
        desc = " ".join(_text_of(desc_el).split()) if desc_el is not None else ""
        py_text, rxf, error = "", 0, None
        try:
            py_text, rxf = translate_pattern(pattern, flags)
        except ValueError as exc:
            error = f"{type(exc).__name__}: {exc}"
        params = []
        for p in fp.findall("param"):
            try:
                pos = int(p.get("pos") or 0)
            except ValueError:
                raise FingerprintError(f"{path.name}: fingerprint {i}: bad param pos {p.get('pos')!r}") from None
            params.append((p.get("name") or "", pos, p.get("value") or ""))
        examples = []
        for ex in () if installed else fp.findall("example"):
            attrs = dict(ex.attrib)
            text = _text_of(ex)
            if attrs.pop("_encoding", None) == "base64":
                try:
                    text = base64.b64decode(text).decode("utf-8", "replace")
                except ValueError:
                    raise FingerprintError(f"{path.name}: fingerprint {i}: an example is not base64") from None
            if "_filename" in attrs:  # examples kept in files of their own are not shipped
                continue
            examples.append((text, attrs))
        f = Fingerprint(path.name, i, None, desc, pattern, flags, None, error, tuple(params), tuple(examples),
                        text=py_text, rx_flags=rxf, ready=error is not None)
        if error is None:
            f.literal, f.icase = required_literal(py_text, rxf), bool(rxf & re.I)
            f.need, f.fold = prefilter(py_text, rxf)
            if compile_now:
                f.compile()
        fps.append(f)
    return matches, fps


# ---------------------------------------------------------------------------------------- prepared files
# What parse_file makes of an installed file (translated patterns, literals, prefilter sets, params; no
# examples), kept as JSON beside the XML in prepared/<file>.json with the XML's SHA-256: reading it is
# ~20 times faster than parsing the XML and Python's parse of every pattern again. A prepared file whose
# hash is not the XML's (an XML edited by hand) is ignored and the XML is parsed. update() writes them;
# ``python -c 'from fingerprints import recog; recog.write_prepared()'`` writes them for the shipped files
# (tests/fingerprints/test_recog.py fails while they are stale).
PREPARED_FORMAT = 2


def prepared_path(xml_path: Path) -> Path:
    return xml_path.parent.parent / "prepared" / (xml_path.name.removesuffix(".xml") + ".json")


def build_prepared(path: Path, source: Source | None, data: bytes) -> dict[str, Any]:
    import hashlib

    matches, fps = parse_file(path, source, compile_now=False, installed=True)
    return {"format": PREPARED_FORMAT, "xml_sha256": hashlib.sha256(data).hexdigest(), "matches": matches,
            "fingerprints": [[f.description, f.pattern, f.flags, [list(p) for p in f.params], f.text, f.rx_flags,
                              f.error, f.literal, [list(c) for c in f.need], f.fold] for f in fps]}


def write_prepared(root: Path = RECOG_DIR) -> list[Path]:
    """prepared/<file>.json for every installed file of ``root``'s xml/ (written atomically)."""
    import os
    import tempfile

    out = []
    for source in SOURCES:
        path = root / "xml" / source.file
        if not path.is_file():
            continue
        data = path.read_bytes()
        dest = prepared_path(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(build_prepared(path, source, data), separators=(",", ":"), ensure_ascii=False)
        fd, tmp = tempfile.mkstemp(prefix=".prep-", dir=dest.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text + "\n")
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        out.append(dest)
    return out


def read_prepared(path: Path) -> tuple[str, list[Fingerprint]] | None:
    """(matches, fingerprints) from the prepared file of an installed XML file, or None when there is
    none, it is of another format, or it was made from other XML bytes (then the XML is parsed)."""
    import hashlib

    try:
        prep = prepared_path(path)
        if prep.stat().st_size > MAX_XML:
            return None
        data = json.loads(prep.read_bytes())
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != PREPARED_FORMAT or data.get("xml_sha256") != digest:
        return None
    fps = []
    try:
        for i, (desc, pattern, flags, params, text, rxf, error, literal, need, fold) in \
                enumerate(data["fingerprints"], 1):
            fps.append(Fingerprint(path.name, i, None, desc, pattern, flags, None, error,
                                   tuple((n, int(p), v) for n, p, v in params), (), text=text, rx_flags=int(rxf),
                                   literal=literal, icase=bool(int(rxf) & re.I), need=tuple(tuple(c) for c in need),
                                   fold=bool(fold),
                                   ready=error is not None))
        return str(data["matches"]), fps
    except (KeyError, TypeError, ValueError):
        return None


_INDEX = operator.attrgetter("index")


class RecogFile:
    """One shipped Recog file, parsed on first use, each pattern compiled on first need."""

    def __init__(self, source: Source, path: Path, recog: Recog) -> None:
        self.source = source
        self.path = path
        self.recog = recog
        self._fps: list[Fingerprint] | None = None
        self._lock = threading.Lock()
        # candidates by the first two characters a line starts with (patterns anchored on a literal),
        # case-sensitive and folded; the rest are tried on every value
        self._exact: dict[str, list[Fingerprint]] = {}
        self._folded: dict[str, list[Fingerprint]] = {}
        self._always: list[Fingerprint] = []
        self.timeouts = 0  # searches given up (MATCH_TIMEOUT)

    @property
    def fingerprints(self) -> list[Fingerprint]:
        if self._fps is None:
            with self._lock:
                if self._fps is None:
                    self._load()
        assert self._fps is not None
        return self._fps

    @property
    def uncompiled(self) -> list[Fingerprint]:
        """The fingerprints whose pattern Python cannot compile (compiles every pattern)."""
        return [f for f in self.fingerprints if f.compile() is None]

    def _load(self) -> None:
        got = read_prepared(self.path)
        matches, fps = got if got is not None else \
            parse_file(self.path, self.source, compile_now=False, installed=True)
        if self.source.matches and matches != self.source.matches:
            raise FingerprintError(f"{self.path.name}: matches {matches!r}, camsweep expects "
                                   f"{self.source.matches!r}")
        for fp in fps:  # the camsweep rule of a fingerprint is made when it first matches
            anchored = fp.text.startswith(("^", "\\A")) and len(fp.literal) >= 2
            if anchored:
                (self._folded if fp.icase else self._exact).setdefault(fp.literal[:2], []).append(fp)
            else:
                self._always.append(fp)
        self._fps = fps

    def match(self, value: str) -> tuple[Fingerprint, Any] | None:
        """The first fingerprint of the file that matches (Recog's own order), with its match. A
        fingerprint whose literal is not in the value is passed over without running its pattern."""
        if self._fps is None:
            self.fingerprints  # noqa: B018 - parse now
        low = value.lower()
        heads = {value[:2]}
        if "\n" in value:  # Ruby's ^ matches after every line break
            heads.update(line[:2] for line in value.split("\n")[1:64])
        fps = list(self._always)
        exact, folded = self._exact, self._folded
        for head in heads:
            found = exact.get(head)
            if found:
                fps += found
            found = folded.get(head.lower())
            if found:
                fps += found
        if len(fps) > len(self._always):
            fps.sort(key=_INDEX)
        for fp in fps:
            lit = fp.literal
            if lit and lit not in (low if fp.icase else value):
                continue
            need = fp.need
            if need:
                hay = low if fp.fold else value
                for cond in need:
                    for piece in cond:
                        if piece in hay:
                            break
                    else:
                        break  # a condition no piece of which is in the value
                else:
                    need = ()
                if need:
                    continue
            rx = fp.regex if fp.ready else fp.compile()
            if rx is None:
                continue
            try:
                m = rx.search(value, timeout=MATCH_TIMEOUT)
            except TimeoutError:  # a pattern that backtracks without end on this value: no match
                self.timeouts += 1
                continue
            if m is not None:
                return fp, m
        return None


class Recog:
    """The shipped Recog files, registered in a Database's index (one rule per file and field)."""

    def __init__(self, db: Database, root: Path = RECOG_DIR, vendors_path: Path = VENDORS_PATH) -> None:
        self.db = db
        self.root = root
        self.vendor_map = VendorMap.load(vendors_path)
        self.files: dict[str, RecogFile] = {}
        self.meta = read_meta(root)
        self._resolved: dict[str, str | None] = {}

    # ------------------------------------------------------------------ set-up
    def add_vendors(self) -> None:
        """Recog's own vendor entries become registry vendors (on no list; no banner aliases)."""
        from fingerprints.db import Vendor

        for v in self.vendor_map.own:
            vid = v["id"]
            if vid in self.db.vendors:
                raise FingerprintError(f"{VENDORS_PATH.name}: vendor {vid!r} is already in vendors.yaml")
            self.db.vendors[vid] = Vendor(vid, v["name"], "maker", None, v.get("country"), (), (), vid, None)
        for name, vid in self.vendor_map.aliases.items():
            if vid is not None and vid not in self.db.vendors:
                raise FingerprintError(f"{VENDORS_PATH.name}: {name!r} maps to unknown vendor {vid!r}")

    def register(self) -> None:
        """Put one rule per (file, field) in the database's index; nothing is parsed yet."""
        from fingerprints.db import STRENGTHS, Rule

        xml = self.root / "xml"
        for source in SOURCES:
            path = xml / source.file
            if not path.is_file():
                continue  # a file left out of the package: its fields are simply not read by Recog
            rfile = RecogFile(source, path, self)
            self.files[source.file] = rfile
            stem = source.file.removesuffix(".xml")
            for fname, adapt in source.fields:
                rule = Rule(f"recog/{stem}", "recog", (fname,), None, "hint", STRENGTHS["hint"],
                            cite=f"Recog {self.meta.get('commit', '?')[:12]} xml/{source.file}",
                            source=_FieldMatcher(rfile, adapt, self))
                self.db.index.setdefault(fname, []).append(rule)

    # ------------------------------------------------------------------ vendors
    def resolve(self, name: str | None, how: str) -> str | None:
        """A Recog vendor name -> a camsweep vendor id, or None when it names no device maker.

        how: "hw" (the device's maker), "os" (an OS vendor: a maker unless a software vendor),
        "service" (only a device maker that camsweep's own registry knows)."""
        if not name:
            return None
        key = f"{how}:{name}"
        if key in self._resolved:
            return self._resolved[key]
        from fingerprints.db import norm_name

        n = norm_name(name)
        vid: str | None
        if how != "hw" and n in self.vendor_map.software:
            vid = None
        elif n in self.vendor_map.aliases:
            vid = self.vendor_map.aliases[n]
        else:
            vid = self.db._aliases.get(n)
        if vid is not None and how == "service":
            v = self.db.vendors[vid]
            own = any(o.get("id") == vid for o in self.vendor_map.own)
            if own or v.kind == "component_maker":
                vid = None
        if len(self._resolved) < 4096:
            self._resolved[key] = vid
        return vid

    def fingerprint_vendor(self, params: dict[str, str | None]) -> str | None:
        return (self.resolve(params.get("hw.vendor"), "hw") or self.resolve(params.get("os.vendor"), "os")
                or self.resolve(params.get("service.vendor"), "service"))

    def make_rule(self, source: Source, fp: Fingerprint) -> None:
        """The camsweep rule a fingerprint's matches are reported as (one per fingerprint)."""
        from fingerprints.db import STRENGTHS, Rule

        fixed = {name: value for name, pos, value in fp.params if pos == 0 and "{" not in value}
        positional = tuple((name, pos) for name, pos, _ in fp.params
                           if name in ("hw.vendor", "os.vendor", "service.vendor")
                           and (pos > 0 or "{" in dict((n, v) for n, _, v in fp.params)[name]))
        fp.vendor_pos = positional
        fp.vendor_id = self.fingerprint_vendor(fixed)
        certainty = 1.0
        for key in ("hw.certainty", "os.certainty", "service.certainty"):
            if key in fixed:
                try:
                    certainty = float(fixed[key])
                except ValueError:
                    pass
                break
        strength = source.maker_strength
        if strength == "weak" and fp.pattern.startswith("^") and fp.pattern.rstrip().endswith("$"):
            # a whole title fixed by the device's firmware ("^NETGEAR GS108T$"), not a word in a page
            strength = "medium"
        if certainty < 0.5:
            fp.vendor_id, fp.vendor_pos = None, ()
        elif certainty < 0.8:
            strength = "weak"
        fp.weak = strength == "weak"
        if not fp.vendor_id and not fp.vendor_pos:
            strength = "hint"
        stem = source.file.removesuffix(".xml")
        named = fixed.get("hw.vendor") or fixed.get("os.vendor") or fixed.get("service.vendor") or ""
        what = fixed.get("hw.product") or fixed.get("os.product") or fixed.get("service.product") or fp.description
        note = f"Recog {source.file}: {what}"[:120]
        if named and not fp.vendor_id and not fp.vendor_pos:
            note += f" ({named}: names no device maker)"
        fp.rule = Rule(f"recog/{stem}#{fp.index}", "recog", tuple(f for f, _ in source.fields), None, strength,
                       STRENGTHS[strength], fp.vendor_id, note=note[:160],
                       examples=tuple({"value": t} for t, _ in fp.examples),
                       cite=f"Recog {self.meta.get('commit', '?')[:12]} xml/{source.file} fingerprint {fp.index}")

    # ------------------------------------------------------------------ matching
    def match_value(self, rfile: RecogFile, value: str) -> RuleMatch | None:
        from fingerprints.db import RuleMatch

        found = rfile.match(value[:MAX_VALUE])
        if found is None:
            return None
        fp, m = found
        if fp.rule is None:
            self.make_rule(rfile.source, fp)
        params = fp.params_for(m)
        vid = fp.vendor_id
        if vid is None and fp.vendor_pos:
            vid = self.fingerprint_vendor(params)
        extract: dict[str, str] = {}
        if vid is not None:
            model = params.get("hw.product") or params.get("hw.model")
            if model:
                extract["model"] = model
            fw = params.get("hw.version")
            if not fw and self.resolve(params.get("os.vendor"), "os") == vid:
                fw = params.get("os.version")
            if fw:
                extract["firmware"] = fw
            dt = DEVICE_TYPE_MAP.get((params.get("hw.device") or params.get("os.device") or "").lower())
            if dt:
                extract["device_type"] = dt
        if params.get("hw.serial_number"):
            extract["serial"] = params["hw.serial_number"] or ""
        if params.get("host.mac"):
            extract["mac"] = params["host.mac"] or ""
        rule = fp.rule
        assert rule is not None
        if vid is not None and vid != rule.vendor:  # a vendor from a capture group
            from fingerprints.db import STRENGTHS, Rule

            strength = "weak" if fp.weak else rfile.source.maker_strength
            rule = Rule(rule.id, rule.family, rule.fields, rule.regex, strength, STRENGTHS[strength], vid,
                        note=rule.note, cite=rule.cite)
        return RuleMatch(rule, extract, (vid,) if vid else ())

    # ------------------------------------------------------------------ reporting
    def counts(self) -> dict[str, int]:
        return {name: len(f.fingerprints) for name, f in self.files.items()}


@dataclass(frozen=True, slots=True)
class _FieldMatcher:
    """What a per-(file, field) index rule calls: adapt the field's value, then match the file."""

    rfile: RecogFile
    adapt: Callable[[str], str | None]
    recog: Recog

    def __call__(self, value: str) -> RuleMatch | None:
        v = self.adapt(value)
        if not v:
            return None
        return self.recog.match_value(self.rfile, v)


def read_meta(root: Path = RECOG_DIR) -> dict[str, Any]:
    """SOURCE.json beside the XML: commit, date, where it came from, fingerprints per file."""
    try:
        data = json.loads((root / "SOURCE.json").read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def iter_examples(recog: Recog) -> Iterator[tuple[RecogFile, Fingerprint, str, dict[str, str]]]:
    """Every example of the installed files, with the fingerprint (as loaded for matching) it belongs to.
    The examples are read again from the files (matching never needs them)."""
    for rfile in recog.files.values():
        loaded = rfile.fingerprints
        _, full = parse_file(rfile.path, rfile.source, compile_now=False)
        for fp, with_examples in zip(loaded, full, strict=True):
            for text, attrs in with_examples.examples:
                yield rfile, fp, text, attrs


# ---------------------------------------------------------------------------------------- checking, updating
@dataclass
class FileReport:
    file: str
    fingerprints: int = 0
    examples: int = 0
    uncompiled: list[tuple[int, str, str]] = field(default_factory=list)  # (index, pattern, reason)
    failures: list[str] = field(default_factory=list)


def check_example(fp: Fingerprint, text: str, attrs: dict[str, str]) -> str | None:
    """None when the example matches its fingerprint and yields every parameter it claims (Recog's own
    verify rule); otherwise what is wrong."""
    rx = fp.compile()
    if rx is None:
        return f"pattern does not compile ({fp.error})"
    m = rx.search(text)
    if m is None:
        return f"does not match its example {text[:80]!r}"
    got = fp.params_for(m)
    for key, want in attrs.items():
        if got.get(key) != want:
            return f"example {text[:60]!r}: {key} is {got.get(key)!r}, not {want!r}"
    return None


def check_file(path: Path, source: Source | None) -> FileReport:
    """Parse one file and run its examples (nothing is installed)."""
    report = FileReport(path.name)
    try:
        matches, fps = parse_file(path, source)
    except FingerprintError as exc:
        report.failures.append(str(exc))
        return report
    if source is not None and source.matches and matches != source.matches:
        report.failures.append(f"matches {matches!r}, camsweep expects {source.matches!r}")
    report.fingerprints = len(fps)
    for fp in fps:
        if fp.compile() is None:
            report.uncompiled.append((fp.index, fp.pattern, fp.error or ""))
            continue
        for text, attrs in fp.examples:
            report.examples += 1
            problem = check_example(fp, text, attrs)
            if problem:
                report.failures.append(f"fingerprint {fp.index} ({fp.description[:50]}): {problem}")
    return report


_README_COMMIT = re.compile(r"\b([0-9a-f]{40})\b(?:\s*\((\d{4}-\d{2}-\d{2})\))?")


def detect_version(xml_dir: Path) -> tuple[str | None, str | None]:
    """(commit, date) of a Recog checkout's xml/ directory: from git when it is a checkout, else from a
    README beside or above it that names a 40-hex commit (and a date in parentheses after it)."""
    import subprocess

    for top in (xml_dir, xml_dir.parent):
        if (top / ".git").exists():
            try:
                out = subprocess.run(["git", "-C", str(top), "log", "-1", "--format=%H %cs"], capture_output=True,
                                     text=True, timeout=10, check=False)
            except (OSError, subprocess.SubprocessError):
                break
            parts = out.stdout.split()
            if out.returncode == 0 and len(parts) == 2:
                return parts[0], parts[1]
    for top in (xml_dir, xml_dir.parent):
        for name in ("README.md", "README"):
            try:
                text = (top / name).read_text(encoding="utf-8", errors="replace")[:65536]
            except OSError:
                continue
            m = _README_COMMIT.search(text)
            if m:
                return m.group(1), m.group(2)
    return None, None


def update(xml_dir: Path, dest: Path = RECOG_DIR, commit: str | None = None, date: str | None = None,
           origin: str = "rapid7/recog") -> tuple[dict[str, Any], list[FileReport]]:
    """Refresh the shipped files from a Recog checkout's xml/ directory: every file camsweep uses must
    be there, parse, and pass its examples; only then are they replaced (all at once). Returns the new
    SOURCE.json content and the per-file reports. Raises FingerprintError, naming every problem."""
    import os
    import shutil
    import tempfile

    if not xml_dir.is_dir():
        raise FingerprintError(f"{xml_dir}: not a directory (give a Recog checkout's xml/ directory)")
    reports = []
    problems = []
    for source in SOURCES:
        path = xml_dir / source.file
        if not path.is_file():
            problems.append(f"{source.file}: missing")
            continue
        rep = check_file(path, source)
        reports.append(rep)
        problems += [f"{source.file}: {p}" for p in rep.failures]
    if problems:
        raise FingerprintError("not updated; the Recog files do not check:\n  " + "\n  ".join(problems[:40])
                               + (f"\n  ... and {len(problems) - 40} more" if len(problems) > 40 else ""))
    found_commit, found_date = detect_version(xml_dir)
    meta = {"project": origin, "commit": commit or found_commit or "unknown", "date": date or found_date or "unknown",
            "files": [s.file for s in SOURCES],
            "fingerprints": {r.file: r.fingerprints for r in reports},
            "examples": sum(r.examples for r in reports),
            "uncompiled": sum(len(r.uncompiled) for r in reports)}
    dest.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".xml-new-", dir=dest))
    try:
        tmp.chmod(0o755)
        for source in SOURCES:
            shutil.copyfile(xml_dir / source.file, tmp / source.file)
            (tmp / source.file).chmod(0o644)
        for name in ("LICENSE", "COPYING"):
            for top in (xml_dir, xml_dir.parent):
                if (top / name).is_file():
                    (dest / name).unlink(missing_ok=True)
                    shutil.copyfile(top / name, dest / name)
                    (dest / name).chmod(0o644)
                    break
        old = dest / "xml"
        if old.exists():
            trash = dest / ".xml-old"
            shutil.rmtree(trash, ignore_errors=True)
            os.replace(old, trash)
            os.replace(tmp, old)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, old)
        (dest / "SOURCE.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        write_prepared(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return meta, reports

