"""The engine contract: what every engine (GPAW, VASP, MLIP) can do, how it is asked, what it returns.

An engine is a small dataclass (name, preset, user overrides) that
- declares its capabilities, so a flow that needs something the engine lacks fails when it is built;
- resolves the neutral settings (hetero.engines.settings) for a structure and the model's facts,
  translates them into its own input, and runs one task in its own folder
  ``<base_dir>/<kind>-<task hash>``; a folder holding ``result.json`` is reused (resume, caching);
- returns typed results (hetero.schemas.CalcResult / NebResult) with the settings used and their sources.

Adding an engine: subclass Engine, set ``name`` and ``capabilities``, implement ``translate`` (neutral
-> native settings) and ``_compute`` (run one task in a folder, return the result dict below), add
configs/<name>/*.yaml presets, and register it in hetero.engines.ENGINES.

The result dict an engine's ``_compute`` writes to result.json (shared by all engines):
relax/static: energy_eV, forces_max_eV_A, fermi_eV, converged, n_scf, n_ionic_steps, magmom_total,
atoms {symbols, positions, cell}, files {role: name in folder}, and for outputs: gpts, valence,
core_electrons, planar_potential_eV, dos_fermi_eV, eigen_gap_eV, n_electrons_below_fermi;
neb: energies_eV, reaction_coord_A, spline_x_A, spline_e_eV, converged, n_images_moving, images [atoms].
"""

from __future__ import annotations

import json
import math
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from monty.json import MSONable
from pymatgen.core import Structure

from hetero.analysis.descriptors import unphysical_contact
from hetero.engines.settings import ModelFacts, Resolved, merge_settings, resolve
from hetero.io.reuse import adopt_finished_task, detach_linked_files
from hetero.schemas import CalcResult, ElectronicOutputs, NebResult, Provenance, plain_structure_dict, settings_hash


class Capability(str, Enum):
    ENERGY_FORCES = "energy and forces"
    RELAX = "relaxation"
    CELL_RELAX = "cell relaxation"
    NEB = "CI-NEB"
    DENSITY = "charge density"
    ALL_ELECTRON_DENSITY = "all-electron density"
    DOS = "density of states"
    POTENTIAL = "electrostatic potential"
    ELF = "electron localisation function"
    # the ELF's ingredients per spin (density and kinetic-energy density), for an interface's ELF "before"
    KINETIC_ENERGY_DENSITY = "kinetic-energy density"


# static-run outputs -> the capability each needs
OUTPUT_CAPABILITY = {
    "density": Capability.DENSITY,
    "potential": Capability.POTENTIAL,
    "dos": Capability.DOS,
    "elf": Capability.ELF,
}


class EngineCapabilityError(ValueError):
    """A flow asked an engine for something it cannot give (raised when the flow is built)."""


class UnphysicalStructureError(ValueError):
    """Two atoms of a relaxation's or static's input overlap: refused before anything runs."""


class EngineRunError(RuntimeError):
    pass


class ModelTooLargeError(ValueError):
    """A model the engine would not fit in memory (refused before anything runs)."""


class OutputValidationError(EngineRunError):
    """An engine's output is not a result (NaN energy, truncated file): the job fails, nothing is stored."""


def _atomic_write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


# files an export leaves behind (hetero.export) that a finished task can do without until an analysis needs them
RESTORABLE_FILES = {"density", "elf_parts"}


# Recognising a task folder whose input differs only by floating-point noise (Engine.task_folder)
SAME_INPUT_TOL_A = 1e-4
# folders written before task.json kept the input next to an MLIP-pre-relaxed start ("input_atoms") hold only
# the pre-relaxed positions: matched more loosely, and only when exactly one folder of that kind matches
LEGACY_PRERELAXED_TOL_A = 0.5
_GEOMETRY_KEYS = ("atoms", "input_atoms", "images", "prerelaxed_with")


