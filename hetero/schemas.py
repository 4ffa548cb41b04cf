"""Documents every step returns (the engine contract of ../shared/DESIGN.md).

Whatever the engine (GPAW, VASP, an MLIP), a calculation returns a `CalcDoc`; analysis steps return
their own documents that point back to the calculations they used. All energies in eV, lengths in
Angstrom, charges in e. Documents are plain pydantic models so jobflow stores them as JSON.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, Field

SCHEMA_VERSION = 1
# key of a run-time decision's output (e.g. "select NEB path"): a step that was asked for, and why it did not run
NOT_RUN_KEY = "not_run"


def plain_structure_dict(structure) -> dict[str, Any]:
    """Structure.as_dict() without monty's @module/@class tags, so jobflow passes it on as a dict."""
    d = structure.as_dict()
    d.pop("@module", None)
    d.pop("@class", None)
    d["lattice"].pop("@module", None)
    d["lattice"].pop("@class", None)
    return d


def settings_hash(settings: dict[str, Any]) -> str:
    """Short, stable hash of a settings dict (key order does not matter)."""
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


class Provenance(BaseModel):
    engine: str  # gpaw | vasp | mlip:<model>: an MLIP result is never passed off as DFT
    geometry_engine: str = ""  # set when another engine relaxed the geometry (an MLIP): "<engine>//<this>"
    engine_version: str = ""
    settings: dict[str, Any] = Field(default_factory=dict)  # the engine's own input, as hashed
    settings_hash: str = ""
    # the engine-neutral values used (spin, kpoints, dispersion, dipole, ...) and where each came
    # from: default | preset | user | model (with the model fact that decided it)
    neutral_settings: dict[str, Any] = Field(default_factory=dict)
    settings_sources: dict[str, str] = Field(default_factory=dict)
    run_dir: str = ""
    wall_s: float | None = None
    cores: int | None = None
    hetero_version: str = ""


class ElectronicOutputs(BaseModel):
    """What a static run with density/potential/DOS outputs gives besides its energy."""

    gpts: list[int] | None = None  # the density grid (CDD fragments are pinned to it)
    valence: list[float] | None = None  # valence electrons of each atom's setup/POTCAR
    core_electrons: list[float] | None = None
    planar_potential_eV: list[float] | None = None  # electrostatic potential averaged over a-b planes
    dos_fermi_eV: float | None = None  # zero of the DOS arrays (E_F of the DOS run)
    dos_reference: str = "E_F"
    eigen_gap_eV: float | None = None  # from the eigenvalues (a broadened DOS leaks into gaps)
    n_electrons_below_fermi: float | None = None  # DOS integrated over every band up to E_F
    dos_projected: bool = True  # False: per-atom DOS unavailable (NaN arrays)


class CalcResult(BaseModel):
    """What every engine returns from relax/static (the engine contract's result, before a flow names it)."""

    kind: Literal["relax", "static"]
    energy_eV: float
    forces_max_eV_A: float | None = None
    fermi_eV: float | None = None
    converged: bool = True
    n_scf: int | None = None  # a static's SCF iterations, those of interrupted parts included (GPAW)
    n_ionic_steps: int | None = None
    magmom_total: float | None = None
    structure: dict[str, Any]  # plain pymatgen Structure dict of the final geometry (input atom order)
    files: dict[str, str] = Field(default_factory=dict)  # role -> absolute path (density, dos, log, ...)
    outputs: ElectronicOutputs | None = None
    cached: bool = False
    restarts: int = 0  # times the run was resumed from an interrupted state
    cell_method: str | None = None  # a cell relaxation without stress says how the cell was found (E(V) fit)
    provenance: Provenance


class NebResult(BaseModel):
    energies_eV: list[float]  # absolute, endpoints included
    reaction_coord_A: list[float]
    spline_x_A: list[float]
    spline_e_eV: list[float]  # relative to the first image
    converged: bool
    climbing: bool = True
    method: str = ""  # how the band was optimised (e.g. "ASE CI-NEB, improved tangent, FIRE"; "VASP VTST IOPT 3")
    n_images_moving: int
    images_in_parallel: bool | None = None
    images: list[dict[str, Any]] = Field(default_factory=list)  # plain structure dicts, endpoints included
    files: dict[str, str] = Field(default_factory=dict)
    cached: bool = False
    provenance: Provenance


