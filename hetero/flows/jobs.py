"""jobflow Makers for the chain's steps (atomate2's pattern: dataclass makers holding an engine).

Each job runs one engine task in `<run_root>/<system>/<label>/` and returns a schema document. Makers
hold an engine object (hetero.engines.base.Engine: GPAW, VASP or an MLIP) and the model's facts
(hetero.engines.settings.ModelFacts); swapping engines is changing that one field. The engine caches
by task hash, so a re-run of a campaign returns stored results without recomputing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from jobflow import Maker, job
from pydantic import BaseModel
from pymatgen.core import Structure

from hetero.analysis.bader import bader_analysis
from hetero.analysis.cdd import cdd_analysis, no_separating_plane, write_volumetric
from hetero.analysis.descriptors import (
    adsorption_energy,
    endpoint_host_change,
    host_max_shift,
    ion_charge,
    ocv_profile,
    theoretical_capacity,
)
from hetero.analysis.dos import reduce_dos
from hetero.analysis.neb import barrier, hop_length
from hetero.analysis.workfunction import NoVacuumError, work_function
from hetero.engines.base import Engine
from hetero.engines.settings import ModelFacts
from hetero.io.analysis_cache import keep_analysis, read_kept_analysis
from hetero.schemas import (
    AdsorptionDoc,
    BaderDoc,
    CalcDoc,
    CalcResult,
    CddDoc,
    CoverageDoc,
    DosDoc,
    ElfChangeDoc,
    HostCheckDoc,
    NebDoc,
    Provenance,
    WorkFunctionDoc,
)


def _plain(fn):
    """Jobs return plain dicts (not pydantic objects) so jobflow stores and passes them unchanged."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        out = fn(*args, **kwargs)
        return out.model_dump() if isinstance(out, BaseModel) else out

    return wrapper


def _base_dir(run_root: str, system: str, label: str) -> Path:
    safe = lambda s: "".join(c if c.isalnum() or c in "-_.@" else "_" for c in s)  # noqa: E731
    return Path(run_root) / safe(system) / safe(label or "main")


def _facts(facts: ModelFacts | dict | None) -> ModelFacts:
    return facts if isinstance(facts, ModelFacts) else ModelFacts(**(facts or {}))


def calc_doc(result: CalcResult, system: str, label: str) -> CalcDoc:
    """A flow's name for an engine result: which system, which model, which step."""
    final = Structure.from_dict(result.structure)
    return CalcDoc(
        system=system, label=label, step=result.kind, formula=final.composition.formula.replace(" ", ""),
        n_atoms=len(final), **result.model_dump(exclude={"kind", "cached"}),
    )


def _outputs(calc: dict) -> dict:
    """The electronic outputs a static run stored in its document (not read back from engine files)."""
    out = calc.get("outputs")
    if not out:
        raise ValueError(f"{calc.get('system')}/{calc.get('label')}: the static run stored no electronic outputs "
                         "(density, DOS, potential); it ran on an engine or with outputs that do not give them")
    return out


@dataclass
class RelaxMaker(Maker):
    """Relax atoms (selective dynamics honoured); ``cell=True`` relaxes the cell too (bulk references)."""

    name: str = "relax"
    engine: Engine | None = None
    facts: dict = field(default_factory=dict)  # ModelFacts as a dict (serialisable with the maker)
    cell: bool = False

    @job
    @_plain
    def make(self, structure: Structure | dict, system: str, label: str, run_root: str) -> dict:
        if isinstance(structure, dict):
            structure = Structure.from_dict(structure)
        result = self.engine.relax(structure, _base_dir(run_root, system, label), _facts(self.facts), cell=self.cell)
        return calc_doc(result, system, label)


@dataclass
class StaticMaker(Maker):
    """SCF at fixed geometry with the requested outputs (density, potential, dos, elf)."""

    name: str = "static"
    engine: Engine | None = None
    facts: dict = field(default_factory=dict)
    outputs: tuple[str, ...] = ("density", "potential", "dos")
    geometry_engine: str = ""  # the engine that relaxed the input, when not this one (recorded in the provenance)

    @job
    @_plain
    def make(self, structure: Structure | dict, system: str, label: str, run_root: str) -> dict:
        if isinstance(structure, dict):
            structure = Structure.from_dict(structure)
        result = self.engine.static(structure, _base_dir(run_root, system, label), _facts(self.facts),
                                    outputs=tuple(self.outputs))
        if self.geometry_engine:
            result.provenance.geometry_engine = self.geometry_engine
        return calc_doc(result, system, label)


