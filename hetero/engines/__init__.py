"""Engines: how one calculation runs. All share one contract (relax/static/neb -> result dicts)."""

from __future__ import annotations

from typing import Any

ENGINES = ("gpaw", "vasp")


def get_engine(name: str = "gpaw", preset: str = "fast", overrides: dict[str, Any] | None = None, **kw: Any):
    """The engine for a flow's ``engine`` field: {"name": "gpaw" | "vasp", "preset": ..., "overrides": {...}}.

    Both return plain result dicts of the same shape from relax/static/neb (see hetero.engines.gpaw and
    hetero.engines.vasp.VaspEngine), so the jobs in hetero.flows.jobs run unchanged on either.
    """
    if name == "gpaw":
        from hetero.engines.gpaw import GpawEngine

        return GpawEngine(preset=preset, overrides=overrides or {}, **kw)
    if name == "vasp":
        from hetero.engines.vasp import VaspEngine

        return VaspEngine(preset=preset, overrides=overrides or {}, **kw)
    raise ValueError(f"unknown engine '{name}'; valid engines: {', '.join(ENGINES)}")
