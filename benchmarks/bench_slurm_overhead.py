"""Per-job overhead of `hetero submit`'s queue path: 20 trivial jobs through jobflow-remote and a real Slurm.

    python benchmarks/bench_slurm_overhead.py [N]       (root; target <= 1.5 s per job)
Each job is a probe (hetero.hpc.probe: returns where it ran) sent with sbatch by jobflow-remote's runner
steps, profile configs/hpc/slurm-local.yaml (runner polling 0.5 s). Starts the single-node Slurm of
scripts/slurm_local.sh if none answers, and stops it afterwards. Prints the wall time from adding the
Flow to the last output in the store, per job (that wall / N, with the node's cores running jobs side by
side) and the latency of one job alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hetero.hpc import remote
from hetero.hpc.probe import probe_flow
from hetero.hpc.profile import parse_profile
from hetero.hpc.resources import apply_resources

ROOT = Path(__file__).resolve().parents[1]


def node_ready() -> bool:
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and any(s.startswith(("idle", "mixed", "alloc")) for s in out.stdout.split())


def run(n: int, runs: Path, name: str) -> tuple[float, list[dict]]:
    profile = parse_profile("slurm-local")
    flow = probe_flow(n, seconds=0.0, name=name)
    run_dir = runs / name
    run_dir.mkdir(parents=True)
    t0 = time.perf_counter()
    remote.submit_flow(flow, profile, run_dir, runs, apply_resources(flow, profile))
    rows = remote.run_until_done(run_dir, timeout_s=600)
    return time.perf_counter() - t0, rows


def main(n: int = 20) -> None:
    if os.geteuid() != 0:
        sys.exit("needs root to start the local Slurm (scripts/slurm_local.sh)")
    started = False
    if not node_ready():
        subprocess.run(["bash", str(ROOT / "scripts" / "slurm_local.sh"), "start"], check=True)
        started = True
    try:
        with tempfile.TemporaryDirectory() as tmp:
            runs = Path(tmp)
            one, _ = run(1, runs, "one")
            wall, rows = run(n, runs, "many")
            ids = {r["queue_id"] for r in rows}
            done = sum(r["state"] == "COMPLETED" for r in rows)
            cores = os.cpu_count()
            print(f"{done}/{n} jobs COMPLETED through {len(ids)} distinct Slurm jobs on {cores} cores")
            print(f"one job alone: {one:.2f} s from submit to output in the store")
            print(f"{n} jobs: {wall:.2f} s wall, {wall / n:.2f} s per job (target <= 1.5 s)")
            if done != n:
                sys.exit(1)
    finally:
        if started:
            subprocess.run(["bash", str(ROOT / "scripts" / "slurm_local.sh"), "stop"], check=False)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
