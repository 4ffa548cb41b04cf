"""kill -9 in the middle of a GPAW relaxation and in the middle of a GPAW SCF, then resume; then corrupt
finished outputs and check that the jobs holding them fail, naming the file, and never reach the table.

A small real campaign (Na at the hollow site of a 6-atom VN(001) slab, demo settings, one core) is run
three times on one run folder: killed (whole process group, as a crashed node) once a relaxation's
trajectory holds frames, killed again in the middle of a static SCF (once it wrote an SCF checkpoint), then
run to the end. Checked:
- no finished job is recomputed (every result.json that existed before a kill keeps its mtime);
- the interrupted relaxation resumes from the last frame of its trajectory (restarts = 1 in its
  result and in the stored CalcDoc), the interrupted static from its SCF checkpoint;
- the stale lock of the killed run is taken over;
- the final table equals an uninterrupted run's: the energies of runs that were never interrupted
  within the SCF tolerance, the resumed relaxation's adsorption energy within the relaxation tolerance.
Corrupt outputs (on a copy of the finished run folder): a result.json without its energy, a truncated
.gpw, a GPAW log whose SCF never converged -> exit 1, the job named as failed with the file, its
adsorption energy absent from the table.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gpaw")

pytestmark = pytest.mark.dft
ROOT = Path(__file__).resolve().parents[1]
CAMPAIGN = """\
name: crash
# 3 planes of VN(001), the top one free: relaxations that converge in a few steps, so an interrupted
# one and an uninterrupted one end at the same minimum
model: {slab: {material: VN, miller: [0, 0, 1], layers: 3, fix_bottom_layers: 2}}
ion: Na
sites: [hollow]
steps: [relax, static, adsorption]
references: [atom]
overrides:
  spin: off
  relax_steps: 40          # both the uninterrupted and the resumed relaxation must reach fmax
  gpaw: {write_gpw: true}  # a restart file per static run, for the corrupt-output test
