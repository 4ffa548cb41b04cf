"""VASP engine: the inputs it would give VASP (no POTCARs here: POTCAR.spec), from the neutral settings
and the builders' model facts."""

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("atomate2")

from pymatgen.core import Lattice, Structure  # noqa: E402
from pymatgen.io.vasp import Incar, Kpoints  # noqa: E402

from hetero.engines import vasp as ve  # noqa: E402
from hetero.engines.settings import ModelFacts, SettingsError  # noqa: E402


@pytest.fixture
def vs2_stack():
    # VS2 monolayer-like slab with vacuum along c, asymmetric (Li on one side)
    return Structure(Lattice.hexagonal(3.22, 25.0), ["V", "S", "S", "Li"],
                     [[0, 0, 0.5], [1 / 3, 2 / 3, 0.56], [2 / 3, 1 / 3, 0.44], [0, 0, 0.64]])


def _read(d: Path):
    return Incar.from_file(d / "INCAR"), Kpoints.from_file(d / "KPOINTS")


def _by_species(d: Path, values) -> dict:
    s = Structure.from_file(d / "POSCAR")
    return dict(zip([site.specie.symbol for site in s], values))


def test_relax_inputs_for_2d_stack(vs2_stack, tmp_path):
    d = ve.write_inputs(vs2_stack, "relax", tmp_path / "relax", "fast", stacked=True, asymmetric=True)
    incar, kp = _read(d)
    assert incar["IVDW"] == 12 and incar["ISIF"] == 2 and incar["NSW"] == 60 and incar["IBRION"] == 2
    assert incar["EDIFFG"] == pytest.approx(-0.05) and incar["EDIFF"] == pytest.approx(1e-4)
    assert incar["LDIPOL"] is True and incar["IDIPOL"] == 3
    assert incar["DIPOL"][2] == pytest.approx(0.54)  # middle of the slab (0.44 .. 0.64), not of the cell
    assert incar["ISPIN"] == 2  # V present
    mag = _by_species(d, incar["MAGMOM"])
    assert mag["V"] == pytest.approx(5.0)  # pymatgen's VASPIncarBase ferromagnetic start
    assert incar["ENCUT"] == 520 and incar["GGA"].upper() == "PE" and incar["LASPH"] is True
    assert incar["LREAL"] is False  # 4 atoms: below the preset's 30-atom threshold for LREAL Auto
    assert incar["LMAXMIX"] == 4  # d element
    assert kp.style.name == "Gamma" and kp.kpts[0][2] == 1 and kp.kpts[0][0] > 1  # one k-point along the vacuum
    assert (d / "POTCAR.spec").read_text().split() == ["V_sv", "S", "Li_sv"] and not (d / "POTCAR").exists()


def test_stack_from_builder_gets_ivdw_and_symmetric_slab_no_dipole(tmp_path):
    """The builders' facts reach VASP: the VS2/V2CO2 stack -> IVDW 12 (+ dipole: it is asymmetric);
    the bare VN(001) slab (symmetric, no vdW gap) -> neither."""
    from hetero.builders.presets import vn001_na, vs2_v2ctx
    from hetero.campaigns import model_facts

    eng = ve.VaspEngine("fast")
    stack, rec = vs2_v2ctx("V2CO2", "fast")
    facts = model_facts(rec, stack)
    assert facts.van_der_waals and facts.asymmetric
    res = eng.resolve(stack, facts)
    inc = eng.translate(res, stack, "relax")["incar"]
    assert inc["IVDW"] == 12 and res.values["dispersion"] == "d3bj" and "van der Waals gap" in res.sources["dispersion"]
    assert inc["LDIPOL"] is True and inc["ISIF"] == 2

    # a VN(001) slab with no plane held fixed is symmetric: neither tag
    from hetero.builders.slabs import build_slab

    slab, rec = build_slab(_vn_bulk(), (0, 0, 1), layers=5, fix_bottom_layers=0)
    facts = model_facts(rec, slab)
    assert not facts.asymmetric and not facts.van_der_waals
    d = tmp_path / "vn"
    settings = eng.translate(eng.resolve(slab, facts), slab, "relax")
    ve.write_input_folder(settings, slab, d, "relax", ve.fixed_indices(slab))
    incar = Incar.from_file(d / "INCAR")
    assert "LDIPOL" not in incar and "IDIPOL" not in incar and "IVDW" not in incar
    # the campaign's slab fixes its bottom planes (selective dynamics F F F): its relaxed sides differ
    slab, rec = vn001_na("fast")
    facts = model_facts(rec, slab)
    assert facts.asymmetric and not facts.van_der_waals
    d = tmp_path / "vn2"
    settings = eng.translate(eng.resolve(slab, facts), slab, "relax")
    ve.write_input_folder(settings, slab, d, "relax", ve.fixed_indices(slab))
    assert Incar.from_file(d / "INCAR")["LDIPOL"] is True
    poscar = Structure.from_file(d / "POSCAR")
    assert [list(f) for f in poscar.site_properties["selective_dynamics"]].count([False] * 3) == len(rec.fixed_atoms) > 0


