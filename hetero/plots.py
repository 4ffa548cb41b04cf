"""Figures of a campaign, redrawn from the store alone (no recomputation).

`make_figures(run_folder)` reads `<run>/store.json` (+ `campaign.json`, `models.json` when present) and
writes PNG and PDF copies of every figure it can draw into `<run>/figures/`; what it cannot draw
(missing documents, missing grid files, nothing above the isovalue ...) is listed in `skipped` with the
reason, never raised. Each `plot_*` function takes documents (dicts) and returns
`(Figure, values)`: `values` are the numbers that were plotted, so tests can compare them with the
documents. Figures are built on `matplotlib.figure.Figure` (no pyplot state) inside a fixed
`rc_context` and saved with fixed DPI and without creation dates, so the same store gives the same files.

Colours: one colour per model ("system:label", e.g. "VN(001)-fast:host", "VN(001)-fast:Na@top-V"),
assigned once per run in sorted order and used by every figure; elements use Jmol colours.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

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


# ------------------------------------------------------------------------------------------ loading


@dataclass
class RunData:
    folder: Path | None
    docs: dict[str, list[dict]] = field(default_factory=dict)  # doc_type -> documents (sorted)
    campaign: dict = field(default_factory=dict)
    models: dict = field(default_factory=dict)
    envelopes: dict[int, dict] = field(default_factory=dict)  # id(doc) -> jobflow uuid/name
    failed_jobs: list[str] = field(default_factory=list)  # job names whose output is empty

    def of(self, doc_type: str) -> list[dict]:
        return self.docs.get(doc_type, [])


def _unwrap(raw: Any) -> list[dict]:
    if not isinstance(raw, dict):
        return []
    if "doc_type" in raw:
        return [raw]
    out = raw.get("output")
    if isinstance(out, dict) and "doc_type" in out:
        return [out]
    items = out.values() if isinstance(out, dict) else out if isinstance(out, list) else []
    return [o for o in items if isinstance(o, dict) and "doc_type" in o]


def _raw_entries(source: Any) -> list[dict]:
    if isinstance(source, (str, Path)):
        p = Path(source)
        if p.is_dir():
            p = p / "store.json"
        if not p.exists():
            raise FileNotFoundError(f"no store at {p}: give a run folder holding store.json (hetero run writes it)")
        try:
            from hetero.table import iter_documents

            return list(iter_documents(p))
        except Exception:  # noqa: BLE001 - table module absent or changed: read the JSON list ourselves
            data = json.loads(p.read_text() or "[]")
            return data if isinstance(data, list) else [data]
    if hasattr(source, "query") and hasattr(source, "connect"):
        try:
            source.connect()
        except Exception:  # noqa: BLE001 - already connected
            pass
        return list(source.query())
    out = []
    for d in source:
        out.append(d.model_dump() if hasattr(d, "model_dump") else d)
    return out


def _sort_key(d: dict) -> tuple:
    return (str(d.get("system", "")), str(d.get("label", "")), str(d.get("ion", "")), str(d.get("site", "")),
            str(d.get("path", "")), str(d.get("step", "")))


def load_run(source: Any, campaign: dict | None = None, models: dict | None = None) -> RunData:
    """Documents of a run folder / store file / Store / list of documents, grouped by doc_type.

    Duplicate entries of one job (jobflow keeps an `index` per replaced run) keep the newest.
    """
    folder = None
    if isinstance(source, (str, Path)):
        p = Path(source)
        folder = p if p.is_dir() else p.parent
    raws = _raw_entries(source)
    newest: dict[str, dict] = {}
    plain: list[dict] = []
    for r in raws:
        if isinstance(r, dict) and r.get("uuid") and "doc_type" not in r:
            u = r["uuid"]
            if u not in newest or (r.get("index") or 0) >= (newest[u].get("index") or 0):
                newest[u] = r
        else:
            plain.append(r)
    run = RunData(folder=folder)
    for r in list(newest.values()) + plain:
        docs = _unwrap(r)
        if not docs and isinstance(r, dict) and r.get("uuid") and r.get("output") is None:
            run.failed_jobs.append(str(r.get("name", r["uuid"])))
        for d in docs:
            run.docs.setdefault(d["doc_type"], []).append(d)
            run.envelopes[id(d)] = {"uuid": r.get("uuid", ""), "name": r.get("name", "")}
    for k in run.docs:
        run.docs[k].sort(key=_sort_key)
    run.failed_jobs.sort()
    if folder is not None:
        for attr, name in (("campaign", "campaign.json"), ("models", "models.json")):
            f = folder / name
            if f.exists():
                try:
                    setattr(run, attr, json.loads(f.read_text()))
                except json.JSONDecodeError:
                    pass
    if campaign is not None:
        run.campaign = campaign
    if models is not None:
        run.models = models
    return run


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


def _colour(colours: dict[str, str] | None, key: str) -> str:
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


def _new_figure(w: float, h: float) -> Figure:
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


def _resolve(path: str | None, run: RunData | None) -> Path | None:
    """A file recorded in a document; if the run folder moved, look for the same tail under it."""
    if not path:
        return None
    p = Path(path)
    if p.exists():
        return p
    if run is not None and run.folder is not None:
        parts = p.parts
        for i in range(1, len(parts)):
            cand = run.folder / Path(*parts[i:])
            if cand.exists():
                return cand
    return None


def _structure(d: dict | None):
    if not d:
        return None
    from pymatgen.core import Structure

    try:
        return Structure.from_dict(d)
    except Exception:  # noqa: BLE001
        return None


def _calc_for(run: RunData, system: str, label: str) -> dict | None:
    cands = [c for c in run.of("calc") if c.get("system") == system and (c.get("label") or "host") == (label or "host")]
    cands.sort(key=lambda c: 0 if c.get("step") == "static" else 1)
    return cands[0] if cands else None


# ------------------------------------------------------------------------------------------ DOS


def plot_dos(doc: dict, colour: str = PALETTE[0], erange: tuple[float, float] = (-8.0, 5.0)):
    """Total DOS plus per-element (left) and per-fragment (right) projections, E_F at 0."""
    e = np.asarray(doc["energies_eV"], float)
    total = np.asarray(doc["total"], float)
    proj = doc.get("projected") or {}
    elements = {k: np.asarray(v, float) for k, v in sorted(proj.items()) if not k.startswith("fragment:")}
    frags = {k.split(":", 1)[1]: np.asarray(v, float) for k, v in sorted(proj.items()) if k.startswith("fragment:")}
    lo, hi = max(erange[0], float(e.min())), min(erange[1], float(e.max()))
    sel = (e >= lo) & (e <= hi)
    ncol = 2 if frags else 1
    fig = _new_figure(3.4 * ncol + 0.4, 3.0)
    axes = [fig.add_subplot(1, ncol, i + 1) for i in range(ncol)]
    panels = [("per element", elements)] + ([("per fragment", frags)] if frags else [])
    frag_colours = ["#e6550d", "#3182bd", "#31a354", "#756bb1", "#636363"]
    ymax = float(total[sel].max()) if sel.any() else 1.0
    for ax, (title, parts) in zip(axes, panels):
        ax.fill_between(e[sel], 0, total[sel], color=colour, alpha=0.25, lw=0)
        ax.plot(e[sel], total[sel], color=colour, label="total", lw=1.2)
        for i, (name, arr) in enumerate(parts.items()):
            c = element_colour(name) if title == "per element" else frag_colours[i % len(frag_colours)]
            if title == "per element" and sum(c) > 2.7:  # white-ish (H): darken
                c = (0.4, 0.4, 0.4)
            ax.plot(e[sel], arr[sel], color=c, label=name, lw=1.0)
        ax.axvline(0.0, color="k", ls="--", lw=0.8)
        ax.text(0.02, 0.97, "$E_F$ = 0", transform=ax.transAxes, va="top", fontsize=7)
        ax.set_xlim(lo, hi)
        ax.set_ylim(0, ymax * 1.08 if ymax > 0 else 1)
        ax.set_xlabel("E - E$_F$ (eV)")
        ax.set_ylabel("DOS (states/eV/cell)")
        ax.set_title(f"{doc.get('system', '')} {doc.get('label', '')}: {title}")
        ax.legend(loc="upper right", frameon=False)
    gap = doc.get("band_gap_eV")
    axes[0].text(0.02, 0.88, "metallic" if doc.get("is_metal") else f"gap {gap:.2f} eV", transform=axes[0].transAxes,
                 va="top", fontsize=7, gid="gap")
    values = {"energies_eV": e.tolist(), "total": total.tolist(), "elements": {k: v.tolist() for k, v in elements.items()},
              "fragments": {k: v.tolist() for k, v in frags.items()}, "fermi_at": 0.0}
    return fig, values


def plot_dos_overlay(docs: list[dict], colours: dict[str, str], erange=(-8.0, 5.0)):
    """Total DOS of every model of the run on one axis (one colour per model)."""
    fig = _new_figure(5.0, 3.2)
    ax = fig.add_subplot()
    values = {}
    for d in docs:
        e = np.asarray(d["energies_eV"], float)
        t = np.asarray(d["total"], float)
        sel = (e >= erange[0]) & (e <= erange[1])
        ax.plot(e[sel], t[sel], color=_colour(colours, entity(d)), label=entity(d))
        values[entity(d)] = float(d.get("dos_at_fermi", np.nan))
    ax.axvline(0.0, color="k", ls="--", lw=0.8)
    ax.set_xlabel("E - E$_F$ (eV)")
    ax.set_ylabel("DOS (states/eV/cell)")
    ax.set_title("Total DOS, E$_F$ at 0")
    ax.legend(frameon=False)
    return fig, values


# ------------------------------------------------------------------------------------------ CDD


def plot_cdd_profile(doc: dict, colour: str = PALETTE[0]):
    """Plane-integrated delta rho (e/A) and the charge-displacement curve (e) along the stacking axis."""
    z = np.asarray(doc["z_A"], float)
    prof = np.asarray(doc["planar_avg_e_per_A"], float)
    disp = np.asarray(doc["displacement_e"], float)
    zi, q = float(doc["interface_z_A"]), float(doc["transferred_e"])
    fig = _new_figure(4.6, 4.6)
    ax1 = fig.add_subplot(2, 1, 1)
    ax2 = fig.add_subplot(2, 1, 2, sharex=ax1)
    ax1.fill_between(z, 0, prof, where=prof >= 0, color=ACCUMULATION, alpha=0.8, lw=0, label="accumulation")
    ax1.fill_between(z, 0, prof, where=prof < 0, color=DEPLETION, alpha=0.8, lw=0, label="depletion")
    ax1.plot(z, prof, color=colour, lw=1.0)
    ax1.axhline(0, color="k", lw=0.5)
    ax1.set_ylabel(r"$\Delta\rho(z)$ plane-integrated (e/$\AA$)")
    ax1.legend(frameon=False, loc="upper left")
    ax2.plot(z, disp, color=colour, label=r"$\Delta Q(z)=\int_0^z \Delta\rho\,dz'$")
    ax2.axhline(0, color="k", lw=0.5)
    ax2.set_ylabel(r"charge displacement $\Delta Q$ (e)")
    ax2.set_xlabel(r"z ($\AA$)")
    for ax in (ax1, ax2):
        ax.axvline(zi, color="k", ls="--", lw=0.8)
    names = list((doc.get("fragments") or {}).keys())
    direction = ""
    if len(names) == 2:
        a, b = (names[0], names[1]) if q >= 0 else (names[1], names[0])
        direction = f"\n(+ = {names[0]} -> {names[1]}): {abs(q):.3f} e moved {a} -> {b}"
    txt = f"interface z = {zi:.2f} $\\AA$\ntransferred = {q:+.3f} e{direction}"
    ax2.annotate(txt, xy=(zi, float(np.interp(zi, z, disp))), xytext=(0.03, 0.95), textcoords="axes fraction",
                 va="top", fontsize=7, arrowprops={"arrowstyle": "->", "lw": 0.6}, gid="transferred")
    ax2.legend(frameon=False, loc="lower right")
    ax1.set_title(f"CDD {doc.get('system', '')} {doc.get('label', '')}")
    return fig, {"z_A": z.tolist(), "planar_avg_e_per_A": prof.tolist(), "displacement_e": disp.tolist(),
                 "interface_z_A": zi, "transferred_e": q}


def _load_grid(path: Path, key: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path) as data:
        if key not in data:
            raise Skip(f"{path} has no '{key}' array (has {sorted(data.files)})")
        return np.asarray(data[key], float), np.asarray(data["cell"], float)


def _focus_point(run: RunData | None, doc: dict) -> tuple[np.ndarray | None, Any]:
    """Cartesian point the slice goes through: the ion (fragment of one atom) or fragment B's centre."""
    st = None
    if run is not None:
        calc = _calc_for(run, doc.get("system", ""), doc.get("label", ""))
        st = _structure(calc.get("structure")) if calc else None
    if st is None:
        return None, None
    frags = doc.get("fragments") or {}
    small = sorted(frags.values(), key=len)
    idx = small[0] if small else [len(st) - 1]
    return st.cart_coords[list(idx)].mean(axis=0), st


