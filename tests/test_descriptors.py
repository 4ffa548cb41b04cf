"""Engine-free descriptors: physical assertions with hand-computed numbers."""

import math

import numpy as np
import pytest

from hetero.analysis import descriptors as d
from hetero.analysis.workfunction import NoVacuumError, work_function


def test_adsorption_energy_and_ocv_sign_consistent():
    e_host, mu_li = -100.0, -1.90  # mu: Li bulk energy per atom
    e_tot = e_host + mu_li - 0.8  # binds 0.8 eV more strongly than in the metal
    e_ads = d.adsorption_energy(e_tot, e_host, mu_li)
    assert e_ads == pytest.approx(-0.8)
    v = d.ocv(e_tot, e_host, mu_li)
    assert v == pytest.approx(0.8) and v > 0  # favourable vs metal <=> positive voltage
    assert d.ocv(e_host + mu_li + 0.3, e_host, mu_li) < 0  # unfavourable -> plating instead
    # two ions, divalent Mg: V = -dE / (n z)
    assert d.ocv(e_host + 2 * -1.5 - 2.0, e_host, -1.5, n_ions=2, ion_charge=2) == pytest.approx(0.5)
    assert d.adsorption_energy(e_host + 2 * mu_li - 1.0, e_host, mu_li, n_ions=2) == pytest.approx(-0.5)


def test_ocv_profile_steps():
    mu = -2.0
    n = [0, 1, 2, 3]
    e = [-50.0, -50.0 + mu - 1.0, -50.0 + 2 * mu - 1.5, -50.0 + 3 * mu - 1.7]
    prof = d.ocv_profile(n, e, mu)
    np.testing.assert_allclose(prof["voltage_V"], [1.0, 0.5, 0.2])
    assert np.all(np.diff(prof["voltage_V"]) < 0)  # voltage falls with filling here
    # average over the whole range equals the single-step OCV
    assert np.mean(prof["voltage_V"]) == pytest.approx(d.ocv(e[-1], e[0], mu, n_ions=3))


def test_capacity_one_li_per_vs2():
    m = 50.9415 + 2 * 32.06
    expected = 96485.33212 / (3.6 * m)  # = 232.9 mAh/g
    c = d.theoretical_capacity("VS2", 1, 1)
    assert c == pytest.approx(expected, rel=1e-3)
    assert 232 < c < 234
    assert d.theoretical_capacity("VS2", 2) == pytest.approx(2 * c)
    assert d.theoretical_capacity("VS2", 1, include_ion_mass=True, ion="Li") < c


def test_diffusion_coefficient_units():
    D = d.diffusion_coefficient(0.0, 3.0)  # no barrier: a^2 nu = (3e-8 cm)^2 * 1e13 Hz = 9e-3 cm^2/s
    assert D == pytest.approx(9e-3)
    D1 = d.diffusion_coefficient(0.3, 3.0)
    assert D1 == pytest.approx(9e-3 * math.exp(-0.3 / (d.K_B_EV * 300)))
    assert d.diffusion_coefficient(0.2, 3.0) > D1  # lower barrier -> faster


def test_interface_energy_units():
    r = d.interface_energy(-210.0, -100.0, -108.0, 20.0)
    assert r.eV_per_A2 == pytest.approx(-0.1)
    assert r.J_per_m2 == pytest.approx(-1.602176634, rel=1e-6)
    # the same stack from its summed binding energy (a CDD step stores E_AB - E_A - E_B only)
    assert d.interface_energy_from_total(r.total_eV, 20.0) == r
    with pytest.raises(ValueError, match="area_A2"):
        d.interface_energy_from_total(-2.0, 0.0)


def test_ocv_from_adsorption_energy_matches_total_energies():
    e_host, mu_mg = -80.0, -1.5
    e_tot = e_host + 2 * mu_mg - 2.0  # two Mg ions, 1 eV per ion below the metal
    e_ads = d.adsorption_energy(e_tot, e_host, mu_mg, n_ions=2)
    assert d.ocv_from_adsorption_energy(e_ads, ion_charge=2) == pytest.approx(0.5)
    assert d.ocv_from_adsorption_energy(e_ads, 2) == pytest.approx(d.ocv(e_tot, e_host, mu_mg, 2, 2))
    assert d.ocv_from_adsorption_energy(0.3) == pytest.approx(-0.3)  # unfavourable: negative voltage (plating)
    assert d.ion_charge("Mg") == 2 and d.ion_charge("Al") == 3 and d.ion_charge("Na") == 1
    with pytest.raises(ValueError, match="ion_charge"):
        d.ocv_from_adsorption_energy(-1.0, 0)


def _gauss(e, c, w=0.1):
    return np.exp(-((e - c) ** 2) / (2 * w * w))


def test_band_gap_from_dos_semiconductor_and_metal():
    e = np.linspace(-5, 5, 2001)
    semi = _gauss(e, -2.0, 0.5) * 3 * (e < -1) + _gauss(e, 2.0, 0.5) * 3 * (e > 1)  # gap ~2 eV
    g = d.band_gap_from_dos(e, semi, fermi=-0.995)  # E_F at the VBM (smearing)
    assert not g.is_metal and 1.8 < g.band_gap_eV < 2.2
    metal = 1.0 + 0 * e
    gm = d.band_gap_from_dos(e, metal, fermi=0.0)
    assert gm.is_metal and gm.band_gap_eV == 0.0
    assert d.dos_at_fermi(e, metal, 0.0) == pytest.approx(1.0)
    assert d.dos_at_fermi(e, semi, 0.0) == pytest.approx(0.0, abs=1e-6)


def _slab_potential(z, L, centre, step=0.0):
    """Model potential: deep well at the slab, vacuum level 0 below and `step` above (dipole)."""
    dz = (z - centre + L / 2) % L - L / 2
    v = -15.0 * np.exp(-(dz / 2.0) ** 2)
    # dipole step in the middle of the vacuum (opposite the slab)
    far = (z - centre) % L
    v += np.where(far < L / 2, step, 0.0)
    return v


def test_work_function_symmetric_and_asymmetric():
    L = 30.0
    z = np.linspace(0, L, 600, endpoint=False)
    v = _slab_potential(z, L, centre=3.0)  # slab wraps around the cell boundary
    r = work_function(z, v, fermi_eV=-4.5)
    assert r.work_function_top_eV == pytest.approx(4.5, abs=0.02)
    assert r.work_function_bottom_eV == pytest.approx(4.5, abs=0.02)
    va = _slab_potential(z, L, centre=10.0, step=0.6)  # above the slab vacuum sits 0.6 eV higher
    ra = work_function(z, va, fermi_eV=-4.5)
    assert ra.asymmetric
    assert ra.work_function_top_eV == pytest.approx(5.1, abs=0.03)
    assert ra.work_function_bottom_eV == pytest.approx(4.5, abs=0.03)


def test_work_function_no_vacuum_raises():
    z = np.linspace(0, 10, 200, endpoint=False)
    with pytest.raises(NoVacuumError):
        work_function(z, np.sin(z * 3) * 5, 0.0)
