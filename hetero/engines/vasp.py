"""VASP engine: the neutral settings translated into INCAR/KPOINTS on atomate2's input generators,
VASP run under custodian (atomate2's handlers plus validators), outputs parsed into the shared result.

Folders, caching by task hash and typed results come from hetero.engines.base. What is hashed for
each task (``translate``) is the complete INCAR the task will use plus its Gamma-centred k mesh:
- the k mesh is the neutral resolved ``kpoints`` (one k-point along every vacuum axis);
- relax: IBRION 2, ISIF 3 when the cell relaxes (``cell=True``) else ISIF 2 (slabs never relax vacuum);
- dispersion d3bj -> IVDW 12, d3zero -> IVDW 11; dipole on -> LDIPOL, IDIPOL 3, DIPOL at the slab centre;
- spin on -> ISPIN 2 + MAGMOM from the resolved moments; Hubbard U (Dudarev) on oxides/fluorides only;
- ENCUT = cutoff_eV, raised to 1.3 x the largest ENMAX of the POTCARs in use when those are readable
  (PMG_VASP_PSP_DIR); without POTCARs (dry run, POTCAR.spec) the INCAR says the check waits for them;
- static outputs: density -> LCHARG + LAECHG, potential -> LVHAR, elf -> LELF (ELFCAR; run with NPAR 1,
  KPAR 1); dos -> a non-SCF run (ICHARG 11 from
  the static's CHGCAR, denser mesh, LORBIT 11) in <task>/dos, whose INCAR is hashed too; a CDD fragment
  (static ``like=``) pins NGXF/NGYF/NGZF to the AB run's density grid;
- neb: VTST CI-NEB (IOPT, IBRION 3, POTIM 0, LCLIMB); whether VTST ran is read back from the OUTCARs;
- VASP-only knobs (PREC, LASPH, NELM, ..., nedos) come from the preset's ``vasp:`` section.
No POTCARs are needed to write inputs (POTCAR.spec); a real run needs them. An interrupted run (killed at
the walltime, or stopped by custodian's STOPCAR) is archived in interrupted-N/ and restarted from CONTCAR.
"""

from __future__ import annotations

import functools
import math
import json
import os
import shlex
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pymatgen.core import Structure

from hetero.engines.base import (
    Capability,
    Engine,
    EngineRunError,
    OutputValidationError,
    atoms_dict,
    fixed_indices,
    structure_from_atoms_dict,
)
from hetero.engines.settings import ModelFacts, PresetError, Resolved, SettingsError, available_presets as _available
from hetero.engines.settings import configs_dir, vacuum_axes  # noqa: F401 (re-exported)

HUBBARD_ANIONS = ("O", "F")  # U only for oxides/fluorides, as the Materials Project sets apply it
IVDW = {"d3bj": 12, "d3zero": 11}  # VASP's IVDW codes: 12 = DFT-D3 Becke-Johnson, 11 = DFT-D3 zero damping
XC_GGA = {"PBE": "PE", "PBESOL": "PS", "RPBE": "RP", "REVPBE": "RE"}
LAUNCHERS = ("srun", "mpirun", "mpiexec", "ibrun", "aprun", "jsrun")
# ENCUT floor: 1.3 x the largest ENMAX of the POTCARs. VASP wiki "Energy vs volume, volume relaxations and Pulay
# stress": 1.3 x the default cutoff (ENMAX) is usually a safe setting for a reliable stress tensor
ENMAX_FACTOR = 1.3
# LELF needs NPAR = 1 (VASP wiki LELF: "NPAR=1 has to be set explicitly") and no k-point parallelisation
# (custodian's VaspErrorHandler sets KPAR 1 when VASP stops on LELF with KPAR > 1; atomate2's MP24 static: "LELF
# = True mandates KPAR = 1"): machine tags, so not hashed, but they replace the HPC profile's NCORE/NPAR/KPAR
ELF_PARALLEL = {"NPAR": 1, "KPAR": 1}

# VASP-only settings under `vasp:` (lower case); upper-case keys there are extra INCAR tags
VASP_KEYS = {
    "nedos": "energy points of the DOS (NEDOS)",
    "potcar_functional": "POTCAR set (pymatgen name, e.g. PBE_54)",
    "potcars": "POTCAR per element when not atomate2's choice, e.g. {V: V_pv}",
    "lreal_auto_min_atoms": "LREAL Auto in relax/NEB from this many atoms (else False; statics always False)",
    "neb_iopt": "VTST optimiser (IOPT 1 LBFGS, 2 CG, 3 quick-min, 7 FIRE)",
    "neb_vtst": "true: VTST CI-NEB (IOPT, LCLIMB); false: VASP's own NEB (IBRION 3 quick-min, POTIM, no climbing image)",
    "neb_potim": "time step of VASP's own NEB optimiser when neb_vtst is false",
    "dos_kpoints_scale": "non-SCF DOS mesh = this x the SCF mesh (1 along vacuum) unless dos_kpoints_mesh is set",
}
# INCAR tags that a neutral setting decides: the error names it
NEUTRAL_TAGS = {
    "ENCUT": "cutoff_eV", "KSPACING": "kpoints_spacing_A", "SIGMA": "smearing_eV", "ISMEAR": "smearing_eV",
    "ISPIN": "spin", "MAGMOM": "magmoms", "IVDW": "dispersion", "LDIPOL": "dipole", "IDIPOL": "dipole",
    "DIPOL": "dipole", "LDAU": "hubbard_u", "LDAUU": "hubbard_u", "LDAUJ": "hubbard_u", "LDAUL": "hubbard_u",
    "LDAUTYPE": "hubbard_u", "EDIFF": "scf_energy_eV", "EDIFFG": "fmax_eV_A", "NSW": "relax_steps",
    "GGA": "xc", "METAGGA": "xc", "IMAGES": "neb_images", "SPRING": "neb_spring", "LCLIMB": "neb_climb",
    "NEDOS": "vasp: {nedos: ...}",
}
# INCAR tags the task decides (kind, outputs, CDD grid): not settable
TASK_TAGS = frozenset({"ISIF", "IBRION", "POTIM", "IOPT", "LCHARG", "LAECHG", "LVHAR", "LVTOT", "LORBIT", "ICHARG",
                       "ISTART", "NGXF", "NGYF", "NGZF", "LELF", "LWAVE"})
# a static's outputs -> the INCAR tags they set (the dry-run listing of statics that wait for a relaxation)
OUTPUT_TAGS = {"density": "LAECHG = True", "potential": "LVHAR = True", "elf": "LELF = True (NPAR 1, KPAR 1)",
               "dos": "non-SCF DOS run (ICHARG 11)"}
# machine settings: they change speed, not results, so they are not hashed (HPC profile / environment)
PARALLEL_TAGS = frozenset({"NCORE", "NPAR", "KPAR", "NSIM", "LPLANE"})


class VaspPresetError(PresetError):
    pass


class PotcarMissingError(EngineRunError):
    """A real VASP run without POTCAR files (only POTCAR.spec can be written)."""


