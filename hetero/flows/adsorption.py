"""The adsorption chain for one host and one ion: host, references, every site, CDD, Bader, NEB.

host slab: relax -> static -> DOS, Bader, work function
references: bulk metal (per atom) and isolated atom, same engine settings family
each distinct site: relax -> static -> DOS, Bader (host/ion fragments), CDD, work function, E_ads
NEB: from the most stable site to the nearest site of another kind, endpoints from the site results
coverage: 2..n ions on the copies of the most stable (or a named) site -> average E_ads, OCV profile
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from jobflow import Flow, Maker, Response, job
from pymatgen.core import Lattice, Structure

from hetero.analysis.descriptors import endpoint_host_change
from hetero.engines.base import Capability, Engine
from hetero.engines.settings import ModelFacts
from hetero.flows.jobs import (
    CddMaker,
    NebMaker,
    RelaxMaker,
    StaticMaker,
    adsorption_job,
    bader_job,
    band_on_geometry_engine,
    band_single_points_job,
    coverage_doc_job,
    dos_job,
    elf_change_job,
    host_check_doc_job,
    reference_energy_job,
    workfunction_job,
)
from hetero.schemas import HOST_REARRANGED_A, NOT_RUN_KEY

ALL_STEPS = ("relax", "static", "dos", "bader", "cdd", "workfunction", "elf", "adsorption", "neb", "coverage")
# steps a run may put off (`hetero run --skip-step`) and add later in the same run folder: each only reads a
# finished static or adsorption result, so leaving it out changes no other task
DEFERRABLE_STEPS = ("dos", "bader", "cdd", "workfunction", "neb", "coverage")

# what each step needs from the engine: a flow asking for more than its engine gives fails when built
STEP_NEEDS: dict[str, set[Capability]] = {
    "relax": {Capability.RELAX},
    "static": {Capability.ENERGY_FORCES},
    "dos": {Capability.DOS},
    "bader": {Capability.DENSITY, Capability.ALL_ELECTRON_DENSITY},
    "cdd": {Capability.DENSITY},
    "workfunction": {Capability.POTENTIAL},
    "elf": {Capability.ELF},
    "adsorption": {Capability.RELAX},
    "neb": {Capability.NEB},
    "coverage": {Capability.RELAX},
}


def steps_engine_cannot_run(engine: Engine, steps) -> dict[str, str]:
    """step -> what the engine lacks for it (empty when the engine can run every step)."""
    out = {}
    for step in steps:
        missing = [c.value for c in STEP_NEEDS.get(step, set()) if c not in engine.capabilities]
        if missing:
            out[step] = ", ".join(missing)
    return out


def _fixed(structure: Structure) -> list[int]:
    sd = structure.site_properties.get("selective_dynamics")
    return [i for i, f in enumerate(sd) if not any(f)] if sd else []


def isolated_atom(element: str, box_A: float) -> Structure:
    # slightly non-cubic box: avoids spurious degeneracies of a spherical atom in a cubic cell
    return Structure(Lattice.orthorhombic(box_A, box_A + 0.5, box_A + 1.0), [element], [[0.5, 0.5, 0.5]])


@dataclass
class AdsorptionFlowMaker(Maker):
    """The chain for one host and one ion on one engine; ``facts`` are the host model's (hetero.engines.settings.ModelFacts)."""

    name: str = "adsorption"
    engine: Engine | None = None
    facts: dict = field(default_factory=dict)
    steps: tuple[str, ...] = ALL_STEPS
    references: tuple[str, ...] = ("bulk", "atom")
    neb_settings: dict = field(default_factory=dict)
    # coverage series: max_ions (default 4), site ("best" or a label), min_separation_A (default from radii)
    coverage_settings: dict = field(default_factory=dict)
    # screening funnel (hetero.flows.funnel): MLIP-rank every site + random starts, DFT on the distinct best
    funnel: dict = field(default_factory=dict)
    # geometries from another engine (an MLIP): every relaxation runs there, statics and analyses on `engine`
    geometry_engine: Engine | None = None
    # listed in `steps` but not run now (DEFERRABLE_STEPS): the statics still write what they would need, so
    # a later run with them reuses every static instead of repeating it
    deferred_steps: tuple[str, ...] = ()
    # "all": a CDD for every adsorbed site; "best": only for the lowest-energy site, chosen once all site statics
    # have finished (the fragments' statics are the costly part of a CDD)
    cdd_sites: str = "all"
    # "all": every static writes the ELF (step "elf"); "host": only the bare host's
    elf_sites: str = "all"

    def _runs(self, step: str) -> bool:
        return step in self.steps and step not in self.deferred_steps

    def _relax_maker(self, facts: dict, cell: bool = False) -> RelaxMaker:
        return RelaxMaker(engine=self.geometry_engine or self.engine, facts=facts, cell=cell)

    def _static_maker(self, facts: dict, outputs: tuple[str, ...]) -> StaticMaker:
        geometry = self.geometry_engine.label if self.geometry_engine is not None else ""
        return StaticMaker(engine=self.engine, facts=facts, outputs=outputs, geometry_engine=geometry)

    def make(
        self,
        host: Structure,
        system: str,
        ion: str,
        sites: list[dict],
        run_root: str,
        ion_bulk: Structure | None = None,
        host_fragments: dict[str, list[int]] | None = None,
        stacking: dict | None = None,
    ) -> Flow:
        """`sites`: [{"label": str, "structure": Structure with the ion last, "surface": bool}, ...].

        `host_fragments` (e.g. {"film": [...], "substrate": [...]} of an interface model) adds the
        interface's own CDD, per-fragment Bader and per-fragment DOS to the host analyses.
        `stacking`: the stacking funnel's StackingScreenDoc (dict) that chose `host`: stored, and its other
        selected stackings checked against the host static (hetero.flows.stacking).
        """
        lacking = steps_engine_cannot_run(self.engine, self.steps)
        if lacking:
            self.engine.require(set().union(*(STEP_NEEDS[s] for s in lacking)), f"steps {sorted(lacking)}")
        # every energy of one E_ads uses the same functional: dispersion is decided once, from the host
        facts = ModelFacts(**self.facts)
        jobs = []
        relax = self._relax_maker(facts.model_dump())
        static = self._static_maker(facts.model_dump(), self._static_outputs())

        host_relax = relax.make(host, system, "host", run_root)
        host_relax.name = "relax host"
        host_static = static.make(host_relax.output.structure, system, "host", run_root)
        host_static.name = "static host"
        jobs += [host_relax, host_static]
        jobs += self._analyses(host_static, host_fragments, run_root, "host", elf_change=True)
        if stacking is not None:
            from hetero.flows.stacking import stacking_checks, stacking_screen_doc_job

            screen = stacking_screen_doc_job(stacking)
            screen.name = "stacking screen (MLIP)"
            check = stacking_checks(stacking, host_static.output, self.engine, facts.model_dump(), system, run_root,
                                    geometry_engine=self.geometry_engine)
            check.name = "stacking checks"
            jobs += [screen, check]

        mu = {"bulk": None, "atom": None}
        if "bulk" in self.references and ion_bulk is not None:
            # the metal relaxed (cell and positions) with the campaign's settings, then a static run
            bulk_facts = facts.derive(kind="bulk", asymmetric=False).model_dump()
            bulk_relax = self._relax_maker(bulk_facts, cell=True).make(ion_bulk, f"{ion}-bulk", "reference", run_root)
            bulk_relax.name = f"relax {ion} bulk metal (cell)"
            bulk_static = self._static_maker(bulk_facts, ()).make(
                bulk_relax.output.structure, f"{ion}-bulk", "reference", run_root)
            bulk_static.name = f"static {ion} bulk metal"
            mu_bulk = reference_energy_job(bulk_static.output, len(ion_bulk))
            mu_bulk.name = f"mu {ion} bulk"
            jobs += [bulk_relax, bulk_static, mu_bulk]
            mu["bulk"] = mu_bulk.output
        if "atom" in self.references:
            atom_facts = facts.derive(kind="atom", asymmetric=False).model_dump()
            box = float(self.engine.neutral["atom_box_A"])
            atom_static = StaticMaker(engine=self.engine, facts=atom_facts, outputs=()).make(
                isolated_atom(ion, box), f"{ion}-atom", "reference", run_root
            )
            atom_static.name = f"static {ion} atom"
            mu_atom = reference_energy_job(atom_static.output, 1)
            mu_atom.name = f"mu {ion} atom"
            jobs += [atom_static, mu_atom]
            mu["atom"] = mu_atom.output

        catalogue = [s["site"].as_dict() for s in sites]
        if self.funnel and self._runs("adsorption"):  # a host-only campaign's funnel is its stacking screen
            from hetero.flows.funnel import funnel_dft_stage, mlip_screen_job

            screen = mlip_screen_job(host, ion, catalogue, system, run_root, self.funnel,
                                     ion_bulk=ion_bulk, neb_settings=self.neb_settings, with_hops="neb" in self.steps,
                                     facts=facts.model_dump())
            screen.name = f"MLIP screen {ion} ({', '.join(self.funnel.get('models', ['chgnet']))})"
            stage = funnel_dft_stage(screen.output, self, host_static.output, mu, host, system, ion, run_root,
                                     host_fragments, catalogue)
            stage.name = "DFT on the selected minima"
            jobs += [screen, stage]
            return Flow(jobs, output=stage.output, name=f"{system} + {ion} (funnel)")
        site_jobs, ads_outputs = self.site_jobs(sites, host, host_static.output, mu, system, ion, run_root, host_fragments,
                                                catalogue=catalogue)
        jobs += site_jobs
        return Flow(jobs, output=ads_outputs, name=f"{system} + {ion}")

    def site_jobs(self, sites: list[dict], host: Structure, host_static, mu: dict, system: str, ion: str,
                  run_root: str, host_fragments: dict | None = None, bands: dict | None = None,
                  catalogue: list[dict] | None = None) -> tuple[list, list]:
        """Relax -> static -> analyses -> E_ads for each site, then the NEB and coverage steps.
        ``bands``: MLIP CI-NEB bands by path ("A->B"), the DFT CI-NEB's starting paths.
        ``catalogue``: the builder's sites (Site dicts), to name where each relaxed ion ended."""
        facts = ModelFacts(**self.facts)
        site_facts = facts.derive(asymmetric=True, why={"asymmetric": "ion adsorbed on one side"})
        outputs = self._static_outputs(site=True)
        makers = {
            True: (self._relax_maker(site_facts.model_dump()), self._static_maker(site_facts.model_dump(), outputs)),
            False: (self._relax_maker(facts.model_dump()), self._static_maker(facts.model_dump(), outputs)),
        }
        jobs, ads_outputs, statics = [], [], {}
        for site in sites:
            s: Structure = site["structure"]
            label = f"{ion}@{site['label']}"
            ion_index = len(s) - 1
            frags = {"host": list(range(len(s) - 1)), "ion": [ion_index]}
            dos_frags = {**host_fragments, "ion": [ion_index]} if host_fragments else frags
            # an ion in the gap of a stack leaves the stack's own (a)symmetry; on a surface it breaks it
            r_maker, s_maker = makers[bool(site.get("surface", not site["label"].startswith("gap-")))]
            r = r_maker.make(s, system, label, run_root)
            r.name = f"relax {label}"
            st = s_maker.make(r.output.structure, system, label, run_root)
            st.name = f"static {label}"
            jobs += [r, st]
            jobs += self._analyses(st, frags, run_root, label, dos_frags, cdd=self.cdd_sites == "all")
            statics[site["label"]] = st.output
            if self._runs("adsorption"):
                ads = adsorption_job(
                    st.output, host_static, ion, site["label"], mu["bulk"], mu["atom"], ion_index,
                    start_cart=s.cart_coords[ion_index].tolist(), catalogue=catalogue,
                )
                ads.name = f"E_ads {label}"
                jobs.append(ads)
                ads_outputs.append(ads.output)
        check = None
        if self._runs("adsorption") and ads_outputs:
            check = ion_free_host_checks(ads_outputs, host_static, self.engine, facts.model_dump(), system, run_root,
                                         geometry_engine=self.geometry_engine)
            check.name = "ion-free host checks"
            jobs.append(check)
        if self._runs("cdd") and self.cdd_sites == "best" and statics:
            pick = cdd_of_best_site(statics, self.engine, run_root)
            pick.name = "select CDD site"
            jobs.append(pick)
        if self._runs("neb") and len(ads_outputs) >= 2:
            pick = neb_from_best_site(ads_outputs, self.engine, site_facts.model_dump(), _fixed(host), system, ion,
                                      run_root, self.neb_settings, bands, band_engine=self.geometry_engine,
                                      host_checks=check.output["checks"] if check is not None else None)
            pick.name = "select NEB path"
            jobs.append(pick)
        if self._runs("coverage") and ads_outputs:
            cov = coverage_series(
                ads_outputs, host_static, mu["bulk"], mu["atom"], self.engine, site_facts.model_dump(),
                _fixed(host), system, ion, run_root, self.coverage_settings, geometry_engine=self.geometry_engine,
            )
            cov.name = f"coverage series {ion}"
            jobs.append(cov)
        return jobs, ads_outputs

    def _static_outputs(self, site: bool = False) -> tuple[str, ...]:
        pairs = (("density", "bader"), ("density", "cdd"), ("potential", "workfunction"), ("dos", "dos"), ("elf", "elf"))
        outputs = tuple(dict.fromkeys(o for o, step in pairs if step in self.steps))
        return tuple(o for o in outputs if o != "elf") if site and self.elf_sites == "host" else outputs

    def _analyses(self, static_job, fragments, run_root, label, dos_fragments=None, cdd: bool = True,
                  elf_change: bool = False) -> list:
        """`elf_change`: an interface's ELF before/after (needs the `elf` step and an engine that writes the
        kinetic-energy density; with a CDD its fragment statics write both)."""
        out = []
        two = bool(fragments) and len(fragments) == 2
        elf_change = (elf_change and two and self._runs("elf")
                      and Capability.KINETIC_ENERGY_DENSITY in self.engine.capabilities)
        if self._runs("dos"):
            j = dos_job(static_job.output, dos_fragments or fragments)
            j.name = f"DOS {label}"
            out.append(j)
        if self._runs("bader"):
            j = bader_job(static_job.output, fragments, self.engine)
            j.name = f"Bader {label}"
            out.append(j)
        if self._runs("workfunction"):
            j = workfunction_job(static_job.output)
            j.name = f"work function {label}"
            out.append(j)
        cdd_job = None
        if cdd and self._runs("cdd") and two:
            cdd_job = CddMaker(engine=self.engine, fragment_elf=elf_change).make(static_job.output, fragments, run_root)
            cdd_job.name = f"CDD {label}"
            out.append(cdd_job)
        if elf_change:
            j = elf_change_job(static_job.output, fragments, self.engine, run_root,
                               cdd_job.output["interface_z_A"] if cdd_job is not None else None)
            j.name = f"ELF before/after {label}"
            out.append(j)
        return out