def grid_slice(grid: np.ndarray, cell: np.ndarray, point: np.ndarray | None, min_width_A: float = 6.0):
    """Vertical plane spanned by lattice vector a and the c axis through `point` (nearest grid plane in b).

    Returns (X, Z, values) in Cartesian A (X along a, Z along z), tiled along a to at least `min_width_A`,
    and the fractional b of the plane.
    """
    nx, ny, nz = grid.shape
    fb = 0.5 if point is None else float(np.linalg.solve(cell.T, point)[1]) % 1.0
    j = int(round(fb * ny)) % ny
    plane = grid[:, j, :]
    reps = max(1, int(math.ceil(min_width_A / max(np.linalg.norm(cell[0]), 1e-6))))
    plane = np.tile(plane, (reps, 1))
    plane = np.concatenate([plane, plane[:1], ], axis=0)  # periodic closing column
    plane = np.concatenate([plane, plane[:, :1]], axis=1)
    fa = np.arange(nx * reps + 1) / nx
    fc = np.arange(nz + 1) / nz
    FA, FC = np.meshgrid(fa, fc, indexing="ij")
    pts = FA[..., None] * cell[0] + (j / ny) * cell[1] + FC[..., None] * cell[2]
    ahat = cell[0][:2] / max(np.linalg.norm(cell[0][:2]), 1e-9)
    X = pts[..., 0] * ahat[0] + pts[..., 1] * ahat[1]
    Z = pts[..., 2]
    return X, Z, plane, j / ny, reps


