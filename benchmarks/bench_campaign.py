"""Run a campaign and print, per DFT step, wall time and SCF iterations, plus orchestration overhead.

    python benchmarks/bench_campaign.py [CAMPAIGN.yaml] [--preset fast] [--runs-dir /tmp/bench-runs] [--fresh]

Overhead = total wall time of `run_campaign` minus the time spent inside GPAW subprocesses
(launch_wall_s of every run executed in this invocation). Cached runs (already finished) are listed
with their original time and marked as reused. Without --fresh a second invocation measures the
pure orchestration cost of a fully cached campaign.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hetero.campaigns import load_campaign, run_campaign, run_folder  # noqa: E402


def scf_iterations(folder: Path) -> int:
    return sum(t.read_text(errors="replace").count("|iter:") for t in folder.glob("gpaw-*.txt"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("campaign", nargs="?", default=str(ROOT / "tests" / "data" / "na_vn001_tiny.yaml"))
    ap.add_argument("--preset", default=None)
    ap.add_argument("--runs-dir", default="/tmp/hetero-bench-runs")
    ap.add_argument("--fresh", action="store_true", help="delete the run folder first")
    args = ap.parse_args()

    camp = load_campaign(args.campaign)
    root = run_folder(camp, args.preset or camp.preset, args.runs_dir)
    if args.fresh and root.exists():
        shutil.rmtree(root)
    before = {p.parent for p in root.rglob("result.json")} if root.exists() else set()
    t0 = time.time()
    run_campaign(args.campaign, preset=args.preset, runs_dir=args.runs_dir, log=False)
    total = time.time() - t0

    rows, inside = [], 0.0
    for res in sorted(root.rglob("result.json")):
        folder = res.parent
        r = json.loads(res.read_text())
        task = json.loads((folder / "task.json").read_text())
        fresh = folder not in before
        if fresh:
            inside += r.get("launch_wall_s", r.get("wall_s", 0.0))
        rows.append((str(folder.relative_to(root)), task["kind"], r.get("wall_s", 0.0), scf_iterations(folder), fresh))
    print(f"campaign {camp.name}  preset {args.preset or camp.preset}  run folder {root}")
    print(f"{'run':62s} {'kind':7s} {'wall_s':>8s} {'SCF it':>7s}  status")
    for name, kind, wall, n_scf, fresh in rows:
        print(f"{name[:62]:62s} {kind:7s} {wall:8.1f} {n_scf:7d}  {'ran' if fresh else 'reused'}")
    print(f"\ntotal wall {total:.1f} s; inside GPAW {inside:.1f} s; orchestration overhead {total - inside:.1f} s")


if __name__ == "__main__":
    main()