class InputsWritten(EngineRunError):
    """Dry run: the task's inputs were written to ``folder``; nothing ran."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        super().__init__(f"{folder}: inputs written (dry run, VASP not started)")


# folders written by dry runs in this process (hetero.dryrun reads and clears it)
WRITTEN: list[dict[str, Any]] = []


def _dry_stop(folder: Path, kind: str, settings: dict[str, Any] | None = None) -> InputsWritten:
    try:
        from jobflow import CURRENT_JOB

        uuid = getattr(CURRENT_JOB.job, "uuid", None)
    except Exception:  # noqa: BLE001 - outside a jobflow job
        uuid = None
    entry: dict[str, Any] = {"kind": kind, "folder": str(folder), "job_uuid": uuid}
    if settings:
        incar = settings.get("incar", {})
        entry["encut_check"] = encut_note(incar.get("ENCUT"), list(settings.get("potcar", [])),
                                          str(settings.get("potcar_functional", "")))
        entry["tags"] = {k: incar[k] for k in ("ENCUT", "ISPIN", "LELF", "LAECHG", "LVHAR", "IMAGES") if incar.get(k)}
    WRITTEN.append(entry)
    return InputsWritten(folder)


def available_presets() -> list[str]:
    return _available("vasp")


def _potcars_available() -> bool:
    """True when pymatgen can write real POTCARs (PMG_VASP_PSP_DIR set)."""
    try:
        from pymatgen.core import SETTINGS

        return bool(os.environ.get("PMG_VASP_PSP_DIR") or SETTINGS.get("PMG_VASP_PSP_DIR"))
    except Exception:  # noqa: BLE001
        return False


def _psp_dir() -> str:
    from pymatgen.core import SETTINGS

    return str(SETTINGS.get("PMG_VASP_PSP_DIR") or os.environ.get("PMG_VASP_PSP_DIR") or "")


@functools.lru_cache(maxsize=256)
def _enmax(symbol: str, functional: str, psp_dir: str) -> float:
    from pymatgen.io.vasp import PotcarSingle

    return float(PotcarSingle.from_symbol_and_functional(symbol, functional).enmax)


def potcar_enmax(symbols: list[str], functional: str) -> dict[str, float]:
    """ENMAX (eV) of each POTCAR as pymatgen reads it from PMG_VASP_PSP_DIR (raises when one is missing)."""
    return {s: _enmax(s, functional, _psp_dir()) for s in dict.fromkeys(symbols)}


def encut_floor(symbols: list[str], functional: str) -> tuple[str, float, int] | None:
    """(POTCAR with the largest ENMAX, its ENMAX, ceil(ENMAX_FACTOR x ENMAX)) when the POTCARs are readable, else None."""
    if not symbols or not _potcars_available():
        return None
    try:
        enmax = potcar_enmax(symbols, functional)
    except Exception:  # noqa: BLE001 - missing POTCAR: the POTCAR guard (check_potcars) refuses a real run
        return None
    top = max(enmax, key=enmax.get)
    return top, enmax[top], math.ceil(ENMAX_FACTOR * enmax[top] - 1e-6)


def _plain_incar(incar) -> dict[str, Any]:
    """An Incar as JSON-able python values (the hashed form)."""
    out = {}
    for k, v in dict(incar).items():
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, (list, tuple)):
            v = [x.item() if isinstance(x, np.generic) else x for x in v]
        out[k] = v
    return out


def _input_structure(structure: Structure, fixed: list[int] | None = None) -> Structure:
    """Plain elements in the caller's order (no oxidation states or magmom site properties that would
    override MAGMOM); ``fixed`` atoms get selective dynamics F F F."""
    s = Structure(structure.lattice, [sp.symbol for sp in structure.species], structure.frac_coords)
    if fixed:
        fixed_set = set(fixed)
        s.add_site_property("selective_dynamics", [[i not in fixed_set] * 3 for i in range(len(s))])
    return s


def slab_centre_frac(structure: Structure, axis: int = 2) -> float:
    """Fractional coordinate of the slab's middle along ``axis`` (the slab may wrap across the cell
    boundary): the middle of the atoms' extent measured from the end of the widest empty gap."""
    f = np.sort(structure.frac_coords[:, axis] % 1.0)
    gaps = np.diff(np.r_[f, f[0] + 1.0])
    k = int(np.argmax(gaps))
    start = f[(k + 1) % len(f)]
    extent = 1.0 - gaps[k]
    return float((start + extent / 2) % 1.0)


def _neutral_incar(v: dict[str, Any], structure: Structure, native: dict[str, Any], kind: str) -> dict[str, Any]:
    """The INCAR tags that the neutral settings decide (before the task's own tags)."""
    elements = sorted({sp.symbol for sp in structure.species})
    xc = str(v["xc"]).upper().replace("-", "")
    if xc not in XC_GGA:
        raise SettingsError(f"setting 'xc' = {v['xc']!r} has no VASP translation here; valid: {', '.join(XC_GGA)}")
    inc: dict[str, Any] = {
        "GGA": XC_GGA[xc], "METAGGA": None, "ENCUT": float(v["cutoff_eV"]), "ISMEAR": 0,
        "SIGMA": float(v["smearing_eV"]), "EDIFF": float(v["scf_energy_eV"]), "KSPACING": None,
    }
    if v["spin"] == "on":
        moms = v.get("magmoms") or {}
        inc["ISPIN"] = 2
        inc["MAGMOM"] = {e: float(moms.get(e, 0.0)) for e in elements}
    else:
        inc["ISPIN"] = 1
        inc["MAGMOM"] = {e: 0.0 for e in elements}
    inc["IVDW"] = IVDW.get(v["dispersion"]) if v["dispersion"] != "off" else None
    if v["dipole"] == "on":
        inc.update(LDIPOL=True, IDIPOL=3, DIPOL=[0.5, 0.5, round(slab_centre_frac(structure), 6)])
    else:
        inc.update(LDIPOL=None, IDIPOL=None, DIPOL=None)
    u = dict(v.get("hubbard_u") or {})
    anions = [a for a in HUBBARD_ANIONS if a in elements]
    if u and anions:
        # pymatgen's nested form: {anion: {element: value}}; LDAUTYPE 2 = Dudarev (U_eff = U - J)
        inc.update(LDAU=True, LDAUTYPE=2, LDAUU={a: dict(u) for a in anions},
                   LDAUJ={a: {e: 0.0 for e in u} for a in anions}, LDAUL={a: {e: 2 for e in u} for a in anions})
    else:
        inc["LDAU"] = False
    from pymatgen.core import Element

    blocks = {Element(e).block for e in elements}
    # CHGCAR keeps PAW one-centre occupancies up to LMAXMIX: 4 for d, 6 for f elements (VASP wiki LMAXMIX;
    # needed for +U and for a non-SCF run reading the static's CHGCAR)
    inc["LMAXMIX"] = 6 if "f" in blocks else 4 if "d" in blocks else None
    if inc["LDAU"] and v["spin"] == "on":
        inc["ALGO"] = "Normal"  # +U magnetic runs: the blocked Davidson is robust where Fast stalls (VASP wiki ALGO)
    n_auto = int(native.get("lreal_auto_min_atoms", 30))
    inc["LREAL"] = "Auto" if kind in ("relax", "neb") and len(structure) >= n_auto else False
    return inc


