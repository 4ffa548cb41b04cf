"""`hetero report RUN_FOLDER`: one static HTML page of a campaign, from the store alone.

`RUN_FOLDER/report/index.html` holds: the campaign, the screening table, the published values beside
ours (labelled 'published (literature)' vs 'this work', with the reference state of every number),
every figure (PNG referenced by a relative path, or embedded with `embed=True`, plus a link to its
PDF), what was skipped and why, the settings of every step with their settings hash, and the
provenance of every document (engine, version, run dir, job uuid).
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from pathlib import Path
from typing import Any

from hetero.io.store import RunData, load_run
from hetero.plots import FigureSet, make_figures, report_sections, single_ion

CSS = """
body{font-family:DejaVu Sans,Arial,sans-serif;margin:24px;max-width:1500px;color:#222;background:#fff}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:3px;margin-top:28px}
h3{font-size:15px}
table{border-collapse:collapse;font-size:12px;margin:8px 0}
td,th{border:1px solid #bbb;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#eef2f7}
td.num{text-align:right;font-family:DejaVu Sans Mono,monospace}
th.pub,td.pub{background:#f3f3f3}th.ours,td.ours{background:#eaf4ea}
.figs{display:flex;flex-wrap:wrap;gap:14px}
figure{margin:0;border:1px solid #ddd;padding:6px;max-width:720px}
figure img{max-width:100%;height:auto;display:block}
figcaption{font-size:12px;color:#444;margin-top:4px}
.note{font-size:12px;color:#555}.skip{color:#8a5a00}.warn{color:#b00000}
pre{font-size:11px;background:#f7f7f7;padding:6px;overflow-x:auto;max-width:1400px}
.wide{overflow-x:auto}
"""


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _fmt(x: Any, nd: int = 4) -> str:
    if x is None:
        return ""
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, float):
        if math.isnan(x):
            return ""
        return f"{x:.{nd}g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.3e}"
    return str(x)


def _table(headers: list[str], rows: list[list[Any]], classes: list[str] | None = None) -> str:
    classes = classes or [""] * len(headers)
    h = "".join(f'<th class="{c}">{_e(t)}</th>' for t, c in zip(headers, classes))
    body = []
    for r in rows:
        cells = []
        for v, c in zip(r, classes):
            num = isinstance(v, (int, float)) and not isinstance(v, bool)
            cells.append(f'<td class="{c}{" num" if num else ""}">{_e(_fmt(v))}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="wide"><table><tr>{h}</tr>{"".join(body)}</table></div>'


# ----------------------------------------------------------------------------------- sections


def screening_table_html(run: RunData) -> tuple[str, str]:
    """The screening table (hetero.table.build_table) as HTML; falls back to a table of the documents."""
    try:
        from hetero.table import build_table

        df = build_table(run)
        df = df.dropna(axis=1, how="all")
        return df.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}", border=0), "hetero.table.build_table"
    except Exception as exc:  # noqa: BLE001 - the report must not depend on the table module working
        rows = []
        for d in run.of("adsorption"):
            rows.append([d["system"], d["ion"], d["site"], "", d.get("e_ads_bulk_eV"), d.get("e_ads_atom_eV"), None,
                         (d.get("provenance") or {}).get("settings_hash")])
        for d in run.of("neb"):
            rows.append([d["system"], d["ion"], "", d["path"], None, None, d["barrier_eV"],
                         (d.get("provenance") or {}).get("settings_hash")])
        head = ["system", "ion", "site", "path", "E_ads (eV), ref. bulk metal", "E_ads (eV), ref. isolated atom",
                "barrier (eV)", "settings hash"]
        return _table(head, rows), f"documents (hetero.table unavailable: {type(exc).__name__}: {exc})"


def comparison_html(run: RunData) -> str:
    published = (run.campaign or {}).get("published") or {}
    pub_e = published.get("e_ads_eV") or {}
    pub_ref = published.get("e_ads_reference") or "not stated by the study"
    ads = single_ion(run.of("adsorption"))
    sites = sorted(set(pub_e) | {d["site"] for d in ads})
    out = []
    if sites:
        rows = []
        for s in sites:
            ours = [d for d in ads if d["site"] == s]
            d = ours[0] if ours else {}
            rows.append([s, pub_e.get(s), pub_ref if s in pub_e else "", d.get("e_ads_bulk_eV"), d.get("e_ads_atom_eV"),
                         d.get("system", ""), (d.get("provenance") or {}).get("settings_hash", "")])
        order = lambda r: (r[3] is None, r[3] if r[3] is not None else 0)  # noqa: E731
        rows.sort(key=order)
        out.append(_table(
            ["site", "published (literature) E_ads (eV)", "published reference state",
             "this work E_ads (eV), ref. bulk metal", "this work E_ads (eV), ref. isolated atom", "this work: system",
             "this work: settings hash"], rows, ["", "pub", "pub", "ours", "ours", "ours", "ours"]))
        ranked_ours = [r[0] for r in sorted([r for r in rows if r[3] is not None], key=lambda r: r[3])]
        ranked_pub = [s for s, _ in sorted(pub_e.items(), key=lambda kv: kv[1]) if s in ranked_ours]
        if ranked_ours and ranked_pub:
            out.append(f'<p class="note">Site order, most favourable first: this work (bulk-metal reference) '
                       f'{_e(" < ".join(ranked_ours))}; published (literature) {_e(" < ".join(ranked_pub))} '
                       f'(sites computed here only). Settings differ; compare physics (signs, order), not digits.</p>')
    other = {k: v for k, v in published.items() if k not in ("e_ads_eV", "e_ads_reference")}
    if other:
        out.append("<h3>Other published (literature) values</h3><pre>" + _e(json.dumps(other, indent=1)) + "</pre>")
    if not out:
        out.append('<p class="note">The campaign lists no published values.</p>')
    return "\n".join(out)


def _where(d: dict) -> str:
    if d["doc_type"] == "adsorption":
        n = int(d.get("n_ions", 1) or 1)
        return f"{'' if n == 1 else n}{d.get('ion')}@{d.get('site')}"
    if d["doc_type"] == "neb":
        return f"{d.get('ion')} {d.get('path')}"
    if d["doc_type"] == "calc":
        return f"{d.get('label') or 'host'} ({d.get('step')})"
    return d.get("label") or "host"


def settings_html(run: RunData) -> str:
    """Distinct settings (by hash) and the steps that used each."""
    by_hash: dict[str, dict] = {}
    for t in sorted(run.docs):
        for d in run.docs[t]:
            p = d.get("provenance") or {}
            h = p.get("settings_hash") or "(no hash)"
            e = by_hash.setdefault(h, {"settings": p.get("settings") or {}, "engine": p.get("engine", ""),
                                       "version": p.get("engine_version", ""), "steps": []})
            e["steps"].append(f"{t}: {d.get('system', '')} {_where(d)}")
    if not by_hash:
        return '<p class="note">No documents in the store.</p>'
    parts = []
    rows = [[h, v["engine"], v["version"], len(v["steps"])] for h, v in sorted(by_hash.items())]
    parts.append(_table(["settings hash", "engine", "engine version", "documents"], rows))
    step_rows = []
    for t in sorted(run.docs):
        for d in run.docs[t]:
            p = d.get("provenance") or {}
            h = p.get("settings_hash") or "(no hash)"
            st = p.get("settings") or {}
            brief = ", ".join(f"{k}={st[k]}" for k in ("preset", "xc", "mode", "ecut_eV", "kpts", "kspacing_A", "smearing_eV",
                                                        "spinpol", "dipole_correction", "d3", "fmax_eV_A") if k in st)
            step_rows.append(f"<tr><td>{_e(t)}</td><td>{_e(d.get('system', ''))}</td><td>{_e(_where(d))}</td>"
                             f"<td><a href=\"#settings-{_e(h)}\"><code>{_e(h)}</code></a></td><td>{_e(brief)}</td></tr>")
    parts.append("<div class='wide'><table><tr><th>step (document)</th><th>system</th><th>what</th>"
                 "<th>settings hash</th><th>main settings</th></tr>" + "".join(step_rows) + "</table></div>")
    for h, v in sorted(by_hash.items()):
        parts.append(f"<details id=\"settings-{_e(h)}\"><summary>settings {_e(h)} ({_e(v['engine'])}) used by {len(v['steps'])} documents"
                     f"</summary><p class='note'>{_e('; '.join(v['steps']))}</p><pre>"
                     f"{_e(json.dumps(v['settings'], indent=1, sort_keys=True, default=str))}</pre></details>")
    return "\n".join(parts)


def provenance_html(run: RunData) -> str:
    rows = []
    for t in sorted(run.docs):
        for d in run.docs[t]:
            p = d.get("provenance") or {}
            rows.append([t, d.get("system", ""), _where(d), p.get("engine", ""), p.get("engine_version", ""),
                         p.get("hetero_version", ""), p.get("settings_hash", ""), p.get("wall_s"), p.get("cores"),
                         p.get("run_dir", ""), run.job_of(d).uuid])
    if not rows:
        return '<p class="note">No documents in the store.</p>'
    return _table(["document", "system", "what", "engine", "engine version", "hetero version", "settings hash",
                   "wall (s)", "cores", "run dir", "job uuid"], rows)


def figures_html(fs: FigureSet, out_dir: Path, embed: bool) -> str:
    parts = []
    for kind, heading in report_sections():
        items = [(k, v) for k, v in fs.figures.items() if v["kind"] == kind]
        if not items:
            continue
        figs = []
        for stem, info in items:
            png, pdf = Path(info["files"][0]), Path(info["files"][1])
            if embed:
                src = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()
            else:
                src = Path(os.path.relpath(png, out_dir)).as_posix()
            pdf_rel = Path(os.path.relpath(pdf, out_dir)).as_posix()
            figs.append(f'<figure id="{_e(stem)}"><img src="{_e(src)}" alt="{_e(info["title"])}">'
                        f'<figcaption>{_e(info["title"])} &middot; <a href="{_e(pdf_rel)}">PDF</a> '
                        f'&middot; <code>{_e(stem)}</code></figcaption></figure>')
        parts.append(f"<h3>{_e(heading)}</h3><div class='figs'>{''.join(figs)}</div>")
    if fs.warnings:
        items = "".join(f"<li><code>{_e(n)}</code>: {_e(w)}</li>" for n, w in fs.warnings)
        parts.insert(0, f"<h3>Warnings (data that looks wrong; plotted as stored)</h3><ul class='warn'>{items}</ul>")
    if fs.skipped:
        items = "".join(f"<li><code>{_e(n)}</code>: {_e(w)}</li>" for n, w in fs.skipped)
        parts.append(f"<h3>Skipped</h3><ul class='skip'>{items}</ul>")
    return "\n".join(parts) or '<p class="note">No figures could be drawn from this store.</p>'


def campaign_html(run: RunData) -> str:
    c = run.campaign or {}
    if not c:
        return '<p class="note">No campaign.json in the run folder.</p>'
    rows = [[k, json.dumps(c.get(k), default=str) if isinstance(c.get(k), (dict, list)) else c.get(k)]
            for k in ("name", "title", "study", "ion", "engine", "geometry", "preset_used", "model", "sites", "steps",
                      "references", "overrides", "notes") if k in c]
    host = (run.models or {}).get("host") or {}
    if host:
        rows.append(["host model", f"{host.get('system', '')}: {host.get('kind', '')}, {host.get('n_atoms', '')} atoms, "
                                   f"strain {host.get('strain_percent')} %; {host.get('notes', '')}"])
    return _table(["field", "value"], rows)


# ----------------------------------------------------------------------------------- driver


def build_report(run_folder: str | Path, out: str | Path | None = None, isovalue: float = 0.007,
                 embed: bool = False, figures: FigureSet | None = None) -> tuple[Path, FigureSet]:
    """Write `<out or run_folder/report>/index.html` with the figures (re)drawn into run_folder/figures,
    or into `<out>/figures` when `out` is given (the run folder is then left untouched)."""
    run_folder = Path(run_folder)
    run = load_run(run_folder)
    out_dir = Path(out) if out else run_folder / "report"
    out_dir.mkdir(parents=True, exist_ok=True)
    fs = figures or make_figures(run_folder, out=out_dir / "figures" if out else None, isovalue=isovalue, run=run)
    table, table_src = screening_table_html(run)
    title = (run.campaign or {}).get("title") or (run.campaign or {}).get("name") or run_folder.name
    failed = "".join(f"<li>{_e(n)}</li>" for n in run.failed_jobs)
    n_docs = sum(len(v) for v in run.docs.values())
    counts = ", ".join(f"{k}: {len(v)}" for k, v in sorted(run.docs.items()))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>hetero report: {_e(title)}</title>
<style>{CSS}</style></head><body>
<h1>hetero report: {_e(title)}</h1>
<p class="note">Run folder <code>{_e(run_folder.resolve())}</code>. Everything below is read from its
<code>store.json</code> ({n_docs} documents; {_e(counts)}), <code>campaign.json</code> and <code>models.json</code>;
nothing was recomputed. Energies in eV, lengths in &Aring;, charges in e; adsorption energies negative = favourable,
with the reference state named on every number.</p>
<h2>Campaign</h2>{campaign_html(run)}
<h2>Published (literature) vs this work</h2>{comparison_html(run)}
<h2>Screening table</h2><p class="note">source: {_e(table_src)}</p>{table}
<h2>Figures</h2>{figures_html(fs, out_dir, embed)}
<h2>Settings per step</h2>{settings_html(run)}
<h2>Provenance</h2>{provenance_html(run)}
{"<h2>Jobs without output</h2><ul class='skip'>" + failed + "</ul>" if failed else ""}
</body></html>
"""
    path = out_dir / "index.html"
    path.write_text(page)
    return path, fs
