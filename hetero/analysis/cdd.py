"""Charge density difference rho_AB - rho_A - rho_B on one periodic grid (engine-free).

A and B are the two fragments frozen at the AB geometry and computed on AB's grid, so the three
arrays align point by point. Along the stacking axis we report the plane-integrated difference
(e/A), its cumulative integral (the charge-displacement curve, e), and the charge that crossed the
interface plane, read off the displacement curve at the plane; its sign convention is spelt out in
`transfer_direction` (positive: electrons moved from fragment A to fragment B).
"""

from __future__ import annotations

import numpy as np
from pymatgen.core import Structure
from pymatgen.io.vasp import Chgcar, Poscar


def density_difference(rho_ab: np.ndarray, rho_a: np.ndarray, rho_b: np.ndarray) -> np.ndarray:
    if not (rho_ab.shape == rho_a.shape == rho_b.shape):
        raise ValueError(
            f"CDD needs the three densities on one grid, got {rho_ab.shape}, {rho_a.shape}, {rho_b.shape}; "
            "compute the fragments with the AB calculation's grid (gpts)"
        )
    return rho_ab - rho_a - rho_b


def planar_profile(delta: np.ndarray, cell: np.ndarray, axis: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Plane-integrated density along `axis` (e/A) and the axis coordinates (A)."""
    cell = np.asarray(cell)
    volume = abs(np.linalg.det(cell))
    n_axis = delta.shape[axis]
    length = np.linalg.norm(cell[axis])
    other = tuple(i for i in range(3) if i != axis)
    # sum over the plane * (voxel volume) / (slice thickness) = e per A along the axis
    per_slice = delta.sum(axis=other) * volume / delta.size
    dz = length / n_axis
    return np.arange(n_axis) * dz, per_slice / dz


def interface_plane(structure: Structure, fragment_a: list[int], fragment_b: list[int], axis: int = 2) -> float:
    """Midpoint between the facing atomic planes of the two fragments (Cartesian, A along axis).

    Works for an ion adsorbed on a surface (fragment B = the ion) too: the plane sits halfway between the ion
    and the topmost host atom. Not for an ion inside the host (see `embedded`).
    """
    z = structure.cart_coords[:, axis]
    za, zb = z[fragment_a], z[fragment_b]
    if zb.mean() >= za.mean():
        return float((za.max() + zb.min()) / 2)
    return float((zb.max() + za.min()) / 2)


EMBEDDED_MARGIN_A = 1.0  # host atoms this far above and below every atom of B: B sits inside the host


def embedded(structure: Structure, fragment_a: list[int], fragment_b: list[int], axis: int = 2) -> bool:
    """Whether B lies inside A along the axis (A atoms > EMBEDDED_MARGIN_A above and below all of B)."""
    z = structure.cart_coords[:, axis]
    za, zb = z[fragment_a], z[fragment_b]
    return bool((za > zb.max() + EMBEDDED_MARGIN_A).any() and (za < zb.min() - EMBEDDED_MARGIN_A).any())


def no_separating_plane(structure: Structure, fragments: dict[str, list[int]], axis: int = 2) -> dict:
    """For B inside A: the CDD fields that replace a transfer across a plane (none, B's height, a note); else {}.

    Also applied to CDD documents kept before this rule existed (an intercalated Li's plane cut the layer above)."""
    (a, ia), (b, ib) = fragments.items()
    if not embedded(structure, ia, ib, axis):
        return {}
    return {"transferred_e": None, "interface_z_A": float(structure.cart_coords[ib, axis].mean()),
            "note": f"{b} lies inside {a} ({a} atoms on both sides along the axis, e.g. an ion intercalated in a "
                    "gap): no plane separates them, so no transfer across a plane is given; interface_z_A marks "
                    f"{b}'s height. Per-side charges: the Bader split (ion_charge_to_<side>_e in the table)"}


def cdd_analysis(
    structure: Structure,
    rho_ab: np.ndarray,
    rho_a: np.ndarray,
    rho_b: np.ndarray,
    fragments: dict[str, list[int]],
    axis: int = 2,
) -> tuple[np.ndarray, dict]:
    """Delta rho, its planar profile, displacement curve and the charge moved across the interface.

    `fragments` has exactly two entries (A = first, B = second). `transferred_e` is the number of
    electrons that moved from fragment A's side of the interface plane to fragment B's side
    (negative: from B to A), i.e. minus the displacement curve at the plane when B lies above A.
    """
    names = list(fragments)
    if len(names) != 2:
        raise ValueError(f"CDD needs exactly two fragments, got {names}")
    delta = density_difference(rho_ab, rho_a, rho_b)
    cell = structure.lattice.matrix
    z, profile = planar_profile(delta, cell, axis)
    dz = z[1] - z[0]
    displacement = np.cumsum(profile) * dz  # electrons accumulated below z
    z_if = interface_plane(structure, fragments[names[0]], fragments[names[1]], axis)
    below = float(np.interp(z_if % (dz * len(z)), z, displacement))
    b_above = structure.cart_coords[fragments[names[1]], axis].mean() >= structure.cart_coords[fragments[names[0]], axis].mean()
    transferred = -below if b_above else below  # electrons gained by B's side
    inside = no_separating_plane(structure, fragments, axis)
    if inside:
        transferred, z_if = inside["transferred_e"], inside["interface_z_A"]
    doc = {
        "axis": axis,
        "z_A": z.tolist(),
        "planar_avg_e_per_A": profile.tolist(),
        "displacement_e": displacement.tolist(),
        "interface_z_A": z_if,
        "transferred_e": transferred,
        "transfer_direction": f"{names[0]} -> {names[1]} (electrons; negative means {names[1]} -> {names[0]})",
        "note": inside.get("note", ""),
        "integral_e": float(delta.sum() * structure.volume / delta.size),
        "fragments": fragments,
    }
    return delta, doc


def write_volumetric(structure: Structure, rho_e_per_A3: np.ndarray, chgcar_path: str, cube_path: str) -> None:
    """CHGCAR (VASP stores rho*V) and Gaussian cube; VESTA opens both."""
    from ase.io import write

    Chgcar(Poscar(structure), {"total": rho_e_per_A3 * structure.volume}).write_file(chgcar_path)
    write(cube_path, structure.to_ase_atoms(), data=rho_e_per_A3)
