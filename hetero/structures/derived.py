"""Derived library structures: built here from a published prototype or an ordering of a parent lattice.

No refined atomic positions of beta-Cu2V2O7 (ziesite) or V5S8 could be read offline, so both are
*derived*, never experimental, and every number of the recipe is recorded in their index entry:

- ``Cu2V2O7_beta``: the alpha-Zn2V2O7 type (same space group C2/c, Z = 4, near-identical cell; AFLOW
  prototype A7B2C2_mC44_15_e3f_f_f), Cu on the Zn site, scaled to the experimental ziesite cell
  (kept fixed), positions relaxed with CHGNet under the C2/c constraint.
- ``V5S8``: NiAs-type VS in a 2*sqrt(3)a x 2a x 2c orthohexagonal supercell; every second metal
  layer kept full, the others keep 1/4 of their V. All such orderings are enumerated and grouped by
  space group and by StructureMatcher; the distinct C2/m ones are relaxed with CHGNet (cell and
  positions, C2/m kept) and the lowest-energy one is V5S8.

Positions are CHGNet-relaxed only; a GPAW PBE relaxation is a separate, later step.
Regenerate: ``python -m hetero.structures.derived`` (about a minute on one core; writes the two CIFs
and their index entries). ``python -m hetero.structures._build_data`` rebuilds them too.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import io
import itertools
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pymatgen.core import Lattice, Structure

DATA = Path(__file__).parent / "data"
SYMPREC = 0.01
RELAX_FMAX = 0.01  # eV/A
RELAX_STEPS = 500

# alpha-Zn2V2O7, AFLOW prototype A7B2C2_mC44_15_e3f_f_f (Library of Crystallographic Prototypes, part 3:
# Hicks et al., Comput. Mater. Sci. 199, 110450 (2021)); parameters as quoted in hetero issue 13 from the
# AFLOW source aflow_anrl_list.cpp (part 3 entry). Not re-read here: the AFLOW part-3 source is not stored offline.
ZN2V2O7_AFLOW = {
    "a": 7.429, "b/a": 1.12262754072, "c/a": 1.35926773455, "beta": 111.37,
    "sites": [  # species, Wyckoff, fractional coordinates (C2/c, standard setting)
        ("O", "4e", (0.0, 0.0612, 0.25)),
        ("O", "8f", (0.3984, -0.0189, 0.362)),
        ("O", "8f", (0.244, 0.1541, 0.1056)),
        ("O", "8f", (0.1531, 0.8353, 0.1138)),
        ("V", "8f", (0.2016, 0.0049, 0.2058)),
        ("Zn", "8f", (-0.04958, 0.3239, 0.51955)),
    ],
}
# ziesite (beta-Cu2V2O7) cell, C2/c; kept fixed in the relaxation
ZIESITE_CELL = {"a": 7.689, "b": 8.029, "c": 10.106, "beta": 110.27}
ZIESITE_SOURCE = "ziesite cell a 7.689, b 8.029, c 10.106 A, beta 110.27 deg (C2/c) as given in hetero issue 13"

# NiAs-type VS, the parent lattice of V5S8 (starting point only: the cell is relaxed)
VS_NIAS = {"a": 3.33, "c": 5.80}
# hexagonal (a1, a2, c) -> orthohexagonal 2*sqrt(3)a x 2a x 2c (a1 + 2 a2 is the sqrt(3)a direction)
V5S8_SUPERCELL = ((2, 4, 0), (-2, 0, 0), (0, 0, 2))
V5S8_KEEP_PER_PARTIAL_LAYER = 2  # of 8 sites: 1/4 occupancy


def _threads() -> int:
    return int(os.environ.get("HETERO_TORCH_THREADS", "1"))


@dataclass
class RelaxResult:
    structure: Structure
    energy_per_atom_eV: float
    steps: int
    fmax_eV_A: float  # largest remaining force (symmetrised)
    relax_cell: bool
    volume_change: float  # relative, final/initial - 1
    max_displacement_A: float


@dataclass
class Derived:
    name: str
    structure: Structure
    meta: dict  # index.json fields (source, notes, provenance, recipe, ...)
    extra: dict = field(default_factory=dict)  # numbers for tests and reports


# ------------------------------------------------------------------------------------------------
# CHGNet relaxation under the space-group constraint
# ------------------------------------------------------------------------------------------------
_CALC = None


def chgnet_calculator():
    """CHGNet (weights ship in its wheel) as an ASE calculator, loaded once, torch on one thread."""
    global _CALC
    if _CALC is None:
        import torch
        from chgnet.model import CHGNet
        from chgnet.model.dynamics import CHGNetCalculator

        torch.set_num_threads(_threads())
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            _CALC = CHGNetCalculator(model=CHGNet.load(verbose=False), use_device="cpu")
    return _CALC


def chgnet_version() -> str:
    from importlib.metadata import version

    return f"chgnet {version('chgnet')}"


def relax_keep_symmetry(structure: Structure, relax_cell: bool, fmax: float = RELAX_FMAX,
                        steps: int = RELAX_STEPS) -> RelaxResult:
    """CHGNet relaxation with ASE FixSymmetry (the space group cannot be lost), BFGS; optionally
    cell + positions (FrechetCellFilter), otherwise positions at the fixed cell."""
    from ase.constraints import FixSymmetry
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = chgnet_calculator()
    atoms.set_constraint(FixSymmetry(atoms, symprec=SYMPREC))
    target = FrechetCellFilter(atoms) if relax_cell else atoms
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FixSymmetry is not carried over to pymatgen (not needed)
        opt = BFGS(target, logfile=None)
        opt.run(fmax=fmax, steps=steps)
        final = AseAtomsAdaptor.get_structure(atoms)
    dfrac = final.frac_coords - structure.frac_coords
    dfrac -= np.round(dfrac)
    dcart = dfrac @ final.lattice.matrix
    dcart -= dcart.mean(axis=0)
    return RelaxResult(
        structure=final, energy_per_atom_eV=float(atoms.get_potential_energy() / len(atoms)),
        steps=int(opt.nsteps), fmax_eV_A=float(np.linalg.norm(atoms.get_forces(), axis=1).max()),
        relax_cell=relax_cell, volume_change=float(final.volume / structure.volume - 1.0),
        max_displacement_A=float(np.linalg.norm(dcart, axis=1).max()))


def neighbour_distances(s: Structure, center: str, other: str, rmax: float) -> list[float]:
    """Sorted distances from every `center` atom to `other` atoms within rmax, as a set over all centres."""
    out = set()
    for site in s:
        if site.specie.symbol == center:
            out.update(round(n.nn_distance, 3) for n in s.get_neighbors(site, rmax) if n.specie.symbol == other)
    return sorted(out)


# ------------------------------------------------------------------------------------------------
# beta-Cu2V2O7
# ------------------------------------------------------------------------------------------------
def zn2v2o7_prototype() -> Structure:
    p = ZN2V2O7_AFLOW
    a = p["a"]
    lat = Lattice.monoclinic(a, a * p["b/a"], a * p["c/a"], p["beta"])
    return Structure.from_spacegroup("C2/c", lat, [s[0] for s in p["sites"]], [s[2] for s in p["sites"]])


def cu2v2o7_beta_unrelaxed() -> Structure:
    """alpha-Zn2V2O7 positions, Cu on the Zn site, in the ziesite cell (fractional coordinates kept)."""
    proto = zn2v2o7_prototype()
    c = ZIESITE_CELL
    lat = Lattice.monoclinic(c["a"], c["b"], c["c"], c["beta"])
    species = ["Cu" if site.specie.symbol == "Zn" else site.specie.symbol for site in proto]
    return Structure(lat, species, proto.frac_coords)


def build_cu2v2o7_beta(fmax: float = RELAX_FMAX, steps: int = RELAX_STEPS) -> Derived:
    start = cu2v2o7_beta_unrelaxed()
    r = relax_keep_symmetry(start, relax_cell=False, fmax=fmax, steps=steps)
    cu_o = neighbour_distances(r.structure, "Cu", "O", 2.6)
    p = ZN2V2O7_AFLOW
    recipe = {
        "prototype": "alpha-Zn2V2O7, AFLOW A7B2C2_mC44_15_e3f_f_f (C2/c, Z = 4)",
        "prototype_parameters": {"a": p["a"], "b/a": p["b/a"], "c/a": p["c/a"], "beta": p["beta"],
                                 "sites": [[s, w, list(x)] for s, w, x in p["sites"]]},
        "prototype_parameters_source": "quoted in hetero issue 13 from the AFLOW source aflow_anrl_list.cpp "
                                       "(part 3); not re-read offline",
        "substitution": "Zn -> Cu (8f)",
        "cell": dict(ZIESITE_CELL, source=ZIESITE_SOURCE, kept_fixed=True),
        "relaxation": {"code": chgnet_version(), "what": "positions only, fixed experimental cell",
                       "constraint": f"ASE FixSymmetry (C2/c, symprec {SYMPREC})", "optimizer": "ASE BFGS",
                       "fmax_eV_A": fmax, "max_steps": steps, "steps": r.steps,
                       "final_fmax_eV_A": round(r.fmax_eV_A, 4),
                       "max_displacement_A": round(r.max_displacement_A, 3),
                       "energy_per_atom_eV": round(r.energy_per_atom_eV, 5)},
        "not_done": "GPAW PBE relaxation (later step)",
        "regenerate": "python -m hetero.structures.derived",
    }
    meta = dict(
        formula="Cu2V2O7", dimensionality="bulk", temperature_K=None, verified=False, provenance="derived",
        source="DERIVED (not experimental): alpha-Zn2V2O7 prototype (AFLOW A7B2C2_mC44_15_e3f_f_f) with Cu on the "
               "Zn site, in the ziesite cell a 7.689, b 8.029, c 10.106 A, beta 110.27 deg, positions CHGNet-"
               "relaxed at that fixed cell (C2/c kept); recipe in hetero/structures/derived.py",
        notes="beta-Cu2V2O7 (ziesite) built from the isotypic alpha-Zn2V2O7 structure because no refined ziesite "
              "coordinates were available offline (ziesite: Hughes & Birnie, Am. Mineral. 65, 1146 (1980)). Cell = "
              "experimental ziesite cell, not relaxed; atomic positions relaxed with CHGNet only (GPAW PBE relaxation "
              f"not yet done). CHGNet moved atoms by up to {r.max_displacement_A:.2f} A from the substituted "
              "prototype and "
              f"gives Cu-O {', '.join(f'{x:.2f}' for x in cu_o)} A. Replace with a refined structure (ICSD/COD/AMCSD) "
              "when available.",
        recipe=recipe,
    )
    return Derived("Cu2V2O7_beta", r.structure, meta, {"relax": r, "unrelaxed": start})


# ------------------------------------------------------------------------------------------------
# V5S8
# ------------------------------------------------------------------------------------------------
def vs_nias(a: float = VS_NIAS["a"], c: float = VS_NIAS["c"]) -> Structure:
    return Structure.from_spacegroup("P6_3/mmc", Lattice.hexagonal(a, c), ["V", "S"], [[0, 0, 0], [1 / 3, 2 / 3, 0.25]])


@dataclass
class Enumeration:
    n_configurations: int
    by_spacegroup: dict[str, int]  # space-group symbol -> configurations
    distinct: dict[str, list[Structure]]  # space-group symbol -> symmetry-distinct orderings (supercells)


@functools.lru_cache(maxsize=2)  # grouping 784 orderings takes seconds; callers must not modify the result
def enumerate_v5s8_orderings(a: float = VS_NIAS["a"], c: float = VS_NIAS["c"]) -> Enumeration:
    """Every V5S8 ordering of the NiAs supercell: metal layers at z = 0, 1/2 full, z = 1/4, 3/4 keep 2 of 8 V.

    Which two layers are full does not matter (a translation by c_hex maps one choice onto the other).
    Orderings are grouped by space group (spglib, symprec 0.01 A on the ideal lattice) and within each
    group by pymatgen's StructureMatcher (no scaling, primitive cells)."""
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    sc = vs_nias(a, c)
    sc.make_supercell(V5S8_SUPERCELL)
    layers: dict[float, list[int]] = collections.defaultdict(list)
    for i, site in enumerate(sc):
        if site.specie.symbol == "V":
            layers[round(float(site.frac_coords[2]) % 1.0, 4)].append(i)
    if sorted(layers) != [0.0, 0.25, 0.5, 0.75] or any(len(v) != 8 for v in layers.values()):
        raise RuntimeError(f"unexpected metal layers in the VS supercell: { {k: len(v) for k, v in layers.items()} }")
    partial = (layers[0.25], layers[0.75])
    groups: dict[str, list[Structure]] = collections.defaultdict(list)
    n = 0
    for keep1 in itertools.combinations(partial[0], V5S8_KEEP_PER_PARTIAL_LAYER):
        for keep2 in itertools.combinations(partial[1], V5S8_KEEP_PER_PARTIAL_LAYER):
            drop = (set(partial[0]) - set(keep1)) | (set(partial[1]) - set(keep2))
            s = sc.copy()
            s.remove_sites(sorted(drop))
            groups[SpacegroupAnalyzer(s, symprec=SYMPREC).get_space_group_symbol()].append(s)
            n += 1
    matcher = StructureMatcher(primitive_cell=True, scale=False, attempt_supercell=False)
    distinct = {sg: [g[0] for g in matcher.group_structures(ss)] for sg, ss in groups.items()}
    return Enumeration(n, {sg: len(ss) for sg, ss in groups.items()}, distinct)


