"""Machine-learned potentials (CHGNet) for pre-relaxing geometries before DFT. Never reported.

CHGNet's weights ship inside its wheel, so this works offline. Its absolute energies are off by a
few tenths of an eV against PBE, so only geometries leave this module.
"""

from __future__ import annotations

import functools
import io
import contextlib

from pymatgen.core import Structure


@functools.lru_cache(maxsize=1)
def _chgnet_relaxer():
    from chgnet.model import StructOptimizer

    with contextlib.redirect_stdout(io.StringIO()):
        return StructOptimizer()


def prerelax(structure: Structure, model: str = "chgnet", fmax: float = 0.05, steps: int = 300) -> Structure:
    """Relax positions (cell fixed; selective dynamics honoured) with an MLIP; returns a new Structure."""
    if model != "chgnet":
        raise ValueError(f"unknown MLIP '{model}': 'chgnet' is supported")
    relaxer = _chgnet_relaxer()
    with contextlib.redirect_stdout(io.StringIO()):
        out = relaxer.relax(structure, fmax=fmax, steps=steps, relax_cell=False, verbose=False)
    final: Structure = out["final_structure"]
    if "selective_dynamics" in structure.site_properties:
        final.add_site_property("selective_dynamics", structure.site_properties["selective_dynamics"])
    for key, value in (structure.properties or {}).items():
        final.properties[key] = value
    return final
