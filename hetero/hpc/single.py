"""`hetero submit --single-allocation`: one Slurm/PBS/SGE batch script running the whole campaign.

The whole campaign runs as `hetero run` inside the allocation, each DFT step using the allocation's
MPI ranks (HETERO_CORES); re-submitting the same script resumes (finished steps are reused). For
clusters without a database; with one, `hetero submit` sends one queue job per step (hetero.hpc.remote).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

from hetero.hpc.profile import HpcProfileError, load_profile


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
        if profile.get("qos"):
            lines.append(f"#SBATCH --qos={profile['qos']}")
        if profile.get("memory"):
            lines.append(f"#SBATCH --mem={profile['memory']}")
        cores = "${SLURM_NTASKS}"
    elif profile["scheduler"] == "pbs":
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
    else:  # SGE: slots come from a parallel environment
        lines += [f"#$ -N {name}", "#$ -cwd", "#$ -j y", f"#$ -pe {profile.get('sge_pe', 'mpi')} {ntasks}",
                  f"#$ -l h_rt={wall}"]
        if profile.get("queue"):
            lines.append(f"#$ -q {profile['queue']}")
        if profile.get("account"):
            lines.append(f"#$ -P {profile['account']}")
        if profile.get("memory"):
            lines.append(f"#$ -l h_vmem={profile['memory']}")
        cores = "${NSLOTS}"
    lines += ["set -euo pipefail", *(f"module load {m}" for m in profile.get("modules", [])),
              *profile.get("pre_run", []), *profile.get("pre_commands", []), f"export HETERO_CORES={cores}",
              "export OMP_NUM_THREADS=1",
              "hetero run " + " ".join(shlex.quote(str(x)) for x in (campaign, "--preset", preset, "--runs-dir", runs_dir))]
    return "\n".join(lines) + "\n"


SCRIPT_NAME = {"slurm": "submit.sbatch", "pbs": "submit.pbs", "sge": "submit.sge"}
SUBMIT_CMD = {"slurm": "sbatch", "pbs": "qsub", "sge": "qsub"}


def write_and_submit(
    campaign: str | Path, profile_name: str | Path, preset: str, runs_dir: str | Path, submit: bool = False
) -> tuple[Path, str | None]:
    from hetero.campaigns import load_campaign, run_folder

    camp = load_campaign(campaign)  # validates the campaign before anything is queued
    prof = load_profile(profile_name)
    folder = run_folder(camp, preset, runs_dir)
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / SCRIPT_NAME[prof["scheduler"]]
    script.write_text(render_script(Path(campaign).resolve(), prof, preset, Path(runs_dir).resolve()))
    if not submit:
        return script, None
    cmd = SUBMIT_CMD[prof["scheduler"]]
    if shutil.which(cmd) is None:
        raise HpcProfileError(f"'{cmd}' not found on this machine; the script is at {script}")
    out = subprocess.run([cmd, str(script)], capture_output=True, text=True, cwd=folder)
    if out.returncode != 0:
        raise HpcProfileError(f"{cmd} refused {script}: {out.stderr.strip()}")
    return script, out.stdout.strip()
