"""NEB image interpolation between two relaxed endpoints (engine-free; ASE's IDPP does the work)."""

from __future__ import annotations

import numpy as np
from pymatgen.core import Structure


def align_to(start: Structure, end: Structure) -> Structure:
    """Copy of `end` with every atom moved to the periodic image closest to the same atom in `start`."""
    if [s.specie for s in start] != [s.specie for s in end]:
        raise ValueError("NEB endpoints must have the same atoms in the same order")
    frac = end.frac_coords.copy()
    d = frac - start.frac_coords
    frac -= np.round(d)
    return Structure(end.lattice, end.species, frac, site_properties=end.site_properties)


def interpolate_images(start: Structure, end: Structure, n_images: int, method: str = "idpp") -> list[Structure]:
    """n_images intermediate images plus both endpoints (IDPP by default, as pymatgen/ASE recommend)."""
    from ase.mep import NEB
    from pymatgen.io.ase import AseAtomsAdaptor

    end = align_to(start, end)
    a0 = AseAtomsAdaptor.get_atoms(start)
    a1 = AseAtomsAdaptor.get_atoms(end)
    a1.positions = end.cart_coords  # keep unwrapped positions (no re-wrapping into the cell)
    images = [a0] + [a0.copy() for _ in range(n_images)] + [a1]
    neb = NEB(images, method="improvedtangent")  # only interpolates; named to silence ASE's default-changed warning
    neb.interpolate(method=method, mic=False)
    out = []
    for im in images:
        s = Structure(start.lattice, start.species, im.positions, coords_are_cartesian=True)
        out.append(s)
    return out


def min_interatomic_distance(structure: Structure) -> float:
    d = structure.distance_matrix
    return float(d[np.triu_indices(len(structure), 1)].min()) if len(structure) > 1 else float("inf")
