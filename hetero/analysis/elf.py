"""ELF before and after an interface forms: the junction's ELF against the ELF of its two fragments frozen at the
junction's geometry, on one grid.

ELF needs the kinetic-energy density tau, and for fragments that do not interact both tau and the density add, so
the "before" ELF is the ELF of (n_A + n_B, tau_A + tau_B): the two sides side by side, no bond between them. The
"after" ELF is the engine's own ELF of the junction. No library computes the "before" field from two calculations
(GPAW's gpaw.elf works on one calculation's objects), hence elf_from_parts: GPAW's formula (Becke-Edgecombe, spin
form of Kohout-Savin) on arrays, with a 4th-order finite-difference gradient like GPAW's. ``elf_method_gap`` says how
far it sits from the engine's own ELF on the same calculation, so a difference map is read above that level.
Engine-free: arrays in, numbers out (units: GPAW's atomic units for n and tau, the cell in A).
"""

from __future__ import annotations

import numpy as np

BOHR_A = 0.529177210903
C_F = 3.0 / 10.0 * (3.0 * np.pi**2) ** (2.0 / 3.0)  # Fermi constant (Hartree atomic units)
ELF_NCUT = 1e-4  # density (bohr^-3) below which ELF is set to 0, as the GPAW engine writes it
CONTACT_A = 3.0  # atom pairs across the interface closer than this are its contacts
PLANE_WINDOW_A = 1.0  # the contact region: this far either side of the interface plane


def _gradient_squared(f: np.ndarray, cell_bohr: np.ndarray) -> np.ndarray:
    """|grad f|^2 on a periodic grid of any cell: 4th-order central differences along the grid axes, mapped to
    Cartesian with the inverse cell (grad f = inv(cell) @ df/ds, s the fractional coordinates)."""
    d_ds = []
    for axis, n in enumerate(f.shape):
        d = (8 * (np.roll(f, -1, axis) - np.roll(f, 1, axis)) - (np.roll(f, -2, axis) - np.roll(f, 2, axis))) / 12.0
        d_ds.append(d * n)
    inv = np.linalg.inv(cell_bohr)
    g2 = np.zeros_like(f)
    for j in range(3):
        g2 += sum(inv[j, k] * d_ds[k] for k in range(3)) ** 2
    return g2


def as_spin_channels(n: np.ndarray) -> np.ndarray:
    """(spins, nx, ny, nz); a single unpolarised channel becomes two equal halves, so two fragments can add."""
    n = np.asarray(n, float)
    if n.ndim == 3:
        n = n[None]
    return np.stack([n[0] / 2, n[0] / 2]) if n.shape[0] == 1 else n


def elf_from_parts(nt_s: np.ndarray, taut_s: np.ndarray, cell_A: np.ndarray, ncut: float = ELF_NCUT) -> np.ndarray:
    """ELF of a (pseudo) density and kinetic-energy density per spin channel, GPAW's gpaw.elf.elf formula."""
    nt_s, taut_s = as_spin_channels(nt_s), as_spin_channels(taut_s)
    cell = np.asarray(cell_A, float) / BOHR_A
    n = np.maximum(nt_s, 1e-11)
    grad2 = [_gradient_squared(x, cell) for x in nt_s]
    d0 = 2 ** (2 / 3) * C_F * (n[0] ** (5 / 3) + n[1] ** (5 / 3))
    d = taut_s.sum(axis=0) - (grad2[0] / n[0] + grad2[1] / n[1]) / 8
    elf = 1.0 / (1.0 + (d / d0) ** 2)
    elf[nt_s.sum(axis=0) < ncut] = 0.0
    return elf


def _at_points(grid: np.ndarray, cell_A: np.ndarray, cart: np.ndarray) -> np.ndarray:
    """Trilinear interpolation of a periodic grid at Cartesian points."""
    from scipy.ndimage import map_coordinates

    frac = np.asarray(cart, float) @ np.linalg.inv(cell_A)
    idx = (frac % 1.0) * np.array(grid.shape)[None, :]
    return map_coordinates(grid, idx.T, order=1, mode="grid-wrap")


def interface_elf_change(elf_after: np.ndarray, elf_before: np.ndarray, cell_A: np.ndarray, cart: np.ndarray,
                         symbols: list[str], fragments: dict[str, list[int]], interface_z_A: float) -> dict:
    """Numbers of the ELF change at an interface: plane-averaged profiles, the contact region's mean and
    maximum, and the ELF at the midpoint of every contact across the interface (pairs < CONTACT_A), before and
    after. The midpoint of the shortest contact is the point a slice figure goes through."""
    if elf_after.shape != elf_before.shape:
        raise ValueError(f"ELF grids differ: junction {elf_after.shape}, fragments {elf_before.shape}; the fragments "
                         "must be computed on the junction's grid")
    cell_A = np.asarray(cell_A, float)
    nz = elf_after.shape[2]
    z = (np.arange(nz) / nz) * cell_A[2, 2]
    window = np.abs(z - interface_z_A) <= PLANE_WINDOW_A
    names = list(fragments)
    a, b = (np.asarray(fragments[k], int) for k in names)
    contacts = []
    for i in a:
        for j in b:
            d = cart[j] - cart[i]
            frac = d @ np.linalg.inv(cell_A)
            frac[:2] -= np.round(frac[:2])  # nearest in-plane image
            d = frac @ cell_A
            dist = float(np.linalg.norm(d))
            if dist < CONTACT_A:
                contacts.append({"atoms": [int(i), int(j)], "pair": f"{symbols[i]}-{symbols[j]}", "distance_A": dist,
                                 "midpoint_A": (cart[i] + d / 2).tolist()})
    contacts.sort(key=lambda c: c["distance_A"])
    if contacts:
        mids = np.array([c["midpoint_A"] for c in contacts])
        for c, before, after in zip(contacts, _at_points(elf_before, cell_A, mids), _at_points(elf_after, cell_A, mids)):
            c["elf_before"], c["elf_after"] = float(before), float(after)
    return {
        "z_A": z.tolist(),
        "planar_before": elf_before.mean(axis=(0, 1)).tolist(),
        "planar_after": elf_after.mean(axis=(0, 1)).tolist(),
        "interface_z_A": float(interface_z_A),
        "window_A": PLANE_WINDOW_A,
        "contact_region_mean_before": float(elf_before[:, :, window].mean()) if window.any() else None,
        "contact_region_mean_after": float(elf_after[:, :, window].mean()) if window.any() else None,
        "contact_region_max_before": float(elf_before[:, :, window].max()) if window.any() else None,
        "contact_region_max_after": float(elf_after[:, :, window].max()) if window.any() else None,
        "contact_cutoff_A": CONTACT_A,
        "contacts": contacts,
        "slice_point_A": contacts[0]["midpoint_A"] if contacts else [0.0, 0.0, float(interface_z_A)],
    }


def elf_method_gap(elf_engine: np.ndarray, elf_ours: np.ndarray, nt_s: np.ndarray, ncut: float = ELF_NCUT) -> float:
    """Mean |ELF_engine - elf_from_parts| where there is density: how far our 'before' method sits from the
    engine's own ELF on one calculation."""
    mask = as_spin_channels(nt_s).sum(axis=0) >= ncut
    return float(np.abs(elf_engine[mask] - elf_ours[mask]).mean()) if mask.any() else 0.0
