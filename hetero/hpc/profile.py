"""HPC profiles (configs/hpc/*.yaml): scheduler, environment, launch lines, per-step resources, stores.

One file describes one cluster. `hetero submit --single-allocation` reads the allocation keys (nodes,
ntasks, walltime, memory); `hetero submit` (one queue job per step, through jobflow-remote) reads the
`steps` rules, `batch`, `store` and `jobflow_remote` sections.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml

from hetero.io.yamlfile import yaml_error_line
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

SCHEDULERS = ("slurm", "pbs", "sge")
STEP_KINDS = ("reference", "relax", "static", "neb", "mlip", "analysis")
_WALLTIME = re.compile(r"^(?:(\d+)-)?(\d+):(\d{1,2}):(\d{1,2})$")


class HpcProfileError(ValueError):
    pass


def configs_dir() -> Path:
    env = os.environ.get("HETERO_CONFIGS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "configs"


def walltime_seconds(text: str) -> int:
    m = _WALLTIME.match(str(text).strip())
    if not m:
        raise ValueError(f"walltime {text!r} is not [D-]HH:MM:SS")
    d, h, mi, s = (int(x or 0) for x in m.groups())
    return ((d * 24 + h) * 60 + mi) * 60 + s


def hms(seconds: int) -> str:
    h, rest = divmod(int(seconds), 3600)
    return f"{h:02d}:{rest // 60:02d}:{rest % 60:02d}"


class StepRule(BaseModel, extra="forbid"):
    """Cores for one kind of step: fixed `cores`, or `cores_per_atom` (DFT), or `cores_per_image` (NEB)."""

    cores: int | None = Field(None, ge=1)
    cores_per_atom: float | None = Field(None, gt=0)
    cores_per_image: int | None = Field(None, ge=1)
    min_cores: int = Field(1, ge=1)
    max_cores: int | None = Field(None, ge=1)
    walltime: str = "01:00:00"
    memory_per_core_MB: int | None = Field(None, ge=1)

    @field_validator("walltime")
    @classmethod
    def _walltime(cls, v: str) -> str:
        walltime_seconds(v)
        return v

    def cores_for(self, n_atoms: int | None = None, n_images: int | None = None) -> int:
        if self.cores_per_image and n_images:
            n = self.cores_per_image * n_images
        elif self.cores_per_atom and n_atoms:
            n = math.ceil(self.cores_per_atom * n_atoms)
        else:
            n = self.cores or self.min_cores
        n = max(n, self.min_cores)
        return min(n, self.max_cores) if self.max_cores else n


DEFAULT_STEPS = {
    "reference": {"cores": 4, "walltime": "01:00:00"},
    "relax": {"cores_per_atom": 1, "min_cores": 8, "max_cores": 256, "walltime": "12:00:00"},
    "static": {"cores_per_atom": 1, "min_cores": 8, "max_cores": 256, "walltime": "06:00:00"},
    "neb": {"cores_per_image": 16, "walltime": "24:00:00"},
    "mlip": {"cores": 1, "walltime": "02:00:00"},
    "analysis": {"cores": 1, "walltime": "00:30:00"},
}


class BatchSettings(BaseModel, extra="forbid"):
    """Pack many small jobs into one allocation (jobflow-remote's batch worker)."""

    steps: list[str] = Field(default_factory=lambda: ["analysis"])
    cores: int = Field(1, ge=1)
    walltime: str = "02:00:00"
    max_jobs: int | None = Field(50, ge=1)  # jobs run by one batch allocation before it ends
    max_wait_s: int = Field(60, ge=1)  # an idle batch allocation ends after this
    parallel_jobs: int = Field(1, ge=1)
    max_allocations: int | None = Field(1, ge=1)  # batch allocations in the queue at once

    @field_validator("steps")
    @classmethod
    def _steps(cls, v: list[str]) -> list[str]:
        bad = [s for s in v if s not in STEP_KINDS]
        if bad:
            raise ValueError(f"unknown step kinds {bad}; valid: {', '.join(STEP_KINDS)}")
        return v


class StoreSettings(BaseModel, extra="forbid"):
    """Where jobflow-remote keeps its queue and the jobs' outputs."""

    # mongodb: a real server (production); mongomock: in-process, saved to a file (tests/laptops only)
    backend: Literal["mongodb", "mongomock"] = "mongodb"
    uri_env: str = "HETERO_MONGO_URI"  # the environment variable holding the connection string
    database: str = "hetero"


class RunnerSettings(BaseModel, extra="forbid"):
    delay_checkout: float = 30
    delay_check_run_status: float = 30
    delay_advance_status: float = 30
    delay_update_batch: float = 60
    max_step_attempts: int = 3  # a failed upload/submit/download is retried this often, then REMOTE_ERROR
    delta_retry: list[float] = Field(default_factory=lambda: [30, 300, 1200])  # seconds before each retry
    poll_s: float = 1.0  # `hetero submit --wait` / `resume --wait`: pause between two rounds


class JobflowRemoteSettings(BaseModel, extra="forbid"):
    project: str | None = None  # default: hetero-<profile name>
    # jobflow-remote's per-job folders (inputs, queue.out/err); default ~/hetero-jobs, or for the
    # mongomock backend <runs>/.hetero-queue/<project>/jobs
    work_dir: str | None = None
    execution_cmd: str | None = None  # default: this python running jobflow-remote's run_remote_job({})
    runner: RunnerSettings = Field(default_factory=RunnerSettings)
    scheduler_username: str | None = None  # SGE lists jobs by user (qstat -u)


class HpcProfile(BaseModel, extra="forbid"):
    name: str = "hpc"
    scheduler: Literal["slurm", "pbs", "sge"]
    job_name: str = "hetero"
    partition: str | None = None  # Slurm
    queue: str | None = None  # PBS / SGE
    account: str | None = None
    qos: str | None = None
    sge_pe: str = "mpi"  # SGE parallel environment for MPI jobs (#$ -pe <sge_pe> <cores>)
    cores_per_node: int = Field(32, ge=1)
    modules: list[str] = Field(default_factory=list)
    pre_run: list[str] = Field(default_factory=list)
    export: dict[str, str | int | float] = Field(default_factory=dict)
    # launch lines for the DFT codes inside a job; {cores} = the job's MPI ranks
    launch: dict[str, str] = Field(default_factory=lambda: {"gpaw": "mpiexec -n {cores} gpaw python",
                                                            "vasp": "mpirun -n {cores} vasp_std"})
    steps: dict[str, StepRule] = Field(default_factory=dict)
    batch: BatchSettings | None = None
    store: StoreSettings = Field(default_factory=StoreSettings)
    jobflow_remote: JobflowRemoteSettings = Field(default_factory=JobflowRemoteSettings)
    # --single-allocation: one batch script running `hetero run` for the whole campaign
    nodes: int = Field(1, ge=1)
    ntasks: int = Field(32, ge=1)
    walltime: str = "24:00:00"
    memory: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        if isinstance(data, dict) and "pre_commands" in data:  # older profiles
            data = dict(data)
            data["pre_run"] = list(data.pop("pre_commands") or []) + list(data.get("pre_run") or [])
        return data

    @field_validator("steps")
    @classmethod
    def _steps(cls, v: dict[str, StepRule]) -> dict[str, StepRule]:
        bad = [k for k in v if k not in STEP_KINDS]
        if bad:
            raise ValueError(f"unknown step kinds {bad}; valid: {', '.join(STEP_KINDS)}")
        return v

    @field_validator("walltime")
    @classmethod
    def _walltime(cls, v: str) -> str:
        walltime_seconds(v)
        return v

    def rule(self, kind: str) -> StepRule:
        return self.steps.get(kind) or StepRule(**DEFAULT_STEPS[kind])

    @property
    def project_name(self) -> str:
        return self.jobflow_remote.project or f"hetero-{self.name}"

    def work_dir(self, state_dir: Path | None = None) -> Path:
        wd = self.jobflow_remote.work_dir
        if wd is None:
            return (state_dir / "jobs").resolve() if state_dir and self.store.backend == "mongomock" \
                else Path("~/hetero-jobs").expanduser()
        return Path(os.path.expandvars(os.path.expanduser(wd))).resolve()


def profile_path(path_or_name: str | Path) -> Path:
    path = Path(path_or_name)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise HpcProfileError(f"HPC profile file {path} not found")
        return path
    path = configs_dir() / "hpc" / f"{path_or_name}.yaml"
    if not path.exists():
        choices = ", ".join(sorted(p.stem for p in (configs_dir() / "hpc").glob("*.yaml")))
        raise HpcProfileError(f"HPC profile '{path_or_name}' not found; give a YAML file or one of: {choices}")
    return path


def load_profile(path_or_name: str | Path) -> dict[str, Any]:
    """The profile as a plain dict (validated); `HpcProfile.model_validate` gives the typed form."""
    return parse_profile(path_or_name).model_dump()


def parse_profile(path_or_name: str | Path | dict) -> HpcProfile:
    if isinstance(path_or_name, dict):
        data, where = dict(path_or_name), "profile"
    else:
        path = profile_path(path_or_name)
        where = str(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise HpcProfileError(f"{path}: not valid YAML ({yaml_error_line(exc)}); "
                                  "fix the syntax there") from None
        data.setdefault("name", path.stem)
    if data.get("scheduler") not in SCHEDULERS:
        raise HpcProfileError(f"{where}: 'scheduler' must be one of {', '.join(SCHEDULERS)}, got "
                              f"{data.get('scheduler')!r}; add e.g. 'scheduler: slurm'")
    try:
        return HpcProfile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(x) for x in first["loc"])
        raise HpcProfileError(f"{where}: '{key}': {first['msg']}") from exc