class CalcDoc(BaseModel):
    """One electronic-structure calculation (relax or static)."""

    schema_version: int = SCHEMA_VERSION
    doc_type: Literal["calc"] = "calc"
    system: str
    label: str = ""  # e.g. "host", "Na@top-V", "fragment-A"
    step: str  # relax | static
    formula: str
    n_atoms: int
    energy_eV: float
    forces_max_eV_A: float | None = None
    fermi_eV: float | None = None
    n_scf: int | None = None
    n_ionic_steps: int | None = None
    converged: bool = True
    magmom_total: float | None = None
    structure: dict[str, Any]  # pymatgen Structure.as_dict() of the final geometry
    files: dict[str, str] = Field(default_factory=dict)  # role -> path (density, restart, log ...)
    outputs: ElectronicOutputs | None = None
    restarts: int = 0
    cell_method: str | None = None  # how a cell was relaxed when not by stress (E(V) fit on GPAW LCAO)
    provenance: Provenance


class DosDoc(BaseModel):
    schema_version: int = SCHEMA_VERSION
    doc_type: Literal["dos"] = "dos"
    system: str
    label: str = ""
    energies_eV: list[float]  # relative to E_F
    total: list[float]  # states/eV (spin summed)
    projected: dict[str, list[float]] = Field(default_factory=dict)  # element or fragment -> states/eV
    fermi_eV: float
    band_gap_eV: float
    is_metal: bool
    dos_at_fermi: float  # states/eV/cell
    n_electrons_integrated: float | None = None  # integral of total DOS up to E_F
    n_valence: float | None = None
    provenance: Provenance


class BaderDoc(BaseModel):
    schema_version: int = SCHEMA_VERSION
    doc_type: Literal["bader"] = "bader"
    system: str
    label: str = ""
    symbols: list[str]
    electrons: list[float]  # electrons in each atom's basin
    valence: list[float]  # valence electrons of each atom's setup/POTCAR
    net_charge: list[float]  # valence - electrons: positive = atom lost electrons
    fragments: dict[str, list[int]] = Field(default_factory=dict)
    fragment_charge: dict[str, float] = Field(default_factory=dict)  # sum of net_charge
    total_electrons: float
    method: str = "Bader basins of the all-electron density, core electrons subtracted"
    core_check: dict[str, Any] | None = None  # VASP: AECCAR0 core charge per basin against Z - ZVAL
    provenance: Provenance


class CddDoc(BaseModel):
    """Charge density difference rho_AB - rho_A - rho_B (A, B frozen at the AB geometry)."""

    schema_version: int = SCHEMA_VERSION
    doc_type: Literal["cdd"] = "cdd"
    system: str
    label: str = ""
    axis: int = 2
    z_A: list[float]
    planar_avg_e_per_A: list[float]  # integral over the plane: e/A along the axis
    displacement_e: list[float]  # cumulative integral from the bottom: charge displaced (e)
    interface_z_A: float
    # electrons that crossed the interface plane upward (+) or downward (-); None when B sits inside A (an
    # intercalated ion): no plane separates them, and `note` says so
    transferred_e: float | None
    integral_e: float  # total integral of delta rho (should be ~0)
    note: str = ""
    fragments: dict[str, list[int]] = Field(default_factory=dict)
    e_total_eV: float | None = None  # E(AB)
    fragment_energies_eV: dict[str, float] = Field(default_factory=dict)  # E(A), E(B) frozen at AB geometry
    binding_energy_eV: float | None = None  # E(AB) - E(A) - E(B): negative = bound
    area_A2: float | None = None  # interface area (cell a x b)
    files: dict[str, str] = Field(default_factory=dict)  # chgcar, cube, slice npz
    provenance: Provenance


class ElfChangeDoc(BaseModel):
    """ELF before and after an interface forms (hetero.analysis.elf): the junction's own ELF against the ELF of its
    two fragments side by side (their densities and kinetic-energy densities added), frozen at the junction's
    geometry on its grid."""

    schema_version: int = SCHEMA_VERSION
    doc_type: Literal["elf_change"] = "elf_change"
    system: str
    label: str = ""
    fragments: dict[str, list[int]] = Field(default_factory=dict)
    z_A: list[float]
    planar_before: list[float]  # plane-averaged ELF along z
    planar_after: list[float]
    interface_z_A: float
    window_A: float  # the contact region: |z - interface_z_A| <= window_A
    contact_region_mean_before: float | None = None
    contact_region_mean_after: float | None = None
    contact_region_max_before: float | None = None
    contact_region_max_after: float | None = None
    contact_cutoff_A: float
    # pairs across the interface closer than contact_cutoff_A: atoms, pair, distance_A, midpoint_A, elf_before/after
    contacts: list[dict[str, Any]] = Field(default_factory=list)
    slice_point_A: list[float]  # the shortest contact's midpoint: the figure's slice goes through it
    # mean |engine's ELF - our ELF from the same calculation's parts| where there is density: the level above
    # which a before/after difference is read
    method_gap: float
    files: dict[str, str] = Field(default_factory=dict)  # before (npz), after (the junction's elf.npz)
    provenance: Provenance