preset: demo               # CHGNet start, PW 250 eV, fmax 0.1 eV/A
"""
SCF_TOL_EV = 1e-3   # demo preset's scf_energy_eV; a rerun of an identical SCF on one core agrees far better
RELAX_TOL_EV = 0.02  # two BFGS paths converged to fmax 0.1 eV/A end this close in energy


def _env() -> dict:
    # an SCF checkpoint every 2 iterations: the static killed mid-SCF has one to resume from
    return dict(os.environ, HETERO_CORES="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", COLUMNS="2000",
                HETERO_SCF_CHECKPOINT_EVERY="2")


def _start(camp: Path, runs: Path, out=subprocess.PIPE) -> subprocess.Popen:
    # own session: the kill takes hetero and its GPAW child together, like a crashed node
    return subprocess.Popen([sys.executable, "-m", "hetero.cli", "run", str(camp), "--runs-dir", str(runs)],
                            stdout=out, stderr=subprocess.STDOUT, text=True, env=_env(), cwd=ROOT,
                            start_new_session=True)


def _kill_when(proc: subprocess.Popen, ready, timeout_s: float = 1800) -> None:
    t0 = time.time()
    while not ready():
        if proc.poll() is not None:
            pytest.fail("the run ended before the kill point:\n" + proc.stdout.read())
        if time.time() - t0 > timeout_s:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("kill point not reached in time")
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _frames(traj: Path) -> int:
    from ase.io import Trajectory

    try:
        with Trajectory(str(traj)) as t:
            return len(t) if traj.exists() else 0
    except Exception:  # being written
        return 0


def _folder(root: Path, label: str, kind: str) -> Path | None:
    hits = sorted(root.glob(f"*/{label}/{kind}-*"))
    return hits[0] if hits else None


def _mtimes(root: Path) -> dict[Path, float]:
    return {p: p.stat().st_mtime_ns for p in root.rglob("result.json")}


def _table(root: Path):
    from hetero.table import build_table

    df = build_table(root)
    if "e_ads_eV" not in df:
        return df.iloc[:0]
    return df[df["e_ads_eV"].notna()].set_index(["site", "e_ads_reference"])["e_ads_eV"]


@pytest.fixture(scope="module")
def crashed(tmp_path_factory) -> dict:
    """Run, kill -9 mid-relaxation, resume, kill -9 mid-SCF, resume to the end; beside it an uninterrupted
    reference run. Returns what was seen at each point (the tests below assert on it)."""
    from ase.io import Trajectory

    tmp = tmp_path_factory.mktemp("crash")
    camp = tmp / "crash.yaml"
    camp.write_text(CAMPAIGN)
    runs, ref_runs = tmp / "runs", tmp / "ref"
    root = runs / "crash-demo"
    seen: dict = {"root": root, "camp": camp}

    # 1. kill -9 in a relaxation that has written two frames, once another job has finished (jobflow's
    #    order of independent jobs varies between runs: the kill point is a state, not a job name)
    def relax_in_progress() -> Path | None:
        for d in sorted(root.glob("*/*/relax-*")):
            if not (d / "result.json").exists() and _frames(d / "relax.traj") >= 2 and _mtimes(root):
                return d
        return None

    p = _start(camp, runs)
    _kill_when(p, lambda: relax_in_progress() is not None)
    seen["relax_dir"] = relax_dir = relax_in_progress()
    seen["before_kill_1"] = _mtimes(root)
    seen["frames_before"] = n = _frames(relax_dir / "relax.traj")
    with Trajectory(str(relax_dir / "relax.traj")) as t:
        seen["last_before"] = t[n - 1].get_positions()

    # the uninterrupted reference, on the other core while the killed run goes on (each run uses one): it
    # reuses the results no kill touched (copied task folders: the same calculations by their task hash) and
    # runs the interrupted ones without a break
    for f in seen["before_kill_1"]:
        shutil.copytree(f.parent, ref_runs / "crash-demo" / f.parent.relative_to(root))
    ref_log = tmp / "ref.out"
    with open(ref_log, "w") as out:  # a file, not a pipe nobody reads while the killed run goes on
        ref = _start(camp, ref_runs, out)
    try:
        _killed_in_scf_then_finished(camp, runs, root, seen)
    finally:
        if ref.poll() is None and seen.get("rc") is None:  # the fixture failed: no orphaned reference run
            os.killpg(ref.pid, signal.SIGKILL)
    ref.wait(timeout=3600)
    seen["ref_out"] = ref_log.read_text()
    seen["ref_rc"] = ref.returncode
    seen["ref_root"] = ref_runs / "crash-demo"
    return seen


def _killed_in_scf_then_finished(camp: Path, runs: Path, root: Path, seen: dict) -> None:
    # 2. resume, and kill -9 in the middle of a static SCF
    p = _start(camp, runs)

    def static_in_scf() -> Path | None:
        for d in sorted(root.glob("*/*/static-*")):
            log = d / "gpaw-static.txt"
            if (not (d / "result.json").exists() and log.exists() and (d / "scf-checkpoint.gpw").exists()
                    and log.read_text(errors="replace").count("|iter:") >= 3):
                return d
        return None

    _kill_when(p, lambda: static_in_scf() is not None)
    seen["static_dir"] = static_in_scf()
    seen["after_kill_2"] = _mtimes(root)
    seen["dead_pid"] = json.loads((root / "run.lock").read_text())["pid"]  # the lock the last run takes over

    # 3. resume to the end
    p = _start(camp, runs)
    seen["out"] = p.communicate(timeout=3600)[0]
    seen["rc"] = p.returncode
    seen["final"] = _mtimes(root)


def _calc_energies(root: Path) -> dict[tuple[str, str], float]:
    store = json.loads((root / "store.json").read_text())
    return {(d["label"], d["step"]): d["energy_eV"] for e in store for d in [e.get("output")]
            if isinstance(d, dict) and d.get("doc_type") == "calc"}


def test_kill_in_relaxation_and_in_scf_then_resume(crashed):
    from ase.io import Trajectory

    root, relax_dir = crashed["root"], crashed["relax_dir"]
    assert crashed["rc"] == 0, crashed["out"]
    assert len(crashed["before_kill_1"]) >= 1 and crashed["static_dir"] is not None
    print(f"finished before kill 1: {len(crashed['before_kill_1'])}, before kill 2: {len(crashed['after_kill_2'])}, "
          f"after the last run: {len(crashed['final'])}; interrupted: {relax_dir.parent.name}/{relax_dir.name} "
          f"after {crashed['frames_before']} frames, {crashed['static_dir'].parent.name}/{crashed['static_dir'].name} mid-SCF")

    # no finished job recomputed: every result present before a kill is untouched
    final = crashed["final"]
    recomputed = [f for f, t in {**crashed["before_kill_1"], **crashed["after_kill_2"]}.items() if final[f] != t]
    assert recomputed == [], recomputed
    assert (crashed["static_dir"] / "result.json") in final  # the SCF killed midway was run again, to the end
    # ...from its SCF checkpoint, not from scratch; the checkpoint is gone once the SCF converged
    static = json.loads((crashed["static_dir"] / "result.json").read_text())
    assert static["scf_resumed_from_checkpoint"] is True
    assert not list(crashed["static_dir"].glob("scf-checkpoint*.gpw"))
    part1 = (crashed["static_dir"] / "gpaw-static.part1.txt").read_text()
    # the result counts the killed part's SCF iterations too (its cost), and says it was resumed once
    last = (crashed["static_dir"] / "gpaw-static.txt").read_text().count("|iter:")
    assert part1.count("|iter:") >= 1 and static["restarts"] == 1
    assert static["n_scf"] == last + part1.count("|iter:")

    # the interrupted relaxation continued from its trajectory's last frame
    res = json.loads((relax_dir / "result.json").read_text())
    assert res["restarts"] == 1 and res["converged"]
    # opt.log holds one block per start: the resumed one begins where the killed one stopped (same
    # geometry, so the same energy; ASE does not write that starting frame to the appended trajectory)
    blocks = [[ln.split() for ln in b.splitlines() if ln.startswith(("BFGS:", "FIRE:"))]
              for b in (relax_dir / "opt.log").read_text().split("Step     Time")[1:]]
    assert len(blocks) == 2 and len(blocks[0]) == crashed["frames_before"]
    assert float(blocks[1][0][3]) == pytest.approx(float(blocks[0][-1][3]), abs=SCF_TOL_EV)
    # the killed part's GPAW log is kept beside the resumed one (its SCF iterations still count)
    first_part = relax_dir / "gpaw-relax.part1.txt"
    assert first_part.exists() and "iter:" in first_part.read_text()
    assert "Converged in" in (relax_dir / "gpaw-relax.txt").read_text()
    with Trajectory(str(relax_dir / "relax.traj")) as traj:
        assert len(traj) == crashed["frames_before"] + len(blocks[1]) - 1
        # the first new frame is one BFGS step (at most 0.2 A per atom) from the last frame before the kill
        step = np.abs(traj[crashed["frames_before"]].get_positions() - crashed["last_before"]).max()
        assert 0 < step <= 0.2 + 1e-9
    store = json.loads((root / "store.json").read_text())
    doc = next(e["output"] for e in store if isinstance(e.get("output"), dict)
               and e["output"].get("doc_type") == "calc" and e["output"]["provenance"]["run_dir"] == str(relax_dir))
    assert doc["restarts"] == 1
    # the killed run's lock was taken over and released at the end
    assert f"took over the lock of {root}: its previous owner (pid {crashed['dead_pid']}" in crashed["out"]
    assert (root / "run.lock").read_text() == ""

    # the same table as an uninterrupted run
    assert crashed["ref_rc"] == 0, crashed["ref_out"]
    ours, ref = _calc_energies(root), _calc_energies(crashed["ref_root"])
    assert ours.keys() == ref.keys()
    for key, e in ours.items():
        # a static killed mid-SCF and rerun: same input, same SCF; the interrupted relaxation (and the
        # statics after it) took another BFGS path (fresh Hessian at the restart) to the same minimum
        tol = RELAX_TOL_EV if key[0] == relax_dir.parent.name else SCF_TOL_EV
        assert e == pytest.approx(ref[key], abs=tol), key
    resumed, uninterrupted = _table(root), _table(crashed["ref_root"])
    assert list(resumed.index) == list(uninterrupted.index) and len(resumed) == 1
    assert np.allclose(resumed.values, uninterrupted.values, atol=RELAX_TOL_EV)


def _corrupt_result(folder: Path) -> Path:
    path = folder / "result.json"
    data = json.loads(path.read_text())
    data.pop("energy_eV")
    path.write_text(json.dumps(data))
    return path


def _truncate(path: Path) -> Path:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    return path


def _unconverged_log(folder: Path) -> Path:
    log = folder / "gpaw-static.txt"
    log.write_text("".join(ln for ln in log.read_text().splitlines(True) if "Converged in" not in ln))
    return log


@pytest.mark.parametrize("what", ["incomplete result.json", "truncated .gpw", "GPAW log without convergence"])
def test_corrupt_output_fails_its_job_and_stays_out_of_the_table(crashed, what, tmp_path):
    """On a copy of the finished run: the corrupted task's job fails naming the file, exit 1, no E_ads row."""
    assert crashed["rc"] == 0
    runs = tmp_path / "runs"
    shutil.copytree(crashed["root"], runs / "crash-demo")
    root = runs / "crash-demo"
    if what == "incomplete result.json":
        bad = _corrupt_result(_folder(root, "host", "static"))
    elif what == "truncated .gpw":
        bad = _truncate(_folder(root, "Na@hollow", "static") / "static.gpw")
    else:
        bad = _unconverged_log(_folder(root, "reference", "static"))
    before = _mtimes(root)
    p = subprocess.run([sys.executable, "-m", "hetero.cli", "run", str(crashed["camp"]), "--runs-dir", str(runs)],
                       capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=1800)
    out = p.stdout + p.stderr
    assert p.returncode == 1, out
    failed = [ln for ln in out.splitlines() if "failed:" in ln]
    assert len(failed) == 1 and str(bad) in failed[0], out
    assert "skipped (a parent failed): E_ads Na@hollow" in out
    assert _mtimes(root) == before  # nothing recomputed behind the user's back, nothing overwritten
    assert len(_table(root)) == 0  # no adsorption energy from a corrupt input


