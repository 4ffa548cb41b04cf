"""Electron localisation function: a 2D slice through the last atom (the ion of an adsorption model)."""

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



@figure_kind(order=70, headings={"elf": "Electron localisation function"})
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
