"""The jobflow chain (relax -> static -> DOS) on the VASP engine, with VASP replaced by a small script.

The script copies real VASP outputs from ../shared/reference/vasp/<case>/ into the run folder (they were
written by other public projects' VASP runs, see that folder's README; they are not results of ours), so
the engine's whole path is exercised: inputs written by atomate2's sets + our INCAR layering, custodian
running the "binary", conversion of vasprun.xml into the GPAW-shaped result.json/dos.npz, and the
unchanged jobs of hetero.flows.jobs turning those into documents. The input structure is built from the
reference POSCAR so that the copied outputs belong to it.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("atomate2")
pytest.importorskip("custodian")

from jobflow import Flow, JobStore, run_locally  # noqa: E402
from maggma.stores import MemoryStore  # noqa: E402
from pymatgen.core import Structure  # noqa: E402
from pymatgen.io.vasp import Incar, Vasprun  # noqa: E402

from hetero.engines import get_engine  # noqa: E402
from hetero.engines.vasp import VaspEngine  # noqa: E402
from hetero.flows.jobs import RelaxMaker, StaticMaker, dos_job  # noqa: E402
from hetero.io.vasp import OutputParseError  # noqa: E402
from _refdata import reference_vasp_dir  # noqa: E402

ENGINE = {"name": "vasp", "preset": "fast", "overrides": {}}


_ref = reference_vasp_dir


@pytest.fixture
def ref() -> Path:
    r = _ref()
    if r is None:
        pytest.skip("reference VASP outputs not found: set HETERO_SHARED or provide ../shared/reference/vasp")
    return r


def fake_vasp(tmp_path: Path, src: Path, files: list[str], truncate: str | None = None) -> Path:
    """A 'VASP binary' that copies reference outputs (read-only originals) into the working folder and
    counts its calls in <tmp_path>/calls.txt. ``truncate``: copy that file cut in half instead."""
    script = tmp_path / f"fake_vasp_{src.name}.sh"
    lines = ["#!/bin/sh", f"echo run >> '{tmp_path / 'calls.txt'}'"]
    for f in files:
        if f == truncate:
            size = (src / f).stat().st_size // 2
            lines.append(f"head -c {size} '{src / f}' > '{f}'")
        else:
            lines.append(f"cp '{src / f}' '{f}' && chmod u+w '{f}'")
    lines.append("echo ' running on    1 total cores' > vasp.out")
    script.write_text("\n".join(lines) + "\n")
    script.chmod(0o755)
    return script


def _calls(tmp_path: Path) -> int:
    p = tmp_path / "calls.txt"
    return len(p.read_text().splitlines()) if p.exists() else 0


@pytest.fixture(autouse=True)
def _fast_custodian(monkeypatch):
    monkeypatch.setenv("HETERO_CUSTODIAN_POLL_S", "0.1")
    monkeypatch.delenv("HETERO_VASP_CMD", raising=False)


def _vasprun(path: Path) -> Vasprun:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Vasprun(str(path), parse_potcar_file=False)


def _chain(structure: Structure, system: str, run_root: Path, asymmetric: bool = False):
    relax = RelaxMaker(engine=ENGINE, asymmetric_slab=asymmetric).make(structure, system, "mono", str(run_root))
    static = StaticMaker(engine=ENGINE, outputs=("dos",)).make(relax.output["structure"], system, "mono",
                                                             str(run_root))
    dos = dos_job(static.output)
    store = JobStore(MemoryStore())
    out = run_locally(Flow([relax, static, dos]), store=store, ensure_success=True, log=False)
    return out[relax.uuid][1].output, out[static.uuid][1].output, out[dos.uuid][1].output


def test_get_engine_returns_vasp_engine():
    eng = get_engine(**ENGINE)
    assert isinstance(eng, VaspEngine) and eng.name == "vasp"
    assert all(callable(getattr(eng, m)) for m in ("relax", "static", "neb"))
    assert eng.settings["neb_images"] >= 1  # NebMaker reads engine.settings
    with pytest.raises(ValueError, match="valid engines"):
        get_engine("abinit")


def test_hbn_chain_through_jobflow(ref, tmp_path, monkeypatch):
    src = ref / "hBN_monolayer_bands"
    monkeypatch.setenv("HETERO_VASP_CMD", str(fake_vasp(tmp_path, src, ["vasprun.xml", "OUTCAR", "DOSCAR",
                                                                         "PROCAR", "CONTCAR"])))
    structure = Structure.from_file(src / "POSCAR")
    relax, static, dos = _chain(structure, "hBN", tmp_path / "runs", asymmetric=True)
    vr = _vasprun(src / "vasprun.xml")  # numbers of the reference run (another project's), not ours
    assert relax["energy_eV"] == pytest.approx(vr.final_energy)
    assert relax["fermi_eV"] == pytest.approx(vr.efermi)
    assert relax["provenance"]["engine"] == "vasp" and relax["provenance"]["settings_hash"]
    assert relax["forces_max_eV_A"] is None  # this hybrid band run wrote NaN forces: unknown, not a number
    assert static["energy_eV"] == pytest.approx(vr.final_energy) and static["formula"] == "B1N1"
    # the INCARs the steps were given
    inc_r = Incar.from_file(Path(relax["provenance"]["run_dir"]) / "INCAR")
    assert inc_r["LDIPOL"] is True and inc_r["IDIPOL"] == 3 and inc_r["ISIF"] == 2 and inc_r["NSW"] > 0
    inc_s = Incar.from_file(Path(static["provenance"]["run_dir"]) / "INCAR")
    assert inc_s["LORBIT"] == 11 and inc_s["NEDOS"] == 2001 and inc_s["NSW"] == 0
    assert inc_s.get("LAECHG", False) is False and "LVHAR" not in inc_s  # only the DOS was asked for
    # the GPAW-shaped result.json
    res = json.loads((Path(static["provenance"]["run_dir"]) / "result.json").read_text())
    assert res["valence"] == [3.0, 5.0] and res["core_electrons"] == [2.0, 2.0]
    assert res["gpts"] == [int(vr.parameters[k]) for k in ("NGXF", "NGYF", "NGZF")]
    assert res["dos_projected"] is True
    data = np.load(static["files"]["dos"])
    assert data["per_atom"].shape == (2, data["energies"].size)
    # projections inside the PAW spheres miss the interstitial: their sum holds fewer states than the total
    assert 0 < data["per_atom"].sum() < data["total"].sum()
    # the DOS document
    assert dos["is_metal"] is False and dos["band_gap_eV"] > 3.0
    assert dos["n_valence"] == pytest.approx(8.0)
    assert dos["n_electrons_integrated"] == pytest.approx(8.0, abs=0.1)
    assert set(dos["projected"]) == {"B", "N"}
    gap_e = vr.eigenvalue_band_properties[0]
    assert dos["band_gap_eV"] == pytest.approx(gap_e)  # the eigenvalue gap, not the smeared DOS's
    assert _calls(tmp_path) == 2

    # re-running the same flow reuses both folders (result.json): VASP is not called again
    relax2, static2, _ = _chain(structure, "hBN", tmp_path / "runs", asymmetric=True)
    assert _calls(tmp_path) == 2
    assert relax2["provenance"]["run_dir"] == relax["provenance"]["run_dir"]
    assert static2["energy_eV"] == static["energy_eV"]


def test_mos2_chain_gap(ref, tmp_path, monkeypatch):
    src = ref / "MoS2_monolayer_optB86b"
    monkeypatch.setenv("HETERO_VASP_CMD", str(fake_vasp(tmp_path, src, ["vasprun.xml", "CONTCAR", "DOSCAR"])))
    structure = Structure.from_file(src / "POSCAR")
    relax, static, dos = _chain(structure, "MoS2", tmp_path / "runs")
    vr = _vasprun(src / "vasprun.xml")  # the reference run (MPInterfaces' test data)
    assert relax["energy_eV"] == pytest.approx(vr.final_energy)
    assert relax["n_ionic_steps"] == len(vr.ionic_steps) and relax["converged"] is True
    assert relax["forces_max_eV_A"] == pytest.approx(0.00785, abs=1e-4)
    final = Structure.from_dict(relax["structure"])
    assert np.allclose(final.lattice.matrix, vr.final_structure.lattice.matrix)
    res = json.loads((Path(static["provenance"]["run_dir"]) / "result.json").read_text())
    assert res["valence"] == [12.0, 6.0, 6.0]  # Mo_pv, S (vasprun atominfo; no POTCAR here)
    assert res["core_electrons"] == [30.0, 10.0, 10.0]
    assert res["dos_projected"] is False  # the reference ran without LORBIT: per-atom DOS unknown (NaN)
    assert np.isnan(np.load(static["files"]["dos"])["per_atom"]).all()
    gap_e = vr.eigenvalue_band_properties[0]
    assert 1.5 < gap_e < 1.9
    assert dos["is_metal"] is False
    # the DOS document carries the eigenvalue gap (the MoS2 monolayer's PBE-like gap, 1.5-1.9 eV)
    assert dos["band_gap_eV"] == pytest.approx(gap_e)
    assert dos["n_valence"] == pytest.approx(24.0)


def test_static_asks_for_density_and_potential(ref, tmp_path, monkeypatch):
    """Default outputs: LCHARG + LAECHG + LVHAR + LORBIT; a requested CHGCAR that VASP did not write is
    an OutputParseError naming it, and no result.json is written (a re-run will not reuse numbers)."""
    src = ref / "hBN_monolayer_bands"
    monkeypatch.setenv("HETERO_VASP_CMD", str(fake_vasp(tmp_path, src, ["vasprun.xml", "OUTCAR", "CONTCAR"])))
    eng = get_engine(**ENGINE)
    structure = Structure.from_file(src / "POSCAR")
    with pytest.raises(OutputParseError, match="CHGCAR"):
        eng.static(structure, tmp_path / "runs", asymmetric_slab=True)
    (folder,) = list((tmp_path / "runs").iterdir())
    inc = Incar.from_file(folder / "INCAR")
    assert inc["LCHARG"] is True and inc["LAECHG"] is True and inc["LVHAR"] is True and inc["LORBIT"] == 11
    assert inc["LDIPOL"] is True and inc["IDIPOL"] == 3
    assert not (folder / "result.json").exists()


def test_cdd_fragment_inputs_on_ab_grid(ref, tmp_path, monkeypatch):
    """The CDD maker's call: settings of the AB run + gpts -> NGXF/NGYF/NGZF pinned, output tags reset."""
    src = ref / "hBN_monolayer_bands"
    monkeypatch.setenv("HETERO_VASP_CMD", str(fake_vasp(tmp_path, src, ["vasprun.xml", "CONTCAR"])))
    eng = get_engine(**ENGINE)
    structure = Structure.from_file(src / "POSCAR")
    ab_settings = eng.static(structure, tmp_path / "ab", outputs=("dos",))["settings"]
    frag = Structure.from_sites([structure[1]])
    settings = dict(ab_settings, spinpol=True)
    with pytest.raises(OutputParseError):  # outputs are h-BN's, not the N fragment's: refused
        eng.static(frag, tmp_path / "frag", outputs=("density",), gpts=[36, 36, 300], settings_override=settings)
    (folder,) = list((tmp_path / "frag").iterdir())
    inc = Incar.from_file(folder / "INCAR")
    assert (inc["NGXF"], inc["NGYF"], inc["NGZF"]) == (36, 36, 300)
    assert inc["ISPIN"] == 2 and inc["LAECHG"] is True
    assert "LORBIT" not in inc and "NEDOS" not in inc


