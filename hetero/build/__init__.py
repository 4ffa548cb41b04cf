"""Structures -> models: slabs, adsorption sites, interfaces (ZSL), migration paths, presets.

Engine-free: imports pymatgen and ASE only.
"""

from hetero.build.common import BuildError
from hetero.build.interfaces import Enumeration, build_interface, enumerate_interfaces, stack_layers
from hetero.build.paths import Path, find_interlayer_sites, find_paths
from hetero.build.presets import PRESETS, get_preset, vn001_na
from hetero.build.sites import Site, adsorption_models, find_sites, place_ion
from hetero.build.slabs import build_slab

__all__ = [
    "Enumeration",
    "Path",
    "build_interface",
    "enumerate_interfaces",
    "find_interlayer_sites",
    "find_paths",
    "stack_layers",
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