def _in_plane_s_neighbours(s: Structure, normal: np.ndarray, rmax: float = 3.8, dz: float = 0.5) -> float:
    """Mean number of S-S neighbours (< rmax) lying in the plane normal to `normal`: about 6 when the
    plane is a close-packed S layer of the NiAs parent, 2 for planes cut across the layers."""
    counts = []
    for i, site in enumerate(s):
        if site.specie.symbol != "S":
            continue
        counts.append(sum(1 for n in s.get_neighbors(site, rmax)
                          if n.specie.symbol == "S" and abs(float((n.coords - site.coords) @ normal)) < dz))
    return float(np.mean(counts))


def orthohexagonal_cell(conv: Structure) -> tuple[float, float, float, float]:
    """(A, B, C, beta) of a V5S8 C2/m conventional cell (b unique) in the 2*sqrt3 a x 2a x 2c setting of
    its NiAs parent: A, C lattice vectors in the a-c plane spanning twice the conventional cell, the
    A-B plane a close-packed S layer (C the stacking axis), beta(A, C) nearest 90 deg."""
    a, b, c = conv.lattice.matrix
    combos = [(i, k) for i in range(-2, 3) for k in range(-2, 3) if (i, k) != (0, 0)]
    best = None
    for (i1, k1), (i3, k3) in itertools.permutations(combos, 2):
        if abs(i1 * k3 - k1 * i3) != 2:
            continue
        va, vc = i1 * a + k1 * c, i3 * a + k3 * c
        beta = float(np.degrees(np.arccos(va @ vc / np.linalg.norm(va) / np.linalg.norm(vc))))
        key = (round(abs(beta - 90.0), 2), round(float(np.linalg.norm(va) + np.linalg.norm(vc)), 3))
        if best is not None and key >= best[0]:
            continue
        normal = np.cross(va, b)
        if _in_plane_s_neighbours(conv, normal / np.linalg.norm(normal)) < 5.0:
            continue
        lengths = (float(np.linalg.norm(va)), float(np.linalg.norm(b)), float(np.linalg.norm(vc)))
        best = (key, (*lengths, max(beta, 180 - beta)))
    if best is None:
        raise RuntimeError("no orthohexagonal setting found for the V5S8 cell")
    return best[1]


