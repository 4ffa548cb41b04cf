"""Campaign files (workflows/*.yaml): one screening campaign each, run locally with a persistent store.

A campaign names a model (a builder preset, optionally a surface supercell), an ion, the steps, the
compute preset, and the published values of the study it reproduces (for side-by-side comparison,
never as targets). Runs live in `<runs>/<campaign>-<preset>/` with the JobStore in `store.json`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, Field, ValidationError

from hetero.io.yamlfile import yaml_error_line
from hetero.flows.adsorption import ALL_STEPS, DEFERRABLE_STEPS, AdsorptionFlowMaker, steps_engine_cannot_run


class CampaignError(ValueError):
    pass


COVERAGE_KEYS = {"max_ions", "site", "min_separation_A"}
VDW_GAP_A = 2.5  # fragment separation above which a scaffolded campaign also intercalates the ion


class ModelSpec(BaseModel, extra="forbid"):
    """Either a builder preset, or a film/substrate pair matched by hetero.builders.interfaces."""

    preset: str | None = None
    size: str | None = None  # fast | standard; default follows the compute preset
    # a plain slab of any library material or file (ion-on-surface campaigns without a preset):
    # {material: VN, miller: [0, 0, 1], layers: 4, vacuum: 15, fix_bottom_layers: 2, termination: ...}
    slab: dict[str, Any] | None = None
    surface_supercell: list[list[int]] | None = None  # in-plane 2x2 integer matrix
    # one side of a stacked model alone, in the stack's cell and strain (film | substrate): the
    # ion-on-each-layer references of a heterostructure study at the same coverage
    fragment: Literal["film", "substrate"] | None = None
    film: str | None = None  # library name or file
    substrate: str | None = None
    film_miller: list[int] = Field(default_factory=lambda: [0, 0, 1])
    substrate_miller: list[int] = Field(default_factory=lambda: [0, 0, 1])
    film_thickness: float = 1
    substrate_thickness: float = 1
    max_area: float = 100.0
    max_atoms: int = 60
    # extra vacuum (A) for ion campaigns, with the slab + ion re-centred: without it the vacuum above
    # an adsorbed ion is too short for a flat potential (work function, dipole correction)
    extra_vacuum_A: float = 4.0
    rank: int = 0  # which candidate of the ranked list (0 = least strain, then fewest atoms)
    # a run or exported example of this same model whose ion-free host checks found a host below the builder's:
    # the campaign starts from the lowest one found (same atoms and cell, the builder's fixed atoms), so its sites
    # and migration paths sit on one host state (the strained V2O5 layer: 6.6 eV below its symmetric start)
    host_from: str | None = None
    tolerances: dict[str, float] = Field(default_factory=dict)  # max_length_tol, max_angle_tol, ...


class Campaign(BaseModel, extra="forbid"):
    name: str
    title: str = ""
    study: str = ""
    model: ModelSpec
    ion: str
    sites: list[str] | str = "all"
    # where the ion goes: on the top surface, in the van der Waals gap of a two-fragment stack
    # (intercalation, labels gap-*), or both
    placement: Literal["surface", "interlayer", "both"] = "surface"
    steps: list[str] = Field(default_factory=lambda: list(ALL_STEPS))
    references: list[str] = Field(default_factory=lambda: ["bulk", "atom"])
    engine: str = "gpaw"  # gpaw | vasp | mlip (mlip:chgnet, mlip:sevennet)
    preset: str = "fast"
    # engine-neutral settings (hetero/engines/settings.py: spin, kpoints_mesh, cutoff_eV, dispersion, ...);
    # engine-only knobs under gpaw: / vasp: / mlip: (used by that engine only)
    overrides: dict[str, Any] = Field(default_factory=dict)
    # NEB settings for this campaign only (images, steps, fmax_eV_A, spring): they change the NEB
    # task alone, so finished relax/static runs stay cached
    neb: dict[str, Any] = Field(default_factory=dict)
    # coverage series (step "coverage"): max_ions, site ("best" or a label), min_separation_A
    coverage: dict[str, Any] = Field(default_factory=dict)
    # which adsorbed sites get a CDD (step "cdd"): "all", or "best" (only the lowest-energy site, the one a paper
    # shows; each site's CDD costs two more statics, the host frozen at the site's geometry and the lone ion)
    cdd_sites: Literal["all", "best"] = "all"
    # which statics write the ELF (step "elf"): "all", or "host" (the bare host's only: the "before/after" of a
    # junction; an 86-atom LCAO ELF adds ~7 min to each static)
    elf_sites: Literal["all", "host"] = "all"
    # screening funnel: {models: [chgnet, sevennet], window_eV: 0.3, random_starts: 8, always: [site labels]}:
    # every site and random start ranked on the MLIPs, DFT only on the distinct best (hetero.flows.funnel)
    funnel: dict[str, Any] | None = None
    # where the geometries come from: "engine" (default: every relaxation on the campaign's engine) or an MLIP
    # ("mlip:chgnet", "mlip:sevennet"): host, site and bulk-metal relaxations on the MLIP, every static, DOS,
    # Bader, CDD and E_ads on the campaign engine at those geometries, labelled <engine>//<mlip> in the table
    # (AdsorbML's "ML + SP"; the ~10x cheaper first look at a large interface, never called DFT-relaxed)
    geometry: str = "engine"
    published: dict[str, Any] = Field(default_factory=dict)
    notes: str = ""


NEB_KEYS = {"images", "steps", "fmax_eV_A", "spring", "climb"}
REFERENCES = ("bulk", "atom")
LOWEST_HOST_SUFFIX = "-lowest-host"  # the system name of a campaign started from a run's lowest host (host_from)
SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")  # campaign and preset names become folder names


def load_campaign(path: str | Path) -> Campaign:
    path = Path(path)
    if not path.exists():
        raise CampaignError(f"campaign file {path} not found; campaigns live in workflows/*.yaml")
    if not path.is_file():
        raise CampaignError(f"campaign file {path} is a folder; give a campaign file such as workflows/demo.yaml")
    try:
        data = yaml.safe_load(path.read_text())
    except UnicodeDecodeError:
        raise CampaignError(f"{path}: not a text file; a campaign is a YAML file like workflows/demo.yaml") from None
    except yaml.YAMLError as exc:
        raise CampaignError(f"{path}: not valid YAML ({yaml_error_line(exc)}); fix the syntax there") from None
    if not isinstance(data, dict):
        raise CampaignError(f"{path}: a campaign is a YAML mapping (name:, model:, ion:, ...), this file holds "
                            f"{'nothing' if data is None else type(data).__name__}; copy workflows/demo.yaml to start")
    try:
        camp = Campaign(**data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        if first["type"] == "extra_forbidden":
            fields = (ModelSpec if first["loc"][0] == "model" else Campaign).model_fields
            raise CampaignError(f"{path}: unknown key '{where}'; valid keys here: {', '.join(fields)}") from None
        if first["type"] == "missing":
            raise CampaignError(f"{path}: required key '{where}' is missing; see workflows/demo.yaml for a complete "
                                "campaign") from None
        raise CampaignError(f"{path}: field '{where}': {first['msg']}") from None
    unknown = set(camp.coverage) - COVERAGE_KEYS
    if unknown:
        raise CampaignError(f"{path}: unknown coverage keys {sorted(unknown)}; valid: {', '.join(sorted(COVERAGE_KEYS))}")
    bad = [s for s in camp.steps if s not in ALL_STEPS]
    if bad:
        raise CampaignError(f"{path}: unknown steps {bad}; valid steps: {', '.join(ALL_STEPS)}")
    _check_campaign_values(camp, path)
    _materials_beside_campaign(camp, path.parent)
    _host_from_path(camp, path)
    if camp.funnel is not None:
        from hetero.flows.funnel import check_funnel

        try:
            camp.funnel = check_funnel(camp.funnel)
        except ValueError as exc:
            raise CampaignError(f"{path}: {exc}") from exc
    return camp


def _check_campaign_values(camp: Campaign, path: Path) -> None:
    """Values a run would otherwise trip over hours later (or that would write outside the run folder)."""
    from hetero.builders.common import BuildError
    from hetero.builders.sites import covalent_radius

    if not SLUG.match(camp.name):
        raise CampaignError(f"{path}: name {camp.name!r} becomes the run folder's name: use letters, digits, _ . + - "
                            "only (no '/' or '..'; choose where runs go with --runs-dir)")
    try:
        covalent_radius(camp.ion)
    except BuildError:
        raise CampaignError(f"{path}: unknown ion {camp.ion!r}; give a chemical symbol such as Li, Na or K") from None
    bad = [r for r in camp.references if r not in REFERENCES]
    if bad:
        raise CampaignError(f"{path}: unknown references {bad}; valid: {', '.join(REFERENCES)} (bulk metal, isolated atom)")
    bad = sorted(set(camp.neb) - NEB_KEYS)
    if bad:
        raise CampaignError(f"{path}: unknown neb keys {bad}; valid: {', '.join(sorted(NEB_KEYS))}")
    images = camp.neb.get("images", 1)
    if not isinstance(images, int) or isinstance(images, bool) or images < 1:
        raise CampaignError(f"{path}: neb.images = {images!r}: give the number of moving images, 1 or more")
    max_ions = camp.coverage.get("max_ions", 4)
    if not isinstance(max_ions, int) or isinstance(max_ions, bool) or max_ions < 1:
        raise CampaignError(f"{path}: coverage.max_ions = {max_ions!r}: the series places 1, 2, ... ions per cell; "
                            "give a whole number of 2 or more, e.g. coverage: {max_ions: 4}")
    sep = camp.coverage.get("min_separation_A")
    if sep is not None and (not isinstance(sep, (int, float)) or sep <= 0):
        raise CampaignError(f"{path}: coverage.min_separation_A = {sep!r}: give a positive distance in A, or leave it "
                            "out for the ion's own default")
    if camp.geometry != "engine":
        from hetero.engines.mlip import MODELS as MLIP_MODELS

        base, _, model = camp.geometry.partition(":")
        if base != "mlip" or model not in ("", *MLIP_MODELS):
            raise CampaignError(f"{path}: geometry {camp.geometry!r}: give engine (relax on the campaign's engine) or "
                                f"one of {', '.join('mlip:' + m for m in MLIP_MODELS)}")
    m = camp.model
    if m.extra_vacuum_A < 0:
        raise CampaignError(f"{path}: model.extra_vacuum_A = {m.extra_vacuum_A}: vacuum cannot be negative; use 0 "
                            "to keep the builder's vacuum")
    vac = (m.slab or {}).get("vacuum")
    if vac is not None and (not isinstance(vac, (int, float)) or vac <= 0):
        raise CampaignError(f"{path}: model.slab.vacuum = {vac!r}: give a positive vacuum in A (10-20 A is usual)")
    sc = m.surface_supercell
    if sc is not None and (len(sc) != 2 or any(len(r) != 2 for r in sc) or sc[0][0] * sc[1][1] - sc[0][1] * sc[1][0] <= 0):
        raise CampaignError(f"{path}: model.surface_supercell = {sc}: give a 2x2 integer matrix with a positive "
                            "determinant, e.g. [[2, 0], [0, 2]]")



def _materials_beside_campaign(camp: Campaign, base: Path) -> None:
    """A structure file named in the campaign is looked up beside the campaign file when it is not
    a library name or a path from the current folder."""
    def beside(value):
        if not isinstance(value, str) or Path(value).exists() or not (base / value).is_file():
            return value
        return str(base / value)

    m = camp.model
    m.film, m.substrate = beside(m.film), beside(m.substrate)
    if m.slab and "material" in m.slab:
        m.slab["material"] = beside(m.slab["material"])


def _host_from_path(camp: Campaign, path: Path) -> None:
    """model.host_from, from the current folder or beside the campaign file (or its parent: workflows/ sits in the
    project), made absolute so a run started elsewhere finds it."""
    src = camp.model.host_from
    if src is None:
        return
    for base in (Path.cwd(), path.parent, path.parent.parent):
        if (base / src).is_dir():
            camp.model.host_from = str((base / src).resolve())
            return
    raise CampaignError(f"{path}: model.host_from = {src!r} is not a folder (looked in the current folder and beside "
                        "the campaign file); give a run folder or an exported example, e.g. examples/v2o5_li_mlgeom")


def lowest_host_found(source: str | Path, slab, system: str):
    """The lowest ion-free host that a run of `system` found below its bare host (its host checks), as `slab`
    with those positions (fixed-atom flags kept); with the note that says where it came from."""
    from pymatgen.core import Structure

    from hetero.io.store import load_run

    # a run that itself started from a lowest host (host_from) names its system with the suffix: restarts chain
    names = {system, f"{system}{LOWEST_HOST_SUFFIX}"}
    checks = [c for c in load_run(source).docs.get("host_check", []) if c.get("system") in names]
    lower = [c for c in checks if c["delta_eV"] < 0]
    if not lower:
        listed = ", ".join(f"{c['site']} {c['delta_eV']:+.3f} eV" for c in checks)
        found = (f"its host checks ({listed}) are all "
                 "above the bare host" if checks else f"it has no ion-free host check of {system}")
        raise CampaignError(f"model.host_from: {source}: {found}, so the builder's host is already the lowest "
                            "found; remove model.host_from")
    best = min(lower, key=lambda c: c["delta_eV"])
    found = Structure.from_dict(best["structure"])
    if ([sp.symbol for sp in found.species] != [sp.symbol for sp in slab.species]
            or not np.allclose(found.lattice.matrix, slab.lattice.matrix, atol=1e-3)):
        raise CampaignError(f"model.host_from: {source}: its host of {system} does not match this campaign's model "
                            "atom for atom and cell for cell (different size or vacuum); use the same model keys "
                            "as that run")
    host = slab.copy()
    for i, site in enumerate(found):
        host.replace(i, host[i].species, site.frac_coords, properties=host[i].properties)
    prov = best["provenance"]
    level = "//".join(x for x in (prov.get("engine"), prov.get("geometry_engine")) if x)
    note = (f" Host: the ion-free host relaxed from {best['ion']}@{best['site']} in {source} "
            f"({best['delta_eV']:+.3f} eV vs the host that run started from, {level}), not the builder's positions.")
    return host, note


def build_host(camp: Campaign, size: str):
    from hetero.builders.presets import get_preset

    m = camp.model
    if m.preset:
        slab, record = get_preset(m.preset, size)
    elif m.slab:
        from hetero.builders.slabs import build_slab

        spec = dict(m.slab)
        if "material" not in spec or "miller" not in spec or "layers" not in spec:
            raise CampaignError("model.slab needs material, miller and layers (e.g. {material: VN, miller: [0, 0, 1], layers: 4})")
        import inspect

        known = set(inspect.signature(build_slab).parameters) - {"bulk"}
        unknown = sorted(set(spec) - known - {"material"})
        if unknown:
            raise CampaignError(f"model.slab: unknown keys {unknown}; valid: material, "
                                f"{', '.join(k for k in inspect.signature(build_slab).parameters if k != 'bulk')}")
        slab, record = build_slab(spec.pop("material"), spec.pop("miller"), spec.pop("layers"), **spec)
    elif m.film and m.substrate:
        from hetero.builders.interfaces import build_interface

        slab, record = build_interface(
            m.film, m.substrate, m.film_miller, m.substrate_miller, film_thickness=m.film_thickness,
            substrate_thickness=m.substrate_thickness, max_area=m.max_area, max_atoms=m.max_atoms,
            rank=m.rank, **m.tolerances,
        )
    else:
        raise CampaignError("model: give a builder 'preset', a 'slab' {material, miller, layers}, or both 'film' and 'substrate'")
    if camp.model.fragment:
        slab, record = _one_fragment(slab, record, camp.model.fragment)
    if camp.model.surface_supercell:
        m = camp.model.surface_supercell
        slab = slab.copy()
        slab.make_supercell([[m[0][0], m[0][1], 0], [m[1][0], m[1][1], 0], [0, 0, 1]])
        record = record.model_copy(
            update={"system": f"{record.system}-{m[0][0]}{m[0][1]}{m[1][0]}{m[1][1]}", "n_atoms": len(slab)}
        )
        z = slab.cart_coords[:, 2]
        n_top = int((z > z.max() - 0.3).sum())
        area = float(np.linalg.norm(np.cross(slab.lattice.matrix[0], slab.lattice.matrix[1])))
        record.notes += (
            f" Surface supercell {m} applied (supersedes the cell described above): {len(slab)} atoms, "
            f"{slab.lattice.a:.3f} x {slab.lattice.b:.3f} A, {n_top} atoms in the top plane, {area:.1f} A^2 per ion."
        )
    if camp.model.extra_vacuum_A > 0:
        slab = add_vacuum_for_ion(slab, camp.model.extra_vacuum_A)
        record.notes += f" Vacuum extended by {camp.model.extra_vacuum_A} A, slab + ion room centred (c = {slab.lattice.c:.2f} A)."
    if camp.model.host_from:
        slab, note = lowest_host_found(camp.model.host_from, slab, record.system)
        record = record.model_copy(update={"system": f"{record.system}{LOWEST_HOST_SUFFIX}", "notes": record.notes + note,
                                           "structure": slab.as_dict()})
    return slab, record


def _one_fragment(stack, record, side: str):
    """The `side` layer of a two-fragment stack alone (same cell, strain and fixed atoms)."""
    if set(record.fragments) != {"film", "substrate"}:
        raise CampaignError(f"model.fragment: {side} needs a stacked model with film and substrate fragments "
                            "(a film/substrate pair or a stacked preset such as vs2_v2co2)")
    keep = sorted(record.fragments[side])
    layer = stack.copy()
    layer.remove_sites([i for i in range(len(stack)) if i not in set(keep)])
    name = record.film if side == "film" else record.substrate
    z = layer.cart_coords[:, 2]
    # a lone layer is symmetric when its atoms mirror through its mid-plane (a 1T-VS2 or V2CO2 sheet)
    mirrored = np.sort(z.max() + z.min() - z)
    symmetric = len(z) > 0 and np.allclose(np.sort(z), mirrored, atol=0.05)
    rec = record.model_copy(update={
        "system": f"{name or side}-from-{record.system}", "kind": "slab", "n_atoms": len(layer), "fragments": {},
        "needs_dipole_correction": not symmetric, "interlayer_distance_A": None,
        "fixed_atoms": [keep.index(i) for i in record.fixed_atoms if i in set(keep)],
        "notes": f"the {side} ({name}) of {record.system} alone, in the stack's cell and strain. " + record.notes,
    })
    return layer, rec


def add_vacuum_for_ion(slab, extra_A: float, ion_room_A: float = 3.0):
    """Lengthen c by extra_A and centre the slab plus `ion_room_A` above it (c must be the normal)."""
    from pymatgen.core import Lattice, Structure

    m = slab.lattice.matrix.copy()
    c_len = np.linalg.norm(m[2])
    m[2] = m[2] * (c_len + extra_A) / c_len
    cart = slab.cart_coords.copy()
    z_lo, z_hi = cart[:, 2].min(), cart[:, 2].max() + ion_room_A
    cart[:, 2] += m[2][2] / 2 - (z_lo + z_hi) / 2
    return Structure(Lattice(m), slab.species, cart, coords_are_cartesian=True,
                     site_properties=slab.site_properties, properties=slab.properties)


def build_sites(camp: Campaign, slab, fragments: dict[str, list[int]] | None = None):
    from hetero.builders.paths import find_interlayer_sites
    from hetero.builders.sites import find_sites, place_ion

    sites = find_sites(slab, camp.ion) if camp.placement in ("surface", "both") else []
    if camp.placement in ("interlayer", "both"):
        if not fragments or not {"film", "substrate"} <= set(fragments):
            raise CampaignError(
                f"placement: {camp.placement} needs a stacked model with film and substrate fragments "
                "(a film/substrate pair or a stacked preset such as vs2_v2co2); this model is a single slab")
        sites += find_interlayer_sites(slab, fragments, camp.ion)
    if camp.sites != "all":
        wanted = set(camp.sites)
        missing = wanted - {s.label for s in sites}
        if missing:
            raise CampaignError(f"sites {sorted(missing)} not found; this model has {[s.label for s in sites]}: list "
                                "some of those under sites:, or use sites: all")
        sites = [s for s in sites if s.label in wanted]
    return [{"label": s.label, "site": s, "structure": place_ion(slab, s, camp.ion)} for s in sites]


def run_folder(camp: Campaign, preset: str, runs_dir: str | Path = "runs") -> Path:
    """<runs>/<campaign>-<preset>, with the engine in the name when it is not GPAW (one store per engine), and
    the geometry source when it is not the engine (a DFT//MLIP run never shares a store with DFT relaxations)."""
    engine = "" if camp.engine == "gpaw" else camp.engine.replace(":", "-") + "-"
    geometry = "" if camp.geometry == "engine" else "-geometry-" + camp.geometry.replace(":", "-")
    return Path(runs_dir) / f"{camp.name}-{engine}{preset}{geometry}"


def model_facts(record, slab) -> "ModelFacts":
    """What the builder knows that every engine must honour: a van der Waals gap (dispersion for every
    energy of the campaign) and an asymmetric slab (dipole correction)."""
    from hetero.engines.settings import ModelFacts, internal_gap_A

    stacked = len(record.fragments) == 2
    gap = record.interlayer_distance_A if stacked and record.interlayer_distance_A is not None else internal_gap_A(slab)
    vdw = gap >= VDW_GAP_A
    what = "stacked film/substrate" if stacked else "host"
    sd = slab.site_properties.get("selective_dynamics")
    one_side_fixed = bool(sd) and any(not any(f) for f in sd)
    asymmetric = bool(record.needs_dipole_correction) or one_side_fixed
    why = {
        "van_der_waals": (f"{what} with a {gap:.2f} A van der Waals gap" if vdw else
                          f"{what} without a van der Waals gap (widest gap between atomic planes {gap:.2f} A)"),
        # bottom planes held at the bulk geometry while the top relaxes: the relaxed slab's sides differ
        "asymmetric": ("builder: bottom planes fixed, top relaxed (the relaxed slab's sides differ)" if one_side_fixed
                       else "builder: the slab's two sides differ" if record.needs_dipole_correction
                       else "builder: symmetric slab"),
    }
    return ModelFacts(kind="stack" if stacked else "slab", van_der_waals=vdw, asymmetric=asymmetric, why=why)


def campaign_engine(camp: Campaign, preset: str):
    from hetero.engines import get_engine

    return get_engine(camp.engine, preset, camp.overrides)


def runnable_steps(camp: Campaign, engine) -> tuple[list[str], dict[str, str]]:
    """The campaign's steps this engine can run, and the others with what the engine lacks for them
    (an MLIP has no electron density: no DOS, Bader, CDD, work function or ELF). The absence is stated
    in campaign.json and the table, never silent."""
    lacking = steps_engine_cannot_run(engine, camp.steps)
    return [s for s in camp.steps if s not in lacking], lacking


def _stacking_funnel(camp: Campaign, record, slab, root: Path):
    """The MLIP stacking screen (hetero.flows.stacking), run while the campaign is built: the chosen stacking
    replaces the builder's as the host. Returns (its document as a dict, the host structure)."""
    from hetero.flows.stacking import screen_stackings, stacking_note

    if set(record.fragments) != {"film", "substrate"}:
        raise CampaignError("funnel.stacking ranks the registries of a stack: the model needs film and substrate "
                            "fragments (a film/substrate pair or a stacked preset); remove funnel.stacking for a slab")
    try:
        doc, host = screen_stackings(slab, record.fragments, record.system, str(root.resolve()), camp.funnel,
                                     model_facts(record, slab))
    except ValueError as exc:  # a bad funnel.stacking value: say it as the campaign's error
        raise CampaignError(str(exc)) from None
    record.notes += stacking_note(doc)
    chosen = next(c for c in doc.candidates if c.id == doc.chosen)
    record.interlayer_distance_A = chosen.final_gap_A[doc.models[0]]
    return doc.model_dump(), host


def make_flow(camp: Campaign, preset: str, root: Path, size: str | None = None, skip_steps=()):
    from hetero.structures import load_structure

    from hetero.engines import get_engine

    engine = campaign_engine(camp, preset)
    steps, _ = runnable_steps(camp, engine)
    geometry_engine = None
    if camp.geometry != "engine" and engine.name != "mlip":
        # every geometry comes from the MLIP: a coverage series relaxes each ion count there, and a CI-NEB band is
        # optimised there with DFT single points on its images (hetero.flows.jobs.band_on_geometry_engine)
        # the host's symmetry kept (as the GPAW pre-relaxation keeps it): CHGNet's noise alone left VS2/V2CO2
        # with 1 operation instead of 3, 10 irreducible k-points instead of 4 and 2.5x the GPAW cost per SCF step
        geometry_engine = get_engine(camp.geometry, overrides={"mlip": {"keep_symmetry": 1e-4}})
    size = size or camp.model.size or ("fast" if preset == "fast" else "standard")
    slab, record = build_host(camp, size)
    stacking = None
    if (camp.funnel or {}).get("stacking") is not None:
        stacking, slab = _stacking_funnel(camp, record, slab, root)
    sites = build_sites(camp, slab, record.fragments)
    want = camp.coverage.get("site", "best")
    if "coverage" in camp.steps and want != "best" and want not in {s["label"] for s in sites}:
        raise CampaignError(f"coverage.site {want!r} is not a site of this model; use 'best' or one of "
                            f"{[s['label'] for s in sites]}")
    try:
        ion_bulk = load_structure(camp.ion)
    except Exception:  # library without the metal: ASE's reference crystal (experimental lattice constant)
        from ase.build import bulk
        from pymatgen.io.ase import AseAtomsAdaptor

        try:
            ion_bulk = AseAtomsAdaptor.get_structure(bulk(camp.ion))
        except ValueError:
            if "bulk" in camp.references:
                raise CampaignError(f"ion {camp.ion}: no crystal of {camp.ion} metal for the bulk reference; add one with "
                                    f"`hetero structures add {camp.ion}.cif --name {camp.ion}` or use references: [atom]") from None
            ion_bulk = None
    facts = model_facts(record, slab)
    maker = AdsorptionFlowMaker(
        engine=engine, facts=facts.model_dump(), steps=tuple(steps), references=tuple(camp.references),
        neb_settings={f"neb_{k}": v for k, v in camp.neb.items()}, coverage_settings=dict(camp.coverage),
        funnel=dict(camp.funnel or {}), cdd_sites=camp.cdd_sites, elf_sites=camp.elf_sites,
        geometry_engine=geometry_engine, deferred_steps=tuple(skip_steps),
    )
    flow = maker.make(
        slab, record.system, camp.ion, sites, str(root.resolve()), ion_bulk=ion_bulk,
        host_fragments=record.fragments if len(record.fragments) == 2 else None, stacking=stacking,
    )
    models = {
        "host": record.model_dump(),
        "facts": facts.model_dump(),
        "sites": [{"label": s["label"], **s["site"].as_dict()} for s in sites],
        "ion_bulk": ion_bulk.as_dict() if ion_bulk is not None else None,
    }
    return flow, models


def open_store(path: Path, read_only: bool = False):
    from jobflow import JobStore

    from hetero.io.jsonstore import AtomicJSONStore

    if not read_only and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("[]")
    docs = AtomicJSONStore(str(path), read_only=read_only)  # write-then-rename: a kill never tears the store
    return JobStore(docs)


def prepare_campaign(path: str | Path, preset: str | None = None, runs_dir: str | Path = "runs",
                     size: str | None = None, add_steps=(), engine: str | None = None, write: bool = True,
                     geometry: str | None = None, skip_steps=()):
    """Everything before running, shared by `hetero run`, `hetero submit` and the dry run: the campaign
    (checked), the engine, the run folder, the Flow and the model records; writes models.json and
    campaign.json (engine used, steps run, steps the engine cannot run and why)."""
    camp = load_campaign(path)
    bad = [s for s in add_steps if s not in ALL_STEPS]
    if bad:
        raise CampaignError(f"unknown steps {bad}; valid steps: {', '.join(ALL_STEPS)}")
    camp.steps = list(camp.steps) + [s for s in add_steps if s not in camp.steps]
    not_deferrable = [s for s in skip_steps if s not in DEFERRABLE_STEPS]
    if not_deferrable:
        raise CampaignError(f"--skip-step {not_deferrable}: only analyses that read a finished result can wait for a "
                            f"later run ({', '.join(DEFERRABLE_STEPS)}); relax, static and adsorption are the chain")
    if engine:
        camp.engine = engine
    if geometry:
        camp.geometry = geometry
        _check_campaign_values(camp, Path(path))
    preset = preset or camp.preset
    if not SLUG.match(str(preset)):
        raise CampaignError(f"preset {preset!r}: give a preset name from configs/<engine>/ (e.g. fast), not a path")
    eng = campaign_engine(camp, preset)  # validates engine, preset name and override keys early
    if Path(runs_dir).exists() and not Path(runs_dir).is_dir():
        raise CampaignError(f"--runs-dir {runs_dir} is a file, not a folder; give a folder for the run folders")
    root = run_folder(camp, preset, runs_dir)
    flow, models = make_flow(camp, preset, root, size, skip_steps)
    if write:
        write_campaign_records(root, camp, preset, eng, models, skip_steps)
    return camp, preset, eng, root, flow, models


def write_campaign_records(root: Path, camp: Campaign, preset: str, eng, models: dict, skip_steps=()) -> None:
    """models.json and campaign.json of a run folder (what the table, figures and report read)."""
    from hetero.io.store import atomic_write_text

    steps, lacking = runnable_steps(camp, eng)
    deferred = [s for s in steps if s in skip_steps]
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(root / "models.json", json.dumps(models, indent=1, default=_json_default))
    atomic_write_text(root / "campaign.json", json.dumps(
        {**camp.model_dump(), "preset_used": preset, "engine_used": eng.label,
         "steps_run": [s for s in steps if s not in deferred], "steps_deferred": deferred,
         "steps_not_available": {s: eng.lacks(what) for s, what in lacking.items()}},
        indent=1))


def _elements(models: dict, ion: str) -> list[str]:
    sites = (models.get("host") or {}).get("structure", {}).get("sites", [])
    return sorted({sp["element"] for site in sites for sp in site["species"]} | {ion})


class RunFailed(RuntimeError):
    """Some jobs of a campaign failed (or were skipped because a parent failed); the others are stored."""

    def __init__(self, root: Path, summary: dict):
        self.root, self.summary = root, summary
        lines = [f"  failed: {f['job']}: {f['error']}" for f in summary["failed"]]
        lines += [f"  skipped (a parent failed): {name}" for name in summary["skipped"]]
        super().__init__(f"{len(summary['failed'])} job(s) failed and {len(summary['skipped'])} were skipped in {root}; "
                         "finished results are kept, re-run to retry only the rest:\n" + "\n".join(lines))


class _FailedJobs(logging.Handler):
    """jobflow's local manager logs a failing job and swallows the exception: collect them."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.failed: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if " failed with exception:" in msg:
            name, _, tb = msg.partition(" failed with exception:")
            last = [ln for ln in tb.strip().splitlines() if ln.strip()]
            self.failed.append({"job": name, "error": last[-1] if last else "unknown error"})


def run_campaign(
    path: str | Path, preset: str | None = None, runs_dir: str | Path = "runs", size: str | None = None, log: bool = True,
    add_steps: tuple[str, ...] | list[str] = (), engine: str | None = None, progress: bool = False, wait: bool = False,
    geometry: str | None = None, skip_steps: tuple[str, ...] | list[str] = (), reuse_from=(),
) -> Path:
    """Build the models, run the flow locally (cached steps are skipped) and write the store.

    `add_steps` extends the campaign's steps for this run (e.g. a coverage series on a finished campaign);
    `skip_steps` puts analyses off to a later run in the same folder (the E_ads of every site first, say);
    `engine` runs the campaign on another engine (its own run folder); `geometry` ("mlip:chgnet") relaxes on that
    MLIP and computes everything else on the engine (its own run folder). Raises RunFailed, after writing
    the store and run_summary.json, when any job failed or was skipped.

    Bad input raises before anything is written (CampaignError, SettingsError, EngineSetupError, ...).
    One run per run folder: a second one raises RunFolderBusy, or with `wait` waits for the first;
    `progress` shows a live bar and one line per finished job (hetero.progress) instead of jobflow's log.
    `reuse_from`: other run folders whose finished tasks, where identical, are linked in (hetero.io.reuse).
    """
    from hetero.io.reuse import REUSE_ENV, check_reuse_source
    from hetero.preflight import check_engine_setup

    try:
        sources = [check_reuse_source(p) for p in reuse_from or ()]
    except ValueError as exc:
        raise CampaignError(str(exc)) from None
    camp, preset, eng, root, flow, models = prepare_campaign(path, preset, runs_dir, size, add_steps, engine,
                                                             write=False, geometry=geometry, skip_steps=skip_steps)
    check_engine_setup(eng, _elements(models, camp.ion))  # bad set-up: an error before anything is written
    old_reuse = os.environ.get(REUSE_ENV)
    if sources:
        os.environ[REUSE_ENV] = os.pathsep.join(str(p) for p in sources)
    try:
        return _run_locked(root, camp, preset, eng, flow, models, skip_steps, wait, progress, log)
    finally:
        if old_reuse is None:
            os.environ.pop(REUSE_ENV, None)
        else:
            os.environ[REUSE_ENV] = old_reuse


def _run_locked(root, camp, preset, eng, flow, models, skip_steps, wait, progress, log) -> Path:
    from jobflow.managers.local import run_locally

    from hetero.io.runlock import RunLock, stale_owner_message
    from hetero.io.store import atomic_write_text, keep_store_backup

    with RunLock(root, wait=wait) as lock:
        if lock.taken_over:
            logging.getLogger("hetero").warning(stale_owner_message(lock.taken_over, root))
        write_campaign_records(root, camp, preset, eng, models, skip_steps)
        store_path = root / "store.json"
        if store_path.exists():  # results live in the run folders; the store is rebuilt from them
            keep_store_backup(store_path)
            store_path.unlink()
        store = open_store(store_path)
        collector = _FailedJobs()
        jf_logger = logging.getLogger("jobflow")
        old_level = jf_logger.level
        jf_logger.addHandler(collector)
        jf_logger.setLevel(logging.INFO)
        t0 = time.time()
        try:
            if progress:
                from hetero.progress import JobProgress

                with JobProgress(flow, title=f"{camp.name} ({preset})", log_path=root / "run.log"):
                    responses = run_locally(flow, store=store, log=False, ensure_success=False)
            else:
                responses = run_locally(flow, store=store, log=log, ensure_success=False)
        finally:
            jf_logger.removeHandler(collector)
            jf_logger.setLevel(old_level)
        wall = time.time() - t0
        failed_names = {f["job"] for f in collector.failed}
        skipped = [j.name for j in flow.jobs if j.uuid not in responses and j.name not in failed_names]
        summary = {"wall_s": wall, "engine": eng.label, "jobs_finished": len(responses), "jobs_in_flow": len(flow.jobs),
                   "failed": collector.failed, "skipped": skipped,
                   "steps_not_available": runnable_steps(camp, eng)[1]}
        atomic_write_text(root / "run_summary.json", json.dumps(summary, indent=1))
    if collector.failed or skipped:
        raise RunFailed(root, summary)
    return root


def _json_default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "as_dict"):
        return obj.as_dict()
    return str(obj)


def scaffold_campaign(
    film: str, substrate: str, ion: str, out_dir: str | Path = "workflows", max_area: float = 100.0,
    max_atoms: int = 60, film_miller=(0, 0, 1), substrate_miller=(0, 0, 1), tolerances: dict | None = None,
) -> Path:
    """Write a campaign file for a new pair from the builders' best-ranked interface model."""
    from hetero.builders.interfaces import enumerate_interfaces
    from hetero.builders.sites import covalent_radius

    covalent_radius(ion)  # unknown element -> clear error before anything is written
    res = enumerate_interfaces(
        film, substrate, film_miller, substrate_miller, max_area=max_area, max_atoms=max_atoms, **(tolerances or {})
    )
    if not res.candidates:
        raise CampaignError(
            f"{film}/{substrate}: no interface model within max_area={max_area} A^2 and max_atoms={max_atoms}; "
            + "; ".join(res.skipped[:3])
        )
    best = res.candidates[0].record
    name = f"{_slug(film)}_{_slug(substrate)}_{ion.lower()}"
    data = {
        "name": name,
        "title": f"{ion} on {film}/{substrate}",
        "study": "new pair (scaffolded by hetero new-campaign)",
        "model": {
            "film": film, "substrate": substrate, "film_miller": list(film_miller),
            "substrate_miller": list(substrate_miller), "max_area": max_area, "max_atoms": max_atoms,
            "rank": 0, "tolerances": dict(tolerances or {}),
        },
        "ion": ion,
        "sites": "all",
        # a van der Waals gap (>= 2.5 A between the fragments) takes the ion too: intercalation sites
        "placement": "both" if (best.interlayer_distance_A or 0) >= VDW_GAP_A else "surface",
        "steps": list(ALL_STEPS),
        "references": ["bulk", "atom"],
        # the interface's own CDD, and one ion CDD on the most stable site (each site's costs two statics)
        "cdd_sites": "best",
        "preset": "fast",
        # every site and random start ranked on the MLIPs first; DFT only on the distinct best. The stack itself:
        # 9 registries x 3 start gaps relaxed on the MLIPs, the lowest is the host (the builder's registry and gap
        # are arbitrary). The placement above reads the builder's gap: edit it if the chosen gap is much wider
        "funnel": {"models": ["chgnet", "sevennet"], "window_eV": 0.3, "random_starts": 8,
                   "stacking": {"grid": 3, "distances_A": [2.0, 2.7, 3.4], "max_dft": 3}},
        "notes": (
            f"best-ranked model: {best.n_atoms} atoms, von Mises strain {best.strain_percent:.2f} % "
            f"({best.strained_side} strained), area {best.area_A2:.1f} A^2; {len(res.candidates)} candidates"
        ),
    }
    out = Path(out_dir) / f"{name}.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def _slug(name: str) -> str:
    return "".join(c for c in Path(name).stem if c.isalnum()).lower()
