"""The stacking funnel: which registry and interlayer distance of a two-fragment stack the chain runs on.

A builder puts the film at one registry and one gap (the junction presets: 2.0 A, the vdW stacks 3.2 A), and a
DFT relaxation only finds the minimum nearest that start. Here every registry of a grid x every start distance
is relaxed on the campaign's MLIPs (cached per candidate, so a re-run only loads them), the results grouped into
distinct minima, and the lowest (first model) becomes the host of the whole chain: sites, references and
analyses are then built on it. The other minima within the window (union over models, never the best alone)
get a relaxation and a static with the host's settings after the host static (``stacking_checks``), so the
engine's own ordering of the MLIP's picks is on record (StackingCheckDoc).

Runs when the campaign is built, before the flow: the sites are placed on the chosen stacking. With `hetero
submit` that is where the submission runs (MLIP relaxations on the login node, once: cached in the run folder).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from jobflow import Flow, Response, job
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure

from hetero.analysis.descriptors import unphysical_contact
from hetero.builders.candidates import select_for_dft
from hetero.builders.interfaces import fragment_gap, registry_cell, stacking_candidates
from hetero.engines.base import Engine
from hetero.engines.settings import ModelFacts
from hetero.flows.jobs import RelaxMaker, StaticMaker, _base_dir, _plain
from hetero.schemas import (
    Provenance,
    StackingCandidate,
    StackingCheckDoc,
    StackingGroup,
    StackingScreenDoc,
    plain_structure_dict,
)

STACKING_KEYS = {"grid", "distances_A", "max_dft", "registries", "models"}
# "interface": shifts span the cell of distinct registries (hetero.builders.interfaces.registry_cell); "cell": the
# model cell itself, as before it existed (a supercell then repeats registries)
REGISTRY_DOMAINS = ("interface", "cell")
# relaxed candidates within this energy of each other, with matching structures, are one minimum
SAME_MINIMUM_eV = 0.02


def check_stacking(settings: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults and checks of ``funnel: {stacking: {...}}`` (errors name the key and the fix). Default distances
    span a bonded contact (2.0 A, the junction presets' own) to a van der Waals gap (3.4 A)."""
    settings = dict(settings or {})
    bad = set(settings) - STACKING_KEYS
    if bad:
        raise ValueError(f"unknown funnel.stacking keys {sorted(bad)}; valid: {', '.join(sorted(STACKING_KEYS))}")
    out = {"grid": 3, "distances_A": [2.0, 2.7, 3.4], "max_dft": 3, "registries": "interface", **settings}
    if out.get("models") is not None:
        from hetero.flows.funnel import mlip_model_names

        out["models"] = mlip_model_names(out["models"], "funnel.stacking.models", " (default: the funnel's models)")
    if out["registries"] not in REGISTRY_DOMAINS:
        raise ValueError(f"funnel.stacking.registries {out['registries']!r}: give 'interface' (shifts over the cell of "
                         "distinct registries, the default) or 'cell' (over the model cell)")
    if not (isinstance(out["grid"], int) and 1 <= out["grid"] <= 8):
        raise ValueError(f"funnel.stacking.grid {out['grid']!r}: give the shifts per in-plane axis, 1-8 (default 3)")
    d = out["distances_A"]
    if not (isinstance(d, list) and d and all(isinstance(x, (int, float)) and 1.0 <= x <= 6.0 for x in d)):
        raise ValueError(f"funnel.stacking.distances_A {d!r}: give a list of start gaps in A between 1 and 6, "
                         "e.g. [2.0, 2.7, 3.4]")
    if not (isinstance(out["max_dft"], int) and 1 <= out["max_dft"] <= 20):
        raise ValueError(f"funnel.stacking.max_dft {out['max_dft']!r}: give how many stackings DFT sees, 1-20 "
                         "(the chosen host counts)")
    return out


