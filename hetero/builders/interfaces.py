"""Interfaces: pymatgen's ZSLGenerator + CoherentInterfaceBuilder, enumerated, ranked and recorded.

3D/3D junctions (V2O5(101)/Cu2V2O7(200), ...) go through CoherentInterfaceBuilder: every ZSL match x
every termination pair. 2D/2D stacks (both inputs already layers with vacuum along c, Miller (0 0 1),
e.g. VS2_1L on V2CO2) use ZSLGenerator for the lattice match and are stacked here with a vdW gap.
In both cases the film is strained onto the substrate (strained_side = "film"), the result is
re-stacked with c orthogonal to the interface and the vacuum along c, and ModelRecord.fragments holds
{"film": [...], "substrate": [...]} for the CDD and Bader steps.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from pymatgen.core import Lattice, Structure

from hetero.builders.common import BuildError, record, resolve_structure, restack, unwrap_along_c
from hetero.builders.slabs import _check_miller
from hetero.schemas import ModelRecord

DEFAULT_TOL = {"max_length_tol": 0.03, "max_angle_tol": 0.01, "max_area_ratio_tol": 0.09}  # pymatgen's
LOOSE_TOL = {"max_length_tol": 0.10, "max_angle_tol": 0.05, "max_area_ratio_tol": 0.05}


@dataclass
class InterfaceCandidate:
    structure: Structure
    record: ModelRecord
    match_index: int
    termination: tuple[str, str]

    @property
    def strain_percent(self) -> float:
        return float(self.record.strain_percent or 0.0)


@dataclass
class Enumeration:
    candidates: list[InterfaceCandidate] = field(default_factory=list)  # ranked: strain, then atoms
    skipped: list[str] = field(default_factory=list)  # why a candidate was left out (never silent)
    n_matches: int = 0
    n_terminations: int = 0
    notes: str = ""

    def table(self) -> list[dict[str, Any]]:
        rows = []
        for i, c in enumerate(self.candidates):
            r = c.record
            rows.append(
                {
                    "rank": i,
                    "termination": r.termination,
                    "strain_%": r.strain_percent,
                    "principal_%": r.strain_principal_percent,
                    "area_A2": r.area_A2,
                    "n_atoms": r.n_atoms,
                    "gap_A": r.interlayer_distance_A,
                }
            )
        return rows


# ----------------------------------------------------------------------------------------- helpers
def vacuum_gap(s: Structure) -> float:
    """Largest empty gap along c (Angstrom): > ~6 A means the structure is a layer with vacuum."""
    z = np.sort(s.frac_coords[:, 2] % 1.0)
    gaps = np.diff(np.concatenate([z, [z[0] + 1.0]]))
    n = np.cross(s.lattice.matrix[0], s.lattice.matrix[1])
    n /= np.linalg.norm(n)
    return float(gaps.max() * abs(np.dot(s.lattice.matrix[2], n)))


def is_2d_layer(s: Structure, miller: Sequence[int]) -> bool:
    return tuple(miller) == (0, 0, 1) and vacuum_gap(s) > 6.0


def reorient(s: Structure) -> Structure:
    """Rotate so that a lies along x and a x b along +z."""
    m = s.lattice.matrix
    x = m[0] / np.linalg.norm(m[0])
    z = np.cross(m[0], m[1])
    z /= np.linalg.norm(z)
    y = np.cross(z, x)
    R = np.array([x, y, z])
    lat = Lattice(m @ R.T)
    return Structure(lat, s.species, s.frac_coords, site_properties=s.site_properties or None)


def orthogonal_c(s: Structure) -> Structure:
    """Same atoms (cartesian), c replaced by its component along the surface normal (a, b in xy)."""
    s = unwrap_along_c(reorient(s))
    m = s.lattice.matrix.copy()
    cart = s.cart_coords
    lat = Lattice([m[0], m[1], [0.0, 0.0, m[2, 2]]])
    return Structure(lat, s.species, cart, coords_are_cartesian=True, site_properties=s.site_properties or None)


def strain_of(match) -> tuple[float, list[float]]:
    """(von Mises %, principal in-plane %) of the Green-Lagrange strain that maps film onto substrate."""
    from pymatgen.analysis.elasticity.strain import Deformation

    e = Deformation(match.match_transformation).green_lagrange_strain
    w = np.linalg.eigvalsh(np.array(e))
    w = sorted(w, key=lambda v: -abs(v))[:2]
    return float(e.von_mises_strain) * 100.0, [round(float(v) * 100.0, 3) for v in sorted(w)]


def _zsl(tol: dict[str, float], max_area: float):
    from pymatgen.analysis.interfaces.zsl import ZSLGenerator

    return ZSLGenerator(max_area=max_area, **tol)


_ZSL_CACHE: dict = {}


def zsl_matches(fv: np.ndarray, sv: np.ndarray, tol: dict[str, float], max_area: float) -> list:
    """pymatgen ZSLGenerator matches (all, not only the lowest area), cached per input."""
    key = (np.round(fv, 6).tobytes(), np.round(sv, 6).tobytes(), tuple(sorted(tol.items())), float(max_area))
    if key not in _ZSL_CACHE:
        _ZSL_CACHE[key] = list(_zsl(tol, max_area)(fv, sv, lowest=False))
    return _ZSL_CACHE[key]


def _t2d(start, end) -> np.ndarray:
    from pymatgen.analysis.interfaces.coherent_interfaces import get_2d_transform

    return np.array(get_2d_transform(np.asarray(start)[:2], np.asarray(end)[:2]))


def _slab_counts(cib, fs, ss, fm, sm, term, ft, st, in_layers) -> tuple[int, int]:
    """Atoms per primitive surface cell of the film and substrate slabs CoherentInterfaceBuilder cuts."""
    from pymatgen.core.surface import SlabGenerator

    f_shift, s_shift = cib._terminations[term]
    kw = dict(min_vacuum_size=3, in_unit_planes=in_layers, center_slab=True, primitive=True, reorient_lattice=False)
    nf = len(SlabGenerator(fs, fm, min_slab_size=ft, **kw).get_slab(shift=f_shift))
    ns = len(SlabGenerator(ss, sm, min_slab_size=st, **kw).get_slab(shift=s_shift))
    return nf, ns


def _in_plane_vectors(s: Structure, miller: Sequence[int]) -> np.ndarray:
    """In-plane lattice vectors as CoherentInterfaceBuilder sees them (SlabGenerator, shift 0)."""
    from pymatgen.core.surface import SlabGenerator

    if is_2d_layer(s, miller):
        return s.lattice.matrix[:2]
    sg = SlabGenerator(s, miller, min_slab_size=1, min_vacuum_size=3, in_unit_planes=True, center_slab=True, primitive=True, reorient_lattice=False)
    return sg.get_slab(shift=0).lattice.matrix[:2]


def _no_match_message(film, sub, fm, sm, fname, sname, tol, max_area) -> str:
    fv = _in_plane_vectors(film, fm)
    sv = _in_plane_vectors(sub, sm)
    loose = {"max_length_tol": 0.25, "max_angle_tol": 0.15, "max_area_ratio_tol": 0.25}
    best = None
    try:
        for mt in _zsl(loose, max_area)(fv, sv, lowest=False):
            vm, _ = strain_of(mt)
            if best is None or vm < best[0]:
                best = (vm, mt)
    except Exception:
        best = None
    msg = f"no lattice match for film {fname} {tuple(fm)} on substrate {sname} {tuple(sm)} within max_area={max_area} A^2 and tolerances {tol}."
    if best is None:
        return msg + f" Even loose tolerances {loose} give no match: raise max_area or change the Miller indices."
    vm, mt = best
    fl = [np.linalg.norm(v) for v in mt.film_sl_vectors]
    sl = [np.linalg.norm(v) for v in mt.substrate_sl_vectors]
    lmis = max(abs(s / f - 1.0) for f, s in zip(fl, sl))

    def ang(v):
        return np.degrees(np.arccos(np.dot(v[0], v[1]) / np.linalg.norm(v[0]) / np.linalg.norm(v[1])))

    amis = abs(ang(mt.film_sl_vectors) - ang(mt.substrate_sl_vectors)) / ang(mt.substrate_sl_vectors)
    need = []
    if lmis > tol["max_length_tol"]:
        need.append(f"max_length_tol >= {lmis:.3f}")
    if amis > tol["max_angle_tol"]:
        need.append(f"max_angle_tol >= {amis:.3f}")
    need = need or ["max_area_ratio_tol (try 0.05-0.10)"]
    return msg + (
        f" Best strain found with loose tolerances: {vm:.2f} % von Mises at {mt.match_area:.1f} A^2 "
        f"(length mismatch {lmis * 100:.1f} %, angle mismatch {amis * 100:.1f} %). Loosen: {', '.join(need)}."
    )


def _finish(
    s: Structure, film_idx: list[int], sub_idx: list[int], vacuum: float, shift_A: Sequence[float]
) -> tuple[Structure, list[int], list[int], float]:
    """Orthogonal c, vacuum, optional in-plane registry shift of the film; returns fragments and gap."""
    s = orthogonal_c(s)
    if shift_A is not None and any(abs(x) > 0 for x in shift_A):
        s.translate_sites(film_idx, [float(shift_A[0]), float(shift_A[1]), 0.0], frac_coords=False, to_unit_cell=True)
    s = restack(s, vacuum=vacuum)
    z = s.cart_coords[:, 2]
    gap = float(z[film_idx].min() - z[sub_idx].max())
    # order: substrate first, then film (fragments stay explicit anyway)
    order = list(sub_idx) + list(film_idx)
    out = Structure.from_sites([s[i] for i in order])
    n_sub = len(sub_idx)
    return out, list(range(n_sub, len(out))), list(range(n_sub)), gap


# ----------------------------------------------------------------------------------------- 2D / 2D
def _layer_supercell(layer: Structure, vectors_sl: np.ndarray) -> Structure:
    from pymatgen.analysis.interfaces.coherent_interfaces import from_2d_to_3d, get_2d_transform

    T = np.round(from_2d_to_3d(get_2d_transform(layer.lattice.matrix[:2], vectors_sl))).astype(int)
    sc = layer.copy()
    sc.make_supercell(T)
    return sc


def _stack_2d(film: Structure, sub: Structure, match, interlayer: float) -> tuple[Structure, list[int], list[int]]:
    fsc = unwrap_along_c(_layer_supercell(film, match.film_sl_vectors))
    ssc = unwrap_along_c(_layer_supercell(sub, match.substrate_sl_vectors))
    fa = np.cross(fsc.lattice.matrix[0], fsc.lattice.matrix[1])
    sa = np.cross(ssc.lattice.matrix[0], ssc.lattice.matrix[1])
    if np.dot(fa, film.lattice.matrix[2]) * np.dot(sa, sub.lattice.matrix[2]) < 0:
        raise BuildError("ZSL match flips the handedness of one layer; skipped")
    ssc = reorient(ssc)
    sm = ssc.lattice.matrix
    zs = ssc.cart_coords[:, 2]
    # film: keep its in-plane fractional coordinates (strained onto the substrate cell), its own z
    fz = fsc.frac_coords[:, 2] * np.dot(fsc.lattice.matrix[2], fa / np.linalg.norm(fa))
    fz = fz - fz.min() + zs.max() + interlayer
    fcart = fsc.frac_coords[:, :1] * sm[0] + fsc.frac_coords[:, 1:2] * sm[1]
    fcart[:, 2] = fz
    c = float(fz.max() - zs.min()) + 20.0
    lat = Lattice([sm[0], sm[1], [0.0, 0.0, c]])
    species = list(ssc.species) + list(fsc.species)
    cart = np.vstack([ssc.cart_coords, fcart])
    s = Structure(lat, species, cart, coords_are_cartesian=True)
    return s, list(range(len(ssc), len(s))), list(range(len(ssc)))


# ----------------------------------------------------------------------------------------- main API
def enumerate_interfaces(
    film: Structure | str,
    substrate: Structure | str,
    film_miller: Sequence[int] = (0, 0, 1),
    substrate_miller: Sequence[int] = (0, 0, 1),
    film_thickness: float = 1,
    substrate_thickness: float = 1,
    thickness_in_layers: bool = True,
    vacuum: float = 15.0,
    gap: float | None = None,
    max_area: float = 200.0,
    max_length_tol: float = DEFAULT_TOL["max_length_tol"],
    max_angle_tol: float = DEFAULT_TOL["max_angle_tol"],
    max_area_ratio_tol: float = DEFAULT_TOL["max_area_ratio_tol"],
    max_atoms: int | None = 150,
    in_plane_shift_A: Sequence[float] = (0.0, 0.0),
    terminations: Sequence[tuple[str, str]] | None = None,
    max_candidates: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Enumeration:
    """Every ZSL match x termination pair of film on substrate, ranked by strain then atom count.

    Thickness: pymatgen slab units (d_hkl planes) when thickness_in_layers, else Angstrom (3D/3D only;
    2D layers are used as given). gap: interface distance (A); default 2.0 for 3D/3D, 3.2 for 2D/2D
    (vdW gap between the facing atomic planes). Candidates over max_atoms are skipped with a message
    in Enumeration.skipped. Raises BuildError when no lattice match exists (message: best strain
    found with loose tolerances and which tolerance to loosen).
    """
    from pymatgen.analysis.interfaces.coherent_interfaces import CoherentInterfaceBuilder

    fs, fname = resolve_structure(film)
    ss, sname = resolve_structure(substrate)
    fm, sm = _check_miller(film_miller), _check_miller(substrate_miller)
    tol = {"max_length_tol": max_length_tol, "max_angle_tol": max_angle_tol, "max_area_ratio_tol": max_area_ratio_tol}
    if vacuum < 10.0:
        warnings.warn(f"vacuum {vacuum} A < 10 A: periodic images will interact", stacklevel=2)
    f2d, s2d = is_2d_layer(fs, fm), is_2d_layer(ss, sm)
    if f2d != s2d:
        raise BuildError(
            f"film {fname} is {'a 2D layer' if f2d else 'bulk'} but substrate {sname} is {'a 2D layer' if s2d else 'bulk'}: "
            "give two bulk crystals (3D/3D) or two layers with vacuum along c and Miller (0 0 1) (2D/2D)"
        )
    res = Enumeration()
    base = dict(film=fname, substrate=sname, film_miller=list(fm), substrate_miller=list(sm), strained_side="film")
    if not f2d:  # spacing of the chosen lattice planes (a 2D layer's c includes its vacuum: no bulk spacing)
        base.update(film_d_spacing_A=round(float(fs.lattice.d_hkl(fm)), 4),
                    substrate_d_spacing_A=round(float(ss.lattice.d_hkl(sm)), 4))

    def make_record(s, fidx, sidx, g, match, term_label, extra=""):
        vm, pr = strain_of(match)
        area = float(np.linalg.norm(np.cross(s.lattice.matrix[0], s.lattice.matrix[1])))
        return record(
            s,
            system=f"{fname}{''.join(map(str, fm))}/{sname}{''.join(map(str, sm))}",
            kind="interface",
            strain_percent=round(vm, 4),
            strain_principal_percent=pr,
            area_A2=round(area, 3),
            termination=term_label,
            interlayer_distance_A=round(g, 4),
            fragments={"film": fidx, "substrate": sidx},
            needs_dipole_correction=True,
            notes=(
                f"ZSL tolerances {tol}, max_area {max_area} A^2; film strained onto substrate; vacuum {vacuum} A; "
                f"in-plane registry shift {tuple(in_plane_shift_A)} A{extra}"
            ),
            **base,
        )

    def keep(s, rec, i, term):
        if max_atoms is not None and len(s) > max_atoms:
            res.skipped.append(
                f"match {i} termination {term}: {len(s)} atoms > max_atoms {max_atoms} "
                f"(strain {rec.strain_percent:.2f} %, area {rec.area_A2:.1f} A^2) skipped"
            )
            return
        res.candidates.append(InterfaceCandidate(s, rec, i, term))

    if f2d:
        g = 3.2 if gap is None else float(gap)
        fv, sv = fs.lattice.matrix[:2], ss.lattice.matrix[:2]
        matches = zsl_matches(fv, sv, tol, max_area)
        if not matches:
            raise BuildError(_no_match_message(fs, ss, fm, sm, fname, sname, tol, max_area))
        res.n_matches, res.n_terminations = len(matches), 1
        seen: set = set()
        n_dup = n_flip = 0
        term = (fs.composition.reduced_formula, ss.composition.reduced_formula)
        for i, mt in enumerate(matches):
            if progress:
                progress(i + 1, len(matches))
            nf = abs(np.linalg.det(_t2d(fv, mt.film_sl_vectors)))
            ns = abs(np.linalg.det(_t2d(sv, mt.substrate_sl_vectors)))
            hand = np.sign(np.linalg.det(_t2d(fv, mt.film_sl_vectors))) * np.sign(np.linalg.det(_t2d(sv, mt.substrate_sl_vectors)))
            if hand < 0:
                n_flip += 1
                continue
            vm, pr = strain_of(mt)
            key = (round(nf), round(ns), round(vm, 3), tuple(pr))
            if key in seen:
                n_dup += 1
                continue
            seen.add(key)
            n_pred = int(round(nf)) * len(fs) + int(round(ns)) * len(ss)
            if max_atoms is not None and n_pred > max_atoms:
                res.skipped.append(
                    f"match {i} ({term[0]} x{nf:.0f} on {term[1]} x{ns:.0f}): {n_pred} atoms > max_atoms {max_atoms} "
                    f"(strain {vm:.2f} %, area {mt.match_area:.1f} A^2) skipped"
                )
                continue
            s, fidx, sidx = _stack_2d(fs, ss, mt, g)
            s, fidx, sidx, gg = _finish(s, fidx, sidx, vacuum, in_plane_shift_A)
            rec = make_record(s, fidx, sidx, gg, mt, f"{term[0]}/{term[1]} (2D layers)",
                              f"; 2D/2D vdW stack, film {term[0]} x{nf:.0f} cells, substrate {term[1]} x{ns:.0f} cells")
            keep(s, rec, i, term)
        res.notes = f"{n_dup} symmetry-equivalent duplicate matches and {n_flip} mirror-image (handedness-flipping) matches not rebuilt"
    else:
        g = 2.0 if gap is None else float(gap)
        try:
            cib = CoherentInterfaceBuilder(ss, fs, fm, sm, zslgen=_zsl(tol, max_area), label_index=True)
        except ValueError as exc:
            raise BuildError(f"cannot build {fname} {fm} / {sname} {sm}: {exc}") from exc
        if not cib.zsl_matches:
            raise BuildError(_no_match_message(fs, ss, fm, sm, fname, sname, tol, max_area))
        terms = list(terminations) if terminations else list(cib.terminations)
        bad = [t for t in terms if t not in cib.terminations]
        if bad:
            raise BuildError(f"unknown termination(s) {bad}; available: {cib.terminations}")
        all_matches = list(cib.zsl_matches)
        res.n_matches, res.n_terminations = len(all_matches), len(terms)
        fv, sv = _in_plane_vectors(fs, fm), _in_plane_vectors(ss, sm)
        # symmetry-equivalent duplicates (same supercell sizes and strain) are built once
        uniq, seen = [], set()
        for i, mt in enumerate(all_matches):
            nf = int(round(abs(np.linalg.det(_t2d(fv, mt.film_sl_vectors)))))
            ns = int(round(abs(np.linalg.det(_t2d(sv, mt.substrate_sl_vectors)))))
            vm, pr = strain_of(mt)
            key = (nf, ns, round(vm, 3), tuple(pr))
            if key not in seen:
                seen.add(key)
                uniq.append((i, mt, nf, ns))
        res.notes = f"{len(all_matches) - len(uniq)} symmetry-equivalent duplicate matches not rebuilt"
        total, done = len(terms) * len(uniq), 0
        try:
            for term in terms:
                n_f, n_s = _slab_counts(cib, fs, ss, fm, sm, term, film_thickness, substrate_thickness, thickness_in_layers)
                kept = []
                for i, mt, nf, ns in uniq:
                    n_pred = n_f * nf + n_s * ns
                    if max_atoms is not None and n_pred > max_atoms:
                        vm, _ = strain_of(mt)
                        res.skipped.append(
                            f"match {i} termination {term}: {n_pred} atoms > max_atoms {max_atoms} "
                            f"(strain {vm:.2f} %, area {mt.match_area:.1f} A^2) skipped"
                        )
                        done += 1
                        continue
                    kept.append((i, mt))
                cib.zsl_matches = [mt for _, mt in kept]
                if not kept:
                    continue
                ifaces = cib.get_interfaces(
                    term, gap=g, vacuum_over_film=vacuum, film_thickness=film_thickness,
                    substrate_thickness=substrate_thickness, in_layers=thickness_in_layers,
                )
                for (i, mt), iface in zip(kept, ifaces):
                    done += 1
                    fidx, sidx = list(iface.film_indices), list(iface.substrate_indices)
                    plain = Structure(iface.lattice, iface.species, iface.frac_coords)
                    s, fidx, sidx, gg = _finish(plain, fidx, sidx, vacuum, in_plane_shift_A)
                    rec = make_record(s, fidx, sidx, gg, mt, f"{term[0]} | {term[1]}")
                    keep(s, rec, i, term)
                    if progress:
                        progress(done, total)
        finally:
            cib.zsl_matches = all_matches
    res.candidates.sort(key=lambda c: (round(c.record.strain_percent or 0.0, 3), c.record.n_atoms))
    if max_candidates is not None:
        res.candidates = res.candidates[:max_candidates]
    return res


def strain_between(film_sl: np.ndarray, sub_sl: np.ndarray) -> tuple[float, list[float]]:
    """(von Mises %, principal %) of the in-plane strain taking film supercell vectors onto the substrate's."""
    from pymatgen.analysis.elasticity.strain import Strain

    def frame(v):
        v = np.asarray(v, float)[:, :3] if np.asarray(v).shape[1] >= 3 else np.hstack([v, np.zeros((2, 1))])
        x = v[0] / np.linalg.norm(v[0])
        n = np.cross(v[0], v[1])
        y = np.cross(n / np.linalg.norm(n), x)
        return np.array([[v[0] @ x, v[0] @ y], [v[1] @ x, v[1] @ y]])

    Fm, Sm = frame(film_sl), frame(sub_sl)
    D = np.linalg.solve(Fm, Sm).T  # D @ f_i = s_i
    E2 = 0.5 * (D.T @ D - np.eye(2))
    E = np.zeros((3, 3))
    E[:2, :2] = E2
    w = np.linalg.eigvalsh(E2)
    return float(Strain(E).von_mises_strain) * 100.0, [round(float(x) * 100.0, 3) for x in sorted(w)]