def _task_incar(kind: str, v: dict[str, Any], native: dict[str, Any], *, cell: bool = False,
                outputs: tuple[str, ...] = (), gpts: list[int] | None = None, n_images: int | None = None,
                dos_mesh: list[int] | None = None) -> dict:
    """INCAR tags decided by the task: its kind, the outputs it asks for, the CDD grid."""
    inc: dict[str, Any] = {"LWAVE": False, "LELF": None, "LVTOT": None, "LMIXTAU": None}
    if kind == "relax":
        inc.update(NSW=int(v["relax_steps"]), IBRION=2, ISIF=3 if cell else 2, EDIFFG=-float(v["fmax_eV_A"]),
                   LCHARG=False, LAECHG=None, LVHAR=None, LORBIT=None)
    elif kind == "static":
        want = set(outputs)
        # LCHARG always: the non-SCF DOS run reads this CHGCAR (ICHARG 11), and a restart can
        # elf -> LELF (ELFCAR, the ELF of each spin channel). PREC stays the preset's, so the statics with and
        # without ELF (sites vs references) share one basis and grid; the VASP wiki (ELFCAR) recommends PREC High
        # against wrap-around errors in the ELF itself
        inc.update(NSW=0, IBRION=-1, ISIF=None, EDIFFG=None, LCHARG=True, LAECHG=True if "density" in want else None,
                   LVHAR=True if "potential" in want else None, LELF=True if "elf" in want else None, LORBIT=None,
                   NEDOS=None)
        if gpts is not None:
            # CHGCAR/AECCAR/LOCPOT are written on the FINE grid (NGXF x NGYF x NGZF): pinning it to the AB
            # run's density grid puts the fragment densities on the same points; the coarse grid follows
            # from the same cell, ENCUT and PREC
            inc.update(NGXF=int(gpts[0]), NGYF=int(gpts[1]), NGZF=int(gpts[2]))
    elif kind == "nscf":
        # non-SCF DOS (atomate2's NonSCFSetGenerator, uniform mode): density read from the static's CHGCAR,
        # tetrahedron method with Bloechl corrections (fine for metals too) when the mesh has enough points
        tetra = int(np.prod(dos_mesh or [1])) >= 8
        inc.update(NSW=0, IBRION=-1, ISIF=None, EDIFFG=None, ICHARG=11, LCHARG=False, LAECHG=None, LVHAR=None,
                   LORBIT=11, NEDOS=int(native.get("nedos", 2001)), ISMEAR=-5 if tetra else 0,
                   SIGMA=float(v["dos_width_eV"]) if not tetra else None, ISYM=None)
    elif kind == "neb":
        inc.update(NSW=int(v["neb_steps"]), ISIF=2, EDIFFG=-float(v["neb_fmax_eV_A"]), LCHARG=False, LAECHG=None,
                   LVHAR=None, LORBIT=None, IMAGES=int(n_images or v["neb_images"]), SPRING=-float(v["neb_spring"]),
                   ISYM=0, EDIFF=min(float(v["scf_energy_eV"]), 1e-6))  # accurate band forces (atomate2's NEB set)
        if native.get("neb_vtst", True):
            # VTST: its optimiser (IOPT) drives the band, so VASP's is off (IBRION 3 + POTIM 0)
            inc.update(IBRION=3, POTIM=0, IOPT=int(native.get("neb_iopt", 3)), LCLIMB=bool(v["neb_climb"]))
        else:  # VASP's own NEB: quick-min damped dynamics, no climbing image
            inc.update(IBRION=3, POTIM=float(native.get("neb_potim", 0.1)), IOPT=None, LCLIMB=None)
    else:
        raise ValueError(f"unknown VASP task kind '{kind}'; valid: relax, static, nscf, neb")
    return inc


def _generator(kind: str, user_incar: dict[str, Any], mesh: list[int], native: dict[str, Any]):
    """atomate2's generator for the task kind, with our INCAR on top and an explicit Gamma-centred mesh.
    sort_structure=False keeps the caller's atom order (fixed atoms, ion indices, fragments are indices)."""
    from atomate2.vasp.sets.core import NebSetGenerator, NonSCFSetGenerator, RelaxSetGenerator, StaticSetGenerator
    from pymatgen.io.vasp import Kpoints

    cls = {"relax": RelaxSetGenerator, "static": StaticSetGenerator, "neb": NebSetGenerator,
           "nscf": NonSCFSetGenerator}[kind]
    kw: dict[str, Any] = dict(user_incar_settings=user_incar,
                              user_kpoints_settings=Kpoints.gamma_automatic(tuple(int(k) for k in mesh)),
                              sort_structure=False, auto_ismear=False)
    if kind == "nscf":
        kw.update(mode="uniform", auto_ispin=False)
    if native.get("potcar_functional"):
        kw["user_potcar_functional"] = native["potcar_functional"]
    if native.get("potcars"):
        kw["user_potcar_settings"] = dict(native["potcars"])
    if kind == "neb":
        kw["num_images"] = int(user_incar.get("IMAGES", 1))
    return cls(**kw)


def _parallel_tags() -> dict[str, Any]:
    """NCORE/KPAR/... from HETERO_VASP_PARALLEL ("NCORE=4 KPAR=2", set by the HPC profile): not hashed."""
    out: dict[str, Any] = {}
    for item in os.environ.get("HETERO_VASP_PARALLEL", "").replace(",", " ").split():
        key, _, val = item.partition("=")
        key = key.strip().upper()
        if key not in PARALLEL_TAGS or not val:
            raise SettingsError(f"HETERO_VASP_PARALLEL: '{item}' is not TAG=value with TAG in {sorted(PARALLEL_TAGS)}")
        out[key] = int(val) if val.lstrip("-").isdigit() else val
    return out


