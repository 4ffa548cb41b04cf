"""VASP the way a cluster run fails: '*****' outputs, runs killed or stopped at the walltime, NEBs without
VTST, rank counts that VASP would abort on. VASP is the mock of test_vasp_engine_chain (a script that
copies real reference outputs); where a test needs an output the references do not have, it is a copy of
a real file with the change stated in the test."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("atomate2")
pytest.importorskip("custodian")

from pymatgen.core import Structure  # noqa: E402

from hetero.engines.base import EngineRunError, OutputValidationError  # noqa: E402
from hetero.engines.vasp import VaspEngine  # noqa: E402
from hetero.engines.vasp_outputs import OutputParseError, outcar_neb_image  # noqa: E402
from hetero.schemas import NebResult  # noqa: E402
from _refdata import reference_vasp_dir  # noqa: E402
from test_vasp_engine_chain import _calls, _mock_env, fake_vasp  # noqa: E402,F401 (fixture re-used)




@pytest.fixture
def mos2(ref) -> Path:
    return ref / "MoS2_monolayer_optB86b"


def _overflowed_copy(src: Path, dest: Path, what: str) -> Path:
    """The MoS2 vasprun.xml with one value of the final ionic step printed as VASP prints an overflow."""
    t = src.read_text()
    last = t.rfind("<calculation>")
    head, block = t[:last], t[last:]
    if what == "forces":
        i = block.find('<varray name="forces" >')
        block = block[:i] + block[i:].replace("0.00785092", "**********", 1)
    else:
        block = re.sub(r'(<i name="e_fr_energy">)[^<]*(</i>)', r"\1  ************ \2", block)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "vasprun.xml").write_text(head + block)
    (dest / "CONTCAR").write_text((src.parent / "CONTCAR").read_text())
    return dest


@pytest.mark.parametrize("what", ["forces", "energy"])
def test_overflowed_outputs_are_never_a_result(mos2, tmp_path, monkeypatch, what):
    src = _overflowed_copy(mos2 / "vasprun.xml", tmp_path / f"star_{what}", what)
    monkeypatch.setenv("HETERO_VASP_CMD", str(fake_vasp(tmp_path, src, ["vasprun.xml", "CONTCAR"])))
    with pytest.raises(OutputParseError, match=r"'\*\*\*\*\*' for " + ("forces" if what == "forces" else "e_fr_energy")):
        VaspEngine("fast").relax(Structure.from_file(mos2 / "POSCAR"), tmp_path / "runs")
    assert not list((tmp_path / "runs").glob("*/result.json"))


def test_restart_from_the_contcar_of_a_run_killed_at_the_walltime(mos2, tmp_path, monkeypatch):
    """Killed mid-write: vasprun.xml cut in half, CONTCAR of the last ionic step. The next run archives the
    outputs to interrupted-1/, starts from that CONTCAR and counts the restart."""
    structure = Structure.from_file(mos2 / "POSCAR")
    killed = tmp_path / "killed"
    killed.mkdir()
    contcar = structure.copy()
    contcar.translate_sites([1], [0, 0, 0.002])  # the geometry of the killed run's last step
    contcar.to(filename=str(killed / "CONTCAR"), fmt="poscar")
    (killed / "vasprun.xml").write_text((mos2 / "vasprun.xml").read_text())
    monkeypatch.setenv("HETERO_VASP_CMD", str(fake_vasp(tmp_path, killed, ["vasprun.xml", "CONTCAR"],
                                                        truncate="vasprun.xml", name="killed")))
    eng = VaspEngine("fast")
    with pytest.raises(EngineRunError, match="VasprunXMLValidator"):
        eng.relax(structure, tmp_path / "runs")
    (folder,) = list((tmp_path / "runs").iterdir())
    monkeypatch.setenv("HETERO_VASP_CMD", str(fake_vasp(tmp_path, mos2, ["vasprun.xml", "CONTCAR"], name="ok")))
    done = eng.relax(structure, tmp_path / "runs")
    assert Path(done.provenance.run_dir) == folder and done.restarts == 1 and _calls(tmp_path) == 2
    assert (folder / "interrupted-1" / "vasprun.xml").stat().st_size < (mos2 / "vasprun.xml").stat().st_size
    restarted_from = Structure.from_file(folder / "POSCAR")
    assert np.allclose(restarted_from.frac_coords, contcar.frac_coords, atol=1e-6)  # the killed run's CONTCAR
    assert json.loads((folder / "result.json").read_text())["restarts"] == 1


def test_walltime_stopcar_is_not_a_finished_run(mos2, tmp_path, monkeypatch):
    """custodian's WalltimeHandler leaves a STOPCAR and VASP ends cleanly but unfinished: no result is
    stored; the next run continues and counts the restart."""
    script = fake_vasp(tmp_path, mos2, ["vasprun.xml", "CONTCAR"], name="stopped")
    script.write_text(script.read_text() + "echo 'LSTOP = .TRUE.' > STOPCAR\n")
    monkeypatch.setenv("HETERO_VASP_CMD", str(script))
    eng = VaspEngine("fast")
    structure = Structure.from_file(mos2 / "POSCAR")
    with pytest.raises(EngineRunError, match="stopped before the walltime"):
        eng.relax(structure, tmp_path / "runs")
    (folder,) = list((tmp_path / "runs").iterdir())
    assert not (folder / "result.json").exists() and (folder / "interrupted-1" / "STOPCAR").exists()
    monkeypatch.setenv("HETERO_VASP_CMD", str(fake_vasp(tmp_path, mos2, ["vasprun.xml", "CONTCAR"], name="ok")))
    assert eng.relax(structure, tmp_path / "runs").restarts == 1


# ---------------------------------------------------------------------------------------------- NEB
def _image_outcar(ref: Path, forces: tuple[str, str, str], vtst: str | None, force_line: float | None) -> str:
    """The h-BN reference OUTCAR (real, 3 ions, NaN forces from its hybrid band run) with its last
    TOTAL-FORCE rows set to ``forces`` (one value per row, on z) and, for a VTST build, the banner and the
    'FORCES: max atom, RMS' line VTST writes into every image OUTCAR."""
    text = (ref / "hBN_monolayer_bands" / "OUTCAR").read_text()
    k = text.rfind("TOTAL-FORCE (eV/Angst)")
    head, tail = text[:k], text[k:]
    lines = tail.splitlines(keepends=True)
    for j, f in zip(range(2, 5), forces):
        lines[j] = re.sub(r"NaN\s+NaN\s+NaN", f"0.000000      0.000000      {f}", lines[j])
    out = head + "".join(lines)
    if vtst:
        out = out.replace("POSITION ", f" VTST: version {vtst}\n CHAIN: Running the NEB\n POSITION ", 1)
    if force_line is not None:
        out = out.replace("  FREE ENERGIE OF THE ION-ELECTRON SYSTEM",
                          f"  FORCES: max atom, RMS     {force_line:.6f}    {force_line / 3:.6f}\n"
                          "  FREE ENERGIE OF THE ION-ELECTRON SYSTEM", 1)
    return out


def _neb_images(ref: Path, n: int = 4) -> list[Structure]:
    base = Structure.from_file(ref / "hBN_monolayer_bands" / "POSCAR")
    images = []
    for i in range(n):
        s = base.copy()
        s.translate_sites([1], [0.05 * i, 0, 0])
        s.add_site_property("selective_dynamics", [[False] * 3, [True] * 3])
        images.append(s)
    return images


def _neb_mock(tmp_path: Path, outcar: str, name: str) -> Path:
    """A NEB 'VASP': every moving image gets the OUTCAR, its POSCAR as CONTCAR, and an OSZICAR."""
    src = tmp_path / f"outcar_{name}"
    src.write_text(outcar)
    script = tmp_path / f"fake_neb_{name}.sh"
    script.write_text("#!/bin/sh\n"
                      f"echo run >> '{tmp_path / 'calls.txt'}'\n"
                      "grep -qx 'IMAGES = 2' INCAR || { echo 'mock VASP: IMAGES'; exit 3; }\n"
                      "for d in 01 02; do cp '" + str(src) + "' $d/OUTCAR; cp $d/POSCAR $d/CONTCAR; : > $d/OSZICAR; done\n")
    script.chmod(0o755)
    return script


def test_neb_with_vtst_converges_on_the_neb_force(ref, tmp_path, monkeypatch):
    outcar = _image_outcar(ref, ("0.0", "0.01", "0.02"), vtst="4.1, (05/19/21)", force_line=0.04)
    monkeypatch.setenv("HETERO_VASP_CMD", str(_neb_mock(tmp_path, outcar, "vtst")))
    e_image = -28.70835576  # energy(sigma->0) of the reference OUTCAR
    res = VaspEngine("fast").neb(_neb_images(ref), [e_image - 0.2, e_image - 0.25], tmp_path / "runs")
    assert isinstance(res, NebResult) and res.climbing and "VTST 4.1" in res.method and "IOPT 3" in res.method
    assert res.converged  # VTST's NEB force 0.04 <= |EDIFFG| 0.1 (fast preset's neb_fmax)
    assert res.energies_eV[1] == pytest.approx(e_image) and res.energies_eV[0] == pytest.approx(e_image - 0.2)
    assert res.images_in_parallel and res.n_images_moving == 2
    folder = Path(res.provenance.run_dir)
    assert (folder / "01" / "KPOINTS").exists() and _calls(tmp_path) == 1
    # the campaign's NEB block, stricter than the band reached: same images, new task, not converged
    monkeypatch.setenv("HETERO_VASP_CMD", str(_neb_mock(tmp_path, outcar, "vtst2")))
    strict = VaspEngine("fast").neb(_neb_images(ref), [e_image - 0.2, e_image - 0.25], tmp_path / "runs",
                                    neb={"neb_fmax_eV_A": 0.03})
    assert not strict.converged and Path(strict.provenance.run_dir) != folder


def test_neb_without_vtst_is_labelled_plain_and_not_climbing(ref, tmp_path, monkeypatch):
    outcar = _image_outcar(ref, ("0.0", "0.3", "0.02"), vtst=None, force_line=None)
    monkeypatch.setenv("HETERO_VASP_CMD", str(_neb_mock(tmp_path, outcar, "plain")))
    res = VaspEngine("fast").neb(_neb_images(ref), [-29.0, -29.0], tmp_path / "runs")
    assert not res.climbing and res.method.startswith("plain VASP NEB") and "LCLIMB and IOPT were ignored" in res.method
    assert not res.converged  # the free atom carries 0.3 eV/A > |EDIFFG| 0.1
    info = outcar_neb_image(Path(res.provenance.run_dir) / "01" / "OUTCAR", fixed=[0])
    assert info["force_max_free"] == pytest.approx(0.3) and info["vtst_version"] is None


def test_neb_with_overflowed_forces_is_refused(ref, tmp_path, monkeypatch):
    outcar = _image_outcar(ref, ("0.0", "*************", "0.02"), vtst="4.1", force_line=0.04)
    monkeypatch.setenv("HETERO_VASP_CMD", str(_neb_mock(tmp_path, outcar, "star")))
    with pytest.raises(OutputValidationError, match="image forces"):
        VaspEngine("fast").neb(_neb_images(ref), [-29.0, -29.0], tmp_path / "runs")
    assert not list((tmp_path / "runs").glob("*/result.json"))


def test_neb_refuses_ranks_that_images_do_not_divide(ref, tmp_path, monkeypatch):
    images = _neb_images(ref, n=7)  # IMAGES = 5
    monkeypatch.setenv("HETERO_VASP_CMD", str(_neb_mock(tmp_path, "", "ranks")))
    with pytest.raises(EngineRunError, match="IMAGES = 5 needs a rank count divisible by 5.*runs 32: use 30 or 35"):
        VaspEngine("fast", ranks=32).neb(images, [-29.0, -29.0], tmp_path / "runs")
    assert not (tmp_path / "runs").exists() and _calls(tmp_path) == 0
    monkeypatch.setenv("HETERO_VASP_CMD", f"srun --ntasks=64 {tmp_path / 'fake_neb_ranks.sh'}")
    assert VaspEngine("fast").mpi_ranks() == 64
