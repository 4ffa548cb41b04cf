"""SCF iterations to convergence of a GPAW static from two starting magnetic moments (run on demand; prints a table,
asserts nothing). It replays a finished static's own task.json (atoms and settings) to convergence with

- as-run: the task's own start (the interface_lcao preset: V/Cu 1 muB, every other element at pymatgen's MAGMOM
  default 0.6 muB, the ferromagnetic start atomate2's sets use);
- metals-only: the same, with every element outside settings.MAGNETIC_PRONE (C, O, S, Li ...) started at 0.

The VS2/V2CO2 stack's static (29 atoms) needed 64 iterations from the as-run start (21.7 muB, of which 10.8 on C, O
and S) to a 2.75 muB solution with ~0.01 muB on every anion; the question is whether the anion start is what costs.
Compare energies and moments too: a different start may end in another magnetic solution.

    GPAW_MPI_BACKEND=cgpaw mpiexec -n 2 python benchmarks/bench_scf_start.py TASK_FOLDER [--variants ...]

Measured 2026-12-04 (1 rank, beside a running campaign) on the VS2 single layer's static
(examples/vs2_li/VS2_1L-from-VS2_V2CO2-fast/host/static-f0ad6ba7725b: 9 atoms, LCAO dzp, default mixing):

| start | total start (muB) | SCF iterations | wall s | E (eV) | final moment (muB) |
|---|---|---|---|---|---|
| as-run | 6.6 | 15 | 96 | -57.1965 | 2.79 |
| metals-only | 3.0 | 15 | 93 | -57.1966 | 2.79 |

No difference there: same solution, same count. Not yet measured on the stack (two ~45-min statics), where the
slow mixing (beta 0.02) may make the anion start matter.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path

from bench_gpaw_lcao import _iteration_times, replay_setup


def _start(settings: dict, variant: str) -> dict:
    from hetero.engines.settings import MAGNETIC_PRONE

    moms = dict(settings.get("magmoms") or {})
    if variant == "metals-only":
        moms = {el: (m if el in MAGNETIC_PRONE else 0.0) for el, m in moms.items()}
    return moms


def run(task_folder: Path, variant: str, out: Path) -> dict:
    from gpaw.mpi import world

    task = json.loads((task_folder / "task.json").read_text())
    settings = dict(task["settings"], magmoms=_start(task["settings"], variant))
    log = out / f"{variant}.txt"
    atoms, dft = replay_setup(task, settings, log)
    t0 = time.time()
    energy = atoms.get_potential_energy()
    wall = time.time() - t0
    text = log.read_text(errors="replace") if world.rank == 0 else ""
    n_iter = len(re.findall(r"^\|?iter:", text, flags=re.M))
    moment = float(dft.get_magnetic_moment()) if settings.get("spinpol") else 0.0
    return {"variant": variant, "start_muB": sum(settings["magmoms"].get(s, 0.0) for s in task["atoms"]["symbols"]),
            "n_scf": n_iter, "wall_s": wall, "energy_eV": energy, "moment_muB": moment,
            "per_iter_s": (sum(_iteration_times(log)) / max(n_iter - 1, 1)) if world.rank == 0 else None}


if __name__ == "__main__":
    from gpaw.mpi import world

    p = argparse.ArgumentParser()
    p.add_argument("task_folder", type=Path)
    p.add_argument("--variants", nargs="+", default=["as-run", "metals-only"])
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run(args.task_folder, v, Path(tmp)) for v in args.variants]
    if world.rank == 0:
        print(f"{args.task_folder} ({world.size} MPI ranks, to convergence)")
        print("| start | total start (muB) | SCF iterations | wall s | E (eV) | final moment (muB) |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['variant']} | {r['start_muB']:.1f} | {r['n_scf']} | {r['wall_s']:.0f} | {r['energy_eV']:.4f} | "
                  f"{r['moment_muB']:.2f} |")
