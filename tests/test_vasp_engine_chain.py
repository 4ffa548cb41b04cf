"""The VASP engine's whole path with VASP replaced by a small script (mock VASP).

The script checks the INCAR it is given (a failed check exits non-zero, as a VASP abort would) and
copies real VASP outputs from ../shared/reference/vasp/<case>/ into the run folder. Those were written by
other public projects' VASP runs (see that folder's README); they are not results of ours. The input
structure is read from the reference POSCAR so the copied outputs belong to it. Custodian runs the
script with atomate2's handlers and validators; the references lack OSZICAR (and MoS2 an OUTCAR), so the
script creates empty ones for custodian's file validator. No POTCARs here: HETERO_VASP_ALLOW_POTCAR_SPEC.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("atomate2")
pytest.importorskip("custodian")

from pymatgen.core import Lattice, Structure  # noqa: E402
from pymatgen.io.vasp import Incar, Vasprun  # noqa: E402

from hetero.analysis.dos import reduce_dos  # noqa: E402
from hetero.engines import Capability, get_engine  # noqa: E402
from hetero.engines.base import EngineRunError, OutputValidationError  # noqa: E402
from hetero.engines.settings import ModelFacts  # noqa: E402
from hetero.engines.vasp import InputsWritten, PotcarMissingError, VaspEngine, dos_arrays, electrons_below_fermi  # noqa: E402
from hetero.engines.vasp_outputs import OutputParseError, load_vasprun  # noqa: E402
from hetero.schemas import CalcResult  # noqa: E402
from _refdata import reference_vasp_dir  # noqa: E402




def fake_vasp(tmp_path: Path, src: Path, files: list[str], expect: dict[str, str] | None = None,
              truncate: str | None = None, name: str = "", expect_dos: dict[str, str] | None = None) -> Path:
    """A 'VASP binary': checks ``expect`` (INCAR tag -> value as written) against its INCAR, copies the
    reference outputs (read-only originals) and counts its calls in <tmp_path>/calls.txt.
    A non-SCF run (ICHARG = 11) is checked against ``expect_dos`` and must find the CHGCAR the engine
    copied; an SCF run leaves a placeholder CHGCAR (never parsed) for it. ``truncate``: copy that file
    cut in half instead (a run killed mid-write)."""
    script = tmp_path / f"fake_vasp_{src.name}{name}.sh"

    def checks(tags):
        return [f"grep -qx '{t} = {v}' INCAR || {{ echo 'mock VASP: INCAR lacks {t} = {v}'; exit 3; }}"
                for t, v in (tags or {}).items()]

    lines = ["#!/bin/sh", f"echo run >> '{tmp_path / 'calls.txt'}'", "if grep -qx 'ICHARG = 11' INCAR; then",
             "  [ -s CHGCAR ] || { echo 'mock VASP: non-SCF run without CHGCAR'; exit 4; }",
             *["  " + c for c in checks(expect_dos)], "else", *["  " + c for c in checks(expect)],
             "  echo 'placeholder written by the mock VASP' > CHGCAR", "fi"]
    for f in files:
        if f == truncate:
            lines.append(f"head -c {(src / f).stat().st_size // 2} '{src / f}' > '{f}'")
        else:
            lines.append(f"cp '{src / f}' '{f}' && chmod u+w '{f}'")
    lines += ["[ -e OUTCAR ] || : > OUTCAR", "[ -e OSZICAR ] || : > OSZICAR", "echo ' running on    1 total cores'"]
    script.write_text("\n".join(lines) + "\n")
    script.chmod(0o755)
    return script


def _calls(tmp_path: Path) -> int:
    p = tmp_path / "calls.txt"
    return len(p.read_text().splitlines()) if p.exists() else 0


@pytest.fixture(autouse=True)
def _mock_env(monkeypatch):
    monkeypatch.setenv("HETERO_CUSTODIAN_POLL_S", "0.1")
    monkeypatch.setenv("HETERO_VASP_ALLOW_POTCAR_SPEC", "1")
    monkeypatch.delenv("HETERO_VASP_CMD", raising=False)
    monkeypatch.delenv("HETERO_VASP_PARALLEL", raising=False)


def _vasprun(path: Path) -> Vasprun:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Vasprun(str(path), parse_potcar_file=False)


def _incar(result) -> Incar:
    return Incar.from_file(Path(result.provenance.run_dir) / "INCAR")


def test_get_engine_returns_vasp_engine():
    eng = get_engine("vasp", "fast")
    assert isinstance(eng, VaspEngine) and eng.name == "vasp" and eng.label == "vasp"
    assert Capability.ELF in eng.capabilities and Capability.ALL_ELECTRON_DENSITY in eng.capabilities
    with pytest.raises(ValueError, match="valid engines"):
        get_engine("abinit")


def test_mos2_relax_static_dos(ref, tmp_path, monkeypatch):
    src = ref / "MoS2_monolayer_optB86b"
    structure = Structure.from_file(src / "POSCAR")
    eng = VaspEngine("fast")
    monkeypatch.setenv("HETERO_VASP_CMD", str(fake_vasp(
        tmp_path, src, ["vasprun.xml", "CONTCAR"], {"ISIF": "2", "IBRION": "2", "NSW": "60", "LCHARG": "False"}, name="r")))
    relax = eng.relax(structure, tmp_path / "runs")
    vr = _vasprun(src / "vasprun.xml")  # the reference run (MPInterfaces' test data), not ours
    assert isinstance(relax, CalcResult) and relax.kind == "relax" and not relax.cached
    assert relax.energy_eV == pytest.approx(vr.final_energy) and relax.fermi_eV == pytest.approx(vr.efermi)
    assert relax.n_ionic_steps == len(vr.ionic_steps) == 6 and relax.converged is True
    assert relax.forces_max_eV_A == pytest.approx(0.00785, abs=1e-4)
    assert np.allclose(Structure.from_dict(relax.structure).lattice.matrix, vr.final_structure.lattice.matrix)
    prov = relax.provenance
    assert prov.engine == "vasp" and prov.settings_hash and prov.settings["kpoints"][2] == 1
    assert prov.neutral_settings["spin"] == "off" and prov.settings_sources["spin"].startswith("model")

    monkeypatch.setenv("HETERO_VASP_CMD", str(fake_vasp(
        tmp_path, src, ["vasprun.xml", "CONTCAR"], {"NSW": "0", "LCHARG": "True"}, name="s",
        expect_dos={"LORBIT": "11", "ISMEAR": "-5", "NEDOS": "2001", "LCHARG": "False"})))
    static = eng.static(Structure.from_dict(relax.structure), tmp_path / "runs", outputs=("dos",))
    out = static.outputs
    run_dir = Path(static.provenance.run_dir)
    assert static.files["dos_vasprun"] == str(run_dir / "dos" / "vasprun.xml")  # the DOS is the non-SCF run's
    from pymatgen.io.vasp import Kpoints

    assert Kpoints.from_file(run_dir / "dos" / "KPOINTS").kpts[0] == (10, 10, 1)  # 2 x the SCF 5 x 5 x 1
    assert static.provenance.settings["dos"]["kpoints"] == [10, 10, 1]
    assert out.valence == [12.0, 6.0, 6.0]  # Mo_pv, S (vasprun atominfo; no POTCAR here)
    assert out.core_electrons == [30.0, 10.0, 10.0]
    assert out.gpts == [int(vr.parameters[k]) for k in ("NGXF", "NGYF", "NGZF")]
    assert out.dos_projected is False  # the reference ran without LORBIT: per-atom DOS unknown (NaN)
    assert out.dos_fermi_eV == pytest.approx(vr.efermi) and out.dos_reference.startswith("E_F")
    assert 1.5 < out.eigen_gap_eV < 1.9  # the MoS2 monolayer's PBE-like gap
    assert out.n_electrons_below_fermi == pytest.approx(24.0, abs=0.5)  # NELECT
    inc = _incar(static)
    assert "LAECHG" not in inc and "LVHAR" not in inc and "LORBIT" not in inc  # only the DOS was asked for
    data = np.load(static.files["dos"])
    assert np.isnan(data["per_atom"]).all()
    doc = reduce_dos(data["energies"], data["total"], data["per_atom"], ["Mo", "S", "S"], eigen_gap_eV=out.eigen_gap_eV)
    assert doc["is_metal"] is False and doc["band_gap_eV"] == pytest.approx(vr.eigenvalue_band_properties[0])
    assert _calls(tmp_path) == 3  # relax, SCF, non-SCF DOS

    # the same calls again reuse both folders (result.json): VASP is not started
    again = eng.relax(structure, tmp_path / "runs")
    assert again.cached and again.provenance.run_dir == prov.run_dir and _calls(tmp_path) == 3
    assert eng.static(Structure.from_dict(relax.structure), tmp_path / "runs", outputs=("dos",)).cached


def test_hbn_projected_dos(ref):
    """VASP's projections inside the PAW spheres miss the interstitial: their sum is below the total DOS;
    the total integrates to the 8 valence electrons of h-BN up to E_F."""
    src = ref / "hBN_monolayer_bands"
    vr = load_vasprun(src / "vasprun.xml")
    arrays, projected = dos_arrays(vr, src / "vasprun.xml", 2)
    assert projected and arrays["per_atom"].shape == (2, arrays["energies"].size)
    assert 0 < np.nansum(arrays["per_atom"]) < arrays["total"].sum()
    assert electrons_below_fermi(arrays["energies"], arrays["total"]) == pytest.approx(8.0, abs=0.1)


def test_nan_forces_are_refused(ref, tmp_path, monkeypatch):
    """The h-BN reference is a hybrid band run whose vasprun holds NaN forces: never a result."""
    src = ref / "hBN_monolayer_bands"
    monkeypatch.setenv("HETERO_VASP_CMD", str(fake_vasp(tmp_path, src, ["vasprun.xml", "OUTCAR", "CONTCAR"])))
    with pytest.raises(OutputValidationError, match="forces_max_eV_A is nan"):
        VaspEngine("fast").relax(Structure.from_file(src / "POSCAR"), tmp_path / "runs")
    assert not list((tmp_path / "runs").glob("*/result.json"))


def test_static_asks_for_density_and_potential(ref, tmp_path, monkeypatch):
    """density + potential + dos: LCHARG + LAECHG + LVHAR + LORBIT; a requested CHGCAR that VASP did not
    write is an OutputParseError naming it, and no result.json is written."""
    src = ref / "MoS2_monolayer_optB86b"
    monkeypatch.setenv("HETERO_VASP_CMD", str(fake_vasp(tmp_path, src, ["vasprun.xml", "CONTCAR"],
                                                        {"LAECHG": "True", "LVHAR": "True", "LDIPOL": "True"})))
    structure = Structure.from_file(src / "POSCAR")
    with pytest.raises(OutputParseError, match="CHGCAR"):
        VaspEngine("fast").static(structure, tmp_path / "runs", ModelFacts(asymmetric=True),
                                  outputs=("density", "potential", "dos"))
    (folder,) = list((tmp_path / "runs").iterdir())
    inc = Incar.from_file(folder / "INCAR")
    assert inc["LCHARG"] is True and inc["IDIPOL"] == 3 and "LORBIT" not in inc
    # the slab ends at the cell boundary (S at z 0.865 and 1.0): the dipole centre is its middle, not the mean of z
    s = Structure.from_file(folder / "POSCAR")
    z = s.frac_coords[:, 2] % 1.0
    assert not (0.2 < inc["DIPOL"][2] < 0.8) and min(abs(inc["DIPOL"][2] - z)) < 0.1
    assert not (folder / "result.json").exists() and not (folder / "dos").exists()  # failed before the DOS run


def test_cdd_fragment_inputs_on_ab_grid(ref, tmp_path, monkeypatch):
    """A CDD fragment: the AB run's settings (static like=) with NGXF/NGYF/NGZF pinned to AB's density
    grid, spin-polarised when asked, and only the density among the outputs."""
    src = ref / "MoS2_monolayer_optB86b"
    monkeypatch.setenv("HETERO_VASP_CMD", str(fake_vasp(tmp_path, src, ["vasprun.xml", "CONTCAR"])))
    eng = VaspEngine("fast")
    structure = Structure.from_file(src / "POSCAR")
    ab = eng.static(structure, tmp_path / "ab", outputs=("dos",))
    assert ab.outputs.gpts == [48, 48, 360]
    frag = Structure.from_sites([structure[0]])
    with pytest.raises(OutputParseError, match="not the input"):  # outputs are MoS2's, not the Mo fragment's: refused
        eng.static(frag, tmp_path / "frag", outputs=("density",), like=ab, spin="on")
    (folder,) = list((tmp_path / "frag").iterdir())
    inc = Incar.from_file(folder / "INCAR")
    assert (inc["NGXF"], inc["NGYF"], inc["NGZF"]) == (48, 48, 360)
    assert inc["ISPIN"] == 2 and inc["MAGMOM"] == [1.0] and inc["LAECHG"] is True
    assert "LORBIT" not in inc and "NEDOS" not in inc
    assert inc["ENCUT"] == _incar(ab)["ENCUT"] and json.loads((folder / "task.json").read_text())["gpts"] == [48, 48, 360]


def test_truncated_vasprun_fails_the_validator(ref, tmp_path, monkeypatch):
    src = ref / "MoS2_monolayer_optB86b"
    monkeypatch.setenv("HETERO_VASP_CMD", str(fake_vasp(tmp_path, src, ["vasprun.xml", "CONTCAR"], truncate="vasprun.xml")))
    with pytest.raises(EngineRunError, match="VasprunXMLValidator"):
        VaspEngine("fast").relax(Structure.from_file(src / "POSCAR"), tmp_path / "runs")
    assert not list((tmp_path / "runs").glob("*/result.json"))


def test_incar_check_of_the_mock_fails_the_run(ref, tmp_path, monkeypatch):
    """The mock exits non-zero when its INCAR lacks a tag (here IVDW 12 on a non-stack): custodian stops."""
    src = ref / "MoS2_monolayer_optB86b"
    monkeypatch.setenv("HETERO_VASP_CMD", str(fake_vasp(tmp_path, src, ["vasprun.xml", "CONTCAR"], {"IVDW": "12"})))
    with pytest.raises(EngineRunError, match="failed under custodian"):
        VaspEngine("fast").relax(Structure.from_file(src / "POSCAR"), tmp_path / "runs")
    monkeypatch.setenv("HETERO_VASP_CMD", str(fake_vasp(tmp_path, src, ["vasprun.xml", "CONTCAR"], {"IVDW": "12"}, name="2")))
    done = VaspEngine("fast").relax(Structure.from_file(src / "POSCAR"), tmp_path / "runs2", ModelFacts(van_der_waals=True))
    assert done.provenance.settings["incar"]["IVDW"] == 12


def test_missing_binary_and_potcar_guard(tmp_path, monkeypatch):
    slab = Structure(Lattice.hexagonal(3.22, 25.0), ["S", "V", "S", "Li"],
                     [[2 / 3, 1 / 3, 0.44], [0, 0, 0.5], [1 / 3, 2 / 3, 0.56], [0, 0, 0.64]])
    monkeypatch.setenv("HETERO_VASP_CMD", str(tmp_path / "no_such_vasp"))
    with pytest.raises(EngineRunError, match="not found.*dry-run"):
        VaspEngine("fast").relax(slab, tmp_path / "runs")
    assert not (tmp_path / "runs").exists()  # nothing written before the checks
    monkeypatch.delenv("HETERO_VASP_ALLOW_POTCAR_SPEC")
    monkeypatch.delenv("PMG_VASP_PSP_DIR", raising=False)
    from pymatgen.core import SETTINGS

    monkeypatch.setitem(SETTINGS, "PMG_VASP_PSP_DIR", None)
    with pytest.raises(PotcarMissingError, match="PMG_VASP_PSP_DIR.*PBE_54|PBE_54.*PMG_VASP_PSP_DIR"):
        VaspEngine("fast").relax(slab, tmp_path / "runs")
    empty = tmp_path / "psp"
    empty.mkdir()
    monkeypatch.setenv("PMG_VASP_PSP_DIR", str(empty))
    with pytest.raises(PotcarMissingError, match="not found under PMG_VASP_PSP_DIR"):
        VaspEngine("fast").relax(slab, tmp_path / "runs")


def test_dry_run_writes_inputs_and_the_real_run_reuses_the_folder(ref, tmp_path, monkeypatch):
    src = ref / "MoS2_monolayer_optB86b"
    structure = Structure.from_file(src / "POSCAR")
    structure.add_site_property("selective_dynamics", [[False] * 3, [True] * 3, [True] * 3])
    monkeypatch.delenv("HETERO_VASP_ALLOW_POTCAR_SPEC")
    with pytest.raises(InputsWritten) as written:
        VaspEngine("fast", dry_run=True).relax(structure, tmp_path / "runs")
    folder = written.value.folder
    poscar = Structure.from_file(folder / "POSCAR")
    assert [list(f) for f in poscar.site_properties["selective_dynamics"]] == [[False] * 3, [True] * 3, [True] * 3]
    assert (folder / "POTCAR.spec").exists() and not (folder / "result.json").exists() and _calls(tmp_path) == 0
    monkeypatch.setenv("HETERO_VASP_ALLOW_POTCAR_SPEC", "1")
    monkeypatch.setenv("HETERO_VASP_CMD", str(fake_vasp(tmp_path, src, ["vasprun.xml", "CONTCAR"])))
    done = VaspEngine("fast").relax(structure, tmp_path / "runs")
    assert Path(done.provenance.run_dir) == folder and _calls(tmp_path) == 1
    assert done.forces_max_eV_A < 0.00785 + 1e-6  # the fixed Mo atom's force is not counted


def test_neb_dry_run_inputs(tmp_path):
    images = []
    for i in range(4):
        s = Structure(Lattice.hexagonal(3.22, 25.0), ["V", "S", "S", "Li"],
                      [[0, 0, 0.5], [1 / 3, 2 / 3, 0.56], [2 / 3, 1 / 3, 0.44], [0.1 * i, 0, 0.64]])
        s.add_site_property("selective_dynamics", [[j == 3] * 3 for j in range(4)])
        images.append(s)
    with pytest.raises(InputsWritten) as written:
        VaspEngine("fast", dry_run=True).neb(images, [-10.0, -10.1], tmp_path / "runs", ModelFacts(asymmetric=True),
                                             neb={"neb_fmax_eV_A": 0.03})
    folder = written.value.folder
    inc = Incar.from_file(folder / "INCAR")
    assert inc["IMAGES"] == 2 and inc["LCLIMB"] is True and inc["LDIPOL"] is True and inc["POTIM"] == 0
    assert inc["EDIFFG"] == pytest.approx(-0.03)  # the campaign's neb block
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == ["00", "01", "02", "03"]
    mid = Structure.from_file(folder / "01" / "POSCAR")
    assert list(mid.site_properties["selective_dynamics"][0]) == [False] * 3
    assert mid.frac_coords[3][0] == pytest.approx(0.1)
