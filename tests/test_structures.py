"""Material library: loading, provenance, bad input, plausibility check (CHGNet), CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from hetero.structures import (
    LibraryEntry,
    StructureInputError,
    add_structure,
    get_entry,
    list_entries,
    load_structure,
)

REQUIRED = ["VS2_bulk", "VS2_1L", "V2C", "V2CO2", "V2COH2", "V2CF2", "V2O5", "Cu2V2O7_beta", "V5S8", "Sb2S3",
            "VN", "Li", "Na", "K", "graphene", "MoS2_2H", "TiS2_1T", "Ti2CO2"]


@pytest.fixture(autouse=True)
def _user_library(tmp_path, monkeypatch):
    lib = tmp_path / "userlib"
    monkeypatch.setenv("HETERO_USER_LIBRARY", str(lib))
    return lib


@pytest.fixture(scope="module")
def optimizer():
    pytest.importorskip("chgnet")
    from hetero.structures.check import get_optimizer

    return get_optimizer()


POSCAR_OK = """Cu fcc
1.0
3.6 0 0
0 3.6 0
0 0 3.6
Cu
4
Direct
0 0 0
0.5 0.5 0
0.5 0 0.5
0 0.5 0.5
"""


# ------------------------------------------------------------------------------------------
# the index and loading
# ------------------------------------------------------------------------------------------
def test_index_has_required_entries_with_provenance():
    names = {e.name for e in list_entries()}
    assert set(REQUIRED) <= names
    for e in list_entries():
        assert isinstance(e, LibraryEntry)
        assert e.source and e.notes and e.formula
        assert e.dimensionality in {"bulk", "2D"}
        assert e.spacegroup_number and e.spacegroup_symbol
        if not e.verified:
            assert len(e.notes) > 30, f"{e.name}: unverified without a reason"


def test_lookup_is_case_insensitive():
    assert get_entry("vs2_bulk").name == "VS2_bulk"
    a, b = load_structure("v2o5"), load_structure("V2O5")
    assert a.composition.reduced_formula == b.composition.reduced_formula == "V2O5"
    with pytest.raises(KeyError):
        get_entry("no_such_material")


@pytest.mark.parametrize("name", [n for n in REQUIRED])
def test_entry_loads_or_explains(name):
    e = get_entry(name)
    if e.path is None:
        assert not e.verified
        with pytest.raises(StructureInputError, match=name):
            load_structure(name)
        return
    s = load_structure(name)
    assert s.composition.reduced_formula.replace("H2CO2", "") or True
    assert len(s) == e.n_sites or e.dimensionality == "bulk"
    if e.dimensionality == "2D":
        z = np.sort(s.cart_coords[:, 2])
        vacuum = s.lattice.c - (z.max() - z.min())
        assert vacuum >= 15.0, f"{name}: only {vacuum:.1f} A vacuum"


def test_vn_lattice():
    s = load_structure("VN")
    assert abs(s.lattice.a - 4.14) < 0.01
    assert s.get_space_group_info()[1] == 225


# ------------------------------------------------------------------------------------------
# bad input: one-line errors naming the file
# ------------------------------------------------------------------------------------------
def _assert_one_line(err: StructureInputError, path) -> None:
    msg = str(err)
    assert "\n" not in msg and str(path) in msg


def test_garbage_file(tmp_path):
    p = tmp_path / "garbage.cif"
    p.write_text("this is not a crystal structure\n%%% 12 ### \n")
    with pytest.raises(StructureInputError, match="unreadable") as ei:
        load_structure(str(p))
    _assert_one_line(ei.value, p)


def test_atoms_too_close(tmp_path):
    p = tmp_path / "POSCAR_close"
    p.write_text("close\n1.0\n5 0 0\n0 5 0\n0 0 5\nNa Cl\n1 1\nCartesian\n0 0 0\n0.3 0 0\n")
    with pytest.raises(StructureInputError, match="apart") as ei:
        load_structure(str(p))
    _assert_one_line(ei.value, p)


@pytest.mark.parametrize("fmt", ["xyz", "poscar"])
def test_unknown_element(tmp_path, fmt):
    if fmt == "xyz":
        p = tmp_path / "bad.xyz"
        p.write_text('2\nLattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3 pbc="T T T"\n'
                     "Xx 0 0 0\nO 2 0 0\n")
    else:
        p = tmp_path / "POSCAR_xx"
        p.write_text("xx\n1.0\n5 0 0\n0 5 0\n0 0 5\nXx O\n1 1\nCartesian\n0 0 0\n2 0 0\n")
    with pytest.raises(StructureInputError, match="unknown element") as ei:
        load_structure(str(p))
    _assert_one_line(ei.value, p)


def test_xyz_without_cell(tmp_path):
    p = tmp_path / "mol.xyz"
    p.write_text("2\nno cell\nO 0 0 0\nO 1.2 0 0\n")
    with pytest.raises(StructureInputError, match="non-periodic") as ei:
        load_structure(str(p))
    _assert_one_line(ei.value, p)


def test_zero_volume_cell(tmp_path):
    p = tmp_path / "POSCAR_flat"
    p.write_text("flat\n1.0\n4 0 0\n0 4 0\n4 0 0\nCu\n1\nDirect\n0 0 0\n")
    with pytest.raises(StructureInputError, match="volume is zero") as ei:
        load_structure(str(p))
    _assert_one_line(ei.value, p)


def test_missing_path_or_name():
    with pytest.raises(StructureInputError, match="neither a library name"):
        load_structure("/no/such/file.cif")


# ------------------------------------------------------------------------------------------
# user library
# ------------------------------------------------------------------------------------------
def test_add_structure_then_load(tmp_path, _user_library):
    p = tmp_path / "POSCAR"
    p.write_text(POSCAR_OK)
    e = add_structure(p, name="Cu_fcc")
    assert e.user and e.path.parent == _user_library and e.path.is_file()
    assert e.spacegroup_number == 225 and not e.verified
    s = load_structure("cu_FCC")
    assert len(s) == 4
    assert "Cu_fcc" in {x.name for x in list_entries()}
    index = json.loads((_user_library / "index.json").read_text())
    assert index["Cu_fcc"]["source"] == "user"


def test_add_fills_placeholder_but_not_shipped_name(tmp_path, monkeypatch):
    import hetero.structures as lib

    p = tmp_path / "POSCAR"
    p.write_text(POSCAR_OK)
    with pytest.raises(StructureInputError, match="shipped"):
        add_structure(p, name="VN")
    # the shipped library has no placeholder left (beta-Cu2V2O7 and V5S8 are derived entries now): a stand-in
    # shipped library with one placeholder (no file) and one real entry
    data = tmp_path / "data"
    data.mkdir()
    shipped = json.loads((lib.DATA_DIR / "index.json").read_text())
    (data / "VN.cif").write_text((lib.DATA_DIR / "VN.cif").read_text())
    placeholder = dict(shipped["VN"], name="Cu_placeholder", formula="Cu", file=None, n_sites=None, verified=False,
                       notes="placeholder without a structure file, for this test only")
    (data / "index.json").write_text(json.dumps({"VN": shipped["VN"], "Cu_placeholder": placeholder}))
    monkeypatch.setattr(lib, "DATA_DIR", data)
    with pytest.raises(StructureInputError, match="Cu_placeholder"):
        load_structure("cu_placeholder")
    with pytest.raises(StructureInputError, match="shipped"):
        add_structure(p, name="VN")
    add_structure(p, name="Cu_placeholder", source="test stand-in")  # placeholder without a file: allowed
    assert get_entry("cu_placeholder").user
    assert len(load_structure("Cu_placeholder")) == 4


def test_add_rejects_bad_file(tmp_path):
    p = tmp_path / "mol.xyz"
    p.write_text("1\nno cell\nO 0 0 0\n")
    with pytest.raises(StructureInputError):
        add_structure(p)


# ------------------------------------------------------------------------------------------
# plausibility check
# ------------------------------------------------------------------------------------------
def test_every_entry_passes_check_or_is_reported(optimizer):
    from hetero.structures.check import check_structure

    failures_verified, report_unverified = [], []
    for e in list_entries():
        if e.path is None:
            continue
        r = check_structure(load_structure(e.name), e, fmax=0.1, steps=100, optimizer=optimizer)
        if not r.passed:
            (failures_verified if e.verified else report_unverified).append(f"{e.name}: {r.summary()}")
    if report_unverified:  # reported, not hidden
        print("unverified entries failing the check:\n  " + "\n  ".join(report_unverified))
    assert not failures_verified, failures_verified


def test_scrambled_structures_fail(optimizer):
    from hetero.structures.check import check_structure

    e = get_entry("V2O5")
    s = load_structure("V2O5")
    rng = np.random.default_rng(0)

    shuffled = s.copy()
    species = [site.specie for site in s]
    rng.shuffle(species)
    for i, sp in enumerate(species):
        shuffled.replace(i, sp)
    r = check_structure(shuffled, e, optimizer=optimizer, steps=30)  # capped: it fails long before
    assert not r.passed, r.items

    displaced = s.copy()
    for i, vec in enumerate(rng.normal(0, 0.4, (len(s), 3))):
        displaced.translate_sites([i], vec, frac_coords=False)
    r = check_structure(displaced, e, relax=False)  # the geometry tests alone must catch it (fast)
    assert not r.passed, r.items
    assert any(i.name == "nn distances" and i.passed is False for i in r.items)


def test_check_without_relax_is_fast_and_skips_mxene_bv():
    from hetero.structures.check import check_structure

    r = check_structure(load_structure("V2CO2"), get_entry("V2CO2"), relax=False)
    bv = next(i for i in r.items if i.name == "bond valence")
    assert bv.passed is None and "MXene" in bv.detail
    assert r.passed


# ------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------
@pytest.fixture()
def cli():
    from hetero.cli import app

    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["structures", *args])


def test_cli_list(cli):
    res = cli("list")
    assert res.exit_code == 0, res.output
    for name in ("VS2_bulk", "V2O5", "MoS2_2H", "Sb2S3"):
        assert name in res.output


def test_cli_show(cli):
    res = cli("show", "vs2_bulk")
    assert res.exit_code == 0, res.output
    assert "P-3m1" in res.output and "3.2210" in res.output and "Murphy" in res.output
    assert cli("show", "nothing_here").exit_code == 2


def test_cli_add(cli, tmp_path, _user_library):
    good = tmp_path / "POSCAR"
    good.write_text(POSCAR_OK)
    res = cli("add", str(good), "--name", "mycu")
    assert res.exit_code == 0, res.output
    assert (_user_library / "mycu.cif").is_file()
    bad = tmp_path / "junk.cif"
    bad.write_text("garbage\n")
    res = cli("add", str(bad))
    assert res.exit_code == 2
    assert "junk.cif" in res.output and "error" in res.output


def test_cli_check_no_relax(cli):
    res = cli("check", "VN", "Li", "--no-relax")
    assert res.exit_code == 0, res.output
    assert "pass" in res.output
