"""``report.md`` and a self-contained ``index.html`` (every PNG embedded as a base64 data URI, no
external CSS/JS, so the single file can be mailed or attached to a CI run and still shows the plots)."""

from __future__ import annotations

import base64
import html as _html
from pathlib import Path
from typing import Any

from .tables import (accuracy_table, agreement_table, camera_family_table, camera_logo_table, camera_table,
                     camera_tag_table, cost_table)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:0.6em 0 1.6em;font-size:13px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f3f3f3}
.fail{color:#b00;font-weight:bold}.pass{color:#070;font-weight:bold}.note{color:#555;font-size:13px}
img{max-width:100%;border:1px solid #eee;margin:0.4em 0}figure{margin:0 0 1.5em}
"""


def _headline(report: dict[str, Any]) -> list[str]:
    d, t, g = report["data"], report["teacher"], report["gate"]
    lines = [
        f"Data: `{d['manifest']}`, split `{d['split']}`, {d['n_images']} held-out images; "
        f"targets are **{d['mos_label']}**.",
        (f"Teacher: {t['label']} (scores computed on: {t['device']}; file `{t['scores_file']}`)."
         if t["scores_file"] else "Teacher: no teacher scores given (teacher columns n/a)."),
        "Intervals: bootstrap 95% over images. PLCC (raw) is plain Pearson as the paper reports; "
        "PLCC (fitted) after a logistic fit.",
    ]
    if g["max_srcc_drop"] is not None:
        state = "PASSED" if g["passed"] else "FAILED"
        lines.append(f"Accuracy gate --max-srcc-drop {g['max_srcc_drop']:g}: **{state}**"
                     + ("" if g["passed"] else ": " + "; ".join(g["failures"])))
    return lines + list(report.get("notes", []))


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(h.replace("|", "/") for h in head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in rows]
    return "\n".join(out)


def _sections(report: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """(title, table function, note) in page order; the camera section leads when there is one."""
    out = []
    if report.get("camera"):
        cam = report["camera"]
        out.append((f"Camera ladders ({cam['scenes']} held-out scenes, {cam['references']} photos, {cam['images']} images; "
                    f"{cam['label']})", camera_table, cam["note"]))
        if len(next(iter(cam["rows"]))["per_distortion"]) > 10:
            out.append(("Camera ladders: tau per distortion family", camera_family_table, ""))
        if any((r["gate"] or {}).get("keep_by_tag") for r in cam["rows"]):
            out.append(("Clean held-out photos kept, per content tag", camera_tag_table,
                        "Intentional photography (bokeh, macro, portrait, night, low-key, panning, fog, minimal) "
                        "must be kept like any clean photo."))
        if cam.get("logo"):
            out.append(("Leave-one-group-out: families the model never trained on", camera_logo_table,
                        cam["logo"]["note"]))
    return out + [("Accuracy vs MOS", accuracy_table, ""), ("Agreement with the teacher and the float parent",
                                                             agreement_table, ""), ("Cost", cost_table, "")]


def render_markdown(report: dict[str, Any]) -> str:
    parts = [f"# dpiqa-edge accuracy report ({report['data']['mos_label']})", ""]
    parts += [f"- {line}" for line in _headline(report)] + [""]
    for title, table, note in _sections(report):
        parts += [f"## {title}", ""] + ([note, ""] if note else []) + [_md_table(*table(report)), ""]
    parts += ["## Plots", ""] + [f"![{k}]({v})" for k, v in report["plots"].items()] + [""]
    return "\n".join(parts)


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    e = _html.escape
    th = "".join(f"<th>{e(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def _inline_md(line: str) -> str:
    """The headline lines use **bold** and `code` only; escape first, then mark up."""
    import re

    s = _html.escape(line)
    s = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", s)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", s)


def data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(png).read_bytes()).decode("ascii")


def render_html(report: dict[str, Any], out_dir: Path) -> str:
    """The whole page; plots are read from ``out_dir`` and embedded."""
    e = _html.escape
    label = report["data"]["mos_label"]
    body = [f"<h1>dpiqa-edge accuracy report <small>({e(label)})</small></h1>", "<ul>"]
    body += [f"<li>{_inline_md(line)}</li>" for line in _headline(report)]
    body.append("</ul>")
    gate = report["gate"]
    if gate["max_srcc_drop"] is not None:
        cls = "pass" if gate["passed"] else "fail"
        body.append(f"<p class='{cls}'>gate {'passed' if gate['passed'] else 'failed'}</p>")
    for title, table, note in _sections(report):
        body += [f"<h2>{e(title)}</h2>"] + ([f"<p class='note'>{e(note)}</p>"] if note else []) + [_html_table(*table(report))]
    body.append("<h2>Plots</h2>")
    for key, rel in report["plots"].items():
        body.append(f"<figure><img alt='{e(key)}' src='{data_uri(out_dir / rel)}'>"
                    f"<figcaption class='note'>{e(key)} ({e(rel)})</figcaption></figure>")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>dpiqa-edge report</title>"
            f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n")