def _atoms_near_plane(ax, st, cell, fb: float, reps: int, tol_A: float = 1.2):
    if st is None:
        return
    bn = np.cross(cell[2], cell[0])
    bn /= np.linalg.norm(bn)
    ahat = cell[0][:2] / max(np.linalg.norm(cell[0][:2]), 1e-9)
    plane_pt = fb * cell[1]
    for site in st:
        for ia in range(-1, reps + 1):
            for ib in (-1, 0, 1):
                r = site.coords + ia * cell[0] + ib * cell[1]
                if abs(np.dot(r - plane_pt, bn)) > tol_A:
                    continue
                x = r[0] * ahat[0] + r[1] * ahat[1]
                if x < -0.3 or x > reps * np.linalg.norm(cell[0]) + 0.3:
                    continue
                sym = site.specie.symbol
                ax.scatter([x], [r[2]], s=60 * covalent_radius(sym), color=element_colour(sym), edgecolor="k", lw=0.5,
                           zorder=3)
                ax.annotate(sym, (x, r[2]), fontsize=6, ha="center", va="center", zorder=4)


def plot_cdd_slice(grid: np.ndarray, cell: np.ndarray, point=None, structure=None, title: str = "",
                   zlim: tuple[float, float] | None = None):
    """2D slice of delta rho (e/A^3), diverging colour map centred at 0."""
    from matplotlib.colors import TwoSlopeNorm

    X, Z, plane, fb, reps = grid_slice(grid, cell, point)
    vmax = float(np.abs(plane).max()) or 1e-6
    fig = _new_figure(4.8, 5.2)
    ax = fig.add_subplot()
    mesh = ax.pcolormesh(X, Z, plane, cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -vmax, vmax), shading="gouraud",
                         rasterized=True)
    _atoms_near_plane(ax, structure, cell, fb, reps)
    if zlim:
        ax.set_ylim(*zlim)
    ax.set_aspect("equal")
    ax.set_xlabel(r"x along $\mathbf{a}$ ($\AA$)")
    ax.set_ylabel(r"z ($\AA$)")
    ax.set_title(title + f"\nplane through b = {fb:.3f} (contains the ion and the surface normal)")
    cb = fig.colorbar(mesh, ax=ax, shrink=0.8)
    cb.set_label(r"$\Delta\rho$ (e/$\AA^3$)  red: accumulation, blue: depletion")
    return fig, {"fb": fb, "vmin": -vmax, "vmax": vmax, "min": float(plane.min()), "max": float(plane.max())}


def _z_window(structure, cell, pad: float = 4.0) -> tuple[float, float]:
    if structure is None:
        return 0.0, float(cell[2][2])
    z = structure.cart_coords[:, 2]
    return max(0.0, float(z.min()) - pad), min(float(cell[2][2]), float(z.max()) + pad)


def isosurfaces(grid: np.ndarray, cell: np.ndarray, isovalue: float, max_faces: int = 60000,
                repeat: tuple[int, int] = (1, 1), z_window: tuple[float, float] | None = None):
    """Marching-cubes meshes (Cartesian vertices, faces) of +iso and -iso on the periodic grid.

    The grid is repeated `repeat` times in-plane (periodic closure across cell faces) and cropped to
    `z_window` (A) along c; returns {"accumulation": (verts, faces) | None, "depletion": ...}.
    """
    from skimage.measure import marching_cubes

    nx, ny, nz = grid.shape
    ra, rb = repeat
    big = np.tile(grid, (ra, rb, 1))
    big = np.pad(big, ((0, 1), (0, 1), (0, 0)), mode="wrap")
    k0, k1 = 0, nz
    if z_window is not None:
        cz = float(cell[2][2]) or 1.0
        k0 = max(0, int(math.floor(z_window[0] / cz * nz)))
        k1 = min(nz, int(math.ceil(z_window[1] / cz * nz)) + 1)
    if k1 >= nz:
        big = np.pad(big, ((0, 0), (0, 0), (0, 1)), mode="wrap")
        k1 = nz + 1
    sub = big[:, :, k0:k1]
    out = {}
    for sign, level in (("accumulation", isovalue), ("depletion", -isovalue)):
        if (level > 0 and sub.max() < level) or (level < 0 and sub.min() > level) or min(sub.shape) < 2:
            out[sign] = None
            continue
        step = 1
        while True:
            verts, faces, _, _ = marching_cubes(sub, level=level, step_size=step, allow_degenerate=False)
            if len(faces) <= max_faces or step >= 4:
                break
            step += 1
        frac = (verts + np.array([0.0, 0.0, k0])) / np.array([nx, ny, nz], float)
        out[sign] = (frac @ cell, faces)
    return out


def plot_cdd_iso(grid: np.ndarray, cell: np.ndarray, isovalue: float = ISOVALUE_DEFAULT, structure=None,
                 title: str = "", elev: float = 12.0, azim: float = -60.0, min_width_A: float = 6.0):
    """Accumulation (yellow) / depletion (cyan) isosurfaces at +-isovalue with the atoms."""
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    ra = max(1, min(3, int(math.ceil(min_width_A / max(np.linalg.norm(cell[0]), 1e-6)))))
    rb = max(1, min(3, int(math.ceil(min_width_A / max(np.linalg.norm(cell[1]), 1e-6)))))
    zlo, zhi = _z_window(structure, cell)
    surf = isosurfaces(grid, cell, isovalue, repeat=(ra, rb), z_window=(zlo, zhi))
    if all(v is None for v in surf.values()):
        raise Skip(f"no |delta rho| above the isovalue {isovalue} e/A^3 (range {grid.min():.4g} .. {grid.max():.4g});"
                   " use a smaller --isovalue")
    fig = _new_figure(5.0, 5.6)
    ax = fig.add_subplot(projection="3d")
    counts = {}
    for sign, colour in (("accumulation", ACCUMULATION), ("depletion", DEPLETION)):
        mesh = surf[sign]
        counts[sign] = 0 if mesh is None else int(len(mesh[1]))
        if mesh is None:
            continue
        verts, faces = mesh
        pc = Poly3DCollection(verts[faces], facecolor=colour, edgecolor="none", alpha=0.55)
        ax.add_collection3d(pc)
    if structure is not None:
        shifts = [i * cell[0] + j * cell[1] for i in range(ra) for j in range(rb)]
        xyz = np.concatenate([structure.cart_coords + sh for sh in shifts])
        syms = [s.specie.symbol for s in structure] * len(shifts)
        ax.scatter(xyz[:, 0], xyz[:, 1], xyz[:, 2], s=[80 * covalent_radius(s) for s in syms],
                   c=[element_colour(s) for s in syms], edgecolor="k", linewidth=0.4, depthshade=False)
    corners = np.array([[i, j, k] for i in (0, ra) for j in (0, rb) for k in (0, 1)], float) @ cell
    corners[:, 2] = np.clip(corners[:, 2], zlo, zhi)
    for a in range(8):
        for b in range(a + 1, 8):
            if bin(a ^ b).count("1") == 1:
                ax.plot(*zip(corners[a], corners[b]), color="0.5", lw=0.5)
    ax.set_xlim(corners[:, 0].min(), corners[:, 0].max())
    ax.set_ylim(corners[:, 1].min(), corners[:, 1].max())
    ax.set_zlim(zlo, zhi)
    ext = [np.ptp(corners[:, 0]) or 1, np.ptp(corners[:, 1]) or 1, (zhi - zlo) or 1]
    ax.set_box_aspect(ext)
    ax.view_init(elev=elev, azim=azim)
    ax.set_xlabel(r"x ($\AA$)")
    ax.set_ylabel(r"y ($\AA$)")
    ax.set_zlabel(r"z ($\AA$)")
    ax.set_title(f"{title} ({ra}x{rb} cells)\nisovalue {isovalue:g} e/$\\AA^3$: yellow accumulation, cyan depletion")
    ax.locator_params(nbins=4)
    return fig, {"isovalue": isovalue, "faces": counts, "repeat": [ra, rb]}


