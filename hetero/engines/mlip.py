"""Machine-learned potentials (CHGNet, SevenNet-0) as an engine: energy, forces, relaxation, CI-NEB.

Weights ship inside the wheels (chgnet, sevenn), so this works offline. The relaxation and NEB are the
same ASE code path as GPAW's (hetero.engines.ase_tasks); only the calculator differs. No electron
density, DOS or potential: a flow that needs them fails when it is built. Every result is labelled
``mlip:<model>`` in its provenance and in the table: MLIP absolute energies are 0.3-0.45 eV off PBE
for adsorbed ions (measured on Na/VN(001)), so they rank, they do not replace DFT.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pymatgen.core import Structure

from hetero.engines import ase_tasks
from hetero.engines.base import Capability, Engine, atoms_dict, fixed_indices
from hetero.engines.settings import Resolved, SettingsError

MODELS = ("chgnet", "sevennet")
MLIP_KEYS = {"optimizer": "FIRE | BFGS", "threads": "torch threads per worker (default 1: cores are shared)",
             "keep_symmetry": "symprec (A): position relaxations keep the input's symmetry (ASE FixSymmetry)",
             "bfgs_alpha": "BFGS's initial Hessian guess, eV/A^2 (ASE's default 70 when unset)"}


def _threads() -> int:
    return int(os.environ.get("HETERO_TORCH_THREADS", "1"))


@functools.lru_cache(maxsize=2)
def calculator(model: str):
    """An ASE calculator for a shipped model, loaded once per process (torch on one thread)."""
    import torch

    torch.set_num_threads(_threads())
    if model == "chgnet":
        with contextlib.redirect_stdout(io.StringIO()):
            return _chgnet_calculator()
    if model == "sevennet":
        try:
            from sevenn.calculator import SevenNetCalculator
        except ImportError as exc:
            raise SettingsError("model 'sevennet' needs the sevenn package (pip install sevenn)") from exc
        return SevenNetCalculator("7net-0", device="cpu")
    raise SettingsError(f"unknown MLIP model '{model}'; valid: {', '.join(MODELS)}")


def _chgnet_calculator():
    """CHGNet's ASE calculator computing the stress only when asked for it. CHGNetCalculator predicts energy,
    forces, stress and magnetic moments on every call (task "efsm"), with a second backward pass for the stress;
    fixed-cell relaxations, NEB and statics need energy and forces only ("ef"): 0.50-0.53 against 0.76-1.0 s
    of CPU per call on the 32-atom Na/VN(001) slab, the same numbers. A cell relaxation asks for the stress
    and gets "efs"."""
    from chgnet.model.dynamics import CHGNetCalculator

    class EnergyForcesCHGNet(CHGNetCalculator):
        def calculate(self, atoms=None, properties=None, system_changes=None, task=None):
            if task is None:
                task = "efs" if properties and "stress" in properties else "ef"
            super().calculate(atoms, properties, system_changes, task=task)

    return EnergyForcesCHGNet(use_device="cpu")


def model_version(model: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{model} {version('chgnet' if model == 'chgnet' else 'sevenn')}"
    except PackageNotFoundError:
        return model


@dataclass
class MlipEngine(Engine):
    """A universal MLIP through ASE; ``model`` is chgnet or sevennet."""

    preset: str = "fast"
    model: str = "chgnet"

    name: ClassVar[str] = "mlip"
    # the funnel's random starts may sit on an atom and cost seconds here; its results are checked instead
    # (an overlapping relaxed pair is kept out of DFT, hetero.flows.funnel)
    refuses_overlapping_atoms: ClassVar[bool] = False
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.ENERGY_FORCES, Capability.RELAX, Capability.CELL_RELAX, Capability.NEB})

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise SettingsError(f"unknown MLIP model '{self.model}'; valid: {', '.join(MODELS)}")
        super().__post_init__()

    @property
    def label(self) -> str:
        return f"mlip:{self.model}"

    def preset_file(self) -> str:
        """A DFT preset name (interface, research_vn, ...) has no MLIP meaning: its MLIP settings are the
        standard ones, and the provenance says so (settings_sources: 'preset: standard for ...')."""
        from hetero.engines.settings import available_presets

        return self.preset if self.preset in available_presets("mlip") else "standard"

    def check_native(self, native: dict[str, Any]) -> None:
        bad = sorted(set(native) - set(MLIP_KEYS))
        if bad:
            raise SettingsError(f"unknown MLIP-only settings {bad} under 'mlip:'; valid: {', '.join(sorted(MLIP_KEYS))}")

    def translate(self, resolved: Resolved, structure: Structure, kind: str, **options: Any) -> dict[str, Any]:
        """The optimiser settings and dispersion: electronic settings (cutoff, k-points, smearing, spin, dipole)
        have no meaning for these models and are not part of the task. Dispersion does: CHGNet and SevenNet-0
        learnt PBE(+U), which barely binds a van der Waals gap (on VS2/V2CO2 CHGNet opened the S-O gap from
        3.2 to 5.7 A, SevenNet-0 to 4.9 A), so D3 is added as on GPAW (the key appears only when on, so the
        hash of every task without dispersion is unchanged)."""
        v = resolved.values
        s: dict[str, Any] = {"model": self.model, "optimizer": self.native.get("optimizer", "FIRE")}
        if v["dispersion"] != "off":
            s["d3"] = v["dispersion"]
        if kind == "relax":
            s.update(fmax_eV_A=float(v["fmax_eV_A"]), relax_steps=int(v["relax_steps"]))
            if self.native.get("bfgs_alpha") is not None:  # only when set: every other task keeps its hash
                s["bfgs_alpha"] = float(self.native["bfgs_alpha"])
            if self.native.get("keep_symmetry") and not options.get("cell"):
                s["keep_symmetry_A"] = float(self.native["keep_symmetry"])
        if kind == "neb":
            s.update({k: v[k] for k in ("neb_steps", "neb_fmax_eV_A", "neb_spring", "neb_climb")})
        return s

    def _compute(self, task: dict, folder: Path, structure: Structure) -> dict[str, Any]:
        t0 = time.time()
        settings = task["settings"]
        calc = calculator(self.model)
        if settings.get("d3"):  # the models learnt PBE: D3 with PBE's parameters, as the DFT stage uses
            calc = ase_tasks.with_dispersion(calc, settings["d3"])
        if task["kind"] == "neb":
            images = [ase_tasks.atoms_from_dict(d, task.get("fixed")) for d in task["images"]]
            for a in images[1:-1]:
                a.calc = calc
            out = ase_tasks.neb(images, task["endpoint_energies_eV"], folder, settings, parallel=False, world=None,
                                shared_calculator=True)
        else:
            atoms = ase_tasks.atoms_from_dict(task["atoms"], task.get("fixed"))
            atoms.calc = calc
            if task["kind"] == "relax":
                sym = None
                if settings.get("keep_symmetry_A"):
                    sym = keep_symmetry(atoms, task.get("fixed") or [], settings["keep_symmetry_A"])
                    atoms.set_constraint([*atoms.constraints, sym])
                out = ase_tasks.relax(atoms, folder, settings["fmax_eV_A"], settings["relax_steps"],
                                      settings["optimizer"], cell=bool(task.get("cell")),
                                      bfgs_alpha=settings.get("bfgs_alpha"))
                if sym is not None:  # the float32 noise the model leaves, projected out
                    atoms.positions = symmetrized_positions(atoms, sym)
                    out["atoms"] = ase_tasks.atoms_to_dict(atoms)
            else:
                import numpy as np

                forces = atoms.get_forces()
                out = {"energy_eV": float(atoms.get_potential_energy()),
                       "forces_max_eV_A": float(np.linalg.norm(forces, axis=1).max()),
                       "atoms": ase_tasks.atoms_to_dict(atoms), "files": {}}
        out.update(wall_s=time.time() - t0, cores=1, engine_version=model_version(self.model))
        return out


# Symmetry the input has to this distance (A, spglib's symprec) is kept exactly through the pre-relaxation.
# CHGNet's float32 forces leave ~1e-7 A of noise on an unconstrained relaxation: right at GPAW's symmetry
# tolerance (1e-7, fractional), which lost every operation of the Na/VN(001) models and once made GPAW's
# analysis inconsistent (SymmetryAnalysisBug). Deliberate displacements (random starts) are far above it.
PRERELAX_SYMPREC_A = 1e-4


def keep_symmetry(atoms, fixed: list[int], symprec: float = PRERELAX_SYMPREC_A):
    """ASE FixSymmetry for ``atoms`` (cell fixed) from the operations that map fixed atoms onto fixed
    atoms: the mirror through a symmetric slab's middle is not one, since its bottom planes stay put."""
    from ase.constraints import FixSymmetry

    probe = atoms.copy()  # spglib sees fixed atoms as another species; FixSymmetry refines the probe only
    probe.set_constraint()
    numbers = probe.get_atomic_numbers()
    numbers[list(fixed)] += 1000
    probe.set_atomic_numbers(numbers)
    return FixSymmetry(probe, symprec=symprec, adjust_cell=False)