@job
@_plain
def dos_job(calc: dict, fragments: dict[str, list[int]] | None = None) -> dict:
    """Total, per-element and per-fragment DOS from a static run's saved arrays (E_F at 0)."""
    data = np.load(calc["files"]["dos"])
    structure = Structure.from_dict(calc["structure"])
    res = _outputs(calc)
    reduced = reduce_dos(
        data["energies"],
        data["total"],
        data["per_atom"],
        [sp.symbol for sp in structure.species],
        fragments,
        broadening_eV=calc["provenance"]["neutral_settings"].get("dos_width_eV", 0.1),
        eigen_gap_eV=res.get("eigen_gap_eV"),
    )
    if res.get("n_electrons_below_fermi") is not None:  # whole band range, not just the plot window
        reduced["n_electrons_integrated"] = res["n_electrons_below_fermi"]
    return DosDoc(
        system=calc["system"],
        label=calc["label"],
        fermi_eV=res.get("dos_fermi_eV") if res.get("dos_fermi_eV") is not None else calc["fermi_eV"],
        n_valence=float(sum(res["valence"])),
        provenance=Provenance(**calc["provenance"]),
        **reduced,
    )


def _restorable_file(path: str, task_folder: str, engine: Engine | None) -> str:
    """A static's density (or ELF parts), re-run from its task.json when an export left it behind."""
    if not Path(path).exists():
        if engine is None:
            raise FileNotFoundError(f"{path} is gone (an exported run keeps no full densities or ELF parts) and no "
                                    f"engine was given to re-run the static in {task_folder}")
        engine.restore_files(task_folder)
    return path


@job
@_plain
def bader_job(calc: dict, fragments: dict[str, list[int]] | None = None, engine: Engine | None = None) -> dict:
    cached = read_kept_analysis(calc["provenance"]["run_dir"], "bader", fragments, calc["provenance"])
    if cached is not None:
        return BaderDoc.model_validate(cached)
    structure = Structure.from_dict(calc["structure"])
    grids = np.load(_restorable_file(calc["files"]["density"], calc["provenance"]["run_dir"], engine))
    res = _outputs(calc)
    if "core" in grids:
        # VASP: basins from the reference density AECCAR0+AECCAR2, valence electrons counted from CHGCAR
        # (Henkelman's recipe); the AECCAR0 core charge is checked against Z - ZVAL
        from hetero.analysis.bader_reference import bader_on_reference

        out = bader_on_reference(structure, grids["pseudo"], grids["all_electron"], res["valence"], fragments,
                                 core_e_per_A3=grids["core"], core_expected=res["core_electrons"])
        out = {k: v for k, v in out.items() if k in BaderDoc.model_fields}
    else:  # GPAW: the all-electron density (core included), core electrons subtracted per atom
        out = bader_analysis(structure, grids["all_electron"], res["core_electrons"], res["valence"], fragments)
    doc = BaderDoc(system=calc["system"], label=calc["label"], provenance=Provenance(**calc["provenance"]), **out)
    keep_analysis(calc["provenance"]["run_dir"], "bader", fragments, doc.model_dump(mode="json"))
    return doc


