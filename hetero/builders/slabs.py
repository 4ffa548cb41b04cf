"""Slabs: pymatgen SlabGenerator, then trimmed to a number of atomic planes and re-stacked with c
orthogonal to the surface and the vacuum along c."""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np
from pymatgen.core import Structure
from pymatgen.core.surface import SlabGenerator

from hetero.builders.common import BuildError, cluster_planes, record, resolve_structure, restack
from hetero.schemas import ModelRecord

PLANE_TOL = 0.3  # Angstrom: atoms closer than this in z belong to one atomic plane


def _check_miller(miller: Sequence[int]) -> tuple[int, int, int]:
    try:
        m = tuple(int(x) for x in miller)
    except Exception as exc:
        raise BuildError(f"Miller index {miller!r} must be three integers, e.g. (0, 0, 1)") from exc
    if len(m) != 3 or m == (0, 0, 0):
        raise BuildError(f"Miller index {miller!r} is invalid: give three integers, not all zero")
    return m  # type: ignore[return-value]


def _layer_symmetric(s: Structure, tol: float = 0.3) -> bool:
    """True when the slab's top and bottom plane sequences match (species + in-plane pattern)."""
    try:
        from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

        ops = SpacegroupAnalyzer(s, symprec=0.1).get_symmetry_operations()
        return any(op.rotation_matrix[2, 2] < -0.5 for op in ops)
    except Exception:
        planes = cluster_planes(s.cart_coords[:, 2], tol)
        seq = [sorted(str(s[i].specie) for i in p) for p in planes]
        return seq == seq[::-1]


def _plane_label(s: Structure, idx: np.ndarray) -> str:
    from pymatgen.core import Composition

    return Composition(" ".join(str(s[i].specie) for i in idx)).reduced_formula


