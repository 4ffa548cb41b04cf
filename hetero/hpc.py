"""Batch scripts for running a campaign inside one Slurm or PBS allocation.

The whole campaign runs as `hetero run` inside the allocation, each GPAW step using the allocation's
MPI ranks (HETERO_CORES); re-submitting the same script resumes (finished steps are reused).
For one queue job per DFT step, jobflow-remote can run the same jobflow Flow (see configs/hpc/).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

SCHEDULERS = ("slurm", "pbs")


class HpcProfileError(ValueError):
    pass


def load_profile(path_or_name: str | Path) -> dict[str, Any]:
    from hetero.engines.gpaw import configs_dir

    path = Path(path_or_name)
    if not path.exists():
        path = configs_dir() / "hpc" / f"{path_or_name}.yaml"
    if not path.exists():
        choices = ", ".join(p.stem for p in (configs_dir() / "hpc").glob("*.yaml"))
        raise HpcProfileError(f"HPC profile '{path_or_name}' not found; give a YAML file or one of: {choices}")
    prof = yaml.safe_load(path.read_text()) or {}
    if prof.get("scheduler") not in SCHEDULERS:
        raise HpcProfileError(f"{path}: 'scheduler' must be one of {SCHEDULERS}, got {prof.get('scheduler')!r}")
    for key in ("ntasks", "nodes"):
        if not isinstance(prof.get(key, 1), int) or prof.get(key, 1) < 1:
            raise HpcProfileError(f"{path}: '{key}' must be a positive integer")
    return prof


def render_script(campaign: str | Path, profile: dict[str, Any], preset: str, runs_dir: str | Path) -> str:
    name = profile.get("job_name", "hetero")
    ntasks, nodes, wall = profile.get("ntasks", 1), profile.get("nodes", 1), profile.get("walltime", "24:00:00")
    lines = ["#!/bin/bash"]
    if profile["scheduler"] == "slurm":
        lines += [f"#SBATCH --job-name={name}", f"#SBATCH --nodes={nodes}", f"#SBATCH --ntasks={ntasks}",
                  f"#SBATCH --time={wall}", f"#SBATCH --output={name}-%j.out"]
        if profile.get("partition"):
            lines.append(f"#SBATCH --partition={profile['partition']}")
        if profile.get("account"):
            lines.append(f"#SBATCH --account={profile['account']}")
        if profile.get("memory"):
            lines.append(f"#SBATCH --mem={profile['memory']}")
        cores = "${SLURM_NTASKS}"
    else:
        per_node = max(1, ntasks // nodes)
        res = f"select={nodes}:ncpus={per_node}:mpiprocs={per_node}"
        if profile.get("memory"):
            res += f":mem={profile['memory']}"
        lines += [f"#PBS -N {name}", f"#PBS -l {res}", f"#PBS -l walltime={wall}", "#PBS -j oe"]
        if profile.get("queue"):
            lines.append(f"#PBS -q {profile['queue']}")
        if profile.get("account"):
            lines.append(f"#PBS -A {profile['account']}")
        lines.append('cd "$PBS_O_WORKDIR"')
        cores = "$(wc -l < \"$PBS_NODEFILE\")"
    lines += ["set -euo pipefail", *profile.get("pre_commands", []), f"export HETERO_CORES={cores}",
              "export OMP_NUM_THREADS=1",
              "hetero run " + " ".join(shlex.quote(str(x)) for x in (campaign, "--preset", preset, "--runs-dir", runs_dir))]
    return "\n".join(lines) + "\n"


def write_and_submit(
    campaign: str | Path, profile_name: str | Path, preset: str, runs_dir: str | Path, submit: bool = False
) -> tuple[Path, str | None]:
    from hetero.campaigns import load_campaign, run_folder

    camp = load_campaign(campaign)  # validates the campaign before anything is queued
    prof = load_profile(profile_name)
    folder = run_folder(camp, preset, runs_dir)
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / ("submit.sbatch" if prof["scheduler"] == "slurm" else "submit.pbs")
    script.write_text(render_script(Path(campaign).resolve(), prof, preset, Path(runs_dir).resolve()))
    if not submit:
        return script, None
    cmd = "sbatch" if prof["scheduler"] == "slurm" else "qsub"
    if shutil.which(cmd) is None:
        raise HpcProfileError(f"'{cmd}' not found on this machine; the script is at {script}")
    out = subprocess.run([cmd, str(script)], capture_output=True, text=True, cwd=folder)
    if out.returncode != 0:
        raise HpcProfileError(f"{cmd} refused {script}: {out.stderr.strip()}")
    return script, out.stdout.strip()