def _vn_bulk():
    from hetero.builders.presets import vn_bulk

    return vn_bulk()


def test_static_output_tags(vs2_stack, tmp_path):
    inc_b, _ = _read(ve.write_inputs(vs2_stack, "bader", tmp_path / "b"))
    assert inc_b["LAECHG"] is True and inc_b["LCHARG"] is True and inc_b["NSW"] == 0 and inc_b["IBRION"] == -1
    assert "LVHAR" not in inc_b and "LORBIT" not in inc_b
    inc_w, _ = _read(ve.write_inputs(vs2_stack, "workfunction", tmp_path / "w"))
    assert inc_w["LVHAR"] is True and "LAECHG" not in inc_w
    inc_s, kp_s = _read(ve.write_inputs(vs2_stack, "static", tmp_path / "s", "standard"))
    assert inc_s["EDIFF"] == pytest.approx(1e-6) and inc_s["LREAL"] is False and inc_s["PREC"] == "Accurate"
    assert inc_s["LCHARG"] is True and "LORBIT" not in inc_s  # the SCF writes the CHGCAR the DOS run reads
    assert "IVDW" not in inc_s  # not a stack unless told
    assert inc_s.get("LDAU", False) is False  # U only for oxides/fluorides


def test_dos_is_a_non_scf_run_on_a_denser_mesh(vs2_stack, tmp_path):
    d = ve.write_inputs(vs2_stack, "dos", tmp_path / "d", "standard")
    inc_scf, kp_scf = _read(d)
    inc, kp = _read(d / "dos")
    assert inc["ICHARG"] == 11 and inc["LORBIT"] == 11 and inc["NEDOS"] == 3001 and inc["ISMEAR"] == -5
    assert inc["NSW"] == 0 and inc["LCHARG"] is False and inc["LMAXMIX"] == inc_scf["LMAXMIX"] == 4  # V: d element
    assert inc["ISPIN"] == inc_scf["ISPIN"] == 2 and inc["ENCUT"] == inc_scf["ENCUT"]
    assert kp.style.name == "Gamma" and kp.kpts[0][2] == 1  # one k along the vacuum in every step
    assert kp.kpts[0][0] == 2 * kp_scf.kpts[0][0] and kp_scf.kpts[0][2] == 1
    # an explicit DOS mesh on a slab keeps 1 along vacuum
    s = ve.task_settings(vs2_stack, "dos", overrides={"dos_kpoints_mesh": [12, 12, 4]})
    assert s["dos"]["kpoints"] == [12, 12, 1] and s["dos"]["dos_width_eV"] == 0.0  # tetrahedron: no broadening