@job
@_plain
def workfunction_job(calc: dict) -> dict | None:
    """Work function of each side from the planar-averaged electrostatic potential.

    With a dipole correction the two vacua differ; a side whose vacuum never flattens (e.g. little
    room above an adsorbed ion) gets None rather than the other side's value.
    """
    structure = Structure.from_dict(calc["structure"])
    res = _outputs(calc)
    v = np.asarray(res["planar_potential_eV"])
    length = structure.lattice.c
    z = np.arange(len(v)) * length / len(v)
    atom_z = structure.cart_coords[:, 2]
    dipole = calc["provenance"]["neutral_settings"].get("dipole") == "on"
    plateau_kw = {"flat_tol": 0.05, "window_A": 1.0, "min_plateau_A": 0.8, "min_atom_distance_A": 2.5}
    try:
        wf = work_function(z, v, calc["fermi_eV"], cell_length=length, atom_z=atom_z, **plateau_kw)
    except NoVacuumError:
        return None
    top = (wf.vacuum_top_eV, wf.work_function_top_eV)
    bottom = (wf.vacuum_bottom_eV, wf.work_function_bottom_eV)
    if dipole and len(wf.plateaus) == 1:
        # one flat vacuum only: decide which side of the slab it faces (slab centred, dipole layer at the boundary)
        centre = wf.plateaus[0]["center_A"]
        slab_mid = (atom_z.min() + atom_z.max()) / 2
        if centre > slab_mid:
            bottom = (None, None)
        else:
            top = (None, None)
    return WorkFunctionDoc(
        system=calc["system"],
        label=calc["label"],
        z_A=z.tolist(),
        planar_potential_eV=v.tolist(),
        fermi_eV=calc["fermi_eV"],
        vacuum_top_eV=top[0],
        vacuum_bottom_eV=bottom[0],
        work_function_top_eV=top[1],
        work_function_bottom_eV=bottom[1],
        dipole_corrected=dipole,
        provenance=Provenance(**calc["provenance"]),
    )


@dataclass
class CddMaker(Maker):
    """rho_AB - rho_A - rho_B: fragments frozen at the AB geometry, with AB's settings, on AB's grid."""

    name: str = "cdd"
    engine: Engine | None = None
    # the fragments' statics also write their ELF parts (an interface's ELF before/after, elf_change_job)
    fragment_elf: bool = False

    @job
    @_plain
    def make(self, calc_ab: dict, fragments: dict[str, list[int]], run_root: str) -> dict:
        structure = Structure.from_dict(calc_ab["structure"])
        cached = read_kept_analysis(calc_ab["provenance"]["run_dir"], "cdd", fragments, calc_ab["provenance"])
        if cached is not None and Path(cached["files"]["grid"]).exists():
            if not Path(cached["files"]["cube"]).exists():  # the export kept the grid, not the viewer files
                delta = np.load(cached["files"]["grid"])["delta"].astype(float)
                write_volumetric(structure, delta, cached["files"]["chgcar"], cached["files"]["cube"])
            return CddDoc.model_validate({**cached, **no_separating_plane(structure, fragments)})
        rho, energies = {}, {}
        for name, r in _fragment_statics(self.engine, calc_ab, fragments, run_root, self.fragment_elf).items():
            rho[name] = np.load(_restorable_file(r.files["density"], r.provenance.run_dir, self.engine))["pseudo"]
            energies[name] = r.energy_eV
        ab_density = _restorable_file(calc_ab["files"]["density"], calc_ab["provenance"]["run_dir"], self.engine)
        rho_ab = np.load(ab_density)["pseudo"]
        names = list(fragments)
        delta, doc = cdd_analysis(structure, rho_ab, rho[names[0]], rho[names[1]], fragments)
        out_dir = Path(calc_ab["provenance"]["run_dir"])
        files = {"chgcar": str(out_dir / "CDD_CHGCAR"), "cube": str(out_dir / "cdd.cube"), "grid": str(out_dir / "cdd.npz")}
        write_volumetric(structure, delta, files["chgcar"], files["cube"])
        np.savez_compressed(files["grid"], delta=delta.astype(np.float32), cell=structure.lattice.matrix)
        doc.pop("transfer_direction")
        out = CddDoc(
            system=calc_ab["system"], label=calc_ab["label"], files=files,
            e_total_eV=calc_ab["energy_eV"], fragment_energies_eV=energies,
            binding_energy_eV=calc_ab["energy_eV"] - sum(energies.values()),
            area_A2=float(np.linalg.norm(np.cross(structure.lattice.matrix[0], structure.lattice.matrix[1]))),
            provenance=Provenance(**calc_ab["provenance"]), **doc
        )
        keep_analysis(calc_ab["provenance"]["run_dir"], "cdd", fragments, out.model_dump(mode="json"))
        return out


