"""The screening funnel: rank many cheap candidates on machine-learned potentials, send only the
distinct best to DFT, and start DFT from the MLIP geometries (AdsorbML's recipe, applied to ions on
surfaces and in van der Waals gaps, plus MLIP CI-NEB bands as starting paths for DFT CI-NEB).

MLIP stage (one job): every candidate start (hetero.builders.candidates) relaxed with each model
through the mlip engine (cached per candidate, so a re-run is free), grouped by where the ion ended
(symmetry-aware), ranked; the selection keeps the minima within a window of each model's minimum
(union over models, never top-1 alone) plus any named site; MLIP NEB for hops from the best minimum.
DFT stage (a dynamic job): relax -> static -> analyses -> E_ads for the selected minima only, then the
CI-NEB from the MLIP band, and an agreement document (Spearman, best site kept).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from jobflow import Flow, Response, job
from pymatgen.core import Structure

from hetero.analysis.descriptors import unphysical_contact
from hetero.builders.candidates import (
    classify_final_positions,
    ion_candidates,
    ion_on_relaxed_host,
    merge_flat_basins,
    on_frozen_host,
    select_for_dft,
)
from hetero.builders.images import align_to, interpolate_images
from hetero.builders.sites import Site
from hetero.engines.settings import ModelFacts
from hetero.flows.jobs import _base_dir, _plain
from hetero.schemas import (
    FunnelAgreementDoc,
    FunnelCandidate,
    FunnelDoc,
    FunnelGroup,
    FunnelHop,
    Provenance,
    plain_structure_dict,
)

FUNNEL_KEYS = {"models", "window_eV", "random_starts", "seed", "always", "max_dft_sites", "mlip_preset", "dft_start",
               "mlip_relax", "bfgs_alpha", "dft_relax", "stacking"}
# what the MLIP stage relaxes: the ion alone on the model's relaxed host ("ion"), the ion with the host's free
# atoms ("all"), or the ion alone on surfaces and everything for ions in a van der Waals gap ("auto")
MLIP_RELAX = ("auto", "ion", "all")
# where a selected minimum's DFT relaxation starts: the whole MLIP geometry ("mlip"), or the DFT-relaxed host
# with the ion at its MLIP position ("relaxed_host"). Measured on Na@top-N/VN(001) (research_vn, 17 atoms):
# mlip 451 SCF iterations / 23 force calls, relaxed_host 555 / 27 (Na wanders in the flat basin around N
# either way), so the default stays "mlip"
DFT_STARTS = ("mlip", "relaxed_host")
# what the DFT stage relaxes: every free atom ("all"), or the ion alone on the DFT-relaxed host ("ion": 3 degrees
# of freedom; E_ads then leaves out the host's response to the ion, an upper bound on the binding)
DFT_RELAX = ("all", "ion")


REPRESENTATIVE_TIE_eV = 1e-3
UNPHYSICAL_GROUP = "unphysical"  # the group label of candidates whose relaxation overlapped atoms (never selected)


def cap_selection(selected: list[str], always: list[str], cap: int) -> list[str]:
    """At most ``cap`` groups: the highest window picks go first; a group the campaign names stays."""
    named = [g for g in selected if g in always]
    rest = [g for g in selected if g not in named]
    return rest[: max(cap - len(named), 0)] + named


def group_representative(records: list[FunnelCandidate], group: str, first_model: str) -> tuple[str, str]:
    """(model, candidate id) of a group's DFT start: the first start (sites before random ones) within
    REPRESENTATIVE_TIE_eV of the group's minimum, on the first model that found the group. Equivalent minima
    differ by noise (0.3 meV on VS2 + Li; 0.1 meV between two runs of one start), so a strict minimum flips
    between symmetry-equivalent positions from run to run, and a resumed campaign would recompute its DFT."""
    members = [r for r in records if r.group == group]
    model = first_model if any(r.model == first_model for r in members) else members[0].model
    e_min = min(r.energy_eV for r in members if r.model == model)
    rep = next(r for r in members if r.model == model and r.energy_eV <= e_min + REPRESENTATIVE_TIE_eV)
    return model, rep.id


def mlip_model_names(models: Any, key: str, hint: str = "") -> list[str]:
    """["chgnet", ...] from a campaign's model list ("mlip:" prefixes allowed); an error names `key` otherwise."""
    from hetero.engines.mlip import MODELS

    names = [m.split(":")[-1] for m in models] if isinstance(models, list) else []
    if not names or any(m not in MODELS for m in names):
        raise ValueError(f"{key} {models!r}: use one or both of {', '.join(MODELS)}{hint}")
    return names


