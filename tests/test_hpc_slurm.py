"""`hetero submit | status | resume | cancel` against a real single-node Slurm, and the scripts for PBS/SGE.

The Slurm tests start the scheduler with scripts/slurm_local.sh (root: installs Debian's slurm and munge
if missing) unless one is already up, and use the slurm-local profile (jobflow-remote's queue in an
in-process mongomock database). They skip only where this process is not root.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from hetero.hpc import remote
from hetero.hpc.profile import HpcProfileError, parse_profile

ROOT = Path(__file__).resolve().parents[1]
SLURM_LOCAL = ROOT / "scripts" / "slurm_local.sh"
CAMPAIGN = ROOT / "workflows" / "na_vn001.yaml"
ENV = dict(os.environ, HETERO_CORES="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
           COLUMNS="250")
HETERO = [sys.executable, "-m", "hetero.cli"]


def _hetero(*args, timeout=300):
    return subprocess.run([*HETERO, *map(str, args)], capture_output=True, text=True, env=ENV, timeout=timeout)


def _node_ready() -> bool:
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and any(s.startswith(("idle", "mixed", "alloc")) for s in out.stdout.split())


@pytest.fixture(scope="module")
def slurm():
    if os.geteuid() != 0:
        pytest.skip("starting a local Slurm needs root (scripts/slurm_local.sh start); not root here")
    started = False
    if not _node_ready():
        out = subprocess.run(["bash", str(SLURM_LOCAL), "start"], capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, f"scripts/slurm_local.sh start failed:\n{out.stdout}\n{out.stderr}"
        started = True
    yield
    if started:
        subprocess.run(["bash", str(SLURM_LOCAL), "stop"], capture_output=True, timeout=120)


def _wait_for(predicate, timeout: float, what: str, poll: float = 0.3):
    t0 = time.time()
    while time.time() - t0 < timeout:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _rows(run_dir: Path) -> list[dict] | None:
    if not (run_dir / remote.RECORD).exists():
        return None
    try:
        return remote.status(run_dir)[1]
    except (ValueError, OSError):  # db.json being replaced this instant
        return None


def _comparable(table: pd.DataFrame) -> pd.DataFrame:
    keys = ["system", "row_kind", "site", "e_ads_reference"]
    t = table.drop(columns=[c for c in ("job_uuid", "run_dir") if c in table.columns])
    return t.sort_values(keys, na_position="first").reset_index(drop=True)


# ------------------------------------------------------------------------------------ real Slurm

@pytest.mark.slurm
@pytest.mark.mlip
@pytest.mark.timeout(600)
def test_mlip_campaign_through_slurm_scancel_status_resume_same_table_as_local(slurm, tmp_path):
    from hetero.campaigns import load_campaign, run_folder
    from hetero.table import build_table

    camp_file = tmp_path / "tiny_mlip.yaml"
    camp_file.write_text(yaml.safe_dump({
        "name": "tiny_mlip", "title": "Na on VN(001), CHGNet, one site",
        "model": {"preset": "vn001_na", "size": "fast"}, "ion": "Na", "sites": ["hollow"],
        "steps": ["relax", "static", "adsorption"], "references": ["bulk", "atom"],
        "engine": "mlip", "preset": "fast"}))
    local = _hetero("run", camp_file, "--runs-dir", tmp_path / "local")
    assert local.returncode == 0, local.stdout[-2000:] + local.stderr[-2000:]
    camp = load_campaign(camp_file)
    run_dir = run_folder(camp, "fast", tmp_path / "slurm")

    log = open(tmp_path / "submit.log", "w")
    submit = subprocess.Popen([*HETERO, "submit", str(camp_file), "--profile", "slurm-local", "--runs-dir",
                               str(tmp_path / "slurm")], stdout=log, stderr=subprocess.STDOUT, text=True, env=ENV)
    try:
        def host_running():
            rows = _rows(run_dir) or []
            hit = [r for r in rows if r["name"] == "relax host" and r["state"] == "RUNNING" and r["queue_id"]]
            return hit[0] if hit else None

        killed = _wait_for(host_running, 180, "'relax host' to run in Slurm")
        assert subprocess.run(["scancel", killed["queue_id"]], timeout=30).returncode == 0
        assert submit.wait(timeout=300) == 1  # the rest of the flow ran; the killed branch did not
    finally:
        if submit.poll() is None:
            submit.kill()
        log.close()
    assert "hetero resume" in (tmp_path / "submit.log").read_text()

    status = _hetero("status", run_dir)
    assert status.returncode == 0, status.stderr
    line = next(ln for ln in status.stdout.splitlines() if "relax host" in ln)
    assert "FAILED" in line and killed["queue_id"] in line and "killed" in status.stdout
    rows = {r["name"]: r for r in remote.status(run_dir)[1]}
    assert rows["relax host"]["state"] == "FAILED"
    assert rows["relax host"]["reason"].startswith("killed by the queue") and "CANCELLED" in rows["relax host"]["reason"]
    blocked = {n for n, r in rows.items() if r["state"] == "WAITING"}
    # the killed job's descendants wait: the host static, the site's E_ads and the ion-free host check after it
    assert blocked == {"static host", "E_ads Na@hollow", "ion-free host checks"}
    done = {n: r for n, r in rows.items() if r["state"] == "COMPLETED"}
    assert len(done) == len(rows) - 1 - len(blocked)
    # each finished job went through its own sbatch: its own Slurm id and script, its output in the store
    assert len({r["queue_id"] for r in done.values()}) == len(done)
    for r in done.values():
        script = (Path(r["run_dir"]) / "submit.sh").read_text()
        assert "#SBATCH --ntasks=" in script and f"--job-name={r['name'].replace(' ', '_')}" in script
        assert (Path(r["run_dir"]) / "queue.out").exists()
    stored = json.loads((run_dir / "store.json").read_text())
    assert {d["uuid"] for d in stored} == {r["uuid"] for r in done.values()}
    assert all(d["output"] is not None for d in stored if d["name"].startswith(("relax", "static")))

    resumed = _hetero("resume", run_dir)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-2000:]
    assert re.search(rf"requeued 1 job\(s\): {rows['relax host']['db_id']}\b", resumed.stdout)
    after = {r["name"]: r for r in remote.status(run_dir)[1]}
    assert all(r["state"] == "COMPLETED" for r in after.values())
    assert all(after[n]["queue_id"] == r["queue_id"] for n, r in done.items())  # finished jobs not recomputed
    assert after["relax host"]["queue_id"] != killed["queue_id"]

    ours = _comparable(build_table(run_dir))
    theirs = _comparable(build_table(run_folder(camp, "fast", tmp_path / "local")))
    assert ours["e_ads_eV"].notna().sum() == 2  # bulk-metal and isolated-atom references
    pd.testing.assert_frame_equal(ours, theirs, check_exact=False, rtol=1e-6, atol=1e-8)


@pytest.mark.slurm
@pytest.mark.timeout(300)
def test_cancel_stops_queued_and_running_jobs(slurm, tmp_path):
    from hetero.hpc.probe import probe_flow
    from hetero.hpc.resources import apply_resources

    profile = parse_profile("slurm-local")
    flow = probe_flow(3, seconds=300)
    run_dir = tmp_path / "runs" / "probes"
    run_dir.mkdir(parents=True)
    remote.submit_flow(flow, profile, run_dir, tmp_path / "runs", apply_resources(flow, profile))
    follow = subprocess.Popen([sys.executable, "-c", "import sys; from pathlib import Path; from hetero.hpc import "
                               "remote; remote.run_until_done(Path(sys.argv[1]))", str(run_dir)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
    try:
        def in_slurm():
            rows = _rows(run_dir) or []
            running = [r for r in rows if r["state"] == "RUNNING"]
            return rows if len(running) == 2 and all(r["queue_id"] for r in rows) else None

        rows = _wait_for(in_slurm, 120, "two probes running and one pending in Slurm (2 cores)")
        follow.send_signal(signal.SIGINT)  # stops following between two rounds; the queue is saved
        assert follow.wait(timeout=60) != 0
        assert "stopped following" in follow.stdout.read()
    finally:
        if follow.poll() is None:
            follow.kill()
    ids = [r["queue_id"] for r in rows]

    def listed():
        q = subprocess.run(["squeue", "-h", "-o", "%i", "-j", ",".join(ids)], capture_output=True, text=True)
        return set(q.stdout.split()) & set(ids)

    assert listed() == set(ids)  # no longer followed, still queued

    out = _hetero("cancel", run_dir)
    assert out.returncode == 0 and "cancelled 3 job(s)" in out.stdout, out.stdout + out.stderr

    _wait_for(lambda: not listed(), 30, "scancel to clear the probes from Slurm")
    assert {r["state"] for r in remote.status(run_dir)[1]} == {"USER_STOPPED"}


@pytest.mark.slurm
@pytest.mark.timeout(300)
def test_batch_profile_packs_small_jobs_into_one_allocation(slurm, tmp_path):
    from hetero.hpc.probe import probe_flow
    from hetero.hpc.resources import apply_resources

    data = yaml.safe_load((ROOT / "configs" / "hpc" / "slurm-local.yaml").read_text())
    data.update(name="slurm-local-batch", batch={"steps": ["analysis"], "cores": 1, "walltime": "00:10:00",
                                                 "max_jobs": 20, "max_wait_s": 5, "max_allocations": 1})
    profile = parse_profile(data)
    flow = probe_flow(4, seconds=0.2)
    run_dir = tmp_path / "runs" / "packed"
    run_dir.mkdir(parents=True)
    remote.submit_flow(flow, profile, run_dir, tmp_path / "runs", apply_resources(flow, profile))
    rows = remote.run_until_done(run_dir, timeout_s=200)
    assert [r["state"] for r in rows] == ["COMPLETED"] * 4 and {r["worker"] for r in rows} == {"hetero-batch"}
    outputs = [d["output"] for d in json.loads((run_dir / "store.json").read_text())]
    assert sorted(o["index"] for o in outputs) == [0, 1, 2, 3]
    assert len({o["queue_id"] for o in outputs}) == 1 and outputs[0]["queue_id"]  # one Slurm allocation ran all four
    assert len({o["pid"] for o in outputs}) == 4


@pytest.mark.slurm
@pytest.mark.timeout(300)
def test_mongodb_profile_runs_through_jobflow_remote_project_file(slurm, tmp_path, monkeypatch):
    """The production path (MongoDB URI from the environment, project file in jobflow-remote's folder,
    jobflow-remote's Runner built from that file) against a mocked MongoDB server."""
    import jobflow_remote
    import mongomock_ng

    from hetero.hpc.probe import probe_flow
    from hetero.hpc.resources import apply_resources

    secret = "pw-never-written"
    monkeypatch.setenv("HETERO_MONGO_URI", f"mongodb://alice:{secret}@mongo.test:27017/hetero")
    monkeypatch.setattr(jobflow_remote.SETTINGS, "projects_folder", str(tmp_path / "jfremote"))
    monkeypatch.setattr(mongomock_ng.MongoClient, "close", lambda self: None)  # mongomock's close wipes its server
    data = yaml.safe_load((ROOT / "configs" / "hpc" / "slurm-local.yaml").read_text())
    data.update(name="slurm-mongo", store={"backend": "mongodb", "database": "hetero"},
                jobflow_remote={**data["jobflow_remote"], "work_dir": str(tmp_path / "jobs")})
    profile = parse_profile(data)
    flow = probe_flow(3, seconds=0.2)
    run_dir = tmp_path / "runs" / "probes"
    run_dir.mkdir(parents=True)
    with mongomock_ng.patch(servers=(("mongo.test", 27017),)):
        remote.submit_flow(flow, profile, run_dir, tmp_path / "runs", apply_resources(flow, profile))
        remote.run_until_done(run_dir, timeout_s=200)
        (run_dir / "store.json").unlink()
        record, rows = remote.status(run_dir)  # MongoDB backend: status refreshes the run folder's store
    assert [r["state"] for r in rows] == ["COMPLETED"] * 3 and len({r["queue_id"] for r in rows}) == 3
    assert sorted(d["output"]["index"] for d in json.loads((run_dir / "store.json").read_text())) == [0, 1, 2]
    project_file = (tmp_path / "jfremote" / "hetero-slurm-mongo.yaml").read_text()
    assert "EnvURIStore" in project_file and secret not in project_file
    assert secret not in (run_dir / remote.RECORD).read_text()
    # nor in any file jobflow-remote or the jobs wrote: runner.log, submit.sh, queue.out/err, job inputs/outputs
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "runner.log" for p in written) and any(p.name == "submit.sh" for p in written)
    assert all("#SBATCH --export=ALL,HETERO_MONGO_URI=\n" in p.read_text() for p in written if p.name == "submit.sh")
    assert not [p for p in written if secret in p.read_text(errors="ignore")]


