"""Ion migration paths between adsorption / intercalation sites, with IDPP-interpolated images.

Hops connect neighbouring sites (in-plane distance <= max_hop, nearest periodic image), one path per
symmetry-distinct pair of site labels and hop length. Images come from ASE's NEB IDPP interpolation
with the host atoms held at their positions; any image with two atoms closer than 1 A is rejected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pymatgen.core import Structure

from hetero.builders.common import BuildError
from hetero.builders.sites import Site, _height_for, covalent_radius, place_ion

MIN_DIST = 1.0


@dataclass
class Path:
    label: str  # "siteA->siteB"
    start: Site
    end: Site
    hop_length_A: float
    images: list[Structure] = field(default_factory=list)  # endpoints included (n_images + 2)
    ion_index: int = -1

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "start": self.start.as_dict(),
            "end": self.end.as_dict(),
            "hop_length_A": self.hop_length_A,
            "n_images": len(self.images) - 2,
            "ion_index": self.ion_index,
        }


def find_interlayer_sites(stack: Structure, fragments: dict[str, list[int]], ion: str, symprec: float = 0.1) -> list[Site]:
    """Intercalation sites in the vdW gap between the 'substrate' and 'film' fragments of a stack.

    Candidates: the top/bridge/hollow sites of the substrate's facing plane (find_sites on the
    substrate fragment), placed at mid-gap height. Labels are prefixed with
    "gap-"; a Site's height_A is measured from the substrate's top plane.
    """
    from hetero.builders.sites import find_sites

    covalent_radius(ion)
    try:
        sub_idx, film_idx = list(fragments["substrate"]), list(fragments["film"])
    except KeyError as exc:
        raise BuildError("fragments must have 'film' and 'substrate' index lists (ModelRecord.fragments)") from exc
    z = stack.cart_coords[:, 2]
    z_lo, z_hi = z[sub_idx].max(), z[film_idx].min()
    if z_hi - z_lo < 1.5:
        raise BuildError(f"gap between fragments is {z_hi - z_lo:.2f} A: no room for an intercalated ion")
    sub = Structure.from_sites([stack[i] for i in sub_idx])
    z_mid = 0.5 * (z_lo + z_hi)
    out: list[Site] = []
    for s in find_sites(sub, ion, symprec=symprec):
        cart = [s.cart_coords[0], s.cart_coords[1], float(z_mid)]
        out.append(
            Site(
                label=f"gap-{s.label}",
                frac_coords=[float(x) for x in stack.lattice.get_fractional_coords(cart)],
                cart_coords=cart,
                height_A=round(float(z_mid - z_lo), 4),
                multiplicity=s.multiplicity,
                kind="interlayer",
                neighbours=s.neighbours,
                ion=ion,
            )
        )
    return out


def _min_pair_distance(s: Structure) -> float:
    d = s.distance_matrix
    np.fill_diagonal(d, np.inf)
    return float(d.min()) if len(s) > 1 else np.inf


def _idpp(start: Structure, end: Structure, n_images: int, ion_index: int) -> list[Structure]:
    from ase.constraints import FixAtoms
    from ase.mep import NEB
    from pymatgen.io.ase import AseAtomsAdaptor

    a0 = AseAtomsAdaptor.get_atoms(start)
    a1 = AseAtomsAdaptor.get_atoms(end)
    fixed = [i for i in range(len(a0)) if i != ion_index]
    images = [a0] + [a0.copy() for _ in range(n_images)] + [a1]
    for im in images:
        im.set_constraint(FixAtoms(indices=fixed))
    neb = NEB(images, method="improvedtangent")
    try:
        neb.interpolate(method="idpp", mic=True)
    except TypeError:  # older ASE
        neb.interpolate(mic=True)
    return [AseAtomsAdaptor.get_structure(im) for im in images]


def _clean(s: Structure) -> Structure:
    return Structure(s.lattice, s.species, s.frac_coords)


def find_paths(
    slab: Structure,
    sites: list[Site],
    ion: str,
    max_hop: float = 3.5,
    n_images: int = 5,
    host_fixed: bool = True,
) -> list[Path]:
    """Hops between neighbouring sites (in-plane distance <= max_hop A), unique by (labels, length).

    Each endpoint is the slab with `ion` at a site (place_ion; heights from covalent radii, or the
    site's own z for interlayer sites); n_images IDPP images in between (host atoms held fixed).
    """
    covalent_radius(ion)
    if not sites:
        raise BuildError("no sites given: call find_sites / find_interlayer_sites first")
    if n_images < 1:
        raise BuildError("n_images must be >= 1")
    host = _clean(slab)
    lat = host.lattice
    a, b = lat.matrix[0, :2], lat.matrix[1, :2]
    shifts = [p * a + q * b for p in range(-2, 3) for q in range(-2, 3)]

    # expand each symmetry-distinct site into the in-cell equivalent copies it stands for (by lattice
    # translations only we keep the representative; hops go to the nearest periodic image)
    all_xy = _equivalent_positions(host, sites)
    cands = []
    for i, si in enumerate(sites):
        for j, sj in enumerate(sites):
            if j < i:
                continue
            xi, xj = np.array(si.cart_coords[:2]), np.array(sj.cart_coords[:2])
            best = None
            for sh in shifts:
                d = np.linalg.norm(xj + sh - xi)
                if d < 1e-3:
                    continue
                if best is None or d < best[0] - 1e-6:
                    best = (d, sh)
            if best is None or best[0] > max_hop:
                continue
            if _passes_other_site(xi, xj + best[1], all_xy, shifts):
                continue  # the hop is a sequence of shorter hops through another site
            cands.append((si, sj, best[0], best[1]))
    seen = set()
    paths: list[Path] = []
    for si, sj, d, sh in sorted(cands, key=lambda c: c[2]):
        key = (si.label, sj.label, round(d, 2))
        if key in seen:
            continue
        seen.add(key)
        start = _endpoint(host, si, ion)
        end_site = Site(
            label=sj.label, frac_coords=sj.frac_coords, cart_coords=[sj.cart_coords[0] + sh[0], sj.cart_coords[1] + sh[1], sj.cart_coords[2]],
            height_A=sj.height_A, multiplicity=sj.multiplicity, kind=sj.kind, neighbours=sj.neighbours, ion=ion,
        )
        end = _endpoint(host, end_site, ion)
        # keep the end ion unwrapped relative to the start (the hop, not a jump across the cell)
        idx = len(host)
        images = _idpp(start, end, n_images, idx)
        if min(_min_pair_distance(im) for im in images) < MIN_DIST:
            continue
        hop = float(np.linalg.norm(end[idx].coords - start[idx].coords))
        paths.append(Path(label=f"{si.label}->{sj.label}", start=si, end=sj, hop_length_A=round(hop, 4), images=images, ion_index=idx))
    return paths


def _equivalent_positions(host: Structure, sites: list[Site]) -> list[np.ndarray]:
    """In-plane cartesian positions of every symmetry copy of the sites in the cell."""
    from hetero.builders.sites import equivalent_positions

    return [p for s in sites for p in equivalent_positions(host, s.cart_coords[:2])]


def _passes_other_site(p0: np.ndarray, p1: np.ndarray, positions: list[np.ndarray], shifts, tol: float = 0.3) -> bool:
    seg = p1 - p0
    L2 = float(seg @ seg)
    for pos in positions:
        for sh in shifts:
            q = pos + sh
            t = float((q - p0) @ seg) / L2
            if 0.05 < t < 0.95 and np.linalg.norm(p0 + t * seg - q) < tol:
                if np.linalg.norm(q - p0) > tol and np.linalg.norm(q - p1) > tol:
                    return True
    return False


def _endpoint(host: Structure, site: Site, ion: str) -> Structure:
    if site.kind == "interlayer":
        s = host.copy()
        s.append(ion, site.cart_coords, coords_are_cartesian=True)
        return s
    s = place_ion(host, site, ion)
    # put the ion at the exact (possibly out-of-cell) xy so images interpolate along the hop
    z, _ = _height_for(host, np.array(site.cart_coords[:2]), covalent_radius(ion))
    out = host.copy()
    out.append(ion, [site.cart_coords[0], site.cart_coords[1], z], coords_are_cartesian=True)
    return out
