"""Structures -> models: slabs, adsorption sites, interfaces (ZSL), migration paths, presets.

Engine-free: imports pymatgen and ASE only.
"""

from hetero.builders.common import BuildError
from hetero.builders.interfaces import Enumeration, build_interface, enumerate_interfaces, stack_layers
from hetero.builders.paths import Path, find_interlayer_sites, find_paths
from hetero.builders.presets import PRESETS, get_preset, vn001_na
from hetero.builders.sites import Site, adsorption_models, find_sites, place_ion
from hetero.builders.slabs import build_slab

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