# ------------------------------------------------------------------------------ generated scripts

def _plan(steps: list[dict], name: str) -> dict:
    return next(s for s in steps if s["name"] == name)


@pytest.fixture
def neb_campaign(tmp_path):
    data = yaml.safe_load(CAMPAIGN.read_text())
    data["neb"] = {**data.get("neb", {}), "images": 3}
    path = tmp_path / "na_vn001_neb3.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_pbs_scripts_size_each_step_and_launch_gpaw(neb_campaign, tmp_path):
    prof = yaml.safe_load((ROOT / "configs" / "hpc" / "pbs.yaml").read_text())
    prof.update(name="pbs-test", cores_per_node=8)
    path = tmp_path / "pbs-test.yaml"
    path.write_text(yaml.safe_dump(prof))
    steps = remote.dry_run(neb_campaign, path, runs_dir=tmp_path / "runs")

    host, site = _plan(steps, "relax host"), _plan(steps, "relax Na@hollow")
    assert (host["kind"], host["n_atoms"], site["n_atoms"]) == ("relax", 16, 17)
    assert (host["cores"], host["nodes"]) == (16, 2)  # 1 core per atom, 8-core nodes -> two full nodes
    assert site["cores"] == 18 and site["nodes"] == 3  # 17 ranks spread evenly over 3 nodes
    s = host["script"]
    assert "#PBS -l select=2:ncpus=8:mpiprocs=8" in s and "#PBS -l walltime=12:00:00" in s
    assert "#PBS -q workq" in s and "#PBS -N relax_host" in s
    assert "export HETERO_CORES=16" in s and "export HETERO_GPAW_LAUNCH='mpiexec -n 16 gpaw python'" in s
    assert s.index("module load openmpi") < s.index("source $HOME/hetero/.venv/bin/activate") < s.index("run_remote_job")
    assert re.search(r"run_remote_job\(sys.argv\[1\]\)\" /\S+_1\n?$", s)  # jobflow-remote runs the step

    ref = _plan(steps, "static Na atom")
    assert (ref["kind"], ref["cores"], ref["walltime"]) == ("reference", 8, "01:00:00")
    ads = _plan(steps, "E_ads Na@hollow")
    assert (ads["kind"], ads["cores"]) == ("analysis", 1) and "select=1:ncpus=1:mpiprocs=1" in ads["script"]
    neb = next(s for s in steps if s["name"].startswith("CI-NEB"))
    assert (neb["kind"], neb["n_images"], neb["cores"], neb["nodes"]) == ("neb", 3, 96, 12)  # 3 images x 32


