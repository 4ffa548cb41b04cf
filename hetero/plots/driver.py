"""make_figures: every registered figure kind, drawn from one reading of the store."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

from hetero.plots.core import (
    ISOVALUE_DEFAULT,
    STYLE,
    FigureContext,
    RunData,
    Skip,
    colour_map,
    load_run,
    registered,
    save_figure,
)


@dataclass
class FigureSet:
    out_dir: Path
    figures: dict[str, dict] = field(default_factory=dict)  # stem -> {"kind", "title", "files", "values"}
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (figure, reason)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (figure, what looks wrong in the data)

    def summary(self) -> str:
        lines = [f"{len(self.figures)} figures written to {self.out_dir}"]
        lines += [f"skipped {name}: {why}" for name, why in self.skipped]
        lines += [f"warning {name}: {why}" for name, why in self.warnings]
        return "\n".join(lines)


def report_sections() -> list[tuple[str, str]]:
    """(figure kind, heading) in registry order: the report's figure sections."""
    return [(kind, heading) for fk in registered() for kind, heading in fk.headings.items()]


def make_figures(source: Any, out: str | Path | None = None, isovalue: float = ISOVALUE_DEFAULT,
                 run: RunData | None = None, kinds: Iterable[str] | None = None, echo=None) -> FigureSet:
    """Draw every figure the store supports; returns what was written, the plotted values and what was skipped."""
    run = run or load_run(source)
    if out is None:
        if run.folder is None:
            raise ValueError("give `out` when the source is not a run folder")
        out = run.folder / "figures"
    out = Path(out)
    result = FigureSet(out_dir=out)
    ctx = FigureContext(run=run, colours=colour_map(run), isovalue=isovalue)
    wanted = set(kinds) if kinds else None
    with matplotlib.rc_context(STYLE):
        for fk in registered():
            if wanted and not wanted & set(fk.headings):
                continue
            for job in fk.jobs(ctx):
                if job.kind not in fk.headings:
                    raise ValueError(f"hetero.plots.{fk.name} drew kind '{job.kind}' it did not register "
                                     f"(registered: {sorted(fk.headings)})")
                if wanted and job.kind not in wanted:
                    continue
                _draw(job, out, result, echo)
    for name in run.failed_jobs:
        result.skipped.append((f"job '{name}'", "job stored no document (failed, or nothing to report, e.g. a work "
                                                "function without vacuum)"))
    _write_manifest(result, out, wanted, isovalue)
    return result


def _draw(job, out: Path, result: FigureSet, echo) -> None:
    try:
        fig, values = job.draw()
    except Skip as exc:
        result.skipped.append((job.stem, str(exc)))
        if echo:
            echo(f"skipped {job.stem}: {exc}")
        return
    except Exception as exc:  # noqa: BLE001 - one bad document must not stop the other figures
        result.skipped.append((job.stem, f"error: {type(exc).__name__}: {exc}"))
        if echo:
            echo(f"skipped {job.stem}: error {type(exc).__name__}: {exc}")
        return
    for w in (values or {}).get("warnings") or []:
        result.warnings.append((job.stem, w))
        if echo:
            echo(f"warning {job.stem}: {w}")
    files = save_figure(fig, out, job.stem)
    result.figures[job.stem] = {"kind": job.kind, "title": job.title, "files": [str(p) for p in files],
                                "values": values}
    if echo:
        echo(f"wrote {job.stem}.png/.pdf")


def _write_manifest(result: FigureSet, out: Path, wanted: set[str] | None, isovalue: float) -> None:
    """figures.json; files of an earlier drawing that this store no longer supports are removed."""
    manifest = {k: {"kind": v["kind"], "title": v["title"], "files": [Path(f).name for f in v["files"]]}
                for k, v in result.figures.items()}
    out.mkdir(parents=True, exist_ok=True)
    old_manifest = out / "figures.json"
    old: dict = {}
    if old_manifest.exists():
        try:
            old = json.loads(old_manifest.read_text()).get("figures", {})
        except (json.JSONDecodeError, AttributeError):
            old = {}
    for stem, info in old.items():  # only the kinds redrawn now
        if stem not in manifest and (wanted is None or info.get("kind") in wanted):
            for name in info.get("files", []):
                if Path(name).name == name:
                    (out / name).unlink(missing_ok=True)
    if wanted is not None:  # partial redraw: keep the other kinds' entries
        manifest = {**{k: v for k, v in old.items() if v.get("kind") not in wanted}, **manifest}
    (out / "figures.json").write_text(json.dumps({"figures": manifest, "skipped": result.skipped,
                                                  "warnings": result.warnings,
                                                  "isovalue_e_per_A3": isovalue}, indent=1))
