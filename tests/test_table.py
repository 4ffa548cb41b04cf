"""Screening table: synthetic documents + documents parsed from the real VASP fixtures."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from hetero.schemas import AdsorptionDoc, BaderDoc, ModelRecord, NebDoc, Provenance
from hetero.table import build_table, docs_to_json_store, write_table
from _refdata import reference_vasp_dir  # noqa: E402

PROV = Provenance(engine="gpaw", settings={"preset": "fast"}, settings_hash="abc123", run_dir="/runs/x")
VS2 = {"@module": "pymatgen.core.structure", "@class": "Structure", "lattice": {"matrix": [[3, 0, 0], [0, 3, 0], [0, 0, 20]]},
       "sites": [{"species": [{"element": "V", "occu": 1}], "abc": [0, 0, 0.5], "label": "V"},
                 {"species": [{"element": "S", "occu": 1}], "abc": [0.3, 0.6, 0.55], "label": "S"},
                 {"species": [{"element": "S", "occu": 1}], "abc": [0.6, 0.3, 0.45], "label": "S"},
                 {"species": [{"element": "Li", "occu": 1}], "abc": [0, 0, 0.62], "label": "Li"}]}


_ref = reference_vasp_dir


def _calc(system, label, energy, converged=True):
    return {"doc_type": "calc", "system": system, "label": label, "step": "static", "formula": "X", "n_atoms": 3,
            "energy_eV": energy, "fermi_eV": -1.0, "converged": converged, "structure": {}, "provenance": PROV.model_dump()}


def synthetic_docs():
    mu_li_bulk, mu_li_atom = -1.90, -0.30
    e_host = -30.0
    ads = AdsorptionDoc(system="VS2", ion="Li", site="top-V", e_total_eV=e_host + mu_li_bulk - 0.8, e_host_eV=e_host,
                        mu_bulk_eV=mu_li_bulk, mu_atom_eV=mu_li_atom, structure=VS2, provenance=PROV).model_dump()
    neb = NebDoc(system="VS2", ion="Li", path="top-V->hollow", reaction_coord_A=[0, 1, 2], energies_eV=[0, 0.25, 0.01],
                 spline_x_A=[0, 2], spline_e_eV=[0, 0], barrier_eV=0.25, hop_length_A=1.85,
                 endpoint_energies_eV=[-1, -1], provenance=PROV).model_dump()
    model = ModelRecord(system="VS2@V2CO2", kind="interface", film="VS2", substrate="V2CO2", film_miller=[0, 0, 1],
                        substrate_miller=[0, 0, 1], strain_percent=1.2, area_A2=10.0, n_atoms=8, structure={}).model_dump()
    bader = BaderDoc(system="VS2@V2CO2", symbols=["V"], electrons=[1.0], valence=[1.0], net_charge=[0.0],
                     fragment_charge={"VS2": -0.12, "V2CO2": 0.12}, total_electrons=1.0, provenance=PROV).model_dump()
    docs = [ads, neb, _calc("VS2", "host", e_host), model, bader, _calc("VS2@V2CO2", "interface", -100.0),
            _calc("VS2@V2CO2", "fragment-A", -40.0), _calc("VS2@V2CO2", "fragment-B", -59.0),
            ModelRecord(system="lonely", kind="slab", n_atoms=4, structure={}).model_dump()]
    return [{"uuid": f"u{i}", "name": d["doc_type"], "metadata": {}, "output": d} for i, d in enumerate(docs)]


def test_synthetic_table_physics():
    df = build_table(synthetic_docs())
    ads = df[(df.row_kind == "site")]
    assert set(ads.e_ads_reference) == {"bulk metal", "isolated atom"}  # the reference is explicit
    bulk = ads[ads.e_ads_reference == "bulk metal"].iloc[0]
    atom = ads[ads.e_ads_reference == "isolated atom"].iloc[0]
    assert bulk.e_ads_eV == pytest.approx(-0.8)
    assert atom.e_ads_eV == pytest.approx(-0.8 + (-1.90 + 0.30))  # E_ads(atom) = E_ads(bulk) + mu_bulk - mu_atom
    assert bulk.ocv_V == pytest.approx(0.8) and (bulk.ocv_V > 0) == (bulk.e_ads_eV < 0)
    assert pd.isna(atom.ocv_V)  # OCV only against the metal
    assert bulk.capacity_mAh_g == pytest.approx(232.9, abs=0.5) and bulk.capacity_basis == "1 Li per S2V1"
    assert bulk.energy_eV == -30.0 and bulk.job_uuid == "u0" and bulk.engine == "gpaw" and bulk.preset == "fast"
    path = df[df.row_kind == "path"].iloc[0]
    assert path.barrier_eV == 0.25 and path.nu_Hz == 1e13 and path.temperature_K == 300
    assert 1e-7 < path.diffusion_coefficient_cm2_s < 1e-5
    inter = df[df.system == "VS2@V2CO2"].iloc[0]
    assert inter.formation_energy_eV_per_A2 == pytest.approx(-0.1)
    assert inter.formation_energy_J_per_m2 == pytest.approx(-1.602, abs=1e-3)
    assert inter.bader_transfer_e_VS2 == pytest.approx(-0.12) and inter.miller == "001/001"
    assert inter.film == "VS2" and inter.strain_percent == 1.2
    lonely = df[df.system == "lonely"].iloc[0]
    assert lonely.status == "no calc" and pd.isna(lonely.energy_eV)


def test_partial_and_failed_inputs_never_crash():
    docs = synthetic_docs()
    docs.append({"uuid": "f1", "name": "relax", "metadata": {"system": "broken"}, "output": None})
    docs.append({"doc_type": "adsorption", "system": "half", "ion": "Na", "site": "top", "e_total_eV": -5.0,
                 "e_host_eV": -4.0, "structure": {}, "provenance": {"engine": "vasp"}})  # no reference energies
    docs.append(_calc("unconv", "host", -3.0, converged=False))
    docs.append("garbage")
    df = build_table(docs)
    assert "no output" in df[df.system == "broken"].status.iloc[0]
    assert "no reference energy" in df[df.system == "half"].status.iloc[0]
    assert df[df.system == "unconv"].status.iloc[0] == "unconverged"
    assert build_table([]).empty


def test_sort_filter_writers_and_store(tmp_path):
    docs = synthetic_docs()
    store = docs_to_json_store(docs, tmp_path / "store.json")
    df = build_table(tmp_path)  # run folder -> store.json through maggma's JSONStore
    assert len(df) == len(build_table(docs))
    li = build_table(store, filters="ion==Li", sort="-e_ads_eV")
    assert set(li.ion) == {"Li"} and li.e_ads_eV.iloc[0] >= li.e_ads_eV.dropna().iloc[-1]
    assert (build_table(docs, filters=["e_ads_eV<-1"]).e_ads_eV < -1).all()
    with pytest.raises(ValueError, match="unknown column"):
        build_table(docs, filters="nope==1")
    paths = write_table(df, tmp_path / "out")
    back = pd.read_parquet(paths["parquet"])
    assert len(back) == len(df) and "e_ads_reference" in back.columns
    assert pd.read_csv(paths["csv"]).shape == df.shape
    assert "| system" in paths["md"].read_text()


def test_cli(tmp_path):
    from hetero.cli_table import app

    docs_to_json_store(synthetic_docs(), tmp_path / "store.json")
    r = CliRunner().invoke(app, [str(tmp_path), "--filter", "ion==Li", "--sort", "e_ads_eV", "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "o" / "screening.parquet").exists() and "rows" in r.output
    r = CliRunner().invoke(app, [str(tmp_path / "nothing")])
    assert r.exit_code == 2 and "no store" in r.output
    (tmp_path / "campaign.json").write_text(json.dumps({"published": {"e_ads_eV": {"top-V": -0.75, "hollow": -0.5}}}))
    r = CliRunner().invoke(app, [str(tmp_path / "store.json"), "--compare", "--out", str(tmp_path / "c")])
    assert r.exit_code == 0, r.output
    cmp = pd.read_csv(tmp_path / "c" / "comparison_published.csv")
    assert cmp.site.tolist() == ["top-V"] and cmp.published_eV.tolist() == [-0.75]  # our sites, beside theirs
    assert cmp.e_ads_bulk_metal_eV.tolist() == pytest.approx([-0.8])


def test_table_from_vasp_fixture_documents(tmp_path):
    ref = _ref()
    if ref is None:
        pytest.fail("reference VASP outputs not found: set HETERO_SHARED or clone beside ../shared")
    from hetero.engines import vasp_outputs as vio

    mos2 = ref / "MoS2_monolayer_optB86b"
    docs = [vio.parse_calc_dir(mos2, "MoS2"), vio.parse_dos(mos2, "MoS2"), vio.parse_work_function(mos2, "MoS2"),
            vio.parse_calc_dir(ref / "fermi_smearing", "Al"), vio.parse_dos(ref / "fermi_smearing", "Al"),
            vio.parse_calc_dir(ref / "hBN_monolayer_bands", "hBN"), vio.parse_dos(ref / "hBN_monolayer_bands", "hBN")]
    wrapped = [{"uuid": f"j{i}", "name": d.doc_type, "metadata": {}, "output": json.loads(d.model_dump_json())}
               for i, d in enumerate(docs)]
    df = build_table(wrapped).set_index("system")
    for col in ("energy_eV", "n_atoms", "engine", "settings_hash", "band_gap_eV", "is_metal", "dos_at_fermi",
                "job_uuid", "run_dir", "fermi_eV"):
        assert df[col].notna().all(), col
    assert 1.5 < df.loc["MoS2", "band_gap_eV"] < 1.9 and not df.loc["MoS2", "is_metal"]
    assert df.loc["Al", "is_metal"] and df.loc["hBN", "band_gap_eV"] > 4
    assert 5.0 < df.loc["MoS2", "work_function_eV"] < 6.5
    assert (df.status == "ok").all() and (df.engine == "vasp").all()


def test_maggma_jsonstore_reader_agrees(tmp_path):
    from hetero.io.store import newest_entries, open_json_store, read_store_file

    docs = synthetic_docs()
    p = docs_to_json_store(docs, tmp_path / "store.json")
    store = open_json_store(p)  # maggma JSONStore(path, read_only=True, key="uuid").connect()
    via_maggma = list(store.query())
    store.close()
    direct = newest_entries(read_store_file(p))
    assert {d["uuid"] for d in via_maggma} == {d["uuid"] for d in direct}
    a = build_table(via_maggma).sort_values(["system", "row_kind"]).reset_index(drop=True)
    b = build_table(direct).sort_values(["system", "row_kind"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_formation_energy_from_cdd_binding_energy():
    cdd = {"doc_type": "cdd", "system": "AB", "z_A": [], "planar_avg_e_per_A": [], "displacement_e": [],
           "interface_z_A": 5.0, "transferred_e": 0.05, "integral_e": 0.0, "binding_energy_eV": -2.0,
           "area_A2": 40.0, "provenance": PROV.model_dump()}
    row = build_table([_calc("AB", "host", -10.0), cdd]).iloc[0]
    assert row.formation_energy_eV_per_A2 == pytest.approx(-0.05) and row.cdd_transferred_e == 0.05


def test_store_reader_newest_run_failed_jobs_and_moved_files(tmp_path):
    """hetero.io.store: one reader for table, figures and report."""
    from hetero.io.store import load_run

    docs = synthetic_docs()
    replaced = json.loads(json.dumps(docs[0]))
    replaced["index"], docs[0]["index"] = 2, 1
    replaced["output"]["e_total_eV"] -= 0.1  # the re-run binds 0.1 eV more strongly
    docs.append(replaced)  # jobflow keeps both runs of a replaced job; only the newest counts
    docs.append({"uuid": "f1", "index": 1, "name": "static Na@bridge", "metadata": {"system": "VS2"}, "output": None})
    docs.append({"uuid": "aux", "index": 1, "name": "bulk reference", "metadata": {}, "output": -1.9})
    run = load_run(docs)
    (ads,) = run.of("adsorption")
    assert ads["e_total_eV"] == pytest.approx(-30.0 - 1.90 - 0.9) and run.job_of(ads).uuid == "u0"
    assert run.entries[0][0] is ads  # a replaced job keeps its place in store order
    assert run.failed_jobs == ["static Na@bridge"]  # an auxiliary output (a number) is not a failure
    df = build_table(run)
    bulk = df[(df.row_kind == "site") & (df.e_ads_reference == "bulk metal")].iloc[0]
    assert bulk.e_ads_eV == pytest.approx(-0.9) and "no output from job static Na@bridge" in bulk.status
    assert load_run(run) is run  # the report reads the store once and hands the run to the table
    # a run folder: campaign.json and models.json come with it; a file a document recorded is found
    # under the folder after the folder moved (exported runs keep the original absolute paths)
    folder = tmp_path / "moved"
    (folder / "calc" / "neb").mkdir(parents=True)
    (folder / "calc" / "neb" / "cdd.npz").write_bytes(b"x")
    docs_to_json_store([d["output"] for d in synthetic_docs()], folder / "store.json")
    (folder / "campaign.json").write_text(json.dumps({"name": "c", "published": {"e_ads_eV": {"top-V": -1.0}}}))
    run = load_run(folder)
    assert run.campaign["name"] == "c" and run.models == {} and run.folder == folder
    assert run.resolve("/elsewhere/runs/old/calc/neb/cdd.npz") == folder / "calc" / "neb" / "cdd.npz"
    assert run.resolve("/elsewhere/none.npz") is None
    with pytest.raises(FileNotFoundError, match="store.json"):
        load_run(tmp_path / "nowhere")


def test_real_gpaw_example_store():
    """The committed Na/VN(001) example (a real GPAW run): the table holds the store's numbers."""
    from pathlib import Path

    from hetero.io.store import iter_documents, load_run

    folder = Path(__file__).resolve().parents[1] / "examples" / "na_vn001_fast"
    run = load_run(folder)
    df = build_table(run)
    pd.testing.assert_frame_equal(df, build_table(list(iter_documents(folder))))  # one reader, any source
    sites = df[(df.row_kind == "site") & (df.e_ads_reference == "bulk metal")].set_index("site")
    ads = {d["site"]: d for d in run.of("adsorption")}
    assert set(sites.index) == set(ads) == {"top-N", "top-V", "bridge", "hollow"}
    for site, d in ads.items():
        assert sites.loc[site, "e_ads_eV"] == pytest.approx(d["e_ads_bulk_eV"])
        assert sites.loc[site, "ocv_V"] == pytest.approx(-d["e_ads_bulk_eV"])  # Na+: one electron per ion
    atom = df[(df.row_kind == "site") & (df.e_ads_reference == "isolated atom")].set_index("site")
    shift = {round(atom.loc[s, "e_ads_eV"] - sites.loc[s, "e_ads_eV"], 6) for s in ads}
    d = next(iter(ads.values()))
    assert shift == {round(d["mu_bulk_eV"] - d["mu_atom_eV"], 6)} and shift.pop() < 0  # the atom lies above the metal
    assert sites.capacity_mAh_g.nunique() == 1 and sites.capacity_mAh_g.iloc[0] > 0  # one host, one Na per cell
    (neb,) = run.of("neb")
    path = df[df.row_kind == "path"].iloc[0]
    assert path.barrier_eV == pytest.approx(neb["barrier_eV"]) and 0 < path.barrier_eV < 1
    assert path.diffusion_coefficient_cm2_s > 0 and (df.engine == "gpaw").all()