def _conventional(s: Structure) -> Structure:
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    return SpacegroupAnalyzer(s, symprec=SYMPREC).get_conventional_standard_structure()


def build_v5s8(fmax: float = RELAX_FMAX, steps: int = RELAX_STEPS) -> Derived:
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    en = enumerate_v5s8_orderings()
    orderings = en.distinct.get("C2/m", [])
    if not orderings:
        raise RuntimeError("no C2/m ordering found among the V5S8 orderings")
    # relaxed in the conventional cell (26 atoms): on the chosen ordering, starting from the 13-atom primitive
    # cell, BFGS ends in a second CHGNet minimum 2.4 meV/atom higher (cell 1 % smaller)
    conventional = [_conventional(o) for o in orderings]
    relaxed = [relax_keep_symmetry(c, relax_cell=True, fmax=fmax, steps=steps) for c in conventional]
    best = int(np.argmin([r.energy_per_atom_eV for r in relaxed]))
    r = relaxed[best]
    e_min = r.energy_per_atom_eV
    variants = []
    for i, (c0, ri) in enumerate(zip(conventional, relaxed)):
        sym = SpacegroupAnalyzer(c0, symprec=SYMPREC).get_symmetrized_structure()
        wyck = sorted(f"{e[0].specie.symbol} {w}" for e, w in zip(sym.equivalent_sites, sym.wyckoff_symbols))
        conv = _conventional(ri.structure)
        variants.append({
            "variant": i, "chosen": i == best, "wyckoff": wyck,
            "energy_per_atom_eV": round(ri.energy_per_atom_eV, 5),
            "energy_above_chosen_meV_atom": round(1000 * (ri.energy_per_atom_eV - e_min), 1),
            "relaxed_conventional_cell": [round(x, 4) for x in (*conv.lattice.abc, *conv.lattice.angles)],
            "relaxed_orthohexagonal_cell_A_B_C_beta": [round(x, 4) for x in orthohexagonal_cell(conv)],
            "volume_change": round(ri.volume_change, 4), "steps": ri.steps})
    final = _conventional(r.structure)
    recipe = {
        "parent": f"NiAs-type VS, P6_3/mmc, a {VS_NIAS['a']}, c {VS_NIAS['c']} A (starting cell; relaxed afterwards)",
        "supercell": "2*sqrt(3)a x 2a x 2c orthohexagonal (hexagonal -> supercell matrix "
                     f"{[list(r_) for r_ in V5S8_SUPERCELL]}), 32 V + 32 S",
        "ordering": "metal layers z = 0 and 1/2 full; z = 1/4 and 3/4 keep 2 of their 8 V (1/4) -> V20S32 = 4 V5S8",
        "enumeration": {"configurations": en.n_configurations, "by_space_group": dict(sorted(en.by_spacegroup.items())),
                        "distinct_by_space_group": {sg: len(v) for sg, v in sorted(en.distinct.items())},
                        "grouping": f"spglib symprec {SYMPREC} A, then pymatgen StructureMatcher (scale=False)"},
        "c2m_variants": variants,
        "selection": "the C2/m ordering with the lowest CHGNet energy after relaxation",
        "relaxation": {"code": chgnet_version(), "what": "cell and positions",
                       "constraint": f"ASE FixSymmetry (C2/m, symprec {SYMPREC}) + FrechetCellFilter",
                       "optimizer": "ASE BFGS", "fmax_eV_A": fmax, "max_steps": steps, "steps": r.steps,
                       "final_fmax_eV_A": round(r.fmax_eV_A, 4), "volume_change": round(r.volume_change, 4)},
        "not_done": "GPAW PBE relaxation (later step)",
        "regenerate": "python -m hetero.structures.derived",
    }
    n_c2m = len(orderings)
    others = [v["energy_above_chosen_meV_atom"] for v in variants if not v["chosen"]]
    why = f"the lowest in CHGNet energy ({min(others):.0f} meV/atom below the next)" if others else "the only one"
    meta = dict(
        formula="V5S8", dimensionality="bulk", temperature_K=None, verified=False, provenance="derived",
        source="DERIVED (not experimental): vacancy-ordered NiAs-type VS (2*sqrt3 a x 2a x 2c supercell, alternate "
               "metal layers full / 1/4 filled), lowest-energy C2/m ordering, cell and positions CHGNet-relaxed; "
               "recipe in hetero/structures/derived.py",
        notes=f"V5S8 built as an ordering of the NiAs-type VS lattice because no refined V5S8 coordinates were "
              f"available offline. Of {en.n_configurations} orderings, {en.by_spacegroup.get('C2/m', 0)} are C2/m, "
              f"forming {n_c2m} symmetry-distinct variant(s); the one kept is {why} (recipe.c2m_variants). Cell and "
              f"positions relaxed with CHGNet (volume {r.volume_change:+.1%} from the ideal a {VS_NIAS['a']}, "
              f"c {VS_NIAS['c']} A supercell); GPAW PBE relaxation not yet done. No published V5S8 cell could be read "
              "offline to compare with. Replace with a refined structure (ICSD/COD) when available.",
        recipe=recipe,
    )
    return Derived("V5S8", final, meta, {"relax": r, "enumeration": en, "c2m_relaxed": relaxed, "chosen": best,
                                         "variants": variants})