def _fragment_statics(engine: Engine, calc_ab: dict, fragments: dict[str, list[int]], run_root: str,
                      elf: bool = False) -> dict:
    """Each fragment of AB alone, frozen at AB's geometry, with AB's settings on AB's grid (the CDD's and the ELF
    change's; one task each, whichever job asks first computes it)."""
    structure = Structure.from_dict(calc_ab["structure"])
    like = CalcResult.model_validate({**calc_ab, "kind": "static"})
    out = {}
    for name, idx in fragments.items():
        frag = Structure.from_sites([structure[i] for i in idx])
        # an isolated ion fragment (e.g. Na) has an odd electron count: let it polarise
        out[name] = engine.static(
            frag, _base_dir(run_root, calc_ab["system"], f"{calc_ab['label']}-cdd-{name}"),
            outputs=("density", "elf") if elf else ("density",), like=like, spin="on" if len(frag) == 1 else None,
        )
    return out


def _elf_grid(path: str) -> tuple[np.ndarray, np.ndarray]:
    data = np.load(path)
    elf = data["elf"]
    return (elf.mean(axis=0) if elf.ndim == 4 else elf), data["cell"]


@job
@_plain
def elf_change_job(calc_ab: dict, fragments: dict[str, list[int]], engine: Engine, run_root: str,
                   interface_z_A: float | None = None) -> dict:
    """The interface's ELF before (its two fragments side by side at its geometry) and after (its own ELF).
    `interface_z_A`: the CDD's interface plane (its output, so this job also waits for the CDD's fragment
    statics instead of computing the same tasks beside it); default midway between the facing atomic planes."""
    from hetero.analysis.elf import elf_from_parts, elf_method_gap, interface_elf_change

    cached = read_kept_analysis(calc_ab["provenance"]["run_dir"], "elf_change", fragments, calc_ab["provenance"])
    if cached is not None and Path(cached["files"]["before"]).exists():
        return ElfChangeDoc.model_validate(cached)
    if not (calc_ab.get("files") or {}).get("elf"):
        raise ValueError(f"{calc_ab['system']} {calc_ab['label']}: the static wrote no ELF; the ELF change needs the "
                         "campaign's `elf` step on the host")
    structure = Structure.from_dict(calc_ab["structure"])
    after, cell = _elf_grid(calc_ab["files"]["elf"])
    statics = _fragment_statics(engine, calc_ab, fragments, run_root, elf=True)
    parts = {name: np.load(_restorable_file(r.files["elf_parts"], r.provenance.run_dir, engine))
             for name, r in statics.items()}
    names = list(fragments)
    nt = sum(parts[n]["nt"] for n in names)
    taut = sum(parts[n]["taut"] for n in names)
    before = elf_from_parts(nt, taut, cell)
    # our formula on one fragment's own parts against the engine's ELF of that fragment: the method's own gap
    first = statics[names[0]]
    gap = elf_method_gap(_elf_grid(first.files["elf"])[0], elf_from_parts(parts[names[0]]["nt"], parts[names[0]]["taut"], cell),
                         parts[names[0]]["nt"])
    if interface_z_A is None:
        z = structure.cart_coords[:, 2]
        a, b = (np.asarray(fragments[n]) for n in names)
        lower, upper = (a, b) if z[a].mean() < z[b].mean() else (b, a)
        interface_z_A = float((z[lower].max() + z[upper].min()) / 2)
    numbers = interface_elf_change(after, before, cell, structure.cart_coords, [sp.symbol for sp in structure.species],
                                   fragments, interface_z_A)
    out_dir = Path(calc_ab["provenance"]["run_dir"])
    files = {"before": str(out_dir / "elf_before.npz"), "after": calc_ab["files"]["elf"]}
    np.savez_compressed(files["before"], elf=before.astype(np.float32), cell=cell)
    doc = ElfChangeDoc(system=calc_ab["system"], label=calc_ab["label"], fragments=fragments, method_gap=gap,
                       files=files, provenance=Provenance(**calc_ab["provenance"]), **numbers)
    keep_analysis(calc_ab["provenance"]["run_dir"], "elf_change", fragments, doc.model_dump(mode="json"))
    return doc