def write_input_folder(settings: dict[str, Any], structure: Structure, folder: Path, kind: str,
                       fixed: list[int] | None = None) -> Path:
    """Write INCAR (exactly ``settings['incar']`` + machine tags), KPOINTS, POSCAR and POTCAR (POTCAR.spec
    without PMG_VASP_PSP_DIR) through atomate2's generator."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # the generator writes KPOINTS, POSCAR and POTCAR; per-site lists (MAGMOM, LDAUU, ...) of the complete
    # INCAR are not generator input, and the INCAR is then written exactly as hashed
    scalars = {k: v for k, v in settings["incar"].items() if not isinstance(v, list)}
    gen = _generator(kind, scalars, settings["kpoints"], settings.get("native", {}))
    vis = gen.get_input_set(_input_structure(structure, fixed), potcar_spec=not _potcars_available())
    vis.write_input(str(folder))
    from pymatgen.io.vasp import Incar

    parallel = _parallel_tags()
    if settings["incar"].get("LELF"):
        parallel = {**{k: v for k, v in parallel.items() if k not in ("NCORE", "NPAR", "KPAR")}, **ELF_PARALLEL}
    incar_path = folder / "INCAR"
    Incar({**settings["incar"], **parallel}).write_file(str(incar_path))
    notes = [encut_note(settings["incar"].get("ENCUT"), list(gen.potcar_symbols),
                        settings.get("potcar_functional") or gen.potcar_functional)]
    if settings["incar"].get("LELF"):
        notes.append("NPAR = 1, KPAR = 1: LELF (VASP wiki LELF; VASP stops on LELF with KPAR > 1)")
    with incar_path.open("a") as fh:  # VASP and pymatgen read '#' as a comment
        fh.write("".join(f"# hetero: {n}\n" for n in notes))
    return folder


def encut_note(encut: float | None, symbols: list[str], functional: str) -> str:
    """One line on the ENCUT >= 1.3 x ENMAX check of these POTCARs (for the INCAR and the dry-run listing)."""
    floor = encut_floor(symbols, functional)
    encut = f"{encut:g}" if isinstance(encut, (int, float)) else encut
    if floor is None:
        return (f"ENCUT = {encut} eV from the preset; the check ENCUT >= {ENMAX_FACTOR} x the largest ENMAX of the "
                f"POTCARs ({', '.join(symbols)}, {functional}) waits for POTCARs (PMG_VASP_PSP_DIR): a run with "
                "them raises ENCUT when it is lower, in a new task folder")
    top, enmax, need = floor
    return f"ENCUT = {encut} eV >= {ENMAX_FACTOR} x ENMAX of {top} ({enmax:g} eV) = {need} eV: checked"


@dataclass
class VaspEngine(Engine):
    """VASP through atomate2's input sets and custodian. The command is ``vasp_cmd`` or HETERO_VASP_CMD
    (e.g. "srun -n 64 vasp_std"); ``polling_s`` is custodian's polling step (env HETERO_CUSTODIAN_POLL_S);
    ``ranks``: MPI ranks when the command does not say (NEB IMAGES must divide them); ``dry_run`` (or env
    HETERO_VASP_DRY_RUN) writes every task's inputs and raises InputsWritten instead of running."""

    preset: str = "fast"
    vasp_cmd: str = "vasp_std"
    polling_s: float | None = None
    ranks: int | None = None
    dry_run: bool = False

    name: ClassVar[str] = "vasp"
    # ELFCAR holds the ELF only, not the kinetic-energy density an interface's ELF "before" is built from
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability) - {Capability.KINETIC_ENERGY_DENSITY}

    # ------------------------------------------------------------------ settings
    def check_native(self, native: dict[str, Any]) -> None:
        import pymatgen.io.vasp as pmg_vasp

        known = set(json.loads((Path(pmg_vasp.__file__).parent / "incar_parameters.json").read_text()))
        for key in native:
            if key in VASP_KEYS:
                continue
            if key.isupper():
                if key in NEUTRAL_TAGS:
                    raise SettingsError(f"'vasp: {key}' is decided by the neutral setting '{NEUTRAL_TAGS[key]}': set that "
                                        "instead (it works on every engine)")
                if key in TASK_TAGS:
                    raise SettingsError(f"'vasp: {key}' is set by hetero from the task (relax/static/neb, cell=, "
                                        "outputs=); remove it")
                if key in PARALLEL_TAGS:
                    raise SettingsError(f"'vasp: {key}' is a machine setting: put it in HETERO_VASP_PARALLEL (the HPC "
                                        "profile's vasp_parallel), where it does not change the task hash")
                if key not in known:
                    raise SettingsError(f"'vasp: {key}' is not an INCAR tag pymatgen knows; check the spelling")
                continue
            raise SettingsError(f"unknown VASP-only setting '{key}' under 'vasp:'; valid: {', '.join(sorted(VASP_KEYS))} "
                                "or upper-case INCAR tags (neutral settings such as spin go at the top level)")

    @property
    def writes_only(self) -> bool:
        """Dry run: ``dry_run`` or HETERO_VASP_DRY_RUN (set by hetero.dryrun around a campaign's flow)."""
        return bool(self.dry_run or os.environ.get("HETERO_VASP_DRY_RUN"))

    @property
    def command(self) -> str:
        return os.environ.get("HETERO_VASP_CMD") or self.vasp_cmd

    @property
    def potcar_functional(self) -> str:
        return str(self.native.get("potcar_functional") or "PBE_54")

    def translate(self, resolved: Resolved, structure: Structure, kind: str, **options: Any) -> dict[str, Any]:
        """The complete INCAR of the task (atomate2's base set under ours) and its k mesh; a static that
        asks for the DOS also carries the non-SCF DOS run's INCAR and denser mesh under ``dos``.
        ``options``: cell (relax), outputs and gpts (static), n_images (neb)."""
        opts = options
        v = resolved.values
        u = dict(v.get("hubbard_u") or {})
        if u and not any(sp.symbol in HUBBARD_ANIONS for sp in structure.species):
            v["hubbard_u"] = {}
            resolved.sources["hubbard_u"] = "model: not an oxide or fluoride (U only on oxides/fluorides, as the MP sets)"
        outputs = tuple(opts.get("outputs", ()))
        mesh = [int(k) for k in v["kpoints"]]
        native = {k: self.native[k] for k in ("potcar_functional", "potcars") if self.native.get(k)}
        escape = {k: val for k, val in self.native.items() if k.isupper()}  # the named escape hatch, last

        def complete(task_kind: str, task_tags: dict[str, Any], k_mesh: list[int]) -> dict[str, Any]:
            user = _neutral_incar(v, structure, self.native, task_kind)
            user.update(task_tags)
            user.update(escape)
            gen = _generator(task_kind, user, k_mesh, native)
            vis = gen.get_input_set(_input_structure(structure), potcar_spec=True)
            return {"incar": _plain_incar(vis.incar), "kpoints": k_mesh, "potcar": gen.potcar_symbols,
                    "potcar_functional": gen.potcar_functional, "native": native}

        task_tags = _task_incar(kind, v, self.native, cell=bool(opts.get("cell")), outputs=outputs,
                                gpts=opts.get("gpts"), n_images=opts.get("n_images"))
        settings = complete(kind, task_tags, mesh)
        if self.raise_encut(resolved, settings["potcar"], settings["potcar_functional"]):
            settings = complete(kind, task_tags, mesh)
        if kind == "static" and "dos" in outputs:
            dos_mesh = self.dos_mesh(v, mesh)
            dos = complete("nscf", _task_incar("nscf", v, self.native, dos_mesh=dos_mesh), dos_mesh)
            dos["dos_width_eV"] = 0.0 if dos["incar"].get("ISMEAR") == -5 else float(v["dos_width_eV"])
            settings["dos"] = {k: dos[k] for k in ("incar", "kpoints", "dos_width_eV")}
        return settings

    def raise_encut(self, resolved: Resolved, symbols: list[str], functional: str) -> bool:
        """cutoff_eV >= ENMAX_FACTOR x the largest ENMAX of the POTCARs in use, read by pymatgen when they are
        available (PMG_VASP_PSP_DIR); a raise is recorded as the cutoff's source. Without POTCARs the check waits
        (sources['encut_check'] says so; the INCAR too). True when the cutoff was raised."""
        floor = encut_floor(symbols, functional)
        v, src = resolved.values, resolved.sources
        if floor is None:
            src["encut_check"] = (f"waits for POTCARs: ENCUT >= {ENMAX_FACTOR} x ENMAX of {', '.join(symbols)} "
                                  f"({functional}) is checked when PMG_VASP_PSP_DIR holds them")
            return False
        top, enmax, need = floor
        src["encut_check"] = f"{ENMAX_FACTOR} x ENMAX of {top} ({enmax:g} eV, {functional} POTCAR) = {need} eV"
        if float(v["cutoff_eV"]) >= need:
            return False
        src["cutoff_eV"] = (f"model: {ENMAX_FACTOR} x ENMAX of {top} ({enmax:g} eV, {functional} POTCAR), above the "
                            f"{src.get('cutoff_eV', 'preset')} value {v['cutoff_eV']:g} eV")
        v["cutoff_eV"] = float(need)
        return True

    def dos_mesh(self, v: dict[str, Any], mesh: list[int]) -> list[int]:
        """k mesh of the non-SCF DOS: dos_kpoints_mesh on models with vacuum, else vasp.dos_kpoints_scale x
        the SCF mesh; always 1 along vacuum."""
        vac = list(v.get("vacuum_axes", []))
        if v.get("dos_kpoints_mesh") and vac:
            out = [int(k) for k in v["dos_kpoints_mesh"]]
        else:
            scale = float(self.native.get("dos_kpoints_scale", 2.0))
            out = [max(1, math.ceil(scale * k)) for k in mesh]
        for ax in vac:
            out[ax] = 1
        return out

    # ------------------------------------------------------------------ running
    def before_run(self, task: dict, structure: Structure) -> None:
        if self.writes_only:
            return
        self.check_potcars(task["settings"])
        self.check_command()
        if task["kind"] == "neb":
            self.check_ranks(int(task["settings"]["incar"]["IMAGES"]))

    def check_potcars(self, settings: dict[str, Any]) -> None:
        """A real run needs POTCARs: refuse with the variable and functional to set (POTCAR.spec is not enough)."""
        symbols = settings.get("potcar", [])
        functional = settings.get("potcar_functional", self.potcar_functional)
        if os.environ.get("HETERO_VASP_ALLOW_POTCAR_SPEC"):  # mocked VASP in tests
            return
        if not _potcars_available():
            raise PotcarMissingError(
                f"VASP needs POTCAR files ({', '.join(symbols)}; functional {functional}) and PMG_VASP_PSP_DIR is not set: "
                "export PMG_VASP_PSP_DIR=/path/to/psp (the folder holding POT_GGA_PAW_PBE_54/...; or `pmg config "
                "--add PMG_VASP_PSP_DIR /path`). `hetero run --dry-run` writes the inputs (POTCAR.spec) without them")
        from pymatgen.io.vasp import Potcar

        try:
            Potcar(symbols, functional=functional)
        except Exception as exc:  # noqa: BLE001 - pymatgen raises several types for a missing file
            raise PotcarMissingError(f"POTCARs {symbols} (functional {functional}) not found under PMG_VASP_PSP_DIR="
                                     f"{os.environ.get('PMG_VASP_PSP_DIR', '(pymatgen settings)')}: {exc}") from exc

    def check_command(self) -> None:
        cmd = shlex.split(self.command)
        exe = [cmd[0]] + ([cmd[-1]] if Path(cmd[0]).name in LAUNCHERS and len(cmd) > 1 else [])
        for e in exe:
            if shutil.which(e) is None:
                raise EngineRunError(f"VASP executable '{e}' (command '{self.command}') not found: set HETERO_VASP_CMD "
                                     "(e.g. 'srun vasp_std') or vasp_cmd; `hetero run --dry-run` writes the inputs only")

    def mpi_ranks(self) -> int | None:
        """MPI ranks of the VASP command: ``ranks``, else -n/-np/--ntasks in the command, else SLURM_NTASKS."""
        if self.ranks:
            return int(self.ranks)
        cmd = shlex.split(self.command)
        for i, tok in enumerate(cmd):
            for flag in ("-n", "-np", "--ntasks", "--np"):
                if tok == flag and i + 1 < len(cmd) and cmd[i + 1].isdigit():
                    return int(cmd[i + 1])
                if tok.startswith(flag + "=") and tok.split("=", 1)[1].isdigit():
                    return int(tok.split("=", 1)[1])
        env = os.environ.get("SLURM_NTASKS") or os.environ.get("PBS_NP")
        return int(env) if env and env.isdigit() else None

    def check_ranks(self, n_images: int) -> None:
        """VASP splits the ranks into IMAGES equal groups and aborts otherwise: refuse before submitting."""
        ranks = self.mpi_ranks()
        if ranks is not None and ranks % n_images:
            lower, upper = ranks - ranks % n_images, ranks - ranks % n_images + n_images
            raise EngineRunError(f"a VASP NEB with IMAGES = {n_images} needs a rank count divisible by {n_images}; "
                                 f"the command '{self.command}' runs {ranks}: use {lower or n_images} or {upper} ranks, "
                                 f"or a neb_images that divides {ranks}")

    def _compute(self, task: dict, folder: Path, structure: Structure) -> dict[str, Any]:
        kind = task["kind"]
        if kind == "neb":
            return self._compute_neb(task, folder)
        t0 = time.time()
        fixed = task.get("fixed") or []
        restarts = archive_interrupted(folder)
        ran = False
        if not _complete_vasprun(folder):
            write_input_folder(task["settings"], structure, folder, kind, fixed if kind == "relax" else None)
            if kind == "relax":
                restart_from_contcar(folder)
            if self.writes_only:
                if task["settings"].get("dos"):
                    write_input_folder(task["settings"]["dos"], structure, folder / "dos", "nscf")
                raise _dry_stop(folder, kind, task["settings"])
            self._run(folder, kind)
            ran = True
        out = convert_calc(folder, task, structure, dos_from_scf=not task["settings"].get("dos"))
        if "dos" in task.get("outputs", []) and task["settings"].get("dos"):
            out.update(self._dos_run(task, folder, structure))
            out["files"]["dos"] = "dos.npz"
            out["files"]["dos_vasprun"] = "dos/vasprun.xml"
        out.update(wall_s=time.time() - t0 if ran else None, cores=self.mpi_ranks(), restarts=restarts)
        return out

    def _run(self, folder: Path, kind: str, n_images: int = 0) -> None:
        self.run_custodian(folder, kind)
        stopcar = folder / "STOPCAR"
        if stopcar.exists():  # custodian's WalltimeHandler stopped VASP before the walltime
            if kind == "neb":
                for i in range(1, n_images + 1):
                    archive_interrupted(folder / f"{i:02d}", neb_image=True, force=True)
                stopcar.chmod(0o644)
                stopcar.unlink()
            else:
                archive_interrupted(folder, force=True)
            raise EngineRunError(f"VASP in {folder} was stopped before the walltime (STOPCAR); its outputs are in "
                                 "interrupted-*/: run the campaign again to continue from the last CONTCAR")

    def _dos_run(self, task: dict, folder: Path, structure: Structure) -> dict[str, Any]:
        """The non-SCF DOS (ICHARG 11) in <folder>/dos on the static's CHGCAR with the denser mesh."""
        from hetero.engines.vasp_outputs import OutputParseError, _find, load_vasprun

        d = folder / "dos"
        archive_interrupted(d)
        if not _complete_vasprun(d):
            chg = _find(folder, "CHGCAR")
            if chg is None or chg.suffix in (".gz", ".bz2", ".xz"):
                raise OutputParseError(folder / "CHGCAR", "the static wrote no (uncompressed) CHGCAR: the non-SCF DOS "
                                                          "run reads it (ICHARG 11)")
            write_input_folder(task["settings"]["dos"], structure, d, "nscf")
            shutil.copy(chg, d / "CHGCAR")
            self._run(d, "static")
        vr_path = _find(d, "vasprun.xml")
        vr = load_vasprun(vr_path, parse_dos=True)
        symbols = [sp.symbol for sp in vr.final_structure.species]
        if symbols != [sp.symbol for sp in structure.species]:
            raise OutputParseError(vr_path, f"DOS outputs are for {symbols}, not the input structure")
        return _dos_outputs(vr, vr_path, len(structure), folder)

    def _compute_neb(self, task: dict, folder: Path) -> dict[str, Any]:
        images = [structure_from_atoms_dict(a) for a in task["images"]]
        fixed = task.get("fixed") or []
        t0 = time.time()
        n = len(images) - 2
        restarts = sum(archive_interrupted(folder / f"{i:02d}", neb_image=True) for i in range(1, n + 1))
        ran = False
        if not all(_complete_outcar(folder / f"{i:02d}") for i in range(1, n + 1)):
            # a restart keeps the images' POSCARs (their last CONTCARs, see archive_interrupted)
            write_neb_folder(task["settings"], images, folder, fixed, keep_image_positions=restarts > 0)
            if self.writes_only:
                raise _dry_stop(folder, "neb", task["settings"])
            self._run(folder, "neb", n_images=n)
            ran = True
        out = convert_neb(folder, images, task["endpoint_energies_eV"], task["settings"]["incar"], fixed)
        out.update(wall_s=time.time() - t0 if ran else None, cores=self.mpi_ranks(), restarts=restarts)
        return out

    def run_custodian(self, folder: str | Path, kind: str = "relax", max_errors: int = 5) -> None:
        """VASP under custodian with atomate2's handlers and validators; failures name the folder."""
        from custodian import Custodian
        from custodian.vasp.jobs import VaspJob, VaspNEBJob

        folder = Path(folder)
        cmd = shlex.split(self.command)
        poll = self.polling_s if self.polling_s is not None else float(os.environ.get("HETERO_CUSTODIAN_POLL_S", 10))
        has_potcar = (folder / "POTCAR").exists()
        if kind == "neb":
            job = VaspNEBJob(cmd, output_file="vasp.out", stderr_file="std_err.txt", auto_npar=False, backup=has_potcar,
                             auto_gamma=False)
        else:
            job = VaspJob(cmd, output_file="vasp.out", stderr_file="std_err.txt", auto_npar=False, backup=has_potcar,
                          auto_gamma=False)
        c = Custodian(custodian_handlers(kind), [job], validators=custodian_validators(kind), max_errors=max_errors,
                      polling_time_step=poll, monitor_freq=max(1, int(30 / max(poll, 1e-3))), directory=str(folder))
        try:
            c.run()
        except Exception as exc:  # noqa: BLE001 - custodian raises its own error types
            tail = ""
            log = folder / "vasp.out"
            if log.exists():
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise EngineRunError(f"VASP in {folder} failed under custodian ({type(exc).__name__}: {exc}); "
                                 f"last lines of vasp.out:\n{tail}") from exc