def plot_elf_slice(elf: np.ndarray, cell: np.ndarray, point=None, structure=None, title: str = ""):
    X, Z, plane, fb, reps = grid_slice(elf, cell, point)
    fig = _new_figure(4.8, 5.2)
    ax = fig.add_subplot()
    mesh = ax.pcolormesh(X, Z, plane, cmap="viridis", vmin=0.0, vmax=1.0, shading="gouraud", rasterized=True)
    _atoms_near_plane(ax, structure, cell, fb, reps)
    ax.set_ylim(*_z_window(structure, cell))
    ax.set_aspect("equal")
    ax.set_xlabel(r"x along $\mathbf{a}$ ($\AA$)")
    ax.set_ylabel(r"z ($\AA$)")
    ax.set_title(f"{title}\nELF, plane through b = {fb:.3f}")
    fig.colorbar(mesh, ax=ax, shrink=0.8).set_label("ELF (dimensionless)")
    return fig, {"fb": fb, "max": float(plane.max())}


# ------------------------------------------------------------------------------------------ Bader


def plot_bader(doc: dict, colour: str = PALETTE[0]):
    """Net Bader charge per atom (bars coloured by element) and per fragment."""
    q = np.asarray(doc["net_charge"], float)
    syms = list(doc["symbols"])
    fc = doc.get("fragment_charge") or {}
    ncol = 2 if fc else 1
    many = len(q) > 60
    fig = _new_figure(min(12.0, 3.6 + 2.4 * (ncol - 1) + 0.08 * len(q)), 3.0)
    gs = fig.add_gridspec(1, ncol, width_ratios=[max(3, len(q)), 2][:ncol])
    ax = fig.add_subplot(gs[0, 0])
    x = np.arange(len(q))
    ax.bar(x, q, color=[element_colour(s) for s in syms], edgecolor="k", lw=0.4)
    if not many:
        ax.set_xticks(x, [f"{s}{i}" for i, s in enumerate(syms)], rotation=90, fontsize=6)
    else:
        from matplotlib.patches import Patch

        ax.legend(handles=[Patch(color=element_colour(el), label=el) for el in sorted(set(syms))], frameon=False)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_ylabel("net Bader charge (e)\n+ = electrons lost")
    ax.set_xlabel("atom (index in the structure)")
    ax.set_title(f"Bader {doc.get('system', '')} {doc.get('label', '')}")
    values = {"net_charge": q.tolist(), "fragment_charge": {k: float(v) for k, v in fc.items()}}
    if fc:
        ax2 = fig.add_subplot(gs[0, 1])
        names = list(fc)
        vals = [float(fc[n]) for n in names]
        bars = ax2.bar(names, vals, color=colour, edgecolor="k", lw=0.4)
        for b, v in zip(bars, vals):
            ax2.annotate(f"{v:+.3f}", (b.get_x() + b.get_width() / 2, v), ha="center",
                         va="bottom" if v >= 0 else "top", fontsize=7)
        ax2.axhline(0, color="k", lw=0.5)
        ax2.set_ylabel("fragment net charge (e)")
        ax2.set_title("per fragment")
        lim = max(abs(v) for v in vals) * 1.3 or 1
        ax2.set_ylim(-lim, lim)
    return fig, values


# ------------------------------------------------------------------------------------------ adsorption


def adsorption_bars(ads_docs: list[dict], published: dict[str, float] | None = None,
                    published_reference: str = "reference not stated") -> list[dict]:
    """The bars of the adsorption figure: site, source, reference state, value (eV)."""
    bars = []
    def order(site: str) -> tuple:
        ours = [d.get("e_ads_bulk_eV") if d.get("e_ads_bulk_eV") is not None else d.get("e_ads_atom_eV")
                for d in ads_docs if d["site"] == site]
        ours = [v for v in ours if v is not None]
        return (0, min(ours), site) if ours else (1, (published or {}).get(site) or 0.0, site)

    sites = sorted({d["site"] for d in ads_docs} | set((published or {}).keys()), key=order)
    for s in sites:
        for d in [d for d in ads_docs if d["site"] == s]:
            for ref, key in (("bulk metal", "e_ads_bulk_eV"), ("isolated atom", "e_ads_atom_eV")):
                if d.get(key) is not None:
                    bars.append({"site": s, "source": "this work", "reference": ref, "value": float(d[key]),
                                 "entity": entity(d)})
        if published and published.get(s) is not None:
            bars.append({"site": s, "source": "published (literature)", "reference": published_reference,
                         "value": float(published[s]), "entity": ""})
    return bars


