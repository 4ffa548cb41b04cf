"""One engine-neutral settings vocabulary, the model facts that feed it, and where each value came from.

A preset (configs/<engine>/<name>.yaml) and a campaign's ``overrides`` speak this vocabulary; each
engine translates the resolved values into its own input (GPAW keywords, VASP INCAR/KPOINTS, MLIP
optimiser settings). Engine-only knobs live under the engine's own key (``gpaw:``, ``vasp:``,
``mlip:``), the named escape hatch. A key that is neither is an error naming the neutral key to use.

Resolution order for every key: neutral default -> preset -> user override; the 'auto' values are then
decided from the model's facts (a van der Waals stack or layered host -> dispersion, an asymmetric slab
-> dipole correction, magnetic elements -> spin). Each resolved value records its source.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

from hetero.io.yamlfile import yaml_error_line
from pydantic import BaseModel, Field
from pymatgen.core import Structure

ENGINE_SECTIONS = ("gpaw", "vasp", "mlip")

# Initial moments (mu_B) when spin is on and the user gave none: the ferromagnetic starting guess of
# pymatgen's VASPIncarBase.yaml (the MP/atomate2 sets' MAGMOM), 0.6 for every other element.
MAGMOM_DEFAULTS = {"V": 5.0, "Cr": 5.0, "Mn": 5.0, "Fe": 5.0, "Co": 0.6, "Ni": 5.0, "Cu": 0.6}
# elements for which 'spin: auto' turns spin polarisation on
MAGNETIC_PRONE = frozenset({"V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu"})
ALKALI_LIKE = frozenset({"H", "Li", "Na", "K", "Rb", "Cs", "Cu", "Ag", "Au"})  # odd-electron atoms: moment 1

# The neutral vocabulary: key -> (default, what it means). Defaults are the fallbacks a preset overrides.
NEUTRAL: dict[str, tuple[Any, str]] = {
    "xc": ("PBE", "exchange-correlation functional"),
    "cutoff_eV": (450.0, "plane-wave cutoff (eV)"),
    "kpoints_spacing_A": (0.3, "k spacing in 1/A (2*pi included): n_i = ceil(|b_i| / spacing)"),
    "kpoints_mesh": (None, "explicit [n1, n2, n3] for models with vacuum; 1 is forced along vacuum"),
    "smearing_eV": (0.1, "Fermi-Dirac (GPAW) / Gaussian (VASP) width (eV)"),
    "spin": ("auto", "auto | on | off (auto: on when V, Cr, Mn, Fe, Co, Ni or Cu is present)"),
    "magmoms": ({}, "initial moments per element, e.g. {V: 1.0}; unspecified magnetic elements use defaults"),
    "dispersion": ("auto", "auto | off | d3bj | d3zero (auto: D3(BJ) on van der Waals stacks and layered hosts)"),
    "dipole": ("auto", "auto | on | off (auto: on for slabs whose two sides differ)"),
    "hubbard_u": ({}, "Dudarev U_eff per element on d states, e.g. {V: 3.25}"),
    "hubbard_u_source": ("", "where the U values come from (paper, database); required when hubbard_u is set"),
    "scf_energy_eV": (1e-4, "SCF energy convergence (eV)"),
    "fmax_eV_A": (0.05, "relaxation force threshold (eV/A)"),
    "relax_steps": (100, "maximum ionic steps of a relaxation"),
    "dos_kpoints_mesh": (None, "denser mesh for the non-SCF DOS, e.g. [12, 12, 1]; null: the SCF mesh"),
    "dos_width_eV": (0.1, "broadening of the DOS (eV)"),
    "atom_box_A": (12.0, "box edge of the isolated-atom reference (A)"),
    "neb_images": (3, "moving images of a CI-NEB"),
    "neb_steps": (60, "maximum NEB optimiser steps"),
    "neb_fmax_eV_A": (0.1, "NEB force threshold (eV/A)"),
    "neb_spring": (0.1, "spring constant between images (eV/A^2)"),
    "neb_climb": (True, "climbing image on the highest image"),
}

# Engine-specific spellings users bring from GPAW/VASP/ASE: the error names the neutral key instead.
ALIASES = {
    "spinpol": "spin", "ispin": "spin", "magmom": "magmoms", "magmom_init": "magmoms",
    "kpts": "kpoints_mesh", "kpoints": "kpoints_mesh", "kspacing": "kpoints_spacing_A", "kspacing_a": "kpoints_spacing_A",
    "ecut": "cutoff_eV", "ecut_ev": "cutoff_eV", "encut": "cutoff_eV",
    "sigma": "smearing_eV", "smearing": "smearing_eV", "ismear": "smearing_eV",
    "d3": "dispersion", "ivdw": "dispersion", "vdw": "dispersion",
    "dipole_correction": "dipole", "ldipol": "dipole", "idipol": "dipole",
    "ldauu": "hubbard_u", "u": "hubbard_u", "ediff": "scf_energy_eV", "ediffg": "fmax_eV_A", "fmax": "fmax_eV_A",
    "nsw": "relax_steps", "images": "neb_images", "spring": "neb_spring", "dos_kpts": "dos_kpoints_mesh",
    "gga": "xc", "functional": "xc",
}

Source = Literal["default", "preset", "user", "model"]


class SettingsError(ValueError):
    """A preset or override that the neutral vocabulary (or the engine's own section) does not know."""


class PresetError(SettingsError):
    pass


class ModelFacts(BaseModel):
    """What the builders know about a model that changes how any engine must run it."""

    kind: Literal["slab", "stack", "bulk", "atom"] = "slab"
    van_der_waals: bool = False  # a stack of fragments across a vdW gap, or a layered host: dispersion on
    asymmetric: bool = False  # the two sides of the slab differ (adsorbate on one side, polar stack)
    why: dict[str, str] = Field(default_factory=dict)  # fact -> reason, stored with every result

    def derive(self, **changes: Any) -> ModelFacts:
        """The same campaign's facts for another model (a site, a reference): vdW stays campaign-wide so
        every energy in one E_ads is computed with the same functional."""
        why = dict(self.why)
        why.update(changes.pop("why", {}))
        return self.model_copy(update={**changes, "why": why})


class Resolved(BaseModel):
    """Resolved neutral settings of one calculation: values and, per key, where the value came from."""

    values: dict[str, Any]
    sources: dict[str, str]

    def __getitem__(self, key: str) -> Any:
        return self.values[key]


def configs_dir() -> Path:
    env = os.environ.get("HETERO_CONFIGS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "configs"


def available_presets(engine: str) -> list[str]:
    return sorted(p.stem for p in (configs_dir() / engine).glob("*.yaml"))


def check_neutral_keys(data: dict[str, Any], where: str, engine: str) -> None:
    """Unknown keys are errors; an engine-specific spelling names the neutral key to use instead."""
    for key in data:
        if key in NEUTRAL or key == "description":
            continue
        if key in ENGINE_SECTIONS:
            if not isinstance(data[key], dict):
                raise SettingsError(f"{where}: '{key}' holds {key.upper()}-only settings and must be a mapping")
            continue
        hint = ALIASES.get(key.lower())
        if hint:
            raise SettingsError(f"{where}: '{key}' is not a neutral setting; use '{hint}' "
                                f"({NEUTRAL[hint][1]}) — it works on every engine")
        raise SettingsError(f"{where}: unknown setting '{key}'; neutral settings: {', '.join(NEUTRAL)}; "
                            f"{engine.upper()}-only settings go under '{engine}:'")


def load_preset(engine: str, name: str) -> dict[str, Any]:
    path = configs_dir() / engine / f"{name}.yaml"
    if not path.exists():
        raise PresetError(f"unknown {engine.upper()} preset '{name}'; valid presets: {', '.join(available_presets(engine))}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise PresetError(f"{path}: not valid YAML ({yaml_error_line(exc)}); "
                          "fix the syntax there") from None
    if not isinstance(data, dict):
        raise PresetError(f"{path}: a preset is a mapping of settings")
    check_neutral_keys(data, str(path), engine)
    return data


def merge_settings(engine: str, preset_name: str, overrides: dict[str, Any] | None) -> tuple[dict, dict, dict]:
    """(neutral values, sources, engine-only section) from defaults <- preset <- user overrides."""
    preset = load_preset(engine, preset_name)
    overrides = dict(overrides or {})
    check_neutral_keys(overrides, "campaign overrides", engine)
    values = {k: v[0] for k, v in NEUTRAL.items()}
    sources = {k: "default" for k in NEUTRAL}
    preset_file = configs_dir() / engine / f"{preset_name}.yaml"
    for layer, src, where in ((preset, "preset", str(preset_file)), (overrides, "user", "campaign overrides")):
        for k, v in layer.items():
            if k in NEUTRAL:
                values[k] = v
                sources[k] = src
        try:  # checked after each layer, so the error names the file (or overrides) that holds the bad value
            _check_values(values)
        except SettingsError as exc:
            raise SettingsError(f"{where}: {exc}") from None
    section = dict(preset.get(engine) or {})
    section.update(overrides.get(engine) or {})
    return values, sources, section


def _check_values(v: dict[str, Any]) -> None:
    choices = {"spin": ("auto", "on", "off"), "dispersion": ("auto", "off", "d3bj", "d3zero"), "dipole": ("auto", "on", "off")}
    for key, ok in choices.items():
        val = v[key]
        if isinstance(val, bool):  # YAML reads on/off as booleans
            val = v[key] = "on" if val else "off"
        if val not in ok:
            raise SettingsError(f"setting '{key}': {val!r} is not one of {', '.join(ok)}")
    for key in ("cutoff_eV", "kpoints_spacing_A", "smearing_eV", "fmax_eV_A", "scf_energy_eV"):
        if not isinstance(v[key], (int, float)) or v[key] <= 0:
            raise SettingsError(f"setting '{key}' must be a positive number, got {v[key]!r}")
    if not 100 <= v["cutoff_eV"] <= 2000:
        raise SettingsError(f"setting 'cutoff_eV' = {v['cutoff_eV']} eV is outside 100-2000 eV: check the units")
    if not 0.05 <= v["kpoints_spacing_A"] <= 2.0:
        raise SettingsError(f"setting 'kpoints_spacing_A' = {v['kpoints_spacing_A']} 1/A is outside 0.05-2.0")
    for key in ("kpoints_mesh", "dos_kpoints_mesh"):
        m = v[key]
        if m is not None and (not isinstance(m, (list, tuple)) or len(m) != 3 or not all(isinstance(x, int) and x >= 1 for x in m)):
            raise SettingsError(f"setting '{key}' must be three positive integers like [3, 3, 1], got {m!r}")
    if v["hubbard_u"] and not v["hubbard_u_source"]:
        raise SettingsError("setting 'hubbard_u' needs 'hubbard_u_source' (the paper or database the U values come from)")


def vacuum_axes(structure: Structure, min_gap_A: float = 6.0) -> tuple[int, ...]:
    """Lattice axes along which the atoms leave an empty gap wider than min_gap_A (slabs, 2D layers)."""
    axes = []
    for ax in range(3):
        f = np.sort(structure.frac_coords[:, ax] % 1.0)
        gaps = np.diff(np.r_[f, f[0] + 1.0]) * structure.lattice.abc[ax]
        if gaps.max() >= min_gap_A:
            axes.append(ax)
    return tuple(axes)


def internal_gap_A(structure: Structure, axis: int = 2) -> float:
    """Widest empty gap between atomic planes inside a slab (the vacuum gap excluded): a vdW gap is ~2.5-3.5 A."""
    z = np.sort(structure.cart_coords[:, axis])
    gaps = np.diff(z)
    return float(gaps.max()) if gaps.size else 0.0


def kpoint_mesh(structure: Structure, spacing: float, mesh: list[int] | None, vac: tuple[int, ...]) -> list[int]:
    """Explicit meshes apply to models with vacuum (slabs); bulk always takes its mesh from the spacing.
    One k-point along every vacuum axis."""
    if mesh and vac:
        out = [int(k) for k in mesh]
    else:
        recip = structure.lattice.reciprocal_lattice.abc  # includes 2*pi
        out = [max(1, math.ceil(b / spacing)) for b in recip]
    for ax in vac:
        out[ax] = 1
    return out


def resolve(values: dict[str, Any], sources: dict[str, str], structure: Structure, facts: ModelFacts) -> Resolved:
    """Decide the 'auto' values for one structure from the model's facts; record every value's source."""
    v, src = dict(values), dict(sources)
    elements = sorted({sp.symbol for sp in structure.species})
    vac = vacuum_axes(structure)
    atom = facts.kind == "atom"
    if atom:  # the isolated-atom reference: Gamma only, spin-polarised, small smearing
        v["kpoints"] = [1, 1, 1]
        src["kpoints"] = "model: isolated atom (Gamma point)"
        v["smearing_eV"] = min(float(v["smearing_eV"]), 0.01)
        src["smearing_eV"] = "model: isolated atom (small smearing)"
    else:
        v["kpoints"] = kpoint_mesh(structure, float(v["kpoints_spacing_A"]), v["kpoints_mesh"], vac)
        how = "kpoints_mesh" if (v["kpoints_mesh"] and vac) else "kpoints_spacing_A"
        src["kpoints"] = f"{src[how]}: {how}" + (f", 1 along vacuum axis {list(vac)}" if vac else "")
    if atom:  # an isolated atom's ground state is polarised (alkali: a doublet), whatever the host needs
        v["spin"] = "on"
        src["spin"] = "model: isolated atom (spin-polarised)"
    elif v["spin"] == "auto":
        magnetic = [e for e in elements if e in MAGNETIC_PRONE]
        v["spin"] = "on" if magnetic else "off"
        src["spin"] = f"model: magnetic elements {magnetic}" if magnetic else "model: no magnetic elements"
    if v["spin"] == "on":
        user = dict(v["magmoms"] or {})
        moms = {}
        for e in elements:
            if atom:
                moms[e] = 1.0 if e in ALKALI_LIKE else float(user.get(e, MAGMOM_DEFAULTS.get(e, 1.0)))
            elif e in user:
                moms[e] = float(user[e])
            else:
                moms[e] = MAGMOM_DEFAULTS.get(e, 0.6)
        v["magmoms"] = moms
        if atom:
            src["magmoms"] = "model: isolated atom (alkali-like: 1 unpaired electron)"
        elif set(elements) - set(user):
            src["magmoms"] = f"{src['magmoms']} + model defaults (ferromagnetic start) for {sorted(set(elements) - set(user))}"
    else:
        v["magmoms"] = {}
    if v["dispersion"] == "auto":
        v["dispersion"] = "d3bj" if facts.van_der_waals else "off"
        src["dispersion"] = f"model: {facts.why.get('van_der_waals', 'van der Waals stack or layered host' if facts.van_der_waals else 'no van der Waals gap')}"
    if v["dipole"] == "auto":
        on = facts.asymmetric and 2 in vac
        v["dipole"] = "on" if on else "off"
        src["dipole"] = "model: " + (facts.why.get("asymmetric", "asymmetric slab") if on else
                                     "symmetric slab" if 2 in vac else "no vacuum along c")
    elif v["dipole"] == "on" and 2 not in vac:
        v["dipole"] = "off"
        src["dipole"] = "model: no vacuum along c (dipole correction needs one)"
    v["hubbard_u"] = {e: u for e, u in (v["hubbard_u"] or {}).items() if e in elements}
    v["vacuum_axes"] = list(vac)
    src["vacuum_axes"] = "model"
    return Resolved(values=v, sources=src)