def _group(cands: list[StackingCandidate], finals: dict[str, Structure], first: str) -> dict[str, list[str]]:
    """Candidates in one minimum: first-model energies within SAME_MINIMUM_eV and matching relaxed structures
    (pymatgen's StructureMatcher, same lattice: no supercells or scaling)."""
    matcher = StructureMatcher(ltol=0.05, stol=0.2, angle_tol=2, primitive_cell=False, scale=False,
                               attempt_supercell=False)
    by_id = {c.id: c for c in cands}
    groups: dict[str, list[str]] = {}
    for c in sorted(cands, key=lambda c: c.energy_eV[first]):
        for label, members in groups.items():
            if abs(by_id[label].energy_eV[first] - c.energy_eV[first]) <= SAME_MINIMUM_eV and matcher.fit(finals[label], finals[c.id]):
                members.append(c.id)
                break
        else:
            groups[c.id] = [c.id]
    return groups


def screen_stackings(stack: Structure, fragments: dict[str, list[int]], system: str, run_root: str,
                     funnel: dict[str, Any], facts: ModelFacts) -> tuple[StackingScreenDoc, Structure]:
    """(document, the chosen stacking's MLIP-relaxed structure with the stack's site properties)."""
    from hetero.engines import get_engine
    from hetero.flows.funnel import _Progress, _relax_all, check_funnel

    cfg = check_funnel(funnel)
    st = check_stacking(cfg.get("stacking"))
    # the start gaps reach van der Waals distances: D3 on every candidate, or a bonded contact wins by default
    facts = facts.derive(van_der_waals=True, why={"van_der_waals": "stacking screen: start gaps up to a van der "
                                                                    "Waals distance, D3 on every candidate"})
    domain = registry_cell(stack, fragments) if st["registries"] == "interface" else np.eye(2)
    starts = stacking_candidates(stack, fragments, st["grid"], st["distances_A"], domain)
    models = st.get("models") or cfg["models"]  # a stack relaxes slowly: the stacking stage may use fewer MLIPs
    t0 = time.time()
    energies: dict[str, dict[str, float]] = {c["id"]: {} for c in starts}
    gaps: dict[str, dict[str, float]] = {c["id"]: {} for c in starts}
    broken: dict[str, str] = {}
    finals: dict[str, Structure] = {}
    n_reused = 0
    progress = _Progress(len(starts) * len(models), f"stacking screen {system}")
    labels = []
    for model in models:
        eng = get_engine(f"mlip:{model}", cfg["mlip_preset"])
        labels.append(eng.label)
        folders = [_base_dir(run_root, system, f"stacking-{model}-{c['id']}") for c in starts]
        results = _relax_all(eng, [c["structure"] for c in starts], folders, progress.tick, facts)
        n_reused += sum(1 for r in results if r.cached)
        for c, res in zip(starts, results):
            final = Structure.from_dict(res.structure)
            energies[c["id"]][eng.label] = float(res.energy_eV)
            gaps[c["id"]][eng.label] = fragment_gap(final, fragments)
            bad = unphysical_contact(final)
            if bad and c["id"] not in broken:
                broken[c["id"]] = f"{eng.label}: {bad}"
            if model == models[0]:
                props = {k: list(v) for k, v in c["structure"].site_properties.items()} or None
                finals[c["id"]] = Structure(final.lattice, final.species, final.frac_coords, site_properties=props)
    first = labels[0]
    cands = [StackingCandidate(id=c["id"], shift_frac=c["shift_frac"], distance_A=c["distance_A"],
                               energy_eV=energies[c["id"]], final_gap_A=gaps[c["id"]], unphysical=broken.get(c["id"]))
             for c in starts]
    if len(broken) == len(cands):
        raise ValueError(f"{system}: every stacking relaxation ended with overlapping atoms (e.g. {cands[0].unphysical})")
    grouped = _group([c for c in cands if c.unphysical is None], finals, first)
    by_id = {c.id: c for c in cands}
    groups = []
    for label, members in grouped.items():
        for m in members:
            by_id[m].group = label
        e_min = {model: min(by_id[m].energy_eV[model] for m in members) for model in labels}
        groups.append(StackingGroup(label=label, members=members, e_min_eV=e_min,
                                    structure=plain_structure_dict(finals[label])))
    selected, rule = select_for_dft({g.label: g.e_min_eV for g in groups}, cfg["window_eV"])
    chosen = min(groups, key=lambda g: g.e_min_eV[first]).label
    selected = [chosen] + [g for g in selected if g != chosen]
    if len(selected) > st["max_dft"]:
        selected = selected[: st["max_dft"]]
        rule += f"; capped at max_dft={st['max_dft']} (the chosen host first)"
    for g in groups:
        g.selected = g.label in selected
    doc = StackingScreenDoc(
        system=system, models=labels, window_eV=cfg["window_eV"], selection_rule=rule, candidates=cands,
        groups=sorted(groups, key=lambda g: g.e_min_eV[first]), selected=selected, chosen=chosen,
        builder_gap_A=fragment_gap(stack, fragments), registry_cell_frac=domain.round(6).tolist(), wall_s=time.time() - t0, n_reused=n_reused,
        provenance=Provenance(engine=first, settings={**st, "models": models, "window_eV": cfg["window_eV"],
                                                      "mlip_preset": cfg["mlip_preset"]}),
    )
    return doc, finals[chosen]