def stack_layers(
    film: Structure | str,
    substrate: Structure | str,
    film_supercell: Sequence[Sequence[int]] = ((1, 0), (0, 1)),
    substrate_supercell: Sequence[Sequence[int]] = ((1, 0), (0, 1)),
    interlayer_distance: float = 3.2,
    vacuum: float = 15.0,
    in_plane_shift_A: Sequence[float] = (0.0, 0.0),
) -> tuple[Structure, ModelRecord]:
    """2D/2D stack with explicit in-plane supercells (rows: new a, b in units of the layer's a, b).

    The film is strained onto the substrate supercell; the gap between the facing atomic planes is
    `interlayer_distance`. Use when ZSL's tolerances cannot express a small commensurate cell (e.g.
    sqrt3 x sqrt3 R30 VS2 on 2x2 V2CO2).
    """
    fs, fname = resolve_structure(film)
    ss, sname = resolve_structure(substrate)
    for st, nm in ((fs, fname), (ss, sname)):
        if not is_2d_layer(st, (0, 0, 1)):
            raise BuildError(f"{nm} is not a 2D layer with vacuum along c: stack_layers needs two layers")
    Tf, Ts = np.array(film_supercell, int), np.array(substrate_supercell, int)
    if Tf.shape != (2, 2) or Ts.shape != (2, 2) or np.linalg.det(Tf) <= 0 or np.linalg.det(Ts) <= 0:
        raise BuildError("film_supercell / substrate_supercell must be 2x2 integer matrices with positive determinant")

    class _M:  # the two attributes _stack_2d reads
        film_sl_vectors = Tf @ fs.lattice.matrix[:2]
        substrate_sl_vectors = Ts @ ss.lattice.matrix[:2]

    s, fidx, sidx = _stack_2d(fs, ss, _M, interlayer_distance)
    s, fidx, sidx, gg = _finish(s, fidx, sidx, vacuum, in_plane_shift_A)
    vm, pr = strain_between(_M.film_sl_vectors, _M.substrate_sl_vectors)
    area = float(np.linalg.norm(np.cross(s.lattice.matrix[0], s.lattice.matrix[1])))
    rec = record(
        s,
        system=f"{fname}/{sname}",
        kind="interface",
        film=fname,
        substrate=sname,
        film_miller=[0, 0, 1],
        substrate_miller=[0, 0, 1],
        strain_percent=round(vm, 4),
        strain_principal_percent=pr,
        strained_side="film",
        area_A2=round(area, 3),
        termination=f"{fs.composition.reduced_formula}/{ss.composition.reduced_formula} (2D layers)",
        interlayer_distance_A=round(gg, 4),
        fragments={"film": fidx, "substrate": sidx},
        needs_dipole_correction=True,
        notes=(
            f"2D/2D stack, film supercell {Tf.tolist()} strained onto substrate supercell {Ts.tolist()}; "
            f"vacuum {vacuum} A; registry shift {tuple(in_plane_shift_A)} A"
        ),
    )
    return s, rec


