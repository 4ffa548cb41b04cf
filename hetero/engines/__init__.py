"""Engines: how one calculation runs. Every engine implements hetero.engines.base.Engine (capabilities,
neutral settings -> its own input, typed CalcResult/NebResult), so a flow swaps engines by one field."""

from __future__ import annotations

from typing import Any

from hetero.engines.base import Capability, Engine, EngineCapabilityError, EngineRunError, ModelTooLargeError  # noqa: F401
from hetero.engines.settings import ModelFacts, PresetError, SettingsError  # noqa: F401 (re-exported)

ENGINES = ("gpaw", "vasp", "mlip")
DEFAULT_PRESET = {"gpaw": "fast", "vasp": "fast", "mlip": "fast"}


def get_engine(name: str = "gpaw", preset: str | None = None, overrides: dict[str, Any] | None = None, **kw: Any) -> Engine:
    """The engine called ``name`` ('gpaw', 'vasp', 'mlip' or 'mlip:<model>') with a preset and neutral overrides."""
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