def test_sge_scripts_use_a_parallel_environment_and_vasp_launch(tmp_path):
    steps = remote.dry_run(CAMPAIGN, "sge", runs_dir=tmp_path / "runs")
    s = _plan(steps, "static host")["script"]
    assert "#$ -pe mpi 16" in s and "#$ -l h_rt=06:00:00" in s and "#$ -l h_vmem=2000M" in s
    assert "#$ -q all.q" in s and "#$ -N static_host" in s
    assert "export HETERO_VASP_CMD='mpirun -n 16 vasp_std'" in s and "export HETERO_WALLTIME_S=21600" in s
    assert "#$ -N E_ads_Na_top-N" in _plan(steps, "E_ads Na@top-N")["script"]  # '@' is not allowed by SGE
    assert "#$ -pe mpi 1" in _plan(steps, "DOS host")["script"]


def test_slurm_profile_packs_analysis_into_a_batch_worker_and_sizes_references_small(tmp_path):
    steps = remote.dry_run(CAMPAIGN, "slurm", runs_dir=tmp_path / "runs")
    by_kind: dict[str, set] = {}
    for s in steps:
        by_kind.setdefault(s["kind"], set()).add(s["worker"])
    assert by_kind["analysis"] == {"hetero-batch"} and by_kind["relax"] == {"hetero"}
    assert _plan(steps, "relax Na bulk metal (cell)")["cores"] < _plan(steps, "relax host")["cores"]
    s = _plan(steps, "relax host")["script"]
    assert "#SBATCH --ntasks=32" in s and "#SBATCH --partition=standard" in s and "#SBATCH --time=12:00:00" in s
    assert "export HETERO_GPAW_LAUNCH='srun -n 32 gpaw python'" in s