def test_truncated_vasprun_is_an_error(ref, tmp_path, monkeypatch):
    src = ref / "hBN_monolayer_bands"
    monkeypatch.setenv("HETERO_VASP_CMD", str(fake_vasp(tmp_path, src, ["vasprun.xml"], truncate="vasprun.xml")))
    eng = get_engine(**ENGINE)
    with pytest.raises(OutputParseError, match="truncated"):
        eng.relax(Structure.from_file(src / "POSCAR"), tmp_path / "runs")
    assert not list((tmp_path / "runs").glob("*/result.json"))


def test_fixed_atoms_and_missing_binary(tmp_path, monkeypatch):
    monkeypatch.setenv("HETERO_VASP_CMD", str(tmp_path / "no_such_vasp"))
    from pymatgen.core import Lattice

    slab = Structure(Lattice.hexagonal(3.22, 25.0), ["S", "V", "S", "Li"],
                     [[2 / 3, 1 / 3, 0.44], [0, 0, 0.5], [1 / 3, 2 / 3, 0.56], [0, 0, 0.64]])
    eng = get_engine(**ENGINE)
    with pytest.raises(RuntimeError, match="not found") as err:
        eng.relax(slab, tmp_path / "runs", fixed=[0, 1], stacked=True)
    (folder,) = list((tmp_path / "runs").iterdir())
    assert str(folder) in str(err.value)
    poscar = (folder / "POSCAR").read_text()
    assert "Selective dynamics" in poscar
    s = Structure.from_file(folder / "POSCAR")
    assert [sp.symbol for sp in s.species] == ["S", "V", "S", "Li"]  # order kept (indices stay valid)
    assert list(s.site_properties["selective_dynamics"][0]) == [False] * 3
    assert list(s.site_properties["selective_dynamics"][3]) == [True] * 3
    inc = Incar.from_file(folder / "INCAR")
    assert inc["IVDW"] == 12 and inc["ISPIN"] == 2


