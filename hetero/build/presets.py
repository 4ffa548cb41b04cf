"""Ready-made models for the four seed studies (see shared/science/SEED_CALCULATIONS.md).

Every preset has a `fast` model (<= 40 atoms, for quick checks with a public code) and a `standard`
model (<= 150 atoms). The ModelRecord notes say which cell was taken, what strain it carries and
(for ions) what coverage it implies.
"""

from __future__ import annotations

from typing import Callable

from pymatgen.core import Lattice, Structure

from hetero.build.common import BuildError, resolve_structure
from hetero.build.slabs import build_slab
from hetero.schemas import ModelRecord

MODELS = ("fast", "standard")
MAX_ATOMS = {"fast": 40, "standard": 150}

VN_A = 4.139  # Angstrom, rocksalt VN (experimental lattice constant), used when the library lacks VN


def _lib_or(name: str, fallback: Callable[[], Structure]) -> Structure:
    try:
        s, _ = resolve_structure(name)
        return s
    except Exception:
        return fallback()


def vn_bulk() -> Structure:
    return _lib_or(
        "VN",
        lambda: Structure.from_spacegroup("Fm-3m", Lattice.cubic(VN_A), ["V", "N"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    )


def _check_model(model: str) -> str:
    if model not in MODELS:
        raise BuildError(f"model {model!r} unknown: use one of {MODELS}")
    return model


def vn001_na(model: str = "fast", vacuum: float = 15.0) -> tuple[Structure, ModelRecord]:
    """VN(001) slab, 4 atomic planes, bottom 2 fixed, for one Na adatom on its top surface.

    fast: 1x1 primitive surface cell (a/sqrt2 ~ 2.93 A square, 1 V + 1 N per plane, 8 atoms): one Na
    per cell = 1 Na per surface V (Na-Na 2.93 A, a dense Na layer, shorter than in Na metal 3.66 A).
    standard: 2x2 of that cell (= sqrt2 x sqrt2 of the conventional face, 5.85 A square, 32 atoms):
    one Na per 4 surface V (Na-Na 5.85 A, 0.25 monolayer).
    """
    _check_model(model)
    bulk = vn_bulk()
    sc = (1, 1) if model == "fast" else (2, 2)
    slab, rec = build_slab(bulk, (0, 0, 1), layers=4, vacuum=vacuum, supercell=sc, fix_bottom_layers=2, name="VN")
    a = slab.lattice.a
    n_v_top = 1 if model == "fast" else 4
    rec.system = f"VN(001)-{model}"
    rec.needs_dipole_correction = True  # the Na adatom sits on one side only
    rec.notes = (
        f"preset vn001_na/{model}: VN(001) rocksalt slab, {'1x1 primitive surface cell' if model == 'fast' else '2x2 primitive surface cell (sqrt2 x sqrt2 conventional)'}"
        f" {a:.3f} x {slab.lattice.b:.3f} A, 4 atomic planes ({len(slab)} atoms), bottom 2 planes fixed, vacuum {vacuum} A. "
        f"One Na per cell = 1 Na per {n_v_top} surface V ({1.0 / n_v_top:.2f} ML w.r.t. surface V, Na-Na {a:.2f} A, "
        f"{slab.lattice.a * slab.lattice.b:.1f} A^2 per Na). Dipole correction needed (adatom on one side). "
        f"Sites: top-V, top-N, bridge, hollow (find_sites)."
    )
    return slab, rec


PRESET_FUNCS: dict[str, Callable[..., tuple[Structure, ModelRecord]]] = {"vn001_na": vn001_na}
PRESETS: tuple[str, ...] = ("vs2_v2co2", "vs2_v2coh2", "vs2_v2cf2", "v2o5_cu2v2o7", "v5s8_sb2s3", "vn001_na")


def get_preset(study: str, model: str = "fast") -> tuple[Structure, ModelRecord]:
    """(Structure, ModelRecord) for one of PRESETS and model 'fast' | 'standard'."""
    key = study.lower()
    if key not in PRESETS:
        raise BuildError(f"unknown preset {study!r}: choose one of {', '.join(PRESETS)}")
    _check_model(model)
    if key not in PRESET_FUNCS:
        raise BuildError(f"preset {study!r} is not implemented yet")
    s, rec = PRESET_FUNCS[key](model=model)
    if len(s) > MAX_ATOMS[model]:
        raise BuildError(f"preset {study}/{model} has {len(s)} atoms > {MAX_ATOMS[model]}")
    return s, rec