def test_published_comparison_uses_the_dft_rows_of_a_funnel_run():
    """A funnel run's table also holds the MLIP screen's site rows (0.3-0.4 eV more bound here); the comparison
    with the study takes the campaign engine's E_ads, one row per site (committed Na/VN(001) funnel run)."""
    from hetero.table import compare_with_published

    root = Path(__file__).resolve().parents[1] / "examples" / "na_vn001_funnel"
    table = build_table(root)
    assert {"mlip:chgnet", "mlip:sevennet"} <= set(table[table.row_kind == "site"].engine)
    cmp = compare_with_published(root)
    assert cmp.site.tolist() == ["top-N", "hollow"] and set(cmp.engine) == {"gpaw"}
    assert cmp.e_ads_bulk_metal_eV.tolist() == pytest.approx([-0.2246, -0.2058], abs=1e-3)  # not the MLIPs' -0.5/-0.6
    assert cmp.published_eV.tolist() == [-1.358, -1.457] and cmp.rank_published.tolist() == [2, 1]


def test_study_comparison_puts_each_system_beside_its_published_value(tmp_path):
    """Study 1 system by system from the committed runs (VS2 alone, the VS2/V2CO2 stack): each campaign's best DFT
    site beside the study's per-system value, never an MLIP row; a study listing several systems needs
    `published.system` to say which one a campaign is."""
    from hetero.table import study_comparison, study_orderings

    examples = Path(__file__).resolve().parents[1] / "examples"
    cmp = study_comparison([examples / "vs2_li_mlgeom", examples / "vs2_v2co2_li_mlgeom"])
    e = cmp[cmp.quantity == "E_ads, best site"].set_index("published_system")
    assert e.loc["VS2", "this_work"] == pytest.approx(-1.333, abs=1e-3) and e.loc["VS2", "published"] == -4.03
    stack_row = e.loc["VS2@V2CTx"]
    assert stack_row.this_work == pytest.approx(-3.152, abs=1e-3) and stack_row.published == -4.67
    assert e.detail.str.startswith(("hcp (of 2", "gap-fcc (of ")).all() and not e.engine.str.startswith("mlip").any()
    atom = cmp[cmp.quantity == "E_ads, best site (atom)"].set_index("published_system").this_work
    assert atom["VS2@V2CTx"] == pytest.approx(-4.955, abs=1e-3) and atom["VS2"] < e.loc["VS2", "this_work"]
    # the stack binds Li more strongly than VS2 alone, in both: the same order
    assert "E_ads, best site: this work VS2@V2CTx < VS2; published VS2@V2CTx < VS2 (same order)" in study_orderings(cmp)

    from hetero.cli import app

    r = CliRunner().invoke(app, ["compare", str(examples / "vs2_li_mlgeom"), str(examples / "vs2_v2co2_li_mlgeom"),
                                 "--out", str(tmp_path / "cmp")])
    assert r.exit_code == 0 and "published VS2@V2CTx < VS2 (same order)" in r.output, r.output
    assert len(pd.read_csv(tmp_path / "cmp" / "study_comparison.csv")) == len(cmp)

    # without `system`, a campaign whose study lists three systems is matched to none of them
    stack = tmp_path / "stack"
    stack.mkdir()
    for f in (examples / "vs2_v2co2_li_mlgeom").glob("*.json"):  # the store and campaign are all the table reads
        shutil.copy(f, stack)
    camp = json.loads((stack / "campaign.json").read_text())
    del camp["published"]["system"]
    (stack / "campaign.json").write_text(json.dumps(camp))
    row = study_comparison([stack]).set_index("quantity").loc["E_ads, best site"]
    assert pd.isna(row.published) and row.this_work == pytest.approx(-3.152, abs=1e-3)


