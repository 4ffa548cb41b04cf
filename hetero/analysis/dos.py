"""DOS reductions (engine-free): per element / fragment sums, gap, DOS at E_F, electron count."""

from __future__ import annotations

import numpy as np

METAL_DOS_THRESHOLD = 0.05  # states/eV/cell at E_F above which a system is called metallic


def band_gap(energies: np.ndarray, total: np.ndarray, threshold: float = 0.01) -> float:
    """Width of the empty region around E_F=0 in a broadened DOS (0 if E_F sits in states)."""
    energies, total = np.asarray(energies), np.asarray(total)
    occupied = total > threshold
    i0 = int(np.argmin(np.abs(energies)))
    if occupied[i0]:
        return 0.0
    below = np.where(occupied[:i0])[0]
    above = np.where(occupied[i0:])[0]
    if len(below) == 0 or len(above) == 0:
        return float("nan")
    return float(energies[i0 + above[0]] - energies[below[-1]])


def reduce_dos(
    energies: np.ndarray,
    total: np.ndarray,
    per_atom: np.ndarray,
    symbols: list[str],
    fragments: dict[str, list[int]] | None = None,
    broadening_eV: float = 0.1,
    eigen_gap_eV: float | None = None,
) -> dict:
    energies = np.asarray(energies)
    total = np.asarray(total)
    per_atom = np.asarray(per_atom)
    projected: dict[str, list[float]] = {}
    for el in sorted(set(symbols)):
        idx = [i for i, s in enumerate(symbols) if s == el]
        projected[el] = per_atom[idx].sum(axis=0).tolist()
    for name, idx in (fragments or {}).items():
        projected[f"fragment:{name}"] = per_atom[list(idx)].sum(axis=0).tolist()
    dE = energies[1] - energies[0]
    n_below = float(total[energies <= 0].sum() * dE)
    at_ef = float(np.interp(0.0, energies, total))
    # broadening leaks states into a gap, so the empty region of a smeared DOS underestimates it;
    # callers with eigenvalues should pass their gap instead (dos_job does)
    gap = band_gap(energies, total, threshold=0.01)
    return {
        "energies_eV": energies.tolist(),
        "total": total.tolist(),
        "projected": projected,
        "band_gap_eV": eigen_gap_eV if eigen_gap_eV is not None else gap,
        "is_metal": bool(at_ef > METAL_DOS_THRESHOLD) if eigen_gap_eV is None else eigen_gap_eV == 0.0,
        "dos_at_fermi": at_ef,
        "n_electrons_integrated": n_below,
    }
