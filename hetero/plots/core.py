"""What every figure kind shares: style, colours, saving, store access, and the registry of figure kinds.

A figure kind is a module of this package that registers one function with `@figure_kind`: given a
`FigureContext` (the run read from the store, the colour of every model, the CDD isovalue) it yields a
`FigureJob` for every figure the run could have. `make_figures` walks `REGISTRY` in `order`; the
report takes its section headings from the same entries.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from hetero.io.store import RunData, load_run  # noqa: F401 - the figures read the store only through this

DPI = 150
ISOVALUE_DEFAULT = 0.007  # e/A^3

STYLE: dict[str, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 7,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "lines.linewidth": 1.3,
    "axes.grid": False,
    "figure.dpi": 100,
    "savefig.dpi": DPI,
    "savefig.bbox": "standard",
    "svg.hashsalt": "hetero",
    "svg.fonttype": "none",
    "pdf.fonttype": 42,
    "pdf.compression": 6,
    "path.simplify": True,
    "image.cmap": "viridis",
    "axes.prop_cycle": matplotlib.cycler(color=["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]),
}
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#7f7f7f", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173"]
ACCUMULATION = "#f2c80f"  # yellow
DEPLETION = "#19c3d6"  # cyan
PUBLISHED_COLOUR = "#9a9a9a"
REF_HATCH = {"bulk metal": "", "isolated atom": "//", "published": ".."}


class Skip(Exception):
    """A figure that cannot be drawn from what the store holds (the message says why)."""


# ------------------------------------------------------------------------------------------ registry


class FigureJob(NamedTuple):
    """One figure a run could have: `draw()` returns (Figure, plotted values) or raises Skip."""

    stem: str  # file name without suffix
    kind: str  # one of the registering FigureKind's `headings`
    title: str
    draw: Callable[[], tuple[Figure, dict]]


@dataclass(frozen=True)
class FigureContext:
    run: RunData
    colours: dict[str, str]
    isovalue: float

    def colour(self, doc: dict) -> str:
        return colour_of(self.colours, entity(doc))


@dataclass(frozen=True)
class FigureKind:
    name: str  # the module's name
    order: int  # place in make_figures and in the report (small first)
    headings: dict[str, str]  # figure kind -> report section heading (one module may draw several kinds)
    jobs: Callable[[FigureContext], Iterable[FigureJob]]


REGISTRY: dict[str, FigureKind] = {}


def figure_kind(order: int, headings: dict[str, str]):
    """Register a module's `jobs(ctx)` generator; the module's last dotted name names the entry."""

    def register(jobs: Callable[[FigureContext], Iterable[FigureJob]]):
        name = jobs.__module__.rsplit(".", 1)[-1]
        clash = [k for fk in REGISTRY.values() if fk.name != name for k in fk.headings if k in headings]
        if clash:
            raise ValueError(f"figure kind(s) {clash} of hetero.plots.{name} are already registered by another module")
        REGISTRY[name] = FigureKind(name, order, dict(headings), jobs)
        return jobs

    return register


def registered() -> list[FigureKind]:
    return sorted(REGISTRY.values(), key=lambda k: (k.order, k.name))


def missing(stem: str, kind: str, reason: str) -> FigureJob:
    """A figure the run cannot have: listed in `skipped` with the reason."""

    def draw():
        raise Skip(reason)

    return FigureJob(stem, kind, stem, draw)


def each_document(ctx: FigureContext, doc_type: str, kind: str, title: Callable[[dict], str],
                  plot: Callable[[dict, str], tuple[Figure, dict]], stem: Callable[[dict], str] | None = None,
                  absent: str | None = None) -> Iterator[FigureJob]:
    """One figure per document of `doc_type`, drawn by plot(doc, colour of its model); stem
    '<kind>_<system>_<label>' unless given. `absent`: why the run has none (else no entry in `skipped`)."""
    docs = ctx.run.of(doc_type)
    if not docs and absent:
        yield missing(kind, kind, absent)
    for d in docs:
        yield FigureJob(stem(d) if stem else slug(kind, d["system"], d.get("label") or "host"), kind, title(d),
                        lambda d=d: plot(d, ctx.colour(d)))


# ------------------------------------------------------------------------------------------ helpers


def slug(*parts: str) -> str:
    s = "_".join(str(p) for p in parts if p not in (None, ""))
    s = s.replace("@", "_at_").replace("->", "_to_")
    return re.sub(r"[^A-Za-z0-9.\-]+", "_", s).strip("_") or "x"


def entity(doc: dict) -> str:
    """The model a document belongs to: 'system:label' (adsorption docs: 'system:ion@site')."""
    if doc.get("doc_type") in ("adsorption", "coverage"):
        return f"{doc.get('system', '')}:{doc.get('ion', '')}@{doc.get('site', '')}"
    if doc.get("doc_type") == "neb":
        return f"{doc.get('system', '')}:host"
    return f"{doc.get('system', '')}:{doc.get('label') or 'host'}"


def colour_map(run: RunData) -> dict[str, str]:
    """One colour per model, fixed by sorted name, shared by every figure of the run."""
    keys = set()
    for docs in run.docs.values():
        for d in docs:
            if d.get("doc_type") == "model":
                keys.add(f"{d.get('system', '')}:host")
            else:
                keys.add(entity(d))
    host = (run.models or {}).get("host") or {}
    if host.get("system"):
        keys.add(f"{host['system']}:host")
    return {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(sorted(keys))}


def colour_of(colours: dict[str, str] | None, key: str) -> str:
    if colours and key in colours:
        return colours[key]
    return PALETTE[sum(map(ord, key)) % len(PALETTE)]


def element_colour(symbol: str) -> tuple:
    try:
        from ase.data import atomic_numbers
        from ase.data.colors import jmol_colors

        return tuple(float(x) for x in jmol_colors[atomic_numbers[symbol]])
    except Exception:  # noqa: BLE001
        return (0.5, 0.5, 0.5)


def covalent_radius(symbol: str) -> float:
    try:
        from ase.data import atomic_numbers, covalent_radii

        return float(covalent_radii[atomic_numbers[symbol]])
    except Exception:  # noqa: BLE001
        return 1.0


def new_figure(w: float, h: float) -> Figure:
    return Figure(figsize=(w, h), layout="constrained")


def save_figure(fig: Figure, out_dir: Path, stem: str) -> list[Path]:
    """PNG (fixed DPI) and vector PDF, without creation dates (same input -> same bytes)."""
    import logging

    logging.getLogger("fontTools").setLevel(logging.ERROR)  # font subsetting chatter ('timestamp seems very low')
    out_dir.mkdir(parents=True, exist_ok=True)
    png, pdf = out_dir / f"{stem}.png", out_dir / f"{stem}.pdf"
    with matplotlib.rc_context(STYLE):
        fig.savefig(png, dpi=DPI, metadata={"Software": f"matplotlib {matplotlib.__version__} (hetero)"})
        fig.savefig(pdf, metadata={"CreationDate": None, "ModDate": None})
    return [png, pdf]


def single_ion(ads_docs: list[dict]) -> list[dict]:
    """Adsorption documents of one ion per cell (a coverage series' n > 1 results have their own figure)."""
    return [d for d in ads_docs if int(d.get("n_ions", 1) or 1) == 1]


def structure_from_dict(d: dict | None):
    """A pymatgen Structure from a document's structure dict; None when absent or unreadable."""
    if not d:
        return None
    from pymatgen.core import Structure

    try:
        return Structure.from_dict(d)
    except Exception:  # noqa: BLE001
        return None


def calc_for(run: RunData, system: str, label: str) -> dict | None:
    """The calculation of one model (a static one first: it holds the reported energy and density)."""
    cands = [c for c in run.of("calc") if c.get("system") == system and (c.get("label") or "host") == (label or "host")]
    cands.sort(key=lambda c: 0 if c.get("step") == "static" else 1)
    return cands[0] if cands else None


def load_grid(path: Path, key: str) -> tuple[np.ndarray, np.ndarray]:
    """Array `key` and the cell of a grid file (.npz)."""
    with np.load(path) as data:
        if key not in data:
            raise Skip(f"{path} has no '{key}' array (has {sorted(data.files)})")
        return np.asarray(data[key], float), np.asarray(data["cell"], float)


def recorded_grid(run: RunData, recorded: str | None, key: str, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Array `key` and the cell of a grid file a document recorded (found under a moved run folder too)."""
    path = run.resolve(recorded)
    if path is None:
        raise Skip(f"{what} file {recorded!r} not found")
    return load_grid(path, key)
