"""The engine contract: one neutral settings vocabulary, the model's facts reaching every engine,
capabilities checked when a flow is built, the same campaign file on GPAW and on an MLIP, exit status."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from pymatgen.core import Lattice, Structure

from hetero.campaigns import (
    RunFailed,
    build_host,
    load_campaign,
    make_flow,
    model_facts,
    run_campaign,
    run_folder,
)
from hetero.engines import EngineCapabilityError, SettingsError, get_engine
from hetero.engines.settings import ModelFacts
from hetero.flows.adsorption import AdsorptionFlowMaker, isolated_atom

ROOT = Path(__file__).resolve().parents[1]
NA_VN = ROOT / "workflows" / "na_vn001.yaml"
VS2_V2CO2 = ROOT / "workflows" / "vs2_v2co2_li.yaml"


def with_engine(src: Path, engine: str, dest: Path) -> Path:
    """The campaign file with only its `engine:` field changed."""
    data = yaml.safe_load(src.read_text())
    data["engine"] = engine
    dest.write_text(yaml.safe_dump(data, sort_keys=False))
    return dest


# ------------------------------------------------------------------ vocabulary and errors
@pytest.mark.parametrize("engine", ["gpaw", "vasp", "mlip"])
def test_engine_specific_spellings_name_the_neutral_key(engine):
    for key, neutral in (("spinpol", "spin"), ("kpts", "kpoints_mesh"), ("ENCUT", "cutoff_eV"), ("IVDW", "dispersion")):
        with pytest.raises(SettingsError, match=f"'{key}' is not a neutral setting; use '{neutral}'"):
            get_engine(engine, overrides={key: 1})
    with pytest.raises(SettingsError, match="unknown setting 'colour'"):
        get_engine(engine, overrides={"colour": "red"})


def test_bad_values_and_unknown_engine():
    with pytest.raises(SettingsError, match="'cutoff_eV' = 40000"):
        get_engine("gpaw", overrides={"cutoff_eV": 40000})
    with pytest.raises(SettingsError, match="'spin': 'maybe' is not one of auto, on, off"):
        get_engine("gpaw", overrides={"spin": "maybe"})
    with pytest.raises(SettingsError, match="kpoints_mesh"):
        get_engine("gpaw", overrides={"kpoints_mesh": [3, 3]})
    with pytest.raises(SettingsError, match="hubbard_u_source"):
        get_engine("gpaw", overrides={"hubbard_u": {"V": 3.25}})
    with pytest.raises(SettingsError, match="valid engines: gpaw, vasp, mlip"):
        get_engine("abinit")


# ------------------------------------------------------------------ model facts -> settings
def test_stack_turns_dispersion_on_and_records_why():
    camp = load_campaign(VS2_V2CO2)
    slab, record = build_host(camp, "fast")
    facts = model_facts(record, slab)
    assert facts.kind == "stack" and facts.van_der_waals and facts.asymmetric
    eng = get_engine("gpaw", "fast", camp.overrides)
    res = eng.resolve(slab, facts)
    assert res["dispersion"] == "d3bj" and res.sources["dispersion"].startswith("model: stacked film/substrate")
    assert res["dipole"] == "on" and res["spin"] == "on"  # V present: spin with MP's starting moment
    assert res["magmoms"]["V"] == 5.0 and "model defaults" in res.sources["magmoms"]
    native = eng.translate(res, slab, "relax")
    assert native["d3"] == "d3bj" and native["dipole_correction"] and native["spinpol"]
    assert native["kpts"][2] == 1  # one k-point along the vacuum
    # the same facts on the MLIP: no electronic settings, only the dispersion the stack needs
    mlip = get_engine("mlip").translate(res, slab, "relax")
    assert set(mlip) == {"model", "optimizer", "fmax_eV_A", "relax_steps", "d3"} and mlip["d3"] == "d3bj"


@pytest.mark.mlip
def test_mlip_gets_d3_on_a_stack_and_keeps_its_gap(tmp_path):
    """CHGNet learnt PBE, which barely binds a vdW gap: alone it opened VS2/V2CO2's S-O gap from 3.2 to 5.7 A.
    On a stack the MLIP engine adds D3(BJ) as GPAW does: its energy is CHGNet's plus dftd3's, and the relaxed
    stack keeps its gap (3.09 A measured)."""
    from dftd3.ase import DFTD3

    from hetero.engines.ase_tasks import atoms_from_dict
    from hetero.engines.base import atoms_dict
    from hetero.engines.mlip import calculator

    camp = load_campaign(VS2_V2CO2)
    slab, record = build_host(camp, "fast")
    facts = model_facts(record, slab)
    eng = get_engine("mlip:chgnet", "fast")
    single = eng.static(slab, tmp_path / "sp", facts)
    assert single.provenance.settings["d3"] == "d3bj"
    atoms = atoms_from_dict(atoms_dict(slab))
    atoms.calc = calculator("chgnet")
    e_chgnet = atoms.get_potential_energy()
    atoms.calc = DFTD3(method="PBE", damping="d3bj")
    e_d3 = atoms.get_potential_energy()
    assert e_d3 < -1.0 and single.energy_eV == pytest.approx(e_chgnet + e_d3, abs=1e-4)
    relaxed = Structure.from_dict(eng.relax(slab, tmp_path / "relax", facts).structure)
    z = relaxed.cart_coords[:, 2]
    gap = z[record.fragments["film"]].min() - z[record.fragments["substrate"]].max()
    assert abs(gap - 3.2) < 0.4, gap


def test_symmetric_slab_gets_no_dipole_and_the_adsorbed_ion_does(tmp_path):
    # a 5-plane VN(001) slab with no plane held fixed: both sides stay equivalent, no dipole correction
    camp_file = tmp_path / "sym.yaml"
    camp_file.write_text(yaml.safe_dump({"name": "sym", "ion": "Na", "overrides": {"spin": "off"},
                                         "model": {"slab": {"material": "VN", "miller": [0, 0, 1], "layers": 5,
                                                            "fix_bottom_layers": 0}}}))
    camp = load_campaign(camp_file)
    slab, record = build_host(camp, "fast")
    facts = model_facts(record, slab)
    assert not facts.van_der_waals and not facts.asymmetric
    eng = get_engine("gpaw", "fast", camp.overrides)
    host = eng.resolve(slab, facts)
    assert host["dipole"] == "off" and host.sources["dipole"] == "model: symmetric slab"
    assert host["dispersion"] == "off" and host["spin"] == "off" and host.sources["spin"] == "user"
    site = eng.resolve(slab, facts.derive(asymmetric=True, why={"asymmetric": "ion adsorbed on one side"}))
    assert site["dipole"] == "on" and site.sources["dipole"] == "model: ion adsorbed on one side"
    # the campaign's VN(001) slab holds its bottom two planes at the bulk geometry: once the top relaxes
    # the two sides differ (a 0.45 A rumpling measured on the tiny model), so the dipole correction is on
    vn = load_campaign(NA_VN)
    slab, record = build_host(vn, "fast")
    facts = model_facts(record, slab)
    assert facts.asymmetric and "bottom planes fixed" in facts.why["asymmetric"]
    res = get_engine("gpaw", "fast", vn.overrides).resolve(slab, facts)
    assert res["dipole"] == "on" and res["kpoints"] == [3, 3, 1] and res.sources["kpoints"].startswith("user")


def test_references_atom_on_gamma_spin_polarised_bulk_relaxed():
    eng = get_engine("gpaw", "fast", {"spin": "off"})  # the campaign's host is non-magnetic ...
    atom = eng.resolve(isolated_atom("Na", 10.0), ModelFacts(kind="atom"))
    assert atom["kpoints"] == [1, 1, 1] and atom["smearing_eV"] == 0.01
    # ... but the isolated Na atom is a doublet: always spin-polarised with moment 1
    assert atom["spin"] == "on" and atom["magmoms"] == {"Na": 1.0}
    assert atom.sources["spin"].startswith("model: isolated atom")
    flow, _ = make_flow(load_campaign(NA_VN), "fast", Path("/tmp/unused"))
    names = [j.name for j in flow.jobs]
    assert "relax Na bulk metal (cell)" in names  # not left at the experimental lattice
    bulk = next(j for j in flow.jobs if j.name == "relax Na bulk metal (cell)")
    assert bulk.function.__self__.cell is True


def test_flow_asking_for_a_density_on_an_mlip_fails_when_built():
    slab = Structure(Lattice.tetragonal(4.1, 20.0), ["V", "N"], [[0, 0, 0.5], [0.5, 0.5, 0.5]])
    maker = AdsorptionFlowMaker(engine=get_engine("mlip"), steps=("relax", "static", "bader", "adsorption"))
    with pytest.raises(EngineCapabilityError, match="charge density.*'mlip:chgnet' engine cannot give"):
        maker.make(slab, "VN", "Na", [], "/tmp/unused")


# ------------------------------------------------------------------ real runs
@pytest.mark.dft
def test_dispersion_reaches_gpaw(tmp_path):
    """D3(BJ) from the model's facts: the GPAW energy moves by exactly the D3 energy of the structure."""
    from ase.calculators.mixing import SumCalculator  # noqa: F401 (the combination GPAW uses)
    from dftd3.ase import DFTD3
    from pymatgen.io.ase import AseAtomsAdaptor

    na = Structure(Lattice.cubic(4.23), ["Na", "Na"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    eng = get_engine("gpaw", "fast", {"cutoff_eV": 250, "gpaw": {"prerelax_mlip": None}})
    plain = eng.static(na, tmp_path, ModelFacts(kind="bulk"))
    vdw = eng.static(na, tmp_path, ModelFacts(kind="bulk", van_der_waals=True, why={"van_der_waals": "test"}))
    assert plain.provenance.neutral_settings["dispersion"] == "off"
    assert vdw.provenance.neutral_settings["dispersion"] == "d3bj"
    assert vdw.provenance.settings_sources["dispersion"] == "model: test"
    atoms = AseAtomsAdaptor.get_atoms(na)
    atoms.calc = DFTD3(method="PBE", damping="d3bj")
    e_d3 = atoms.get_potential_energy()
    assert e_d3 < -0.01
    assert vdw.energy_eV - plain.energy_eV == pytest.approx(e_d3, abs=1e-4)


@pytest.mark.mlip
def test_same_campaign_file_on_the_mlip_end_to_end(tmp_path):
    """workflows/na_vn001.yaml with only `engine: mlip`: every site, a NEB barrier, the bulk metal relaxed;
    steps that need a density are absent and the run says so."""
    from hetero.table import build_table

    camp_file = with_engine(NA_VN, "mlip", tmp_path / "na_vn001_mlip.yaml")
    root = run_campaign(camp_file, runs_dir=tmp_path / "runs", log=False)
    assert root == run_folder(load_campaign(camp_file), "fast", tmp_path / "runs")
    info = json.loads((root / "campaign.json").read_text())
    assert info["engine_used"] == "mlip:chgnet"
    assert set(info["steps_not_available"]) == {"dos", "bader", "cdd", "workfunction"}
    df = build_table(root)
    sites = df[df["row_kind"] == "site"]
    assert set(sites["site"]) == {"top-V", "top-N", "bridge", "hollow"}
    assert (sites["engine"] == "mlip:chgnet").all() and sites["e_ads_eV"].notna().all()
    # Na binds to VN(001) on the MLIP too, and top-V is its least favourable site (as in the PBE run)
    bulk_rows = sites[sites["e_ads_reference"] == "bulk metal"].set_index("site")["e_ads_eV"]
    assert (bulk_rows < 0).all() and bulk_rows.idxmax() == "top-V"
    assert df["barrier_eV"].notna().sum() == 1 and df["barrier_eV"].dropna().iloc[0] >= 0
    assert df["dos_at_fermi"].isna().all() and df["cdd_transferred_e"].isna().all()
    from hetero.structures import load_structure

    store = [d["output"] for d in json.loads((root / "store.json").read_text()) if isinstance(d.get("output"), dict)]
    bulk = next(d for d in store if d.get("doc_type") == "calc" and d["system"] == "Na-bulk" and d["step"] == "relax")
    assert bulk["provenance"]["engine"] == "mlip:chgnet"
    # the reference is the metal at the model's own lattice, not the experimental one it started from
    start = load_structure("Na")
    relaxed = Structure.from_dict(bulk["structure"])
    assert abs(relaxed.volume / len(relaxed) / (start.volume / len(start)) - 1) > 0.005


def _fail_on(monkeypatch, kind_or_system: str):
    from hetero.engines.mlip import MlipEngine

    orig = MlipEngine._compute

    def broken(self, task, folder, structure):
        if task["kind"] == kind_or_system or kind_or_system in str(folder):
            raise RuntimeError(f"simulated crash in {task['kind']}")
        return orig(self, task, folder, structure)

    monkeypatch.setattr(MlipEngine, "_compute", broken)


@pytest.mark.mlip
def test_failed_jobs_make_the_run_fail_and_name_them(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from hetero.cli import app

    camp_file = with_engine(NA_VN, "mlip", tmp_path / "na_vn001_mlip.yaml")
    _fail_on(monkeypatch, "Na-atom")  # the isolated-atom reference crashes: every E_ads needs it
    with pytest.raises(RunFailed) as err:
        run_campaign(camp_file, runs_dir=tmp_path / "runs", log=False)
    summary = err.value.summary
    assert [f["job"] for f in summary["failed"]] == ["static Na atom"]
    assert "simulated crash" in summary["failed"][0]["error"]
    assert "mu Na atom" in summary["skipped"] and "E_ads Na@top-V" in summary["skipped"]
    assert json.loads((err.value.root / "run_summary.json").read_text())["failed"]
    # the CLI: non-zero, the failed job named; finished work is reused on the re-run
    result = CliRunner().invoke(app, ["run", str(camp_file), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 1, result.output
    assert "static Na atom" in result.output and "skipped" in result.output
    log = next((tmp_path / "runs").glob("*/run.log")).read_text()  # where the failed line says the traceback is
    assert "Traceback" in log and "RuntimeError: simulated crash in static" in log
    monkeypatch.undo()
    result = CliRunner().invoke(app, ["run", str(camp_file), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    relax_dirs = list((tmp_path / "runs").rglob("relax-*"))
    assert relax_dirs and all((d / "result.json").exists() for d in relax_dirs)


@pytest.mark.mlip
def test_sevennet_runs_through_the_same_ase_path(tmp_path):
    pytest.importorskip("sevenn", reason="sevenn is installed by scripts/setup.sh ([mlip] extra)")
    slab = Structure(Lattice.tetragonal(4.14, 20.0), ["V", "N", "V", "N", "Na"],
                     [[0, 0, 0.40], [0.5, 0.5, 0.40], [0.5, 0.5, 0.5], [0, 0, 0.5], [0.03, 0.02, 0.61]])
    slab.add_site_property("selective_dynamics", [[False] * 3, [False] * 3, [True] * 3, [True] * 3, [True] * 3])
    eng = get_engine("mlip:sevennet")
    res = eng.relax(slab, tmp_path)
    assert res.provenance.engine == "mlip:sevennet" and res.converged
    final = Structure.from_dict(res.structure)
    assert np.allclose(final.cart_coords[:2], slab.cart_coords[:2])  # fixed atoms stayed
    assert res.forces_max_eV_A < 0.05 and np.isfinite(res.energy_eV)


@pytest.mark.mlip
def test_mlip_neb_with_several_moving_images(tmp_path):
    """One MLIP calculator serves every moving image (ASE refuses a shared calculator unless told): a band of
    3 moving images, as the interface presets ask for, runs and gives a barrier."""
    from hetero.analysis.neb import barrier
    from hetero.builders.images import interpolate_images
    from hetero.builders.presets import get_preset
    from hetero.builders.sites import find_sites, place_ion

    slab, _ = get_preset("vn001_na", "fast")
    sites = {s.label: s for s in find_sites(slab, "Na")}
    eng = get_engine("mlip")
    ends = [eng.relax(place_ion(slab, sites[name], "Na"), tmp_path / name) for name in ("top-N", "hollow")]
    images = interpolate_images(*(Structure.from_dict(e.structure) for e in ends), 3)
    res = eng.neb(images, [e.energy_eV for e in ends], tmp_path / "neb", neb={"neb_steps": 5})
    assert res.n_images_moving == 3 and len(res.energies_eV) == 5
    assert all(np.isfinite(res.energies_eV)) and len({round(e, 6) for e in res.energies_eV[1:-1]}) == 3
    assert barrier([e - res.energies_eV[0] for e in res.energies_eV], res.spline_e_eV) >= 0