def test_a_site_whose_host_reconstructed_is_flagged_until_its_ion_free_host_is_checked(tmp_path):
    """Li on the 8 %-strained V2O5 layer (examples/v2o5_li_mlgeom): the whole slab rearranged under the Li (host
    atoms moved 2.9-4.7 A). Without the ion-free host checks the rows are flagged and never compared; with them
    (the run's host_check documents: the Li-free host from other-5 lies 6.63 eV below the bare host in GPAW) every
    E_ads is taken against that lowest host, and the host's gap and work function say they are the bare host's."""
    import json
    import shutil

    from pymatgen.core import Lattice, Structure

    from hetero.analysis.descriptors import host_max_shift
    from hetero.io.store import unwrap
    from hetero.table import compare_with_published, iter_documents, study_comparison

    host = Structure(Lattice.cubic(5.0), ["V", "O"], [[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]])
    moved = Structure(Lattice.cubic(5.0), ["V", "O", "Li"], [[0.98, 0.0, 0.0], [0.5, 0.5, 0.8], [0.5, 0.5, 0.1]])
    assert host_max_shift(host, moved, 1) == pytest.approx(1.5)  # O moved 1.5 A; V 0.1 A across the boundary
    assert host_max_shift(host, moved, 2) is None  # host parts that do not match atom for atom: no number

    root = Path(__file__).resolve().parents[1] / "examples" / "v2o5_li_mlgeom"
    table = build_table(root)
    dft = table[(table.row_kind == "site") & table.funnel_rank.isna()]
    assert len(dft) == 6 and (dft.host_max_shift_A > 2.5).all() and dft.host_check_eV.notna().all()
    assert (dft.host_reference == "ion-free host relaxed from Li@other-5 (-6.627 eV vs the bare host)").all()
    bulk = dft[dft.e_ads_reference == "bulk metal"].set_index("site")
    docs = {d["site"]: d for e in iter_documents(root) for d in unwrap(e) if d["doc_type"] == "adsorption"}
    for site, row in bulk.iterrows():  # each document's E_ads is against the bare host: 6.627 eV higher
        assert row.e_ads_eV == pytest.approx(docs[site]["e_ads_bulk_eV"] + 6.6266, abs=2e-4)
    assert bulk.e_ads_eV.idxmin() == "other-5" and bulk.loc["other-5", "e_ads_eV"] == pytest.approx(-2.847, abs=1e-3)
    assert len(compare_with_published(root)) == 3
    cmp = study_comparison([root]).set_index("quantity")
    assert cmp.loc["E_ads, best site", "this_work"] == pytest.approx(-2.847, abs=1e-3)
    assert "a lower host exists" in cmp.loc["work function (eV)", "detail"]

    # the same store without its host_check documents: every row flagged, nothing compared
    unchecked = tmp_path / "unchecked"
    unchecked.mkdir()
    for f in root.glob("*.json"):
        shutil.copy(f, unchecked)
    store = json.loads((unchecked / "store.json").read_text())
    kept = [e for e in store if not any(d["doc_type"] == "host_check" for d in unwrap(e))]
    assert len(store) - len(kept) == 3
    (unchecked / "store.json").write_text(json.dumps(kept))
    flagged = build_table(unchecked)
    flagged = flagged[(flagged.row_kind == "site") & flagged.funnel_rank.isna()]
    assert flagged.status.str.startswith("host rearranged").all()
    assert len(compare_with_published(unchecked)) == 0
    e_ads = study_comparison([unchecked]).set_index("quantity").loc["E_ads, best site"]
    assert pd.isna(e_ads.this_work) and e_ads.detail == "3 site(s) left out: the host rearranged under the ion"