class AdsorptionDoc(BaseModel):
    schema_version: int = SCHEMA_VERSION
    doc_type: Literal["adsorption"] = "adsorption"
    system: str
    ion: str
    site: str
    n_ions: int = 1
    e_total_eV: float
    e_host_eV: float
    mu_bulk_eV: float | None = None  # per atom, bulk metal, same settings
    mu_atom_eV: float | None = None  # isolated atom, same settings
    e_ads_bulk_eV: float | None = None  # reference: bulk metal
    e_ads_atom_eV: float | None = None  # reference: isolated atom
    height_A: float | None = None  # ion above the topmost host atom; negative = intercalated inside a stack
    lateral_shift_A: float | None = None  # in-plane move of the ion from its starting site during relaxation
    # the builder site where the relaxed ion sits (symmetry-aware; 'other-1' when none is within 0.5 A):
    # differs from `site` when the ion left its start (Na started on VN(001)'s bridge ends 0.25 A from top-N)
    ended_at: str | None = None
    # largest move of a host atom from the bare host's geometry (minimum image): above HOST_REARRANGED_A the
    # host rearranged under the ion, and E_ads may hold the host's own relaxation (V2O5 slab: 6.6 eV in GPAW);
    # the flow then relaxes the ion-free host again (HostCheckDoc)
    host_max_shift_A: float | None = None
    calc_uuid: str = ""
    structure: dict[str, Any]
    provenance: Provenance


# a host atom that moved this far from the bare host's geometry in a site's relaxation: the host rearranged
HOST_REARRANGED_A = 1.0


class HostCheckDoc(BaseModel):
    """The ion-free host relaxed from one site's geometry, run when that site's host rearranged
    (host_max_shift_A > HOST_REARRANGED_A): did the host find a state of its own below the bare host?
    The table then takes every E_ads of the system against the lowest host found."""

    schema_version: int = SCHEMA_VERSION
    doc_type: Literal["host_check"] = "host_check"
    system: str
    ion: str
    site: str  # the adsorption site whose relaxed geometry, ion removed, was relaxed again
    e_bare_host_eV: float
    e_ion_free_host_eV: float
    delta_eV: float  # ion-free minus bare: negative = the bare host was not the lowest state
    site_host_shift_A: float | None = None  # the host move that triggered the check
    remaining_shift_A: float | None = None  # the ion-free relaxed host vs the bare host (small: it went back)
    structure: dict[str, Any]
    provenance: Provenance


class CoverageDoc(BaseModel):
    """A coverage series: 0..n ions on the symmetry copies of one site, and the voltage profile it gives."""

    schema_version: int = SCHEMA_VERSION
    doc_type: Literal["coverage"] = "coverage"
    system: str
    ion: str
    site: str  # the one-ion site whose copies are filled
    n_ions: list[int]  # 0 (bare host), 1, 2, ...
    e_total_eV: list[float]
    mu_bulk_eV: float | None = None
    mu_atom_eV: float | None = None
    e_ads_avg_bulk_eV: list[float | None]  # per ion, averaged over the n ions (None for n = 0)
    e_ads_avg_atom_eV: list[float | None]
    step_n_lo: list[int]  # voltage step i: from step_n_lo[i] to step_n_hi[i] ions
    step_n_hi: list[int]
    step_voltage_V: list[float]  # vs the bulk-metal anode; empty without a bulk-metal reference
    capacity_mAh_g: list[float | None]  # at each n (host formula of the cell)
    host_formula: str
    min_ion_distance_A: list[float | None]  # closest ion-ion distance after relaxation (periodic)
    min_separation_A: float  # the builder's threshold
    stopped_because: str = ""  # why the series ends where it does
    provenance: Provenance


