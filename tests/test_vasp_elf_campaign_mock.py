"""A campaign with `elf` in its steps on MOCK VASP (tests/mock_vasp.py; its ELFCAR is a stated bounded model of
its valence density, not an ELF): workflows/na_vn001.yaml cut to one site and the isolated-atom reference, with
`engine: vasp` and steps relax, static, bader, workfunction, elf, adsorption, run as a user runs it.

Asserted: the dry run lists LELF on the statics that wait for their relaxations; VASP gets LELF with NPAR 1 and
KPAR 1 on the slab statics only (the mock checks both); every slab static's document carries the ELF file the
GPAW ELF step writes (elf.npz: `elf`, `cell`), read from the ELFCAR with pymatgen; the ELF figure is drawn from
it. Nothing asserts a value: the mock's numbers are not physics.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

from hetero.campaigns import load_campaign, run_folder
from hetero.table import iter_documents
from _refdata import mock_vasp_env, reference_vasp_dir, run_hetero

ROOT = Path(__file__).resolve().parents[1]
STEPS = ["relax", "static", "bader", "workfunction", "elf", "adsorption"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    ref = reference_vasp_dir()
    if ref is None:
        pytest.fail("reference VASP outputs not found: set HETERO_SHARED=/path/to/shared or clone beside ../shared")
    tmp = tmp_path_factory.mktemp("vasp_elf")
    data = yaml.safe_load((ROOT / "workflows" / "na_vn001.yaml").read_text())
    data.update(engine="vasp", steps=STEPS, sites=["hollow"], references=["atom"])
    camp_file = tmp / "na_vn001_elf.yaml"
    camp_file.write_text(yaml.safe_dump(data))
    # the profile's tags: the ELF statics must replace them
    env = mock_vasp_env(ref, tmp / "calls.jsonl", HETERO_VASP_PARALLEL="NCORE=2 KPAR=2")
    dry = run_hetero(["run", str(camp_file), "--runs-dir", str(tmp / "dry"), "--dry-run"], env)
    res = run_hetero(["run", str(camp_file), "--runs-dir", str(tmp / "runs")], env)
    root = run_folder(load_campaign(camp_file), "fast", tmp / "runs")
    return {"dry": dry, "res": res, "root": root, "log": tmp / "calls.jsonl", "tmp": tmp}


def test_dry_run_lists_lelf_on_the_statics_that_wait(run):
    dry = run["dry"]
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    waits = [ln for ln in dry.stdout.splitlines() if ln.strip().startswith("waits")]
    statics = [ln for ln in waits if ln.split()[1] == "static"]  # the job name follows 'waits'
    assert len(statics) == 2 and all("LELF = True (NPAR 1, KPAR 1)" in ln for ln in statics), "\n".join(waits)
    assert not any("LELF" in ln for ln in dry.stdout.splitlines() if "Na atom" in ln)  # the reference asks no ELF
    assert "the check ENCUT >= 1.3 x the largest ENMAX" in dry.stdout and "waits for POTCARs" in dry.stdout


def test_campaign_with_elf_runs_on_mock_vasp(run):
    res = run["res"]
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    calls = [json.loads(line) for line in run["log"].read_text().splitlines()]
    assert Counter(c["kind"] for c in calls) == {"relax-slab": 2, "static-slab": 2, "static-atom": 1}
    assert all(c["checked"] and not c["problems"] for c in calls)
    for c in calls:
        assert ("NPAR = 1, KPAR = 1 (LELF)" in c["checked"]) == (c["kind"] == "static-slab")


def test_elf_documents_and_figure(run, tmp_path):
    from pymatgen.io.vasp import Elfcar, Incar

    from hetero.plots import make_figures

    assert run["res"].returncode == 0
    statics = []
    for d in iter_documents(run["root"] / "store.json"):
        out = d.get("output") if "output" in d else d
        if isinstance(out, dict) and out.get("doc_type") == "calc" and out.get("step") == "static":
            statics.append(out)
    slab = [d for d in statics if d["system"] != "Na-atom"]
    assert {d["label"] for d in slab} == {"host", "Na@hollow"}
    for d in slab:
        folder = Path(d["provenance"]["run_dir"])
        inc = Incar.from_file(folder / "INCAR")
        assert inc["LELF"] is True and inc["NPAR"] == 1 and inc["KPAR"] == 1 and "NCORE" not in inc
        elf = np.load(d["files"]["elf"])
        grid = Elfcar.from_file(str(folder / "ELFCAR")).data["total"]  # spin off (VN): one channel
        assert np.array_equal(elf["elf"], grid) and elf["elf"].shape == grid.shape
        assert np.allclose(elf["cell"], d["structure"]["lattice"]["matrix"])
    (atom,) = [d for d in statics if d["system"] == "Na-atom"]
    assert "elf" not in atom["files"]
    fs = make_figures(run["root"], out=tmp_path / "figs", kinds={"elf"})
    assert len(fs.figures) == 2 and all(name.startswith("elf") for name in fs.figures), (fs.figures, fs.skipped)
