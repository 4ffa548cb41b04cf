"""Engine set-up checks before a campaign writes anything: the programs and data files a run will need.

Each engine also checks at run time (hetero.engines.*.before_run); checking here too turns a set-up
problem into one clear error (exit 2) at the start instead of a failed job minutes or hours later.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from hetero.engines import Engine, EngineRunError


class EngineSetupError(EngineRunError):
    """A program, data file or environment variable the engine needs is missing or wrong."""


def _cores_from_env() -> int | None:
    for var in ("HETERO_CORES", "SLURM_NTASKS", "PBS_NP"):
        raw = os.environ.get(var)
        if raw:
            if not raw.strip().isdigit() or int(raw) < 1:
                raise EngineSetupError(f"{var}={raw!r} is not a number of cores: set a whole number >= 1 "
                                       f"(e.g. export {var}=2) or unset it")
            return int(raw)
    return None


def check_gpaw(engine: Engine, elements: list[str]) -> None:
    search = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    if shutil.which("gpaw", path=search) is None:
        raise EngineSetupError("the 'gpaw' launcher was found neither beside this Python nor on PATH: install GPAW "
                               "with `pip install 'hetero[gpaw]'` (bash scripts/setup.sh does it)")
    n = getattr(engine, "cores", None) or _cores_from_env() or os.cpu_count() or 1
    if n > 1 and shutil.which("mpiexec") is None:
        raise EngineSetupError(f"mpiexec not found for a {n}-core GPAW run: install openmpi-bin (bash scripts/setup.sh "
                               "does it) or run on one core with --cores 1")
    try:
        import gpaw
        from gpaw.setup_data import search_for_file
    except ImportError as exc:
        raise EngineSetupError(f"GPAW cannot be imported ({exc}): install it with `pip install 'hetero[gpaw]'`") from None
    xc = str(engine.neutral.get("xc", "PBE"))
    setup_xc = xc if xc in ("LDA", "PBE", "revPBE", "RPBE", "GLLBSC") else "PBE"
    missing = []
    for el in sorted(set(elements)):
        try:
            search_for_file(f"{el}.{setup_xc}")
        except (FileNotFoundError, RuntimeError):
            missing.append(el)
    if missing:
        where = ", ".join(str(p) for p in gpaw.setup_paths) or "(none)"
        raise EngineSetupError(
            f"GPAW has no PAW dataset ({setup_xc}) for {', '.join(missing)} in {where}: install gpaw-data "
            f"(`pip install gpaw-data`) or point GPAW_SETUP_PATH to a folder holding "
            f"{', '.join(f'{e}.{setup_xc}.gz' for e in missing)}")


def check_vasp(engine: Engine, elements: list[str]) -> None:
    if getattr(engine, "dry_run", False):
        return
    try:
        engine.check_command()
    except EngineRunError as exc:
        raise EngineSetupError(" ".join(str(exc).split())) from None
    from pymatgen.core import Lattice, Structure

    # a token structure holding every element: the engine's own translation names the POTCARs it will ask for
    probe = Structure(Lattice.cubic(3.0 * len(elements)), elements,
                      [[i / len(elements), 0, 0] for i in range(len(elements))])
    settings = engine.translate(engine.resolve(probe), probe, "static")
    try:
        engine.check_potcars(settings)
    except EngineRunError as exc:
        raise EngineSetupError(" ".join(str(exc).split())) from None


def check_engine_setup(engine: Engine, elements: list[str]) -> None:
    """Raise EngineSetupError (one line: what is missing and how to get it) before anything runs."""
    _cores_from_env()
    if engine.name == "gpaw":
        check_gpaw(engine, elements)
    elif engine.name == "vasp":
        check_vasp(engine, elements)
