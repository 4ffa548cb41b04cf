"""Ready-made models for the four seed studies (see shared/science/SEED_CALCULATIONS.md).

Every preset has a `fast` model (<= 40 atoms, for quick checks with a public code) and a `standard`
model (<= 150 atoms). The ModelRecord notes say which cell was taken, what strain it carries and
(for ions) what coverage it implies.
"""

from __future__ import annotations

from typing import Callable

from pymatgen.core import Lattice, Structure

from hetero.builders.common import BuildError, resolve_structure
from hetero.builders.slabs import build_slab
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
    rec.notes = (
        f"preset vn001_na/{model}: VN(001) rocksalt slab, {'1x1 primitive surface cell' if model == 'fast' else '2x2 primitive surface cell (sqrt2 x sqrt2 conventional)'}"
        f" {a:.3f} x {slab.lattice.b:.3f} A, 4 atomic planes ({len(slab)} atoms), bottom 2 planes fixed, vacuum {vacuum} A. "
        f"One Na per cell = 1 Na per {n_v_top} surface V ({1.0 / n_v_top:.2f} ML w.r.t. surface V, Na-Na {a:.2f} A, "
        f"{slab.lattice.a * slab.lattice.b:.1f} A^2 per Na). Dipole correction on the Na models (adatom on one side); the bare slab is symmetric. "
        f"Sites: top-V, top-N, bridge, hollow (find_sites)."
    )
    return slab, rec


MXENE = {"vs2_v2co2": "V2CO2", "vs2_v2coh2": "V2COH2", "vs2_v2cf2": "V2CF2"}
# standard-model ZSL tolerances per MXene (pymatgen's defaults give no <=150-atom cell for V2C(OH)2)
VS2_STD_TOL = {
    "V2CO2": {"max_length_tol": 0.03, "max_angle_tol": 0.01, "max_area_ratio_tol": 0.09},
    "V2COH2": {"max_length_tol": 0.05, "max_angle_tol": 0.02, "max_area_ratio_tol": 0.09},
    "V2CF2": {"max_length_tol": 0.03, "max_angle_tol": 0.01, "max_area_ratio_tol": 0.09},
}


def vs2_v2ctx(mxene: str, model: str = "fast", interlayer: float = 3.2, vacuum: float = 15.0) -> tuple[Structure, ModelRecord]:
    """1T-VS2 monolayer (film, strained) on a V2CTx monolayer (substrate), vdW gap `interlayer`.

    fast: sqrt3 x sqrt3 R30 VS2 on 2x2 V2CTx (29 atoms; 37 for OH): commensurate hexagonal cells, the
    VS2 carries a few % biaxial strain (stated in the record). standard: lowest-strain ZSL match with
    <= 150 atoms at the tolerances in VS2_STD_TOL.
    """
    from hetero.builders.interfaces import build_interface, stack_layers

    _check_model(model)
    if model == "fast":
        s, rec = stack_layers("VS2_1L", mxene, ((2, 1), (-1, 1)), ((2, 0), (0, 2)), interlayer_distance=interlayer, vacuum=vacuum)
        how = "sqrt3xsqrt3 R30 VS2 on 2x2 " + mxene
    else:
        tol = VS2_STD_TOL[mxene]
        s, rec = build_interface("VS2_1L", mxene, max_area=200, max_atoms=MAX_ATOMS["standard"], gap=interlayer, vacuum=vacuum, **tol)
        how = f"lowest-strain ZSL match <= 150 atoms at tolerances {tol}, max_area 200 A^2"
    rec.system = f"VS2/{mxene}-{model}"
    rec.notes = (
        f"preset vs2_{mxene.lower()}/{model}: {how}; VS2 (film) strained onto {mxene}: von Mises "
        f"{rec.strain_percent:.2f} %, principal {rec.strain_principal_percent} % (Green-Lagrange); "
        f"vdW gap {rec.interlayer_distance_A} A; {len(s)} atoms. " + rec.notes
    )
    return s, rec


JUNCTIONS = {
    # study: (film, film_miller, substrate, substrate_miller)
    "v2o5_cu2v2o7": ("V2O5", (1, 0, 1), "Cu2V2O7_beta", (2, 0, 0)),
    "v5s8_sb2s3": ("V5S8", (1, 1, 0), "Sb2S3", (1, 0, 1)),
}
JUNCTION_TOL = {"max_length_tol": 0.10, "max_angle_tol": 0.05, "max_area_ratio_tol": 0.05}
JUNCTION_AREA = {"fast": 100.0, "standard": 200.0}


def junction(study: str, model: str = "fast", gap: float = 2.0, vacuum: float = 15.0) -> tuple[Structure, ModelRecord]:
    """3D/3D junction of the V2O5/Cu2V2O7 or V5S8/Sb2S3 study: lowest-strain CoherentInterfaceBuilder
    candidate (one slab unit of each side) within the model's atom limit at JUNCTION_TOL (pymatgen's
    default tolerances give no match for these pairs)."""
    from hetero.builders.interfaces import build_interface

    _check_model(model)
    f, fm, sub, sm = JUNCTIONS[study]
    s, rec = build_interface(
        f, sub, fm, sm, film_thickness=1, substrate_thickness=1, max_area=JUNCTION_AREA[model],
        max_atoms=MAX_ATOMS[model], gap=gap, vacuum=vacuum, **JUNCTION_TOL,
    )
    rec.system = f"{f}{''.join(map(str, fm))}/{sub}{''.join(map(str, sm))}-{model}"
    rec.notes = (
        f"preset {study}/{model}: tolerances {JUNCTION_TOL} (pymatgen defaults give no match), max_area "
        f"{JUNCTION_AREA[model]} A^2, <= {MAX_ATOMS[model]} atoms; film {f} strained: von Mises {rec.strain_percent:.2f} %, "
        f"principal {rec.strain_principal_percent} %; {len(s)} atoms. " + rec.notes
    )
    return s, rec


PRESET_FUNCS: dict[str, Callable[..., tuple[Structure, ModelRecord]]] = {
    "vn001_na": vn001_na,
    **{k: (lambda model="fast", _m=v: vs2_v2ctx(_m, model)) for k, v in MXENE.items()},
    **{k: (lambda model="fast", _k=k: junction(_k, model)) for k in JUNCTIONS},
}
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
