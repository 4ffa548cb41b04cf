"""Shared fixtures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests import their helpers (_refdata) by name

from _refdata import reference_vasp_dir  # noqa: E402


@pytest.fixture
def ref() -> Path:
    """The real VASP outputs in ../shared/reference/vasp (CI lays shared/ beside the clone). Missing data
    is a failure, not a skip: the VASP parsers would otherwise go untested without anyone noticing."""
    r = reference_vasp_dir()
    if r is None:
        pytest.fail("reference VASP outputs not found: set HETERO_SHARED=/path/to/shared or clone beside ../shared")
    return r


REQUIRED = ("gpaw", "dftd3", "chgnet", "sevenn", "atomate2", "custodian", "baderkit", "jobflow_remote")


def pytest_sessionstart(session):
    """scripts/setup.sh installs every package the suite needs: a missing one is a broken set-up, and the
    tests' importorskip guards must never turn it into silent skips."""
    import importlib.util

    missing = [m for m in REQUIRED if importlib.util.find_spec(m) is None]
    if missing:
        raise pytest.UsageError(f"packages missing from this environment: {missing}; run bash scripts/setup.sh")


DEMO_SECRET = "Sup3rS3cretPw"


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> dict:
    """The README's first command minus the set-up, `hetero run workflows/demo.yaml --report` with real GPAW,
    run once per session: tests/test_demo.py checks what the user sees, tests/test_chain_gpaw.py the physics
    of every step. A secret in the environment (a database URI with a password) must appear in no output.
    HETERO_DEMO_RUNS: a runs folder to keep (and reuse) between sessions."""
    pytest.importorskip("gpaw")
    root_dir = Path(__file__).resolve().parents[1]
    runs = Path(os.environ.get("HETERO_DEMO_RUNS") or tmp_path_factory.mktemp("demo") / "runs")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", COLUMNS="200",
               HETERO_MONGO_URI=f"mongodb://hetero:{DEMO_SECRET}@db.example.org/hetero",
               HETERO_VASP_CMD=f"srun --password={DEMO_SECRET} vasp_std")
    env.setdefault("HETERO_CORES", "2")
    t0 = time.time()
    p = subprocess.run([sys.executable, "-m", "hetero.cli", "run", str(root_dir / "workflows" / "demo.yaml"), "--report",
                        "--runs-dir", str(runs)], capture_output=True, text=True, env=env, cwd=root_dir, timeout=3600)
    wall = time.time() - t0
    print(f"demo wall {wall:.0f} s on HETERO_CORES={env['HETERO_CORES']}, load {os.getloadavg()}")
    root = runs / "demo-demo"
    summary = root / "run_summary.json"
    # read now: later tests run the campaign again in the same folder
    return {"rc": p.returncode, "out": p.stdout + p.stderr, "root": root, "wall": wall, "cores": int(env["HETERO_CORES"]),
            "summary": json.loads(summary.read_text()) if summary.exists() else None}
