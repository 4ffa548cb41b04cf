"""Bader charges the way VASP users compute them (Henkelman group, `bader CHGCAR -ref CHGCAR_sum`):
space is split into atomic basins on a reference density whose maxima sit on the nuclei
(AECCAR0 + AECCAR2: core + all-electron valence), and the valence charge (CHGCAR) is integrated in
those basins. No core count is subtracted, so the core-integration error does not land on each atom.

The core density of AECCAR0 is sharply peaked and only integrates to Z - ZVAL on a fine enough grid;
``core_check`` integrates it in the same basins and reports atoms that miss their core count (a coarse
FFT grid makes the reference, and so the partition, unreliable: raise NGXF/NGYF/NGZF).
baderkit does the partitioning (the first call compiles numba kernels, cached on disk).
"""

from __future__ import annotations

import logging

import numpy as np
from pymatgen.core import Structure

from hetero.analysis.bader import VACUUM_E_PER_A3, _import_baderkit, charge_summary

log = logging.getLogger(__name__)

# an atom's integrated core may miss Z - ZVAL by this much before the partition is called unreliable
CORE_TOL_E = 0.1
CORE_TOL_REL = 0.02


def _grid(bk, structure: Structure, rho_e_per_A3: np.ndarray):
    return bk.Grid(structure=bk.Structure.from_dict(structure.as_dict()),
                   data={"total": np.asarray(rho_e_per_A3, dtype=float) * structure.volume})


def bader_on_reference(
    structure: Structure,
    charge_e_per_A3: np.ndarray,
    reference_e_per_A3: np.ndarray,
    valence: list[float],
    fragments: dict[str, list[int]] | None = None,
    core_e_per_A3: np.ndarray | None = None,
    core_expected: list[float] | None = None,
) -> dict:
    """Basins from ``reference``, electrons from ``charge`` (both e/A^3 on the same periodic grid of
    ``structure``). Returns the keys of hetero.analysis.bader.bader_analysis plus ``method`` and, when
    ``core`` is given, ``core_check`` {integrated, expected, bad_atoms, ok}."""
    charge = np.asarray(charge_e_per_A3, dtype=float)
    reference = np.asarray(reference_e_per_A3, dtype=float)
    if charge.shape != reference.shape:
        raise ValueError(f"charge grid {charge.shape} and reference grid {reference.shape} differ: both must come "
                         "from the same run (CHGCAR and AECCAR0/AECCAR2 share VASP's fine grid)")
    bk = _import_baderkit()
    bader = bk.Bader(charge_grid=_grid(bk, structure, charge), reference_grid=_grid(bk, structure, reference),
                     vacuum_tol=VACUUM_E_PER_A3)  # the vacuum cut of analysis.bader (why: there)
    out = charge_summary(structure, bader.atom_charges, valence, fragments)
    out["method"] = "Bader basins of the reference density (AECCAR0 + AECCAR2), valence charge (CHGCAR) integrated"
    if core_e_per_A3 is not None and core_expected is not None:
        out["core_check"] = core_check(structure, np.asarray(bader.atom_labels), core_e_per_A3, core_expected)
    return out


def core_check(structure: Structure, atom_labels: np.ndarray, core_e_per_A3: np.ndarray,
               core_expected: list[float]) -> dict:
    """Core electrons (AECCAR0) inside each atom's basin against Z - ZVAL; warns with the fix when off."""
    core = np.asarray(core_e_per_A3, dtype=float)
    labels = np.rint(np.asarray(atom_labels)).astype(int).ravel()
    voxel = structure.volume / core.size
    n = len(structure)
    ok_labels = (labels >= 0) & (labels < n)
    integrated = np.bincount(labels[ok_labels], weights=core.ravel()[ok_labels], minlength=n)[:n] * voxel
    expected = np.asarray(core_expected, dtype=float)
    tol = np.maximum(CORE_TOL_E, CORE_TOL_REL * expected)
    bad = [i for i in range(n) if abs(integrated[i] - expected[i]) > tol[i]]
    if bad:
        worst = max(bad, key=lambda i: abs(integrated[i] - expected[i]))
        log.warning(
            "Bader reference: the core density (AECCAR0) in atom %d's basin (%s) integrates to %.2f e, not Z - ZVAL = "
            "%.1f (%d atoms off): the grid %s is too coarse for the cores, so the reference partition is unreliable; "
            "rerun the static with finer NGXF/NGYF/NGZF (e.g. vasp: {PREC: Accurate} or 1.5-2 x the default grid)",
            worst, structure[worst].specie.symbol, integrated[worst], expected[worst], len(bad), list(core.shape))
    return {"integrated": integrated.tolist(), "expected": expected.tolist(), "bad_atoms": bad, "ok": not bad}
