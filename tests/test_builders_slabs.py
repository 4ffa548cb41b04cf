import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from hetero.builders import BuildError, build_slab, find_sites, place_ion, vn001_na


@pytest.fixture(scope="module")
def vn():
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.14), ["V", "N"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_vn001_slab(vn):
    s, rec = build_slab(vn, (0, 0, 1), 4)
    assert len(s) == 8 and rec.n_atoms == 8
    assert s.composition.reduced_formula == "VN"
    assert np.allclose(s.lattice.angles, 90)
    assert s.lattice.a == pytest.approx(4.14 / np.sqrt(2), abs=1e-3)
    z = s.cart_coords[:, 2]
    assert s.lattice.c - (z.max() - z.min()) == pytest.approx(15.0, abs=1e-6)
    assert len(rec.fixed_atoms) == 4
    sd = s.site_properties["selective_dynamics"]
    assert all(not any(sd[i]) for i in rec.fixed_atoms)
    assert all(z[i] < z.min() + 2.5 for i in rec.fixed_atoms)
    # a symmetric cut, but bottom planes fixed while the top relaxes: the relaxed slab's sides differ
    assert rec.needs_dipole_correction is True
    _, free = build_slab(vn, (0, 0, 1), 4, fix_bottom_layers=0)
    assert free.needs_dipole_correction is False


def test_vn001_sites_exactly_four(vn):
    for sc in [(1, 1), (2, 2)]:
        s, _ = build_slab(vn, (0, 0, 1), 4, supercell=sc)
        sites = find_sites(s, "Na")
        assert sorted(x.label for x in sites) == ["bridge", "hollow", "top-N", "top-V"]
        z_top = s.cart_coords[:, 2].max()
        for x in sites:
            ion = place_ion(s, x, "Na")
            assert ion.properties["ion_index"] == len(s)
            d = min(ion.get_distance(len(s), j) for j in range(len(s)))
            assert d > 1.5
            assert x.height_A == pytest.approx(x.cart_coords[2] - z_top, abs=1e-3)
    topv = [x for x in find_sites(s, "Na") if x.label == "top-V"][0]
    ion = place_ion(s, topv, "Na")
    # nearest neighbour at the covalent-radius sum (Na 1.66 + V 1.53)
    assert min(ion.get_distance(len(s), j) for j in range(len(s))) == pytest.approx(3.19, abs=0.01)


def test_place_ion_offset(vn):
    s, _ = build_slab(vn, (0, 0, 1), 4)
    site = [x for x in find_sites(s, "Na") if x.label == "hollow"][0]
    a = place_ion(s, site, "Na")
    b = place_ion(s, site, "Na", offset_A=(0.2, 0.0))
    assert b[-1].coords[0] - a[-1].coords[0] == pytest.approx(0.2)


def test_fcc111_threefold():
    cu = Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.6), ["Cu"], [[0, 0, 0]])
    s, _ = build_slab(cu, (1, 1, 1), 4)
    labels = sorted(x.label for x in find_sites(s, "Li"))
    assert labels == ["bridge", "fcc", "hcp", "top-Cu"]


def test_preset_vn001_na():
    s, rec = vn001_na("fast")
    assert len(s) == 8 and rec.needs_dipole_correction and "Na" in rec.notes
    s2, rec2 = vn001_na("standard")
    assert len(s2) == 32


def test_bad_inputs(vn):
    with pytest.raises(BuildError):
        build_slab(vn, (0, 0, 0), 4)
    with pytest.raises(BuildError):
        build_slab(vn, (0, 0), 4)
    s, _ = build_slab(vn, (0, 0, 1), 4)
    with pytest.raises(BuildError):
        find_sites(s, "Xx")
    with pytest.raises(BuildError):
        place_ion(s, "nowhere", "Na")
    with pytest.warns(UserWarning):
        build_slab(vn, (0, 0, 1), 4, vacuum=8.0)