@job
def ion_free_host_checks(ads_docs: list[dict], host_static: dict, engine: Engine, facts: dict, system: str,
                         run_root: str, geometry_engine: Engine | None = None):
    """For each single-ion site whose host rearranged (a host atom moved > HOST_REARRANGED_A): the ion removed, the
    host relaxed again (on `geometry_engine` when given) and a static with the bare host's settings. A displacement
    alone cannot tell a host that found a lower state of its own (the strained V2O5 layer: 6.6 eV below, GPAW) from a
    large local response to the ion (Cu2V2O7: 0.26 eV above); the energies can."""
    flagged = [d for d in ads_docs if d and d.get("n_ions", 1) == 1
               and (d.get("host_max_shift_A") or 0.0) > HOST_REARRANGED_A]
    if not flagged:
        return {"checked": [], "checks": []}
    relax = RelaxMaker(engine=geometry_engine or engine, facts=facts)
    static = StaticMaker(engine=engine, facts=facts, outputs=(),
                         geometry_engine=geometry_engine.label if geometry_engine is not None else "")
    jobs, docs = [], []
    for ads in flagged:
        s = Structure.from_dict(ads["structure"])
        s.remove_sites([len(s) - 1])  # the ion is the last atom
        label = f"host-from-{ads['ion']}@{ads['site']}"
        r = relax.make(s, system, label, run_root)
        r.name = f"relax {label}"
        st = static.make(r.output.structure, system, label, run_root)
        st.name = f"static {label}"
        doc = host_check_doc_job(st.output, host_static, ads)
        doc.name = f"host check {ads['ion']}@{ads['site']}"
        jobs += [r, st, doc]
        docs.append(doc.output)
    # a detour, not an addition: a job reading "checks" (the NEB's choice of ends) then waits for them on every
    # manager (jobflow-remote gives only a detour's jobs to the children as parents)
    return Response(detour=Flow(jobs), output={"checked": [d["site"] for d in flagged], "checks": docs})


