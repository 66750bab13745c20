"""Entity-safe, size-capped XML reading for the probes (defusedxml underneath).

Devices answer with XML from many namespaces and versions (WS-Discovery 2005/04 and 2009/01, ONVIF,
ISAPI 2.0, UPnP); the probes match elements by local name only. Anything that is not well-formed, too
large, or declares entities yields None: an entity bomb is refused at its declaration, before expansion.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

MAX_XML = 256 * 1024
MAX_ELEMENTS = 5000


def parse_xml(data: bytes | str, max_size: int = MAX_XML) -> Element | None:
    """The root element, or None for anything too big, malformed or carrying entity declarations."""
    if isinstance(data, str):
        data = data.encode("utf-8", errors="replace")
    if not isinstance(data, (bytes, bytearray)) or not data or len(data) > max_size:
        return None
    data = bytes(data).strip().lstrip(b"\xef\xbb\xbf")
    try:
        root = SafeET.fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, SyntaxError, ValueError, RecursionError, MemoryError, TypeError):
        return None
    except Exception:
        return None
    count = 0
    for _ in root.iter():
        count += 1
        if count > MAX_ELEMENTS:
            return None
    return root


def local(tag: Any) -> str:
    """``{ns}Name`` -> ``Name``; ``ns:Name`` -> ``Name``."""
    if not isinstance(tag, str):
        return ""
    if "}" in tag:
        tag = tag.rsplit("}", 1)[1]
    return tag.rsplit(":", 1)[-1]


def iter_local(root: Element, name: str) -> Iterator[Element]:
    for el in root.iter():
        if local(el.tag) == name:
            yield el


def find_local(root: Element, name: str) -> Element | None:
    return next(iter_local(root, name), None)


def text_of(el: Element | None, cap: int = 8192) -> str:
    if el is None:
        return ""
    return "".join(el.itertext()).strip()[:cap]


def find_text(root: Element, name: str, cap: int = 8192) -> str:
    return text_of(find_local(root, name), cap)


def leaf_fields(root: Element, cap_items: int = 64, cap: int = 1024) -> dict[str, str]:
    """Every leaf element's local name -> its text (first occurrence wins): flat device facts."""
    out: dict[str, str] = {}
    for el in root.iter():
        if len(el) == 0:
            name = local(el.tag)
            value = (el.text or "").strip()
            if name and value and name not in out:
                out[name] = value[:cap]
                if len(out) >= cap_items:
                    break
    return out
