"""Work function from a planar-averaged electrostatic potential (engine free, numpy only).

phi = V_vac - E_F on both sides of a slab. Vacuum plateaus are found as regions where the potential
is flat (peak-to-peak <= ``flat_tol`` eV over a ``window_A`` window), at least ``min_plateau_A`` long
and, when atom heights are given, farther than ``min_atom_distance_A`` from every atom. With a dipole
correction (asymmetric slab) the vacuum holds two plateaus separated by a step: the one met first
going UP (+z) from the slab is the top vacuum, the one met first going DOWN is the bottom vacuum.
Periodicity along the axis is honoured (a slab may wrap around the cell boundary).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


class NoVacuumError(ValueError):
    """No flat vacuum region: the cell has too little vacuum or the potential is not a slab's."""


@dataclass
class WorkFunctionResult:
    vacuum_top_eV: float
    vacuum_bottom_eV: float
    work_function_top_eV: float
    work_function_bottom_eV: float
    fermi_eV: float
    plateaus: list[dict] = field(default_factory=list)  # start_A, end_A, value_eV, length_A

    @property
    def asymmetric(self) -> bool:
        return abs(self.vacuum_top_eV - self.vacuum_bottom_eV) > 0.05


def absolute_from_cell_average(potential: Sequence[float]) -> np.ndarray:
    """Restore the absolute scale of a planar average that was shifted (e.g. vacuum set to 0).

    VASP drops the G=0 term of the electrostatic potential, so the cell average of LOCPOT's
    (LVHAR) electrostatic potential is zero on the scale of the eigenvalues and E_F. A planar average
    on a uniform grid that was shifted by a constant is brought back by subtracting its mean.
    """
    v = np.asarray(potential, dtype=float)
    return v - v.mean()


def _segments(mask: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous True runs of a periodic mask as (start, length) in grid points."""
    n = mask.size
    if mask.all():
        return [(0, n)]
    if not mask.any():
        return []
    start0 = int(np.argmin(mask))  # a False point: begin scanning there so runs never wrap mid-scan
    runs, i = [], 0
    while i < n:
        k = (start0 + i) % n
        if mask[k]:
            s, length = k, 0
            while i < n and mask[(start0 + i) % n]:
                length += 1
                i += 1
            runs.append((s, length))
        else:
            i += 1
    return runs


def find_vacuum_plateaus(z: Sequence[float], potential: Sequence[float], cell_length: float | None = None,
                         atom_z: Sequence[float] | None = None, flat_tol: float = 0.02,
                         window_A: float = 1.5, min_plateau_A: float = 1.5,
                         min_atom_distance_A: float = 3.0) -> list[dict]:
    """Flat vacuum regions of a periodic planar-averaged potential, longest first."""
    z = np.asarray(z, dtype=float)
    v = np.asarray(potential, dtype=float)
    if z.shape != v.shape or z.size < 8:
        raise ValueError("find_vacuum_plateaus: z and potential must be equal-length arrays (>= 8 points)")
    n = z.size
    dz = float(np.median(np.diff(z)))
    length = float(cell_length) if cell_length else float(z[-1] - z[0] + dz)
    half = max(1, int(round(0.5 * window_A / dz)))
    idx = (np.arange(n)[:, None] + np.arange(-half, half + 1)[None, :]) % n
    local = v[idx]
    flat = (local.max(axis=1) - local.min(axis=1)) <= flat_tol
    if atom_z is not None and len(atom_z):
        a = np.asarray(atom_z, dtype=float) % length
        d = np.abs((z[:, None] - a[None, :] + 0.5 * length) % length - 0.5 * length).min(axis=1)
        flat &= d >= min_atom_distance_A
    plateaus = []
    for s, ln in _segments(flat):
        if ln * dz < min_plateau_A:
            continue
        ids = (s + np.arange(ln)) % n
        plateaus.append({"start_A": float(z[s]), "end_A": float(z[ids[-1]]), "length_A": ln * dz,
                         "center_A": float((z[s] + 0.5 * (ln - 1) * dz) % length),
                         "value_eV": float(np.mean(v[ids]))})
    plateaus.sort(key=lambda p: -p["length_A"])
    return plateaus


def work_function(z: Sequence[float], potential: Sequence[float], fermi_eV: float,
                  cell_length: float | None = None, atom_z: Sequence[float] | None = None,
                  **plateau_kw) -> WorkFunctionResult:
    """phi = V_vac - E_F for the top and bottom surfaces (equal for a symmetric slab)."""
    z = np.asarray(z, dtype=float)
    v = np.asarray(potential, dtype=float)
    plateaus = find_vacuum_plateaus(z, v, cell_length, atom_z, **plateau_kw)
    if not plateaus:
        raise NoVacuumError(
            "no flat vacuum plateau in the planar-averaged potential: add vacuum (>= ~10 A) or loosen "
            "flat_tol/min_plateau_A")
    dz = float(np.median(np.diff(z)))
    length = float(cell_length) if cell_length else float(z[-1] - z[0] + dz)
    top = bottom = plateaus[0]
    if len(plateaus) > 1 and abs(plateaus[0]["value_eV"] - plateaus[1]["value_eV"]) > 0.05:
        # dipole step: two plateaus. Anchor inside the slab at the deepest point of the potential.
        if atom_z is not None and len(atom_z):
            za = np.sort(np.asarray(atom_z, dtype=float) % length)
            gaps = np.diff(np.r_[za, za[0] + length])
            k = int(np.argmax(gaps))  # the vacuum gap lies after atom k; slab centre is opposite it
            z_slab = (za[k] + gaps[k] + 0.5 * (length - gaps[k])) % length
        else:
            z_slab = float(z[int(np.argmin(v))])
        p1, p2 = plateaus[0], plateaus[1]
        up1 = (p1["center_A"] - z_slab) % length
        up2 = (p2["center_A"] - z_slab) % length
        top, bottom = (p1, p2) if up1 < up2 else (p2, p1)
    return WorkFunctionResult(
        vacuum_top_eV=top["value_eV"], vacuum_bottom_eV=bottom["value_eV"],
        work_function_top_eV=top["value_eV"] - fermi_eV,
        work_function_bottom_eV=bottom["value_eV"] - fermi_eV,
        fermi_eV=float(fermi_eV), plateaus=plateaus)