@job
def reference_energy_job(calc: dict, n_ions: int) -> float:
    """Energy per ion atom of a reference calculation (bulk metal cell or isolated atom)."""
    return calc["energy_eV"] / n_ions


@job
@_plain
def adsorption_job(
    calc: dict, host: dict, ion: str, site: str, mu_bulk: float | None, mu_atom: float | None,
    ion_index: int, n_ions: int = 1, uuid: str = "", start_cart: list[float] | None = None,
    catalogue: list[dict] | None = None,
) -> dict:
    """``catalogue``: the builder's sites (Site dicts), to name the site where a single ion ended."""
    structure = Structure.from_dict(calc["structure"])
    ended_at = None
    if catalogue and n_ions == 1:
        from hetero.builders.candidates import classify_final_positions
        from hetero.builders.sites import Site

        ended_at = classify_final_positions(Structure.from_dict(host["structure"]), [structure.cart_coords[ion_index]],
                                            [Site(**s) for s in catalogue])[0]
    shift = None
    if start_cart is not None:  # a large shift means the ion left its site: the label names the start
        d = structure.lattice.get_fractional_coords(np.asarray(structure.cart_coords[ion_index]) - np.asarray(start_cart))
        d[:2] -= np.round(d[:2])
        shift = float(np.linalg.norm(structure.lattice.get_cartesian_coords([d[0], d[1], 0.0])))
    # the ions are the last n_ions atoms: the height is measured from the host's top atom, not another ion
    top_host = float(structure.cart_coords[: len(structure) - n_ions, 2].max())
    host_shift = host_max_shift(Structure.from_dict(host["structure"]), structure, n_ions)
    e_bulk = adsorption_energy(calc["energy_eV"], host["energy_eV"], mu_bulk, n_ions) if mu_bulk is not None else None
    e_atom = adsorption_energy(calc["energy_eV"], host["energy_eV"], mu_atom, n_ions) if mu_atom is not None else None
    return AdsorptionDoc(
        system=host["system"], ion=ion, site=site, n_ions=n_ions,
        e_total_eV=calc["energy_eV"], e_host_eV=host["energy_eV"], mu_bulk_eV=mu_bulk, mu_atom_eV=mu_atom,
        e_ads_bulk_eV=e_bulk, e_ads_atom_eV=e_atom,
        height_A=float(structure.cart_coords[ion_index, 2] - top_host), lateral_shift_A=shift, ended_at=ended_at,
        host_max_shift_A=host_shift, calc_uuid=uuid,
        structure=calc["structure"], provenance=Provenance(**calc["provenance"]),
    )


@job
@_plain
def host_check_doc_job(calc: dict, host: dict, ads: dict) -> HostCheckDoc:
    """The ion-free host relaxed from `ads`'s geometry (`calc`, its static) against the bare host (`host`)."""
    return HostCheckDoc(
        system=host["system"], ion=ads["ion"], site=ads["site"], e_bare_host_eV=host["energy_eV"],
        e_ion_free_host_eV=calc["energy_eV"], delta_eV=calc["energy_eV"] - host["energy_eV"],
        site_host_shift_A=ads.get("host_max_shift_A"),
        remaining_shift_A=host_max_shift(Structure.from_dict(host["structure"]), Structure.from_dict(calc["structure"]), 0),
        structure=calc["structure"], provenance=Provenance(**calc["provenance"]),
    )


def _min_ion_distance(structure: Structure, ion_indices: list[int]) -> float | None:
    if len(ion_indices) < 2:
        return None
    d = structure.distance_matrix[np.ix_(ion_indices, ion_indices)]
    return float(d[np.triu_indices(len(ion_indices), 1)].min())