def test_single_allocation_script_for_sge(tmp_path):
    from hetero.hpc import write_and_submit

    script, job = write_and_submit(CAMPAIGN, "sge", "fast", tmp_path, submit=False)
    text = script.read_text()
    assert job is None and script.name == "submit.sge"
    assert "#$ -pe mpi 16" in text and "export HETERO_CORES=${NSLOTS}" in text and "hetero run" in text


# ------------------------------------------------------------------------------------- stores, errors

def test_database_credentials_stay_in_the_environment(tmp_path, monkeypatch):
    import jobflow_remote

    from hetero.hpc.stores import EnvURIStore

    secret = "s3cret-pw"
    monkeypatch.setenv("HETERO_MONGO_URI", f"mongodb://alice:{secret}@127.0.0.1:9/hetero?serverSelectionTimeoutMS=200")
    monkeypatch.setattr(jobflow_remote.SETTINGS, "projects_folder", str(tmp_path / "jfremote"))
    store = EnvURIStore(collection_name="jobs")
    assert secret not in store.name and secret not in repr(store) and secret not in json.dumps(store.as_dict())
    profile = parse_profile("slurm")
    path = remote.write_project(profile, None)
    text = path.read_text()
    assert path.name == "hetero-slurm.yaml" and "HETERO_MONGO_URI" in text and secret not in text
    with pytest.raises(remote.HpcError) as err:  # nothing listens on port 9
        remote.open_queue(profile)
    assert secret not in str(err.value) and "HETERO_MONGO_URI" in str(err.value)
    monkeypatch.delenv("HETERO_MONGO_URI")
    with pytest.raises(remote.HpcError, match="HETERO_MONGO_URI is not set"):
        remote.open_queue(profile)


def test_bad_profiles_name_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("scheduler: slurm\nsteps: {relaxx: {cores: 4}}\n")
    with pytest.raises(HpcProfileError, match=r"bad.yaml: 'steps'.*relaxx"):
        parse_profile(bad)
    bad.write_text("scheduler: pbs\nsteps: {relax: {cores: 4, walltime: '12h'}}\n")
    with pytest.raises(HpcProfileError, match=r"steps.relax.walltime"):
        parse_profile(bad)
    with pytest.raises(HpcProfileError, match="slurm-local"):
        parse_profile("no-such-cluster")
    missing = _hetero("status", tmp_path)
    assert missing.returncode == 2 and "hpc.json" in missing.stdout
    env = {k: v for k, v in ENV.items() if k != "HETERO_MONGO_URI"}
    out = subprocess.run([*HETERO, "submit", str(CAMPAIGN), "--profile", "slurm", "--runs-dir", str(tmp_path / "r")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 2 and "HETERO_MONGO_URI is not set" in out.stdout.replace("\n", " ")
    assert not (tmp_path / "r").exists()  # refused before anything was built or written
