"""Electron localisation function: a 2D slice through the last atom (the ion of an adsorption model), and an
interface's ELF before/after (its fragments side by side vs the junction) on a slice through its shortest contact."""

from __future__ import annotations

import numpy as np

from hetero.plots.core import (FigureContext, FigureJob, entity, figure_kind, missing, new_figure, recorded_grid, slug,
                                structure_from_dict)
from hetero.plots.grids import draw_atoms_near_plane, grid_slice, z_window


def plot_elf_slice(elf: np.ndarray, cell: np.ndarray, point=None, structure=None, title: str = ""):
    X, Z, plane, fb, reps = grid_slice(elf, cell, point)
    fig = new_figure(4.8, 5.2)
    ax = fig.add_subplot()
    mesh = ax.pcolormesh(X, Z, plane, cmap="viridis", vmin=0.0, vmax=1.0, shading="gouraud", rasterized=True)
    draw_atoms_near_plane(ax, structure, cell, fb, reps)
    ax.set_ylim(*z_window(structure, cell))
    ax.set_xlim(float(X.min()), float(X.max()))  # atoms at the edges would widen the axes past the slice
    ax.set_aspect("equal")
    ax.set_xlabel(r"x along $\mathbf{a}$ ($\AA$)")
    ax.set_ylabel(r"z ($\AA$)")
    ax.set_title(f"{title}\nELF, plane through b = {fb:.3f}")
    fig.colorbar(mesh, ax=ax, shrink=0.8).set_label("ELF (dimensionless)")
    return fig, {"fb": fb, "max": float(plane.max())}


def plot_elf_change(doc: dict, before: np.ndarray, after: np.ndarray, cell: np.ndarray, structure=None,
                    title: str = ""):
    """Before | after | after - before on one slice through the shortest contact, and the plane-averaged ELF."""
    point = np.asarray(doc["slice_point_A"], float)
    fig = new_figure(11.0, 5.6)
    axes = fig.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1, 1, 0.8]})
    zlim = z_window(structure, cell)
    fb = 0.0
    for ax, grid, name in ((axes[0], before, "before (fragments side by side)"), (axes[1], after, "after (junction)"),
                           (axes[2], after - before, "after - before")):
        X, Z, plane, fb, reps = grid_slice(grid, cell, point)
        diff = name.startswith("after -")
        mesh = ax.pcolormesh(X, Z, plane, cmap="RdBu_r" if diff else "viridis", vmin=-0.5 if diff else 0.0,
                             vmax=0.5 if diff else 1.0, shading="gouraud", rasterized=True)
        draw_atoms_near_plane(ax, structure, cell, fb, reps)
        ax.axhline(doc["interface_z_A"], color="w" if not diff else "k", ls="--", lw=0.6)
        ax.set_ylim(*zlim)
        ax.set_xlim(float(X.min()), float(X.max()))
        ax.set_aspect("equal")
        ax.set_xlabel(r"x along $\mathbf{a}$ ($\AA$)")
        ax.set_title(name, fontsize=9)
        fig.colorbar(mesh, ax=ax, shrink=0.7, location="bottom").set_label("ELF" if not diff else r"$\Delta$ELF")
    axes[0].set_ylabel(r"z ($\AA$)")
    z = np.asarray(doc["z_A"], float)
    ax = axes[3]
    ax.plot(doc["planar_before"], z, label="before", color="0.4")
    ax.plot(doc["planar_after"], z, label="after", color="C3")
    ax.axhline(doc["interface_z_A"], color="k", ls="--", lw=0.6)
    ax.set_ylim(*zlim)
    ax.set_xlabel("plane-averaged ELF")
    ax.legend(frameon=False, fontsize=8)
    contacts = doc.get("contacts") or []
    if contacts:
        c = contacts[0]
        ax.set_title(f"shortest contact {c['pair']} {c['distance_A']:.2f} $\\AA$:\nELF at its midpoint "
                     f"{c['elf_before']:.2f} -> {c['elf_after']:.2f}", fontsize=8)
    fig.suptitle(f"{title}\nslice through b = {fb:.3f} (the shortest contact across the interface); method gap "
                 f"{doc['method_gap']:.3f}", fontsize=9)
    return fig, {"fb": fb, "n_contacts": len(contacts)}


@figure_kind(order=70, headings={"elf": "Electron localisation function",
                                  "elf_change": "ELF before/after the interface forms"})
def jobs(ctx: FigureContext):
    calcs = [c for c in ctx.run.of("calc") if (c.get("files") or {}).get("elf")]
    if not calcs:
        yield missing("elf", "elf", "no calculation wrote an 'elf' file (static step output 'elf' not requested)")
    for c in calcs:
        def draw(c=c):
            elf, cell = recorded_grid(ctx.run, c["files"]["elf"], "elf", "ELF")
            if elf.ndim == 4:  # spin channels first: show their mean
                elf = elf.mean(axis=0)
            st = structure_from_dict(c.get("structure"))
            point = st.cart_coords[-1] if st is not None else None
            return plot_elf_slice(elf, cell, point, st, title=f"ELF {entity(c)}")

        yield FigureJob(slug("elf", c["system"], c.get("label")), "elf", f"ELF {entity(c)}", draw)
    yield from _change_jobs(ctx)


def _change_jobs(ctx: FigureContext):
    docs = ctx.run.of("elf_change")
    interface = any(len(d.get("fragments") or {}) == 2 and d.get("label") == "host" for d in ctx.run.of("cdd"))
    has_elf = any((c.get("files") or {}).get("elf") for c in ctx.run.of("calc"))
    if not docs and interface and has_elf:
        yield missing("elf_change", "elf_change", "no ELF before/after of the interface (the `elf` step on an engine "
                                                  "that writes the kinetic-energy density: GPAW)")
    for d in docs:
        def draw(d=d):
            before, cell = recorded_grid(ctx.run, d["files"]["before"], "elf", "ELF before")
            after, _ = recorded_grid(ctx.run, d["files"]["after"], "elf", "ELF after")
            if after.ndim == 4:
                after = after.mean(axis=0)
            calc = next((c for c in ctx.run.of("calc") if c.get("label") == d.get("label")
                         and c.get("system") == d.get("system") and (c.get("files") or {}).get("elf")), None)
            st = structure_from_dict(calc.get("structure")) if calc else None
            return plot_elf_change(d, before, after, cell, st, title=f"ELF before/after {d['system']}")

        yield FigureJob(slug("elf_change", d["system"], d.get("label")), "elf_change",
                        f"ELF before/after {d['system']}", draw)