def test_hubbard_u_for_oxide_only(tmp_path):
    v2o5 = Structure(Lattice.orthorhombic(11.5, 3.56, 20.0), ["V", "O", "O"],
                     [[0, 0, 0.5], [0.1, 0, 0.5], [0, 0.5, 0.55]])
    settings = ve.task_settings(v2o5, "static", "standard")
    inc = settings["incar"]
    assert inc["LDAU"] is True and inc["LDAUTYPE"] == 2 and inc["ALGO"] == "Normal"  # +U and spin: Normal
    d = ve.write_inputs(v2o5, "static", tmp_path / "u", "standard")
    incar = Incar.from_file(d / "INCAR")
    order = [sp.symbol for sp in dict.fromkeys(Structure.from_file(d / "POSCAR").species)]
    assert dict(zip(order, incar["LDAUU"])) == {"V": pytest.approx(3.25), "O": 0}
    # a sulfide with the same preset: no U, and the provenance says why
    vs2 = Structure(Lattice.hexagonal(3.22, 25.0), ["V", "S", "S"], [[0, 0, 0.5], [1 / 3, 2 / 3, 0.56], [2 / 3, 1 / 3, 0.44]])
    eng = ve.VaspEngine("standard")
    res = eng.resolve(vs2, ModelFacts())
    assert eng.translate(res, vs2, "static")["incar"]["LDAU"] is False
    assert res.values["hubbard_u"] == {} and "oxide" in res.sources["hubbard_u"]