@job
def cdd_of_best_site(statics: dict[str, dict], engine: Engine, run_root: str):
    """Adds the CDD (host | ion fragments) of the site whose static has the lowest energy (every site static holds
    the same atoms, so that is also the lowest E_ads); ties go to the first label in sorted order."""
    best = min(sorted(statics), key=lambda label: statics[label]["energy_eV"])
    calc = statics[best]
    n = len(calc["structure"]["sites"])
    cdd = CddMaker(engine=engine).make(calc, {"host": list(range(n - 1)), "ion": [n - 1]}, run_root)
    cdd.name = f"CDD {calc['label']}"
    return Response(addition=Flow([cdd]), output={"site": best})


def neb_endpoints(ads_docs: list[dict], host_checks: list[dict] | None = None) -> tuple[dict, dict | None, str]:
    """The hop a CI-NEB measures: from the most stable site to the nearest other minimum (ion > 0.5 A away) on the
    same host state. Two ends share it when no host atom moved > HOST_REARRANGED_A between them, or when each end's
    host is the bare host's state: it moved less than that from the bare host, or its ion-free host check relaxed
    back there (`host_checks`: HostCheckDoc dicts). Endpoints on different host states give a band through the
    host's own change, not a migration barrier (the strained V2O5 layer: ends 2.7 eV apart).
    Returns (best, end, "") or (best, None, why no hop was chosen)."""
    returned = {c["site"] for c in host_checks or [] if (c.get("remaining_shift_A") or 0.0) <= HOST_REARRANGED_A}

    def on_bare_host(d: dict) -> bool:
        return (d.get("host_max_shift_A") or 0.0) <= HOST_REARRANGED_A or d["site"] in returned

    docs = sorted((d for d in ads_docs if d), key=lambda d: d["e_total_eV"])
    best = docs[0]
    s0 = Structure.from_dict(best["structure"])
    ion_index = len(s0) - 1
    apart, host_change = {}, {}
    for d in docs[1:]:
        s1 = Structure.from_dict(d["structure"])
        step = s1.frac_coords[ion_index] - s0.frac_coords[ion_index]
        step -= np.round(step)
        apart[d["site"]] = float(np.linalg.norm(s0.lattice.get_cartesian_coords(step)))
        host_change[d["site"]] = endpoint_host_change(s0, s1, ion_index)
    others = [d for d in docs[1:] if apart[d["site"]] > 0.5]  # a site that relaxed onto best is no path
    if not others:
        listed = ", ".join(d["site"] for d in docs[1:]) or "no other site"
        return best, None, (f"neb: every other site ({listed}) relaxed onto {best['site']} (ion within 0.5 A): one "
                            "minimum, no path between two; add sites to get one")
    same_host = [d for d in others if (host_change[d["site"]] or 0.0) <= HOST_REARRANGED_A
                 or (on_bare_host(best) and on_bare_host(d))]
    if not same_host:
        listed = ", ".join(f"{d['site']} {host_change[d['site']]:.1f} A" for d in others)
        return best, None, (f"neb: no other minimum shares {best['site']}'s host state (largest host-atom move between "
                            f"the ends: {listed}; > {HOST_REARRANGED_A} A), so a band would measure the host's change, "
                            "not the ion's hop; start from the lowest host found (model.host_from) to get sites on "
                            "one host")
    return best, min(same_host, key=lambda d: apart[d["site"]]), ""


