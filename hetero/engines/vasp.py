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
from pymatgen.core import Structure

from hetero.engines.presets import available_presets as _available
from hetero.engines.presets import PresetError, configs_dir, vacuum_axes  # noqa: F401 (re-exported)
from hetero.engines.presets import load_preset as _load
from hetero.schemas import settings_hash

STEPS = ("relax", "static", "dos", "bader", "workfunction", "neb")
HUBBARD_ANIONS = ("O", "F")


class VaspPresetError(PresetError):
    pass


def available_presets() -> list[str]:
    return _available("vasp")


def load_preset(name: str = "fast", overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    preset = _load("vasp", name, overrides, VaspPresetError)
    preset["name"] = name
    return preset


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


# ------------------------------------------------------------------------------------ engine contract
# INCAR tags that belong to a static run's requested outputs; they are reset from ``outputs`` every time
# (a CDD fragment inherits the AB run's settings but asks only for the density).
OUTPUT_TAGS = ("LAECHG", "LVHAR", "LORBIT", "NEDOS", "NGXF", "NGYF", "NGZF")


def _potcars_available() -> bool:
    """True when pymatgen can write real POTCARs (PMG_VASP_PSP_DIR set); else we write POTCAR.spec."""
    try:
        from pymatgen.core import SETTINGS

        return bool(SETTINGS.get("PMG_VASP_PSP_DIR"))
    except Exception:  # noqa: BLE001
        return False


def _atoms_dict(structure: Structure, fixed: list[int] | None = None) -> dict[str, Any]:
    """The GPAW engine's atoms dict (symbols, positions, cell, pbc, fixed): the hashed geometry."""
    d = {
        "symbols": [sp.symbol for sp in structure.species],
        "positions": structure.cart_coords.tolist(),
        "cell": structure.lattice.matrix.tolist(),
        "pbc": [True, True, True],
    }
    if fixed is not None:
        d["fixed"] = [int(i) for i in fixed]
    return d


def _fixed_from_props(structure: Structure) -> list[int]:
    sd = structure.site_properties.get("selective_dynamics")
    if sd is None:
        return []
    return [i for i, flags in enumerate(sd) if not any(flags)]


def _with_fixed(structure: Structure, fixed: list[int] | None) -> tuple[Structure, list[int]]:
    """Copy of structure whose selective_dynamics marks ``fixed`` (or the existing flags) as F F F."""
    s = structure.copy()
    if fixed is None:
        fixed = _fixed_from_props(structure)
    if fixed:
        s.add_site_property("selective_dynamics", [[i not in set(fixed)] * 3 for i in range(len(s))])
    elif "selective_dynamics" in s.site_properties:
        s.remove_site_property("selective_dynamics")
    return s, list(fixed)


def _vasprun_valence(path: Path) -> list[float] | None:
    """Valence (ZVAL) of every atom from vasprun.xml's <atominfo> (atomtypes 'valence' column)."""
    import xml.etree.ElementTree as ET

    from hetero.io.vasp import _read_text

    text = _read_text(path)
    a, b = text.find("<atominfo"), text.find("</atominfo>")
    if a < 0 or b < 0:
        return None
    try:
        info = ET.fromstring(text[a:b + len("</atominfo>")])
        arrays = {arr.get("name"): arr for arr in info.iter("array")}
        fields = [f.text.strip() for f in arrays["atomtypes"].iter("field")]
        k = fields.index("valence")
        zval = [float(rc.findall("c")[k].text) for rc in arrays["atomtypes"].iter("rc")]
        types = [int(rc.findall("c")[1].text) for rc in arrays["atoms"].iter("rc")]
        return [zval[t - 1] for t in types]
    except (KeyError, ValueError, IndexError, AttributeError, ET.ParseError):
        return None


def valence_per_atom(folder: Path, symbols: list[str], vasprun_path: Path | None = None) -> tuple[list[float], str]:
    """ZVAL of every atom: POTCAR in the folder, else vasprun.xml's atominfo, else OUTCAR's ZVAL lines
    (only when the OUTCAR's POTCARs are for the same elements). Returns (valence, source)."""
    from hetero.io.vasp import OutputParseError, _find

    pot = _find(folder, "POTCAR")
    if pot is not None:
        from pymatgen.io.vasp import Potcar

        try:
            zval = {p.element: float(p.zval) for p in Potcar.from_file(str(pot))}
            if set(symbols) <= set(zval):
                return [zval[s] for s in symbols], "POTCAR"
        except Exception:  # noqa: BLE001 - fall through to the outputs
            pass
    if vasprun_path is not None:
        val = _vasprun_valence(vasprun_path)
        if val is not None and len(val) == len(symbols):
            return val, "vasprun.xml"
    oc = _find(folder, "OUTCAR")
    if oc is not None:
        from pymatgen.io.vasp import Outcar

        try:
            o = Outcar(str(oc))
            o.read_pseudo_zval()
            zval = {str(k): float(v) for k, v in o.zval_dict.items()}
            if set(symbols) <= set(zval):
                return [zval[s] for s in symbols], "OUTCAR"
        except Exception:  # noqa: BLE001
            pass
    raise OutputParseError(folder / "POTCAR", f"no valence (ZVAL) for {sorted(set(symbols))}: need POTCAR, "
                                              "vasprun.xml atominfo or a matching OUTCAR")


def _outcar_for(folder: Path, symbols: list[str]):
    """OUTCAR of this run, or None when absent, truncated, or written for other elements."""
    from hetero.io.vasp import OutputParseError, _find, load_outcar

    p = _find(folder, "OUTCAR")
    if p is None:
        return None
    try:
        oc = load_outcar(p)
        oc.read_pseudo_zval()
        if not set(symbols) <= {str(k) for k in oc.zval_dict}:
            return None
        return oc
    except (OutputParseError, Exception):  # noqa: BLE001
        return None


def _dos_arrays(vr, vr_path: Path, n_atoms: int) -> tuple[dict[str, np.ndarray], bool]:
    """GPAW-shaped DOS arrays from vasprun.xml: energies relative to E_F, total (spin summed),
    per_atom (n_atoms x n_E, orbitals and spins summed; NaN when VASP wrote no projections)."""
    from hetero.io.vasp import OutputParseError

    cdos = vr.complete_dos if vr.complete_dos is not None else None
    tdos = cdos if cdos is not None else vr.tdos
    if tdos is None or vr.efermi is None:
        raise OutputParseError(vr_path, "no DOS / Fermi level in vasprun.xml")
    energies = np.asarray(tdos.energies, dtype=float) - float(vr.efermi)
    total = np.sum([np.asarray(d, dtype=float) for d in tdos.densities.values()], axis=0)
    per_atom = np.full((n_atoms, energies.size), np.nan)
    projected = bool(cdos is not None and cdos.pdos)
    if projected:
        sites = list(cdos.pdos)
        if len(sites) != n_atoms:
            raise OutputParseError(vr_path, f"projected DOS for {len(sites)} sites, structure has {n_atoms}")
        for i, site in enumerate(sites):
            per_atom[i] = np.sum([np.asarray(d, dtype=float) for orb in cdos.pdos[site].values()
                                  for d in orb.values()], axis=0)
    return {"energies": energies, "total": total, "per_atom": per_atom}, projected


def _dos_reference(vr) -> tuple[float, str]:
    """Zero of the DOS energies. GPAW's Fermi level of a gapped system lies inside the gap; VASP's
    E-fermi sits at the valence-band edge, where the smeared DOS is not zero, so a DOS reduction would
    call an insulator a metal. For a gapped run (eigenvalue gap > 0.1 eV, E-fermi between VBM and CBM)
    the zero is therefore mid-gap; otherwise VASP's E-fermi. ``fermi_eV`` stays VASP's E-fermi."""
    ef = float(vr.efermi)
    try:
        gap, cbm, vbm, _ = vr.eigenvalue_band_properties
        gap, cbm, vbm = float(gap), float(cbm), float(vbm)
    except Exception:  # noqa: BLE001 - no eigenvalues
        return ef, "E-fermi"
    if gap > 0.1 and vbm - 0.05 <= ef <= cbm + 0.05:
        return 0.5 * (vbm + cbm), f"mid-gap (VBM {vbm:.4f}, CBM {cbm:.4f}; VASP E-fermi {ef:.4f})"
    return ef, "E-fermi"


@dataclass
class VaspEngine:
    """Writes inputs, runs VASP under custodian and converts the outputs into the GPAW engine's result.

    ``relax``/``static``/``neb`` honour the engine contract of ``hetero.engines.gpaw.GpawEngine``: every
    run has its own folder ``<base_dir>/<kind>-<task hash>``; a folder with ``result.json`` is reused;
    ``result.json`` holds the same keys as the GPAW worker's (energy_eV, fermi_eV, forces_max_eV_A,
    atoms, valence, core_electrons, gpts, planar_potential_eV, dos_fermi_eV, files, ...) and the files
    the same arrays (density.npz: pseudo/all_electron in e/A^3; dos.npz: energies rel. to E_F, total,
    per_atom). The VASP command is ``vasp_cmd``, or the environment variable HETERO_VASP_CMD.
    """

    preset: str = "fast"
    overrides: dict[str, Any] = field(default_factory=dict)
    vasp_cmd: str = "vasp_std"
    name: str = "vasp"
    polling_s: float | None = None  # custodian's polling step (default 10 s; env HETERO_CUSTODIAN_POLL_S)

    def __post_init__(self) -> None:
        self.settings = load_preset(self.preset, self.overrides)

    @property
    def command(self) -> str:
        import os

        return os.environ.get("HETERO_VASP_CMD") or self.vasp_cmd

    def settings_for(self, structure: Structure, step: str, **kw) -> dict[str, Any]:
        return {"preset": self.preset, "step": step,
                "incar": incar_updates(structure, step, self.settings, **kw),
                "kpoints": kpoint_settings(structure, step, self.settings)}

    # ---------------------------------------------------------------- contract: relax / static / neb
    def relax(self, structure: Structure, base_dir: str | Path, fixed: list[int] | None = None,
              asymmetric_slab: bool = False, stacked: bool = False, **kw) -> dict:
        """Relax (ISIF 2 for slabs, 3 for bulk); fixed atoms get selective dynamics F F F."""
        s, fixed = _with_fixed(structure, fixed)
        settings = self.settings_for(s, "relax", stacked=stacked, asymmetric=asymmetric_slab)
        task = {"kind": "relax", "settings": settings, "atoms": _atoms_dict(s, fixed)}
        return self._run(task, base_dir, s, fixed=fixed)

    def static(self, structure: Structure, base_dir: str | Path,
               outputs: tuple[str, ...] = ("density", "potential", "dos"), gpts: list[int] | None = None,
               settings_override: dict[str, Any] | None = None, asymmetric_slab: bool = False,
               stacked: bool = False, **kw) -> dict:
        """SCF at fixed geometry; ``outputs`` picks LCHARG+LAECHG (density), LVHAR (potential),
        LORBIT=11 + NEDOS (dos). ``gpts`` pins the CHGCAR grid (see below)."""
        s, _ = _with_fixed(structure, [])
        if settings_override:
            settings = deepcopy(dict(settings_override))
            settings["incar"] = dict(settings.get("incar", {}))
            spin = settings.pop("spinpol", None)  # the CDD maker's fragment flag (GPAW's name)
            if spin and int(settings["incar"].get("ISPIN", 1)) != 2:
                settings["incar"]["ISPIN"] = 2
                settings["incar"]["MAGMOM"] = {sp.symbol: 1.0 for sp in s.composition}
        else:
            settings = self.settings_for(s, "static", stacked=stacked, asymmetric=asymmetric_slab)
        settings["step"] = "static"
        inc = settings["incar"]
        for tag in OUTPUT_TAGS:
            inc.pop(tag, None)
        want = set(outputs)
        inc["LCHARG"] = True
        inc["LAECHG"] = "density" in want
        if "potential" in want:
            inc["LVHAR"] = True
        if "dos" in want:
            inc.update(LORBIT=11, NEDOS=int(self.settings.get("dos_nedos", 2001)))
            smear = int(inc.get("ISMEAR", 1))
            settings["dos_width_eV"] = 0.0 if smear == -5 else float(inc.get("SIGMA", 0.2))
        if gpts is not None:
            # CHGCAR/AECCAR/LOCPOT are written on VASP's FINE grid (NGXF x NGYF x NGZF), so pinning
            # NGXF/NGYF/NGZF to the AB run's CHGCAR shape puts the fragment densities on AB's grid.
            # NGX/NGY/NGZ (the wavefunction grid) are left to VASP: same cell + ENCUT + PREC give the
            # same coarse grid as the AB run.
            inc.update(NGXF=int(gpts[0]), NGYF=int(gpts[1]), NGZF=int(gpts[2]))
        task = {"kind": "static", "settings": settings, "atoms": _atoms_dict(s), "outputs": sorted(want),
                "gpts": list(gpts) if gpts is not None else None}
        return self._run(task, base_dir, s)

    def neb(self, images: list[Structure], endpoint_energies: list[float], base_dir: str | Path,
            asymmetric_slab: bool = False, stacked: bool = False, **kw) -> dict:
        """CI-NEB in one VASP run (IMAGES = len(images) - 2); endpoints' energies are given, not run."""
        settings = self.settings_for(images[0], "neb", stacked=stacked, asymmetric=asymmetric_slab)
        settings["incar"]["IMAGES"] = len(images) - 2
        task = {"kind": "neb", "settings": settings,
                "images": [_atoms_dict(im, _fixed_from_props(im)) for im in images],
                "endpoint_energies_eV": [float(e) for e in endpoint_energies]}
        folder = Path(base_dir) / f"neb-{settings_hash(task)}"
        result = self._cached(folder)
        if result is None:
            if not (folder / "INCAR").exists():
                write_neb_inputs(images, folder, self._preset_with(settings, images[0]),
                                 potcar_spec=not _potcars_available(), stacked=stacked,
                                 asymmetric=asymmetric_slab, user_incar=settings["incar"], sort_structure=False)
            wall = self._execute(folder, "neb", outputs_in=[folder / f"{len(images) - 2:02d}"])
            result = self._convert_neb(folder, images, endpoint_energies, wall)
        return self._finish(result, folder, task)

    # ---------------------------------------------------------------- machinery
    def _preset_with(self, settings: dict[str, Any], structure: Structure) -> dict[str, Any]:
        p = deepcopy(self.settings)
        p["kpoints"] = dict(settings.get("kpoints", {}))
        p.pop("dos_reciprocal_density", None)  # the task's kpoints are final
        return p

    @staticmethod
    def _cached(folder: Path) -> dict | None:
        import json

        done = folder / "result.json"
        if done.exists():
            result = json.loads(done.read_text())
            result["cached"] = True
            return result
        return None

    def _finish(self, result: dict, folder: Path, task: dict) -> dict:
        result["run_dir"] = str(folder)
        result["settings"] = task["settings"]
        result["settings_hash"] = settings_hash(task["settings"])
        result["task_hash"] = folder.name.split("-", 1)[1]
        return result

    def _write_result(self, folder: Path, result: dict) -> None:
        import json

        tmp = folder / "result.json.tmp"
        tmp.write_text(json.dumps(result))
        tmp.replace(folder / "result.json")

    def _execute(self, folder: Path, step: str, outputs_in: list[Path] | None = None) -> float | None:
        """Run VASP unless the folder already holds its outputs (a finished run, e.g. from a cluster)."""
        import time

        places = outputs_in or [folder]
        if any((p / n).exists() for p in places for n in ("vasprun.xml", "OUTCAR")):
            return None
        t0 = time.time()
        self.run_custodian(folder, step)
        return time.time() - t0

    def _run(self, task: dict, base_dir: str | Path, structure: Structure, fixed: list[int] | None = None) -> dict:
        folder = Path(base_dir) / f"{task['kind']}-{settings_hash(task)}"
        result = self._cached(folder)
        if result is None:
            if not (folder / "INCAR").exists():
                self._write_inputs(structure, task, folder)
            wall = self._execute(folder, task["kind"])
            result = self._convert(folder, task, structure, fixed or [], wall)
        return self._finish(result, folder, task)

    def _write_inputs(self, structure: Structure, task: dict, folder: Path) -> None:
        step = "relax" if task["kind"] == "relax" else "static"
        settings = task["settings"]
        # the task's INCAR is complete: it goes in as user settings, on top of atomate2's base set
        gen = input_generator(structure, step, self._preset_with(settings, structure),
                              user_incar=settings["incar"], sort_structure=False)
        if step == "static":  # keep exactly the task's output tags (the base set may add its own)
            extra = {t: None for t in OUTPUT_TAGS if t not in settings["incar"]}
            gen.user_incar_settings = {**gen.user_incar_settings, **extra}
        vis = gen.get_input_set(structure, potcar_spec=not _potcars_available())
        vis.write_input(str(folder))

    def _convert(self, folder: Path, task: dict, structure: Structure, fixed: list[int],
                 wall: float | None) -> dict:
        """VASP outputs of a relax/static folder -> GPAW-shaped result dict (+ density.npz, dos.npz)."""
        from hetero.io.vasp import OutputParseError, _find, check_volumetric, load_vasprun, read_chgcar

        vr_path = _find(folder, "vasprun.xml")
        if vr_path is None:
            raise OutputParseError(folder / "vasprun.xml", "VASP finished without vasprun.xml")
        want = set(task.get("outputs", []))
        vr = load_vasprun(vr_path, parse_dos=True)  # E_F lives in the DOS block
        final = vr.final_structure
        symbols = [sp.symbol for sp in final.species]
        if symbols != [sp.symbol for sp in structure.species]:
            raise OutputParseError(vr_path, f"outputs are for {final.composition.formula} in the order {symbols}, "
                                            f"not the input {[sp.symbol for sp in structure.species]}")
        last = vr.ionic_steps[-1]
        forces = np.asarray(last.get("forces", []), dtype=float)
        if fixed and forces.size:
            forces[fixed] = 0.0  # as ASE's FixAtoms reports them
        if forces.size and not np.all(np.isfinite(forces)):
            forces = np.empty((0, 3))  # VASP writes NaN forces for some runs (e.g. hybrid band runs): unknown
        relax = task["kind"] == "relax"
        out: dict[str, Any] = {
            "energy_eV": float(vr.final_energy),
            "fermi_eV": float(vr.efermi) if vr.efermi is not None else None,
            "forces_max_eV_A": float(np.linalg.norm(forces, axis=1).max()) if forces.size else None,
            "converged": bool(vr.converged_electronic and (vr.converged_ionic if relax else True)),
            "atoms": _atoms_dict(final),
            "files": {"log": "OUTCAR" if _find(folder, "OUTCAR") else vr_path.name, "vasprun": vr_path.name},
            "n_scf": len(last.get("electronic_steps", [])) or None,
            "engine_version": str(getattr(vr, "vasp_version", "") or ""),
            "wall_s": wall,
            "cores": None,
        }
        oc = _outcar_for(folder, symbols)
        out["magmom_total"] = (float(oc.total_mag) if oc is not None and oc.total_mag is not None
                               else (0.0 if int(vr.parameters.get("ISPIN", 1)) == 1 else None))
        if relax:
            out["n_ionic_steps"] = len(vr.ionic_steps)
            if _find(folder, "CONTCAR"):
                out["files"]["structure"] = "CONTCAR"
            return self._save(folder, out)
        # static: grids, valence, requested outputs
        valence, source = valence_per_atom(folder, symbols, vr_path)
        out["valence"] = valence
        out["valence_source"] = source
        out["core_electrons"] = [float(sp.Z) - v for sp, v in zip(final.species, valence)]
        ng = [vr.parameters.get(k) for k in ("NGXF", "NGYF", "NGZF")]
        out["gpts"] = [int(x) for x in ng] if all(ng) else None
        vol = final.volume
        if "density" in want:
            chg_p = _find(folder, "CHGCAR")
            if chg_p is None:
                raise OutputParseError(folder / "CHGCAR", "density requested (LCHARG) but VASP wrote no CHGCAR")
            chg = read_chgcar(chg_p)
            if [sp.symbol for sp in chg.structure.species] != symbols:
                raise OutputParseError(chg_p, "CHGCAR is for another structure than vasprun.xml")
            vol = chg.structure.volume
            pseudo = np.asarray(chg.data["total"], dtype=float) / vol  # VASP stores rho * V_cell
            out["gpts"] = [int(x) for x in pseudo.shape]
            arrays = {"pseudo": pseudo, "cell": final.lattice.matrix}
            a0, a2 = _find(folder, "AECCAR0"), _find(folder, "AECCAR2")
            if a0 is not None and a2 is not None:
                c0, c2 = read_chgcar(a0), read_chgcar(a2)
                if c0.data["total"].shape != c2.data["total"].shape:
                    raise OutputParseError(a2, "AECCAR0 and AECCAR2 are on different grids")
                arrays["all_electron"] = (np.asarray(c0.data["total"]) + np.asarray(c2.data["total"])) / vol
            else:
                raise OutputParseError(folder / "AECCAR0", "density requested (LAECHG) but AECCAR0/AECCAR2 missing")
            np.savez_compressed(folder / "density.npz", **arrays)
            out["files"]["density"] = "density.npz"
        if "potential" in want:
            lp = _find(folder, "LOCPOT")
            if lp is None:
                raise OutputParseError(folder / "LOCPOT", "potential requested (LVHAR) but VASP wrote no LOCPOT")
            from pymatgen.io.vasp import Locpot

            check_volumetric(lp)
            try:
                loc = Locpot.from_file(str(lp))
            except Exception as exc:  # noqa: BLE001
                raise OutputParseError(lp, f"corrupt LOCPOT ({exc})") from exc
            out["planar_potential_eV"] = [float(x) for x in loc.get_average_along_axis(2)]
        if "dos" in want:
            arrays, projected = _dos_arrays(vr, vr_path, len(final))
            ref_e, how = _dos_reference(vr)
            arrays["energies"] = arrays["energies"] + float(vr.efermi) - ref_e
            np.savez_compressed(folder / "dos.npz", **arrays)
            out["files"]["dos"] = "dos.npz"
            out["dos_fermi_eV"] = ref_e
            out["dos_reference"] = how
            out["dos_projected"] = projected  # False: per_atom is NaN (VASP ran without LORBIT)
            try:  # the eigenvalue gap, as GPAW's result carries it (a smeared DOS underestimates gaps)
                out["eigen_gap_eV"] = float(vr.eigenvalue_band_properties[0])
            except Exception:  # noqa: BLE001 - no eigenvalues in this vasprun
                out["eigen_gap_eV"] = None
        return self._save(folder, out)

    def _save(self, folder: Path, out: dict) -> dict:
        self._write_result(folder, out)
        return dict(out, cached=False)

    def _convert_neb(self, folder: Path, images: list[Structure], endpoint_energies: list[float],
                     wall: float | None) -> dict:
        from hetero.io.vasp import _find, parse_neb_dir

        doc = parse_neb_dir(folder, endpoint_energies=(endpoint_energies[0], endpoint_energies[-1]))
        e0 = doc.endpoint_energies_eV[0]
        finals = []
        for i in range(len(images)):
            img = folder / f"{i:02d}"
            p = _find(img, "CONTCAR") or _find(img, "POSCAR")
            finals.append(_atoms_dict(Structure.from_file(str(p))))
        out = {
            "energies_eV": [e0 + e for e in doc.energies_eV],
            "reaction_coord_A": doc.reaction_coord_A,
            "spline_x_A": doc.spline_x_A,
            "spline_e_eV": [e0 + e for e in doc.spline_e_eV],
            "converged": doc.converged,
            "n_images_moving": len(images) - 2,
            "images": finals,
            "files": {"log": "OUTCAR"},
            "wall_s": wall,
            "cores": None,
            "engine_version": "",
        }
        return self._save(folder, out)

    # ---------------------------------------------------------------- lower level (kept for callers)
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

        cmd = self.command
        if shutil.which(cmd.split()[0]) is None:
            raise RuntimeError(f"VASP executable '{cmd}' not found (set vasp_cmd or HETERO_VASP_CMD); run on a "
                               "cluster with VASP (inputs were written to " + str(folder) + ")")
        poll = self.polling_s if self.polling_s is not None else float(os.environ.get("HETERO_CUSTODIAN_POLL_S", 10))
        cwd = os.getcwd()
        try:
            os.chdir(folder)
            Custodian(custodian_handlers(step), [VaspJob(cmd.split())], max_errors=max_errors,
                      polling_time_step=poll, monitor_freq=max(1, int(30 / max(poll, 1e-3)))).run()
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
