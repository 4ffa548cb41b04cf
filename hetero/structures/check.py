"""Plausibility check of a library structure: symmetry, oxidation states, bond lengths, CHGNet relax.

``check_structure(structure, entry) -> CheckReport``. Each test is one ``CheckItem`` with
``passed`` True / False, or None when the test does not apply (the detail says why). The report
passes when no item failed.

Criteria
- space group: ``SpacegroupAnalyzer(structure, symprec=entry.symprec)`` (0.01 A by default) must
  give ``entry.spacegroup_number``.
- bond valence: pymatgen ``BVAnalyzer`` oxidation states must equal the expected ones for ionic /
  covalent compounds listed in ``EXPECTED_OXIDATION``; skipped for metals, MXenes and graphene
  (no meaningful formal valences) and for VN (metallic, BVAnalyzer is unreliable).
- nearest-neighbour distances: the shortest bond of every site must lie within 10 % of the range of
  known bond lengths in ``BOND_LENGTHS`` (values quoted there with their sources); pairs not in the
  table fall back to the sum of Cordero covalent radii (Dalton Trans. 2008, 2832; ``ase.data``).
- CHGNet relaxation (``chgnet.model.StructOptimizer``, fmax 0.1 eV/A, <= 100 steps): volume change
  < 8 % and no atom moves more than 0.5 A (after removing the rigid translation). 2D entries relax
  positions only (fixed cell), so the vacuum cannot collapse. For bulk van der Waals layered crystals
  (``VDW_LAYERED``) the volume change is reported but not judged: without dispersion CHGNet opens the
  van der Waals gap (about +9 % for 2H-MoS2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pymatgen.core import Structure

from hetero.structures import LibraryEntry

SYMPREC_DEFAULT = 0.01
NN_TOLERANCE = 0.10
MAX_VOLUME_CHANGE = 0.08
MAX_DISPLACEMENT = 0.5  # Angstrom

# Known nearest-neighbour bond lengths (min, max) in Angstrom, with where they come from.
BOND_LENGTHS: dict[frozenset, tuple[float, float, str]] = {
    frozenset({"V", "O"}): (1.58, 2.02, "alpha-V2O5, Enjalbert & Galy 1986"),
    frozenset({"V", "S"}): (2.35, 2.45, "1T-VS2 and V5S8 (V-S 2.35-2.45)"),
    frozenset({"V", "N"}): (2.07, 2.07, "rocksalt VN, a/2"),
    frozenset({"V", "C"}): (1.98, 2.08, "rocksalt VC a/2 = 2.08; V2C MXenes ~2.0 (PBE)"),
    frozenset({"V", "F"}): (1.94, 2.15, "VF3 V-F 1.94; V2CF2 ~2.1 (PBE)"),
    frozenset({"Ti", "S"}): (2.43, 2.43, "1T-TiS2, Chianelli et al. 1975"),
    frozenset({"Ti", "O"}): (1.95, 2.00, "rutile TiO2; Ti2CO2 ~1.97 (PBE)"),
    frozenset({"Ti", "C"}): (2.16, 2.20, "rocksalt TiC a/2 = 2.165; Ti2C MXenes ~2.2 (PBE)"),
    frozenset({"Mo", "S"}): (2.41, 2.41, "2H-MoS2, Schoenfeld et al. 1983"),
    frozenset({"C"}): (1.42, 1.42, "graphite/graphene C-C"),
    frozenset({"O", "H"}): (0.96, 1.00, "hydroxyl O-H"),
    frozenset({"Cu", "O"}): (1.90, 2.00, "CuO, Cu2V2O7 Cu-O"),
    frozenset({"Sb", "S"}): (2.45, 2.70, "stibnite Sb-S (short bonds)"),
    frozenset({"Li"}): (3.04, 3.04, "bcc Li nearest-neighbour distance, a*sqrt(3)/2"),
    frozenset({"Na"}): (3.72, 3.72, "bcc Na nearest-neighbour distance"),
    frozenset({"K"}): (4.61, 4.61, "bcc K nearest-neighbour distance"),
}

# Expected formal oxidation states where bond valence applies (by canonical library name).
EXPECTED_OXIDATION: dict[str, dict[str, int]] = {
    "v2o5": {"V": 5, "O": -2},
    "tis2_1t": {"Ti": 4, "S": -2},
    "mos2_2h": {"Mo": 4, "S": -2},
    "vs2_bulk": {"V": 4, "S": -2},
    "vs2_1l": {"V": 4, "S": -2},
    "cu2v2o7_beta": {"Cu": 2, "V": 5, "O": -2},
    "cu2v2o7_alpha": {"Cu": 2, "V": 5, "O": -2},
    "sb2s3": {"Sb": 3, "S": -2},
}
BV_SKIP: dict[str, str] = {
    "li": "metal", "na": "metal", "k": "metal", "graphene": "covalent semimetal, no formal valences",
    "v2c": "MXene (metallic, carbide)", "v2co2": "MXene (metallic)", "v2cf2": "MXene (metallic)",
    "v2coh2": "MXene (metallic)", "ti2co2": "MXene", "vn": "metallic nitride; BVAnalyzer unreliable",
    "v5s8": "mixed-valence metallic sulfide",
}
# Bulk van der Waals layered crystals: CHGNet (PBE-trained, no dispersion) overestimates the interlayer
# gap (+9 % volume for 2H-MoS2), so for these the volume change is reported but does not fail the check.
VDW_LAYERED = {"mos2_2h", "vs2_bulk", "tis2_1t"}


@dataclass
class CheckItem:
    name: str
    passed: bool | None  # None: not applicable / skipped
    detail: str


@dataclass
class CheckReport:
    name: str
    verified: bool
    items: list[CheckItem] = field(default_factory=list)
    volume_change: float | None = None  # relative
    max_displacement: float | None = None  # Angstrom

    @property
    def passed(self) -> bool:
        return all(i.passed is not False for i in self.items)

    def failures(self) -> list[CheckItem]:
        return [i for i in self.items if i.passed is False]

    def summary(self) -> str:
        bad = self.failures()
        if not bad:
            return "pass"
        return "; ".join(f"{i.name}: {i.detail}" for i in bad)


# ------------------------------------------------------------------------------------------------
def check_spacegroup(structure: Structure, entry: LibraryEntry) -> CheckItem:
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    symprec = entry.symprec or SYMPREC_DEFAULT
    if entry.spacegroup_number is None:
        return CheckItem("space group", None, "no recorded space group")
    try:
        sga = SpacegroupAnalyzer(structure, symprec=symprec)
        num, sym = sga.get_space_group_number(), sga.get_space_group_symbol()
    except Exception as exc:  # noqa: BLE001
        return CheckItem("space group", False, f"spglib failed: {exc}")
    ok = num == entry.spacegroup_number
    return CheckItem("space group", ok,
                     f"{sym} ({num}) at symprec {symprec}; recorded {entry.spacegroup_symbol} ({entry.spacegroup_number})")


def check_oxidation(structure: Structure, entry: LibraryEntry) -> CheckItem:
    key = entry.name.lower()
    if key in BV_SKIP:
        return CheckItem("bond valence", None, f"skipped: {BV_SKIP[key]}")
    elements = {el.symbol for el in structure.composition.elements}
    if all(el.is_metal for el in structure.composition.elements) or len(elements) == 1:
        return CheckItem("bond valence", None, "skipped: elemental or all-metal")
    from pymatgen.analysis.bond_valence import BVAnalyzer

    try:
        valences = BVAnalyzer().get_valences(structure)
    except Exception as exc:  # noqa: BLE001
        if key in EXPECTED_OXIDATION:
            return CheckItem("bond valence", False, f"BVAnalyzer could not assign valences ({exc})")
        return CheckItem("bond valence", None, f"inconclusive: BVAnalyzer could not assign valences ({exc})")
    found: dict[str, set[int]] = {}
    for site, v in zip(structure, valences):
        found.setdefault(site.specie.symbol, set()).add(int(v))
    text = ", ".join(f"{el} {sorted(vs)}" for el, vs in sorted(found.items()))
    expected = EXPECTED_OXIDATION.get(key)
    if expected is None:
        return CheckItem("bond valence", True, f"assigned {text} (no expectation recorded)")
    ok = all(found.get(el) == {v} for el, v in expected.items())
    return CheckItem("bond valence", ok, f"assigned {text}; expected {expected}")


def _reference_range(a: str, b: str) -> tuple[float, float, str]:
    ref = BOND_LENGTHS.get(frozenset({a, b}))
    if ref:
        return ref
    from ase.data import atomic_numbers, covalent_radii

    d = float(covalent_radii[atomic_numbers[a]] + covalent_radii[atomic_numbers[b]])
    return d, d, "sum of Cordero covalent radii"


def check_distances(structure: Structure, entry: LibraryEntry | None = None) -> CheckItem:
    bad = []
    for i, site in enumerate(structure):
        neigh = structure.get_neighbors(site, 6.0)
        if not neigh:
            bad.append(f"{site.specie.symbol}{i}: no neighbour within 6 A")
            continue
        n = min(neigh, key=lambda x: x.nn_distance)
        a, b = site.specie.symbol, n.specie.symbol
        lo, hi, _src = _reference_range(a, b)
        if not (lo * (1 - NN_TOLERANCE) <= n.nn_distance <= hi * (1 + NN_TOLERANCE)):
            bad.append(f"{a}{i}-{b} {n.nn_distance:.2f} A (ref {lo:.2f}-{hi:.2f})")
    if bad:
        more = f" (+{len(bad) - 4} more)" if len(bad) > 4 else ""
        return CheckItem("nn distances", False, "; ".join(bad[:4]) + more)
    return CheckItem("nn distances", True, f"all {len(structure)} sites within {NN_TOLERANCE:.0%} of known bond lengths")


_OPTIMIZER = None


def get_optimizer():
    """One CHGNet StructOptimizer per process (model loading takes seconds)."""
    global _OPTIMIZER
    if _OPTIMIZER is None:
        import warnings

        from chgnet.model import CHGNet, StructOptimizer

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = CHGNet.load(verbose=False)
        _OPTIMIZER = StructOptimizer(model=model)
    return _OPTIMIZER


def check_relaxation(structure: Structure, entry: LibraryEntry, fmax: float = 0.1, steps: int = 100,
                     optimizer=None) -> tuple[CheckItem, float, float]:
    opt = optimizer or get_optimizer()
    relax_cell = entry.dimensionality != "2D"
    try:
        result = opt.relax(structure.copy(), fmax=fmax, steps=steps, relax_cell=relax_cell, verbose=False)
    except Exception as exc:  # noqa: BLE001
        return CheckItem("CHGNet relax", False, f"relaxation failed: {exc}"), float("nan"), float("nan")
    final: Structure = result["final_structure"]
    dv = final.volume / structure.volume - 1.0
    dfrac = final.frac_coords - structure.frac_coords
    dfrac -= np.round(dfrac)
    dcart = dfrac @ final.lattice.matrix
    dcart -= dcart.mean(axis=0)  # rigid translation is not a structural change
    dmax = float(np.linalg.norm(dcart, axis=1).max())
    vdw = entry.name.lower() in VDW_LAYERED
    ok = (vdw or abs(dv) < MAX_VOLUME_CHANGE) and dmax < MAX_DISPLACEMENT
    mode = "cell+positions" if relax_cell else "positions only (2D, fixed cell)"
    if vdw:
        mode += " [vdW-layered: volume not judged, CHGNet lacks dispersion]"
    return (CheckItem("CHGNet relax", ok,
                      f"{mode}: volume {dv:+.1%} (limit {MAX_VOLUME_CHANGE:.0%}), max displacement {dmax:.2f} A "
                      f"(limit {MAX_DISPLACEMENT} A)"), dv, dmax)


def check_structure(structure: Structure, entry: LibraryEntry, relax: bool = True, fmax: float = 0.1,
                    steps: int = 100, optimizer=None) -> CheckReport:
    report = CheckReport(name=entry.name, verified=entry.verified)
    report.items.append(check_spacegroup(structure, entry))
    report.items.append(check_oxidation(structure, entry))
    report.items.append(check_distances(structure, entry))
    if relax:
        item, dv, dmax = check_relaxation(structure, entry, fmax=fmax, steps=steps, optimizer=optimizer)
        report.items.append(item)
        report.volume_change, report.max_displacement = dv, dmax
    else:
        report.items.append(CheckItem("CHGNet relax", None, "skipped on request"))
    return report