def test_cell_relaxation_only_when_asked():
    al = Structure(Lattice.cubic(4.05), ["Al"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    assert ve.task_settings(al, "relax", cell=True)["incar"]["ISIF"] == 3
    fixed_cell = ve.task_settings(al, "relax")["incar"]
    assert fixed_cell["ISIF"] == 2 and fixed_cell["ISPIN"] == 1
    assert ve.task_settings(al, "relax")["kpoints"][2] > 1  # bulk: no vacuum axis, k along c too


def test_isolated_atom_reference_is_spin_polarised_on_gamma():
    na = Structure(Lattice.cubic(12.0), ["Na"], [[0.5, 0.5, 0.5]])
    eng = ve.VaspEngine("fast")
    res = eng.resolve(na, ModelFacts(kind="atom"))
    s = eng.translate(res, na, "static")
    assert s["kpoints"] == [1, 1, 1]
    assert s["incar"]["ISPIN"] == 2 and s["incar"]["MAGMOM"] == [1.0] and s["incar"]["SIGMA"] <= 0.01


def test_presets_and_errors():
    assert {"fast", "standard"} <= set(ve.available_presets())
    with pytest.raises(ve.PresetError, match="valid presets"):
        ve.VaspEngine("nope")
    with pytest.raises(SettingsError, match="use 'cutoff_eV'"):
        ve.VaspEngine("fast", overrides={"encut": 500})
    with pytest.raises(SettingsError, match="neutral setting 'cutoff_eV'"):
        ve.VaspEngine("fast", overrides={"vasp": {"ENCUT": 500}})
    with pytest.raises(SettingsError, match="set by hetero from the task"):
        ve.VaspEngine("fast", overrides={"vasp": {"ISIF": 3}})
    with pytest.raises(SettingsError, match="HETERO_VASP_PARALLEL"):
        ve.VaspEngine("fast", overrides={"vasp": {"NCORE": 4}})
    with pytest.raises(SettingsError, match="not an INCAR tag"):
        ve.VaspEngine("fast", overrides={"vasp": {"PRECC": "Normal"}})
    with pytest.raises(ValueError, match="valid steps"):
        ve.task_settings(Structure(Lattice.cubic(3), ["Li"], [[0, 0, 0]]), "md")
    # an INCAR escape hatch reaches the INCAR and changes the hash
    eng = ve.VaspEngine("fast", overrides={"vasp": {"NELM": 300, "AMIX": 0.1}})
    li = Structure(Lattice.cubic(3.44), ["Li", "Li"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    inc = eng.translate(eng.resolve(li), li, "static")["incar"]
    assert inc["NELM"] == 300 and inc["AMIX"] == pytest.approx(0.1)


def test_parallel_tags_are_not_hashed(vs2_stack, tmp_path, monkeypatch):
    a = ve.task_settings(vs2_stack, "relax")
    monkeypatch.setenv("HETERO_VASP_PARALLEL", "NCORE=4 KPAR=2")
    b = ve.task_settings(vs2_stack, "relax")
    assert a == b
    incar = Incar.from_file(ve.write_inputs(vs2_stack, "relax", tmp_path / "p") / "INCAR")
    assert incar["NCORE"] == 4 and incar["KPAR"] == 2


def test_makers_handlers_validators(vs2_stack):
    from atomate2.vasp.jobs.core import RelaxMaker, StaticMaker
    from atomate2.vasp.run import DEFAULT_HANDLERS, VaspNebFilesValidator
    from custodian.vasp.handlers import UnconvergedErrorHandler, VaspErrorHandler, WalltimeHandler
    from custodian.vasp.validators import VaspFilesValidator, VasprunXMLValidator

    m = ve.make_maker(vs2_stack, "relax", stacked=True)
    assert isinstance(m, RelaxMaker)
    assert m.input_set_generator.user_incar_settings["IVDW"] == 12
    handlers = m.run_vasp_kwargs["handlers"]
    assert {type(h) for h in DEFAULT_HANDLERS} <= {type(h) for h in handlers}
    assert any(isinstance(h, WalltimeHandler) for h in handlers) and any(isinstance(h, VaspErrorHandler) for h in handlers)
    assert {type(v) for v in m.run_vasp_kwargs["validators"]} == {VasprunXMLValidator, VaspFilesValidator}
    assert isinstance(ve.make_maker(vs2_stack, "static"), StaticMaker)
    assert not any(isinstance(h, UnconvergedErrorHandler) for h in ve.custodian_handlers("neb"))
    assert [type(v) for v in ve.custodian_validators("neb")] == [VaspNebFilesValidator]


def test_neb_folder(vs2_stack, tmp_path):
    imgs = []
    for i in range(4):
        s = vs2_stack.copy()
        s.translate_sites([3], [i * 0.1, 0, 0])
        s.add_site_property("selective_dynamics", [[j == 3] * 3 for j in range(4)])
        imgs.append(s)
    d = ve.write_neb_inputs(imgs, tmp_path / "neb", "fast", asymmetric=True)
    inc = Incar.from_file(d / "INCAR")
    assert inc["IMAGES"] == 2 and inc["LCLIMB"] is True and inc["IBRION"] == 3 and inc["POTIM"] == 0
    assert inc["IOPT"] == 3 and inc["ISYM"] == 0 and inc["EDIFF"] <= 1e-6 and inc["SPRING"] == pytest.approx(-5.0)
    assert inc["EDIFFG"] == pytest.approx(-0.1) and inc["NSW"] == 100 and inc["LDIPOL"] is True
    assert sorted(p.name for p in d.iterdir() if p.is_dir()) == ["00", "01", "02", "03"]
    mid = Structure.from_file(d / "01" / "POSCAR")
    assert list(mid.site_properties["selective_dynamics"][0]) == [False] * 3
    assert np.isclose(mid.frac_coords[3][0], 0.1)
    assert (d / "01" / "KPOINTS").read_text() == (d / "KPOINTS").read_text()


def test_cluster_profile_for_vasp(monkeypatch):
    """configs/hpc/slurm-vasp.yaml: the launch line becomes HETERO_VASP_CMD, its rank count is what the NEB
    check reads, and its machine tags reach the INCAR without changing the task hash."""
    from hetero.hpc.profile import parse_profile

    p = parse_profile("slurm-vasp")
    assert p.launch["vasp"] == "srun -n {cores} vasp_std" and p.export["PMG_VASP_PSP_DIR"].startswith("/")
    monkeypatch.setenv("HETERO_VASP_CMD", p.launch["vasp"].replace("{cores}", "128"))
    monkeypatch.setenv("HETERO_VASP_PARALLEL", str(p.export["HETERO_VASP_PARALLEL"]))
    assert ve.VaspEngine("fast").mpi_ranks() == 128
    assert ve._parallel_tags() == {"NCORE": 8, "KPAR": 2}
    assert p.rule("neb").cores_per_image == 64