@job
@_plain
def coverage_doc_job(
    host: dict, ads_docs: list[dict], ion: str, site: str, mu_bulk: float | None, mu_atom: float | None,
    min_separation_A: float, stopped_because: str = "",
) -> CoverageDoc:
    """Average E_ads per ion and the voltage profile of n = 0, 1, 2, ... ions (adsorption docs of one site)."""
    docs = sorted((d for d in ads_docs if d), key=lambda d: d["n_ions"])
    n = [0] + [int(d["n_ions"]) for d in docs]
    e = [host["energy_eV"]] + [d["e_total_eV"] for d in docs]
    host_structure = Structure.from_dict(host["structure"])
    formula = host_structure.composition.formula.replace(" ", "")
    z = ion_charge(ion)
    dists = []
    for d in docs:
        s = Structure.from_dict(d["structure"])
        dists.append(_min_ion_distance(s, list(range(len(host_structure), len(s)))))
    steps = ocv_profile(n, e, mu_bulk, z) if mu_bulk is not None else None
    return CoverageDoc(
        system=host["system"], ion=ion, site=site, n_ions=n, e_total_eV=e, mu_bulk_eV=mu_bulk, mu_atom_eV=mu_atom,
        e_ads_avg_bulk_eV=[None] + [d.get("e_ads_bulk_eV") for d in docs],
        e_ads_avg_atom_eV=[None] + [d.get("e_ads_atom_eV") for d in docs],
        step_n_lo=[int(x) for x in steps["x_lo"]] if steps else [],
        step_n_hi=[int(x) for x in steps["x_hi"]] if steps else [],
        step_voltage_V=[float(v) for v in steps["voltage_V"]] if steps else [],
        capacity_mAh_g=[theoretical_capacity(formula, k, z) for k in n],
        host_formula=formula, min_ion_distance_A=[None] + dists, min_separation_A=min_separation_A,
        stopped_because=stopped_because, provenance=Provenance(**host["provenance"]),
    )


@dataclass
class NebMaker(Maker):
    """CI-NEB between two relaxed adsorption results; endpoints are taken, never recomputed."""

    name: str = "neb"
    engine: Engine | None = None
    facts: dict = field(default_factory=dict)
    neb_settings: dict = field(default_factory=dict)  # neb_images, neb_steps, neb_fmax_eV_A, neb_spring
    initial_band: list | None = None  # a starting path (plain structure dicts, endpoints included), e.g. an MLIP band

    @job
    @_plain
    def make(
        self, start: dict, end: dict, ion_index: int, fixed: list[int], system: str, ion: str, run_root: str
    ) -> NebDoc:
        s0 = Structure.from_dict(start["structure"])
        s1 = Structure.from_dict(end["structure"])
        settings = dict(self.neb_settings)
        n_images = int(settings.pop("neb_images", self.engine.neutral["neb_images"]))
        images = _starting_band(s0, s1, n_images, fixed, self.initial_band)
        label = f"neb-{start['site']}-{end['site']}"
        result = self.engine.neb(images, [start["e_total_eV"], end["e_total_eV"]], _base_dir(run_root, system, label),
                                 _facts(self.facts), neb=settings)
        e_rel = [e - result.energies_eV[0] for e in result.energies_eV]
        spline_rel = list(result.spline_e_eV)  # ase's NEBTools fit is relative to the first image
        ion_path = [Structure.from_dict(im).cart_coords[ion_index].tolist() for im in result.images] or None
        return NebDoc(
            system=system, ion=ion, path=f"{start['site']}->{end['site']}",
            reaction_coord_A=result.reaction_coord_A, energies_eV=e_rel,
            spline_x_A=result.spline_x_A, spline_e_eV=spline_rel,
            barrier_eV=barrier(e_rel, spline_rel),
            hop_length_A=hop_length(s0.cart_coords, s1.cart_coords, ion_index, s0.lattice.matrix),
            endpoint_energies_eV=[start["e_total_eV"], end["e_total_eV"]],
            climbing=result.climbing, method=result.method, converged=result.converged,
            images_in_parallel=result.images_in_parallel, image_ion_positions_A=ion_path,
            host_change_A=endpoint_host_change(s0, s1, ion_index), provenance=result.provenance,
        )


