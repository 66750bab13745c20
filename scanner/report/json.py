"""JSON report: the report model as one JSON document, valid against ``schema/report-v1.json``.

Written ASCII-only (``ensure_ascii``), so every control or escape character a device sent is a
``\\u001b``-style escape in the file and the file is safe to ``cat`` to a terminal.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def render_json(model: dict[str, Any]) -> str:
    return json.dumps(model, ensure_ascii=True, indent=2, sort_keys=False) + "\n"


def load_schema() -> dict[str, Any]:
    """The published JSON Schema (draft 2020-12) of the report, version 1."""
    text = resources.files("scanner.report").joinpath("schema/report-v1.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
