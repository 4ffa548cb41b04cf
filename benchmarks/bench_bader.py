"""Bader wall time and charges on a finished GPAW static's all-electron density with and without a vacuum cut (run
on demand; prints a table, asserts nothing).

    python benchmarks/bench_bader.py STATIC_TASK_FOLDER [--vacuum-tols none 1e-5 1e-4]

A slab's vacuum is most of its grid; there the density is flat and noisy, and baderkit's saddle clean-up
(MethodBase._update_saddles, seen with py-spy) spends its time on the spurious maxima it finds there. `none`
is baderkit's vacuum_tol=False (every point assigned); a number is the cut in e/A^3 (baderkit's default 1e-3
dropped ~0.01 e on slabs).

Measured 2026-12-04 on the Sb2S3 slab's static (examples/sb2s3_k_mlgeom: 40 atoms, all-electron grid 112 x 240 x
280 = 7.5 M points, 72 % of them below 1e-5 e/A^3), one thread, a GPAW run sharing the machine:

| vacuum cut (e/A^3) | wall s | electrons in basins (all-electron) | max per-atom change vs no cut (e) |
|---|---|---|---|
| none (the campaign's own Bader job) | 1218 | 1200.0000 | - |
| 1e-6 | 28 | | 0.0017 |
| 1e-5 (hetero's default) | 14 | 1200.0002 | 0.0001 |
| 1e-4 | 3 | 1199.9919 | 0.0003 vs 1e-5 |
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from pymatgen.core import Lattice, Structure


def _structure(result: dict) -> Structure:
    atoms = result["atoms"]
    return Structure(Lattice(atoms["cell"]), atoms["symbols"], atoms["positions"], coords_are_cartesian=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task_folder", type=Path)
    ap.add_argument("--vacuum-tols", nargs="+", default=["none", "1e-5", "1e-4"])
    args = ap.parse_args()
    from hetero.analysis.bader import bader_electrons

    result = json.loads((args.task_folder / "result.json").read_text())
    structure = _structure(result)
    rho = np.load(args.task_folder / "density.npz")["all_electron"]
    print(f"{args.task_folder}: {len(structure)} atoms, grid {rho.shape} ({rho.size / 1e6:.1f} M points)")
    rows, ref = [], None  # the first cut listed is the reference of the last column
    for tol in args.vacuum_tols:
        t0 = time.perf_counter()
        e = bader_electrons(structure, rho, vacuum_tol=None if tol == "none" else float(tol))
        wall = time.perf_counter() - t0
        ref = e if ref is None else ref
        rows.append((tol, wall, e.sum(), np.abs(e - ref).max()))
    print("| vacuum cut (e/A^3) | wall s | electrons in basins | max per-atom change vs first (e) |")
    print("|---|---|---|---|")
    for tol, wall, total, diff in rows:
        print(f"| {tol} | {wall:.0f} | {total:.4f} | {diff:.4f} |")


if __name__ == "__main__":
    main()
