"""Engines: how one calculation runs. Every engine implements hetero.engines.base.Engine (capabilities,
neutral settings -> its own input, typed CalcResult/NebResult), so a flow swaps engines by one field.

The contract's names are imported on first use (PEP 562): the GPAW worker imports
hetero.engines.ase_tasks in every MPI rank of every DFT task and needs neither pymatgen nor pydantic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hetero.engines.base import Capability, Engine, EngineCapabilityError, EngineRunError, ModelTooLargeError
    from hetero.engines.settings import ModelFacts, PresetError, SettingsError

ENGINES = ("gpaw", "vasp", "mlip")
DEFAULT_PRESET = {"gpaw": "fast", "vasp": "fast", "mlip": "fast"}

# re-exported name -> the module that defines it
_LAZY = {
    **dict.fromkeys(("Capability", "Engine", "EngineCapabilityError", "EngineRunError", "ModelTooLargeError"),
                    "hetero.engines.base"),
    **dict.fromkeys(("ModelFacts", "PresetError", "SettingsError"), "hetero.engines.settings"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hetero.engines' has no attribute {name!r}")


def get_engine(name: str = "gpaw", preset: str | None = None, overrides: dict[str, Any] | None = None, **kw: Any) -> Engine:
    """The engine called ``name`` ('gpaw', 'vasp', 'mlip' or 'mlip:<model>') with a preset and neutral overrides."""
    from hetero.engines.settings import SettingsError

    base, _, model = name.partition(":")
    if base not in ENGINES:
        raise SettingsError(f"unknown engine '{name}'; valid engines: {', '.join(ENGINES)} (mlip:chgnet, mlip:sevennet)")
    preset = preset or DEFAULT_PRESET[base]
    if base == "gpaw":
        from hetero.engines.gpaw import GpawEngine

        return GpawEngine(preset=preset, overrides=overrides or {}, **kw)
    if base == "vasp":
        from hetero.engines.vasp import VaspEngine

        return VaspEngine(preset=preset, overrides=overrides or {}, **kw)
    from hetero.engines.mlip import MlipEngine

    return MlipEngine(preset=preset, overrides=overrides or {}, model=model or kw.pop("model", "chgnet"), **kw)


__all__ = ["ENGINES", "DEFAULT_PRESET", "get_engine", *_LAZY]
