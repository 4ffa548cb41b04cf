"""The whole chain with real GPAW on a tiny model: Na on an 8-atom VN(001) slab (the README demo's campaign,
workflows/demo.yaml: demo preset, coarse settings).

The README command's run (tests/conftest.py `demo_run`, shared with tests/test_demo.py) feeds every assertion;
a second run checks that finished work is skipped. HETERO_DEMO_RUNS keeps (and reuses) the run between
pytest sessions.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gpaw")

from hetero.campaigns import load_campaign, run_campaign, run_folder  # noqa: E402
from hetero.table import iter_documents  # noqa: E402

pytestmark = pytest.mark.dft
CAMPAIGN = Path(__file__).resolve().parents[1] / "workflows" / "demo.yaml"


@pytest.fixture(scope="session")
def chain_root(demo_run) -> Path:
    assert demo_run["rc"] == 0, demo_run["out"][-3000:]
    return demo_run["root"]


@pytest.fixture(scope="session")
def docs(chain_root) -> dict[str, list[dict]]:
    by_type: dict[str, list[dict]] = {}
    for d in iter_documents(chain_root / "store.json"):
        out = d.get("output") if "output" in d else d
        if isinstance(out, dict) and "doc_type" in out:
            by_type.setdefault(out["doc_type"], []).append(out)
    return by_type


def test_every_step_produced_documents(docs):
    assert len(docs["adsorption"]) == 2
    statics = [d for d in docs["calc"] if d["step"] == "static" and d["system"].startswith("VN")]
    assert statics and all(Path(d["files"]["elf"]).exists() for d in statics)
    assert {d["label"] for d in docs["bader"]} == {"host", "Na@top-V", "Na@hollow"}
    assert len(docs["cdd"]) == 2
    assert len(docs["neb"]) == 1


def test_adsorption_energies_negative_and_finite(docs):
    for d in docs["adsorption"]:
        assert np.isfinite(d["e_ads_bulk_eV"]) and np.isfinite(d["e_ads_atom_eV"])
        assert d["e_ads_atom_eV"] < 0, d["site"]  # Na binds to VN(001)
        # the two references differ by Na's cohesive energy (PBE ~1.1 eV; coarse settings here)
        cohesive = d["mu_atom_eV"] - d["mu_bulk_eV"]
        assert 0.7 < cohesive < 1.5
        assert d["e_ads_bulk_eV"] == pytest.approx(d["e_ads_atom_eV"] + cohesive, abs=1e-9)
        assert 1.5 < d["height_A"] < 4.0  # Na stays adsorbed above the surface
        assert d["lateral_shift_A"] < 0.3  # top-V and hollow keep the ion on site by symmetry


def test_bader_sums_to_valence_and_na_loses_charge(docs):
    for d in docs["bader"]:
        assert abs(d["total_electrons"] - sum(d["valence"])) < 0.05, d["label"]
        if d["label"].startswith("Na@"):
            na = d["fragment_charge"]["ion"]
            # Na donates part of its 3s electron; little at this dense (1 Na per surface V) coverage
            assert 0.05 < na < 1.0
            assert d["fragment_charge"]["host"] == pytest.approx(-na, abs=0.05)


def test_cdd_integrates_to_zero_and_moves_charge_to_the_host(docs):
    for d in docs["cdd"]:
        assert abs(d["integral_e"]) < 1e-3
        # electrons flow from the ion to the host: negative A(host) -> B(ion) transfer
        assert d["transferred_e"] < 0
        assert Path(d["files"]["chgcar"]).stat().st_size > 0
        assert Path(d["files"]["cube"]).stat().st_size > 0


def test_dos_integrates_to_the_electron_count(docs):
    for d in docs["dos"]:
        assert d["is_metal"]  # VN is metallic, with or without Na
        assert d["n_electrons_integrated"] == pytest.approx(d["n_valence"], rel=0.03)


def test_na_lowers_the_work_function_of_its_side(docs):
    by_label = {d["label"]: d for d in docs["work_function"]}
    host = by_label["host"]
    assert 3.0 < host["work_function_top_eV"] < 6.0
    for label in ("Na@top-V", "Na@hollow"):
        wf = by_label[label]
        assert wf["work_function_top_eV"] < wf["work_function_bottom_eV"] - 0.3


def test_neb_barrier_positive_with_endpoints_from_adsorption(docs, demo_run):
    neb = docs["neb"][0]
    e_total = {d["site"]: d["e_total_eV"] for d in docs["adsorption"]}
    start, end = neb["path"].split("->")
    assert neb["endpoint_energies_eV"] == [e_total[start], e_total[end]]
    assert neb["barrier_eV"] > 0
    assert neb["energies_eV"][0] == 0.0
    assert neb["hop_length_A"] > 0.5
    assert len(neb["energies_eV"]) == 4  # two moving images between the endpoints
    cores = demo_run["cores"]
    # images run side by side when the MPI ranks split evenly over them, else one after another
    assert neb["images_in_parallel"] == (cores >= 2 and cores % 2 == 0)


def test_rerun_skips_finished_work(chain_root):
    logs = sorted(chain_root.rglob("worker.log"))
    stamps = {p: p.stat().st_mtime for p in logs}
    camp = load_campaign(CAMPAIGN)
    root2 = run_campaign(CAMPAIGN, runs_dir=chain_root.parent, log=False)
    assert root2 == run_folder(camp, camp.preset, chain_root.parent)
    assert sorted(chain_root.rglob("worker.log")) == logs  # no new GPAW run
    assert all(p.stat().st_mtime == stamps[p] for p in logs)
    summary = json.loads((chain_root / "run_summary.json").read_text())
    assert summary["jobs_finished"] >= summary["jobs_in_flow"]


def test_resume_from_an_export_reruns_no_static(chain_root, docs, tmp_path):
    """A fresh machine resuming from a committed export (no full densities): Bader and CDD come from the analyses
    kept beside each static; no GPAW task runs again. When an analysis is not kept, only its static re-runs."""
    from hetero.export import export_run

    export_run(chain_root, tmp_path / "export")
    assert not list((tmp_path / "export").rglob("density.npz"))
    root = run_campaign(CAMPAIGN, runs_dir=tmp_path / "runs", log=False, reuse_from=[tmp_path / "export"])
    results = list(root.rglob("result.json"))
    assert results and all(p.stat().st_nlink == 2 for p in results)  # every task linked from the export
    assert not list(root.rglob("density.npz"))

    def bader_by_label(run_root):
        found = {}
        for d in iter_documents(run_root / "store.json"):
            out = d.get("output") if "output" in d else d
            if isinstance(out, dict) and out.get("doc_type") == "bader":
                found[out["label"]] = out
        return found

    first = {d["label"]: d for d in docs["bader"]}
    again = bader_by_label(root)
    assert again.keys() == first.keys()
    for label, doc in first.items():
        assert again[label]["net_charge"] == pytest.approx(doc["net_charge"], abs=1e-9)
    site_bader = next(p for p in root.rglob("bader.json") if "Na@top-V/static-" in str(p))
    site_bader.unlink()
    root = run_campaign(CAMPAIGN, runs_dir=tmp_path / "runs", log=False, reuse_from=[tmp_path / "export"])
    rerun = [p for p in root.rglob("result.json") if p.stat().st_nlink == 1]
    assert [p.parent for p in rerun] == [site_bader.parent]  # that static alone, re-run for its density
    assert (site_bader.parent / "density.npz").exists() and site_bader.exists()
    assert bader_by_label(root)["Na@top-V"]["net_charge"] == pytest.approx(first["Na@top-V"]["net_charge"], abs=2e-3)


def test_screening_table_from_the_gpaw_store(chain_root, docs):
    from hetero.table import build_table

    df = build_table(chain_root / "store.json")
    ads = df[df["site"].notna()] if "site" in df else df
    assert set(ads["site"].dropna()) == {"top-V", "hollow"}
    assert set(ads["e_ads_reference"].dropna()) == {"bulk metal", "isolated atom"}
    bulk_rows = ads[ads["e_ads_reference"] == "bulk metal"]
    for _, row in bulk_rows.iterrows():
        e_ads = {d["site"]: d["e_ads_bulk_eV"] for d in docs["adsorption"]}[row["site"]]
        assert row["e_ads_eV"] == pytest.approx(e_ads)
        assert np.sign(row["ocv_V"]) == -np.sign(row["e_ads_eV"])  # V = -E_ads/e for one ion
        assert row["capacity_mAh_g"] > 0
        assert row["engine"] == "gpaw" and isinstance(row["settings_hash"], str)
    assert df["barrier_eV"].dropna().iloc[0] == pytest.approx(docs["neb"][0]["barrier_eV"])
    assert df["diffusion_coefficient_cm2_s"].dropna().iloc[0] > 0
    assert (df["dos_at_fermi"].dropna() > 0).all()
    # each site row carries the adsorbed system's own charge numbers, not the host's
    for _, row in bulk_rows.iterrows():
        bader = next(d for d in docs["bader"] if d["label"] == f"Na@{row['site']}")
        assert row["ion_bader_charge_e"] == pytest.approx(bader["fragment_charge"]["ion"])
        assert row["ion_cdd_transferred_e"] < 0


def test_every_figure_kind_from_the_gpaw_store(chain_root, tmp_path):
    from hetero.plots import make_figures
    from hetero.table import build_table

    fs = make_figures(chain_root, out=tmp_path / "figures")
    kinds = {v["kind"] for v in fs.figures.values()}
    assert {"dos", "cdd_profile", "cdd_slice", "cdd_iso", "elf", "bader", "adsorption", "neb", "screening",
            "workfunction", "model"} <= kinds
    assert not fs.skipped
    for fig in fs.figures.values():
        for f in fig["files"]:
            assert Path(f).stat().st_size > 1000
    df = build_table(chain_root / "store.json")
    neb = next(v for v in fs.figures.values() if v["kind"] == "neb")
    assert neb["values"]["barrier_eV"] == pytest.approx(df["barrier_eV"].dropna().iloc[0])
    cdd = {k: v["values"]["transferred_e"] for k, v in fs.figures.items() if v["kind"] == "cdd_profile"}
    site_cdd = set(df["ion_cdd_transferred_e"].dropna().round(9))
    assert {round(x, 9) for x in cdd.values()} == site_cdd