# ---------------------------------------------------------------------------------- custodian
def custodian_handlers(kind: str = "relax") -> list:
    """atomate2's DEFAULT_HANDLERS (+ WalltimeHandler, inactive without a known walltime); for NEB without
    those that read a single vasprun.xml/OSZICAR in the top folder."""
    from atomate2.vasp.run import DEFAULT_HANDLERS
    from custodian.vasp.handlers import (
        MeshSymmetryErrorHandler,
        PositiveEnergyErrorHandler,
        PotimErrorHandler,
        UnconvergedErrorHandler,
        WalltimeHandler,
    )

    handlers = list(DEFAULT_HANDLERS)
    if kind == "neb":
        drop = (UnconvergedErrorHandler, PotimErrorHandler, PositiveEnergyErrorHandler, MeshSymmetryErrorHandler)
        handlers = [h for h in handlers if not isinstance(h, drop)]
    # the job's walltime (s): HETERO_WALLTIME_S, else custodian reads PBS_WALLTIME / SBATCH_TIMELIMIT; with
    # none known the handler does nothing. It writes a STOPCAR in time for VASP to end cleanly; the engine
    # then keeps the outputs in interrupted-N/ and the next run continues from CONTCAR.
    wall = os.environ.get("HETERO_WALLTIME_S")
    return [*handlers, WalltimeHandler(wall_time=int(float(wall)) if wall else None)]