def build_interface(*args: Any, rank: int = 0, **kw: Any) -> tuple[Structure, ModelRecord]:
    """The rank-th best candidate of enumerate_interfaces (same arguments)."""
    res = enumerate_interfaces(*args, **kw)
    if not res.candidates:
        raise BuildError("every lattice match was skipped: " + "; ".join(res.skipped[:5]) + " ... raise max_atoms or lower max_area/thickness")
    if rank >= len(res.candidates):
        raise BuildError(f"rank {rank} out of range: {len(res.candidates)} candidates")
    c = res.candidates[rank]
    return c.structure, c.record


def fragment_gap(s: Structure, fragments: dict[str, list[int]]) -> float:
    """Gap along z between the facing atomic planes of the film and substrate fragments (negative: they
    interpenetrate), whichever of the two is on top."""
    z = s.cart_coords[:, 2]
    a, b = z[fragments["film"]], z[fragments["substrate"]]
    return float(a.min() - b.max()) if a.mean() >= b.mean() else float(b.min() - a.max())


def in_plane_translations(s: Structure, indices: Sequence[int], tol_A: float = 0.2) -> np.ndarray:
    """In-plane translations (fractions of the cell's a and b, in [0, 1)) that map the atoms ``indices`` onto
    themselves, species kept: the fragment's own lattice inside a supercell, [[0, 0]] for a primitive one.
    Candidates are the vectors from one atom of the rarest species to its same-height images."""
    idx = list(indices)
    sp = [str(s[i].specie) for i in idx]
    rare = min(set(sp), key=sp.count)
    fc = s.frac_coords[idx]
    z = s.cart_coords[idx, 2]
    i0 = next(k for k, e in enumerate(sp) if e == rare)
    m2 = s.lattice.matrix[:2, :2]
    out = [np.zeros(2)]
    for k, e in enumerate(sp):
        if k == i0 or e != rare or abs(z[k] - z[i0]) > tol_A:
            continue
        t = np.round(fc[k, :2] - fc[i0, :2], 6) % 1.0
        moved = fc[:, :2] + t
        ok = True
        for a in range(len(idx)):  # every atom must land on an atom of its species at its height
            d = moved[a] - fc[:, :2]
            d -= np.round(d)
            dist = np.hypot(*(d @ m2).T)
            if not np.any((dist < tol_A) & (np.abs(z - z[a]) < tol_A) & (np.array(sp) == sp[a])):
                ok = False
                break
        if ok:
            out.append(t)
    return np.array(out)