class NebDoc(BaseModel):
    schema_version: int = SCHEMA_VERSION
    doc_type: Literal["neb"] = "neb"
    system: str
    ion: str
    path: str  # "siteA->siteB"
    reaction_coord_A: list[float]
    energies_eV: list[float]  # relative to the initial endpoint
    spline_x_A: list[float]
    spline_e_eV: list[float]
    barrier_eV: float
    hop_length_A: float
    endpoint_energies_eV: list[float]  # absolute, taken from adsorption results
    climbing: bool = True
    method: str = ""  # how the band was optimised; a run without a climbing image says so here
    converged: bool = True
    images_in_parallel: bool | None = None  # moving images computed side by side on separate MPI rank groups
    # cartesian position (A) of the moving ion in every image, endpoints included; None in older stores
    image_ion_positions_A: list[list[float]] | None = None
    # DFT//MLIP: the engine that optimised the band when it is not the one whose energies are stored (the images'
    # energies are single points on the MLIP's CI-NEB band), and that engine's own barrier on the same band
    band_engine: str = ""
    band_barrier_eV: float | None = None
    # largest host-atom move between the two endpoints: above HOST_REARRANGED_A they sit on different host states
    # and the band measures a host change, not the ion's hop; None in older stores
    host_change_A: float | None = None
    provenance: Provenance


class WorkFunctionDoc(BaseModel):
    schema_version: int = SCHEMA_VERSION
    doc_type: Literal["work_function"] = "work_function"
    system: str
    label: str = ""
    z_A: list[float]
    planar_potential_eV: list[float]
    fermi_eV: float
    vacuum_top_eV: float | None = None  # None: no flat vacuum on that side (too little vacuum)
    vacuum_bottom_eV: float | None = None
    work_function_top_eV: float | None = None
    work_function_bottom_eV: float | None = None
    dipole_corrected: bool = False
    provenance: Provenance


class FunnelCandidate(BaseModel):
    id: str
    origin: str  # "site hollow + 0.18 A off-site", "random surface placement", ...
    model: str  # mlip:chgnet | mlip:sevennet
    energy_eV: float
    group: str  # where the ion ended: a builder site label or other-k
    final_ion_cart_A: list[float]
    moved_A: float  # in-plane distance from start to end
    converged: bool
    n_steps: int | None = None
    # two atoms overlapping after the relaxation (a broken MLIP relaxation): kept out of every group and of DFT
    unphysical: str | None = None


class FunnelGroup(BaseModel):
    label: str
    members: list[str]  # candidate ids (all models)
    e_min_eV: dict[str, float]  # model -> lowest total energy in the group
    e_ads_bulk_eV: dict[str, float] = Field(default_factory=dict)  # model -> MLIP E_ads vs the MLIP bulk metal
    rank: dict[str, int] = Field(default_factory=dict)  # model -> 1 = lowest
    structure: dict[str, Any]  # relaxed geometry of the group's best member (first model): the DFT start
    selected: bool = False


class FunnelHop(BaseModel):
    path: str  # "A->B" between two selected minima
    model: str
    barrier_eV: float
    converged: bool
    images: list[dict[str, Any]]  # the MLIP band (plain structure dicts), the DFT CI-NEB's starting path


class FunnelDoc(BaseModel):
    """The MLIP stage of a screening funnel: every candidate relaxed, grouped, ranked, some sent to DFT.
    Every energy here is an MLIP energy (labelled by model), never a DFT one."""

    schema_version: int = SCHEMA_VERSION
    doc_type: Literal["funnel"] = "funnel"
    system: str
    ion: str
    models: list[str]
    window_eV: float
    selection_rule: str
    n_candidates: int
    candidates: list[FunnelCandidate]
    groups: list[FunnelGroup]
    selected: list[str]
    hops: list[FunnelHop] = Field(default_factory=list)
    mu_bulk_eV: dict[str, float] = Field(default_factory=dict)  # model -> per-atom bulk metal energy
    e_host_eV: dict[str, float] = Field(default_factory=dict)
    wall_s: float
    # relaxations per minute of this pass; None when some came from the cache (a re-run: the rate of
    # loading files is no throughput)
    candidates_per_minute: float | None = None
    n_reused: int = 0  # relaxations loaded from their folders instead of computed
    provenance: Provenance


class StackingCandidate(BaseModel):
    id: str  # shift-ij-dX.XX
    shift_frac: list[float]  # in-plane shift of the upper fragment, fractions of the cell's a and b
    distance_A: float  # start gap between the facing atomic planes
    energy_eV: dict[str, float]  # model -> relaxed MLIP total energy
    final_gap_A: dict[str, float]  # model -> gap between the facing atomic planes after the relaxation
    group: str = ""
    unphysical: str | None = None  # overlapping atoms after a model's relaxation: in no group, never chosen


