"""Run the README demo and print wall time per step, in total, and the orchestration overhead.

    HETERO_CORES=2 python benchmarks/bench_demo.py [--campaign workflows/demo.yaml] [--runs-dir DIR] [--keep]

Without --keep the run folder is deleted first (a cold run: every DFT task computed). Per step (kind of
job x slab or reference): the jobs' wall time, and the time the GPAW runs made by those jobs spent
inside GPAW (``wall_s`` measured by the worker) and in their process (``launch_wall_s``: mpiexec, Python
and GPAW start-up included), both read from each task's result.json. Two overheads are printed:
- outside the DFT code = total wall minus the time inside GPAW (issue 15's definition; target <= 5 %),
  split into GPAW process start-up, the MLIP pre-relaxation (``prerelax_wall_s``), analysis jobs
  (Bader, DOS, work function, E_ads) and what is left (jobflow, store, model building);
- orchestration alone = the same minus the MLIP and analysis compute (what the machinery costs).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hetero.campaigns import load_campaign, run_campaign, run_folder  # noqa: E402
from hetero.progress import JOB_FINISH, JOB_START, PRIOR, format_s, job_class  # noqa: E402


class JobTimes(logging.Handler):
    """Wall time of every job from jobflow's log lines."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.start: dict[str, float] = {}
        self.took: dict[str, tuple[str, float]] = {}

    def emit(self, record):
        msg = record.getMessage()
        if m := JOB_START.match(msg):
            self.start[m["uuid"]] = record.created
        elif m := JOB_FINISH.match(msg):
            self.took[m["uuid"]] = (m["name"], record.created - self.start.pop(m["uuid"], record.created))


def task_step(folder: Path) -> tuple[str, str]:
    """(step, scope) of a GPAW task folder <root>/<system>/<label>/<kind>-<hash>."""
    label, kind = folder.parent.name, folder.name.split("-")[0]
    scope = "reference" if folder.parent.parent.name.endswith(("-bulk", "-atom")) else "slab"
    if "-cdd-" in label:
        return "CDD", scope
    return {"neb": "CI-NEB"}.get(kind, kind), scope


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--campaign", default=str(ROOT / "workflows" / "demo.yaml"))
    ap.add_argument("--runs-dir", default="/tmp/hetero-bench-demo")
    ap.add_argument("--keep", action="store_true", help="keep finished results (measures a cached re-run)")
    args = ap.parse_args()

    import warnings

    for kw in ({"message": "cd is deprecated"}, {"module": "chgnet"}, {"message": "The default method has changed"}):
        warnings.filterwarnings("ignore", **kw)
    camp = load_campaign(args.campaign)
    root = run_folder(camp, camp.preset, args.runs_dir)
    if not args.keep and root.exists():
        shutil.rmtree(root)
    before = {p.parent for p in root.rglob("result.json")} if root.exists() else set()
    times = JobTimes()
    jf = logging.getLogger("jobflow")
    jf.addHandler(times)
    jf.setLevel(logging.INFO)
    load_before = load()
    t0 = time.time()
    run_campaign(args.campaign, runs_dir=args.runs_dir, log=False)
    total = time.time() - t0
    jf.removeHandler(times)

    gpaw_in, gpaw_proc = defaultdict(float), defaultdict(float)
    n_tasks = defaultdict(int)
    prerelax, n_prerelax = 0.0, 0
    for res in root.rglob("result.json"):
        if res.parent in before:
            continue
        r = json.loads(res.read_text())
        key = task_step(res.parent)
        gpaw_in[key] += r.get("wall_s") or 0.0
        gpaw_proc[key] += r.get("launch_wall_s") or r.get("wall_s") or 0.0
        n_tasks[key] += 1
        if r.get("prerelax_wall_s") is not None:
            prerelax += r["prerelax_wall_s"]
            n_prerelax += 1
    job_wall, n_jobs = defaultdict(float), defaultdict(int)
    for name, took in times.took.values():
        key = job_class(name)
        job_wall[key] += took
        n_jobs[key] += 1

    cores = os.environ.get("HETERO_CORES", str(os.cpu_count()))
    print(f"campaign {camp.name} (preset {camp.preset}), run folder {root}, HETERO_CORES={cores}")
    print(f"load average before {load_before}, after {load()}")
    print(f"\n{'step':26s} {'jobs':>4s} {'wall':>8s} {'GPAW tasks':>10s} {'in GPAW':>8s} {'GPAW proc':>9s}")
    keys = sorted(set(job_wall) | set(gpaw_in), key=lambda k: (k[0] not in PRIOR, k[0], k[1]))
    for k in keys:
        print(f"{k[0] + ' (' + k[1] + ')':26s} {n_jobs[k]:4d} {format_s(job_wall[k]):>8s} {n_tasks[k]:10d} "
              f"{format_s(gpaw_in[k]):>8s} {format_s(gpaw_proc[k]):>9s}")
    inside, proc = sum(gpaw_in.values()), sum(gpaw_proc.values())
    n_gpaw = sum(n_tasks.values())
    analysis = sum(v for k, v in job_wall.items() if k[0] not in PRIOR)
    outside = total - inside
    startup = proc - inside
    rest = outside - startup - analysis - prerelax
    orchestration = outside - prerelax - analysis
    print(f"\ntotal wall {total:.1f} s ({format_s(total)}); inside GPAW {inside:.1f} s")
    print(f"outside the DFT code (total wall minus time inside GPAW; issue 15's overhead, target <= 5 %): "
          f"{outside:.1f} s = {100 * outside / total:.1f} % of the wall")
    print(f"  GPAW process start-up and exit (mpiexec, Python, imports, MPI) {startup:.1f} s over {n_gpaw} tasks "
          f"({startup / max(n_gpaw, 1):.2f} s per task)")
    print(f"  MLIP pre-relaxation (model load + relaxation) {prerelax:.1f} s over {n_prerelax} relaxations")
    print(f"  analysis jobs (Bader, DOS, work function, E_ads) {analysis:.1f} s")
    print(f"  jobflow/store/models/CDD grids {rest:.1f} s")
    print(f"orchestration alone (outside the DFT, MLIP and analysis compute): {orchestration:.1f} s = "
          f"{100 * orchestration / total:.1f} % of the wall")

if __name__ == "__main__":
    main()
