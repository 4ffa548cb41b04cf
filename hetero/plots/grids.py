"""Volumetric grids on screen, shared by the CDD and ELF figures: a vertical slice through a point,
the atoms near that slice, the z window that holds the slab, and isosurfaces on the periodic grid."""

from __future__ import annotations

import math

import numpy as np

from hetero.plots.core import covalent_radius, element_colour


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


def draw_atoms_near_plane(ax, st, cell, fb: float, reps: int, tol_A: float = 1.2):
    """Atoms within tol_A of the slice plane (and their periodic copies in view), coloured by element."""
    if st is None:
        return
    bn = np.cross(cell[2], cell[0])
    bn /= np.linalg.norm(bn)
    ahat = cell[0][:2] / max(np.linalg.norm(cell[0][:2]), 1e-9)
    plane_pt = fb * cell[1]
    # the slice starts where the plane meets the a axis, shifted along a by b's in-plane part (oblique cells)
    x0 = float(plane_pt[0] * ahat[0] + plane_pt[1] * ahat[1])
    for site in st:
        for ia in range(-1, reps + 1):
            for ib in (-1, 0, 1):
                r = site.coords + ia * cell[0] + ib * cell[1]
                if abs(np.dot(r - plane_pt, bn)) > tol_A:
                    continue
                x = r[0] * ahat[0] + r[1] * ahat[1]
                if x < x0 - 0.3 or x > x0 + reps * np.linalg.norm(cell[0]) + 0.3:
                    continue
                sym = site.specie.symbol
                ax.scatter([x], [r[2]], s=60 * covalent_radius(sym), color=element_colour(sym), edgecolor="k", lw=0.5,
                           zorder=3)
                ax.annotate(sym, (x, r[2]), fontsize=6, ha="center", va="center", zorder=4)


def z_window(structure, cell, pad: float = 4.0) -> tuple[float, float]:
    """The z range (A) that holds the atoms, padded, within the cell."""
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

