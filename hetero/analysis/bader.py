"""Bader charges on a periodic all-electron density (engine-free; baderkit does the partitioning).

baderkit is used as a library (its numba kernels are fast once compiled; the first compile takes
minutes and is cached on disk). We feed it the all-electron density: on the pseudo density a light
ion such as Li gets no basin of its own (measured). Core electrons are then subtracted per atom so
the charges are valence counts comparable with VASP's AECCAR0+AECCAR2 convention.
"""

from __future__ import annotations

import numpy as np
from pymatgen.core import Structure


def _import_baderkit():
    """baderkit calls logging.basicConfig with a rich handler at import: keep the caller's logging."""
    import logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    import baderkit

    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("baderkit").setLevel(logging.WARNING)
    return baderkit


# Points below this density (e/A^3) are vacuum, assigned to no atom. Without a cut baderkit spends its time on the
# spurious maxima of a slab's flat, noisy vacuum: the 40-atom Sb2S3 slab (7.5 M points, 72 % below the cut) took
# 20 min, with the cut 14 s and every atom's charge within 1e-4 e (benchmarks/bench_bader.py). baderkit's own
# default, 1e-3, dropped ~0.01 e on slabs.
VACUUM_E_PER_A3 = 1e-5


def bader_electrons(structure: Structure, rho_e_per_A3: np.ndarray,
                    vacuum_tol: float | None = VACUUM_E_PER_A3) -> np.ndarray:
    """Electrons in each atom's Bader basin for a density on the periodic grid of `structure`; points below
    `vacuum_tol` (e/A^3) are vacuum, assigned to no atom (None: every point assigned)."""
    bk = _import_baderkit()
    Bader, Grid, BkStructure = bk.Bader, bk.Grid, bk.Structure

    bk_structure = BkStructure.from_dict(structure.as_dict())
    grid = Grid(structure=bk_structure, data={"total": np.asarray(rho_e_per_A3) * structure.volume})
    return np.asarray(Bader(charge_grid=grid, vacuum_tol=False if vacuum_tol is None else vacuum_tol).atom_charges,
                      dtype=float)


def bader_analysis(
    structure: Structure,
    rho_all_electron: np.ndarray,
    core_electrons: list[float],
    valence: list[float],
    fragments: dict[str, list[int]] | None = None,
) -> dict:
    """Valence electrons per basin, net charges (+ = lost electrons) and the sum per fragment."""
    electrons_all = bader_electrons(structure, rho_all_electron)
    return charge_summary(structure, electrons_all - np.asarray(core_electrons, dtype=float), valence, fragments)


def charge_summary(structure: Structure, electrons, valence: list[float],
                   fragments: dict[str, list[int]] | None = None) -> dict:
    """Electrons per basin -> net charges (+ = lost electrons) and their sum per fragment."""
    electrons = np.asarray(electrons, dtype=float)
    net = np.asarray(valence, dtype=float) - electrons
    fragments = fragments or {}
    return {
        "symbols": [sp.symbol for sp in structure.species],
        "electrons": electrons.tolist(),
        "valence": [float(v) for v in valence],
        "net_charge": net.tolist(),
        "fragments": fragments,
        "fragment_charge": {name: float(net[idx].sum()) for name, idx in fragments.items()},
        "total_electrons": float(electrons.sum()),
    }


def ion_charge_by_fragment(host: dict, with_ion: dict) -> dict[str, float] | None:
    """Where an adsorbed ion's electrons went: each host fragment's Bader net-charge change from the bare host.

    `host` and `with_ion` are Bader summaries (charge_summary) of the bare host, whose `fragments` name its sides
    (film / substrate), and of the host with the ion(s) appended after the host atoms. Negative = the side gained
    electrons. None when the host has no sides or the atom lists do not line up (a different model)."""
    sides = host.get("fragments") or {}
    q0, q1 = host.get("net_charge") or [], with_ion.get("net_charge") or []
    if len(sides) < 2 or not q0 or len(q1) <= len(q0) or host.get("symbols") != (with_ion.get("symbols") or [])[:len(q0)]:
        return None
    change = np.asarray(q1[:len(q0)], float) - np.asarray(q0, float)
    return {name: float(change[list(idx)].sum()) for name, idx in sides.items()}
