"""Structures -> models: slabs, adsorption sites, interfaces (ZSL), migration paths, presets.

Engine-free: imports pymatgen and ASE only.
"""

from hetero.build.common import BuildError
from hetero.build.presets import PRESETS, get_preset, vn001_na
from hetero.build.sites import Site, adsorption_models, find_sites, place_ion
from hetero.build.slabs import build_slab

__all__ = [
    "BuildError",
    "PRESETS",
    "Site",
    "adsorption_models",
    "build_slab",
    "find_sites",
    "get_preset",
    "place_ion",
    "vn001_na",
]