@job
@_plain
def stacking_screen_doc_job(doc: dict) -> StackingScreenDoc:
    """Puts the build-time screen into the run's store beside the results it chose the host for."""
    return StackingScreenDoc(**doc)


@job
def stacking_checks(screen: dict, host_static: dict, engine: Engine, facts: dict, system: str, run_root: str,
                    geometry_engine: Engine | None = None):
    """Each selected stacking other than the chosen host: relaxed (on `geometry_engine` when given) and a static
    with the host's settings, then a StackingCheckDoc against the host static."""
    others = [g for g in screen["groups"] if g["selected"] and g["label"] != screen["chosen"]]
    if not others:
        return {"checked": []}
    relax = RelaxMaker(engine=geometry_engine or engine, facts=facts)
    static = StaticMaker(engine=engine, facts=facts, outputs=(),
                         geometry_engine=geometry_engine.label if geometry_engine is not None else "")
    chosen = next(g for g in screen["groups"] if g["label"] == screen["chosen"])
    jobs = []
    for g in others:
        label = f"stacking-{g['label']}"
        r = relax.make(Structure.from_dict(g["structure"]), system, label, run_root)
        r.name = f"relax {label}"
        s = static.make(r.output.structure, system, label, run_root)
        s.name = f"static {label}"
        mlip_delta = {m: g["e_min_eV"][m] - chosen["e_min_eV"][m] for m in g["e_min_eV"] if m in chosen["e_min_eV"]}
        doc = stacking_check_doc_job(s.output, host_static, g["label"], screen["chosen"], mlip_delta)
        doc.name = f"stacking check {g['label']}"
        jobs += [r, s, doc]
    return Response(addition=Flow(jobs), output={"checked": [g["label"] for g in others]})


@job
@_plain
def stacking_check_doc_job(calc: dict, host: dict, stacking: str, chosen: str,
                           mlip_delta: dict[str, float]) -> StackingCheckDoc:
    return StackingCheckDoc(
        system=host["system"], stacking=stacking, chosen=chosen, e_chosen_eV=host["energy_eV"],
        e_stacking_eV=calc["energy_eV"], delta_eV=calc["energy_eV"] - host["energy_eV"],
        mlip_delta_eV=mlip_delta, structure=calc["structure"], provenance=Provenance(**calc["provenance"]),
    )


def stacking_note(doc: StackingScreenDoc) -> str:
    """One sentence for the model record's notes."""
    first = doc.models[0]
    chosen = next(g for g in doc.groups if g.label == doc.chosen)
    best = next(c for c in doc.candidates if c.id == doc.chosen)
    spread = max(g.e_min_eV[first] for g in doc.groups) - chosen.e_min_eV[first]
    return (f" Stacking funnel: {len(doc.candidates)} stacking(s) (registries x start gaps) relaxed on "
            f"{', '.join(doc.models)}, {len(doc.groups)} distinct minima spanning {spread:.2f} eV; host = {doc.chosen} (shift "
            f"{best.shift_frac[0]:.2f} a + {best.shift_frac[1]:.2f} b, gap {best.final_gap_A[first]:.2f} A after "
            f"the MLIP relaxation; builder gap {doc.builder_gap_A:.2f} A); DFT checks on {len(doc.selected) - 1} other(s).")

