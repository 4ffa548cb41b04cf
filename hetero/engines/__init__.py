"""Engines: how one calculation runs. All share one contract (relax/static/neb -> result dicts)."""

from __future__ import annotations

from typing import Any


def get_engine(name: str = "gpaw", preset: str = "fast", overrides: dict[str, Any] | None = None, **kw: Any):
    if name == "gpaw":
        from hetero.engines.gpaw import GpawEngine

        return GpawEngine(preset=preset, overrides=overrides or {}, **kw)
    raise ValueError(f"unknown engine '{name}': choose 'gpaw' here (VASP runs through hetero.engines.vasp makers)")
