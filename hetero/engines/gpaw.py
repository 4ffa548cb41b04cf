"""GPAW engine: turns (structure, step, preset) into a real GPAW run under MPI and returns plain dicts.

The DFT itself runs in a child process, `mpiexec -n N gpaw python -m hetero.engines.gpaw_worker`,
so the orchestrating process (jobflow) stays serial and MPI-free. Every run has its own folder named
after a hash of its task; a folder that already holds `result.json` for the same task is reused, so
re-running a campaign skips finished work and an interrupted relaxation resumes from its trajectory.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymatgen.core import Structure

from hetero.engines.presets import PresetError, configs_dir, vacuum_axes  # noqa: F401 (re-exported)
from hetero.engines.presets import available_presets as _available
from hetero.engines.presets import load_preset as _load
from hetero.schemas import settings_hash

MAGNETIC_PRONE = {"V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu"}


class ModelTooLargeError(RuntimeError):
    pass


class EngineRunError(RuntimeError):
    pass


class SCFNotConvergedError(EngineRunError):
    pass


def available_presets() -> list[str]:
    return _available("gpaw")


def load_preset(name: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """configs/gpaw/<name>.yaml merged with user overrides; unknown keys are rejected with the valid ones."""
    return _load("gpaw", name, overrides, PresetError)


def kpoint_mesh(structure: Structure, settings: dict[str, Any], vacuum_axes: tuple[int, ...] = ()) -> list[int]:
    """Explicit `kpts` apply to models with vacuum (slabs, layers, atoms in a box); a bulk crystal
    (e.g. the bulk-metal reference of an adsorption campaign) always takes its mesh from kspacing."""
    if settings.get("kpts") and vacuum_axes:
        return [int(k) for k in settings["kpts"]]
    recip = structure.lattice.reciprocal_lattice.abc  # includes 2*pi
    mesh = [max(1, math.ceil(b / settings["kspacing_A"])) for b in recip]
    for ax in vacuum_axes:
        mesh[ax] = 1
    return mesh


def estimate_memory_GiB(structure: Structure, settings: dict[str, Any], kpts: list[int]) -> float:
    """Rough upper estimate of peak memory for a PW run (wavefunctions dominate).

    N_pw = V (2 Ecut)^(3/2) / (6 pi^2) in atomic units; bands ~ 0.6 * valence electrons + 8;
    irreducible k taken as half the mesh; a factor 8 covers work arrays, mixer history and density.
    Calibrated loosely against the 12-atom VS2 slab (~300 MiB per rank measured).
    """
    bohr3 = structure.volume / 0.529177**3
    ecut_ha = settings.get("ecut_eV", 400) / 27.2114
    n_pw = bohr3 * (2 * ecut_ha) ** 1.5 / (6 * math.pi**2)
    n_val = 1.5 * sum(_approx_valence(sp.symbol) for sp in structure.species)
    n_bands = 0.6 * n_val + 8
    n_k = max(1, math.prod(kpts) // 2)
    spin = 2 if settings.get("spinpol") else 1
    return n_pw * n_bands * n_k * spin * 16 * 8 / 2**30 + 0.3


def _approx_valence(symbol: str) -> int:
    """Electrons outside the previous noble-gas core (PAW setups may add semicore states)."""
    from pymatgen.core import Element

    z = Element(symbol).Z
    core = max(n for n in (0, 2, 10, 18, 36, 54, 86) if n < z) if z > 2 else 0
    return z - core


def resolve_settings(
    structure: Structure, preset: dict[str, Any], *, asymmetric_slab: bool = False, stacked: bool = False
) -> dict[str, Any]:
    """Resolve the 'auto' fields of a preset for one structure; the result is what gets hashed/stored."""
    s = dict(preset)
    vac = vacuum_axes(structure)
    s["kpts"] = kpoint_mesh(structure, preset, vac)
    elements = {sp.symbol for sp in structure.species}
    if s.get("spinpol") == "auto":
        s["spinpol"] = bool(elements & MAGNETIC_PRONE)
    if s.get("dipole_correction") == "auto":
        s["dipole_correction"] = bool(asymmetric_slab and 2 in vac)
    if s.get("d3") == "auto":
        s["d3"] = bool(stacked)
    s.pop("description", None)
    return s


@dataclass
class GpawEngine:
    """Runs relax/static/NEB tasks with GPAW; `cores` defaults to all local cores (or SLURM_NTASKS)."""

    preset: str = "fast"
    overrides: dict[str, Any] = field(default_factory=dict)
    cores: int | None = None
    name: str = "gpaw"

    def __post_init__(self) -> None:
        self.settings = load_preset(self.preset, self.overrides)

    # ---------------------------------------------------------------- helpers
    def n_cores(self) -> int:
        if self.cores:
            return self.cores
        for var in ("HETERO_CORES", "SLURM_NTASKS", "PBS_NP"):
            if os.environ.get(var):
                return int(os.environ[var])
        return os.cpu_count() or 1

    def settings_for(self, structure: Structure, **kw) -> dict[str, Any]:
        return resolve_settings(structure, self.settings, **kw)

    def check_memory(self, structure: Structure, settings: dict[str, Any]) -> float:
        est = estimate_memory_GiB(structure, settings, settings["kpts"])
        if est > settings.get("memory_limit_GiB", 20):
            raise ModelTooLargeError(
                f"{structure.composition.reduced_formula} ({len(structure)} atoms): estimated {est:.1f} GiB "
                f"exceeds the preset's memory_limit_GiB={settings['memory_limit_GiB']}; use a smaller model "
                "(builder preset 'fast'), fewer k-points, or raise memory_limit_GiB"
            )
        return est

    # ---------------------------------------------------------------- tasks
    def relax(self, structure: Structure, base_dir: Path, fixed: list[int] | None = None, **kw) -> dict:
        """Relax; with the preset's `prerelax_mlip` the start is first pre-relaxed by the MLIP.

        The run folder is named after the un-pre-relaxed input, so a re-run finds it (and resumes its
        trajectory) even though the MLIP's output may differ in the last digits between runs.
        """
        settings = self.settings_for(structure, **kw)
        task = {"kind": "relax", "settings": settings, "atoms": atoms_dict(structure, fixed, settings)}
        mlip = settings.get("prerelax_mlip")
        if mlip:
            folder = Path(base_dir) / f"relax-{settings_hash(task)}"
            pre = folder / "prerelaxed.json"
            if not (folder / "result.json").exists() and not pre.exists():
                from hetero.engines.mlip import prerelax

                folder.mkdir(parents=True, exist_ok=True)
                start = prerelax(structure, model=mlip)
                pre.write_text(json.dumps(atoms_dict(start, fixed, settings)))
        return self._run(task, base_dir, structure)

    def static(
        self,
        structure: Structure,
        base_dir: Path,
        outputs: tuple[str, ...] = ("density", "potential", "dos"),
        gpts: list[int] | None = None,
        settings_override: dict[str, Any] | None = None,
        **kw,
    ) -> dict:
        settings = settings_override or self.settings_for(structure, **kw)
        task = {
            "kind": "static",
            "settings": settings,
            "atoms": atoms_dict(structure, None, settings),
            "outputs": list(outputs),
            "gpts": gpts,
        }
        return self._run(task, base_dir, structure)

    def neb(
        self, images: list[Structure], endpoint_energies: list[float], base_dir: Path,
        neb_settings: dict[str, Any] | None = None, **kw,
    ) -> dict:
        """CI-NEB; `neb_settings` (neb_* keys) override the preset for this task only, so a campaign can
        set its NEB without touching the hashes (and cached results) of its relax and static runs."""
        settings = self.settings_for(images[0], **kw)
        bad = [k for k in (neb_settings or {}) if not k.startswith("neb_") or k not in settings]
        if bad:
            raise PresetError(f"unknown NEB settings {bad}; valid: {sorted(k for k in settings if k.startswith('neb_'))}")
        settings.update(neb_settings or {})
        task = {
            "kind": "neb",
            "settings": settings,
            "images": [atoms_dict(s, _fixed_from_props(s), settings) for s in images],
            "endpoint_energies_eV": list(endpoint_energies),
        }
        return self._run(task, base_dir, images[0], n_calcs=len(images) - 2)

    def _run(self, task: dict, base_dir: Path, structure: Structure, n_calcs: int = 1) -> dict:
        self.check_memory(structure, task["settings"])
        digest = settings_hash(task)
        folder = Path(base_dir) / f"{task['kind']}-{digest}"
        done = folder / "result.json"
        if done.exists():
            result = json.loads(done.read_text())
            result["cached"] = True
        else:
            folder.mkdir(parents=True, exist_ok=True)
            run_task = dict(task)
            if (folder / "prerelaxed.json").exists():  # start from the MLIP geometry
                run_task["atoms"] = json.loads((folder / "prerelaxed.json").read_text())
            (folder / "task.json").write_text(json.dumps(run_task))
            result = self._launch(folder)
            result["cached"] = False
        result["run_dir"] = str(folder)
        result["settings"] = task["settings"]
        result["settings_hash"] = settings_hash(task["settings"])
        result["task_hash"] = digest
        return result

    def _launch(self, folder: Path) -> dict:
        n = self.n_cores()
        gpaw_exe = shutil.which("gpaw", path=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
        if gpaw_exe is None:
            raise EngineRunError("the 'gpaw' launcher is not on PATH; install hetero with the [gpaw] extra")
        cmd = [gpaw_exe, "python", "-m", "hetero.engines.gpaw_worker"]
        if n > 1:
            mpiexec = shutil.which("mpiexec")
            if mpiexec is None:
                raise EngineRunError("mpiexec not found; install openmpi-bin or set HETERO_CORES=1")
            extra = ["--allow-run-as-root"] if os.geteuid() == 0 else []
            extra += ["--oversubscribe"] if os.environ.get("HETERO_OVERSUBSCRIBE") else []
            cmd = [mpiexec, *extra, "-n", str(n), *cmd]
        env = dict(os.environ, HETERO_TASK_DIR=str(folder), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        # idle ranks yield the core instead of spinning: two runs sharing a node stay usable
        env.setdefault("OMPI_MCA_mpi_yield_when_idle", "1")
        t0 = time.time()
        with open(folder / "worker.log", "ab") as log:
            proc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        if proc.returncode != 0 or not (folder / "result.json").exists():
            log_text = (folder / "worker.log").read_text(errors="replace")
            if "KohnShamConvergenceError" in log_text:
                raise SCFNotConvergedError(
                    f"SCF did not converge in {folder} (scf_maxiter), nor on the retry with safer mixing "
                    "(beta 0.02) and doubled smearing: raise scf_maxiter, check the structure or the spin set-up"
                )
            raise EngineRunError(f"GPAW run in {folder} failed (exit {proc.returncode}); last output:\n{log_text[-2000:]}")
        result = json.loads((folder / "result.json").read_text())
        result["launch_wall_s"] = time.time() - t0
        return result


def _fixed_from_props(structure: Structure) -> list[int]:
    sd = structure.site_properties.get("selective_dynamics")
    if sd is None:
        return []
    return [i for i, flags in enumerate(sd) if not any(flags)]


def atoms_dict(structure: Structure, fixed: list[int] | None, settings: dict[str, Any]) -> dict:
    if fixed is None:
        fixed = _fixed_from_props(structure)
    symbols = [sp.symbol for sp in structure.species]
    magmoms = None
    if settings.get("spinpol"):
        m0 = settings.get("magmom_init", 1.0)
        magmoms = [m0 if s in MAGNETIC_PRONE else 0.0 for s in symbols]
        if not any(magmoms):
            magmoms = [m0] * len(symbols)  # e.g. an isolated alkali atom
    return {
        "symbols": symbols,
        "positions": structure.cart_coords.tolist(),
        "cell": structure.lattice.matrix.tolist(),
        "pbc": [True, True, True],
        "fixed": list(fixed),
        "magmoms": magmoms,
    }


def structure_from_atoms_dict(d: dict) -> Structure:
    return Structure(d["cell"], d["symbols"], d["positions"], coords_are_cartesian=True)
