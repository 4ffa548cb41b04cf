"""One queue job per step: a campaign's jobflow Flow through jobflow-remote (Slurm, PBS or SGE).

`submit_campaign` builds the campaign's Flow exactly as `hetero run` does, gives every job its queue
resources (hetero.hpc.resources) and adds the Flow to the jobflow-remote project of the profile.
The project's runner (jobflow-remote's daemon, `hetero runner`, or `--wait` here) submits each job
with sbatch/qsub when its inputs are ready. `status`, `resume` and `cancel` act on the same Flow;
every call copies the finished outputs into `<run folder>/store.json`, the store `hetero table`,
`figures` and `report` read after `hetero run`.

Stores: with `store.backend: mongodb` (clusters) the queue and outputs live in MongoDB, reached
through the connection string in an environment variable (hetero.hpc.stores.EnvURIStore), and the
project file hetero writes for jobflow-remote (~/.jfremote/hetero-<profile>.yaml) names only that
variable. With `mongomock` (tests and laptops only) the database lives in this process and is saved
to `<runs>/.hetero-queue/<project>/db.json`; one process at a time drives it, so `submit` and
`resume` run the runner themselves until the jobs end.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hetero.hpc.profile import HpcProfile, HpcProfileError, parse_profile
from hetero.hpc.resources import (
    BATCH_WORKER,
    MAIN_WORKER,
    RULE_PREFIX,
    StepPlan,
    apply_resources,
    plan_for,
    plan_step,
    scheduler_resources,
)

RECORD = "hpc.json"
STATE_DIR = ".hetero-queue"
DONE_STATES = ("COMPLETED",)
RETRYABLE_STATES = ("FAILED", "REMOTE_ERROR")
STOPPED_STATES = ("USER_STOPPED", "STOPPED")
ACTIVE_STATES = ("READY", "CHECKED_OUT", "UPLOADED", "SUBMITTED", "RUNNING", "RUN_FINISHED", "DOWNLOADED",
                 "BATCH_SUBMITTED", "BATCH_RUNNING")


class HpcError(RuntimeError):
    pass


class FollowStopped(HpcError):
    """Ctrl-C (or SIGTERM) while following jobs: the queue was saved, queued jobs keep running."""


# ----------------------------------------------------------------------------- the project

def default_execution_cmd() -> str:
    """What each queue job runs: jobflow-remote's run_remote_job, without loading its whole `jf` CLI
    (same function `jf -fe execution run {}` calls; about 1 s less Python start-up per job)."""
    code = "import sys; from jobflow_remote.jobs.run import run_remote_job; run_remote_job(sys.argv[1])"
    return f'{sys.executable} -c "{code}" {{}}'


def project_dict(profile: HpcProfile, state_dir: Path | None) -> dict[str, Any]:
    """jobflow-remote Project for the profile. Holds no credentials (only the variable's name)."""
    from jobflow import JobStore

    from hetero.hpc.stores import EnvURIStore, SharedMongomockStore

    name = profile.project_name
    if profile.store.backend == "mongodb":
        def store(coll):
            return EnvURIStore(uri_env=profile.store.uri_env, database=profile.store.database, collection_name=coll)
        base: dict[str, Any] = {}
    else:
        if state_dir is None:
            raise HpcProfileError("the mongomock backend keeps its queue under the runs folder; give --runs-dir")

        def store(coll):
            return SharedMongomockStore(db_name=name, collection_name=coll, persist_path=str(state_dir / "db.json"))
        base = {"base_dir": str(state_dir)}
    work_dir = profile.work_dir(state_dir)
    jfr = profile.jobflow_remote
    worker = {
        "type": "local",
        "scheduler_type": profile.scheduler,
        "work_dir": str(work_dir),
        "execution_cmd": jfr.execution_cmd or default_execution_cmd(),
    }
    if profile.scheduler == "sge":
        worker["scheduler_username"] = jfr.scheduler_username or os.environ.get("USER") or None
    workers = {MAIN_WORKER: worker}
    if profile.batch:
        b = profile.batch
        plan = plan_step(profile, b.steps[0])
        plan.cores, plan.nodes, plan.walltime = b.cores, 1, b.walltime
        pre = [f"module load {m}" for m in profile.modules] + list(profile.pre_run)
        pre.append(f'export PATH="{Path(sys.executable).parent}:$PATH"')  # the batch command is a bare `jf`
        workers[BATCH_WORKER] = {
            **worker,
            "resources": scheduler_resources(profile, plan),
            "pre_run": "\n".join(pre),
            "max_jobs": b.max_allocations or 1,
            "batch": {"jobs_handle_dir": str(work_dir / "batch-handles"), "work_dir": str(work_dir / "batch"),
                      "max_jobs_per_batch": b.max_jobs, "max_wait": b.max_wait_s, "parallel_jobs": b.parallel_jobs},
        }
    r = jfr.runner
    return {
        "name": name,
        **base,
        "workers": workers,
        "queue": {"store": store("jobs").as_dict()},
        "jobstore": JobStore(docs_store=store("outputs")).as_dict(),
        "runner": {"delay_checkout": r.delay_checkout, "delay_check_run_status": r.delay_check_run_status,
                   "delay_advance_status": r.delay_advance_status, "delay_update_batch": r.delay_update_batch,
                   "max_step_attempts": r.max_step_attempts, "delta_retry": list(r.delta_retry)},
        "metadata": {"written_by": "hetero", "profile": profile.name, "backend": profile.store.backend},
    }


def _projects_folder(profile: HpcProfile, state_dir: Path | None) -> Path:
    import jobflow_remote

    if profile.store.backend == "mongomock":
        return state_dir / "projects"
    return Path(jobflow_remote.SETTINGS.projects_folder).expanduser()


def write_project(profile: HpcProfile, state_dir: Path | None) -> Path:
    """Write (or refresh) the project file jobflow-remote reads; a user's own project is left alone."""
    import yaml
    from jobflow_remote.config.base import Project

    folder = _projects_folder(profile, state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{profile.project_name}.yaml"
    if path.exists():
        existing = yaml.safe_load(path.read_text()) or {}
        if (existing.get("metadata") or {}).get("written_by") != "hetero":
            return path  # bring-your-own jobflow-remote project: used as it is
    data = project_dict(profile, state_dir)
    Project.model_validate(data)  # fails here, naming the key, rather than in the runner
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text("# written by hetero from the HPC profile; holds no credentials\n" + yaml.safe_dump(data))
    os.replace(tmp, path)
    return path


# ----------------------------------------------------------------------------- opening the queue

@dataclass
class Queue:
    profile: HpcProfile
    project_name: str
    jc: Any  # jobflow_remote JobController
    state_dir: Path | None = None
    lock_file: Any = None
    read_only: bool = False
    _runner: Any = field(default=None, repr=False)

    @property
    def backend(self) -> str:
        return self.profile.store.backend

    def save(self) -> None:
        if self.backend == "mongomock" and not self.read_only:
            from hetero.hpc.stores import save_shared_db

            save_shared_db(self.project_name, self.state_dir / "db.json")

    def close(self) -> None:
        self.save()
        if self.backend == "mongomock":
            from hetero.hpc.stores import forget_client

            forget_client(self.project_name)
        if self.lock_file is not None:
            fcntl.flock(self.lock_file, fcntl.LOCK_UN)
            self.lock_file.close()
            self.lock_file = None
        if self.backend == "mongodb":
            self.jc.close()

    def __enter__(self) -> Queue:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def runner(self):
        if self._runner is None:
            import logging
            import warnings

            from jobflow_remote.jobs.runner import Runner

            # monty deprecations inside jobflow-remote: not the user's business
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"jobflow_remote(\..*)?")
            self._runner = Runner(project_name=self.project_name, log_level=None)
            # the runner logs to <base_dir>/log/runner.log and to the terminal: keep the terminal for warnings
            for h in logging.getLogger("jobflow_remote").handlers:
                if type(h) is logging.StreamHandler:
                    h.setLevel(logging.WARNING)
        return self._runner


def state_dir_for(profile: HpcProfile, runs_dir: str | Path | None) -> Path | None:
    if profile.store.backend != "mongomock":
        return None
    if runs_dir is None:
        raise HpcProfileError("the mongomock backend keeps its queue under the runs folder; give --runs-dir")
    return Path(runs_dir).resolve() / STATE_DIR / profile.project_name


def open_queue(profile: HpcProfile, runs_dir: str | Path | None = None, read_only: bool = False) -> Queue:
    """Connect to the profile's jobflow-remote project (writing its project file first)."""
    import jobflow_remote
    from jobflow_remote.config.manager import ConfigManager
    from jobflow_remote.jobs.jobcontroller import JobController

    state_dir = state_dir_for(profile, runs_dir)
    lock = None
    if state_dir is not None:
        state_dir.mkdir(parents=True, exist_ok=True)
        if not read_only:
            lock = open(state_dir / "lock", "a+")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.seek(0)
                holder = lock.read().strip() or "another process"
                lock.close()
                raise HpcError(f"the queue in {state_dir} is driven by {holder} (mongomock backend: one process at "
                               "a time); wait for it to finish or stop it, then retry") from None
            lock.seek(0)
            lock.truncate()
            lock.write(f"hetero pid {os.getpid()}")
            lock.flush()
        jobflow_remote.SETTINGS.projects_folder = str(_projects_folder(profile, state_dir))
        from hetero.hpc.stores import forget_client

        forget_client(profile.project_name)  # (re)load the saved database
    write_project(profile, state_dir)
    project = ConfigManager().get_project(profile.project_name)
    from hetero.hpc.stores import MissingCredentialsError

    try:
        jc = JobController.from_project(project)
        fresh = (jc.auxiliary.find_one({"next_id": {"$exists": True}}) is None and jc.jobs.count_documents({}) == 0
                 and jc.flows.count_documents({}) == 0)
    except MissingCredentialsError as exc:
        if lock is not None:
            lock.close()
        raise HpcError(str(exc)) from None
    except Exception as exc:  # the driver's message may quote the connection string: name the type only
        if lock is not None:
            lock.close()
        raise HpcError(f"cannot reach the queue database of project {profile.project_name} ({type(exc).__name__}); "
                       f"check ${profile.store.uri_env} and that the MongoDB server is reachable from this node"
                       ) from None
    if fresh:
        jc.reset(reset_output=False, max_limit=0)  # a new database: jobflow-remote's counters and indexes
    elif lock is not None:  # mongomock and we hold its file lock: any document lock is a dead process's
        jc.unlock_jobs()
        jc.unlock_flows()
    return Queue(profile=profile, project_name=profile.project_name, jc=jc, state_dir=state_dir, lock_file=lock,
                 read_only=read_only)


# ----------------------------------------------------------------------------- run folder record

def read_record(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / RECORD
    return json.loads(path.read_text()) if path.exists() else None


def write_record(run_dir: Path, record: dict[str, Any]) -> None:
    (Path(run_dir) / RECORD).write_text(json.dumps(record, indent=1))


def resolve_run_dir(target: str | Path, preset: str | None = None, runs_dir: str | Path = "runs") -> Path:
    """A run folder given directly, or the run folder of a campaign file (+ preset, runs dir)."""
    target = Path(target)
    if target.is_dir():
        if not (target / RECORD).exists():
            raise HpcError(f"{target} holds no {RECORD}: it was not sent with `hetero submit --profile`")
        return target
    from hetero.campaigns import load_campaign, run_folder

    camp = load_campaign(target)
    run_dir = run_folder(camp, preset or camp.preset, runs_dir)
    if not (run_dir / RECORD).exists():
        raise HpcError(f"{run_dir} holds no {RECORD}: submit the campaign first (hetero submit {target} --profile NAME)"
                       + ("" if preset else " or give the --preset it was submitted with"))
    return run_dir


def queue_for(run_dir: Path, read_only: bool = False) -> tuple[Queue, dict[str, Any]]:
    record = read_record(run_dir)
    profile = parse_profile(record["profile"])
    return open_queue(profile, record.get("runs_dir"), read_only=read_only), record


# ----------------------------------------------------------------------------- submit

def _n_images(camp, preset: str) -> int:
    if camp.neb.get("images"):
        return int(camp.neb["images"])
    import yaml

    from hetero.hpc.profile import configs_dir

    engine = camp.engine.split(":")[0]
    path = configs_dir() / engine / f"{preset}.yaml"
    data = yaml.safe_load(path.read_text()) if path.exists() else {}
    return int((data or {}).get("neb_images", 3))


def _prepare(campaign: str | Path, preset: str | None, runs_dir: str | Path, size: str | None, write: bool = True):
    """The campaign's run folder, Flow and model records, exactly as `hetero run` writes them."""
    from hetero.campaigns import prepare_campaign

    camp, preset, _eng, root, flow, models = prepare_campaign(campaign, preset, runs_dir, size, write=write)
    host = models.get("host") or {}
    host_atoms = host.get("n_atoms") or (len(host["structure"]["sites"]) if "structure" in host else None)
    return camp, preset, root, flow, models, host_atoms


def submit_flow(flow, profile: HpcProfile, run_dir: Path, runs_dir: str | Path, plans: dict[str, StepPlan],
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Add a Flow whose jobs already carry their resources to the profile's queue; write <run>/hpc.json."""
    run_dir = Path(run_dir).resolve()
    submit_cmd = {"slurm": "sbatch", "pbs": "qsub", "sge": "qsub"}[profile.scheduler]
    if shutil.which(submit_cmd) is None:
        raise HpcError(f"'{submit_cmd}' is not on this machine's PATH: run hetero submit on the cluster's login node "
                       f"(profile {profile.name} uses {profile.scheduler})")
    old = read_record(run_dir)
    with open_queue(profile, runs_dir) as q:
        if old and old.get("project") == profile.project_name:
            active = _active_jobs(q, old["flow_uuid"])
            if active:
                raise HpcError(f"{run_dir} was already submitted and {active} of its jobs are queued or running; "
                               "follow it with `hetero status`, or `hetero cancel` it before submitting again")
        workers = set(q.jc.project.workers) if q.jc.project else set()
        missing = {p.worker for p in plans.values()} - workers
        if missing:
            raise HpcError(f"jobflow-remote project {profile.project_name} has no worker named "
                           f"{', '.join(sorted(missing))}; add it to your project file, or let hetero write the "
                           "project (leave jobflow_remote.project unset)")
        store_path = run_dir / "store.json"
        if store_path.exists():
            shutil.copy(store_path, run_dir / "store.previous.json")
        db_ids = q.jc.add_flow(flow=flow, worker=MAIN_WORKER)
        record = {
            "flow_uuid": flow.uuid, "project": profile.project_name, "backend": profile.store.backend,
            "profile": profile.model_dump(), "runs_dir": str(Path(runs_dir).resolve()), "run_dir": str(run_dir),
            "submitted_at": datetime.datetime.now().isoformat(timespec="seconds"), "jobs": len(db_ids),
            "plans": {u: vars(p) for u, p in plans.items()}, **(extra or {}),
        }
        write_record(run_dir, record)
        q.save()
    return record


def _campaign_flow(campaign, profile: HpcProfile, preset, runs_dir, size, write: bool = True):
    camp, preset, root, flow, models, host_atoms = _prepare(campaign, preset, runs_dir, size, write=write)
    max_ions = int(camp.coverage.get("max_ions", 4)) if "coverage" in camp.steps else 1
    plans = apply_resources(flow, profile, n_images=_n_images(camp, preset),
                            dynamic_atoms=(host_atoms + max_ions) if host_atoms else None)
    return preset, root, flow, plans


def dry_run(campaign: str | Path, profile_name: str | Path, preset: str | None = None, runs_dir: str | Path = "runs",
            size: str | None = None) -> list[dict[str, Any]]:
    """Each step's plan and the script its queue job would be submitted with; nothing is written or queued."""
    from jobflow_remote.remote.data import get_job_path

    from hetero.hpc.resources import submission_script

    profile = parse_profile(profile_name)
    preset, root, flow, plans = _campaign_flow(campaign, profile, preset, runs_dir, size, write=False)
    work_dir = profile.work_dir(state_dir_for(profile, runs_dir))
    cmd = profile.jobflow_remote.execution_cmd or default_execution_cmd()
    out = [{"name": f"{key[len(RULE_PREFIX):].strip()}... (made while the flow runs)", **vars(plan), "script": None}
           for key, plan in plans.items() if key.startswith(RULE_PREFIX)]
    for j, _ in flow.iterflow():
        plan = plans[j.uuid]
        script = None
        if plan.worker == MAIN_WORKER:
            script = submission_script(profile, plan, j.name.replace(" ", "_"),
                                       get_job_path(j.uuid, j.index, str(work_dir)), cmd)
        out.append({"name": j.name, **vars(plan), "script": script})
    return out


def submit_campaign(campaign: str | Path, profile_name: str | Path, preset: str | None = None,
                    runs_dir: str | Path = "runs", size: str | None = None) -> dict[str, Any]:
    """Build the campaign's Flow, size every step from the profile and add it to the queue."""
    profile = parse_profile(profile_name)
    if profile.store.backend == "mongodb" and not os.environ.get(profile.store.uri_env):
        raise HpcError(f"environment variable {profile.store.uri_env} is not set: export the MongoDB connection "
                       f"string of jobflow-remote's queue (see README, 'On a cluster'), or use "
                       "--single-allocation on a cluster without a database")
    preset, root, flow, plans = _campaign_flow(campaign, profile, preset, runs_dir, size)
    return submit_flow(flow, profile, root, runs_dir, plans,
                       extra={"campaign": str(Path(campaign).resolve()), "preset": preset})


# ----------------------------------------------------------------------------- status

def _flow_jobs(q: Queue, flow_uuid: str):
    infos = q.jc.get_jobs_info(flow_ids=[flow_uuid])
    return sorted(infos, key=lambda i: int(str(i.db_id).lstrip("abcdefghijklmnopqrstuvwxyz-_") or 0))


def _active_jobs(q: Queue, flow_uuid: str) -> int:
    from jobflow_remote.jobs.state import RUNNING_STATES, JobState

    states = [JobState.READY.value] + [s.value for s in RUNNING_STATES]
    return sum(1 for i in _flow_jobs(q, flow_uuid) if i.state.value in states)


# what Slurm, PBS and SGE write into a job's stderr when they end it
_KILLED = re.compile(r"CANCELLED|TIME LIMIT|oom[-_ ]kill|exceeded limit|PREEMPTED|NODE_FAIL|job killed|terminated",
                     re.IGNORECASE)


def _queue_kill_line(run_dir: str | None) -> str | None:
    path = Path(run_dir) / "queue.err" if run_dir else None
    if path is None or not path.exists():
        return None
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - 8192))
        tail = f.read().decode(errors="replace")
    hits = [ln.strip() for ln in tail.splitlines() if _KILLED.search(ln)]
    return hits[-1] if hits else None


def _reason(info) -> str:
    text = info.error or (info.remote.error if info.remote else None) or ""
    if info.state.value in ("FAILED", "REMOTE_ERROR"):
        killed = _queue_kill_line(info.run_dir)
        if killed:
            return f"killed by the queue: {killed[:180]}"
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""


def _cores(res: dict | None) -> int | None:
    if not isinstance(res, dict):
        return None
    if "ntasks" in res:
        return int(res["ntasks"])
    if "select" in res and str(res["select"]).startswith("select="):
        parts = dict(p.split("=") for p in str(res["select"]).split(":") if "=" in p)
        return int(parts.get("select", 1)) * int(parts.get("mpiprocs", parts.get("ncpus", 1)))
    if "model" in res:
        return int(str(res["model"]).split()[-1])
    return None


def job_rows(q: Queue, record: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per job of the submitted Flow: state, queue id, cores, walltime, run time, failure reason."""
    infos = _flow_jobs(q, record["flow_uuid"])
    docs = {d["db_id"]: d for d in q.jc.get_jobs({"db_id": {"$in": [i.db_id for i in infos]}},
                                                 ["db_id", "resources", "worker"])}
    plans = record.get("plans", {})
    now = datetime.datetime.now(datetime.timezone.utc)
    rows = []
    for i in infos:
        res = docs.get(i.db_id, {}).get("resources") or {}
        start, end = i.start_time, i.end_time
        run_s = None
        if start is not None:
            start = start if start.tzinfo else start.replace(tzinfo=datetime.timezone.utc)
            stop = end if end is not None else (now if i.state.value in ("RUNNING", "BATCH_RUNNING") else None)
            if stop is not None:
                stop = stop if stop.tzinfo else stop.replace(tzinfo=datetime.timezone.utc)
                run_s = max(0.0, (stop - start).total_seconds())
        plan = plan_for(plans, i.uuid, i.name) or {}
        rows.append({
            "db_id": i.db_id, "uuid": i.uuid, "index": i.index, "name": i.name, "state": i.state.value,
            "kind": plan.get("kind", ""), "queue_id": i.remote.process_id if i.remote else None,
            "cores": _cores(res), "walltime": res.get("time") or res.get("walltime"), "run_s": run_s,
            "worker": docs.get(i.db_id, {}).get("worker"), "run_dir": i.run_dir, "reason": _reason(i) if i.state.value != "COMPLETED" else "",
        })
    return rows


def sync_store(q: Queue, record: dict[str, Any]) -> int:
    """Copy the finished outputs of the Flow into <run folder>/store.json (what `hetero table` reads)."""
    order = {i.uuid: n for n, i in enumerate(_flow_jobs(q, record["flow_uuid"]))}
    store = q.jc.jobstore
    store.connect()
    latest: dict[tuple[str, int], dict] = {}
    for doc in store.docs_store.query({"hosts": record["flow_uuid"]}):
        doc = {k: v for k, v in doc.items() if k != "_id"}
        key = (doc["uuid"], int(doc.get("index", 1)))
        if key not in latest or int(doc.get("index", 1)) >= int(latest[key].get("index", 1)):
            latest[key] = doc
    docs = sorted(latest.values(), key=lambda d: (order.get(d["uuid"], len(order)), str(d.get("completed_at", ""))))
    path = Path(record["run_dir"]) / "store.json"
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    from hetero.campaigns import _json_default

    tmp.write_text(json.dumps(docs, default=_json_default))
    os.replace(tmp, path)
    return len(docs)


def status(run_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The Flow's jobs; with MongoDB also refreshes store.json (with mongomock the driving process does)."""
    record = read_record(run_dir)
    read_only = record.get("backend") == "mongomock"  # a snapshot: never written back
    q, record = queue_for(run_dir, read_only=read_only)
    with q:
        rows = job_rows(q, record)
        if not read_only:
            sync_store(q, record)
    return record, rows


# ----------------------------------------------------------------------------- drive, resume, cancel

def drive(q: Queue, record: dict[str, Any], progress: Callable[[str], None] | None = None,
          timeout_s: float | None = None) -> list[dict[str, Any]]:
    """Run jobflow-remote's runner steps in this process until no job of the Flow can advance."""
    from jobflow_remote.jobs.state import JobState

    import signal

    runner = q.runner()
    states = [JobState.CHECKED_OUT.value, JobState.UPLOADED.value, JobState.RUN_FINISHED.value,
              JobState.DOWNLOADED.value]
    seen: dict[str, str] = {}
    t0 = time.time()
    poll = q.profile.jobflow_remote.runner.poll_s
    stop: list[int] = []
    handlers = {}
    try:  # stop between two rounds, never inside one (jobflow-remote holds document locks there)
        for sig in (signal.SIGINT, signal.SIGTERM):
            handlers[sig] = signal.signal(sig, lambda signum, frame: stop.append(signum))
    except ValueError:  # not the main thread
        pass
    try:
        while True:
            runner.checkout()
            runner.advance_state(states)
            runner.check_run_status()
            runner.advance_state(states)
            if runner.batch_workers:
                runner.update_batch_jobs()
            rows = job_rows(q, record)
            changed = [r for r in rows if seen.get(r["db_id"]) != r["state"]]
            for r in changed:
                seen[r["db_id"]] = r["state"]
                if progress:
                    qid = f" (queue id {r['queue_id']})" if r["queue_id"] else ""
                    progress(f"{r['db_id']:>4} {r['name']}: {r['state']}{qid}")
            if any(r["state"] == "COMPLETED" for r in changed):
                sync_store(q, record)
            q.save()
            if not any(r["state"] in ACTIVE_STATES for r in rows):
                break
            if stop:
                raise FollowStopped("stopped following; jobs already in the queue keep running and "
                                    f"`hetero resume {record['run_dir']}` follows them again")
            if timeout_s and time.time() - t0 > timeout_s:
                raise HpcError(f"jobs still running after {timeout_s:.0f} s; `hetero resume` continues to follow them")
            time.sleep(poll)
    finally:
        for sig, h in handlers.items():
            signal.signal(sig, h)
        q.save()
        sync_store(q, record)
    return rows


def resume(run_dir: Path, wait: bool | None = None, progress: Callable[[str], None] | None = None,
           timeout_s: float | None = None) -> tuple[list[str], list[dict[str, Any]] | None]:
    """Send failed, killed or cancelled jobs back to the queue; finished jobs are never recomputed."""
    q, record = queue_for(run_dir)
    with q:
        rerun: list[str] = []
        for info in _flow_jobs(q, record["flow_uuid"]):
            state = info.state.value
            if state in RETRYABLE_STATES or state in STOPPED_STATES:
                rerun += q.jc.rerun_job(db_id=info.db_id, force=state in STOPPED_STATES, wait=30)
        q.save()
        wait = (q.backend == "mongomock") if wait is None else wait
        rows = drive(q, record, progress, timeout_s) if wait else None
    return sorted(set(rerun), key=lambda x: int(x) if str(x).isdigit() else 0), rows


def cancel(run_dir: Path) -> list[str]:
    """Cancel the Flow's queued and running jobs (scancel/qdel); they show as USER_STOPPED."""
    from jobflow_remote.jobs.state import RUNNING_STATES, JobState

    q, record = queue_for(run_dir)
    with q:
        states = [JobState.READY] + list(RUNNING_STATES)
        stopped = q.jc.stop_jobs(flow_ids=[record["flow_uuid"]], states=states, raise_on_error=False, wait=30)
        q.save()
        sync_store(q, record)
    return stopped


def run_until_done(run_dir: Path, progress: Callable[[str], None] | None = None,
                   timeout_s: float | None = None) -> list[dict[str, Any]]:
    q, record = queue_for(run_dir)
    with q:
        return drive(q, record, progress, timeout_s)