def test_where_an_ion_s_electrons_go_on_a_stack():
    """Li on VS2/V2CO2 (committed GPAW//CHGNet run): each side's Bader change from the bare stack adds up to
    what the Li gave, intercalated Li feeds both layers, Li on the VS2 surface feeds VS2."""
    from hetero.analysis.bader import ion_charge_by_fragment

    host = {"symbols": ["A", "B", "B"], "net_charge": [0.1, -0.05, -0.05], "fragments": {"film": [0], "substrate": [1, 2]}}
    with_ion = {"symbols": ["A", "B", "B", "Li"], "net_charge": [-0.2, -0.3, -0.4, 0.9]}
    assert ion_charge_by_fragment(host, with_ion) == pytest.approx({"film": -0.3, "substrate": -0.6})
    assert ion_charge_by_fragment({**host, "fragments": {}}, with_ion) is None  # a single slab has no sides
    assert ion_charge_by_fragment(host, {**with_ion, "symbols": ["B", "B", "A", "Li"]}) is None  # another model

    df = build_table(Path(__file__).resolve().parents[1] / "examples" / "vs2_v2co2_li_mlgeom")
    sites = df[(df.row_kind == "site") & (df.engine == "gpaw//mlip:chgnet")
               & (df.e_ads_reference == "bulk metal")].set_index("site")
    given = sites.ion_charge_to_film_e + sites.ion_charge_to_substrate_e
    assert (given + sites.ion_bader_charge_e).abs().max() < 0.01  # the electrons Li lost, all found in the host
    gap, surface = sites.loc["gap-fcc"], sites.loc["hcp-1"]
    assert gap.ion_charge_to_film_e < -0.2 and gap.ion_charge_to_substrate_e < -0.2  # film = VS2, substrate = V2CO2
    assert surface.ion_charge_to_film_e < -0.7 and abs(surface.ion_charge_to_substrate_e) < 0.1