BUILDERS = {"Cu2V2O7_beta": build_cu2v2o7_beta, "V5S8": build_v5s8}


def build_all() -> dict[str, Derived]:
    return {name: f() for name, f in BUILDERS.items()}


def index_record(d: Derived) -> dict:
    """The index.json record of a derived entry (the CIF is written without symmetrisation, so the
    setting and the relaxed coordinates are stored exactly)."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    sga = SpacegroupAnalyzer(d.structure, symprec=SYMPREC)
    rec = dict(name=d.name, **d.meta)
    rec.update(file=f"{d.name}.cif", spacegroup_symbol=sga.get_space_group_symbol(),
               spacegroup_number=sga.get_space_group_number(), symprec=SYMPREC, n_sites=len(d.structure))
    return rec


def write(d: Derived, folder: Path = DATA) -> dict:
    from pymatgen.io.cif import CifWriter

    path = folder / f"{d.name}.cif"
    CifWriter(d.structure).write_file(path)
    header = (f"# {d.name}: DERIVED structure, not experimental. {d.meta['source']}\n"
              "# Exact recipe: the 'recipe' of this entry in index.json. "
              "Regenerate: python -m hetero.structures.derived\n")
    path.write_text(header + path.read_text())
    return index_record(d)


def main() -> None:
    index_path = DATA / "index.json"
    index = json.loads(index_path.read_text())
    for name, d in build_all().items():
        index[name] = write(d)
        print(f"{name}: {d.structure.composition.reduced_formula}, {index[name]['spacegroup_symbol']}, "
              f"{len(d.structure)} sites -> {DATA / (name + '.cif')}")
    index_path.write_text(json.dumps(index, indent=2) + "\n")


if __name__ == "__main__":
    main()
