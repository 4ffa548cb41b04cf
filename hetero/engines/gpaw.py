"""GPAW engine: the neutral settings translated into GPAW keywords, each task run under MPI in a child.

The DFT itself runs in a child process, `mpiexec -n N python -m hetero.engines.gpaw_worker` with
GPAW_MPI_BACKEND=cgpaw (GPAW's documented alternative to `gpaw python`, which imports every GPAW module
up front), so the orchestrating process (jobflow) stays serial and MPI-free; with the preset key
`gpaw: {persistent_worker: true}` one such child serves every task of the process (hetero.engines.gpaw_server).
Folders, caching and resume come from hetero.engines.base; relaxation and NEB use the ASE path shared with
the MLIPs (hetero.engines.ase_tasks).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pymatgen.core import Structure

from hetero.engines.base import Capability, Engine, EngineRunError, ModelTooLargeError, structure_from_atoms_dict
from hetero.engines.process import die_with_parent
from hetero.engines.settings import PresetError, Resolved, SettingsError, configs_dir  # noqa: F401 (re-exported)

# GPAW-only settings (the escape hatch under `gpaw:` in presets and campaign overrides)
GPAW_KEYS = {
    "mode": "pw | lcao", "basis": "LCAO basis (lcao mode)", "h_A": "real-space grid spacing (A)",
    "scf_density": "SCF density convergence", "scf_maxiter": "SCF iteration limit",
    "scf_eigenstates": "SCF eigenstate-residual limit, eV^2 per valence electron (null: GPAW's 4e-8); energy and "
                       "density still decide convergence",
    "mixer_beta": "density mixing (null: GPAW default)", "optimizer": "BFGS | FIRE",
    "neb_parallel": "moving NEB images on separate MPI rank groups when ranks split evenly",
    "prerelax_mlip": "pre-relax starts with an MLIP before DFT (chgnet | sevennet | null); never reported",
    "memory_limit_GiB": "refuse models whose estimated memory exceeds this", "write_gpw": "keep the .gpw restart file",
    "symmetry": "GPAW symmetry dict",
    "persistent_worker": "local runs: one MPI worker serves every GPAW task of the hetero process (saves the ~1 s "
                         "start-up per task); ignored with HETERO_GPAW_LAUNCH; never in a task's settings",
}


class SCFNotConvergedError(EngineRunError):
    pass


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


@dataclass
class GpawEngine(Engine):
    """GPAW (PW mode by default); `cores` defaults to all local cores (or HETERO_CORES / SLURM_NTASKS)."""

    preset: str = "fast"
    cores: int | None = None

    name: ClassVar[str] = "gpaw"

    # both modes give every output; LCAO's ELF needs the kinetic-energy density GPAW lacks there, which the worker
    # adds (gpaw_worker._lcao_add_to_ked)
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability)

    def check_native(self, native: dict[str, Any]) -> None:
        bad = sorted(set(native) - set(GPAW_KEYS))
        if bad:
            raise SettingsError(f"unknown GPAW-only settings {bad} under 'gpaw:'; valid: {', '.join(sorted(GPAW_KEYS))} "
                                "(neutral settings such as spin or kpoints_mesh go at the top level)")
        if not isinstance(native.get("persistent_worker", False), bool):
            raise SettingsError(f"gpaw: persistent_worker must be true or false, not {native['persistent_worker']!r}")

    def n_cores(self) -> int:
        if self.cores:
            return self.cores
        for var in ("HETERO_CORES", "SLURM_NTASKS", "PBS_NP"):
            if os.environ.get(var):
                return int(os.environ[var])
        return os.cpu_count() or 1

    def translate(self, resolved: Resolved, structure: Structure, kind: str, **options: Any) -> dict[str, Any]:
        v = resolved.values
        n = self.native
        s = {
            "xc": v["xc"], "mode": n.get("mode", "pw"), "ecut_eV": float(v["cutoff_eV"]), "kpts": list(v["kpoints"]),
            "smearing_eV": float(v["smearing_eV"]), "scf_energy_eV": float(v["scf_energy_eV"]),
            "scf_density": float(n.get("scf_density", 1e-4)), "scf_maxiter": int(n.get("scf_maxiter", 300)),
            "mixer_beta": n.get("mixer_beta"), "spinpol": v["spin"] == "on", "magmoms": dict(v["magmoms"]),
            "d3": None if v["dispersion"] == "off" else v["dispersion"], "dipole_correction": v["dipole"] == "on",
            "hubbard_u": dict(v["hubbard_u"]),
        }
        for key in ("basis", "h_A", "symmetry", "scf_eigenstates"):  # only when set: other tasks keep their hashes
            if n.get(key) is not None:
                s[key] = n[key]
        if kind == "relax":
            s.update(fmax_eV_A=float(v["fmax_eV_A"]), relax_steps=int(v["relax_steps"]),
                     optimizer=n.get("optimizer", "BFGS"), prerelax_mlip=n.get("prerelax_mlip"))
            if options.get("cell") and s["mode"] == "lcao":
                # GPAW's LCAO mode has no stress tensor: the cell comes from an E(V) fit instead (hetero.engines.ase_tasks)
                s["cell_relax"] = "eos"
        if kind == "static":
            s.update(dos_kpts=v["dos_kpoints_mesh"], dos_width_eV=float(v["dos_width_eV"]),
                     write_gpw=bool(n.get("write_gpw", False)))
        if kind == "neb":
            s.update({k: v[k] for k in ("neb_steps", "neb_fmax_eV_A", "neb_spring", "neb_climb")})
            s["neb_parallel"] = bool(n.get("neb_parallel", True))
        return s

    def before_run(self, task: dict, structure: Structure) -> None:
        settings = task["settings"]
        est = estimate_memory_GiB(structure, settings, settings["kpts"])
        limit = self.native.get("memory_limit_GiB", 20)
        if est > limit:
            raise ModelTooLargeError(
                f"{structure.composition.reduced_formula} ({len(structure)} atoms): estimated {est:.1f} GiB "
                f"exceeds the preset's memory_limit_GiB={limit}; use a smaller model "
                "(builder preset 'fast'), fewer k-points, or raise gpaw: {memory_limit_GiB: ...}"
            )

    def check_cached(self, task: dict, result: dict, folder: Path) -> None:
        """Every SCF log of the task says it converged, and the arrays and restart files it lists open."""
        from hetero.engines.base import OutputValidationError

        kind = task["kind"]
        if kind == "neb":
            logs = sorted(folder.glob("gpaw-image*.txt"))
        elif kind == "static" and result.get("retried_safe_mixing"):
            logs = [folder / "gpaw-static-retry.txt"]
        else:
            logs = [folder / f"gpaw-{kind}.txt"] + sorted(folder.glob(f"gpaw-{kind}-retry.txt"))
        logs = [p for p in logs if p.exists()]
        if logs and not any("Converged in" in p.read_text(errors="replace") for p in logs):
            raise OutputValidationError(f"{logs[0]}: the GPAW log shows no converged SCF; delete {folder} to compute it again")
        for role, name in result.get("files", {}).items():
            path = folder / name
            if path.exists() and path.suffix in (".npz", ".gpw", ".traj") and not _readable(path):
                raise OutputValidationError(f"{path}: unreadable {role} file (truncated or corrupt); delete {folder} "
                                            "to compute it again")

    def _compute(self, task: dict, folder: Path, structure: Structure) -> dict[str, Any]:
        keep_interrupted_logs(folder)
        mlip = task["settings"].get("prerelax_mlip")
        prerelax_s = None
        if task["kind"] == "relax" and mlip and not (folder / "relax.traj").exists():
            # the folder keeps the hash of the un-pre-relaxed input, so a re-run finds (and resumes) it
            from hetero.engines.mlip import prerelax

            t0 = time.time()
            start = prerelax(structure, model=mlip)
            prerelax_s = time.time() - t0
            run_task = dict(task, atoms={**task["atoms"], "positions": start.cart_coords.tolist()}, prerelaxed_with=mlip,
                            input_atoms=task["atoms"])
            (folder / "task.json").write_text(json.dumps(run_task))
        result = self._launch(folder)
        parts = sorted(folder.glob(f"gpaw-{task['kind']}.part*.txt"))
        if parts:  # resumed: count the interrupted parts too (the cost of the result, not just its last leg)
            result["restarts"] = max(int(result.get("restarts") or 0), len(parts))
            if task["kind"] == "static" and result.get("n_scf") is not None:
                result["n_scf"] += sum(p.read_text(errors="replace").count("|iter:") for p in parts)
        if prerelax_s is not None:  # the MLIP's load (first use in this process) and relaxation, outside GPAW
            result["prerelax_wall_s"] = prerelax_s
        return result

    def _launch(self, folder: Path) -> dict:
        n = self.n_cores()
        launch = os.environ.get("HETERO_GPAW_LAUNCH")  # a cluster's own line, e.g. "srun -n 32 gpaw python"
        if not launch and importlib.util.find_spec("gpaw") is None:
            raise EngineRunError("GPAW is not installed in this Python; install hetero with the [gpaw] extra")
        cmd = [sys.executable, "-m", "hetero.engines.gpaw_worker"]
        if launch:
            import shlex

            cmd = [*shlex.split(launch), "-m", "hetero.engines.gpaw_worker"]
        elif n > 1:
            mpiexec = shutil.which("mpiexec")
            if mpiexec is None:
                raise EngineRunError("mpiexec not found; install openmpi-bin or set HETERO_CORES=1")
            extra = ["--allow-run-as-root"] if os.geteuid() == 0 else []
            extra += ["--oversubscribe"] if os.environ.get("HETERO_OVERSUBSCRIBE") else []
            cmd = [mpiexec, *extra, "-n", str(n), *cmd]
        env = dict(os.environ, HETERO_TASK_DIR=str(folder), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        if not launch:  # GPAW's MPI through plain python; one core outside an MPI launcher needs no MPI at all
            inside_mpi = any(v in os.environ for v in ("PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "I_MPI_MPIRUN"))
            env.setdefault("GPAW_MPI_BACKEND", "cgpaw" if n > 1 or inside_mpi else "serial")
        # idle ranks yield the core instead of spinning: two runs sharing a node stay usable
        env.setdefault("OMPI_MCA_mpi_yield_when_idle", "1")
        t0 = time.time()
        (folder / "result.json").unlink(missing_ok=True)
        if self.native.get("persistent_worker") and not launch:  # one worker for every task of this process
            from hetero.engines.gpaw_server import run_on_server

            returncode = run_on_server(cmd, env, folder)
        else:
            with open(folder / "worker.log", "ab") as log:
                proc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
            returncode = proc.returncode
        if returncode != 0 or not (folder / "result.json").exists():
            log_text = (folder / "worker.log").read_text(errors="replace")
            if "KohnShamConvergenceError" in log_text:
                raise SCFNotConvergedError(
                    f"SCF did not converge in {folder} (scf_maxiter), nor on the retry with safer mixing "
                    "(beta 0.02) and doubled smearing: raise gpaw: {scf_maxiter: ...}, check the structure or the spin set-up"
                )
            raise EngineRunError(f"GPAW run in {folder} failed (exit {returncode}); last output:\n{log_text[-2000:]}")
        try:
            result = json.loads((folder / "result.json").read_text())
        except json.JSONDecodeError as exc:
            raise EngineRunError(f"{folder / 'result.json'}: incomplete result file ({exc})") from exc
        result["launch_wall_s"] = time.time() - t0
        return result


def keep_interrupted_logs(folder: Path) -> list[Path]:
    """Rename the GPAW logs an interrupted run left (gpaw-relax.txt -> gpaw-relax.part1.txt, ...) before
    the task starts again: GPAW overwrites its log, and the SCF record of the first part (cost accounting,
    convergence history) would be lost on every resume."""
    kept = []
    for log in sorted(folder.glob("gpaw-*.txt")):
        if ".part" in log.name:
            continue
        k = 1
        while (target := log.with_name(f"{log.stem}.part{k}.txt")).exists():
            k += 1
        log.rename(target)
        kept.append(target)
    return kept


def _readable(path: Path) -> bool:
    """An .npz (zip) or an ASE/GPAW ulm file (.gpw, .traj) that opens and is not cut short."""
    import zipfile

    try:
        if path.suffix == ".npz":
            with zipfile.ZipFile(path) as z:
                return z.testzip() is None
        from ase.io import ulm

        with ulm.open(str(path)) as r:
            return len(r) >= 1
    except Exception:  # noqa: BLE001 - any failure to open is an unreadable file
        return False


__all__ = ["GpawEngine", "ModelTooLargeError", "SCFNotConvergedError", "EngineRunError", "PresetError",
           "structure_from_atoms_dict", "estimate_memory_GiB", "die_with_parent"]