def check_funnel(settings: dict[str, Any]) -> dict[str, Any]:
    """Defaults and checks of a campaign's funnel block (errors name the key and the fix)."""
    bad = set(settings) - FUNNEL_KEYS
    if bad:
        raise ValueError(f"unknown funnel keys {sorted(bad)}; valid: {', '.join(sorted(FUNNEL_KEYS))}")
    out = {"models": ["chgnet"], "window_eV": 0.3, "random_starts": 8, "seed": 0, "always": [],
           "max_dft_sites": 6, "mlip_preset": "fast", "dft_start": "mlip", "mlip_relax": "auto", "dft_relax": "all",
           **settings}
    out["models"] = mlip_model_names(out["models"], "funnel.models")
    if not (isinstance(out["window_eV"], (int, float)) and 0 <= out["window_eV"] <= 5):
        raise ValueError(f"funnel.window_eV {out['window_eV']!r}: give an energy window in eV between 0 and 5 (default 0.3)")
    if not (isinstance(out["random_starts"], int) and 0 <= out["random_starts"] <= 500):
        raise ValueError(f"funnel.random_starts {out['random_starts']!r}: give a whole number 0-500")
    if out["mlip_relax"] not in MLIP_RELAX:
        raise ValueError(f"funnel.mlip_relax {out['mlip_relax']!r}: use one of {', '.join(MLIP_RELAX)}")
    alpha = out.get("bfgs_alpha")
    if alpha is not None and not (isinstance(alpha, (int, float)) and 0 < alpha <= 1000):
        raise ValueError(f"funnel.bfgs_alpha {alpha!r}: give BFGS's initial Hessian in eV/A^2 (e.g. 20; ASE's default 70)")
    if out["dft_start"] not in DFT_STARTS:
        raise ValueError(f"funnel.dft_start {out['dft_start']!r}: use one of {', '.join(DFT_STARTS)}")
    if out["dft_relax"] not in DFT_RELAX:
        raise ValueError(f"funnel.dft_relax {out['dft_relax']!r}: use one of {', '.join(DFT_RELAX)}")
    if "stacking" in out:  # registries x distances of a stack (hetero.flows.stacking)
        from hetero.flows.stacking import check_stacking

        out["stacking"] = check_stacking(out["stacking"])
    if out["dft_relax"] == "ion":
        if settings.get("dft_start", "relaxed_host") != "relaxed_host":
            raise ValueError("funnel.dft_relax ion holds the host at its DFT-relaxed geometry: use dft_start: "
                             "relaxed_host (or leave dft_start out), not the whole MLIP geometry")
        out["dft_start"] = "relaxed_host"
    return out