def registry_cell(stack: Structure, fragments: dict[str, list[int]]) -> np.ndarray:
    """Two in-plane vectors (rows; fractions of the cell's a and b) spanning every distinct registry of a
    two-fragment stack. Shifting the upper fragment by a translation of either fragment's own lattice gives the
    same stacking, so the registries repeat on the lattice both lattices generate: the cell itself for a
    primitive interface, a fraction of it when a supercell repeats either side. The two shortest independent
    vectors of that lattice (a 2D lattice's successive minima are a basis)."""
    # each fragment's translations form a group, so their sums are the whole group both generate
    film, sub = (in_plane_translations(stack, fragments[k]) for k in ("film", "substrate"))
    group = {tuple(np.round((a + b) % 1.0, 6) % 1.0) for a in film for b in sub}
    m2 = stack.lattice.matrix[:2, :2]
    vecs = [np.array(g) + np.array([i, j]) for g in group for i in (-1, 0, 1) for j in (-1, 0, 1)]
    # shortest first; of equal lengths the one pointing most along +a, then +b (a primitive interface: a, b)
    vecs = sorted((v for v in vecs if np.linalg.norm(v) > 1e-6),
                  key=lambda v: (round(float(np.linalg.norm(v @ m2)), 6), -v[0], -v[1]))
    v1 = vecs[0]
    v2 = next(v for v in vecs if abs(np.linalg.det([v1, v])) > 1e-6 * np.linalg.norm(v1) * np.linalg.norm(v))
    if np.linalg.det([v1, v2]) < 0:  # right-handed like a, b
        v2 = -v2
    if abs(np.linalg.det([v1, v2]) * len(group) - 1) > 1e-3:  # the area must be the cell's / |group|
        raise BuildError(f"in-plane translations of {stack.composition.reduced_formula} do not form a lattice "
                         f"({len(group)} found); the fragments are not periodic in this cell")
    return np.array([v1, v2])