def _gpaw_workers(under: Path) -> list[int]:
    """pids of GPAW workers whose task folder lies under `under`."""
    pids = []
    for env in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"HETERO_TASK_DIR={under}".encode() in env.read_bytes():
                pids.append(int(env.parent.name))
        except OSError:
            pass
    return pids


def test_killing_hetero_alone_leaves_no_gpaw_running(tmp_path):
    """kill -9 of the hetero process only (not its group): its GPAW worker dies with it instead of
    writing on into a task folder that the next run will use."""
    camp = tmp_path / "crash.yaml"
    camp.write_text(CAMPAIGN)
    runs = tmp_path / "runs"
    p = subprocess.Popen([sys.executable, "-m", "hetero.cli", "run", str(camp), "--runs-dir", str(runs)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(), cwd=ROOT)
    t0 = time.time()
    while not _gpaw_workers(runs) and p.poll() is None and time.time() - t0 < 300:
        time.sleep(0.2)
    workers = _gpaw_workers(runs)
    assert workers, "no GPAW worker started"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    t0 = time.time()
    while _gpaw_workers(runs) and time.time() - t0 < 20:
        time.sleep(0.2)
    left = _gpaw_workers(runs)
    for pid in left:  # do not leave them to the machine either way
        os.kill(pid, signal.SIGKILL)
    assert left == []