def plot_adsorption(ads_docs: list[dict], published: dict[str, float] | None = None,
                    colours: dict[str, str] | None = None, published_reference: str = "reference not stated",
                    title: str = ""):
    """E_ads per site: this work (each reference state) beside the published values, every bar labelled."""
    bars = adsorption_bars(ads_docs, published, published_reference)
    if not bars:
        raise Skip("no adsorption energies (neither bulk-metal nor isolated-atom reference) in the store")
    sites = list(dict.fromkeys(b["site"] for b in bars))
    fig = _new_figure(1.8 + 1.3 * len(sites), 4.6)
    ax = fig.add_subplot()
    width = 0.26
    ticks, labels, centres = [], [], []
    for i, s in enumerate(sites):
        group = [b for b in bars if b["site"] == s]
        centres.append(i)
        for k, b in enumerate(group):
            x = i + (k - (len(group) - 1) / 2) * width
            ours = b["source"] == "this work"
            col = _colour(colours, b["entity"]) if ours else PUBLISHED_COLOUR
            hatch = REF_HATCH.get(b["reference"], "") if ours else REF_HATCH["published"]
            ax.bar(x, b["value"], width * 0.95, color=col, hatch=hatch, edgecolor="k", lw=0.5)
            ax.annotate(f"{b['value']:.3f}", (x, b["value"]), ha="center", va="top" if b["value"] < 0 else "bottom",
                        fontsize=6, xytext=(0, -2 if b["value"] < 0 else 2), textcoords="offset points")
            ticks.append(x)
            labels.append(("this work: " if ours else "published: ") + b["reference"])
            b["x"] = x
    # every bar names its source and reference state (tick labels); the sites label the groups on top
    ax.set_xticks(ticks, labels, rotation=90, fontsize=6)
    for t in ax.get_xticklabels():
        t.set_gid("bar-label")
    top = ax.secondary_xaxis("top")
    top.set_xticks(centres, sites)
    top.set_xlabel("adsorption site")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_ylabel(r"$E_{ads}$ (eV per ion), negative = favourable")
    lo = min(b["value"] for b in bars)
    hi = max(b["value"] for b in bars)
    span = max(hi, 0) - min(lo, 0) or 1.0
    ax.set_ylim(min(lo, 0) - 0.12 * span, max(hi, 0) + 0.12 * span)
    ax.set_xlim(-0.6, len(sites) - 0.4)
    from matplotlib.patches import Patch

    handles = [Patch(facecolor="white", edgecolor="k", hatch=REF_HATCH["bulk metal"], label="this work, ref. bulk metal"),
               Patch(facecolor="white", edgecolor="k", hatch=REF_HATCH["isolated atom"],
                     label="this work, ref. isolated atom"),
               Patch(facecolor=PUBLISHED_COLOUR, edgecolor="k", hatch=REF_HATCH["published"],
                     label=f"published (literature), {published_reference}")]
    ax.legend(handles=handles, frameon=True, framealpha=0.9, loc="best", fontsize=6)
    ax.set_title(title or "Adsorption energy per site")
    return fig, {"bars": bars}


def single_ion(ads_docs: list[dict]) -> list[dict]:
    return [d for d in ads_docs if int(d.get("n_ions", 1) or 1) == 1]


def plot_ocv(doc: dict, colour: str = PALETTE[0]):
    """Left: average E_ads per ion vs number of ions. Right: the voltage profile (steps vs the metal anode)."""
    n = doc["n_ions"]
    fig = _new_figure(8.0, 3.6)
    ax1, ax2 = fig.subplots(1, 2)
    for key, ref, mk in (("e_ads_avg_bulk_eV", "bulk metal", "o"), ("e_ads_avg_atom_eV", "isolated atom", "s")):
        pts = [(k, v) for k, v in zip(n, doc.get(key) or []) if v is not None]
        if pts:
            ax1.plot(*zip(*pts), marker=mk, color=colour, ls="-" if ref == "bulk metal" else "--",
                     label=f"ref. {ref}")
            for k, v in pts:
                ax1.annotate(f"{v:.3f}", (k, v), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax1.axhline(0, color="k", lw=0.6)
    ax1.set_xlabel(f"{doc['ion']} ions in the cell ({doc['host_formula']})")
    ax1.set_ylabel(r"average $E_{ads}$ (eV per ion)")
    ax1.set_xticks([k for k in n if k > 0])
    ax1.legend(fontsize=6)
    v = doc.get("step_voltage_V") or []
    if v:
        cap = dict(zip(n, doc.get("capacity_mAh_g") or []))
        for lo, hi, volt in zip(doc["step_n_lo"], doc["step_n_hi"], v):
            x0, x1 = cap.get(lo), cap.get(hi)
            if x0 is None or x1 is None:
                x0, x1 = lo, hi
            ax2.plot([x0, x1], [volt, volt], color=colour, lw=2)
            ax2.annotate(f"{lo}->{hi}: {volt:.2f} V", ((x0 + x1) / 2, volt), ha="center", fontsize=6,
                         xytext=(0, 3), textcoords="offset points")
        for (lo, hi, a), b in zip(zip(doc["step_n_lo"], doc["step_n_hi"], v), v[1:]):
            x = cap.get(hi, hi)
            ax2.plot([x, x], [a, b], color=colour, lw=1)
        ax2.axhline(0, color="k", lw=0.6)
        ax2.set_xlabel("capacity (mAh/g of the host cell)" if cap else "ions in the cell")
        ax2.set_ylabel(f"voltage vs {doc['ion']}/{doc['ion']}$^+$ (V)")
    else:
        ax2.text(0.5, 0.5, "no bulk-metal reference:\nno voltage", ha="center", va="center", transform=ax2.transAxes)
        ax2.set_axis_off()
    note = f"site {doc['site']}; series ends: {doc.get('stopped_because') or 'as requested'}"
    fig.suptitle(f"{doc['ion']} coverage series on {doc['system']}\n{note}", fontsize=7)
    return fig, {"n_ions": n, "step_voltage_V": v}


# ------------------------------------------------------------------------------------------ NEB


def neb_warnings(doc: dict) -> list[str]:
    """What looks wrong in a NEB document (its numbers are still plotted as stored)."""
    e = np.asarray(doc.get("energies_eV") or [0.0], float)
    se = np.asarray(doc.get("spline_e_eV") or [], float)
    barrier = float(doc.get("barrier_eV", 0.0))
    out = []
    if len(se) and abs(float(se[0]) - float(e[0])) > 0.05:
        out.append(f"spline starts {float(se[0]) - float(e[0]):+.3f} eV away from the first image: the document's "
                   "spline (and a barrier taken from it) is inconsistent with its images")
    img_barrier = float(e.max() - e[0])
    if abs(barrier - img_barrier) > max(1.0, 2 * abs(img_barrier)):
        out.append(f"barrier_eV {barrier:.3f} far from the image maximum {img_barrier:.3f} eV")
    if not doc.get("converged", True):
        out.append("CI-NEB not converged")
    return out


def plot_neb(doc: dict, colour: str = PALETTE[0]):
    """Images (points), spline (line), barrier annotated with NebDoc.barrier_eV."""
    x = np.asarray(doc["reaction_coord_A"], float)
    e = np.asarray(doc["energies_eV"], float)
    sx = np.asarray(doc.get("spline_x_A") or [], float)
    se = np.asarray(doc.get("spline_e_eV") or [], float)
    barrier = float(doc["barrier_eV"])
    fig = _new_figure(4.4, 3.2)
    ax = fig.add_subplot()
    if len(sx):
        ax.plot(sx, se, color=colour, lw=1.3, label="spline")
    ax.plot(x, e, "o", color=colour, mec="k", mew=0.6, ms=6, label="images", zorder=3)
    top_x = float(sx[np.argmax(se)]) if len(se) else float(x[np.argmax(e)])
    top_e = float(e[0] + barrier)
    ax.annotate("", xy=(top_x, top_e), xytext=(top_x, e[0]), arrowprops={"arrowstyle": "<->", "lw": 0.8})
    ax.axhline(e[0], color="0.6", lw=0.6, ls=":")
    right = top_x > (float(x.min()) + float(x.max())) / 2
    ax.text(top_x, (e[0] + top_e) / 2, f"  $E_a$ = {barrier:.3f} eV" + ("  " if right else ""), va="center",
            ha="right" if right else "left", fontsize=8, gid="barrier")
    warnings = neb_warnings(doc)
    if warnings:
        ax.text(0.02, 0.03, "WARNING:\n" + "\n".join(w.split(":")[0] for w in warnings), transform=ax.transAxes,
                fontsize=6, color="#b00000", va="bottom", gid="warning")
    conv = "" if doc.get("converged", True) else " (NOT converged)"
    ax.set_title(f"CI-NEB {doc.get('ion', '')} {doc.get('path', '')} on {doc.get('system', '')}{conv}")
    ax.set_xlabel(r"reaction coordinate ($\AA$)")
    ax.set_ylabel("E - E$_{initial}$ (eV)")
    ax.legend(frameon=False, loc="best")
    return fig, {"barrier_eV": barrier, "images_x": x.tolist(), "images_e": e.tolist(),
                 "spline_x": sx.tolist(), "spline_e": se.tolist(), "converged": bool(doc.get("converged", True)),
                 "warnings": warnings}


# ------------------------------------------------------------------------------------------ screening


def screening_points(run: RunData) -> tuple[list[dict], list[str]]:
    """One point per (system, ion): most favourable E_ads (bulk-metal reference if any) and lowest barrier."""
    strain: dict[str, float | None] = {}
    for m in run.of("model"):
        strain[m["system"]] = m.get("strain_percent")
    host = (run.models or {}).get("host") or {}
    if host.get("system") and host["system"] not in strain:
        strain[host["system"]] = host.get("strain_percent")
    pts, notes = [], []
    keys = sorted({(d["system"], d["ion"]) for d in run.of("adsorption")} | {(d["system"], d["ion"]) for d in run.of("neb")})
    for system, ion in keys:
        ads = [d for d in single_ion(run.of("adsorption")) if d["system"] == system and d["ion"] == ion]
        nebs = [d for d in run.of("neb") if d["system"] == system and d["ion"] == ion]
        ref, vals = "bulk metal", [(d["e_ads_bulk_eV"], d["site"]) for d in ads if d.get("e_ads_bulk_eV") is not None]
        if not vals:
            ref, vals = "isolated atom", [(d["e_ads_atom_eV"], d["site"]) for d in ads if d.get("e_ads_atom_eV") is not None]
        if not vals:
            notes.append(f"{system} + {ion}: no adsorption energy")
            continue
        if not nebs:
            notes.append(f"{system} + {ion}: no NEB barrier")
            continue
        e_ads, site = min(vals)
        nb = min(nebs, key=lambda d: d["barrier_eV"])
        pts.append({"system": system, "ion": ion, "e_ads_eV": float(e_ads), "site": site, "reference": ref,
                    "barrier_eV": float(nb["barrier_eV"]), "path": nb["path"], "strain_percent": strain.get(system),
                    "warnings": neb_warnings(nb)})
    return pts, notes


def plot_screening(points: list[dict], colours: dict[str, str] | None = None):
    if not points:
        raise Skip("screening map needs at least one system with both an adsorption energy and an NEB barrier")
    from matplotlib.colors import Normalize

    fig = _new_figure(4.8, 3.8)
    ax = fig.add_subplot()
    strains = [p["strain_percent"] for p in points if p["strain_percent"] is not None]
    norm = Normalize(0.0, max(strains + [1.0]))
    cmap = matplotlib.colormaps["viridis"]
    for p in points:
        ec = _colour(colours, f"{p['system']}:host")
        if p["strain_percent"] is None:
            ax.scatter(p["e_ads_eV"], p["barrier_eV"], s=70, facecolor="white", edgecolor=ec, lw=1.5, hatch="///")
        else:
            ax.scatter(p["e_ads_eV"], p["barrier_eV"], s=70, color=cmap(norm(p["strain_percent"])), edgecolor=ec, lw=1.5)
        ax.annotate(f"{p['system']} + {p['ion']}\n({p['site']}, {p['path']})", (p["e_ads_eV"], p["barrier_eV"]),
                    xytext=(5, 5), textcoords="offset points", fontsize=6)
    sm = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=ax).set_label("interface strain (%, von Mises)")
    if any(p["strain_percent"] is None for p in points):
        ax.text(0.02, 0.02, "open hatched marker: strain not applicable (single slab)", transform=ax.transAxes,
                fontsize=6, color="0.3")
    refs = sorted({p["reference"] for p in points})
    ax.set_xlabel(f"most favourable $E_{{ads}}$ (eV), ref. {' / '.join(refs)}")
    ax.set_ylabel("lowest migration barrier (eV)")
    ax.set_title("Screening map: binding vs mobility")
    flagged = [f"{p['system']} + {p['ion']} ({p['path']}): {w}" for p in points for w in p.get("warnings", [])]
    if flagged:
        n_bad = sum(1 for p in points if p.get("warnings"))
        ax.text(0.02, 0.98, f"WARNING: {n_bad} barrier(s) flagged (plotted as stored; see the NEB figures)",
                transform=ax.transAxes, fontsize=6, color="#b00000", va="top", gid="warning")
        for p in points:
            if p.get("warnings"):
                ax.annotate("!", (p["e_ads_eV"], p["barrier_eV"]), xytext=(-9, -3), textcoords="offset points",
                            color="#b00000", fontsize=10, fontweight="bold")
    xs = [p["e_ads_eV"] for p in points]
    ys = [p["barrier_eV"] for p in points]
    ax.set_xlim(min(xs) - 0.5, max(xs) + 0.5)
    ax.set_ylim(min(0.0, min(ys) - 0.1), max(ys) * 1.3 + 0.1)
    return fig, {"points": points, "warnings": flagged}