def stacking_candidates(stack: Structure, fragments: dict[str, list[int]], grid: int,
                        distances_A: Sequence[float], domain: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Registries x interlayer distances of a two-fragment stack, for the stacking funnel: the upper fragment
    shifted in plane by i/grid u + j/grid v, with u and v the rows of ``domain`` (fractions of the cell's a and
    b; default the cell itself, registry_cell gives the distinct registries' cell), and moved along z until its
    lowest atom sits ``d`` above the lower fragment's highest. Same lattice, atom order and site properties as
    ``stack`` (one k-mesh for every candidate); the atoms are re-centred along c.
    Each: {"id", "shift_frac" (fractions of a and b), "distance_A", "structure"}."""
    if set(fragments) != {"film", "substrate"}:
        raise BuildError(f"stacking candidates need film and substrate fragments, got {sorted(fragments)}")
    if not (isinstance(grid, int) and grid >= 1):
        raise BuildError(f"stacking grid {grid!r}: give a whole number of shifts per in-plane axis (>= 1)")
    if not distances_A or any(not (1.0 <= float(d) <= 6.0) for d in distances_A):
        raise BuildError(f"stacking distances_A {list(distances_A)}: give interlayer distances between 1 and 6 A")
    z = stack.cart_coords[:, 2]
    film, sub = list(fragments["film"]), list(fragments["substrate"])
    upper, lower = (film, sub) if z[film].mean() >= z[sub].mean() else (sub, film)
    m = stack.lattice.matrix
    c = m[2][2]
    props = {k: list(v) for k, v in stack.site_properties.items()} or None
    domain = np.eye(2) if domain is None else np.asarray(domain, float)
    out = []
    for i in range(grid):
        for j in range(grid):
            shift = (i / grid) * domain[0] + (j / grid) * domain[1]
            for d in distances_A:
                cart = stack.cart_coords.copy()
                cart[upper] += shift[0] * m[0] + shift[1] * m[1]
                cart[upper, 2] += float(d) - fragment_gap(stack, fragments)
                cart[:, 2] += c / 2 - (cart[:, 2].min() + cart[:, 2].max()) / 2
                if cart[:, 2].max() - cart[:, 2].min() > c - 5.0:
                    raise BuildError(f"stacking distance {d} A leaves under 5 A of vacuum in a c = {c:.1f} A cell; "
                                     "use smaller distances_A or more vacuum")
                s = Structure(stack.lattice, stack.species, cart, coords_are_cartesian=True, site_properties=props)
                fc = s.frac_coords
                fc[:, :2] %= 1.0
                s = Structure(stack.lattice, stack.species, fc, site_properties=props)
                out.append({"id": f"shift-{i}{j}-d{float(d):.2f}", "shift_frac": [float(x) for x in shift],
                            "distance_A": float(d), "structure": s})
    return out
