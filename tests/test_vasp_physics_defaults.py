"""VASP physics defaults of issue 11 (section 8): ENCUT >= 1.3 x the largest ENMAX of the POTCARs in use, the ELF
(LELF -> ELFCAR -> elf.npz, as the GPAW ELF step writes it), and the stated starting moments of the Cu2V2O7 and
V5S8 campaigns.

POTCARs are licensed and absent here. The ENMAX tests write a fake PMG_VASP_PSP_DIR whose POTCAR files are
SYNTHETIC HEADERS for this check, not real potentials: only the lines pymatgen's PotcarSingle reads (TITEL,
VRHFIN, LEXCH, POMASS/ZVAL, ENMAX) and one number of "data"; their ENMAX values are made up for the test.
pymatgen checks POTCARs against its table of known ones only with a warning (UnknownPotcarWarning), which the
tests expect.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("atomate2")

from pymatgen.core import SETTINGS, Lattice, Structure  # noqa: E402
from pymatgen.io.vasp import Incar, VolumetricData  # noqa: E402
from pymatgen.io.vasp.inputs import UnknownPotcarWarning  # noqa: E402

from hetero.engines import vasp as ve  # noqa: E402
from hetero.engines.vasp_outputs import OutputParseError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MOCK = Path(__file__).with_name("mock_vasp.py")


def li2o() -> Structure:  # bulk antifluorite Li2O (no vacuum): POTCARs Li_sv and O in atomate2's base set
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.62), ["Li", "O"], [[0.25, 0.25, 0.25], [0, 0, 0]])


def fake_psp_dir(root: Path, enmax: dict[str, float], functional_dir: str = "POT_GGA_PAW_PBE_54") -> Path:
    """PMG_VASP_PSP_DIR layout (<dir>/<functional>/<symbol>/POTCAR) of SYNTHETIC POTCAR headers, not potentials."""
    for symbol, e in enmax.items():
        element = symbol.split("_")[0]
        d = root / functional_dir / symbol
        d.mkdir(parents=True)
        (d / "POTCAR").write_text(
            f"  PAW_PBE {symbol} 01Jan2000\n 1.00000000000000000\n parameters from PSCTR are:\n"
            f"   VRHFIN ={element}: synthetic header for the hetero ENMAX test, not a potential\n"
            f"   LEXCH  = PE\n   TITEL  = PAW_PBE {symbol} 01Jan2000\n"
            f"   POMASS =    1.000; ZVAL   =    1.000    mass and valenz\n"
            f"   ENMAX  =  {e:.3f}; ENMIN  =  {0.75 * e:.3f} eV\n"
            " END of PSCTR-controll parameters\n synthetic data block\n 0.0\n End of Dataset\n")
    return root


@pytest.fixture
def no_potcars(monkeypatch):
    monkeypatch.delenv("PMG_VASP_PSP_DIR", raising=False)
    monkeypatch.setitem(SETTINGS, "PMG_VASP_PSP_DIR", None)
    monkeypatch.delenv("HETERO_VASP_PARALLEL", raising=False)


def use_psp(monkeypatch, path: Path) -> None:
    # pymatgen reads PMG_VASP_PSP_DIR into SETTINGS at import: a test sets both
    monkeypatch.setenv("PMG_VASP_PSP_DIR", str(path))
    monkeypatch.setitem(SETTINGS, "PMG_VASP_PSP_DIR", str(path))


# ------------------------------------------------------------------ ENCUT >= 1.3 x ENMAX
def test_without_potcars_encut_is_the_presets_and_the_check_waits(no_potcars, tmp_path):
    s = li2o()
    settings = ve.task_settings(s, "relax", "fast", cell=True)
    assert settings["potcar"] == ["Li_sv", "O"] and settings["incar"]["ENCUT"] == 520  # fast preset: MP's 520 eV
    eng = ve.VaspEngine("fast")
    res = eng.resolve(s)
    eng.translate(res, s, "relax", cell=True)
    assert res.sources["cutoff_eV"] == "preset" and res.sources["encut_check"].startswith("waits for POTCARs")
    d = ve.write_inputs(s, "relax", tmp_path / "relax", "fast", cell=True)
    text = (d / "INCAR").read_text()
    assert (d / "POTCAR.spec").exists() and Incar.from_file(d / "INCAR")["ENCUT"] == 520
    assert "# hetero: ENCUT = 520 eV from the preset; the check ENCUT >= 1.3 x the largest ENMAX" in text
    assert "(Li_sv, O, PBE_54) waits for POTCARs (PMG_VASP_PSP_DIR)" in text


def test_encut_raised_to_1p3_x_the_largest_enmax_with_the_source_recorded(no_potcars, tmp_path, monkeypatch):
    # synthetic ENMAX: 1.3 x 444.4 = 577.72 -> 578 eV, above the preset's 520 eV; O's 1.3 x 300 = 390 does not count
    use_psp(monkeypatch, fake_psp_dir(tmp_path / "psp", {"Li_sv": 444.4, "O": 300.0}))
    s = li2o()
    eng = ve.VaspEngine("fast")
    res = eng.resolve(s)
    with pytest.warns(UnknownPotcarWarning):  # pymatgen does not know the synthetic files: a warning, not an error
        settings = eng.translate(res, s, "static", outputs=("dos",))
    assert settings["incar"]["ENCUT"] == 578 and settings["dos"]["incar"]["ENCUT"] == 578  # the non-SCF DOS too
    assert res.values["cutoff_eV"] == 578.0
    assert res.sources["cutoff_eV"] == ("model: 1.3 x ENMAX of Li_sv (444.4 eV, PBE_54 POTCAR), above the preset "
                                        "value 520 eV")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownPotcarWarning)
        assert ve.encut_floor(["Li_sv", "O"], "PBE_54") == ("Li_sv", 444.4, 578)
        # the provenance of a real task records it (dry run: inputs only, then InputsWritten)
        with pytest.raises(ve.InputsWritten) as stop:
            ve.VaspEngine("fast", dry_run=True).static(s, tmp_path / "runs")
        folder = stop.value.folder
        inc = Incar.from_file(folder / "INCAR")
        assert inc["ENCUT"] == 578 and (folder / "POTCAR").exists() and not (folder / "POTCAR.spec").exists()
        assert "# hetero: ENCUT = 578 eV >= 1.3 x ENMAX of Li_sv (444.4 eV) = 578 eV: checked" in (folder / "INCAR").read_text()
        # without the raise (preset above the floor) the task keeps the preset's cutoff and says it was checked
        ok = eng.resolve(s, None)
        ok.values["cutoff_eV"] = 600.0
        assert eng.translate(ok, s, "relax")["incar"]["ENCUT"] == 600
        assert ok.sources["encut_check"] == "1.3 x ENMAX of Li_sv (444.4 eV, PBE_54 POTCAR) = 578 eV"


def test_missing_potcar_leaves_encut_and_the_guard_names_the_variable(no_potcars, tmp_path, monkeypatch):
    use_psp(monkeypatch, fake_psp_dir(tmp_path / "psp", {"Li_sv": 444.4}))  # no O POTCAR
    s = li2o()
    settings = ve.task_settings(s, "relax", "fast")
    assert settings["incar"]["ENCUT"] == 520  # no ENMAX for O: nothing decided from half the POTCARs
    monkeypatch.delenv("HETERO_VASP_ALLOW_POTCAR_SPEC", raising=False)
    with pytest.raises(ve.PotcarMissingError, match="PMG_VASP_PSP_DIR"):
        ve.VaspEngine("fast").check_potcars(settings)


# ------------------------------------------------------------------ ELF
def test_elf_static_sets_lelf_with_npar_1_and_kpar_1_over_the_hpc_profile(no_potcars, tmp_path, monkeypatch):
    monkeypatch.setenv("HETERO_VASP_PARALLEL", "NCORE=4 KPAR=2")
    s = li2o()
    assert Incar.from_file(ve.write_inputs(s, "static", tmp_path / "st", "fast") / "INCAR").get("LELF") is None
    d = ve.write_inputs(s, "elf", tmp_path / "elf", "fast")
    inc = Incar.from_file(d / "INCAR")
    assert inc["LELF"] is True and inc["NPAR"] == 1 and inc["KPAR"] == 1 and "NCORE" not in inc
    assert "NPAR = 1, KPAR = 1: LELF" in (d / "INCAR").read_text()
    relax = Incar.from_file(ve.write_inputs(s, "relax", tmp_path / "r", "fast") / "INCAR")
    assert relax["NCORE"] == 4 and relax["KPAR"] == 2 and "LELF" not in relax  # other steps keep the profile's
    # the parallel tags are machine settings: the hashed INCAR has LELF but not NPAR/KPAR
    hashed = ve.task_settings(s, "elf", "fast")["incar"]
    assert hashed["LELF"] is True and "NPAR" not in hashed and "KPAR" not in hashed
    assert ve.Capability.ELF in ve.VaspEngine.capabilities


def _mock_env(monkeypatch, ref) -> None:
    monkeypatch.setenv("HETERO_VASP_CMD", f"{sys.executable} {MOCK}")
    monkeypatch.setenv("HETERO_VASP_ALLOW_POTCAR_SPEC", "1")
    monkeypatch.setenv("HETERO_CUSTODIAN_POLL_S", "0.1")
    monkeypatch.setenv("MOCK_VASP_TEMPLATES", str(ref))
    monkeypatch.delenv("MOCK_VASP_REQUIRE", raising=False)


@pytest.mark.parametrize("spin", ["on", "off"])
def test_elfcar_read_into_elf_npz_like_gpaw(no_potcars, ref, tmp_path, monkeypatch, spin):
    """A static asking for the ELF on mock VASP (its ELFCAR is a stated bounded model, see tests/mock_vasp.py):
    elf.npz holds `elf` on the ELFCAR grid and `cell`, as GPAW's; ISPIN 2 keeps VASP's two channels."""
    from pymatgen.io.vasp import Elfcar

    _mock_env(monkeypatch, ref)
    vn = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.14), ["V", "N"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    vn = vn.get_primitive_structure()
    res = ve.VaspEngine("fast", overrides={"spin": spin}).static(vn, tmp_path / "runs", outputs=("elf",))
    folder = Path(res.provenance.run_dir)
    assert Incar.from_file(folder / "INCAR")["LELF"] is True and res.files["elf"] == str(folder / "elf.npz")
    data = np.load(res.files["elf"])
    grid = Elfcar.from_file(str(folder / "ELFCAR")).data
    if spin == "on":
        assert data["elf"].shape[0] == 2 and list(data["channels"]) == ["up", "down"]
        assert np.array_equal(data["elf"][1], grid["spin_down"])
    else:
        assert data["elf"].ndim == 3 and list(data["channels"]) == ["total"]
        assert np.array_equal(data["elf"], grid["total"])
    assert 0 <= data["elf"].min() and data["elf"].max() < 1 and np.allclose(data["cell"], vn.lattice.matrix)
    # the ELF figure draws it (spin channels averaged)
    from hetero.plots.elf import plot_elf_slice

    elf = data["elf"].mean(axis=0) if data["elf"].ndim == 4 else data["elf"]
    _, info = plot_elf_slice(elf, data["cell"], vn.cart_coords[-1], vn, title="mock")
    assert 0 < info["max"] < 1


def test_elfcar_outside_0_1_is_not_an_elf(tmp_path):
    s = li2o()
    VolumetricData(s, {"total": np.full((4, 4, 4), 2.0)}).write_file(str(tmp_path / "ELFCAR"))
    with pytest.raises(OutputParseError, match="not an ELF"):
        ve._elf_outputs(tmp_path, [sp.symbol for sp in s.species], s)
    with pytest.raises(OutputParseError, match="no ELFCAR"):
        ve._elf_outputs(tmp_path / "none", ["Li"], s)


def test_mock_refuses_lelf_without_npar_1(no_potcars, ref, tmp_path, monkeypatch):
    _mock_env(monkeypatch, ref)
    d = ve.write_inputs(li2o(), "elf", tmp_path / "elf", "fast")
    text = (d / "INCAR").read_text().replace("NPAR = 1", "NPAR = 4")
    (d / "INCAR").write_text(text)
    run = subprocess.run([sys.executable, str(MOCK)], cwd=d, capture_output=True, text=True, timeout=600,
                         env={**os.environ})
    assert run.returncode == 1 and "NPAR = 1, KPAR = 1 (LELF)" in run.stdout and not (d / "ELFCAR").exists()


# ------------------------------------------------------------------ starting moments of the magnetic seeds
@pytest.mark.parametrize("campaign, elements, want", [
    ("v2o5_cu2v2o7_li", ["V", "O", "Cu", "Li"], {"V": 1.0, "Cu": 1.0}),
    ("v5s8_sb2s3_k", ["V", "S", "Sb", "K"], {"V": 1.0}),
])
def test_magnetic_seed_campaigns_state_their_starting_moments(no_potcars, campaign, elements, want, tmp_path):
    """Cu2V2O7 and V5S8 campaigns state a ferromagnetic start (1 muB on V and Cu) with the reason in the file; it
    reaches VASP's MAGMOM, and GPAW's inputs stay those of its interface_lcao preset (same task hash)."""
    from hetero.campaigns import load_campaign
    from hetero.engines.gpaw import GpawEngine
    from hetero.schemas import settings_hash

    path = ROOT / "workflows" / f"{campaign}.yaml"
    camp = load_campaign(path)
    assert camp.overrides["magmoms"] == want
    text = path.read_text()
    assert "ferromagnetic" in text.lower() and "antiferromagnetic" in text.lower()  # the choice and why not AFM
    s = Structure(Lattice.orthorhombic(6, 6, 25), elements, [[0.1 * i, 0.2 * i, 0.4 + 0.05 * i] for i in range(len(elements))])
    d = ve.write_inputs(s, "relax", tmp_path / "relax", camp.preset, overrides=camp.overrides)
    inc = Incar.from_file(d / "INCAR")
    assert inc["ISPIN"] == 2
    mag = dict(zip(elements, inc["MAGMOM"]))
    assert all(mag[e] == pytest.approx(m) for e, m in want.items())  # not the MP start (V 5, Cu 0.6)
    preset_only = {k: v for k, v in camp.overrides.items() if k != "magmoms"}
    g_camp, g_preset = GpawEngine(camp.preset, overrides=camp.overrides), GpawEngine(camp.preset, overrides=preset_only)
    t_camp = g_camp.translate(g_camp.resolve(s), s, "relax")
    t_preset = g_preset.translate(g_preset.resolve(s), s, "relax")
    assert t_camp == t_preset and settings_hash(t_camp) == settings_hash(t_preset)
