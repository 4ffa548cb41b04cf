"""VASP engine: atomate2 input sets + Makers, custodian handlers, and our parsers for the outputs.

Same contract as the GPAW engine: given a structure and a step (relax | static | dos | bader |
workfunction | neb) and a preset (configs/vasp/<name>.yaml), produce the inputs, run (through
atomate2/custodian on a cluster) and return our documents (hetero.io.vasp parsers).

INCAR layering (atomate2's pattern): atomate2 base set -> preset ``incar`` -> step updates ->
system updates (2D/stack/asymmetric/magnetic/U) -> user overrides.
- slabs / 2D: ISIF = 2 (never relax the vacuum axis), k mesh 1 along the vacuum axis;
- stacks (``stacked``): IVDW = preset ``vdw_ivdw`` (12 = D3(BJ), 11 = D3 zero damping);
- asymmetric slabs: LDIPOL = True, IDIPOL = 3, DIPOL = centre of mass (fractional);
- V, Cu, ... present: ISPIN = 2 and MAGMOM per element;
- oxides/fluorides with ``hubbard_u``: LDAU (Dudarev) for the listed elements;
- bader/cdd: LCHARG + LAECHG; workfunction: LVHAR; dos: LORBIT = 11, NEDOS, ISMEAR = -5.
No POTCARs are needed to write inputs: ``potcar_spec=True`` writes POTCAR.spec (symbols only).
"""

from __future__ import annotations

import shutil
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pymatgen.core import Structure

from hetero.schemas import settings_hash

STEPS = ("relax", "static", "dos", "bader", "workfunction", "neb")
HUBBARD_ANIONS = ("O", "F")


class VaspPresetError(ValueError):
    pass