def test_study_comparison_keeps_mlip_and_dft_barriers_apart_and_refuses_flagged_hops():
    """Study 2 from the committed runs: the junction's only hop is an MLIP band (CHGNet, 0.055 eV) and stays in
    the MLIP row; the V2O5 layer's GPAW-on-CHGNet band joins two host states, so it gives no DFT barrier and the
    row says why."""
    from hetero.table import study_comparison, study_orderings

    ex = Path(__file__).resolve().parents[1] / "examples"
    cmp = study_comparison([ex / "v2o5_li_mlgeom", ex / "v2o5_cu2v2o7_li_lowstack_mlgeom"]).set_index(
        ["campaign", "quantity"])
    junction = cmp.loc[("v2o5_cu2v2o7_li", "migration barrier, MLIP (eV)")]
    assert junction.this_work == pytest.approx(0.0546, abs=1e-3) and junction.engine == "mlip:chgnet"
    assert ("v2o5_cu2v2o7_li", "migration barrier (eV)") not in cmp.index  # no DFT hop at the junction yet
    v2o5 = cmp.loc[("v2o5_li", "migration barrier (eV)")]
    assert pd.isna(v2o5.this_work) and "different host states" in v2o5.detail
    assert v2o5.engine == "gpaw//mlip:chgnet"
    assert not any("migration barrier (eV)" in line for line in study_orderings(cmp.reset_index()))