# ------------------------------------------------------------------------------------------ views


def _neb_ion_path(run: RunData, neb: dict) -> tuple[np.ndarray | None, str]:
    """Ion positions along the band: from the NEB run's result.json images, else the straight endpoints."""
    rd = _resolve((neb.get("provenance") or {}).get("run_dir"), run)
    if rd is not None and (rd / "result.json").exists():
        try:
            res = json.loads((rd / "result.json").read_text())
            ims = res.get("images") or []
            if ims:
                return np.array([im["positions"][-1] for im in ims], float), "images (result.json)"
        except Exception:  # noqa: BLE001
            pass
    a, _, b = str(neb.get("path", "")).partition("->")
    ends = []
    for site in (a, b):
        d = next((x for x in run.of("adsorption") if x["system"] == neb["system"] and x["site"] == site), None)
        st = _structure(d.get("structure")) if d else None
        if st is None:
            return None, "endpoints not in the store"
        ends.append(st.cart_coords[-1])
    return np.array(ends), "straight line between endpoints (images not found)"


def plot_structure(structure, title: str = "", sites: list[dict] | None = None, path: np.ndarray | None = None,
                   min_width_A: float = 8.0):
    """Top (xy) and side (xz) views, cell repeated in-plane to >= min_width_A; sites as crosses, path as a line."""
    from matplotlib.patches import Circle, Polygon

    cell = structure.lattice.matrix
    ra = max(1, min(4, int(math.ceil(min_width_A / np.linalg.norm(cell[0])))))
    rb = max(1, min(4, int(math.ceil(min_width_A / np.linalg.norm(cell[1])))))
    fig = _new_figure(8.0, 4.2)
    axt = fig.add_subplot(1, 2, 1)
    axs = fig.add_subplot(1, 2, 2)
    atoms = []
    for i in range(ra):
        for j in range(rb):
            shift = i * cell[0] + j * cell[1]
            for s in structure:
                atoms.append((s.coords + shift, s.specie.symbol))
    for ax, (h, v, depth) in ((axt, (0, 1, 2)), (axs, (0, 2, 1))):
        order = sorted(range(len(atoms)), key=lambda k: atoms[k][0][depth] * (1 if depth == 2 else -1))
        for k in order:
            r, sym = atoms[k]
            ax.add_patch(Circle((r[h], r[v]), 0.45 * covalent_radius(sym) + 0.25, facecolor=element_colour(sym),
                                edgecolor="k", lw=0.4))
        ax.set_aspect("equal")
    poly = np.array([[0, 0], cell[0][:2], (cell[0] + cell[1])[:2], cell[1][:2]])
    axt.add_patch(Polygon(poly, closed=True, fill=False, ec="0.3", lw=0.8, ls="--"))
    allxyz = np.array([a[0] for a in atoms])
    pad = 1.5
    axt.set_xlim(allxyz[:, 0].min() - pad, allxyz[:, 0].max() + pad)
    axt.set_ylim(allxyz[:, 1].min() - pad, allxyz[:, 1].max() + pad)
    axs.set_xlim(allxyz[:, 0].min() - pad, allxyz[:, 0].max() + pad)
    axs.set_ylim(allxyz[:, 2].min() - 2.5, allxyz[:, 2].max() + 3.5)
    values: dict[str, Any] = {"n_atoms": len(structure), "repeat": [ra, rb], "sites": [], "path": None}
    for k, s in enumerate(sites or []):
        c = np.asarray(s["cart_coords"], float)
        mk = ["X", "P", "*", "D", "s", "^"][k % 6]
        for ax, (h, v) in ((axt, (0, 1)), (axs, (0, 2))):
            ax.scatter([c[h]], [c[v]], marker=mk, s=60, color=PALETTE[k % len(PALETTE)], edgecolor="k", lw=0.5, zorder=5,
                       label=s["label"] if ax is axt else None)
        values["sites"].append(s["label"])
    if path is not None and len(path):
        for ax, (h, v) in ((axt, (0, 1)), (axs, (0, 2))):
            ax.plot(path[:, h], path[:, v], "-o", color="#d62728", ms=3, lw=1.4, zorder=6,
                    label="NEB path" if ax is axt else None)
        values["path"] = path.tolist()
    if sites or path is not None:
        axt.legend(frameon=True, fontsize=6, loc="upper right")
    axt.set_xlabel(r"x ($\AA$)")
    axt.set_ylabel(r"y ($\AA$)")
    axt.set_title("top view")
    axs.set_xlabel(r"x ($\AA$)")
    axs.set_ylabel(r"z ($\AA$)")
    axs.set_title("side view")
    fig.suptitle(title, fontsize=9)
    return fig, values