def symmetrized_positions(atoms, sym) -> np.ndarray:
    """Cartesian positions averaged over the operations of ``sym`` (a FixSymmetry): the projection onto
    the symmetric configuration, which removes what noise is left below the symmetry tolerance."""
    import numpy as np

    spos = atoms.get_scaled_positions(wrap=False)
    shift = np.zeros_like(spos)
    for rot, trans, target in zip(sym.rotations, sym.translations, sym.symm_map):
        d = spos @ rot.T + trans - spos[target]  # atom i lands on atom target[i]
        shift[target] += d - np.round(d)
    return (spos + shift / len(sym.rotations)) @ atoms.cell.array


def prerelax(structure: Structure, model: str = "chgnet", fmax: float = 0.05, steps: int = 300) -> Structure:
    """Positions relaxed with an MLIP (cell fixed; selective dynamics honoured) as a DFT start. Never reported.

    The input's symmetry is kept exactly (ASE FixSymmetry, then positions projected onto it), as the DFT
    relaxation that follows keeps it: GPAW then finds the same operations as on the input. BFGS, not
    FIRE: half the CHGNet steps to fmax 0.05 on the demo's Na/VN(001) models (61 against 120), same energies."""
    fixed = fixed_indices(structure)
    atoms = ase_tasks.atoms_from_dict(atoms_dict(structure), fixed)
    sym = keep_symmetry(atoms, fixed)
    atoms.set_constraint([*atoms.constraints, sym])
    atoms.calc = calculator(model)
    import warnings

    from ase.optimize import BFGS

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Only FixAtoms")  # CHGNet's structure copy drops FixSymmetry: harmless
        BFGS(atoms, logfile=None).run(fmax=fmax, steps=steps)
    final = structure.copy()
    for i, pos in enumerate(symmetrized_positions(atoms, sym)):
        final.replace(i, final[i].species, pos, coords_are_cartesian=True, properties=final[i].properties)
    return final
