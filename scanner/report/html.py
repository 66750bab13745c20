"""HTML report: one self-contained page (no script, no network at view time) that prints well.

The page carries a strict Content-Security-Policy (``default-src 'none'; style-src 'unsafe-inline';
img-src data:``), so even a mistake in escaping could not load or run anything. Charts are inline SVG
drawn here. Every value that came from a device or a user goes through :func:`html_text`, which
escapes markup and shows control characters as visible escapes.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

from scanner.report.escape import html_attr, html_text

MAX_CHAIN_ROWS = 12
_STRENGTH_ORDER = {"proof": 0, "strong": 1, "medium": 2, "weak": 3, "hint": 4}

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

RED, AMBER, GREEN, GREY, BLUE = "#c62828", "#ef8f00", "#2e7d32", "#9e9e9e", "#1565c0"

_CSS = """
:root { --red: #c62828; --amber: #ef8f00; --green: #2e7d32; --grey: #6b7280; --line: #d9dde3; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #1f2328; margin: 0; padding: 24px 32px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 15px; margin: 0 0 6px; }
.sub { color: var(--grey); margin: 0 0 16px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
table.lists { margin-top: 12px; width: auto; min-width: 60%; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 16px; min-width: 140px; }
.card .n { font-size: 28px; font-weight: 700; line-height: 1.1; }
.card .l { color: var(--grey); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card.red { border-color: var(--red); } .card.red .n { color: var(--red); }
.card.amber { border-color: var(--amber); } .card.amber .n { color: #b45309; }
.card.green .n { color: var(--green); }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
.chart { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.chart h3 { font-size: 13px; color: #374151; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; }
th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #f3f4f6; font-weight: 600; }
thead { display: table-header-group; }
tr { page-break-inside: avoid; break-inside: avoid; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.nw { white-space: nowrap; }
.mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12px; }
.val { overflow-wrap: anywhere; }
.tag { display: inline-block; padding: 0 6px; border-radius: 4px; font-size: 11.5px; font-weight: 600;
       white-space: nowrap; }
.tag.r { background: #fde8e8; color: var(--red); } .tag.ok { background: #e6f4ea; color: var(--green); }
.tag.u { background: #eef0f3; color: #4b5563; } .tag.rl { background: #fff3e0; color: #b45309; }
.ctl { color: #fff; background: #7c3aed; border-radius: 3px; padding: 0 2px; font-family: ui-monospace,
       "DejaVu Sans Mono", monospace; font-size: 11px; }
.chain { border: 1px solid var(--line); border-left: 4px solid var(--red); border-radius: 6px;
         padding: 8px 12px; margin: 10px 0; break-inside: avoid; page-break-inside: avoid; }
.chain.relabel-only { border-left-color: var(--amber); }
.chain p { margin: 2px 0 6px; color: #374151; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dl.meta dt { color: var(--grey); } dl.meta dd { margin: 0; }
.muted { color: var(--grey); }
.totals td { font-weight: 700; border-top: 2px solid #9ca3af; }
.basis { border: 1px solid var(--line); border-left: 4px solid var(--red); border-radius: 6px; padding: 8px 12px;
         margin: 12px 0; }
.basis.policy { border-left-color: var(--amber); } .basis.due_diligence { border-left-color: #7c3aed; }
td.small { font-size: 11.5px; }
footer { margin-top: 32px; color: var(--grey); font-size: 12px; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { padding: 0; font-size: 11px; }
  h2 { break-after: avoid; page-break-after: avoid; }
  .charts, .cards, .chart { break-inside: avoid; page-break-inside: avoid; }
  table { font-size: 9.5px; }
  th, td { padding: 2px 4px; overflow-wrap: anywhere; }
  td.nw, td.num { white-space: nowrap; overflow-wrap: normal; }
  .mono, .ctl { font-size: 9px; }
  .tag { font-size: 8px; padding: 0 3px; }
  .card { padding: 6px 10px; min-width: 110px; } .card .n { font-size: 20px; }
  .chart svg { max-width: 100%; height: auto; }
  a { color: inherit; text-decoration: none; }
}
"""


def _t(value: Any) -> str:
    """Escaped device or user text; an em dash for nothing."""
    if value is None or value == "":
        return '<span class="muted">—</span>'
    return html_text(value)


def _restricted_tag(value: bool | None) -> str:
    if value is True:
        return '<span class="tag r">restricted</span>'
    if value is False:
        return '<span class="tag ok">not restricted</span>'
    return '<span class="tag u">unknown</span>'


def _n(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _money(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f}"


def _truncate(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


# ---------------------------------------------------------------------------------------------- charts

def build_bar_chart(title: str, rows: list[tuple[str, list[tuple[int, str]]]], *, width: int = 520,
                    legend: Iterable[tuple[str, str]] = ()) -> str:
    """A horizontal (stacked) bar chart as inline SVG.

    ``rows``: (label, [(value, colour), ...]); the label is escaped here.
    """
    rows = rows[:12]
    label_w, bar_h, gap, top = 170, 18, 8, 6
    legend = list(legend)
    legend_h = 22 if legend else 0
    height = top + len(rows) * (bar_h + gap) + legend_h + 4
    total_max = max((sum(v for v, _ in segs) for _, segs in rows), default=0) or 1
    plot_w = width - label_w - 50
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{max(height, 40)}" '
             f'viewBox="0 0 {width} {max(height, 40)}" role="img" aria-label="{html_attr(title)}">']
    if not rows:
        parts.append('<text x="0" y="24" font-size="13" fill="#6b7280">nothing to show</text>')
    for i, (label, segs) in enumerate(rows):
        y = top + i * (bar_h + gap)
        parts.append(f'<text x="{label_w - 8}" y="{y + bar_h - 5}" font-size="12" text-anchor="end" '
                     f'fill="#1f2328">{html_text(_truncate(label, 26))}</text>')
        x = float(label_w)
        total = 0
        for value, colour in segs:
            if value <= 0:
                continue
            w = value / total_max * plot_w
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{max(w, 1.5):.1f}" height="{bar_h}" rx="2" '
                         f'fill="{colour}"/>')
            x += w
            total += value
        parts.append(f'<text x="{x + 6:.1f}" y="{y + bar_h - 5}" font-size="12" fill="#374151">{total}</text>')
    if legend:
        y = top + len(rows) * (bar_h + gap) + 6
        x = label_w
        for name, colour in legend:
            parts.append(f'<rect x="{x}" y="{y}" width="12" height="12" rx="2" fill="{colour}"/>')
            parts.append(f'<text x="{x + 16}" y="{y + 11}" font-size="12" fill="#374151">{html_text(name)}</text>')
            x += 24 + 7 * len(name)
    parts.append("</svg>")
    return "".join(parts)


def build_donut_chart(title: str, slices: list[tuple[str, int, str]], *, size: int = 180) -> str:
    """A donut chart as inline SVG (stroke-dasharray arcs), with a legend to its right."""
    total = sum(v for _, v, _ in slices)
    r, stroke = 60, 26
    cx = cy = size / 2
    width = size + 190
    # pathLength makes the dash units the values themselves, so the arcs close exactly
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{size}" viewBox="0 0 {width} {size}" '
             f'role="img" aria-label="{html_attr(title)}">',
             f'<circle cx="{cx}" cy="{cy}" r="{r}" fill="none" stroke="#eef0f3" stroke-width="{stroke}"/>']
    offset = 0
    for _, value, colour in slices:
        if total <= 0 or value <= 0:
            continue
        parts.append(f'<circle cx="{cx}" cy="{cy}" r="{r}" fill="none" stroke="{colour}" stroke-width="{stroke}" '
                     f'pathLength="{total}" stroke-dasharray="{value} {total - value}" '
                     f'stroke-dashoffset="{-offset}" transform="rotate(-90 {cx} {cy})"/>')
        offset += value
    parts.append(f'<text x="{cx}" y="{cy + 2}" font-size="26" font-weight="700" text-anchor="middle" '
                 f'fill="#1f2328">{total}</text>')
    parts.append(f'<text x="{cx}" y="{cy + 20}" font-size="11" text-anchor="middle" fill="#6b7280">devices</text>')
    for i, (name, value, colour) in enumerate(slices):
        y = 40 + i * 24
        parts.append(f'<rect x="{size + 10}" y="{y}" width="14" height="14" rx="2" fill="{colour}"/>')
        parts.append(f'<text x="{size + 30}" y="{y + 12}" font-size="13" fill="#1f2328">{html_text(name)}: '
                     f'{value}</text>')
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------------------------------------- sections

def _review_tag(review: dict[str, str] | None) -> str:
    if not review:
        return ""
    return (f' <span class="tag rl" title="{html_attr(review.get("reason") or "", 512)}">needs review: '
            f'{html_text(review.get("maker") or "?", 60)}?</span>')


def _exploited_tag(hints: list[dict[str, Any]] | None) -> str:
    """The known-exploited firmware hint of a device (fingerprints/exploited.yaml decided it)."""
    if not hints:
        return ""
    cves = ", ".join(str(h.get("cve") or "") for h in hints)
    why = "; ".join(f'{h.get("cve")}: {h.get("title") or ""} (firmware in the range of {h.get("series") or "?"})'
                    for h in hints)
    return (f' <span class="tag r" title="{html_attr(why, 1024)}">known-exploited firmware: '
            f'{html_text(cves, 120)}</span>')


def _summary(model: dict[str, Any]) -> str:
    s = model["summary"]
    totals = model["plan"]["totals"]
    cards = [
        ("", s["devices"], "devices"),
        ("red", s["restricted"], "restricted"),
        ("amber", s.get("needs_review", 0), "needs review"),
        ("amber", s["relabels"], "relabels unmasked"),
        ("", s["unknown"], "maker unknown"),
        ("green", s["not_restricted"], "not restricted"),
    ]
    if s.get("component_risk"):
        cards.append(("amber", s["component_risk"], "component risk"))
    if s.get("exploited"):
        cards.append(("red", s["exploited"], "known-exploited firmware"))
    out = ['<section id="summary"><h2>Summary</h2><div class="cards">']
    for cls, n, label in cards:
        out.append(f'<div class="card {cls}"><div class="n">{n}</div><div class="l">{label}</div></div>')
    if totals["devices"]:
        cur = html_text(model["plan"].get("currency") or "")
        out.append(f'<div class="card"><div class="n">{cur} {_money(totals["cost_total"])}</div>'
                   f'<div class="l">plan estimate ({_n(totals["counted_devices"], "device")})</div></div>')
    out.append("</div>")
    # the sentence a manager reads
    restricted_makers = [m for m in s["by_maker"] if m["restricted"]]
    if s["restricted"]:
        makers = ", ".join(f'{html_text(m["maker"])} ({m["restricted"]})' for m in restricted_makers)
        owned = sum(1 for d in model["devices"] if d["restricted"] is True and d.get("flags")
                    and all(f.get("via") != "made_by" for f in d["flags"]))
        if owned:
            out.append(f'<p>{s["restricted"]} of {_n(s["devices"], "device")} are restricted under the policy; by real '
                       f'maker: {makers}. {owned} of them through who owns their brand or maker, not who made them.')
        else:
            out.append(f'<p>{s["restricted"]} of {_n(s["devices"], "device")} are made by restricted makers: {makers}.')
        if s["relabels"]:
            out.append(f' Relabels unmasked (sold under another brand\'s name): {s["relabels"]}.')
        out.append("</p>")
    else:
        out.append(f'<p>No device of the {s["devices"]} found is made by a maker the policy restricts.</p>')
    if s.get("needs_review"):
        out.append(f'<p>{_n(s["needs_review"], "device")} need review: the evidence points at a restricted maker '
                   "without establishing it (listed under “Needs review”).</p>")
    if s.get("exploited"):
        out.append(f'<p>{_n(s["exploited"], "device")} run firmware in a range affected by a vulnerability CISA '
                   "lists as exploited (Known Exploited Vulnerabilities catalogue): update or isolate them first "
                   "(listed under “Known-exploited firmware”).</p>")
    if s["unknown"]:
        out.append(f'<p class="muted">{_n(s["unknown"], "device")} could not be attributed to a maker from the '
                   "evidence; they are listed under “Unknown devices” for a manual check.</p>")
    out.append('<div class="charts">')
    out.append('<div class="chart"><h3>Devices by status</h3>' + build_donut_chart("Devices by status", [
        ("restricted", s["restricted"], RED), ("not restricted", s["not_restricted"], GREEN),
        ("unknown", s["unknown"], GREY)]) + "</div>")
    maker_rows = [(m["maker"], [(m["restricted"], RED), (m["devices"] - m["restricted"], GREY)])
                  for m in s["by_maker"]]
    out.append('<div class="chart"><h3>Devices by real maker</h3>' + build_bar_chart(
        "Devices by real maker", maker_rows, legend=[("restricted", RED), ("other", GREY)]) + "</div>")
    list_rows = [(x.get("short") or x["list"], [(x["devices"], AMBER)]) for x in s["by_list"]]
    out.append('<div class="chart"><h3>Restricted devices by list</h3>' + build_bar_chart(
        "Restricted devices by list", list_rows) + "</div>")
    out.append("</div>")
    if s["by_list"]:
        out.append('<table class="lists"><thead><tr><th>List</th><th>Kind</th><th class=num>Devices</th></tr>'
                   "</thead><tbody>")
        for x in s["by_list"]:
            kind = {True: "statute or regulation", False: "policy"}.get(x.get("legal"), "—")
            if x.get("basis") == "due_diligence":
                kind = "due diligence (not law)"
            out.append(f'<tr><td><span class="mono">{_t(x["list"])}</span> · {_t(x["name"])}</td><td>{kind}</td>'
                       f'<td class="num">{x["devices"]}</td></tr>')
        out.append("</tbody></table>")
    sites = s.get("by_site") or []
    if len(sites) > 1:  # a central store's report: totals per site
        out.append('<h3>By site</h3><table class="sites"><thead><tr><th>Site</th><th class=num>Devices</th>'
                   "<th class=num>Restricted</th><th class=num>Needs review</th><th class=num>Unknown</th>"
                   "</tr></thead><tbody>")
        for x in sites:
            out.append(f'<tr><td>{_t(x["site"])}</td><td class="num">{x["devices"]}</td>'
                       f'<td class="num">{x["restricted"]}</td><td class="num">{x.get("needs_review", 0)}</td>'
                       f'<td class="num">{x.get("unknown", 0)}</td></tr>')
        out.append("</tbody></table>")
    out.append("</section>")
    return "".join(out)


def _lists_cell(lists: list[str], shown: int = 3) -> str:
    if not lists:
        return _t(None)
    text = html_text(", ".join(lists[:shown]))
    if len(lists) > shown:
        text = (f'<span title="{html_attr(", ".join(lists), 1024)}">{text} '
                f'<span class="muted">+{len(lists) - shown} more</span></span>')
    return text


def _via_nvr(d: dict[str, Any]) -> str:
    """The recorder a camera behind an NVR was reached through, and its channel ("" for a camera on the network)."""
    if not d.get("parent_ip"):
        return ""
    return f'<br><span class="muted">via NVR {html_text(d["parent_ip"])} ch {html_text(d.get("channel") or "?")}</span>'


def _device_table(model: dict[str, Any]) -> str:
    devs = model["devices"]
    out = ['<section id="devices"><h2>Devices</h2>']
    if not devs:
        return out[0] + "<p>The scan found no device.</p></section>"
    sites = len(model["summary"].get("by_site") or []) > 1  # a central store: the same IP at two sites
    out.append("<table><thead><tr>" + ("<th>Site</th>" if sites else "") + "<th>IP</th><th>MAC</th>"
               "<th>Real maker</th><th>Brand</th><th>Model</th><th>Firmware</th><th>Type</th><th>Status</th>"
               "<th>Lists</th><th class=num>Conf.</th></tr></thead><tbody>")
    for d in devs:
        ip = _t(d["ip"]) + _via_nvr(d)
        brand = _t(d["brand"])
        if d["relabel"]:
            brand += ' <span class="tag rl">relabel</span>'
        out.append(
            f'<tr id="dev-{int(d["device_id"])}">' + (f'<td class="nw">{_t(d.get("site"))}</td>' if sites else "")
            + f'<td class="mono nw">{ip}</td><td class="mono nw">{_t(d["mac"])}</td>'
            f'<td>{_t(d["manufacturer"])}</td><td>{brand}</td><td class="mono">{_t(d["model"])}</td>'
            f'<td class="mono">{_t(d["firmware"])}{_exploited_tag(d.get("exploited"))}</td>'
            f'<td class="nw">{_t(d["device_type"])}</td>'
            f'<td class="nw">{_restricted_tag(d["restricted"])}{_review_tag(d.get("review"))}</td>'
            f'<td>{_lists_cell(d["lists"])}</td><td class="num">{d["confidence"]:.2f}</td></tr>')
    out.append("</tbody></table></section>")
    return "".join(out)


def _table_section(sid: str, title: str, intro: str, heads: str, rows: Iterable[str]) -> str:
    """A section of the report: its title, an introduction (HTML) and a table (the head cells, a row each)."""
    return (f'<section id="{sid}"><h2>{title}</h2><p>{intro}</p><table><thead><tr>{heads}</tr></thead><tbody>'
            + "".join(rows) + "</tbody></table></section>")


def _relabels(model: dict[str, Any]) -> str:
    rel = model["relabels"]
    if not rel:
        return ""
    return _table_section(
        "relabels", "Relabels unmasked",
        "These devices present one brand and were made by another; the real maker decides restriction.",
        "<th>IP</th><th>Label on the box</th><th>Real maker</th><th>Model</th>",
        (f'<tr><td class="mono">{_t(r["ip"])}</td><td>{_t(r["brand"])}</td>'
         f'<td>{_t(r["manufacturer"])}</td><td class="mono">{_t(r["model"])}</td></tr>' for r in rel))


def _chains(model: dict[str, Any]) -> str:
    flagged = [d for d in model["devices"] if d["restricted"] is True or d["relabel"] or d.get("component_risk")]
    out = ['<section id="evidence"><h2>Evidence for flagged devices</h2>']
    if not flagged:
        return out[0] + "<p>No device was flagged.</p></section>"
    out.append("<p>Every rule that fired, on which observed field, with the value the device sent "
               "(shown as text; control characters appear as <span class=\"ctl\">\\x..</span> escapes).</p>")
    for d in flagged:
        cls = "chain" if d["restricted"] is True else "chain relabel-only"
        head = f'{_t(d["ip"])} · {_t(d["manufacturer"] or "unknown maker")}'
        if d["relabel"]:
            head += f' (sold as {_t(d["brand"])})'
        if d.get("parent_ip"):
            head += f' · behind NVR {_t(d["parent_ip"])} channel {_t(d.get("channel") or "?")}'
        out.append(f'<div class="{cls}"><h3 class="mono">{head}</h3><p>{_t(d["model"])} · firmware '
                   f'{_t(d["firmware"])} · MAC <span class="mono">{_t(d["mac"])}</span> · serial '
                   f'<span class="mono">{_t(d.get("serial"))}</span> · {_restricted_tag(d["restricted"])} '
                   f'{_t(", ".join(d["lists"])) if d["lists"] else ""} · confidence {d["confidence"]:.2f}</p>')
        if d.get("component_risk"):
            out.append(f'<p>Component risk: {_t(", ".join(d["component_risk"]))}</p>')
        if d.get("observed"):
            seen = "; ".join(f'<span class="muted">{html_text(o["field"])}:</span> {html_text(o["value"], 200)}'
                             for o in d["observed"][:4])
            out.append(f'<p class="mono val">Presents itself as: {seen}</p>')
        if d.get("note"):
            out.append(f"<p>Note: {_t(d['note'])}</p>")
        if d["evidence"]:
            hits = sorted(d["evidence"], key=lambda e: _STRENGTH_ORDER.get(e.get("strength") or "", 9))
            shown, rest = hits[:MAX_CHAIN_ROWS], hits[MAX_CHAIN_ROWS:]
            out.append("<table><thead><tr><th>Rule</th><th>Field</th><th>Value observed</th><th>Strength</th>"
                       "</tr></thead><tbody>")
            for e in shown:
                note = f'<br><span class="muted">{_t(e["note"])}</span>' if e.get("note") else ""
                out.append(f'<tr><td class="mono">{_t(e["rule"])}</td><td class="mono">{_t(e["field"])}</td>'
                           f'<td class="mono val">{_t(e["value"])}{note}</td><td>{_t(e.get("strength"))}</td></tr>')
            if rest:
                out.append(f'<tr><td colspan="4" class="muted">{_n(len(rest), "weaker hit")} more '
                           f'({html_text(", ".join(sorted({e.get("strength") or "?" for e in rest})))}): '
                           f'{html_text(", ".join(e["rule"] for e in rest), 600)}; every hit is in the JSON report.</td></tr>')
            out.append("</tbody></table>")
        else:
            out.append('<p class="muted">No rule evidence was stored for this device.</p>')
        out.append("</div>")
    out.append("</section>")
    return "".join(out)


_BASIS_HEAD = {
    "law": ("Restricted by law", "A statute or regulation covers the maker, or a company that owns it or its label."),
    "policy": ("Restricted by government policy (not law)", "A government's or agency's policy, not a statute."),
    "due_diligence": ("Flagged by due diligence (not law)", "No law bars these devices: the policy adds makers "
                      "whose role is documented on the public record (sanctions, government reports, trade "
                      "reporting), and the companies that own a brand. Ownership is not manufacture."),
}


def _cites(cites: list[str], limit: int = 4) -> str:
    return "; ".join(f'<span class="mono val">{html_text(c, 300)}</span>' for c in (cites or [])[:limit])


def _policy_lists(pol: dict[str, Any]) -> str:
    out = [f'<p>Policy <strong>{_t(pol.get("name"))}</strong>'
           + (f': {_t(pol.get("description"))}' if pol.get("description") else "")
           + (" Owners are covered as well as makers." if pol.get("owners") else "")
           + (f' <span class="muted">(from {_t(pol.get("source"))})</span>' if pol.get("source") not in (None, "shipped")
              else "") + "</p>",
           '<table class="lists"><thead><tr><th>List</th><th>Basis</th><th>Version</th><th>Citations</th></tr>'
           "</thead><tbody>"]
    for x in pol.get("lists") or ():
        out.append(f'<tr><td><span class="mono">{_t(x["id"])}</span> · {_t(x["name"])}</td>'
                   f'<td class="nw">{_t(x.get("basis_text"))}</td><td class="nw">{_t(x.get("version"))}</td>'
                   f'<td>{_cites(x.get("cite") or [], 3)}</td></tr>')
    out.append("</tbody></table>")
    return "".join(out)


def _why_flagged(model: dict[str, Any]) -> str:
    """Per flagged device: law, government policy or due diligence, and why, with the citations. A device
    flagged on several grounds appears under each."""
    pol = model.get("policy")
    if not pol:
        return ""
    out = ['<section id="why"><h2>Why flagged: law and due diligence</h2>', _policy_lists(pol)]
    flagged = [d for d in model["devices"] if d["restricted"] is True and d.get("flags")]
    for basis in ("law", "policy", "due_diligence"):
        # one row per reason (list, made by / owned by / label, company), with the devices it flags
        groups: dict[tuple[str, str, str, str], tuple[dict[str, Any], list[dict[str, Any]]]] = {}
        for d in flagged:
            for f in d["flags"]:
                if f.get("basis") == basis:
                    key = (f["list"], f.get("via") or "", f.get("vendor") or "", f.get("subject") or "")
                    groups.setdefault(key, (f, []))[1].append(d)
        if not groups:
            continue
        head, sub = _BASIS_HEAD[basis]
        n = len({d["device_id"] for _, ds in groups.values() for d in ds})
        out.append(f'<div class="basis {html_attr(basis)}"><h3>{head} · {_n(n, "device")}</h3>'
                   f'<p class="muted">{sub}</p><table><thead><tr><th>List</th><th>Why</th><th>Devices</th>'
                   "<th>Evidence and citations</th></tr></thead><tbody>")
        for f, ds in groups.values():
            via = {"owned_by": '<span class="tag rl">owned by</span> ', "label": '<span class="tag rl">label</span> '
                   }.get(f.get("via") or "", "")
            devs = ", ".join(f'<a class="mono" href="#dev-{int(d["device_id"])}">{_t(d["ip"])}</a>'
                             + (f' <span class="muted">({_t(d["brand"])})</span>'
                                if d.get("brand") and d["brand"] != d.get("manufacturer") else "")
                             for d in ds[:12])
            if len(ds) > 12:
                devs += f' <span class="muted">and {len(ds) - 12} more</span>'
            ev = "".join(f'<div>{html_text(e.get("kind"))} · {html_text(e.get("date"))}: {html_text(e.get("what"), 400)}'
                         f'<br>{_cites(e.get("cite") or [], 2)}</div>' for e in f.get("evidence") or ())
            if not ev:
                ev = (f'since {html_text(f["since"])}' + (f' · {html_text(f["scope"])}' if f.get("scope") else "")
                      if f.get("since") else "")
                ev += ("<br>" if ev else "") + _cites(f.get("cite") or [], 3)
            elif f.get("via") == "owned_by":
                ev = f'<div>ownership: {_cites(f.get("cite") or [], 2)}</div>' + ev
            out.append(f'<tr><td class="mono">{_t(f["list"])}</td><td>{via}{html_text(f["why"], 400)}</td>'
                       f'<td>{_n(len(ds), "device")}: {devs}</td><td class="small">{ev}</td></tr>')
        out.append("</tbody></table></div>")
    if not flagged:
        out.append("<p>No device is flagged under this policy.</p>")
    out.append("</section>")
    return "".join(out)


def _plan(model: dict[str, Any]) -> str:
    plan = model["plan"]
    rows, totals = plan["rows"], plan["totals"]
    cur = html_text(plan.get("currency") or "")
    out = ['<section id="plan"><h2>Replacement plan</h2>']
    if not rows:
        out.append("<p>No device of this scan needs a replacement plan.</p>")
    else:
        src = "the plan catalog" + (f' {html_text(plan["catalog_version"])}' if plan.get("catalog_version") else "")
        if plan["source"] == "store":
            src = "the saved plan rows"
        out.append(f"<p>Costs in {cur or 'the catalog currency'}, from {src}; "
                   "<em>default</em> marks rows nobody has confirmed yet.</p>")
        out.append("<table><thead><tr><th>Prio</th><th>IP</th><th>Now</th><th>Replace with</th>"
                   "<th>Status</th><th class=num>Hardware</th><th class=num>Labour</th>"
                   "<th class=num>Licence</th><th class=num>Total</th></tr></thead><tbody>")
        for r in rows:
            now = f'{_t(r["manufacturer"])} {_t(r["model"])}'
            if r.get("brand") and r.get("manufacturer") and r["brand"] != r["manufacturer"]:
                now += f' <span class="muted">(as {_t(r["brand"])})</span>'
            repl = _t(r.get("class_label") or r.get("replacement_class"))
            if r.get("suggested_maker") or r.get("suggested_model"):
                repl += f'<br><span class="muted">{_t(r.get("suggested_maker"))} {_t(r.get("suggested_model"))}</span>'
            status = _t(r["status"]) + ("" if r.get("saved") else ' <span class="tag u">default</span>')
            if r["status"] == "exempt" and r.get("exempt_reason"):
                status += f'<br><span class="muted">{_t(r["exempt_reason"])}</span>'
            prio = _t(r.get("tier") or (None if r.get("priority") is None else r["priority"]))
            if r.get("reasons"):
                prio = f'<span title="{html_attr("; ".join(r["reasons"]))}">{prio}</span>'
            cost_cls = ' class="num muted"' if r["status"] == "exempt" else ' class="num"'
            out.append(f'<tr><td>{prio}</td><td class="mono nw">{_t(r["ip"])}</td><td>{now}</td>'
                       f'<td>{repl}</td><td>{status}</td><td{cost_cls}>{_money(r["cost_hardware"])}</td>'
                       f'<td{cost_cls}>{_money(r["cost_labour"])}</td><td{cost_cls}>{_money(r["cost_licence"])}</td>'
                       f'<td{cost_cls}>{_money(r["cost_total"])}</td></tr>')
        out.append(f'<tr class="totals"><td></td><td colspan="4">Total {cur} ({_n(totals["counted_devices"], "device")}; '
                   f'exempt rows not counted)</td><td class="num">{_money(totals["cost_hardware"])}</td>'
                   f'<td class="num">{_money(totals["cost_labour"])}</td>'
                   f'<td class="num">{_money(totals["cost_licence"])}</td>'
                   f'<td class="num">{_money(totals["cost_total"])}</td></tr></tbody></table>')
        by_status = ", ".join(f"{html_text(k)}: {v}" for k, v in totals["by_status"].items() if v)
        by_tier = ", ".join(f"{html_text(k)}: {v}" for k, v in (totals.get("by_tier") or {}).items())
        out.append(f"<p>By status: {by_status}." + (f" By priority: {by_tier}." if by_tier else "")
                   + (f' Still to spend (planned and ordered): {cur} {_money(totals["cost_remaining"])}.'
                      if totals.get("cost_remaining") is not None else "") + "</p>")
        sites = plan.get("by_site") or []
        if len(sites) > 1:
            out.append("<table><thead><tr><th>Site</th><th class=num>Devices</th><th class=num>Total</th>"
                       "</tr></thead><tbody>")
            for st in sites:
                out.append(f'<tr><td>{_t(st["site"])}</td><td class="num">{st["devices"]}</td>'
                           f'<td class="num">{_money(st["cost_total"])}</td></tr>')
            out.append("</tbody></table>")
    missing = plan.get("restricted_without_plan") or []
    if missing:
        out.append(f"<p><strong>{_n(len(missing), 'restricted device')} without a saved plan</strong> "
                   "(their rows show catalog defaults).</p>")
    if plan.get("note"):
        out.append(f'<p class="muted">{html_text(plan["note"])}</p>')
    out.append("</section>")
    return "".join(out)


def _reviews(model: dict[str, Any]) -> str:
    rev = model.get("reviews") or []
    if not rev:
        return ""
    return _table_section(
        "reviews", "Needs review",
        "The evidence points at a maker the policy restricts without establishing it (weak clues only, an OEM "
        "label, or conflicting claims). camsweep neither flags nor clears these; check them by hand.",
        "<th>IP</th><th>MAC</th><th>Brand</th><th>Suspected maker</th><th>Why</th>",
        (f'<tr><td class="mono nw"><a href="#dev-{int(r["device_id"])}">{_t(r["ip"])}</a></td>'
         f'<td class="mono nw">{_t(r.get("mac"))}</td><td>{_t(r.get("brand"))}</td>'
         f'<td>{_t(r["maker"])}</td><td>{html_text(r["reason"], 500)}</td></tr>' for r in rev))


def _exploited_section(model: dict[str, Any]) -> str:
    devs = [d for d in model["devices"] if d.get("exploited")]
    if not devs:
        return ""
    return _table_section(
        "exploited", "Known-exploited firmware",
        "The firmware these devices reported lies in a range affected by a vulnerability in CISA's Known "
        "Exploited Vulnerabilities catalogue. camsweep compared version numbers only; it tried no exploit. "
        "Confirm with the maker's advisory, then update or isolate the device until it is replaced.",
        "<th>IP</th><th>Model</th><th>Firmware</th><th>Vulnerability</th><th>Source</th>",
        (f'<tr><td class="mono nw"><a href="#dev-{int(d["device_id"])}">{_t(d["ip"])}</a>{_via_nvr(d)}</td>'
         f'<td class="mono">{_t(d["model"])}</td><td class="mono">{_t(d["firmware"])}</td>'
         f'<td><span class="mono">{_t(h.get("cve"))}</span> · {_t(h.get("title"))}<br>'
         f'<span class="muted">range: {_t(h.get("series"))}</span></td>'
         f'<td class="val">{html_text(h.get("cite") or "", 300)}</td></tr>' for d in devs for h in d["exploited"]))


def _unknowns(model: dict[str, Any]) -> str:
    unk = model["unknowns"]
    if not unk:
        return ""
    rows = []
    for u in unk:
        seen = "<br>".join(f'<span class="muted">{html_text(o["field"])}:</span> {html_text(o["value"], 300)}'
                           for o in u.get("observed") or []) or _t(u.get("brand"))
        rows.append(f'<tr><td class="mono nw">{_t(u["ip"])}</td><td class="mono nw">{_t(u["mac"])}</td>'
                    f'<td>{_t(u["device_type"])}</td><td class="mono val">{seen}</td></tr>')
    return _table_section(
        "unknowns", "Unknown devices",
        "The evidence does not establish who made these; camsweep does not guess. Check them by hand; what "
        "each one presents is shown as text.",
        "<th>IP</th><th>MAC</th><th>Type</th><th>What it presents</th>", rows)


def _without_mac(model: dict[str, Any]) -> str:
    rows = model.get("without_mac") or []
    if not rows:
        return ""
    return _table_section(
        "without-mac", "Devices without a MAC address",
        f'{_n(len(rows), "device")} had no MAC: no OUI evidence and no identity beyond the IP address for them. '
        "Why, for each:",
        "<th>IP</th><th>Why</th>",
        (f'<tr><td class="mono nw">{_t(r["ip"])}</td><td>{_t(r["reason"])}</td></tr>' for r in rows))


def _meta(model: dict[str, Any]) -> str:
    sc = model["scan"]
    items = [
        ("Scan", f'#{int(sc["id"])} ({_t(sc["status"])})' if not model.get("org") else
         ", ".join(f'#{int(x["scan_id"])} {_t(x["site"])}' for x in model["org"]["scans"])),
        ("Site", _t(sc["site"]) if not model.get("org") else "every site (the latest scan of each)"),
        ("Targets", _t(", ".join(sc["targets"]))),
        ("Started", _t(sc["started_at"])),
        ("Finished", _t(sc["finished_at"])),
        ("Policy", _t(sc["policy"]) + ("" if sc.get("scan_policy") in (None, sc["policy"])
                                       else f' (scan ran under {_t(sc["scan_policy"])})')),
        ("camsweep version", _t(sc["camsweep_version"])),
        ("Fingerprint database", _t(sc["fingerprints_version"])),
        ("Report generated", f'{_t(model["generated_at"])} by camsweep {_t(model["generator"]["version"])}'),
        ("Report schema", f'report-v1, version {_t(model["schema_version"])}'),
    ]
    opts = sc.get("options") or {}
    if opts:
        items.append(("Options", _t(", ".join(f"{k}={v}" for k, v in sorted(opts.items())))))
    rows = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items)
    return f'<section id="meta"><h2>Scan metadata</h2><dl class="meta">{rows}</dl></section>'


def render_html(model: dict[str, Any]) -> str:
    sc = model["scan"]
    site = f" · {html_text(sc['site'])}" if sc.get("site") else ""
    title = f"camsweep report · scan {int(sc['id'])}{site}"
    plain_title = f"camsweep report · scan {int(sc['id'])}" + (f" · {html_attr(sc['site'])}" if sc.get("site") else "")
    if model.get("org"):  # report --org: the latest scan of every site
        n = int(model["org"].get("sites") or 0)
        title = plain_title = f"camsweep report · organisation · {n} site{'s' if n != 1 else ''}"
    status_note = ""
    if sc["status"] != "complete":
        status_note = (f'<p><span class="tag rl">scan {html_text(sc["status"])}</span> This scan did not finish; '
                       "the report shows what it found before it stopped.</p>")
    return "".join([
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f'<meta http-equiv="Content-Security-Policy" content="{html.escape(CSP)}">',
        '<meta name="referrer" content="no-referrer"><meta name="color-scheme" content="light">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>{plain_title}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{title}</h1><p class=\"sub\">Targets {html_text(', '.join(sc['targets']))} · "
        f"{html_text(sc['started_at'])} · policy {html_text(sc['policy'])}</p>{status_note}</header>",
        _summary(model), _why_flagged(model), _device_table(model), _relabels(model), _reviews(model), _exploited_section(model), _chains(model), _plan(model),
        _unknowns(model), _without_mac(model),
        _meta(model),
        "<footer>Generated by camsweep. Identification is from network evidence only; a restricted verdict names "
        "the rules that fired. This file loads nothing from the network; print it to PDF from any browser."
        "</footer></body></html>\n",
    ])
