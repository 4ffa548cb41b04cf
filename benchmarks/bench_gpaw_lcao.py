"""Seconds per SCF iteration of a GPAW task with code-path and Poisson-solver variants (run on demand; prints a
table, asserts nothing). Run it under MPI as production runs: it replays a finished task's own task.json (atoms and
settings), stops after --iters SCF iterations, and reads the per-iteration times from GPAW's log.

    GPAW_MPI_BACKEND=cgpaw mpiexec -n 2 python benchmarks/bench_gpaw_lcao.py TASK_FOLDER [--iters 4] [--variants ...]

Variants: new (GPAW 26's default code, as hetero runs it), legacy (legacy_gpaw=True), new-fastpoisson and
legacy-fastpoisson (poissonsolver {'name': 'fast'}: FFT instead of multigrid, with the same dipole layer).

Measured 2026-12-03 on the VS2/V2CO2 stack's static (examples/vs2_v2co2_li_mlgeom, host static: 29 atoms, LCAO dzp,
553 basis functions, h 0.2 A, 24x24x148 grid, k 4x4x1 -> 4 irreducible, spin, D3; 2 ranks, the queue paused):

| variant | s per SCF iteration |
|---|---|
| new | 50 |
| legacy | 48 |
| new-fastpoisson | 51 |
| legacy-fastpoisson | 51 |

Neither the code path nor the Poisson solver matters. A serial cProfile of two iterations puts 70 % of the time in
two C routines of GPAW's localized functions, LocalizedFunctionsCollection.construct_density (36 %) and
calculate_potential_matrices (34 %): basis-function products on the real-space grid, whose cost grows with the grid
points inside the slab times the basis functions overlapping there. The levers are the grid spacing h (0.25 A would
halve the points) and fewer SCF iterations, not the solver; hetero keeps h 0.2 A (GPAW's LCAO default) and instead
checkpoints long SCFs (gpaw_worker.SCF_CHECKPOINT_EVERY) so they survive a session's or a queue's time limit.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path

VARIANTS = {
    "new": {},
    "legacy": {"legacy_gpaw": True},
    "new-fastpoisson": {"poisson": "fast"},
    "legacy-fastpoisson": {"legacy_gpaw": True, "poisson": "fast"},
}


def _iteration_times(log: Path) -> list[float]:
    """Wall seconds between consecutive 'iter:' lines (GPAW prints hh:mm:ss)."""
    stamps = []
    for line in log.read_text(errors="replace").splitlines():
        m = re.match(r"^\|?iter:\s*\d+\|?\s*(\d\d):(\d\d):(\d\d)", line)
        if m:
            h, mi, s = map(int, m.groups())
            stamps.append(h * 3600 + mi * 60 + s)
    return [b - a for a, b in zip(stamps, stamps[1:])]


def replay_setup(task: dict, settings: dict, log: Path):
    """A finished task's atoms with the GPAW calculator the worker would build (its own code path): (atoms, gpaw)."""
    from hetero.engines import gpaw_worker

    atoms = gpaw_worker._atoms(task["atoms"], settings)
    gpaw_worker._prepare(atoms, settings)
    calc, dft = gpaw_worker._make_gpaw(settings, str(log))
    atoms.calc = calc
    return atoms, dft


def run(task_folder: Path, iters: int, variant: str, out: Path) -> dict:
    from gpaw import KohnShamConvergenceError
    from gpaw.mpi import world

    from hetero.engines import gpaw_worker

    task = json.loads((task_folder / "task.json").read_text())
    settings = dict(task["settings"], scf_maxiter=iters)
    extra = dict(VARIANTS[variant])
    poisson = extra.pop("poisson", None)
    real_gpaw = gpaw_worker.GPAW

    def patched(**kw):
        kw.update(extra)
        if poisson:
            kw["poissonsolver"] = {**kw.get("poissonsolver", {}), "name": poisson}
        return real_gpaw(**kw)

    gpaw_worker.GPAW = patched
    try:
        log = out / f"{variant}.txt"
        atoms, _gpaw = replay_setup(task, settings, log)
        t0 = time.time()
        try:
            atoms.get_potential_energy()
        except KohnShamConvergenceError:
            pass  # stopped after `iters` iterations on purpose
        wall = time.time() - t0
    finally:
        gpaw_worker.GPAW = real_gpaw
    times = _iteration_times(log) if world.rank == 0 else []
    return {"variant": variant, "wall_s": wall, "per_iter_s": sum(times[1:]) / max(len(times) - 1, 1) if times else None,
            "n_iter_lines": len(times) + 1}


if __name__ == "__main__":
    from gpaw.mpi import world

    p = argparse.ArgumentParser()
    p.add_argument("task_folder", type=Path)
    p.add_argument("--iters", type=int, default=4)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS))
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run(args.task_folder, args.iters, v, Path(tmp)) for v in args.variants]
    if world.rank == 0:
        print(f"{args.task_folder} ({world.size} MPI ranks, {args.iters} SCF iterations each)")
        print("| variant | wall s (incl. init) | s per SCF iteration (2nd on) |")
        print("|---|---|---|")
        for r in rows:
            per = f"{r['per_iter_s']:.1f}" if r["per_iter_s"] is not None else "n/a"
            print(f"| {r['variant']} | {r['wall_s']:.0f} | {per} |")