def _max_displacement_A(a: dict, b: dict) -> float:
    """Largest minimum-image displacement between two atoms dicts (inf when species, cell or pbc differ)."""
    if a["symbols"] != b["symbols"] or list(a.get("pbc", [])) != list(b.get("pbc", [])):
        return float("inf")
    cell_a, cell_b = np.asarray(a["cell"], float), np.asarray(b["cell"], float)
    if cell_a.shape != cell_b.shape or not np.allclose(cell_a, cell_b, atol=1e-5):
        return float("inf")
    inv = np.linalg.inv(cell_a)
    d = (np.asarray(a["positions"], float) - np.asarray(b["positions"], float)) @ inv
    d -= np.round(d)
    return float(np.linalg.norm(d @ cell_a, axis=1).max()) if len(d) else 0.0


def _task_inputs(task: dict) -> list[dict]:
    return task["images"] if "images" in task else [task.get("input_atoms") or task["atoms"]]


def same_task_folder(task: dict, base_dir: Path) -> Path | None:
    """A folder in ``base_dir`` holding this task up to floating-point noise in its geometry, else None."""
    if not base_dir.is_dir():
        return None
    rest = json.dumps({k: v for k, v in task.items() if k not in _GEOMETRY_KEYS}, sort_keys=True, default=str)
    close, legacy = [], []
    for path in sorted(base_dir.glob(f"{task['kind']}-*/task.json")):
        try:
            other = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if json.dumps({k: v for k, v in other.items() if k not in _GEOMETRY_KEYS}, sort_keys=True, default=str) != rest:
            continue
        mine, theirs = _task_inputs(task), _task_inputs(other)
        if len(mine) != len(theirs):
            continue
        worst = max(_max_displacement_A(a, b) for a, b in zip(mine, theirs))
        if worst < SAME_INPUT_TOL_A:
            close.append(path.parent)
        elif "prerelaxed_with" in other and "input_atoms" not in other and worst < LEGACY_PRERELAXED_TOL_A:
            legacy.append(path.parent)
    if close:
        return close[0]
    return legacy[0] if len(legacy) == 1 else None


def atoms_dict(structure: Structure) -> dict[str, Any]:
    """The hashed geometry of a task: symbols, cartesian positions, cell (input atom order)."""
    return {
        "symbols": [sp.symbol for sp in structure.species],
        "positions": structure.cart_coords.tolist(),
        "cell": structure.lattice.matrix.tolist(),
        "pbc": [True, True, True],
    }


def fixed_indices(structure: Structure) -> list[int]:
    """Atoms whose selective_dynamics is F F F (the builders fix the bottom planes of a slab)."""
    sd = structure.site_properties.get("selective_dynamics")
    if sd is None:
        return []
    return [i for i, flags in enumerate(sd) if not any(flags)]


def structure_from_atoms_dict(d: dict) -> Structure:
    return Structure(d["cell"], d["symbols"], d["positions"], coords_are_cartesian=True)


# what every engine's result.json holds per task kind: without these keys it is not a result
REQUIRED_RESULT_KEYS = {
    "relax": ("energy_eV", "atoms"),
    "static": ("energy_eV", "atoms"),
    "neb": ("energies_eV", "reaction_coord_A", "spline_x_A", "spline_e_eV"),
}


def check_result_keys(kind: str, result: dict[str, Any], path: Path) -> None:
    missing = [k for k in REQUIRED_RESULT_KEYS.get(kind, ()) if k not in result]
    if missing:
        raise OutputValidationError(f"{path}: incomplete result (no {', '.join(missing)}); delete {path.parent} "
                                    "to compute it again")


def check_finite_result(result: dict[str, Any], folder: Path) -> None:
    """NaN/inf energies or forces are never a result (VASP's '*****', a diverged SCF)."""
    for key in ("energy_eV", "fermi_eV", "forces_max_eV_A"):
        val = result.get(key)
        if isinstance(val, float) and not math.isfinite(val):
            raise OutputValidationError(f"{folder}: {key} is {val}: the run did not produce a valid result")
    for e in result.get("energies_eV", []) or []:
        if not math.isfinite(e):
            raise OutputValidationError(f"{folder}: an image energy is {e}: the NEB did not produce a valid result")