def custodian_validators(kind: str = "relax") -> list:
    """A run without a readable vasprun.xml or without CONTCAR/OSZICAR/OUTCAR is a failure (atomate2's set)."""
    if kind == "neb":
        from atomate2.vasp.run import VaspNebFilesValidator

        return [VaspNebFilesValidator()]
    from custodian.vasp.validators import VaspFilesValidator, VasprunXMLValidator

    return [VasprunXMLValidator(), VaspFilesValidator()]


# ---------------------------------------------------------------------------------- outputs
def _find_out(folder: Path, name: str) -> Path | None:
    from hetero.engines.vasp_outputs import _find

    return _find(Path(folder), name) if Path(folder).is_dir() else None


def _complete_vasprun(folder: Path) -> bool:
    from hetero.engines.vasp_outputs import OutputParseError, check_vasprun

    p = _find_out(folder, "vasprun.xml")
    if p is None:
        return False
    try:
        check_vasprun(p)
    except OutputParseError:
        return False
    return True


def _complete_outcar(folder: Path) -> bool:
    from hetero.engines.vasp_outputs import OutputParseError, check_outcar

    p = _find_out(folder, "OUTCAR")
    if p is None:
        return False
    try:
        check_outcar(p)
    except OutputParseError:
        return False
    return True


RUN_OUTPUTS = ("vasprun.xml", "OUTCAR", "OSZICAR", "CONTCAR", "XDATCAR", "CHGCAR", "CHG", "AECCAR0", "AECCAR1",
               "AECCAR2", "LOCPOT", "ELFCAR", "DOSCAR", "PROCAR", "EIGENVAL", "IBZKPT", "PCDAT", "REPORT", "WAVECAR",
               "vasp.out", "std_err.txt", "custodian.json", "STOPCAR")


def archive_interrupted(folder: Path, neb_image: bool = False, force: bool = False) -> int:
    """Move the outputs of an interrupted run (killed at the walltime: truncated vasprun.xml/OUTCAR; or
    stopped by custodian's STOPCAR) into ``interrupted-<n>/`` so the next run starts clean, and for a NEB
    image continue from its last CONTCAR. Returns how many interrupted runs the folder has had."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    n_done = len(list(folder.glob("interrupted-*")))
    present = [f for f in RUN_OUTPUTS if (folder / f).exists()]
    if not present:
        return n_done
    complete = _complete_outcar(folder) if neb_image else _complete_vasprun(folder)
    if complete and not force and not (folder / "STOPCAR").exists():
        return n_done
    dest = folder / f"interrupted-{n_done + 1}"
    dest.mkdir()
    for f in present:
        shutil.move(str(folder / f), dest / f)
    if neb_image:
        _contcar_to_poscar(dest / "CONTCAR", folder / "POSCAR")
    return n_done + 1


def _contcar_to_poscar(contcar: Path, poscar: Path) -> bool:
    """Copy a CONTCAR over POSCAR when it is a complete structure with the same atoms (VASP keeps the
    selective dynamics flags in it); a CONTCAR cut by a kill is ignored."""
    if not contcar.exists() or contcar.stat().st_size == 0 or not poscar.exists():
        return False
    try:
        new, old = Structure.from_file(str(contcar)), Structure.from_file(str(poscar))
    except Exception:  # noqa: BLE001 - truncated or empty CONTCAR
        return False
    if [sp.symbol for sp in new.species] != [sp.symbol for sp in old.species]:
        return False
    shutil.copy(contcar, poscar)
    return True


def restart_from_contcar(folder: Path) -> bool:
    """After an interrupted relaxation: start from the newest usable CONTCAR of interrupted-*/."""
    for d in sorted(Path(folder).glob("interrupted-*"), key=lambda p: int(p.name.split("-")[1]), reverse=True):
        if _contcar_to_poscar(d / "CONTCAR", Path(folder) / "POSCAR"):
            return True
    return False


def _vasprun_valence(path: Path) -> list[float] | None:
    """Valence (ZVAL) of every atom from vasprun.xml's <atominfo> (atomtypes 'valence' column)."""
    import xml.etree.ElementTree as ET

    from hetero.engines.vasp_outputs import _read_text

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
    from hetero.engines.vasp_outputs import OutputParseError, _find

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
    oc = _outcar_for(folder, symbols)
    if oc is not None:
        zval = {str(k): float(v) for k, v in oc.zval_dict.items()}
        return [zval[s] for s in symbols], "OUTCAR"
    raise OutputParseError(folder / "POTCAR", f"no valence (ZVAL) for {sorted(set(symbols))}: need POTCAR, "
                                              "vasprun.xml atominfo or a matching OUTCAR")


def _outcar_for(folder: Path, symbols: list[str]):
    """OUTCAR of this run, or None when absent, truncated, or written for other elements."""
    from hetero.engines.vasp_outputs import _find, load_outcar

    p = _find(folder, "OUTCAR")
    if p is None:
        return None
    try:
        oc = load_outcar(p)
        oc.read_pseudo_zval()
        if not set(symbols) <= {str(k) for k in oc.zval_dict}:
            return None
        return oc
    except Exception:  # noqa: BLE001 - truncated, corrupt or another code's OUTCAR: not this run's
        return None


def dos_arrays(vr, vr_path: Path, n_atoms: int) -> tuple[dict[str, np.ndarray], bool]:
    """DOS arrays from vasprun.xml: energies relative to VASP's E-fermi, total (spin summed), per_atom
    (n_atoms x n_E, orbitals and spins summed; NaN when VASP wrote no projections)."""
    from hetero.engines.vasp_outputs import OutputParseError

    cdos = vr.complete_dos
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


def electrons_below_fermi(energies_rel: np.ndarray, total: np.ndarray) -> float:
    """Total DOS integrated over every band up to E_F (energies relative to E_F)."""
    occ = energies_rel <= 0
    return float(np.trapezoid(total[occ], energies_rel[occ])) if occ.sum() > 1 else 0.0


