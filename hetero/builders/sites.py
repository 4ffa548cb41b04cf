"""Adsorption sites on a slab's top surface, unique by symmetry and labelled by chemistry.

Candidates come from the 2D Delaunay triangulation of the top-plane atoms (with periodic images):
vertices (top), edge midpoints (bridge) and triangle circumcentres (hollow). Each candidate is
classified by how many top-plane atoms are at its shortest in-plane distance: 1 = top-X,
2 = bridge, 3 = fcc/hcp (hcp when a subsurface atom lies below), 4 or more = hollow. This finds
the 4-fold hollow of rocksalt (001), which pymatgen's AdsorbateSiteFinder misses.
The ion is placed so that its nearest slab atom sits at r_cov(ion) + r_cov(atom) (ASE covalent radii).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np
from pymatgen.core import Structure

from hetero.builders.common import BuildError, cluster_planes

PLANE_TOL = 0.3


@dataclass
class Site:
    label: str
    frac_coords: list[float]
    cart_coords: list[float]
    height_A: float  # above the topmost atom of the slab
    multiplicity: int  # symmetry-equivalent copies in the cell
    kind: str = ""  # top | bridge | hollow | fcc | hcp | interlayer
    neighbours: list[str] = field(default_factory=list)  # elements of the nearest surface atoms
    ion: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def covalent_radius(element: str) -> float:
    from ase.data import atomic_numbers, covalent_radii

    sym = str(element).strip()
    sym = sym[:1].upper() + sym[1:].lower()
    if sym not in atomic_numbers or atomic_numbers[sym] == 0:
        raise BuildError(f"unknown element {element!r}: give a chemical symbol such as 'Li', 'Na' or 'K'")
    return float(covalent_radii[atomic_numbers[sym]])


def _top_atoms(slab: Structure, tol: float = PLANE_TOL) -> tuple[np.ndarray, np.ndarray]:
    planes = cluster_planes(slab.cart_coords[:, 2], tol)
    top = planes[-1]
    sub = planes[-2] if len(planes) > 1 else np.array([], dtype=int)
    return top, sub


def _images_2d(slab: Structure, idx: np.ndarray, n: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """In-plane cartesian xy of atoms idx and their periodic images; returns (xy, owner index)."""
    a, b = slab.lattice.matrix[0, :2], slab.lattice.matrix[1, :2]
    pts, own = [], []
    for i in idx:
        base = slab.cart_coords[i, :2]
        for p in range(-n, n + 1):
            for q in range(-n, n + 1):
                pts.append(base + p * a + q * b)
                own.append(i)
    return np.array(pts), np.array(own)


def _height_for(slab: Structure, xy: np.ndarray, r_ion: float, ion_z_floor: float | None = None) -> tuple[float, list[tuple[float, int]]]:
    """z at which the ion's nearest slab atom is at r_ion + r_atom; returns (z, [(dist, idx)...])."""
    a, b = slab.lattice.matrix[0], slab.lattice.matrix[1]
    best = -np.inf
    shifts = np.array([p * a + q * b for p in range(-2, 3) for q in range(-2, 3)])
    for i, site in enumerate(slab):
        r = r_ion + covalent_radius(site.specie.symbol)
        d2 = np.min(np.sum((site.coords[None, :2] + shifts[:, :2] - xy[None, :]) ** 2, axis=1))
        if d2 < r * r:
            best = max(best, site.coords[2] + np.sqrt(r * r - d2))
    if not np.isfinite(best):
        best = slab.cart_coords[:, 2].max()
    if ion_z_floor is not None:
        best = max(best, ion_z_floor)
    return float(best), []


def _surface_ops(slab: Structure, symprec: float):
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        ops = SpacegroupAnalyzer(slab, symprec=symprec).get_symmetry_operations(cartesian=False)
    except Exception:
        return []
    # keep the operations that leave the surface normal alone (they map the top surface onto itself)
    return [op for op in ops if abs(op.rotation_matrix[2, 2] - 1) < 1e-6 and np.allclose(op.rotation_matrix[2, :2], 0)]


def _equivalent(f1: np.ndarray, f2: np.ndarray, lattice, ops, tol: float = 0.15) -> bool:
    for op in ops:
        g = op.operate(f1)
        d = g[:2] - f2[:2]
        d -= np.round(d)
        cart = d[0] * lattice.matrix[0, :2] + d[1] * lattice.matrix[1, :2]
        if np.linalg.norm(cart) < tol:
            return True
    return False