def _starting_band(s0: Structure, s1: Structure, n_images: int, fixed: list[int],
                   initial_band: list | None = None) -> list[Structure]:
    """A band's starting images: a given band's interior images (e.g. an MLIP band) between these endpoints, else an
    interpolation; the fixed atoms held."""
    from hetero.builders.images import interpolate_images

    if initial_band:
        images = [s0] + [Structure.from_dict(d) for d in initial_band[1:-1]] + [s1]
    else:
        images = interpolate_images(s0, s1, n_images)
    for im in images:
        im.add_site_property("selective_dynamics", [[i not in fixed] * 3 for i in range(len(im))])
    return images


def band_on_geometry_engine(start: dict, end: dict, ion_index: int, fixed: list[int], geometry_engine: Engine,
                            facts: dict, system: str, run_root: str, neb_settings: dict | None = None,
                            initial_band: list | None = None) -> dict:
    """DFT//MLIP migration, first half: a CI-NEB on the MLIP that relaxed the endpoints (cheap, cached by task hash
    like every engine task). Returns the band (plain structure dicts, endpoints included), its reaction coordinate
    and the MLIP's own barrier; the DFT engine then gives each moving image a single point."""
    s0, s1 = Structure.from_dict(start["structure"]), Structure.from_dict(end["structure"])
    base = _base_dir(run_root, system, f"neb-{start['site']}-{end['site']}")
    # the endpoints' energies on the band's own engine (the DFT energies would make the tangents meaningless)
    ends = [geometry_engine.static(s, base, _facts(facts)).energy_eV for s in (s0, s1)]
    settings = dict(neb_settings or {})
    n_images = int(settings.pop("neb_images", geometry_engine.neutral["neb_images"]))
    # steps and force threshold stay the MLIP preset's (300, 0.05 eV/A): a campaign's NEB block sizes a DFT band,
    # and an MLIP step costs a fraction of a second
    settings = {k: v for k, v in settings.items() if k in ("neb_spring", "neb_climb")}
    images = _starting_band(s0, s1, n_images, fixed, initial_band)
    res = geometry_engine.neb(images, ends, base, _facts(facts), neb=settings)
    e_rel = [e - res.energies_eV[0] for e in res.energies_eV]
    return {"images": res.images, "reaction_coord_A": res.reaction_coord_A, "converged": res.converged,
            "method": res.method, "engine": res.provenance.engine,
            "barrier_eV": barrier(e_rel, list(res.spline_e_eV))}


@job
@_plain
def band_single_points_job(band: dict, image_statics: list[dict], start: dict, end: dict, ion_index: int,
                           system: str, ion: str) -> NebDoc:
    """DFT//MLIP migration, second half: the NEB document from the DFT endpoints and the DFT single points of the
    MLIP band's moving images. The band was not re-optimised on DFT, so the barrier is the highest image (no
    spline: single points carry no tangent forces) and the document says so: climbing False, band_engine set."""
    energies = [start["e_total_eV"]] + [c["energy_eV"] for c in image_statics] + [end["e_total_eV"]]
    e_rel = [e - energies[0] for e in energies]
    s0, s1 = Structure.from_dict(start["structure"]), Structure.from_dict(end["structure"])
    prov = Provenance(**image_statics[0]["provenance"]) if image_statics else Provenance(**start["provenance"])
    ion_path = [Structure.from_dict(im).cart_coords[ion_index].tolist() for im in band["images"]]
    return NebDoc(
        system=system, ion=ion, path=f"{start['site']}->{end['site']}",
        reaction_coord_A=band["reaction_coord_A"], energies_eV=e_rel,
        spline_x_A=list(band["reaction_coord_A"]), spline_e_eV=e_rel, barrier_eV=barrier(e_rel),
        hop_length_A=hop_length(s0.cart_coords, s1.cart_coords, ion_index, s0.lattice.matrix),
        endpoint_energies_eV=[start["e_total_eV"], end["e_total_eV"]], climbing=False,
        method=(f"{prov.engine} single points on the {band['engine']} band ({band['method']}); the band was not "
                f"re-optimised on {prov.engine}: the barrier is its highest image, not a {prov.engine} saddle"),
        converged=bool(band["converged"]), image_ion_positions_A=ion_path,
        band_engine=band["engine"], band_barrier_eV=band["barrier_eV"],
        host_change_A=endpoint_host_change(s0, s1, ion_index), provenance=prov,
    )