def configs_dir() -> Path:
    import os

    env = os.environ.get("HETERO_CONFIGS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "configs"


def available_presets() -> list[str]:
    return sorted(p.stem for p in (configs_dir() / "vasp").glob("*.yaml"))


def load_preset(name: str = "fast", overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    path = configs_dir() / "vasp" / f"{name}.yaml"
    if not path.exists():
        raise VaspPresetError(f"unknown VASP preset '{name}'; valid presets: {', '.join(available_presets())}")
    preset = yaml.safe_load(path.read_text())
    for key, val in (overrides or {}).items():
        if key not in preset:
            raise VaspPresetError(f"unknown preset key '{key}' (preset '{name}'); valid keys: {', '.join(sorted(preset))}")
        if isinstance(val, dict) and isinstance(preset[key], dict):
            preset[key] = {**preset[key], **val}
        else:
            preset[key] = val
    preset["name"] = name
    return preset


def vacuum_axes(structure: Structure, min_gap_A: float = 6.0) -> tuple[int, ...]:
    """Lattice axes along which the atoms leave an empty gap wider than min_gap_A."""
    axes = []
    for ax in range(3):
        f = np.sort(structure.frac_coords[:, ax] % 1.0)
        gaps = np.diff(np.r_[f, f[0] + 1.0]) * structure.lattice.abc[ax]
        if gaps.max() >= min_gap_A:
            axes.append(ax)
    return tuple(axes)


def incar_updates(structure: Structure, step: str, preset: dict[str, Any], *, stacked: bool = False,
                  asymmetric: bool = False, user_incar: dict[str, Any] | None = None) -> dict[str, Any]:
    """The INCAR settings hetero adds on top of atomate2's base set for one structure and step."""
    if step not in STEPS:
        raise ValueError(f"unknown VASP step '{step}'; valid steps: {', '.join(STEPS)}")
    inc: dict[str, Any] = dict(preset.get("incar", {}))
    elements = {sp.symbol for sp in structure.species}
    vac = vacuum_axes(structure)
    if step == "relax":
        inc.update(NSW=preset.get("relax_nsw", 99), IBRION=2, ISIF=2 if vac else 3, LAECHG=False, LVTOT=False)
    else:
        inc.update(NSW=0, IBRION=-1, LAECHG=False, LVTOT=False)
    if step in ("static", "bader"):
        inc.update(LCHARG=True, LAECHG=True)
    if step == "workfunction":
        inc.update(LVHAR=True, LCHARG=True)
    if step == "dos":
        inc.update(LORBIT=11, NEDOS=preset.get("dos_nedos", 2001), ISMEAR=-5, LCHARG=False)
    if step == "neb":
        inc.update(IMAGES=preset.get("neb_images", 5), SPRING=preset.get("neb_spring", -5.0), LCLIMB=True,
                   IBRION=3, POTIM=0.1, ISIF=2, NSW=preset.get("relax_nsw", 99))
    if stacked:
        inc["IVDW"] = int(preset.get("vdw_ivdw", 12))
    if asymmetric and 2 in vac:
        com = structure.frac_coords.mean(axis=0)
        inc.update(LDIPOL=True, IDIPOL=3, DIPOL=[float(x) for x in com])
    magnetic = elements & set(preset.get("magnetic_elements", []))
    if magnetic:
        inc["ISPIN"] = 2
        init = preset.get("magmom_init", {})
        inc["MAGMOM"] = {el: float(init.get(el, 1.0)) if el in magnetic else 0.0 for el in sorted(elements)}
    else:
        inc["ISPIN"] = 1
        inc["MAGMOM"] = {el: 0.0 for el in sorted(elements)}
    u = {el: v for el, v in (preset.get("hubbard_u") or {}).items() if el in elements}
    anions = [a for a in HUBBARD_ANIONS if a in elements]
    if u and anions:
        # pymatgen's nested form: {most electronegative element: {element: value}}
        inc["LDAU"] = True
        inc["LDAUTYPE"] = 2
        inc["LDAUU"] = {a: dict(u) for a in anions}
        inc["LDAUJ"] = {a: {el: 0.0 for el in u} for a in anions}
        inc["LDAUL"] = {a: {el: 2 for el in u} for a in anions}
        inc["LMAXMIX"] = 4
    else:
        inc["LDAU"] = False
    inc.update(user_incar or {})
    return {k: v for k, v in inc.items() if v is not None or k == "METAGGA"}


def kpoint_settings(structure: Structure, step: str, preset: dict[str, Any]) -> dict[str, Any]:
    kp = dict(preset.get("kpoints", {}))
    if step == "dos" and preset.get("dos_reciprocal_density"):
        kp["reciprocal_density"] = preset["dos_reciprocal_density"]
    return kp


def input_generator(structure: Structure, step: str, preset: str | dict = "fast", *, stacked: bool = False,
                    asymmetric: bool = False, user_incar: dict[str, Any] | None = None,
                    sort_structure: bool = True):
    """An atomate2 input-set generator (RelaxSetGenerator for relax/neb, StaticSetGenerator otherwise).

    ``sort_structure=False`` keeps the atom order of ``structure`` in the POSCAR (the engine contract
    needs it: fixed atoms, ion indices and fragments are indices into the caller's structure)."""
    from atomate2.vasp.sets.core import RelaxSetGenerator, StaticSetGenerator

    p = load_preset(preset) if isinstance(preset, str) else preset
    incar = incar_updates(structure, step, p, stacked=stacked, asymmetric=asymmetric, user_incar=user_incar)
    cls = RelaxSetGenerator if step in ("relax", "neb") else StaticSetGenerator
    # auto_ismear would override the preset's smearing from a previous band gap: keep ours explicit.
    return cls(user_incar_settings=incar, user_kpoints_settings=kpoint_settings(structure, step, p),
               auto_ismear=False, force_gamma=True, sort_structure=sort_structure)


def write_inputs(structure: Structure, step: str, directory: str | Path, preset: str | dict = "fast",
                 potcar_spec: bool = True, **kw) -> Path:
    """Write INCAR/KPOINTS/POSCAR (+ POTCAR.spec, or POTCAR with ``potcar_spec=False``) to directory."""
    gen = input_generator(structure, step, preset, **kw)
    vis = gen.get_input_set(structure, potcar_spec=potcar_spec)
    directory = Path(directory)
    vis.write_input(str(directory))
    return directory


def write_neb_inputs(images: list[Structure], directory: str | Path, preset: str | dict = "fast",
                     potcar_spec: bool = True, **kw) -> Path:
    """CI-NEB folder: shared INCAR/KPOINTS/POTCAR(.spec) and 00..NN/POSCAR; IMAGES = len(images) - 2."""
    p = load_preset(preset) if isinstance(preset, str) else deepcopy(preset)
    p["neb_images"] = len(images) - 2
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / "_set"
    write_inputs(images[0], "neb", tmp, p, potcar_spec=potcar_spec, **kw)
    for f in tmp.iterdir():
        if f.name != "POSCAR":
            shutil.move(str(f), directory / f.name)
    shutil.rmtree(tmp)
    for i, im in enumerate(images):
        (directory / f"{i:02d}").mkdir(exist_ok=True)
        im.to(filename=str(directory / f"{i:02d}" / "POSCAR"), fmt="poscar")
    return directory


def custodian_handlers(step: str = "relax") -> list:
    """Custodian error handlers for a step (the atomate2 defaults, minus those that break NEB)."""
    from custodian.vasp.handlers import (
        FrozenJobErrorHandler,
        MeshSymmetryErrorHandler,
        NonConvergingErrorHandler,
        PositiveEnergyErrorHandler,
        PotimErrorHandler,
        StdErrHandler,
        UnconvergedErrorHandler,
        VaspErrorHandler,
    )

    handlers = [VaspErrorHandler(), MeshSymmetryErrorHandler(), UnconvergedErrorHandler(),
                NonConvergingErrorHandler(), PotimErrorHandler(), PositiveEnergyErrorHandler(),
                FrozenJobErrorHandler(), StdErrHandler()]
    if step == "neb":  # these read a single vasprun.xml/OSZICAR in the top folder
        handlers = [h for h in handlers if not isinstance(h, (UnconvergedErrorHandler, PotimErrorHandler,
                                                              PositiveEnergyErrorHandler, MeshSymmetryErrorHandler))]
    return handlers


def make_maker(structure: Structure, step: str, preset: str | dict = "fast", name: str | None = None, **kw):
    """An atomate2 Maker (RelaxMaker or StaticMaker) wired to our generator and custodian handlers."""
    from atomate2.vasp.jobs.core import RelaxMaker, StaticMaker

    if step == "neb":
        raise ValueError("NEB: write the folder with write_neb_inputs and run it with run_custodian")
    gen = input_generator(structure, step, preset, **kw)
    cls = RelaxMaker if step == "relax" else StaticMaker
    return cls(name=name or f"hetero {step}", input_set_generator=gen,
               run_vasp_kwargs={"handlers": custodian_handlers(step)})


@dataclass
class VaspEngine:
    """Writes inputs, runs VASP under custodian (``vasp_cmd``) and parses outputs into our documents."""

    preset: str = "fast"
    overrides: dict[str, Any] = field(default_factory=dict)
    vasp_cmd: str = "vasp_std"
    name: str = "vasp"

    def __post_init__(self) -> None:
        self.settings = load_preset(self.preset, self.overrides)

    def settings_for(self, structure: Structure, step: str, **kw) -> dict[str, Any]:
        return {"preset": self.preset, "step": step,
                "incar": incar_updates(structure, step, self.settings, **kw),
                "kpoints": kpoint_settings(structure, step, self.settings)}

    def prepare(self, structure: Structure, step: str, base_dir: str | Path, **kw) -> Path:
        s = self.settings_for(structure, step, **kw)
        folder = Path(base_dir) / f"{step}-{settings_hash({'s': s, 'st': structure.as_dict()})}"
        if not (folder / "INCAR").exists():
            write_inputs(structure, step, folder, self.settings, **kw)
        return folder

    def run_custodian(self, folder: str | Path, step: str = "relax", max_errors: int = 5) -> None:
        import os

        from custodian import Custodian
        from custodian.vasp.jobs import VaspJob

        if shutil.which(self.vasp_cmd.split()[0]) is None:
            raise RuntimeError(f"VASP executable '{self.vasp_cmd}' not found; run on a cluster with VASP "
                               "(inputs were written to " + str(folder) + ")")
        cwd = os.getcwd()
        try:
            os.chdir(folder)
            Custodian(custodian_handlers(step), [VaspJob(self.vasp_cmd.split())], max_errors=max_errors).run()
        finally:
            os.chdir(cwd)

    def parse(self, folder: str | Path, step: str, system: str = "", label: str = ""):
        """Outputs of a finished step -> our document (CalcDoc, DosDoc, WorkFunctionDoc or NebDoc)."""
        from hetero.io import vasp as vio

        if step == "dos":
            return vio.parse_dos(folder, system, label)
        if step == "workfunction":
            return vio.parse_work_function(folder, system, label)
        if step == "neb":
            return vio.parse_neb_dir(folder, system)
        return vio.parse_calc_dir(folder, system, label, step=step if step in ("relax", "static") else "static")

    def run(self, structure: Structure, step: str, base_dir: str | Path, system: str = "", label: str = "", **kw):
        folder = self.prepare(structure, step, base_dir, **kw)
        if not ((folder / "vasprun.xml").exists() or (folder / "OUTCAR").exists()):
            self.run_custodian(folder, step)
        return self.parse(folder, step, system, label)