def find_sites(slab: Structure, ion: str | None = None, symprec: float = 0.1) -> list[Site]:
    """Symmetry-distinct adsorption sites above the top surface of `slab` (c along z, vacuum on top).

    Labels: ``top-<El>``, ``bridge`` (``bridge-<El>-<El>`` when two bridge kinds exist), ``hollow``
    (4-fold or more), ``fcc``/``hcp`` (3-fold). Positions are the ion's (height from covalent radii;
    ion=None uses Li's radius to report a height).
    """
    from scipy.spatial import Delaunay

    if ion is not None:
        r_ion = covalent_radius(ion)
    else:
        r_ion = covalent_radius("Li")
    top, sub = _top_atoms(slab)
    if len(top) == 0:
        raise BuildError("slab has no atoms")
    z_top = float(slab.cart_coords[:, 2].max())
    lat = slab.lattice
    a2, b2 = lat.matrix[0, :2], lat.matrix[1, :2]
    M = np.array([a2, b2]).T  # cart_xy = M @ frac_xy
    Minv = np.linalg.inv(M)

    pts, own = _images_2d(slab, top, 2)
    cands: list[np.ndarray] = []
    if len(pts) >= 3:
        tri = Delaunay(pts)
        for simplex in tri.simplices:
            P = pts[simplex]
            cands.extend(list(P))
            for i in range(3):
                for j in range(i + 1, 3):
                    cands.append(0.5 * (P[i] + P[j]))
            # circumcentre
            A, B, C = P
            d = 2 * (A[0] * (B[1] - C[1]) + B[0] * (C[1] - A[1]) + C[0] * (A[1] - B[1]))
            if abs(d) > 1e-9:
                ux = ((A @ A) * (B[1] - C[1]) + (B @ B) * (C[1] - A[1]) + (C @ C) * (A[1] - B[1])) / d
                uy = ((A @ A) * (C[0] - B[0]) + (B @ B) * (A[0] - C[0]) + (C @ C) * (B[0] - A[0])) / d
                cc = np.array([ux, uy])
                if np.all(np.linalg.norm(P - cc, axis=1) < 1.5 * np.max(np.linalg.norm(P - P.mean(0), axis=1)) + 1e-6):
                    cands.append(cc)
    else:
        cands.extend(list(pts))
        cands.append(np.zeros(2))
    # fold into the cell and de-duplicate
    fr = []
    for c in cands:
        f = Minv @ c
        f -= np.floor(f + 1e-6)
        fr.append(f)
    # a fixed order (the triangulation's follows float noise): each group's representative position and the
    # -1/-2 label suffixes are then the same on every machine, so task hashes and exported runs match
    fr.sort(key=lambda f: (round(float(f[0]), 3) % 1.0, round(float(f[1]), 3) % 1.0))
    uniq: list[np.ndarray] = []
    for f in fr:
        if not any(np.linalg.norm(M @ ((f - u) - np.round(f - u))) < 0.1 for u in uniq):
            uniq.append(f)

    # classify each candidate by the number of top-plane atoms at its shortest in-plane distance
    def classify(f: np.ndarray) -> tuple[str, list[str], int]:
        xy = M @ f
        dd = np.linalg.norm(pts - xy[None, :], axis=1)
        dmin = dd.min()
        near = np.where(dd < dmin + 0.15)[0]
        owners = sorted({int(own[k]) for k in near}) if dmin > 0.05 else [int(own[np.argmin(dd)])]
        n = len(near) if dmin > 0.05 else 1
        els = sorted(slab[o].specie.symbol for o in owners) if n > 1 else [slab[own[np.argmin(dd)]].specie.symbol]
        if n == 1:
            return f"top-{els[0]}", els, 1
        if n == 2:
            els2 = sorted(slab[own[k]].specie.symbol for k in near)
            return "bridge", els2, 2
        if n == 3:
            # hcp: a subsurface atom right below; fcc: none
            if len(sub):
                spts, _ = _images_2d(slab, sub, 1)
                if np.min(np.linalg.norm(spts - xy[None, :], axis=1)) < 0.5:
                    return "hcp", sorted(slab[own[k]].specie.symbol for k in near), 3
            return "fcc", sorted(slab[own[k]].specie.symbol for k in near), 3
        return "hollow", sorted(slab[own[k]].specie.symbol for k in near), n

    ops = _surface_ops(slab, symprec)
    groups: list[dict[str, Any]] = []
    for f in uniq:
        lab, els, n = classify(f)
        fz = np.array([f[0], f[1], 0.0])
        for g in groups:
            if g["label"] == lab and g["els"] == els and (_equivalent(g["f"], fz, lat, ops) if ops else False):
                g["members"].append(fz)
                break
        else:
            groups.append({"label": lab, "els": els, "n": n, "f": fz, "members": [fz]})

    # disambiguate repeated labels by chemistry, then by an index
    sites: list[Site] = []
    kinds = {}
    for g in groups:
        kinds.setdefault(g["label"], []).append(g)
    for lab, gs in kinds.items():
        for k, g in enumerate(gs):
            name = lab
            if len(gs) > 1 and lab not in ("fcc", "hcp") and not lab.startswith("top-"):
                name = f"{lab}-{'-'.join(g['els'])}"
            if len(gs) > 1 and sum(1 for h in gs if h["els"] == g["els"]) > 1:
                name = f"{name}-{k + 1}" if not lab.startswith("top-") else f"{lab}-{k + 1}"
            g["name"] = name
    order = {"top": 0, "bridge": 1, "hollow": 2, "fcc": 3, "hcp": 4}
    groups.sort(key=lambda g: (order.get(g["label"].split("-")[0], 9), g["name"]))
    for g in groups:
        xy = M @ g["f"][:2]
        z, _ = _height_for(slab, xy, r_ion)
        cart = [float(xy[0]), float(xy[1]), float(z)]
        frac = lat.get_fractional_coords(cart)
        sites.append(
            Site(
                label=g["name"],
                frac_coords=[float(x) for x in frac],
                cart_coords=cart,
                height_A=round(float(z - z_top), 4),
                multiplicity=len(g["members"]),
                kind=g["label"].split("-")[0],
                neighbours=g["els"],
                ion=ion or "",
            )
        )
    return sites


