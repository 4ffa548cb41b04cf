"""NEB post-processing (engine-free): hop length and barrier from a converged band."""

from __future__ import annotations

import numpy as np


def hop_length(start_cart: np.ndarray, end_cart: np.ndarray, ion_index: int, lattice_matrix: np.ndarray) -> float:
    """Minimum-image distance the migrating ion travels between the endpoints (A)."""
    d = np.asarray(end_cart)[ion_index] - np.asarray(start_cart)[ion_index]
    frac = np.linalg.solve(np.asarray(lattice_matrix).T, d)
    frac -= np.round(frac)
    return float(np.linalg.norm(frac @ np.asarray(lattice_matrix)))


def barrier(energies: list[float], spline_e: list[float] | None = None) -> float:
    """Forward barrier: max of the spline (or of the images) above the initial state."""
    e = np.asarray(spline_e if spline_e else energies)
    return float(e.max() - energies[0])