@job
def neb_from_best_site(
    ads_docs: list[dict], engine: Engine, facts: dict, fixed: list[int], system: str, ion: str, run_root: str,
    neb_settings: dict | None = None, bands: dict | None = None, band_engine: Engine | None = None,
    host_checks: list[dict] | None = None,
):
    """Adds a CI-NEB from the most stable site to the nearest relaxed site of another kind. With a `band_engine`
    (the MLIP of a DFT//MLIP run) the band is optimised there and `engine` gives its moving images single points."""
    best, end, why_not = neb_endpoints(ads_docs, host_checks)
    if end is None:  # said after the run (`hetero run` prints every NOT_RUN_KEY of the store)
        return {"path": None, NOT_RUN_KEY: why_not}
    ion_index = len(best["structure"]["sites"]) - 1
    band = None
    for path, images in (bands or {}).items():  # an MLIP band for this hop: the DFT CI-NEB starts from it
        a, b = path.split("->")
        if (a, b) == (best["site"], end["site"]):
            band = images
        elif (b, a) == (best["site"], end["site"]):
            band = list(reversed(images))
    path = f"{best['site']}->{end['site']}"
    if band_engine is not None:
        return Response(addition=_single_points_on_mlip_band(best, end, ion_index, fixed, band_engine, engine, facts,
                                                              system, ion, run_root, neb_settings, band),
                        output={"path": path})
    neb = NebMaker(engine=engine, facts=facts, neb_settings=neb_settings or {}, initial_band=band).make(
        {**best, "site": best["site"]}, {**end, "site": end["site"]}, ion_index, fixed, system, ion, run_root
    )
    neb.name = f"CI-NEB {ion} {path}"
    return Response(addition=Flow([neb]), output={"path": path})