def place_ion(
    slab: Structure, site: Site | str, ion: str, offset_A: Sequence[float] = (0.0, 0.0), sites: list[Site] | None = None
) -> Structure:
    """Copy of `slab` with `ion` added at `site` (a Site or a label), displaced in-plane by offset_A.

    The ion is the last atom; its index is in ``structure.properties['ion_index']`` and the height is
    recomputed for `ion` (covalent radii) so a Site found for another ion can be reused.
    """
    covalent_radius(ion)
    if isinstance(site, str):
        sites = sites or find_sites(slab, ion)
        hits = [s for s in sites if s.label == site]
        if not hits:
            raise BuildError(f"no site {site!r} on this slab; sites: {[s.label for s in sites]}")
        site = hits[0]
    off = np.array(list(offset_A) + [0.0] * (2 - len(offset_A)), float)[:2]
    xy = np.array(site.cart_coords[:2]) + off
    if site.kind == "interlayer":  # mid-gap height from find_interlayer_sites, not a surface height
        z = float(site.cart_coords[2])
    else:
        z, _ = _height_for(slab, xy, covalent_radius(ion))
    out = slab.copy()
    props = {}
    if "selective_dynamics" in out.site_properties:
        props["selective_dynamics"] = [True, True, True]
    out.append(ion, [xy[0], xy[1], z], coords_are_cartesian=True, properties=props or None)
    out.properties = dict(out.properties or {})
    out.properties["ion_index"] = len(out) - 1
    out.properties["site"] = site.label
    return out


