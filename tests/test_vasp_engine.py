"""VASP engine: the inputs it would give VASP (no POTCARs here: POTCAR.spec) and parsing through it."""

from pathlib import Path

import pytest

pytest.importorskip("atomate2")

from pymatgen.core import Lattice, Structure
from pymatgen.io.vasp import Incar, Kpoints

from hetero.engines import vasp as ve
from hetero.schemas import CalcDoc, DosDoc, WorkFunctionDoc
from _refdata import reference_vasp_dir  # noqa: E402


_ref = reference_vasp_dir


@pytest.fixture
def vs2_stack():
    # VS2 monolayer-like slab with vacuum along c, asymmetric (Li on one side)
    return Structure(Lattice.hexagonal(3.22, 25.0), ["V", "S", "S", "Li"],
                     [[0, 0, 0.5], [1 / 3, 2 / 3, 0.56], [2 / 3, 1 / 3, 0.44], [0, 0, 0.64]])


def _read(d: Path):
    return Incar.from_file(d / "INCAR"), Kpoints.from_file(d / "KPOINTS")


def test_relax_inputs_for_2d_stack(vs2_stack, tmp_path):
    d = ve.write_inputs(vs2_stack, "relax", tmp_path / "relax", "fast", stacked=True, asymmetric=True)
    incar, kp = _read(d)
    assert incar["IVDW"] == 12 and incar["ISIF"] == 2 and incar["NSW"] > 0 and incar["IBRION"] == 2
    assert incar["LDIPOL"] is True and incar["IDIPOL"] == 3
    assert incar["ISPIN"] == 2  # V present
    structure = Structure.from_file(d / "POSCAR")
    mag = dict(zip([s.specie.symbol for s in structure], incar["MAGMOM"]))
    assert mag["V"] == pytest.approx(1.0) and mag["S"] == 0
    assert incar["ENCUT"] == 450 and incar["GGA"].upper() == "PE"
    assert kp.kpts[0][2] == 1 and kp.kpts[0][0] > 1  # one k-point along the vacuum
    assert (d / "POTCAR.spec").exists() and not (d / "POTCAR").exists()


def test_step_specific_tags(vs2_stack, tmp_path):
    inc_b, _ = _read(ve.write_inputs(vs2_stack, "bader", tmp_path / "b"))
    assert inc_b["LAECHG"] is True and inc_b["LCHARG"] is True and inc_b["NSW"] == 0
    inc_w, _ = _read(ve.write_inputs(vs2_stack, "workfunction", tmp_path / "w"))
    assert inc_w["LVHAR"] is True
    inc_d, kp_d = _read(ve.write_inputs(vs2_stack, "dos", tmp_path / "d", "standard"))
    inc_s, kp_s = _read(ve.write_inputs(vs2_stack, "static", tmp_path / "s", "standard"))
    assert inc_d["LORBIT"] == 11 and inc_d["NEDOS"] == 3001 and inc_d["ISMEAR"] == -5
    assert kp_d.kpts[0][0] > kp_s.kpts[0][0]  # denser mesh for the DOS
    assert inc_s["EDIFF"] == pytest.approx(1e-6)
    assert "IVDW" not in inc_s  # not a stack unless told
    assert inc_s.get("LDAU", False) is False  # U only for oxides/fluorides


def test_hubbard_u_for_oxide(tmp_path):
    v2o5 = Structure(Lattice.orthorhombic(11.5, 3.56, 20.0), ["V", "O", "O"],
                     [[0, 0, 0.5], [0.1, 0, 0.5], [0, 0.5, 0.55]])
    incar = ve.incar_updates(v2o5, "static", ve.load_preset("standard"))
    assert incar["LDAU"] and incar["LDAUU"] == {"O": {"V": 3.25}}
    inc, _ = _read(ve.write_inputs(v2o5, "static", tmp_path / "u", "standard"))
    s = Structure.from_file(tmp_path / "u" / "POSCAR")
    order = [sp.symbol for sp in dict.fromkeys(s.species)]
    assert dict(zip(order, inc["LDAUU"]))["V"] == pytest.approx(3.25)


def test_bulk_relaxes_cell(tmp_path):
    al = Structure(Lattice.cubic(4.05), ["Al"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    incar = ve.incar_updates(al, "relax", ve.load_preset("fast"))
    assert incar["ISIF"] == 3 and incar["ISPIN"] == 1


def test_presets_and_errors():
    assert {"fast", "standard"} <= set(ve.available_presets())
    with pytest.raises(ve.VaspPresetError, match="valid presets"):
        ve.load_preset("nope")
    with pytest.raises(ve.VaspPresetError, match="valid keys"):
        ve.load_preset("fast", {"encut": 3})
    with pytest.raises(ValueError, match="valid steps"):
        ve.incar_updates(Structure(Lattice.cubic(3), ["Li"], [[0, 0, 0]]), "md", ve.load_preset("fast"))


def test_makers_and_handlers(vs2_stack):
    from atomate2.vasp.jobs.core import RelaxMaker, StaticMaker
    from custodian.vasp.handlers import UnconvergedErrorHandler, VaspErrorHandler

    m = ve.make_maker(vs2_stack, "relax", stacked=True)
    assert isinstance(m, RelaxMaker)
    assert m.input_set_generator.user_incar_settings["IVDW"] == 12
    assert any(isinstance(h, VaspErrorHandler) for h in m.run_vasp_kwargs["handlers"])
    assert isinstance(ve.make_maker(vs2_stack, "static"), StaticMaker)
    neb_h = ve.custodian_handlers("neb")
    assert not any(isinstance(h, UnconvergedErrorHandler) for h in neb_h)


def test_neb_folder(vs2_stack, tmp_path):
    imgs = []
    for i in range(4):
        s = vs2_stack.copy()
        s.translate_sites([3], [i * 0.1, 0, 0])
        imgs.append(s)
    d = ve.write_neb_inputs(imgs, tmp_path / "neb")
    inc = Incar.from_file(d / "INCAR")
    assert inc["IMAGES"] == 2 and inc["LCLIMB"] is True and inc["IBRION"] == 3
    assert sorted(p.name for p in d.iterdir() if p.is_dir()) == ["00", "01", "02", "03"]


def test_engine_parses_reference_outputs(vs2_stack, tmp_path):
    ref = _ref()
    if ref is None:
        pytest.skip("reference VASP outputs not found: set HETERO_SHARED or provide ../shared/reference/vasp")
    eng = ve.VaspEngine("fast")
    doc = eng.parse(ref / "MoS2_monolayer_optB86b", "relax", system="MoS2")
    assert isinstance(doc, CalcDoc) and doc.provenance.engine == "vasp" and doc.provenance.settings_hash
    assert isinstance(eng.parse(ref / "fermi_smearing", "dos", system="Al"), DosDoc)
    assert isinstance(eng.parse(ref / "MoS2_monolayer_optB86b", "workfunction", system="MoS2"), WorkFunctionDoc)
    folder = eng.prepare(vs2_stack, "static", tmp_path)
    assert (folder / "INCAR").exists()
    with pytest.raises(RuntimeError, match="not found"):
        eng.run(vs2_stack, "static", tmp_path)  # no VASP binary here: clear error, inputs kept
    assert (folder / "INCAR").exists()
