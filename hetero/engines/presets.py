"""Shared by the engines: where configs live, preset loading with checked overrides, vacuum axes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pymatgen.core import Structure


class PresetError(ValueError):
    pass


def configs_dir() -> Path:
    env = os.environ.get("HETERO_CONFIGS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "configs"


def available_presets(engine: str) -> list[str]:
    return sorted(p.stem for p in (configs_dir() / engine).glob("*.yaml"))


def load_preset(engine: str, name: str, overrides: dict[str, Any] | None = None, error=PresetError) -> dict[str, Any]:
    """configs/<engine>/<name>.yaml merged with user overrides (dict values merge one level deep).

    An unknown preset or override key is an error that lists the valid ones.
    """
    path = configs_dir() / engine / f"{name}.yaml"
    if not path.exists():
        raise error(f"unknown {engine.upper()} preset '{name}'; valid presets: {', '.join(available_presets(engine))}")
    preset = yaml.safe_load(path.read_text())
    for key, val in (overrides or {}).items():
        if key not in preset:
            raise error(f"unknown preset key '{key}' (preset '{name}'); valid keys: {', '.join(sorted(preset))}")
        preset[key] = {**preset[key], **val} if isinstance(val, dict) and isinstance(preset[key], dict) else val
    return preset


def vacuum_axes(structure: Structure, min_gap_A: float = 6.0) -> tuple[int, ...]:
    """Lattice axes along which the atoms leave an empty gap wider than min_gap_A (slabs, 2D layers)."""
    axes = []
    for ax in range(3):
        f = np.sort(structure.frac_coords[:, ax] % 1.0)
        gaps = np.diff(np.r_[f, f[0] + 1.0]) * structure.lattice.abc[ax]
        if gaps.max() >= min_gap_A:
            axes.append(ax)
    return tuple(axes)