def test_neb_inputs_and_missing_binary(tmp_path, monkeypatch):
    monkeypatch.setenv("HETERO_VASP_CMD", str(tmp_path / "no_such_vasp"))
    from pymatgen.core import Lattice

    images = []
    for i in range(4):
        s = Structure(Lattice.hexagonal(3.22, 25.0), ["V", "S", "S", "Li"],
                      [[0, 0, 0.5], [1 / 3, 2 / 3, 0.56], [2 / 3, 1 / 3, 0.44], [0.1 * i, 0, 0.64]])
        s.add_site_property("selective_dynamics", [[j == 3] * 3 for j in range(4)])
        images.append(s)
    eng = get_engine(**ENGINE)
    with pytest.raises(RuntimeError, match="not found"):
        eng.neb(images, [-10.0, -10.1], tmp_path / "runs", asymmetric_slab=True)
    (folder,) = list((tmp_path / "runs").iterdir())
    inc = Incar.from_file(folder / "INCAR")
    assert inc["IMAGES"] == 2 and inc["LCLIMB"] is True and inc["LDIPOL"] is True
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == ["00", "01", "02", "03"]
    mid = Structure.from_file(folder / "01" / "POSCAR")
    assert list(mid.site_properties["selective_dynamics"][0]) == [False] * 3
    assert math.isclose(mid.frac_coords[3][0], 0.1, abs_tol=1e-6)