def convert_calc(folder: Path, task: dict, structure: Structure, dos_from_scf: bool = True) -> dict[str, Any]:
    """VASP outputs of a relax/static folder -> the shared result dict (+ density.npz, dos.npz).
    Non-finite energies or forces are passed on as NaN so the base class refuses them. ``dos_from_scf``:
    the DOS comes from this vasprun (False: from the non-SCF run, see VaspEngine._dos_run)."""
    from hetero.engines.vasp_outputs import OutputParseError, _find, load_vasprun, read_chgcar

    folder = Path(folder)
    vr_path = _find(folder, "vasprun.xml")
    if vr_path is None:
        raise OutputParseError(folder / "vasprun.xml", "VASP finished without vasprun.xml")
    want = set(task.get("outputs", []))
    relax = task["kind"] == "relax"
    vr = load_vasprun(vr_path, parse_dos=True)  # E_F lives in the DOS block
    final = vr.final_structure
    symbols = [sp.symbol for sp in final.species]
    if symbols != [sp.symbol for sp in structure.species]:
        raise OutputParseError(vr_path, f"outputs are for {final.composition.formula} in the order {symbols}, "
                                        f"not the input {[sp.symbol for sp in structure.species]}")
    last = vr.ionic_steps[-1]
    forces = np.asarray(last.get("forces", []), dtype=float)
    fixed = task.get("fixed") or []
    if fixed and forces.size:
        forces[fixed] = 0.0  # as ASE's FixAtoms reports them
    if forces.size:
        fmax = float(np.linalg.norm(forces, axis=1).max()) if np.all(np.isfinite(forces)) else float("nan")
    else:
        fmax = None
    energy = vr.final_energy
    out: dict[str, Any] = {
        "energy_eV": float(energy) if energy is not None else float("nan"),
        "fermi_eV": float(vr.efermi) if vr.efermi is not None else None,
        "forces_max_eV_A": fmax,
        "converged": bool(vr.converged_electronic and (vr.converged_ionic if relax else True)),
        "atoms": atoms_dict(final),
        "files": {"log": "OUTCAR" if _find(folder, "OUTCAR") else vr_path.name, "vasprun": vr_path.name},
        "n_scf": len(last.get("electronic_steps", [])) or None,
        "engine_version": str(getattr(vr, "vasp_version", "") or ""),
    }
    oc = _outcar_for(folder, symbols)
    out["magmom_total"] = (float(oc.total_mag) if oc is not None and oc.total_mag is not None
                           else (0.0 if int(vr.parameters.get("ISPIN", 1)) == 1 else None))
    if relax:
        out["n_ionic_steps"] = len(vr.ionic_steps)
        if _find(folder, "CONTCAR"):
            out["files"]["structure"] = "CONTCAR"
        return out
    # static: grids, valence, requested outputs
    valence, source = valence_per_atom(folder, symbols, vr_path)
    out["valence"] = valence
    out["valence_source"] = source
    out["core_electrons"] = [float(sp.Z) - v for sp, v in zip(final.species, valence)]
    ng = [vr.parameters.get(k) for k in ("NGXF", "NGYF", "NGZF")]
    out["gpts"] = [int(x) for x in ng] if all(ng) else None
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
        if a0 is None or a2 is None:
            raise OutputParseError(folder / "AECCAR0", "density requested (LAECHG) but AECCAR0/AECCAR2 missing")
        c0, c2 = read_chgcar(a0), read_chgcar(a2)
        if c0.data["total"].shape != c2.data["total"].shape:
            raise OutputParseError(a2, "AECCAR0 and AECCAR2 are on different grids")
        # all_electron = AECCAR0 + AECCAR2, the Bader reference; core = AECCAR0 for the core-charge check
        # (hetero.analysis.bader_reference: basins of all_electron, valence charge = pseudo integrated)
        arrays["all_electron"] = (np.asarray(c0.data["total"]) + np.asarray(c2.data["total"])) / vol
        arrays["core"] = np.asarray(c0.data["total"]) / vol
        np.savez_compressed(folder / "density.npz", **arrays)
        out["files"].update(aeccar0=a0.name, aeccar2=a2.name)
        out["files"]["density"] = "density.npz"
        out["files"]["chgcar"] = chg_p.name
    if "potential" in want:
        lp = _find(folder, "LOCPOT")
        if lp is None:
            raise OutputParseError(folder / "LOCPOT", "potential requested (LVHAR) but VASP wrote no LOCPOT")
        loc = read_chgcar(lp, "Locpot")
        out["planar_potential_eV"] = [float(x) for x in loc.get_average_along_axis(2)]
    if "elf" in want:
        out["files"].update(_elf_outputs(folder, symbols, final))
    if "dos" in want and dos_from_scf:
        out.update(_dos_outputs(vr, vr_path, len(final), folder))
        out["files"]["dos"] = "dos.npz"
    return out


def _elf_outputs(folder: Path, symbols: list[str], final: Structure) -> dict[str, str]:
    """ELFCAR (pymatgen's Elfcar) -> elf.npz as the GPAW ELF step writes it: ``elf`` on the grid along a, b, c
    and ``cell``. VASP writes one ELF per spin channel (ISPIN 2: up, then down), so a spin-polarised ``elf`` is
    (2, nx, ny, nz) with ``channels`` naming them; GPAW's is one spin-combined ELF (Kohout's formula)."""
    from hetero.engines.vasp_outputs import OutputParseError, _find, read_chgcar

    path = _find(folder, "ELFCAR")
    if path is None:
        raise OutputParseError(folder / "ELFCAR", "ELF requested (LELF) but VASP wrote no ELFCAR")
    elfcar = read_chgcar(path, "Elfcar")
    if [sp.symbol for sp in elfcar.structure.species] != symbols:
        raise OutputParseError(path, "ELFCAR is for another structure than vasprun.xml")
    channels = [k for k in ("spin_up", "spin_down") if k in elfcar.data] or ["total"]
    elf = np.stack([np.asarray(elfcar.data[k], dtype=float) for k in channels])
    if not np.all(np.isfinite(elf)) or elf.min() < -1e-6 or elf.max() > 1 + 1e-6:
        raise OutputParseError(path, f"values outside 0..1 (min {np.nanmin(elf):.3g}, max {np.nanmax(elf):.3g}): "
                                     "not an ELF")
    np.savez_compressed(folder / "elf.npz", elf=elf if len(channels) == 2 else elf[0], cell=final.lattice.matrix,
                        channels=np.array([c.replace("spin_", "") for c in channels]))
    return {"elf": "elf.npz", "elfcar": path.name}


def _dos_outputs(vr, vr_path: Path, n_atoms: int, save_in: Path) -> dict[str, Any]:
    """dos.npz in ``save_in`` (energies relative to E_F of the DOS run) and the DOS numbers of the result."""
    arrays, projected = dos_arrays(vr, vr_path, n_atoms)
    np.savez_compressed(save_in / "dos.npz", **arrays)
    out: dict[str, Any] = {"dos_fermi_eV": float(vr.efermi), "dos_reference": "E_F (VASP E-fermi of the DOS run)",
                           "dos_projected": projected,
                           "n_electrons_below_fermi": electrons_below_fermi(arrays["energies"], arrays["total"])}
    try:  # the eigenvalue gap (a smeared DOS leaks states into gaps)
        out["eigen_gap_eV"] = float(vr.eigenvalue_band_properties[0])
    except Exception:  # noqa: BLE001 - no eigenvalues in this vasprun
        out["eigen_gap_eV"] = None
    return out