def plot_workfunction(doc: dict, colour: str = PALETTE[0]):
    z = np.asarray(doc["z_A"], float)
    v = np.asarray(doc["planar_potential_eV"], float)
    fig = _new_figure(4.6, 3.2)
    ax = fig.add_subplot()
    ax.plot(z, v, color=colour, label="planar-averaged potential")
    ax.axhline(doc["fermi_eV"], color="k", ls="--", lw=0.8, label="E$_F$")
    if doc.get("vacuum_top_eV") is not None:
        ax.axhline(doc["vacuum_top_eV"], color="0.5", ls=":", lw=0.8, label="vacuum level (top)")
    if doc.get("vacuum_bottom_eV") is not None:
        ax.axhline(doc["vacuum_bottom_eV"], color="0.3", ls="-.", lw=0.7, label="vacuum level (bottom)")

    def _fmt(v):  # a side whose vacuum never flattened has no work function
        return "n/a (no flat vacuum)" if v is None else f"{v:.3f} eV"

    ax.text(0.02, 0.05, f"$\\Phi_{{top}}$ = {_fmt(doc['work_function_top_eV'])}\n"
            f"$\\Phi_{{bottom}}$ = {_fmt(doc['work_function_bottom_eV'])}", transform=ax.transAxes, fontsize=7,
            gid="workfunction")
    ax.set_xlabel(r"z ($\AA$)")
    ax.set_ylabel("electrostatic potential energy (eV)")
    ax.set_title(f"Work function {doc.get('system', '')} {doc.get('label', '')}")
    ax.legend(frameon=False, fontsize=6, loc="center right")
    return fig, {"work_function_top_eV": doc["work_function_top_eV"],
                 "work_function_bottom_eV": doc["work_function_bottom_eV"]}


# ------------------------------------------------------------------------------------------ driver


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


