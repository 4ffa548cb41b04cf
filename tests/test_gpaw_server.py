"""The persistent GPAW worker (preset key `gpaw: {persistent_worker: true}`, hetero.engines.gpaw_server).

Tiny real GPAW tasks (bcc Na, PW 150 eV, 2x2x2 k): the same energies as the one-shot worker (statics,
a relaxation), one server process for every task, a failing task (GPAW error, unconverged SCF) failing as
in the one-shot mode with the next task still run, parallel CI-NEB images on split communicators through
the server, the ranks killed with the parent, and the key kept out of the task's settings and hash
(switching it never invalidates a cached result).
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

pytest.importorskip("gpaw")

from pymatgen.core import Lattice, Structure  # noqa: E402

from hetero.engines import gpaw_server  # noqa: E402
from hetero.engines.base import EngineRunError  # noqa: E402
from hetero.engines.gpaw import GpawEngine, SCFNotConvergedError  # noqa: E402

pytestmark = pytest.mark.dft
ROOT = Path(__file__).resolve().parents[1]
TINY = {"cutoff_eV": 150, "kpoints_mesh": [2, 2, 2], "scf_energy_eV": 1e-4}


def na_bcc(a: float = 4.23) -> Structure:
    return Structure(Lattice([[-a / 2, a / 2, a / 2], [a / 2, -a / 2, a / 2], [a / 2, a / 2, -a / 2]]), ["Na"], [[0, 0, 0]])


def engine(cores: int, persistent: bool, **gpaw: object) -> GpawEngine:
    return GpawEngine(preset="demo", cores=cores, overrides={**TINY, "gpaw": {"persistent_worker": persistent, **gpaw}})


@pytest.fixture(autouse=True)
def local_launch(monkeypatch):
    """Local launch (no cluster line), every server of an earlier test closed; the servers started, listed."""
    monkeypatch.delenv("HETERO_GPAW_LAUNCH", raising=False)
    monkeypatch.setenv("HETERO_OVERSUBSCRIBE", "1")  # 2 ranks on a machine whose cores are busy
    gpaw_server.close_servers()
    started = []
    real_popen = gpaw_server.subprocess.Popen

    def counting_popen(cmd, **kw):  # the module is subprocess itself: one-shot runs pass here too
        if cmd[-1] == gpaw_server.SERVE_FLAG:
            started.append(cmd)
        return real_popen(cmd, **kw)

    monkeypatch.setattr(gpaw_server.subprocess, "Popen", counting_popen)
    yield started
    gpaw_server.close_servers()


def test_key_stays_out_of_settings_and_hash(tmp_path):
    """Turning the server on or off gives the same task settings, hence the same task folder (cache)."""
    on, off = engine(1, True), engine(1, False)
    s = na_bcc()
    for kind in ("relax", "static"):
        a, b = (e.translate(e.resolve(s), s, kind) for e in (on, off))
        assert a == b and "persistent_worker" not in a
    task = {"kind": "static", "settings": on.translate(on.resolve(s), s, "static")}
    assert on.task_folder(task, tmp_path) == off.task_folder(task, tmp_path)
    assert engine(1, True).native["persistent_worker"] is True
    with pytest.raises(Exception, match="persistent_worker must be true or false"):
        engine(1, "yes")  # type: ignore[arg-type]


@pytest.mark.parametrize("cores", [1, 2])
def test_server_gives_one_shot_energies_with_one_launch(tmp_path, local_launch, cores):
    lattice = (4.15, 4.23, 4.31)
    served = [engine(cores, True).static(na_bcc(a), tmp_path / "served") for a in lattice]
    assert len(local_launch) == 1, local_launch  # one server process ran all three tasks
    assert local_launch[0][-3:] == ["-m", "hetero.engines.gpaw_worker", "--serve"]
    assert ("mpiexec" in os.path.basename(local_launch[0][0])) == (cores > 1)
    one_shot = [engine(cores, False).static(na_bcc(a), tmp_path / "one-shot") for a in lattice]
    assert len(local_launch) == 1  # the one-shot mode starts no server
    for s, o in zip(served, one_shot):
        assert s.energy_eV == pytest.approx(o.energy_eV, abs=1e-6)
        assert s.provenance.cores == cores and s.provenance.settings_hash == o.provenance.settings_hash
        folder = Path(s.provenance.run_dir)
        log = (folder / "worker.log").read_text()
        assert "of the persistent GPAW worker pid" in log and "hetero-gpaw-server: done" not in log
        result = json.loads((folder / "result.json").read_text())
        assert result["launch_wall_s"] >= result["wall_s"] > 0
    assert len({Path(s.provenance.run_dir).name for s in served}) == 3
    # the idle server holds no file of a finished task open: its GPAW calculators and logs were freed
    assert gpaw_server._servers and all(s.alive() for s in gpaw_server._servers.values())
    assert _open_files_under(tmp_path / "served") == []
    # the energy depends on the lattice (the tasks are not answered from one another)
    assert abs(served[0].energy_eV - served[2].energy_eV) > 1e-3
    # the 2nd and 3rd tasks skip the start-up: their process time is close to their GPAW time
    later = [json.loads((Path(s.provenance.run_dir) / "result.json").read_text()) for s in served[1:]]
    first = json.loads((Path(served[0].provenance.run_dir) / "result.json").read_text())
    assert max(r["launch_wall_s"] - r["wall_s"] for r in later) < first["launch_wall_s"] - first["wall_s"]


@pytest.mark.parametrize("cores", [1, 2])
def test_failing_task_fails_as_one_shot_and_next_task_runs(tmp_path, local_launch, cores):
    """A setting GPAW rejects (an LCAO basis that does not exist) raises inside every rank."""
    errors = {}
    for persistent in (False, True):
        with pytest.raises(EngineRunError) as err:
            engine(cores, persistent, mode="lcao", basis="nosuchbasis").static(na_bcc(), tmp_path / str(persistent))
        errors[persistent] = str(err.value)
    first_line = {k: v.splitlines()[0].replace(str(tmp_path / str(k)), "<dir>") for k, v in errors.items()}
    assert first_line[True] == first_line[False] and "failed (exit " in first_line[True]
    assert "nosuchbasis" in errors[False] and "nosuchbasis" in errors[True]
    assert "exited with code" in errors[True]  # the log says the server died with the task
    assert len(local_launch) == 1
    # the next task starts a new server and runs
    ok = engine(cores, True).static(na_bcc(), tmp_path / "after")
    assert len(local_launch) == 2 and ok.energy_eV < 0
    ref = engine(cores, False).static(na_bcc(), tmp_path / "ref")
    assert ok.energy_eV == pytest.approx(ref.energy_eV, abs=1e-6)


def test_relaxation_and_scf_failure_through_the_server(tmp_path, local_launch):
    """A relaxation (trajectory, optimiser log) matches the one-shot one and leaves no file open; an SCF
    that never converges (1 iteration allowed, retry included) gives the one-shot SCF message."""
    moved = Structure(Lattice.cubic(4.23), ["Na", "Na"], [[0, 0, 0], [0.53, 0.5, 0.5]])
    relax = {"relax_steps": 2, "fmax_eV_A": 0.01}
    results = {}
    for persistent in (True, False):
        eng = GpawEngine(preset="demo", cores=1, overrides={
            **TINY, **relax, "gpaw": {"persistent_worker": persistent, "prerelax_mlip": None}})
        results[persistent] = eng.relax(moved, tmp_path / str(persistent))
    assert results[True].n_ionic_steps == results[False].n_ionic_steps == 2
    assert results[True].energy_eV == pytest.approx(results[False].energy_eV, abs=1e-6)
    assert _open_files_under(tmp_path / "True") == [] and len(local_launch) == 1
    messages = {}
    for persistent in (True, False):
        with pytest.raises(SCFNotConvergedError) as err:
            engine(1, persistent, scf_maxiter=1).static(na_bcc(), tmp_path / f"scf-{persistent}")
        messages[persistent] = str(err.value).replace(str(tmp_path / f"scf-{persistent}"), "<dir>")
    assert messages[True] == messages[False] and "safer mixing" in messages[True]


def test_parallel_neb_images_through_the_server(tmp_path, local_launch):
    """Two moving images on two ranks: each image on its own rank (split communicators), as one-shot."""
    a = 4.23
    cell = Lattice.cubic(a)
    path = [Structure(cell, ["Na", "Na"], [[0, 0, 0], [0.5 + d, 0.5, 0.5]]) for d in (0.0, 0.03, 0.06, 0.09)]
    neb = {"neb_steps": 1, "neb_fmax_eV_A": 0.01}
    ends = [-2.0, -1.9]
    served = engine(2, True).neb(path, ends, tmp_path / "served", neb=neb)
    served_again = engine(2, True).static(path[1], tmp_path / "served")  # the server still works after a NEB
    one_shot = engine(2, False).neb(path, ends, tmp_path / "one-shot", neb=neb)
    assert len(local_launch) == 1
    assert served.images_in_parallel and one_shot.images_in_parallel
    assert served.energies_eV == pytest.approx(one_shot.energies_eV, abs=1e-6)
    assert served_again.energy_eV < 0


def test_killing_the_parent_kills_the_server_ranks(tmp_path):
    """kill -9 of the process that started the server (idle between tasks): mpiexec and both ranks die."""
    script = textwrap.dedent(f"""
        import sys, time
        sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'tests')!r}]
        from test_gpaw_server import engine, na_bcc
        engine(2, True).static(na_bcc(), {str(tmp_path / 'runs')!r})
        print("served", flush=True)
        time.sleep(600)
    """)
    env = dict(os.environ, HETERO_OVERSUBSCRIBE="1", OMP_NUM_THREADS="1")
    env.pop("HETERO_GPAW_LAUNCH", None)
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env=env, cwd=ROOT)
    try:
        line = p.stdout.readline()
        assert line.strip() == "served", line + p.stdout.read()
        server = _processes_with(f"HETERO_TASK_DIR={tmp_path / 'runs'}")
        assert len(server) >= 3, server  # mpiexec and two ranks, alive and idle
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    t0 = time.time()
    while (left := _processes_with(f"HETERO_TASK_DIR={tmp_path / 'runs'}")) and time.time() - t0 < 20:
        time.sleep(0.2)
    for pid in left:  # leave nothing to the machine either way
        os.kill(pid, signal.SIGKILL)
    assert left == []


def _processes_with(env_entry: str) -> list[int]:
    pids = []
    for env in Path("/proc").glob("[0-9]*/environ"):
        try:
            if env_entry.encode() in env.read_bytes():
                pids.append(int(env.parent.name))
        except OSError:
            pass
    return pids


def _open_files_under(path: Path) -> list[str]:
    """Every open file descriptor on this machine that points into ``path``."""
    hits = []
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(path)):
            hits.append(f"{fd} -> {target}")
    return hits