@dataclass
class Engine(ABC, MSONable):
    """Base of every engine. Dataclass fields are all a flow stores; everything else is derived."""

    preset: str = "fast"
    overrides: dict[str, Any] = field(default_factory=dict)

    name: ClassVar[str] = "engine"
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    # a relaxation or static whose input has overlapping atoms is refused (hetero.analysis.descriptors)
    refuses_overlapping_atoms: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self.neutral, self.sources, self.native = merge_settings(self.config_name, self.preset_file(), self.overrides)
        self.check_native(self.native)

    def preset_file(self) -> str:
        """The preset file to load for ``self.preset`` (configs/<engine>/<name>.yaml)."""
        return self.preset

    # ------------------------------------------------------------------ identity and settings
    @property
    def config_name(self) -> str:
        """Folder of this engine's presets under configs/."""
        return self.name

    @property
    def label(self) -> str:
        """The engine as the table shows it (an MLIP names its model)."""
        return self.name

    def check_native(self, native: dict[str, Any]) -> None:
        """Validate the engine-only section (escape hatch); unknown keys are errors."""

    def lacks(self, what: str) -> str:
        """Why this engine cannot give `what` (a capability's value), as campaign.json and the table say it."""
        return f"the {self.label} engine gives no {what}"

    def require(self, needed: set[Capability] | list[Capability], what: str = "this flow") -> None:
        missing = [c for c in needed if c not in self.capabilities]
        if missing:
            have = ", ".join(sorted(c.value for c in self.capabilities))
            raise EngineCapabilityError(
                f"{what} needs {', '.join(c.value for c in missing)}, which the '{self.label}' engine cannot give "
                f"(it gives: {have}); drop those steps or use an engine that has them (gpaw, vasp)")

    def resolve(self, structure: Structure, facts: ModelFacts | None = None, **neutral_overrides: Any) -> Resolved:
        values = dict(self.neutral)
        sources = dict(self.sources)
        for k, v in neutral_overrides.items():
            values[k] = v
            sources[k] = "model"
        return resolve(values, sources, structure, facts or ModelFacts())

    @abstractmethod
    def translate(self, resolved: Resolved, structure: Structure, kind: str, **options: Any) -> dict[str, Any]:
        """Neutral resolved settings -> this engine's own settings for one task (what is hashed).
        ``options``: the task's own choices: cell (relax), outputs and gpts (static), n_images (neb)."""

    # ------------------------------------------------------------------ the contract
    def relax(self, structure: Structure, base_dir: str | Path, facts: ModelFacts | None = None,
              cell: bool = False) -> CalcResult:
        """Relax positions (atoms fixed by selective dynamics stay); ``cell=True`` also relaxes the cell."""
        self.require({Capability.RELAX} | ({Capability.CELL_RELAX} if cell else set()), "a relaxation")
        res = self.resolve(structure, facts)
        native = self.translate(res, structure, "relax", cell=bool(cell))
        task = {"kind": "relax", "settings": native, "atoms": atoms_dict(structure),
                "fixed": fixed_indices(structure), "cell": bool(cell)}
        return self._calc(task, base_dir, structure, res)

    def static(self, structure: Structure, base_dir: str | Path, facts: ModelFacts | None = None,
               outputs: tuple[str, ...] = (), like: CalcResult | dict | None = None,
               spin: str | None = None) -> CalcResult:
        """SCF at fixed geometry with the requested ``outputs`` (density, potential, dos, elf).

        ``like``: run with exactly the settings and density grid of that earlier result (CDD fragments);
        ``spin``: 'on' to let a fragment (e.g. an isolated ion) polarise."""
        self.require({Capability.ENERGY_FORCES} | {OUTPUT_CAPABILITY[o] for o in outputs}, f"a static run with {list(outputs)}")
        if like is not None:
            like = like if isinstance(like, CalcResult) else CalcResult.model_validate(like)
            values = dict(like.provenance.neutral_settings)
            sources = dict(like.provenance.settings_sources)
            if spin is not None and values.get("spin") != spin:
                values["spin"], sources["spin"] = spin, "model: isolated fragment"
                values["magmoms"] = {} if spin == "off" else values.get("magmoms") or {}
                if spin == "on":
                    elements = {sp.symbol for sp in structure.species}
                    values["magmoms"] = {e: float(values["magmoms"].get(e, 1.0)) for e in elements}
            res = Resolved(values=values, sources=sources)
            gpts = like.outputs.gpts if like.outputs else None
        else:
            res = self.resolve(structure, facts)
            gpts = None
        native = self.translate(res, structure, "static", outputs=tuple(sorted(outputs)), gpts=gpts)
        task = {"kind": "static", "settings": native, "atoms": atoms_dict(structure),
                "outputs": sorted(outputs), "gpts": gpts}
        return self._calc(task, base_dir, structure, res)

    def neb(self, images: list[Structure], endpoint_energies: list[float], base_dir: str | Path,
            facts: ModelFacts | None = None, neb: dict[str, Any] | None = None) -> NebResult:
        """CI-NEB over given images; the endpoints' energies are taken, not recomputed.
        ``neb``: neutral neb_* settings for this task only (a campaign's NEB block)."""
        self.require({Capability.NEB}, "a CI-NEB")
        extra = dict(neb or {})
        bad = [k for k in extra if not k.startswith("neb_") or k not in self.neutral]
        if bad:
            raise ValueError(f"unknown NEB settings {bad}; valid: {sorted(k for k in self.neutral if k.startswith('neb_'))}")
        res = self.resolve(images[0], facts)
        res.values.update(extra)
        res.sources.update({k: "user: campaign neb block" for k in extra})
        native = self.translate(res, images[0], "neb", n_images=len(images) - 2)
        task = {"kind": "neb", "settings": native, "images": [atoms_dict(s) for s in images],
                "fixed": fixed_indices(images[0]), "endpoint_energies_eV": [float(e) for e in endpoint_energies]}
        folder, result = self._cached_or_run(task, base_dir, images[0])
        return NebResult(
            energies_eV=result["energies_eV"], reaction_coord_A=result["reaction_coord_A"],
            spline_x_A=result["spline_x_A"], spline_e_eV=result["spline_e_eV"],
            converged=bool(result.get("converged", False)), climbing=bool(result.get("climbing", True)),
            method=result.get("method", ""), n_images_moving=int(result.get("n_images_moving", len(images) - 2)),
            images_in_parallel=result.get("images_in_parallel"),
            images=[plain_structure_dict(structure_from_atoms_dict(a)) for a in result.get("images", [])],
            files={k: str(folder / v) for k, v in result.get("files", {}).items()},
            cached=bool(result.get("cached")), provenance=self._provenance(result, folder, task, res),
        )

    # ------------------------------------------------------------------ machinery shared by engines
    def _calc(self, task: dict, base_dir: str | Path, structure: Structure, res: Resolved) -> CalcResult:
        folder, result = self._cached_or_run(task, base_dir, structure)
        final = structure_from_atoms_dict(result["atoms"])
        out_keys = ElectronicOutputs.model_fields
        outputs = {k: result[k] for k in out_keys if result.get(k) is not None}
        return CalcResult(
            kind=task["kind"], energy_eV=result["energy_eV"], forces_max_eV_A=result.get("forces_max_eV_A"),
            fermi_eV=result.get("fermi_eV"), converged=bool(result.get("converged", True)),
            n_scf=result.get("n_scf"), n_ionic_steps=result.get("n_ionic_steps"),
            magmom_total=result.get("magmom_total"), structure=plain_structure_dict(final),
            files={k: str(folder / v) for k, v in result.get("files", {}).items()},
            outputs=ElectronicOutputs(**outputs) if outputs else None, cached=bool(result.get("cached")),
            restarts=int(result.get("restarts", 0)), cell_method=result.get("cell_method"),
            provenance=self._provenance(result, folder, task, res),
        )

    def _provenance(self, result: dict, folder: Path, task: dict, res: Resolved) -> Provenance:
        from hetero import __version__

        return Provenance(
            engine=self.label, engine_version=str(result.get("engine_version", "")), settings=task["settings"],
            settings_hash=settings_hash(task["settings"]), neutral_settings=res.values, settings_sources=res.sources,
            run_dir=str(folder), wall_s=result.get("wall_s"), cores=result.get("cores"), hetero_version=__version__,
        )

    def task_folder(self, task: dict, base_dir: str | Path) -> Path:
        """``<kind>-<hash of the task>``; failing that, a folder of the same task whose input differs only by
        floating-point noise (a builder run on another machine moves atoms by ~1e-8 A, which changes the hash
        and would otherwise recompute an exported or resumed campaign from its first task)."""
        exact = Path(base_dir) / f"{task['kind']}-{settings_hash(task)}"
        if exact.exists():
            return exact
        return same_task_folder(task, Path(base_dir)) or exact

    def _cached_or_run(self, task: dict, base_dir: str | Path, structure: Structure) -> tuple[Path, dict]:
        folder = self.task_folder(task, base_dir)
        done = folder / "result.json"
        # `hetero run --reuse-from`: the same task finished in another run folder
        adopt_finished_task(folder, lambda other_base: same_task_folder(task, other_base))
        if done.exists():
            try:
                result = json.loads(done.read_text())
            except json.JSONDecodeError:  # a torn file from an old non-atomic write: recompute
                done.unlink()
            else:
                missing = {role for role, name in result.get("files", {}).items() if not (folder / name).exists()}
                # an exported folder keeps results but not full densities: a lost density is restored only if an
                # analysis that is not yet cached asks for it (restore_files); any other lost file: recompute now
                if missing <= RESTORABLE_FILES:
                    check_result_keys(task["kind"], result, done)
                    self.check_cached(task, result, folder)
                    check_finite_result(result, folder)
                    result["cached"] = True
                    return folder, result
                done.unlink()
        if task["kind"] in ("relax", "static") and self.refuses_overlapping_atoms:
            # a broken relaxation upstream (an MLIP put Li 0.09 A from O) would cost a DFT run on garbage
            bad = unphysical_contact(structure)
            if bad:
                raise UnphysicalStructureError(
                    f"{task['kind']} refused: atoms {bad} overlap, so the structure is not physical (a broken "
                    f"relaxation upstream, or a model to rebuild); nothing was run in {folder}")
        self.before_run(task, structure)
        folder.mkdir(parents=True, exist_ok=True)
        detach_linked_files(folder)  # files linked in by --reuse-from belong to another run too
        _atomic_write_json(folder / "task.json", task)
        result = self._compute(task, folder, structure)
        check_finite_result(result, folder)
        _atomic_write_json(done, result)
        result["cached"] = False
        return folder, result

    def restore_files(self, folder: str | Path) -> None:
        """Re-run the finished task in `folder` from its task.json to bring back files an export left behind (a
        full density). Its result.json is replaced by the re-run's; the store keeps the first run's numbers,
        which agree within the SCF tolerance."""
        folder = Path(folder)
        task = json.loads((folder / "task.json").read_text())
        structure = structure_from_atoms_dict(task["atoms"])
        self.before_run(task, structure)
        detach_linked_files(folder)
        result = self._compute(task, folder, structure)
        check_finite_result(result, folder)
        _atomic_write_json(folder / "result.json", result)

    def before_run(self, task: dict, structure: Structure) -> None:
        """Checks before anything is written (memory, binaries, POTCARs)."""

    def check_cached(self, task: dict, result: dict, folder: Path) -> None:
        """A finished folder's own files say it is a result (readable outputs, converged SCF); raise
        OutputValidationError naming the file otherwise. The job then fails; nothing reaches the table."""

    @abstractmethod
    def _compute(self, task: dict, folder: Path, structure: Structure) -> dict[str, Any]:
        """Run one task in ``folder`` (task.json is there) and return the result dict (see module doc)."""
