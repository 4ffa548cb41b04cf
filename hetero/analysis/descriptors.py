"""Engine-free battery descriptors (numpy only).

Conventions (../shared/DESIGN.md): energies in eV, lengths in Angstrom; adsorption/binding energies
negative = favourable; the reference state of the ion is always named by the caller.

Formulas
--------
- adsorption energy   E_ads = [E(host + n ion) - E(host) - n mu] / n_per   (per ion if ``per_ion``)
- OCV (one step)      V = -[E(host + n ion) - E(host) - n mu_bulk] / (n z e) = -E_ads(bulk metal) / (z e)
                        (mu_bulk = energy per atom of the bulk metal: the anode is the metal)
- OCV profile         V_i = -[E_{i+1} - E_i - (n_{i+1} - n_i) mu_bulk] / ((n_{i+1} - n_i) z e)
- capacity            C = n z F / (3.6 M)   mAh/g, M the molar mass of the host (g/mol)
- diffusion           D = a^2 nu exp(-Ea / kT)  (a: hop length, nu = 1e13 Hz, T = 300 K by default)
- interface energy    (E_AB - E_A - E_B) / A   eV/A^2 (and J/m^2); from E_AB - E_A - E_B when only that is known
- band gap            from a DOS array with a stated threshold (states/eV)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from pymatgen.core import Structure

K_B_EV = 8.617333262e-5  # eV/K
FARADAY = 96485.33212  # C/mol
EV_PER_A2_TO_J_PER_M2 = 16.02176634  # 1 eV/A^2 = 1.602e-19 J / 1e-20 m^2
DEFAULT_ATTEMPT_FREQUENCY_HZ = 1.0e13
DEFAULT_TEMPERATURE_K = 300.0
DOS_ZERO_THRESHOLD = 1.0e-2  # states/eV/cell below which the DOS counts as zero (gap detection)

# Valence (charge carried per ion) of the usual battery ions.
ION_CHARGE = {"H": 1, "Li": 1, "Na": 1, "K": 1, "Rb": 1, "Cs": 1, "Mg": 2, "Ca": 2, "Zn": 2, "Al": 3}


def ion_charge(ion: str) -> int:
    """Charge z carried per ion (electrons per ion in OCV and capacity); 1 for an ion not in ION_CHARGE."""
    return ION_CHARGE.get(ion, 1)


def adsorption_energy(e_total: float, e_host: float, mu: float, n_ions: int = 1,
                      per_ion: bool = True) -> float:
    """E_ads = E(host + n ion) - E(host) - n mu (eV); divided by n if ``per_ion``. Negative = favourable.

    ``mu`` is the energy of one ion in the chosen reference state: per-atom energy of the bulk metal
    ("bulk metal") or the energy of the isolated atom ("isolated atom"). Say which in the output.
    """
    if n_ions < 1:
        raise ValueError(f"n_ions must be >= 1, got {n_ions}")
    e = float(e_total) - float(e_host) - n_ions * float(mu)
    return e / n_ions if per_ion else e


def ocv(e_total: float, e_host: float, mu_bulk: float, n_ions: int = 1, ion_charge: int = 1) -> float:
    """Average open-circuit voltage (V) vs the bulk-metal anode for inserting n ions into the host.

    V = -(E(host + n ion) - E(host) - n mu_bulk) / (n z e). ``mu_bulk`` MUST be the bulk-metal
    energy per atom (same settings). Negative E_ads(bulk) gives a positive voltage.
    """
    if n_ions < 1 or ion_charge < 1:
        raise ValueError("n_ions and ion_charge must be >= 1")
    return ocv_from_adsorption_energy(adsorption_energy(e_total, e_host, mu_bulk, n_ions), ion_charge)


def ocv_from_adsorption_energy(e_ads_bulk_eV: float, ion_charge: int = 1) -> float:
    """Average OCV (V) from the adsorption energy per ion against the bulk metal: V = -E_ads / (z e).

    Only the bulk-metal reference gives a voltage vs the metal anode; never pass an isolated-atom E_ads.
    """
    if ion_charge < 1:
        raise ValueError(f"ion_charge must be >= 1, got {ion_charge}")
    return -float(e_ads_bulk_eV) / ion_charge


def ocv_profile(n_ions: Sequence[float], energies: Sequence[float], mu_bulk: float,
                ion_charge: int = 1) -> dict[str, np.ndarray]:
    """Voltage steps between consecutive compositions of a coverage series.

    ``n_ions[i]`` ions in the cell with total energy ``energies[i]`` (include the bare host as n=0).
    Returns x_mid (mean ion count of each step), x_lo, x_hi and voltage_V per step (sorted by n).
    """
    n = np.asarray(n_ions, dtype=float)
    e = np.asarray(energies, dtype=float)
    if n.shape != e.shape or n.size < 2:
        raise ValueError("ocv_profile needs >= 2 (n_ions, energy) pairs of equal length")
    order = np.argsort(n)
    n, e = n[order], e[order]
    dn = np.diff(n)
    if np.any(dn <= 0):
        raise ValueError("ocv_profile: ion counts must be distinct")
    v = -(np.diff(e) - dn * mu_bulk) / (dn * ion_charge)
    return {"x_lo": n[:-1], "x_hi": n[1:], "x_mid": 0.5 * (n[:-1] + n[1:]), "voltage_V": v}


@lru_cache(maxsize=4096)  # a table of 10,000 rows asks for the same few host formulas again and again
def molar_mass(formula: str) -> float:
    """Molar mass (g/mol) of a formula (pymatgen's Composition, imported lazily)."""
    from pymatgen.core import Composition

    return float(Composition(formula).weight)


def theoretical_capacity(host_formula: str, n_ions: float = 1.0, ion_charge: int = 1,
                         ion: str | None = None, include_ion_mass: bool = False) -> float:
    """Theoretical specific capacity in mAh/g: C = n z F / (3.6 M).

    M is the molar mass of ``host_formula`` (the formula unit that takes ``n_ions`` ions); with
    ``include_ion_mass`` (and ``ion``) M is that of the ion-loaded compound instead.
    One Li per VS2 gives ~232.9 mAh/g.
    """
    m = molar_mass(host_formula)
    if include_ion_mass:
        if not ion:
            raise ValueError("include_ion_mass needs the ion symbol")
        m += n_ions * molar_mass(ion)
    return n_ions * ion_charge * FARADAY / (3.6 * m)


def diffusion_coefficient(barrier_eV: float, hop_length_A: float,
                          nu_Hz: float = DEFAULT_ATTEMPT_FREQUENCY_HZ,
                          temperature_K: float = DEFAULT_TEMPERATURE_K) -> float:
    """D = a^2 nu exp(-Ea / kT) in cm^2/s (a in Angstrom converted with 1 A = 1e-8 cm)."""
    if temperature_K <= 0:
        raise ValueError("temperature_K must be > 0")
    a_cm = float(hop_length_A) * 1e-8
    return a_cm**2 * nu_Hz * float(np.exp(-float(barrier_eV) / (K_B_EV * temperature_K)))


@dataclass(frozen=True)
class InterfaceEnergy:
    eV_per_A2: float
    J_per_m2: float
    total_eV: float


def interface_energy(e_ab: float, e_a: float, e_b: float, area_A2: float) -> InterfaceEnergy:
    """Interface formation/binding energy (E_AB - E_A - E_B) / A. Negative = the stack binds."""
    return interface_energy_from_total(float(e_ab) - float(e_a) - float(e_b), area_A2)


def interface_energy_from_total(binding_eV: float, area_A2: float) -> InterfaceEnergy:
    """Interface energy per area from E_AB - E_A - E_B already summed (e.g. a CDD step's binding energy)."""
    if not area_A2 > 0:
        raise ValueError(f"area_A2 must be > 0, got {area_A2}")
    per = float(binding_eV) / float(area_A2)
    return InterfaceEnergy(eV_per_A2=per, J_per_m2=per * EV_PER_A2_TO_J_PER_M2, total_eV=float(binding_eV))


@dataclass(frozen=True)
class GapInfo:
    band_gap_eV: float
    is_metal: bool
    vbm_eV: float | None  # on the input energy scale
    cbm_eV: float | None
    threshold: float


def band_gap_from_dos(energies: Sequence[float], dos: Sequence[float], fermi: float = 0.0,
                      threshold: float = DOS_ZERO_THRESHOLD, fermi_tol: float = 0.3,
                      min_gap: float = 0.05) -> GapInfo:
    """Band gap and metallic flag from a total DOS (states/eV/cell, spin summed).

    The DOS counts as zero where it is <= ``threshold``. The gap is the zero-DOS window that contains
    E_F or starts/ends within ``fermi_tol`` eV of it (smearing puts E_F of a semiconductor at a band
    edge). Gap = CBM - VBM taken as the energies of the last/first non-zero points around the window,
    so a broadened DOS under-estimates an eigenvalue gap by about the broadening. No window -> metal.
    """
    e = np.asarray(energies, dtype=float)
    d = np.asarray(dos, dtype=float)
    if e.shape != d.shape or e.size < 3:
        raise ValueError("band_gap_from_dos: energies and dos must be equal-length arrays (>= 3 points)")
    zero = d <= threshold
    best: tuple[float, int, int] | None = None
    i = 0
    while i < e.size:
        if not zero[i]:
            i += 1
            continue
        j = i
        while j + 1 < e.size and zero[j + 1]:
            j += 1
        # window of zero DOS [i, j]; edges are the neighbouring non-zero points
        if i > 0 and j < e.size - 1:
            lo, hi = e[i - 1], e[j + 1]
            dist = 0.0 if lo <= fermi <= hi else min(abs(fermi - lo), abs(fermi - hi))
            if dist <= fermi_tol and hi - lo >= min_gap and (best is None or dist < best[0]):
                best = (dist, i - 1, j + 1)
        i = j + 1
    if best is None:
        return GapInfo(0.0, True, None, None, threshold)
    _, lo_i, hi_i = best
    return GapInfo(float(e[hi_i] - e[lo_i]), False, float(e[lo_i]), float(e[hi_i]), threshold)


def dos_at_fermi(energies: Sequence[float], dos: Sequence[float], fermi: float = 0.0,
                 window: float = 0.0) -> float:
    """Total DOS at E_F (states/eV/cell): linear interpolation, or the mean over E_F +- window."""
    e = np.asarray(energies, dtype=float)
    d = np.asarray(dos, dtype=float)
    if window > 0:
        m = (e >= fermi - window) & (e <= fermi + window)
        if m.any():
            return float(max(d[m].mean(), 0.0))
    return float(max(np.interp(fermi, e, d), 0.0))


def host_max_shift(host: Structure, with_ions: Structure, n_ions: int) -> float | None:
    """Largest minimum-image move of a host atom between the bare host and the host part of `with_ions` (the
    ions are its last n_ions atoms); None when the host parts do not match atom for atom."""
    n = len(with_ions) - n_ions
    if n != len(host) or [sp.symbol for sp in with_ions.species[:n]] != [sp.symbol for sp in host.species]:
        return None
    d = with_ions.frac_coords[:n] - host.frac_coords
    d -= np.round(d)
    return float(np.linalg.norm(with_ions.lattice.get_cartesian_coords(d), axis=1).max())


def endpoint_host_change(start: Structure, end: Structure, ion_index: int) -> float | None:
    """Largest move of a host atom (every atom but the moving ion) between two endpoints of a hop: near zero when
    both sit on one host state, so that their energy difference is the ion's alone."""
    host = start.copy()
    host.remove_sites([ion_index])
    moved = end.copy()
    moved.remove_sites([ion_index])
    return host_max_shift(host, moved, 0)


# two atoms closer than this fraction of their covalent radii's sum are not a physical structure: real bonds sit
# at ~0.7 (V=O vanadyl, 1.58 A) to ~1.0 of the sum; a broken MLIP relaxation put Li 0.41 A from O (ratio 0.21)
UNPHYSICAL_CONTACT_RATIO = 0.5


@dataclass
class Contact:
    i: int
    j: int
    distance_A: float
    ratio: float  # distance / (r_cov(i) + r_cov(j))

    def describe(self, s: Structure) -> str:
        return (f"{s[self.i].specie.symbol}{self.i}-{s[self.j].specie.symbol}{self.j} {self.distance_A:.2f} A "
                f"({self.ratio:.2f} x their covalent radii)")


def closest_contact(s: Structure) -> Contact | None:
    """The atom pair closest relative to its covalent radii (pymatgen's CovalentRadius; periodic images
    counted); None for a single atom alone in its cell."""
    from pymatgen.analysis.local_env import CovalentRadius

    if len(s) < 2:
        return None
    rad = np.array([CovalentRadius.radius.get(sp.symbol, 1.5) for sp in s.species])
    d = s.distance_matrix + np.diag(np.full(len(s), np.inf))
    ratio = d / (rad[:, None] + rad[None, :])
    i, j = np.unravel_index(int(np.argmin(ratio)), ratio.shape)
    return Contact(int(min(i, j)), int(max(i, j)), float(d[i, j]), float(ratio[i, j]))


def unphysical_contact(s: Structure) -> str | None:
    """A description of the closest pair when two atoms overlap (UNPHYSICAL_CONTACT_RATIO), else None."""
    c = closest_contact(s)
    return c.describe(s) if c is not None and c.ratio < UNPHYSICAL_CONTACT_RATIO else None