def _single_points_on_mlip_band(best: dict, end: dict, ion_index: int, fixed: list[int], band_engine: Engine,
                                engine: Engine, facts: dict, system: str, ion: str, run_root: str,
                                neb_settings: dict | None, initial_band: list | None) -> Flow:
    """DFT//MLIP migration: the MLIP CI-NEB between the endpoints the MLIP relaxed (run here: minutes), then a DFT
    static of each moving image (the costly part, one job each, so a killed run keeps the finished images)."""
    band = band_on_geometry_engine(best, end, ion_index, fixed, band_engine, facts, system, run_root, neb_settings,
                                   initial_band)
    static = StaticMaker(engine=engine, facts=facts, outputs=(), geometry_engine=band["engine"])
    label = f"neb-{best['site']}-{end['site']}"
    jobs = []
    for k, image in enumerate(band["images"][1:-1], start=1):
        st = static.make(image, system, f"{label}-image{k}", run_root)
        st.name = f"static {ion} {best['site']}->{end['site']} image {k}"
        jobs.append(st)
    doc = band_single_points_job(band, [j.output for j in jobs], best, end, ion_index, system, ion)
    doc.name = f"NEB {ion} {best['site']}->{end['site']} ({engine.label}//{band['engine']})"
    return Flow(jobs + [doc])