class StackingGroup(BaseModel):
    label: str  # the id of its lowest member on the first model
    members: list[str]
    e_min_eV: dict[str, float]  # model -> lowest total energy in the group
    structure: dict[str, Any]  # the first model's relaxed geometry of that member: a DFT start
    selected: bool = False


class StackingScreenDoc(BaseModel):
    """The stacking funnel's MLIP stage: registries x interlayer distances of a two-fragment stack relaxed on
    MLIPs, grouped into distinct minima and ranked. ``chosen`` is the host the campaign's chain then runs on; the
    other selected groups get DFT checks (StackingCheckDoc). Every energy here is an MLIP energy."""

    schema_version: int = SCHEMA_VERSION
    doc_type: Literal["stacking_screen"] = "stacking_screen"
    system: str
    models: list[str]
    window_eV: float
    selection_rule: str
    candidates: list[StackingCandidate]
    groups: list[StackingGroup]
    selected: list[str]
    chosen: str
    builder_gap_A: float  # the builder's own gap, for comparison with the chosen one
    # rows: the two in-plane vectors (fractions of the cell's a and b) the shifts' grid spans
    registry_cell_frac: list[list[float]] = [[1.0, 0.0], [0.0, 1.0]]
    wall_s: float
    n_reused: int = 0
    provenance: Provenance


class StackingCheckDoc(BaseModel):
    """A selected stacking other than the chosen host, relaxed and computed with the host's settings: is the
    chosen stacking also the lower one at the engine's level?"""

    schema_version: int = SCHEMA_VERSION
    doc_type: Literal["stacking_check"] = "stacking_check"
    system: str
    stacking: str  # the group label
    chosen: str
    e_chosen_eV: float  # the host static's energy
    e_stacking_eV: float
    delta_eV: float  # stacking minus chosen: negative = the MLIP's choice was not the lowest here
    mlip_delta_eV: dict[str, float]  # model -> the same difference in the screen (MLIP + D3 on every candidate)
    structure: dict[str, Any]
    provenance: Provenance


class FunnelAgreementDoc(BaseModel):
    """MLIP ranking against the DFT results of the selected minima."""

    schema_version: int = SCHEMA_VERSION
    doc_type: Literal["funnel_agreement"] = "funnel_agreement"
    system: str
    ion: str
    model: str
    sites: list[str]
    mlip_e_ads_bulk_eV: list[float | None]
    dft_e_ads_bulk_eV: list[float | None]
    spearman: float | None  # rank correlation over the sites both computed (None below 3 sites)
    mlip_best: str
    dft_best: str
    best_agrees: bool
    mean_offset_eV: float | None  # mean(MLIP - DFT) E_ads: the MLIPs' known systematic offset
    provenance: Provenance


class ModelRecord(BaseModel):
    """What the builders made, before any DFT: strain and size are visible up front."""

    schema_version: int = SCHEMA_VERSION
    doc_type: Literal["model"] = "model"
    system: str
    kind: str  # interface | slab | adsorbate | bulk | path
    film: str = ""
    substrate: str = ""
    film_miller: list[int] | None = None
    substrate_miller: list[int] | None = None
    strain_percent: float | None = None  # von Mises
    strain_principal_percent: list[float] | None = None
    strained_side: str = ""
    area_A2: float | None = None
    n_atoms: int
    termination: str = ""
    interlayer_distance_A: float | None = None
    needs_dipole_correction: bool = False
    fixed_atoms: list[int] = Field(default_factory=list)
    fragments: dict[str, list[int]] = Field(default_factory=dict)
    structure: dict[str, Any]
    notes: str = ""
    # spacing of the chosen (hkl) lattice planes in the library cell, so a TEM fringe / XRD peak can be
    # checked against it; None for 2D layers (their c includes the vacuum) or when not known
    film_d_spacing_A: float | None = None
    substrate_d_spacing_A: float | None = None
    paper_plane_note: str = ""  # how the chosen planes relate to a paper's own indexing


def engine_label(provenance: dict) -> str | None:
    """The engine of a result; energy//geometry ("gpaw//mlip:chgnet") when another engine relaxed it."""
    engine = provenance.get("engine")
    return f"{engine}//{provenance['geometry_engine']}" if engine and provenance.get("geometry_engine") else engine