class _Progress:
    """One line per ~10 % of the MLIP stage on stderr: done/total, rate, time left."""

    def __init__(self, total: int, label: str):
        self.total, self.label, self.done, self.t0, self.next = total, label, 0, time.time(), 0

    def tick(self, n: int = 1) -> None:
        import sys

        self.done += n
        if self.done >= self.next or self.done == self.total:
            rate = self.done / max(time.time() - self.t0, 1e-9)
            left = (self.total - self.done) / rate if rate > 0 else float("nan")
            print(f"  {self.label}: {self.done}/{self.total} relaxed ({rate * 60:.1f}/min, ~{left:.0f} s left)",
                  file=sys.stderr, flush=True)
            self.next = self.done + max(1, self.total // 10)


@job
@_plain
def mlip_screen_job(
    host: Structure | dict, ion: str, sites: list[dict], system: str, run_root: str, funnel: dict[str, Any],
    ion_bulk: Structure | dict | None = None, neb_settings: dict | None = None, with_hops: bool = True,
    facts: dict | None = None,
) -> FunnelDoc:
    """``with_hops``: also run the MLIP CI-NEB between the selected minima (only when the campaign has a NEB step)."""
    from hetero.engines import get_engine

    host = host if isinstance(host, Structure) else Structure.from_dict(host)
    site_objs = [Site(**s) for s in sites]
    cfg = check_funnel(funnel)
    cands = ion_candidates(host, ion, site_objs, cfg["random_starts"], cfg["seed"])
    t0 = time.time()
    # the host model's facts, as the DFT stage gets them: a van der Waals stack turns D3 on for the MLIPs too
    host_facts = ModelFacts(**facts) if facts else ModelFacts(kind="slab")
    bulk_facts = host_facts.derive(kind="bulk", asymmetric=False)
    records: list[FunnelCandidate] = []
    finals: dict[tuple[str, str], Structure] = {}
    e_host, mu_bulk = {}, {}
    total = len(cands) * len(cfg["models"])
    n_reused = 0
    progress = _Progress(total, f"MLIP stage {system} + {ion}")
    for model in cfg["models"]:
        # bfgs_alpha: BFGS's initial Hessian for the candidates (unset: ASE's 70 eV/A^2 and unchanged task hashes);
        # 20 took 15 instead of 18 mean steps on 44 Na/VN(001) candidates (benchmarks/bench_funnel.py throughput)
        eng = get_engine(f"mlip:{model}", cfg["mlip_preset"],
                         {"mlip": {"bfgs_alpha": cfg["bfgs_alpha"]}} if cfg.get("bfgs_alpha") else None)
        label = eng.label
        host_res = eng.relax(host, _base_dir(run_root, system, f"funnel-{model}-host"), host_facts)
        e_host[label] = host_res.energy_eV
        starts = mlip_starts(cands, Structure.from_dict(host_res.structure), cfg["mlip_relax"])
        if ion_bulk is not None:
            bulk = ion_bulk if isinstance(ion_bulk, Structure) else Structure.from_dict(ion_bulk)
            r = eng.relax(bulk, _base_dir(run_root, f"{ion}-bulk", f"funnel-{model}"), bulk_facts, cell=True)
            mu_bulk[label] = r.energy_eV / len(bulk)
        folders = [_base_dir(run_root, system, f"funnel-{model}-{c['id']}") for c in cands]
        results = _relax_all(eng, starts, folders, progress.tick, host_facts)
        n_reused += sum(1 for r in results if r.cached)
        for c, res in zip(cands, results):
            final = Structure.from_dict(res.structure)
            start = c["structure"].cart_coords[-1]
            end = final.cart_coords[-1]
            d = final.lattice.get_fractional_coords(end - start)
            d[:2] -= np.round(d[:2])
            finals[(label, c["id"])] = final
            records.append(FunnelCandidate(
                id=c["id"], origin=c["origin"], model=label, energy_eV=res.energy_eV, group="",
                final_ion_cart_A=end.tolist(),
                moved_A=float(np.linalg.norm(final.lattice.get_cartesian_coords([d[0], d[1], 0.0]))),
                converged=res.converged, n_steps=res.n_ionic_steps, unphysical=unphysical_contact(final),
            ))
    # an overlapping pair (SevenNet-0 put Li 0.41 A from O, 25 eV below every other minimum of the V2O5/Cu2V2O7
    # junction) is a broken relaxation, not a minimum: it would win the ranking and send garbage to DFT
    physical = [r for r in records if r.unphysical is None]
    for r in records:
        if r.unphysical is not None:
            r.group = UNPHYSICAL_GROUP
    if not physical:
        raise ValueError(f"{system} + {ion}: every MLIP relaxation ended with overlapping atoms (e.g. "
                         f"{records[0].unphysical}); check the host and the ion's start positions")
    finals_xyz = [np.array(r.final_ion_cart_A) for r in physical]
    labels = classify_final_positions(host, finals_xyz, site_objs)
    labels = merge_flat_basins(host, labels, finals_xyz, [r.energy_eV for r in physical], [r.model for r in physical],
                               site_objs)
    for r, g in zip(physical, labels):
        r.group = g
    groups: dict[str, FunnelGroup] = {}
    first = f"mlip:{cfg['models'][0]}"
    for r in physical:
        g = groups.get(r.group)
        if g is None:
            g = groups[r.group] = FunnelGroup(label=r.group, members=[], e_min_eV={}, structure={})
        if r.id not in g.members:
            g.members.append(r.id)
        g.e_min_eV[r.model] = min(r.energy_eV, g.e_min_eV.get(r.model, np.inf))
    for g in groups.values():
        g.structure = plain_structure_dict(finals[group_representative(records, g.label, first)])
    for label in e_host:
        ranked = sorted((g.e_min_eV[label], g.label) for g in groups.values() if label in g.e_min_eV)
        for i, (_e, name) in enumerate(ranked, start=1):
            groups[name].rank[label] = i
        if label in mu_bulk:
            for g in groups.values():
                if label in g.e_min_eV:
                    g.e_ads_bulk_eV[label] = g.e_min_eV[label] - e_host[label] - mu_bulk[label]
    selected, rule = select_for_dft({g.label: g.e_min_eV for g in groups.values()}, cfg["window_eV"], cfg["always"])
    if len(selected) > cfg["max_dft_sites"]:
        selected = cap_selection(selected, cfg["always"], cfg["max_dft_sites"])
        rule += f"; capped at max_dft_sites={cfg['max_dft_sites']} (named sites kept)"
    for name in selected:
        groups[name].selected = True
    sd = host.site_properties.get("selective_dynamics")
    fixed = [i for i, f in enumerate(sd) if not any(f)] if sd else []
    hops = (_mlip_hops(groups, selected, first, cfg, system, run_root, neb_settings or {}, fixed, host_facts)
            if with_hops else [])
    wall = time.time() - t0
    return FunnelDoc(
        system=system, ion=ion, models=list(e_host), window_eV=cfg["window_eV"], selection_rule=rule,
        n_candidates=len(cands), candidates=records, groups=sorted(groups.values(), key=lambda g: g.rank.get(first, 99)),
        selected=selected, hops=hops, mu_bulk_eV=mu_bulk, e_host_eV=e_host, wall_s=wall,
        candidates_per_minute=None if n_reused else total / max(wall, 1e-9) * 60, n_reused=n_reused,
        provenance=Provenance(engine=first, settings={**cfg, "n_random": cfg["random_starts"]}),
    )


def mlip_starts(cands: list[dict], relaxed_host: Structure, mode: str) -> list[Structure]:
    """The structures the MLIP stage relaxes, by the funnel's mlip_relax mode (see MLIP_RELAX)."""
    if mode == "all":
        return [c["structure"] for c in cands]
    return [c["structure"] if mode == "auto" and c["in_gap"] else on_frozen_host(relaxed_host, c["structure"])
            for c in cands]


def _relax_one(args):
    engine, structure, folder, facts = args
    return engine.relax(structure, folder, facts)


def _relax_all(engine, structures: list[Structure], folders: list, tick=None, facts: ModelFacts | None = None) -> list:
    """MLIP relaxations of the candidates, on HETERO_CORES worker processes of one torch thread each
    (cores are shared: threads inside one model call scale poorly on small cells). Each result is
    cached in its own folder by the engine, so a re-run only loads them."""
    import os

    n = min(int(os.environ.get("HETERO_CORES") or os.cpu_count() or 1), len(structures))
    facts = facts or ModelFacts(kind="slab")
    todo = [(engine, s, f, facts) for s, f in zip(structures, folders)]
    tick = tick or (lambda: None)
    out = []
    if n <= 1 or len(todo) < 4:
        for t in todo:
            out.append(_relax_one(t))
            tick()
        return out
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: a forked torch runtime can deadlock in its thread pools
    with ProcessPoolExecutor(max_workers=n, mp_context=mp.get_context("spawn")) as pool:
        for res in pool.map(_relax_one, todo):
            out.append(res)
            tick()
    return out


def _ion_distance(a: Structure, b: Structure) -> float:
    d = b.frac_coords[-1] - a.frac_coords[-1]
    d -= np.round(d)
    return float(np.linalg.norm(a.lattice.get_cartesian_coords(d)))


def _mlip_hops(groups: dict[str, FunnelGroup], selected: list[str], model: str, cfg: dict, system: str,
               run_root: str, neb_settings: dict, fixed: list[int], facts: ModelFacts) -> list[FunnelHop]:
    """MLIP CI-NEB from the best selected minimum to each other selected minimum: a pre-screen barrier
    and the DFT CI-NEB's starting path."""
    from hetero.analysis.neb import barrier
    from hetero.engines import get_engine

    if len(selected) < 2:
        return []
    eng = get_engine(model, cfg["mlip_preset"])
    best = min(selected, key=lambda g: groups[g].e_min_eV.get(model, np.inf))
    s0 = Structure.from_dict(groups[best].structure)
    n_images = int(neb_settings.get("neb_images", eng.neutral["neb_images"]))
    hops = []
    for other in selected:
        if other == best or model not in groups[other].e_min_eV:
            continue  # a minimum only the other model found: its DFT CI-NEB starts from an interpolated path
        s1 = align_to(s0, Structure.from_dict(groups[other].structure))
        if _ion_distance(s0, s1) < 0.5:
            continue
        images = interpolate_images(s0, s1, n_images)
        for im in images:
            im.add_site_property("selective_dynamics", [[i not in fixed] * 3 for i in range(len(im))])
        res = eng.neb(images, [groups[best].e_min_eV[model], groups[other].e_min_eV[model]],
                      _base_dir(run_root, system, f"funnel-neb-{best}-{other}"), facts,
                      neb={k: v for k, v in neb_settings.items() if k != "neb_images"})
        e_rel = [e - res.energies_eV[0] for e in res.energies_eV]
        hops.append(FunnelHop(path=f"{best}->{other}", model=model, barrier_eV=barrier(e_rel, res.spline_e_eV),
                              converged=res.converged, images=res.images))
    return hops


@job
def funnel_dft_stage(funnel_doc: dict, maker, host_static: dict, mu: dict, host: Structure | dict, system: str,
                     ion: str, run_root: str, host_fragments: dict | None = None, catalogue: list[dict] | None = None):
    """DFT on the selected minima, from their MLIP geometries (or, with dft_start: relaxed_host, from the
    DFT-relaxed host with the ion at its MLIP position); then the NEB and the agreement document."""
    host = host if isinstance(host, Structure) else Structure.from_dict(host)
    groups = {g["label"]: g for g in funnel_doc["groups"]}
    cfg = check_funnel(maker.funnel)
    start = cfg["dft_start"]
    relaxed_host = Structure.from_dict(host_static["structure"])
    sites = []
    for name in funnel_doc["selected"]:
        st = Structure.from_dict(groups[name]["structure"])
        if start == "relaxed_host":
            st = ion_on_relaxed_host(st, relaxed_host)
        if cfg["dft_relax"] == "ion":
            st.add_site_property("selective_dynamics", [[False] * 3] * len(host) + [[True] * 3])
        elif "selective_dynamics" in host.site_properties:
            flags = list(host.site_properties["selective_dynamics"]) + [[True] * 3]
            st.add_site_property("selective_dynamics", flags)
        sites.append({"label": name, "structure": st, "surface": not name.startswith("gap-")})
    bands = {h["path"]: h["images"] for h in funnel_doc.get("hops", [])}
    jobs, ads = maker.site_jobs(sites, host, host_static, mu, system, ion, run_root, host_fragments, bands=bands,
                                catalogue=catalogue)
    agree = funnel_agreement_job(funnel_doc, ads)
    agree.name = "funnel agreement (MLIP vs DFT)"
    jobs.append(agree)
    return Response(addition=Flow(jobs), output={"selected": funnel_doc["selected"]})


@job
def funnel_agreement_job(funnel_doc: dict, ads_docs: list[dict]) -> list[dict]:
    """One agreement document per MLIP of the screen: each model's ranking of the selected minima against DFT (the
    models may disagree with each other, as CHGNet and SevenNet-0 do on the VS2/V2CO2 gap)."""
    docs = [_agreement(funnel_doc, ads_docs, model) for model in funnel_doc["models"]]
    return [d.model_dump() for d in docs if d is not None]


def _agreement(funnel_doc: dict, ads_docs: list[dict], model: str) -> FunnelAgreementDoc | None:
    from scipy.stats import spearmanr

    groups = {g["label"]: g for g in funnel_doc["groups"]}
    dft = {d["site"]: d.get("e_ads_bulk_eV") for d in ads_docs if d}
    sites = [s for s in funnel_doc["selected"] if s in dft]
    mlip = [groups[s]["e_ads_bulk_eV"].get(model) for s in sites]
    ref = [dft[s] for s in sites]
    both = [(m, d) for m, d in zip(mlip, ref) if m is not None and d is not None]
    rho = float(spearmanr(*zip(*both)).statistic) if len(both) >= 3 else None
    e_mlip = {s: groups[s]["e_min_eV"][model] for s in sites if model in groups[s]["e_min_eV"]}
    e_dft = {d["site"]: d["e_total_eV"] for d in ads_docs if d and d["site"] in sites}
    if not e_mlip or not e_dft:  # this model reached none of the minima DFT ran
        return None
    mlip_best = min(e_mlip, key=e_mlip.get)
    dft_best = min(e_dft, key=e_dft.get)
    return FunnelAgreementDoc(
        system=funnel_doc["system"], ion=funnel_doc["ion"], model=model, sites=sites, mlip_e_ads_bulk_eV=mlip,
        dft_e_ads_bulk_eV=ref, spearman=rho, mlip_best=mlip_best, dft_best=dft_best, best_agrees=mlip_best == dft_best,
        mean_offset_eV=float(np.mean([m - d for m, d in both])) if both else None,
        provenance=Provenance(engine=model),
    )
