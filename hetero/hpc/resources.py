"""Per-step queue resources: which kind of step a job is, how many cores it gets, and the scheduler
directives and environment that jobflow-remote writes into its submission script.

Kinds: `reference` (bulk metal, isolated atom), `relax` and `static` (cores scale with the atom count),
`neb` (cores = images x cores_per_image), `mlip` (CHGNet/SevenNet stages, one core), `analysis`
(DOS, Bader, E_ads, ...: pure Python on stored results).
"""

from __future__ import annotations

import inspect
import math
import shlex
from dataclasses import dataclass
from typing import Any

from jobflow import Flow, Job, OutputReference

from hetero.hpc.profile import HpcProfile, hms, walltime_seconds

MAIN_WORKER = "hetero"
BATCH_WORKER = "hetero-batch"


@dataclass
class StepPlan:
    kind: str
    cores: int
    nodes: int
    walltime: str
    n_atoms: int | None = None
    n_images: int | None = None
    memory_per_core_MB: int | None = None
    worker: str = MAIN_WORKER

    @property
    def per_node(self) -> int:
        return math.ceil(self.cores / self.nodes)


def engine_name(job: Job) -> str | None:
    maker = getattr(job, "maker", None)
    eng = getattr(maker, "engine", None) if maker is not None else None
    if eng is None:
        return None
    name = eng.get("name") if isinstance(eng, dict) else getattr(eng, "name", None)
    return str(name) if name else type(eng).__name__.lower()


def is_mlip(name: str | None) -> bool:
    return bool(name) and any(k in name.lower() for k in ("mlip", "chgnet", "sevennet", "mace"))


def _bound_args(job: Job) -> dict[str, Any]:
    try:
        return dict(inspect.signature(job.function).bind_partial(*job.function_args, **job.function_kwargs).arguments)
    except (TypeError, ValueError):
        return {f"arg{i}": a for i, a in enumerate(job.function_args)} | dict(job.function_kwargs)


def step_kind(job: Job) -> str:
    eng = engine_name(job)
    fname = getattr(getattr(job, "function", None), "__name__", "")
    if eng is None:  # plain @job functions: analysis, or an MLIP screening stage (mlip_screen_job)
        return "mlip" if "mlip" in fname.lower() else "analysis"
    if is_mlip(eng):
        return "mlip"
    maker = type(job.maker).__name__.lower()
    if "neb" in maker:
        return "neb"
    if _bound_args(job).get("label") == "reference":
        return "reference"
    return "relax" if "relax" in maker else "static"


class AtomCounter:
    """Atoms a job works on: from its structure argument, or from the job whose output it takes."""

    def __init__(self, flow: Flow):
        self.jobs = {j.uuid: j for j, _ in flow.iterflow()}
        self.memo: dict[str, int | None] = {}

    def __call__(self, job: Job) -> int | None:
        if job.uuid not in self.memo:
            self.memo[job.uuid] = None  # guards cycles
            counts = [self._count(v) for v in _bound_args(job).values()]
            counts = [c for c in counts if c]
            self.memo[job.uuid] = max(counts) if counts else None
        return self.memo[job.uuid]

    def _count(self, value: Any) -> int | None:
        from pymatgen.core import Structure

        if isinstance(value, Structure):
            return len(value)
        if isinstance(value, OutputReference):
            parent = self.jobs.get(value.uuid)
            return self(parent) if parent is not None else None
        if isinstance(value, dict):
            if "lattice" in value and "sites" in value:
                return len(value["sites"])
            counts = [self._count(v) for k, v in value.items() if k in ("structure", "start", "end")]
            counts = [c for c in counts if c]
            return max(counts) if counts else None
        if isinstance(value, (list, tuple)):
            counts = [c for c in (self._count(v) for v in value) if c]
            return max(counts) if counts else None
        return None


def plan_step(profile: HpcProfile, kind: str, n_atoms: int | None = None, n_images: int | None = None) -> StepPlan:
    rule = profile.rule(kind)
    cores = rule.cores_for(n_atoms=n_atoms, n_images=n_images if kind == "neb" else None)
    nodes = max(1, math.ceil(cores / profile.cores_per_node))
    cores = nodes * math.ceil(cores / nodes)  # MPI jobs spanning nodes take the same ranks on each
    worker = BATCH_WORKER if profile.batch and kind in profile.batch.steps else MAIN_WORKER
    return StepPlan(kind=kind, cores=cores, nodes=nodes, walltime=rule.walltime, n_atoms=n_atoms,
                    n_images=n_images if kind == "neb" else None, memory_per_core_MB=rule.memory_per_core_MB,
                    worker=worker)


def scheduler_resources(profile: HpcProfile, plan: StepPlan) -> dict[str, Any]:
    """Template keys of qtoolkit's Slurm/PBS/SGE header for this step."""
    wall = hms(walltime_seconds(plan.walltime))
    mb = plan.memory_per_core_MB
    if profile.scheduler == "slurm":
        res: dict[str, Any] = {"nodes": plan.nodes, "ntasks": plan.cores, "cpus_per_task": 1, "time": wall}
        if plan.nodes > 1:
            res["ntasks_per_node"] = plan.per_node
        for key, value in (("partition", profile.partition), ("account", profile.account), ("qos", profile.qos)):
            if value:
                res[key] = value
        if mb:
            res["mem_per_cpu"] = f"{mb}M"
        if profile.store.backend == "mongodb":  # sbatch copies the runner's environment: not the DB password
            res["qverbatim"] = f"#SBATCH --export=ALL,{profile.store.uri_env}="
    elif profile.scheduler == "pbs":
        select = f"select={plan.nodes}:ncpus={plan.per_node}:mpiprocs={plan.per_node}"
        if mb:
            select += f":mem={plan.per_node * mb}mb"
        res = {"select": select, "walltime": wall}
        if profile.queue:
            res["queue"] = profile.queue
        if profile.account:
            res["account"] = profile.account
    else:  # SGE: MPI slots from a parallel environment, memory per slot as h_vmem
        res = {"model": f"{profile.sge_pe} {plan.cores}", "walltime": wall}
        if mb:
            res["select"] = f"h_vmem={mb}M"
        if profile.queue:
            res["queue"] = profile.queue
        if profile.account:
            res["device"] = profile.account  # qtoolkit's SGE template writes it as '#$ -P'
    return res