def build_slab(
    bulk: Structure | str,
    miller: Sequence[int],
    layers: int,
    vacuum: float = 15.0,
    supercell: tuple[int, int] = (1, 1),
    fix_bottom_layers: int = 2,
    symmetric: bool = True,
    termination: int | str | None = None,
    name: str | None = None,
) -> tuple[Structure, ModelRecord]:
    """Slab of `layers` atomic planes cut from `bulk` along `miller`.

    c is orthogonal to the surface and the vacuum lies along c (the slab is centred). Atoms in the
    bottom `fix_bottom_layers` planes are fixed (ModelRecord.fixed_atoms and selective_dynamics).
    `termination`: index into the distinct terminations, or a formula/element of the top plane.
    With symmetric=True the first window of planes whose top and bottom match is taken.
    """
    struct, bname = resolve_structure(bulk)
    name = name or bname
    m = _check_miller(miller)
    if int(layers) < 1:
        raise BuildError(f"layers={layers}: need at least one atomic plane")
    if vacuum < 10.0:
        warnings.warn(
            f"vacuum {vacuum} A < 10 A: slab images will interact; use >= 10-15 A for production",
            stacklevel=2,
        )
    if fix_bottom_layers >= layers and fix_bottom_layers > 0:
        raise BuildError(f"fix_bottom_layers={fix_bottom_layers} fixes the whole {layers}-plane slab")

    gen = SlabGenerator(
        struct,
        m,
        min_slab_size=max(2, int(layers)) + 2,
        min_vacuum_size=max(vacuum, 10.0),
        lll_reduce=True,
        center_slab=True,
        in_unit_planes=True,
        primitive=True,
        max_normal_search=max(abs(x) for x in m) + 1,
        reorient_lattice=True,
    )
    slabs = gen.get_slabs(symmetrize=False)
    if not slabs:
        raise BuildError(f"SlabGenerator found no slab for {name} {m}")
    cands: list[tuple[Structure, str, bool]] = []
    for sl in slabs:
        o = sl.get_orthogonal_c_slab()
        base = Structure(o.lattice, o.species, o.frac_coords)
        base = restack(_wrap_ok(base), vacuum=vacuum)
        planes = cluster_planes(base.cart_coords[:, 2], PLANE_TOL)
        if len(planes) < layers:
            continue
        # every window of `layers` consecutive planes is a candidate termination
        for start in range(len(planes) - layers + 1):
            idx = np.concatenate(planes[start : start + layers])
            sub = Structure.from_sites([base[i] for i in sorted(idx)])
            sub = restack(sub, vacuum=vacuum)
            top = cluster_planes(sub.cart_coords[:, 2], PLANE_TOL)[-1]
            label = _plane_label(sub, top)
            if any(_same(sub, c[0]) for c in cands):
                continue
            cands.append((sub, label, _layer_symmetric(sub)))
    if not cands:
        raise BuildError(f"could not cut {layers} atomic planes from {name} {m}")

    if termination is None:
        pool = [c for c in cands if c[2]] if symmetric else cands
        if symmetric and not pool:
            warnings.warn(f"{name} {m} with {layers} planes has no symmetric termination; using an asymmetric one", stacklevel=2)
            pool = cands
        chosen = pool[0]
    elif isinstance(termination, int):
        if not 0 <= termination < len(cands):
            raise BuildError(f"termination index {termination} out of range: {len(cands)} terminations ({[c[1] for c in cands]})")
        chosen = cands[termination]
    else:
        hits = [c for c in cands if c[1].lower() == str(termination).lower()]
        if not hits:
            raise BuildError(f"no termination {termination!r} for {name} {m}; available: {sorted({c[1] for c in cands})}")
        sym_hits = [c for c in hits if c[2]]
        chosen = (sym_hits or hits)[0] if symmetric else hits[0]

    slab, term, is_sym = chosen
    if tuple(supercell) != (1, 1):
        slab = slab.copy()
        slab.make_supercell([int(supercell[0]), int(supercell[1]), 1])
    # sort by z then species for readable files
    order = np.lexsort((slab.cart_coords[:, 0], slab.cart_coords[:, 1], [str(sp) for sp in slab.species], np.round(slab.cart_coords[:, 2], 2)))
    slab = Structure.from_sites([slab[i] for i in order])
    planes = cluster_planes(slab.cart_coords[:, 2], PLANE_TOL)
    fixed = sorted(int(i) for p in planes[:fix_bottom_layers] for i in p) if fix_bottom_layers > 0 else []
    fixed_set = set(fixed)
    slab.add_site_property("selective_dynamics", [[i not in fixed_set] * 3 for i in range(len(slab))])
    area = float(np.linalg.norm(np.cross(slab.lattice.matrix[0], slab.lattice.matrix[1])))
    rec = record(
        slab,
        system=f"{name}({''.join(str(x) for x in m)})",
        kind="slab",
        film=name,
        film_miller=list(m),
        area_A2=round(area, 3),
        termination=term,
        # fixed bottom planes + a relaxed top: the relaxed slab's two sides differ even when the cut is symmetric
        needs_dipole_correction=not is_sym or bool(fixed),
        fixed_atoms=fixed,
        notes=(
            f"{layers} atomic planes, supercell {tuple(supercell)}, vacuum {vacuum} A along c (c orthogonal "
            f"to the surface); {'symmetric' if is_sym else 'asymmetric'} slab; bottom {fix_bottom_layers} planes fixed"
        ),
    )
    return slab, rec


def _wrap_ok(s: Structure) -> Structure:
    from hetero.builders.common import unwrap_along_c

    return unwrap_along_c(s)


def _same(a: Structure, b: Structure) -> bool:
    if len(a) != len(b) or a.composition != b.composition:
        return False
    from pymatgen.analysis.structure_matcher import StructureMatcher

    return StructureMatcher(primitive_cell=False, scale=False, attempt_supercell=False).fit(a, b)


def slab_planes(slab: Structure, tol: float = PLANE_TOL) -> list[np.ndarray]:
    """Atomic planes of a slab (indices), bottom to top."""
    return cluster_planes(slab.cart_coords[:, 2], tol)


def describe(slab: Structure) -> dict[str, Any]:
    planes = slab_planes(slab)
    return {"n_planes": len(planes), "top": _plane_label(slab, planes[-1]), "bottom": _plane_label(slab, planes[0])}