def adsorption_models(slab: Structure, ion: str, base_record=None, offset_A: Sequence[float] = (0.0, 0.0), symprec: float = 0.1):
    """One (Structure, ModelRecord) per symmetry-distinct site, ion at the site; dipole correction on."""
    from hetero.builders.common import record

    out = []
    for s in find_sites(slab, ion, symprec=symprec):
        st = place_ion(slab, s, ion, offset_A=offset_A)
        base = base_record.model_dump(exclude={"structure", "n_atoms", "kind", "notes", "needs_dipole_correction"}) if base_record else {}
        sysname = base.pop("system", slab.composition.reduced_formula)
        rec = record(
            st,
            **base,
            system=f"{ion}@{s.label}/{sysname}",
            kind="adsorbate",
            needs_dipole_correction=True,
            notes=f"{ion} at {s.label} (multiplicity {s.multiplicity}), height {s.height_A} A, ion index {len(st) - 1}, offset {tuple(offset_A)} A",
        )
        rec.fragments = {"host": list(range(len(slab))), "ion": [len(st) - 1]}
        out.append((s, st, rec))
    return out


def equivalent_positions(slab: Structure, xy: Sequence[float], symprec: float = 0.1, tol_A: float = 0.3) -> np.ndarray:
    """In-plane cartesian positions (N, 2) in the cell equivalent to `xy` by the surface symmetry.

    The first row is `xy` itself (folded into the cell); copies closer than `tol_A` are merged.
    """
    lat = slab.lattice
    M = np.array([lat.matrix[0, :2], lat.matrix[1, :2]]).T
    f0 = np.linalg.solve(M, np.asarray(xy, float)[:2])
    out: list[np.ndarray] = []
    for op in _surface_ops(slab, symprec) or []:
        g = op.operate([f0[0], f0[1], 0.0])[:2]
        g -= np.floor(g + 1e-9)
        if not any(np.linalg.norm(M @ ((g - u) - np.round(g - u))) < tol_A for u in out):
            out.append(g)
    f0 = f0 - np.floor(f0 + 1e-9)
    out = [f0] + [u for u in out if np.linalg.norm(M @ ((u - f0) - np.round(u - f0))) >= tol_A]
    return np.array([M @ u for u in out])


def _periodic_distance(slab: Structure, p: np.ndarray, q: np.ndarray) -> float:
    a, b = slab.lattice.matrix[0, :2], slab.lattice.matrix[1, :2]
    return float(min(np.linalg.norm(p - q + i * a + j * b) for i in (-1, 0, 1) for j in (-1, 0, 1)))


def default_ion_separation(ion: str) -> float:
    """Closest ion-ion distance a coverage series accepts: 1.6 x the covalent radius (Na 2.66 A, Li 2.05 A).

    Below it two adsorbed ions would sit closer than in any of their compounds; the user can set another.
    """
    return round(1.6 * covalent_radius(ion), 2)


def coverage_models(
    slab: Structure, ion: str, start: Structure, max_ions: int, min_separation_A: float | None = None,
    symprec: float = 0.1, keep_height: bool = False,
) -> list[Structure]:
    """Structures with 2..n ions on the symmetry copies of one site, filled farthest-first.

    `start` is the relaxed one-ion structure (ion last) on `slab`; further ions go on the copies of
    its in-plane position, each the copy farthest from those already placed, at the covalent-radius
    height (`keep_height`: at the first ion's height, for intercalation sites). Stops at `max_ions` or when the next copy would be closer than `min_separation_A` to
    another ion (periodic images included). Ions are the last atoms, in order of placement.
    """
    if max_ions < 2:
        raise BuildError(f"max_ions={max_ions}: a coverage series needs at least 2 ions")
    r_ion = covalent_radius(ion)
    min_sep = default_ion_separation(ion) if min_separation_A is None else float(min_separation_A)
    first = np.array(start.cart_coords[-1][:2])
    if str(start[-1].specie) != ion:
        raise BuildError(f"the one-ion structure's last atom is {start[-1].specie}, expected the ion {ion}")
    copies = list(equivalent_positions(slab, first, symprec))[1:]
    placed = [first]
    out: list[Structure] = []
    current = start.copy()
    while len(placed) < max_ions and copies:
        dist = [min(_periodic_distance(slab, c, p) for p in placed) for c in copies]
        k = int(np.argmax(dist))
        if dist[k] < min_sep:
            break
        xy = copies.pop(k)
        z = float(start.cart_coords[-1][2]) if keep_height else _height_for(slab, xy, r_ion)[0]
        current = current.copy()
        props = {"selective_dynamics": [True, True, True]} if "selective_dynamics" in current.site_properties else None
        current.append(ion, [xy[0], xy[1], z], coords_are_cartesian=True, properties=props)
        placed.append(xy)
        out.append(current)
    return out
