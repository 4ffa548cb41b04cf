"""One `hetero run` per run folder: a second one refuses (exit 2, naming the owner's pid) or waits with
--wait; a lock left by a killed run is taken over; two runs on one folder lose or duplicate no result.

The two-run test uses the CHGNet engine (real relaxations in seconds, no DFT) on the 8-atom Na/VN(001) model.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hetero.cli import app
from hetero.io.runlock import LOCK_FILENAME, RunFolderBusy, RunLock, read_owner

ROOT = Path(__file__).resolve().parents[1]
HOLD = textwrap.dedent("""
    import sys, time
    from hetero.io.runlock import RunLock
    lock = RunLock(sys.argv[1]).acquire()
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    lock.release()
""")


def _holder(folder: Path, seconds: float) -> subprocess.Popen:
    """Another process holding the run folder's lock for `seconds`."""
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), str(seconds)], stdout=subprocess.PIPE, text=True,
                         cwd=ROOT)
    assert p.stdout.readline().strip() == "locked"
    return p


def test_second_lock_refused_then_free_after_release(tmp_path):
    with RunLock(tmp_path) as lock:
        assert read_owner(tmp_path)["pid"] == os.getpid()
        with pytest.raises(RunFolderBusy, match=f"pid {os.getpid()}.*--wait"):
            RunLock(tmp_path).acquire()
        assert lock.taken_over is None
    assert (tmp_path / LOCK_FILENAME).read_text() == ""  # released: nobody named as owner
    with RunLock(tmp_path) as again:
        assert again.taken_over is None


def test_stale_lock_of_a_killed_run_is_taken_over(tmp_path):
    p = _holder(tmp_path, 600)
    dead_pid = p.pid
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert read_owner(tmp_path)["pid"] == dead_pid  # the file outlives its owner
    with RunLock(tmp_path) as lock:
        assert lock.taken_over["pid"] == dead_pid
        assert read_owner(tmp_path)["pid"] == os.getpid()


def test_wait_starts_when_the_owner_finishes(tmp_path):
    p = _holder(tmp_path, 3)
    t0 = time.time()
    with RunLock(tmp_path, wait=True, poll_s=0.2):
        waited = time.time() - t0
    p.wait()
    assert 1.5 < waited < 30


def test_cli_refuses_a_busy_run_folder_with_exit_2(tmp_path, monkeypatch):
    """`hetero run` on a folder another run holds: one line naming the owner, nothing written."""
    monkeypatch.setenv("HETERO_CORES", "1")
    monkeypatch.setenv("COLUMNS", "2000")
    root = tmp_path / "runs" / "demo-demo"
    root.mkdir(parents=True)
    p = _holder(root, 120)
    try:
        result = CliRunner().invoke(app, ["run", str(ROOT / "workflows" / "demo.yaml"), "--runs-dir", str(tmp_path / "runs")])
    finally:
        p.kill()
        p.wait()
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and f"in use by another hetero run (pid {p.pid}" in lines[0] and "--wait" in lines[0]
    assert sorted(x.name for x in root.iterdir()) == [LOCK_FILENAME]  # no campaign.json, no store


MLIP_CAMPAIGN = """\
name: lockdemo
model: {preset: vn001_na, size: fast}
ion: Na
sites: [top-V, hollow]
steps: [relax, adsorption, neb]
references: [bulk, atom]
engine: mlip
preset: fast
neb: {images: 1}
"""


def _hetero(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hetero.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)


def _results(root: Path) -> dict[Path, float]:
    return {p: p.stat().st_mtime for p in root.rglob("result.json")}


@pytest.mark.mlip
def test_two_runs_on_one_folder_lose_and_duplicate_nothing(tmp_path):
    """A second `hetero run --wait` started while the first runs waits for it, then reuses every result."""
    pytest.importorskip("chgnet")
    camp = tmp_path / "lockdemo.yaml"
    camp.write_text(MLIP_CAMPAIGN)
    env = dict(os.environ, HETERO_CORES="1", OMP_NUM_THREADS="1", COLUMNS="2000")
    runs = tmp_path / "runs"
    first = _hetero(["run", str(camp), "--runs-dir", str(runs)], env)
    root = runs / "lockdemo-mlip-fast"
    t0 = time.time()
    while read_owner(root).get("pid") is None and first.poll() is None and time.time() - t0 < 120:
        time.sleep(0.2)
    assert first.poll() is None, "the first run ended before a second could start: " + first.communicate()[0]
    second = _hetero(["run", str(camp), "--runs-dir", str(runs), "--wait"], env)
    out_first = first.communicate(timeout=900)[0]
    after_first = _results(root)
    out_second = second.communicate(timeout=900)[0]
    # the first run's final store, as the second run backed it up before rebuilding store.json (reading store.json
    # between the two runs races with the second run's rebuild)
    store_first = json.loads((root / "store.previous.json").read_text())

    assert first.returncode == 0, out_first
    assert second.returncode == 0, out_second
    # nothing lost: every task of the first run still has its result, none rewritten by the second
    assert after_first and _results(root) == after_first
    # nothing duplicated: one task folder per task, one store entry per job, the same documents
    tasks = [json.loads((p.parent / "task.json").read_text()) for p in after_first]
    assert len({json.dumps(t, sort_keys=True) for t in tasks}) == len(tasks)
    store = json.loads((root / "store.json").read_text())
    assert len({(e["uuid"], e["index"]) for e in store}) == len(store) == len(store_first)
    energies = lambda s: sorted(round(e["output"]["energy_eV"], 6) for e in s  # noqa: E731
                                if isinstance(e.get("output"), dict) and "energy_eV" in e["output"])
    assert energies(store) == energies(store_first) and len(energies(store)) >= 5
    assert (root / LOCK_FILENAME).read_text() == ""