def exec_config(profile: HpcProfile, plan: StepPlan) -> dict[str, Any]:
    """Environment of the step: modules, pre-run lines, MPI ranks and the DFT codes' launch lines."""
    # HETERO_WALLTIME_S: custodian's WalltimeHandler stops VASP cleanly before the queue kills the job
    export: dict[str, Any] = {"HETERO_CORES": plan.cores, "OMP_NUM_THREADS": 1,
                              "HETERO_WALLTIME_S": walltime_seconds(plan.walltime)}
    launch = {k: v.replace("{cores}", str(plan.cores)) for k, v in profile.launch.items()}
    if "gpaw" in launch:
        export["HETERO_GPAW_LAUNCH"] = launch["gpaw"]
    if "vasp" in launch:
        export["HETERO_VASP_CMD"] = launch["vasp"]
    export.update(profile.export)
    # modules go first (jobflow-remote would load them after pre_run, i.e. after a venv activation)
    pre = [f"module load {m}" for m in profile.modules] + list(profile.pre_run)
    # jobflow-remote writes `export K=V` unquoted: quote here so launch lines with spaces survive
    return {"pre_run": "\n".join(pre) or None, "export": {k: shlex.quote(str(v)) for k, v in export.items()}}


def manager_config(profile: HpcProfile, plan: StepPlan) -> dict[str, Any]:
    return {"resources": scheduler_resources(profile, plan), "exec_config": exec_config(profile, plan),
            "worker": plan.worker}


def submission_script(profile: HpcProfile, plan: StepPlan, job_name: str, job_dir, execution_cmd: str) -> str:
    """The script jobflow-remote's runner writes and submits for one step (same qtoolkit calls)."""
    from pathlib import Path

    from jobflow_remote.remote.host import LocalHost
    from jobflow_remote.remote.queue import ERR_FNAME, OUT_FNAME, QueueManager, set_name_out
    from qtoolkit.io import scheduler_mapping

    job_dir = Path(job_dir)
    resources = scheduler_resources(profile, plan)
    set_name_out(resources, job_name, out_fpath=job_dir / OUT_FNAME, err_fpath=job_dir / ERR_FNAME)
    env = exec_config(profile, plan)
    qm = QueueManager(scheduler_mapping[profile.scheduler](), LocalHost())
    return qm.get_submission_script(commands=[execution_cmd.format(job_dir)], options=resources, work_dir=job_dir,
                                    pre_run=env["pre_run"], export=env["export"])


def apply_resources(flow: Flow, profile: HpcProfile, n_images: int = 3, dynamic_atoms: int | None = None
                    ) -> dict[str, StepPlan]:
    """Set every job's queue resources (jobflow's manager_config) from the profile; returns uuid -> plan.

    Jobs made while the flow runs (the CI-NEB, the coverage series' and the funnel's relax/static/CDD)
    get theirs from name rules carried by their parents: NEB by `n_images`, the others by `dynamic_atoms`.
    """
    counter = AtomCounter(flow)
    jobs = [j for j, _ in flow.iterflow()]
    engines = [engine_name(j) for j in jobs if engine_name(j)]
    dft_or_mlip = "mlip" if engines and is_mlip(engines[0]) else None

    # rules for runtime jobs first: they also touch matching existing jobs, which are set precisely below
    rules = {"CI-NEB": plan_step(profile, dft_or_mlip or "neb", n_images=n_images),
             "relax ": plan_step(profile, dft_or_mlip or "relax", n_atoms=dynamic_atoms),
             "static ": plan_step(profile, dft_or_mlip or "static", n_atoms=dynamic_atoms),
             "CDD ": plan_step(profile, dft_or_mlip or "static", n_atoms=dynamic_atoms)}
    for pattern, plan in rules.items():
        flow.update_config({"manager_config": manager_config(profile, plan)}, name_filter=pattern, dynamic=True)

    plans: dict[str, StepPlan] = {}
    for j in jobs:
        kind = step_kind(j)
        plan = plan_step(profile, kind, n_atoms=counter(j), n_images=n_images)
        j.update_config({"manager_config": manager_config(profile, plan)}, attributes="manager_config", dynamic=False)
        j.config.pass_manager_config = False  # children take the name rules, not this job's resources
        plans[j.uuid] = plan
    for pattern, plan in rules.items():
        plans[RULE_PREFIX + pattern] = plan
    return plans


RULE_PREFIX = "runtime:"  # plans keyed by a name pattern: jobs the Flow makes while it runs


def plan_for(plans: dict, uuid: str, name: str):
    """The plan of a job: its own, or the runtime rule its name matches."""
    if uuid in plans:
        return plans[uuid]
    for key, plan in plans.items():
        if key.startswith(RULE_PREFIX) and key[len(RULE_PREFIX):] in (name or ""):
            return plan
    return None