def _figure_jobs(run: RunData, colours: dict[str, str], isovalue: float) -> Iterable[tuple[str, str, str, Any]]:
    """(stem, kind, title, thunk) of every figure this run could have; the thunk may raise Skip."""
    dos = run.of("dos")
    for d in dos:
        yield (slug("dos", d["system"], d.get("label") or "host"), "dos", f"DOS {entity(d)}",
               lambda d=d: plot_dos(d, _colour(colours, entity(d))))
    if len(dos) > 1:
        yield "dos_total_all", "dos", "Total DOS of all models", lambda: plot_dos_overlay(dos, colours)
    if not dos:
        yield "dos", "dos", "DOS", lambda: _raise("no DOS documents in the store (step 'dos' not run or failed)")

    cdds = run.of("cdd")
    if not cdds:
        for kind in ("cdd_profile", "cdd_slice", "cdd_iso"):
            yield kind, kind, kind, lambda: _raise("no CDD documents in the store (step 'cdd' not run or failed)")
    for d in cdds:
        ent = entity(d)
        yield (slug("cdd_profile", d["system"], d.get("label")), "cdd_profile", f"CDD profile {ent}",
               lambda d=d, ent=ent: plot_cdd_profile(d, _colour(colours, ent)))

        def grid_of(d=d):
            p = _resolve((d.get("files") or {}).get("grid"), run)
            if p is None:
                raise Skip(f"CDD grid file {(d.get('files') or {}).get('grid')!r} not found")
            return _load_grid(p, "delta")

        def slice_thunk(d=d, ent=ent, grid_of=grid_of):
            g, cell = grid_of()
            point, st = _focus_point(run, d)
            return plot_cdd_slice(g, cell, point, st, title=f"CDD {ent}", zlim=_z_window(st, cell))

        def iso_thunk(d=d, ent=ent, grid_of=grid_of):
            g, cell = grid_of()
            _, st = _focus_point(run, d)
            return plot_cdd_iso(g, cell, isovalue, st, title=f"CDD {ent}")

        yield slug("cdd_slice", d["system"], d.get("label")), "cdd_slice", f"CDD slice {ent}", slice_thunk
        yield slug("cdd_iso", d["system"], d.get("label")), "cdd_iso", f"CDD isosurfaces {ent}", iso_thunk

    elf_calcs = [c for c in run.of("calc") if (c.get("files") or {}).get("elf")]
    if not elf_calcs:
        yield "elf", "elf", "ELF", lambda: _raise("no calculation wrote an 'elf' file (static step output 'elf' not requested)")
    for c in elf_calcs:
        def elf_thunk(c=c):
            p = _resolve(c["files"]["elf"], run)
            if p is None:
                raise Skip(f"ELF file {c['files']['elf']!r} not found")
            elf, cell = _load_grid(p, "elf")
            if elf.ndim == 4:  # spin channels first: show their mean
                elf = elf.mean(axis=0)
            st = _structure(c.get("structure"))
            point = st.cart_coords[-1] if st is not None else None
            return plot_elf_slice(elf, cell, point, st, title=f"ELF {entity(c)}")

        yield slug("elf", c["system"], c.get("label")), "elf", f"ELF {entity(c)}", elf_thunk

    bader = run.of("bader")
    if not bader:
        yield "bader", "bader", "Bader", lambda: _raise("no Bader documents in the store (step 'bader' not run or failed)")
    for d in bader:
        yield (slug("bader", d["system"], d.get("label") or "host"), "bader", f"Bader charges {entity(d)}",
               lambda d=d: plot_bader(d, _colour(colours, entity(d))))

    ads = single_ion(run.of("adsorption"))  # coverage-series results (n > 1) have their own figure
    published = ((run.campaign or {}).get("published") or {})
    pub_e = published.get("e_ads_eV") or {}
    pub_ref = published.get("e_ads_reference") or "reference not stated"
    if not ads:
        yield "adsorption", "adsorption", "Adsorption", lambda: _raise("no adsorption documents in the store")
    for system, ion in sorted({(d["system"], d["ion"]) for d in ads}):
        group = [d for d in ads if d["system"] == system and d["ion"] == ion]
        yield (slug("adsorption", system, ion), "adsorption", f"Adsorption energy of {ion} on {system}",
               lambda g=group, s=system, i=ion: plot_adsorption(g, pub_e, colours, pub_ref,
                                                               title=f"{i} on {s}: adsorption energy per site"))

    for d in run.of("coverage"):
        yield (slug("ocv", d["system"], d["ion"], d["site"]), "ocv",
               f"Coverage series and voltage profile of {d['ion']} at {d['site']} on {d['system']}",
               lambda d=d: plot_ocv(d, _colour(colours, entity(d))))

    nebs = run.of("neb")
    if not nebs:
        yield "neb", "neb", "NEB", lambda: _raise("no NEB documents in the store (step 'neb' not run, failed, or fewer than 2 distinct sites)")
    for d in nebs:
        yield (slug("neb", d["system"], d["ion"], d["path"]), "neb", f"CI-NEB {d['ion']} {d['path']} on {d['system']}",
               lambda d=d: plot_neb(d, _colour(colours, entity(d))))

    def screening():
        pts, notes = screening_points(run)
        if not pts:
            raise Skip("; ".join(notes) or "no adsorption or NEB results")
        return plot_screening(pts, colours)

    yield "screening_map", "screening", "Screening map (E_ads vs barrier, coloured by strain)", screening
    wfs = run.of("work_function")
    for d in wfs:
        yield (slug("workfunction", d["system"], d.get("label") or "host"), "workfunction", f"Work function {entity(d)}",
               lambda d=d: plot_workfunction(d, _colour(colours, entity(d))))
    yield from _structure_jobs(run)


def _structure_jobs(run: RunData):
    host_model = (run.models or {}).get("host") or {}
    sites = (run.models or {}).get("sites") or []
    systems = sorted({d["system"] for docs in run.docs.values() for d in docs if d.get("system")}
                     | ({host_model["system"]} if host_model.get("system") else set()))
    seen = False
    for system in systems:
        calc = _calc_for(run, system, "host")
        st = _structure(calc.get("structure")) if calc else None
        src = "relaxed (store)"
        if st is None and host_model.get("system") == system:
            st, src = _structure(host_model.get("structure")), "as built (models.json)"
        if st is None:
            model = next((m for m in run.of("model") if m["system"] == system), None)
            st, src = (_structure(model.get("structure")), "as built (store)") if model else (None, "")
        if st is None:
            continue
        if any(d["system"] == system for d in run.of("adsorption")) and not calc and not host_model:
            continue
        nebs = [n for n in run.of("neb") if n["system"] == system]
        site_list = sites if host_model.get("system") == system else []
        seen = True

        def host_thunk(st=st, system=system, site_list=site_list, nebs=nebs, src=src):
            path, how = (None, "")
            if nebs:
                path, how = _neb_ion_path(run, nebs[0])
            title = f"{system} host, {src}" + (f"; NEB {nebs[0]['path']}: {how}" if nebs and path is not None else "")
            return plot_structure(st, title, site_list, path)

        yield slug("model", system, "host"), "model", f"Model {system} with sites and NEB path", host_thunk
    for d in run.of("adsorption"):
        st = _structure(d.get("structure"))
        if st is None:
            continue
        seen = True
        site = next(([s] for s in sites if s.get("label") == d["site"]), [])
        yield (slug("model", d["system"], f"{d['ion']}@{d['site']}"), "model", f"Model {entity(d)}",
               lambda st=st, d=d, site=site: plot_structure(st, f"{entity(d)} (relaxed)", site, None))
    if not seen:
        yield "model", "model", "Models", lambda: _raise("no structures: neither models.json nor calculations in the store")


def _raise(msg: str):
    raise Skip(msg)


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
    colours = colour_map(run)
    wanted = set(kinds) if kinds else None
    with matplotlib.rc_context(STYLE):
        for stem, kind, title, thunk in _figure_jobs(run, colours, isovalue):
            if wanted and kind not in wanted:
                continue
            try:
                fig, values = thunk()
            except Skip as exc:
                result.skipped.append((stem, str(exc)))
                if echo:
                    echo(f"skipped {stem}: {exc}")
                continue
            except Exception as exc:  # noqa: BLE001 - one bad document must not stop the other figures
                result.skipped.append((stem, f"error: {type(exc).__name__}: {exc}"))
                if echo:
                    echo(f"skipped {stem}: error {type(exc).__name__}: {exc}")
                continue
            for w in (values or {}).get("warnings") or []:
                result.warnings.append((stem, w))
                if echo:
                    echo(f"warning {stem}: {w}")
            files = save_figure(fig, out, stem)
            result.figures[stem] = {"kind": kind, "title": title, "files": [str(p) for p in files], "values": values}
            if echo:
                echo(f"wrote {stem}.png/.pdf")
    for name in run.failed_jobs:
        result.skipped.append((f"job '{name}'", "job stored no document (failed, or nothing to report, e.g. a work function without vacuum)"))
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
    # figures of an earlier drawing that this store no longer supports are removed (only the kinds redrawn now)
    for stem, info in old.items():
        if stem not in manifest and (wanted is None or info.get("kind") in wanted):
            for name in info.get("files", []):
                if Path(name).name == name:
                    (out / name).unlink(missing_ok=True)
    if wanted is not None:  # partial redraw: keep the other kinds' entries
        manifest = {**{k: v for k, v in old.items() if v.get("kind") not in wanted}, **manifest}
    (out / "figures.json").write_text(json.dumps({"figures": manifest, "skipped": result.skipped,
                                                  "warnings": result.warnings,
                                                  "isovalue_e_per_A3": isovalue}, indent=1))
    return result