@job
def coverage_series(
    ads_docs: list[dict], host_calc: dict, mu_bulk: float | None, mu_atom: float | None, engine: Engine,
    facts: dict, fixed: list[int], system: str, ion: str, run_root: str, settings: dict | None = None,
    geometry_engine: Engine | None = None,
):
    """Adds relax + static + E_ads for 2..n ions on the copies of one site, then the coverage document
    (relaxations on `geometry_engine` when given, as every relaxation of a DFT//MLIP run).

    n = 1 is the site's own adsorption result (taken, not recomputed); n = 0 is the host.
    """
    from hetero.builders.sites import coverage_models, default_ion_separation

    settings = dict(settings or {})
    want = settings.get("site", "best")
    docs = [d for d in ads_docs if d]
    if want == "best":
        one = min(docs, key=lambda d: d["e_total_eV"])
    else:
        hits = [d for d in docs if d["site"] == want]
        if not hits:
            raise ValueError(f"coverage.site {want!r} has no adsorption result; sites: {[d['site'] for d in docs]}")
        one = hits[0]
    start = Structure.from_dict(one["structure"])
    host = Structure.from_dict(host_calc["structure"])
    max_ions = int(settings.get("max_ions", 4))
    min_sep = settings.get("min_separation_A")
    min_sep = default_ion_separation(ion) if min_sep is None else float(min_sep)
    intercalated = one["site"].startswith("gap-")
    models = coverage_models(host, ion, start, max_ions, min_sep, keep_height=intercalated) if max_ions >= 2 else []
    n_possible = 1 + len(models)
    stopped = (
        f"max_ions={max_ions} reached" if n_possible >= max_ions
        else f"no further copy of {one['site']} is {min_sep:.2f} A or more from the placed ions in this cell "
        f"(a larger surface_supercell holds more)"
    )
    relax = RelaxMaker(engine=geometry_engine or engine, facts=facts)
    static = StaticMaker(engine=engine, facts=facts, outputs=(),
                         geometry_engine=geometry_engine.label if geometry_engine is not None else "")
    jobs, outs = [], []
    for s in models:
        n = len(s) - len(host)
        s.add_site_property("selective_dynamics", [[i not in fixed] * 3 for i in range(len(s))])
        label = f"{n}{ion}@{one['site']}"
        r = relax.make(s, system, label, run_root)
        r.name = f"relax {label}"
        st = static.make(r.output.structure, system, label, run_root)
        st.name = f"static {label}"
        ads = adsorption_job(st.output, host_calc, ion, one["site"], mu_bulk, mu_atom, len(s) - 1, n_ions=n)
        ads.name = f"E_ads {label}"
        jobs += [r, st, ads]
        outs.append(ads.output)
    doc = coverage_doc_job(host_calc, [one] + outs, ion, one["site"], mu_bulk, mu_atom, min_sep, stopped)
    doc.name = f"coverage profile {ion}@{one['site']}"
    jobs.append(doc)
    return Response(addition=Flow(jobs), output={"site": one["site"], "n_max": n_possible})
