"""Batch scripts for Slurm and PBS: directives, resume command, and clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hetero.hpc import HpcProfileError, load_profile, render_script, write_and_submit

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGN = ROOT / "workflows" / "na_vn001.yaml"


def test_slurm_script_requests_the_profile_and_runs_the_campaign(tmp_path):
    prof = load_profile("slurm")
    text = render_script(CAMPAIGN, prof, "standard", tmp_path)
    assert text.startswith("#!/bin/bash\n")
    assert f"#SBATCH --ntasks={prof['ntasks']}" in text and "#SBATCH --time=24:00:00" in text
    assert "export HETERO_CORES=${SLURM_NTASKS}" in text
    assert text.rstrip().endswith(f"hetero run {CAMPAIGN} --preset standard --runs-dir {tmp_path}")


def test_pbs_script_uses_select_and_nodefile(tmp_path):
    prof = load_profile("pbs")
    prof.update(nodes=2, ntasks=64, memory="100gb")
    text = render_script(CAMPAIGN, prof, "fast", tmp_path)
    assert "#PBS -l select=2:ncpus=32:mpiprocs=32:mem=100gb" in text
    assert "#PBS -q workq" in text and 'cd "$PBS_O_WORKDIR"' in text
    assert 'HETERO_CORES=$(wc -l < "$PBS_NODEFILE")' in text


def test_write_puts_the_script_in_the_run_folder(tmp_path):
    script, job = write_and_submit(CAMPAIGN, "pbs", "fast", tmp_path, submit=False)
    assert job is None and script == tmp_path / "na_vn001-fast" / "submit.pbs"
    assert "hetero run" in script.read_text()


def test_bad_profile_and_missing_scheduler(tmp_path):
    with pytest.raises(HpcProfileError, match="not found"):
        load_profile("no-such-cluster")
    bad = tmp_path / "bad.yaml"
    bad.write_text("scheduler: lsf\n")
    with pytest.raises(HpcProfileError, match="scheduler"):
        load_profile(bad)
    if shutil.which("qsub") is None:
        with pytest.raises(HpcProfileError, match="qsub"):
            write_and_submit(CAMPAIGN, "pbs", "fast", tmp_path, submit=True)
