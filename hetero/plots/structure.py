"""Models: top and side views of every host (with the adsorption sites and the NEB path) and of every
relaxed adsorption model."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hetero.plots.core import (
    PALETTE,
    FigureContext,
    FigureJob,
    RunData,
    calc_for,
    covalent_radius,
    element_colour,
    figure_kind,
    missing,
    new_figure,
    single_ion,
    slug,
    structure_from_dict,
)


def neb_ion_path(run: RunData, neb: dict) -> tuple[np.ndarray | None, str]:
    """Positions (A) of the moving ion along the band: the NEB document's images, or (stores written
    before NebDoc held them) the straight line between the two endpoint adsorption models."""
    images = neb.get("image_ion_positions_A")
    if images:
        return np.asarray(images, float), "images"
    a, _, b = str(neb.get("path", "")).partition("->")
    ends = []
    for site in (a, b):
        d = next((x for x in single_ion(run.of("adsorption"))
                  if x["system"] == neb["system"] and x["ion"] == neb["ion"] and x["site"] == site), None)
        st = structure_from_dict(d.get("structure")) if d else None
        if st is None:
            return None, "endpoints not in the store"
        ends.append(st.cart_coords[-1])
    return np.array(ends), "straight line, no images stored"


def plot_structure(structure, title: str = "", sites: list[dict] | None = None, path: np.ndarray | None = None,
                   min_width_A: float = 8.0):
    """Top (xy) and side (xz) views, cell repeated in-plane to >= min_width_A; sites as crosses, path as a line."""
    from matplotlib.patches import Circle, Polygon

    cell = structure.lattice.matrix
    ra = max(1, min(4, int(math.ceil(min_width_A / np.linalg.norm(cell[0])))))
    rb = max(1, min(4, int(math.ceil(min_width_A / np.linalg.norm(cell[1])))))
    fig = new_figure(8.0, 4.2)
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



def _host_structure(run: RunData, system: str):
    """(structure, where it came from) of a system's host: relaxed in the store, else as built."""
    host_model = (run.models or {}).get("host") or {}
    calc = calc_for(run, system, "host")
    st = structure_from_dict(calc.get("structure")) if calc else None
    if st is not None:
        return st, "relaxed (store)"
    if host_model.get("system") == system:
        st = structure_from_dict(host_model.get("structure"))
        if st is not None:
            return st, "as built (models.json)"
    model = next((m for m in run.of("model") if m["system"] == system), None)
    return (structure_from_dict(model.get("structure")), "as built (store)") if model else (None, "")


@figure_kind(order=100, headings={"model": "Models, sites and paths"})
def jobs(ctx: FigureContext):
    run = ctx.run
    host_model = (run.models or {}).get("host") or {}
    sites = (run.models or {}).get("sites") or []
    systems = sorted({d["system"] for docs in run.docs.values() for d in docs if d.get("system")}
                     | ({host_model["system"]} if host_model.get("system") else set()))
    seen = False
    for system in systems:
        st, src = _host_structure(run, system)
        if st is None:
            continue
        if any(d["system"] == system for d in run.of("adsorption")) and not calc_for(run, system, "host") \
                and not host_model:
            continue  # an adsorption-only store: the relaxed adsorption models below show the host
        nebs = [n for n in run.of("neb") if n["system"] == system]
        site_list = sites if host_model.get("system") == system else []
        seen = True

        def draw_host(st=st, system=system, site_list=site_list, nebs=nebs, src=src):
            path, how = (None, "")
            if nebs:
                path, how = neb_ion_path(run, nebs[0])
            title = f"{system} host, {src}" + (f"; NEB {nebs[0]['path']}: {how}" if nebs and path is not None else "")
            return plot_structure(st, title, site_list, path)

        yield FigureJob(slug("model", system, "host"), "model", f"Model {system} with sites and NEB path", draw_host)
    for d in run.of("adsorption"):
        st = structure_from_dict(d.get("structure"))
        if st is None:
            continue
        seen = True
        n = int(d.get("n_ions", 1) or 1)
        what = f"{'' if n == 1 else n}{d['ion']}@{d['site']}"  # a coverage model has its own file
        site = next(([s] for s in sites if s.get("label") == d["site"]), [])
        yield FigureJob(slug("model", d["system"], what), "model", f"Model {d['system']}:{what}",
                        lambda st=st, d=d, site=site, what=what: plot_structure(
                            st, f"{d['system']}:{what} (relaxed)", site, None))
    if not seen:
        yield missing("model", "model", "no structures: neither models.json nor calculations in the store")
