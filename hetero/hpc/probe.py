"""Queue probes: the smallest jobs that still go through the whole jobflow-remote + scheduler path.

Used by benchmarks/bench_slurm_overhead.py (per-job overhead of the queue) and the Slurm tests.
"""

from __future__ import annotations

import os
import socket
import time

from jobflow import Flow, job


@job
def probe(index: int, seconds: float = 0.0) -> dict:
    """Sleeps `seconds`, then reports where it ran (host, Slurm/PBS job id, MPI ranks it was given)."""
    time.sleep(seconds)
    queue_id = os.environ.get("SLURM_JOB_ID") or os.environ.get("PBS_JOBID") or os.environ.get("JOB_ID")
    return {"index": index, "host": socket.gethostname(), "queue_id": queue_id,
            "cores": os.environ.get("HETERO_CORES"), "pid": os.getpid()}


def probe_flow(n: int, seconds: float = 0.0, name: str = "probes") -> Flow:
    jobs = []
    for i in range(n):
        j = probe(i, seconds)
        j.name = f"probe {i}"
        jobs.append(j)
    return Flow(jobs, name=name)