def write_neb_folder(settings: dict[str, Any], images: list[Structure], folder: Path, fixed: list[int],
                     keep_image_positions: bool = False) -> Path:
    """CI-NEB folder (atomate2's NebFromImagesMaker layout): shared INCAR/KPOINTS/POTCAR(.spec), 00..NN/POSCAR,
    and KPOINTS copied into every image (VASP 6 + HDF5 compares them)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "_set"
    write_input_folder(settings, images[0], tmp, "neb", fixed)
    for f in tmp.iterdir():
        if f.name != "POSCAR":
            shutil.move(str(f), folder / f.name)
    shutil.rmtree(tmp)
    for i, im in enumerate(images):
        d = folder / f"{i:02d}"
        d.mkdir(exist_ok=True)
        if not (keep_image_positions and (d / "POSCAR").exists()):
            _input_structure(im, fixed).to(filename=str(d / "POSCAR"), fmt="poscar")
        shutil.copy(folder / "KPOINTS", d / "KPOINTS")
    return folder


def convert_neb(folder: Path, images: list[Structure], endpoint_energies: list[float], incar: dict[str, Any],
                fixed: list[int] | None = None) -> dict[str, Any]:
    """A finished NEB folder -> the shared NEB result. Whether VTST ran is read from the image OUTCARs (its
    'VTST: version' banner): without it LCLIMB and IOPT did nothing, so the run is labelled plain NEB and
    ``climbing`` is False. ``converged``: every moving image's force (VTST's NEB force, else the largest
    TOTAL-FORCE on a free atom) is within |EDIFFG|. '*****' or NaN forces are never a result."""
    from hetero.engines.vasp_outputs import _find, outcar_neb_image, parse_neb_dir

    folder = Path(folder)
    n = len(images) - 2
    infos = [outcar_neb_image(_find(folder / f"{i:02d}", "OUTCAR"), fixed) for i in range(1, n + 1)]
    vtst = all(info["vtst_version"] for info in infos)
    forces = [info["neb_force_max"] if vtst and info["neb_force_max"] is not None else info["force_max_free"]
              for info in infos]
    raw = [info["force_max_free"] for info in infos]
    if any(f is None or not math.isfinite(f) for f in forces + raw):
        raise OutputValidationError(f"{folder}: image forces {forces} (TOTAL-FORCE maxima {raw}; NaN or '*****' in "
                                    "the OUTCARs): the NEB did not produce a valid result")
    ediffg = float(incar.get("EDIFFG", -0.05))
    if ediffg < 0:
        converged = all(f <= abs(ediffg) + 1e-6 for f in forces)
    else:  # an energy criterion: trust VASP's own message
        converged = all(info["reached_accuracy"] for info in infos)
    climbing = vtst and bool(incar.get("LCLIMB"))
    if vtst:
        method = (f"VASP + VTST {infos[0]['vtst_version']}: {'climbing-image ' if climbing else ''}NEB, "
                  f"IOPT {incar.get('IOPT')}, SPRING {incar.get('SPRING')}")
    elif incar.get("IOPT") is not None:
        method = ("plain VASP NEB: no 'VTST: version' in the image OUTCARs, so LCLIMB and IOPT were ignored and "
                  "IBRION 3 with POTIM 0 did not move the images; install VTST or set vasp: {neb_vtst: false}")
    else:
        method = f"plain VASP NEB (IBRION {incar.get('IBRION')} quick-min, POTIM {incar.get('POTIM')}), no climbing image"
    doc = parse_neb_dir(folder, endpoint_energies=(endpoint_energies[0], endpoint_energies[-1]))
    e0 = doc.endpoint_energies_eV[0]
    finals = []
    for i in range(len(images)):
        img = folder / f"{i:02d}"
        p = _find(img, "CONTCAR") or _find(img, "POSCAR")
        finals.append(atoms_dict(Structure.from_file(str(p))))
    return {
        "energies_eV": [e0 + e for e in doc.energies_eV],
        "reaction_coord_A": doc.reaction_coord_A,
        "spline_x_A": doc.spline_x_A,
        "spline_e_eV": list(doc.spline_e_eV),  # relative to the first image, as NebResult says (not absolute)
        "converged": converged,
        "climbing": climbing,
        "method": method,
        "image_forces_eV_A": forces,
        "vtst_version": infos[0]["vtst_version"] if vtst else None,
        "n_images_moving": n,
        "images_in_parallel": True,  # VASP runs the images side by side on IMAGES groups of ranks
        "images": finals,
        "files": {"log": "01/OUTCAR"},
        "engine_version": "",
    }


# ---------------------------------------------------------------------------------- helpers for callers
STEP_OUTPUTS = {"relax": None, "static": ("density", "potential", "dos"), "dos": ("dos",), "bader": ("density",),
                "workfunction": ("potential",), "elf": ("elf",), "neb": None}


def _facts(stacked: bool, asymmetric: bool) -> ModelFacts:
    return ModelFacts(van_der_waals=stacked, asymmetric=asymmetric,
                      why={"van_der_waals": "stacked (caller)"} if stacked else {})


def task_settings(structure: Structure, step: str, preset: str = "fast", *, stacked: bool = False,
                  asymmetric: bool = False, overrides: dict[str, Any] | None = None, cell: bool = False,
                  n_images: int | None = None) -> dict[str, Any]:
    """The hashed native settings (complete INCAR + k mesh) the engine would use for ``step``."""
    if step not in STEP_OUTPUTS:
        raise ValueError(f"unknown VASP step '{step}'; valid steps: {', '.join(STEP_OUTPUTS)}")
    eng = VaspEngine(preset=preset, overrides=overrides or {})
    kind = step if step in ("relax", "neb") else "static"
    res = eng.resolve(structure, _facts(stacked, asymmetric))
    return eng.translate(res, structure, kind, cell=cell, outputs=STEP_OUTPUTS[step] or (), n_images=n_images)


def write_inputs(structure: Structure, step: str, directory: str | Path, preset: str = "fast", *,
                 stacked: bool = False, asymmetric: bool = False, overrides: dict[str, Any] | None = None,
                 cell: bool = False) -> Path:
    """Write the inputs the engine would give VASP for ``step`` (relax, static, dos, bader, workfunction)
    into ``directory`` (a step with the DOS adds the non-SCF run in ``directory/dos``); fixed atoms come from
    the structure's selective_dynamics."""
    settings = task_settings(structure, step, preset, stacked=stacked, asymmetric=asymmetric, overrides=overrides,
                             cell=cell)
    kind = "relax" if step == "relax" else "static"
    directory = write_input_folder(settings, structure, Path(directory), kind,
                                   fixed_indices(structure) if kind == "relax" else None)
    if settings.get("dos"):  # the non-SCF DOS run that follows the static (it reads ../CHGCAR)
        write_input_folder(settings["dos"], structure, directory / "dos", "nscf")
    return directory


def write_neb_inputs(images: list[Structure], directory: str | Path, preset: str = "fast", *, stacked: bool = False,
                     asymmetric: bool = False, overrides: dict[str, Any] | None = None) -> Path:
    """CI-NEB folder: INCAR/KPOINTS/POTCAR(.spec) and 00..NN/POSCAR; IMAGES = len(images) - 2."""
    settings = task_settings(images[0], "neb", preset, stacked=stacked, asymmetric=asymmetric, overrides=overrides,
                             n_images=len(images) - 2)
    return write_neb_folder(settings, images, Path(directory), fixed_indices(images[0]))


def input_generator(structure: Structure, step: str, preset: str = "fast", **kw):
    """atomate2's generator (Relax/Static/NebSetGenerator) holding the engine's complete INCAR and k mesh."""
    settings = task_settings(structure, step, preset, **kw)
    kind = step if step in ("relax", "neb") else "static"
    return _generator(kind, settings["incar"], settings["kpoints"], settings.get("native", {}))


def make_maker(structure: Structure, step: str, preset: str = "fast", name: str | None = None, **kw):
    """An atomate2 Maker (RelaxMaker or StaticMaker) with the engine's inputs, handlers and validators,
    for running hetero's settings inside an atomate2 workflow."""
    from atomate2.vasp.jobs.core import RelaxMaker, StaticMaker

    if step == "neb":
        raise ValueError("NEB: use VaspEngine.neb (or write_neb_inputs); atomate2's NebFromImagesMaker is not wrapped")
    gen = input_generator(structure, step, preset, **kw)
    cls = RelaxMaker if step == "relax" else StaticMaker
    kind = "relax" if step == "relax" else "static"
    return cls(name=name or f"hetero {step}", input_set_generator=gen,
               run_vasp_kwargs={"handlers": custodian_handlers(kind), "validators": custodian_validators(kind)})


__all__ = ["VaspEngine", "VaspPresetError", "PotcarMissingError", "InputsWritten", "available_presets", "write_inputs",
           "write_neb_inputs", "input_generator", "make_maker", "custodian_handlers", "custodian_validators",
           "task_settings", "convert_calc", "convert_neb", "valence_per_atom", "dos_arrays", "slab_centre_frac",
           "potcar_enmax", "encut_floor", "ENMAX_FACTOR"]
