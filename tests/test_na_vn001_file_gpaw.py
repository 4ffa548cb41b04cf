"""workflows/na_vn001.yaml, unchanged, through the whole chain on GPAW at the demo's coarse settings
(`hetero run workflows/na_vn001.yaml --preset demo --report`): the file's own overrides (3x3x1 k-points,
spin off, one-image CI-NEB of 20 steps) reach GPAW, and the run ends in a table with E_ads on all four
sites against both references, the density-based columns and a NEB barrier. The same file runs on
mock VASP (test_vasp_campaign_mock.py) and on the MLIP (test_engine_contract.py) with only `engine:`
changed. 17 atoms: 45 min on 2 cores shared with an MLIP run (HETERO_NA_VN001_RUNS keeps the run
folder, so a second pytest run only checks).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("gpaw")

pytestmark = pytest.mark.dft
ROOT = Path(__file__).resolve().parents[1]
CAMPAIGN = ROOT / "workflows" / "na_vn001.yaml"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    runs = Path(os.environ.get("HETERO_NA_VN001_RUNS") or tmp_path_factory.mktemp("na_vn001") / "runs")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env.setdefault("HETERO_CORES", "2")
    p = subprocess.run([sys.executable, "-m", "hetero.cli", "run", str(CAMPAIGN), "--preset", "demo", "--report",
                        "--runs-dir", str(runs)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=5400)
    return {"rc": p.returncode, "out": p.stdout + p.stderr, "root": runs / "na_vn001-demo"}


def test_the_unchanged_file_runs_the_whole_chain(run):
    from hetero.table import build_table

    assert run["rc"] == 0, run["out"][-3000:]
    info = json.loads((run["root"] / "campaign.json").read_text())
    assert info["engine_used"] == "gpaw" and info["preset_used"] == "demo"
    df = build_table(run["root"])
    sites = df[df["row_kind"] == "site"]
    assert set(sites["site"]) == {"top-V", "top-N", "bridge", "hollow"}
    assert set(sites["e_ads_reference"]) == {"bulk metal", "isolated atom"} and sites["e_ads_eV"].notna().all()
    atom = sites[sites["e_ads_reference"] == "isolated atom"].set_index("site")["e_ads_eV"]
    bulk = sites[sites["e_ads_reference"] == "bulk metal"].set_index("site")["e_ads_eV"]
    assert (atom < 0).all()  # a free Na atom binds to VN(001) on every site
    # same site, same slab: the two references differ by Na's cohesive energy, ~1 eV at any sane setting
    assert ((bulk - atom).between(0.7, 1.4)).all()
    # the density-based steps ran on every site (absent only on engines without a density)
    for col in ("ion_bader_charge_e", "ion_cdd_transferred_e", "site_dos_at_fermi"):
        assert sites[col].notna().all(), col
    assert (sites["ion_bader_charge_e"] > 0.3).all()  # Na gives up electrons
    paths = df[df["row_kind"] == "path"]
    assert len(paths) == 1 and paths["barrier_eV"].iloc[0] >= 0


def test_the_files_overrides_reached_gpaw(run):
    """3x3x1 k-points and spin off come from the campaign file (source 'user'), the cutoff from the preset."""
    from hetero.io.store import load_run

    assert run["rc"] == 0, run["out"][-3000:]
    docs = load_run(run["root"])
    calcs = [d for d in docs.of("calc") if d["system"].startswith("VN")]
    assert calcs
    for d in calcs:
        s = d["provenance"]["neutral_settings"]
        src = d["provenance"]["settings_sources"]
        assert s["kpoints_mesh"] == [3, 3, 1] and src["kpoints_mesh"] == "user"
        assert s["spin"] == "off" and src["spin"] == "user"
        assert s["kpoints"] == [3, 3, 1] and d["provenance"]["settings"]["kpts"] == [3, 3, 1]  # what GPAW got
        assert s["cutoff_eV"] == 250 and src["cutoff_eV"] == "preset"
    neb = docs.of("neb")[0]
    neutral = neb["provenance"]["neutral_settings"]
    assert neutral["neb_images"] == 1 and neutral["neb_steps"] == 20 and len(neb["energies_eV"]) == 3
