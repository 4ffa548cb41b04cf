"""Charge density difference: plane-integrated profile, a 2D slice through the ion, and isosurfaces."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hetero.plots.core import (
    ACCUMULATION,
    DEPLETION,
    ISOVALUE_DEFAULT,
    PALETTE,
    FigureContext,
    FigureJob,
    RunData,
    Skip,
    calc_for,
    covalent_radius,
    element_colour,
    entity,
    figure_kind,
    missing,
    new_figure,
    recorded_grid,
    slug,
    structure_from_dict,
)
from hetero.plots.grids import draw_atoms_near_plane, grid_slice, isosurfaces, z_window


def plot_cdd_profile(doc: dict, colour: str = PALETTE[0]):
    """Plane-integrated delta rho (e/A) and the charge-displacement curve (e) along the stacking axis."""
    z = np.asarray(doc["z_A"], float)
    prof = np.asarray(doc["planar_avg_e_per_A"], float)
    disp = np.asarray(doc["displacement_e"], float)
    zi = float(doc["interface_z_A"])
    q = None if doc.get("transferred_e") is None else float(doc["transferred_e"])
    fig = new_figure(4.6, 4.6)
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
    if q is None:  # B inside A (an intercalated ion): no plane separates them
        b, a = (names[-1], names[0]) if names else ("B", "A")
        txt = f"{b} at z = {zi:.2f} $\\AA$, inside {a}:\nno separating plane (see the Bader split)"
    else:
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



def _focus_point(run: RunData | None, doc: dict) -> tuple[np.ndarray | None, Any]:
    """Cartesian point the slice goes through: the ion (fragment of one atom) or fragment B's centre."""
    st = None
    if run is not None:
        calc = calc_for(run, doc.get("system", ""), doc.get("label", ""))
        st = structure_from_dict(calc.get("structure")) if calc else None
    if st is None:
        return None, None
    frags = doc.get("fragments") or {}
    small = sorted(frags.values(), key=len)
    idx = small[0] if small else [len(st) - 1]
    return st.cart_coords[list(idx)].mean(axis=0), st



def plot_cdd_slice(grid: np.ndarray, cell: np.ndarray, point=None, structure=None, title: str = "",
                   zlim: tuple[float, float] | None = None):
    """2D slice of delta rho (e/A^3), diverging colour map centred at 0."""
    from matplotlib.colors import TwoSlopeNorm

    X, Z, plane, fb, reps = grid_slice(grid, cell, point)
    vmax = float(np.abs(plane).max()) or 1e-6
    fig = new_figure(4.8, 5.2)
    ax = fig.add_subplot()
    mesh = ax.pcolormesh(X, Z, plane, cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -vmax, vmax), shading="gouraud",
                         rasterized=True)
    draw_atoms_near_plane(ax, structure, cell, fb, reps)
    if zlim:
        ax.set_ylim(*zlim)
    ax.set_xlim(float(X.min()), float(X.max()))  # atoms at the edges would widen the axes past the slice
    ax.set_aspect("equal")
    ax.set_xlabel(r"x along $\mathbf{a}$ ($\AA$)")
    ax.set_ylabel(r"z ($\AA$)")
    ax.set_title(title + f"\nplane through b = {fb:.3f} (contains the ion and the surface normal)")
    cb = fig.colorbar(mesh, ax=ax, shrink=0.8)
    cb.set_label(r"$\Delta\rho$ (e/$\AA^3$)  red: accumulation, blue: depletion")
    return fig, {"fb": fb, "vmin": -vmax, "vmax": vmax, "min": float(plane.min()), "max": float(plane.max())}



def plot_cdd_iso(grid: np.ndarray, cell: np.ndarray, isovalue: float = ISOVALUE_DEFAULT, structure=None,
                 title: str = "", elev: float = 12.0, azim: float = -60.0, min_width_A: float = 6.0):
    """Accumulation (yellow) / depletion (cyan) isosurfaces at +-isovalue with the atoms."""
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    ra = max(1, min(3, int(math.ceil(min_width_A / max(np.linalg.norm(cell[0]), 1e-6)))))
    rb = max(1, min(3, int(math.ceil(min_width_A / max(np.linalg.norm(cell[1]), 1e-6)))))
    zlo, zhi = z_window(structure, cell)
    surf = isosurfaces(grid, cell, isovalue, repeat=(ra, rb), z_window=(zlo, zhi))
    if all(v is None for v in surf.values()):
        raise Skip(f"no |delta rho| above the isovalue {isovalue} e/A^3 (range {grid.min():.4g} .. {grid.max():.4g});"
                   " use a smaller --isovalue")
    fig = new_figure(5.0, 5.6)
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



@figure_kind(order=60, headings={"cdd_profile": "Charge density difference: planar average",
                                 "cdd_slice": "Charge density difference: 2D slice",
                                 "cdd_iso": "Charge density difference: isosurfaces"})
def jobs(ctx: FigureContext):
    run = ctx.run
    cdds = run.of("cdd")
    if not cdds:
        for kind in ("cdd_profile", "cdd_slice", "cdd_iso"):
            yield missing(kind, kind, "no CDD documents in the store (step 'cdd' not run or failed)")
    for d in cdds:
        ent = entity(d)
        yield FigureJob(slug("cdd_profile", d["system"], d.get("label")), "cdd_profile", f"CDD profile {ent}",
                        lambda d=d: plot_cdd_profile(d, ctx.colour(d)))

        def draw_slice(d=d, ent=ent):
            grid, cell = recorded_grid(run, (d.get("files") or {}).get("grid"), "delta", "CDD grid")
            point, st = _focus_point(run, d)
            return plot_cdd_slice(grid, cell, point, st, title=f"CDD {ent}", zlim=z_window(st, cell))

        def draw_iso(d=d, ent=ent):
            grid, cell = recorded_grid(run, (d.get("files") or {}).get("grid"), "delta", "CDD grid")
            _, st = _focus_point(run, d)
            return plot_cdd_iso(grid, cell, ctx.isovalue, st, title=f"CDD {ent}")

        yield FigureJob(slug("cdd_slice", d["system"], d.get("label")), "cdd_slice", f"CDD slice {ent}", draw_slice)
        yield FigureJob(slug("cdd_iso", d["system"], d.get("label")), "cdd_iso", f"CDD isosurfaces {ent}", draw_iso)
