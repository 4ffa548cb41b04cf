"""The screening table: every document of a campaign's store -> one pandas DataFrame.

Rows
----
- ``row_kind == "site"``: one row per (system, ion, site) AND adsorption reference: the same site
  appears twice, ``e_ads_reference == "bulk metal"`` and ``== "isolated atom"`` (when that reference
  energy exists), so the reference of ``e_ads_eV`` is always explicit. OCV and capacity are filled on
  the bulk-metal row only (they are defined against the metal anode). A coverage series adds rows with
  ``n_ions`` > 1 (``e_ads_eV`` is then the average per ion, ``ocv_V`` the average voltage from 0 to n
  ions and ``ocv_step_V`` the voltage of the last step, n-1 -> n).
- ``row_kind == "path"``: one row per (system, ion, NEB path): barrier, hop length, diffusion
  coefficient D = a^2 nu exp(-Ea/kT) with ``nu_Hz`` and ``temperature_K`` columns.
- ``row_kind == "system"``: systems with no ion results (bare hosts, partial campaigns).
- ``row_kind == "stacking"``: the stacking funnel's distinct stackings per MLIP and the engine's checks of the
  runner-ups, ``stacking_delta_eV`` above the chosen host.
Per-system data (model, calc, DOS, Bader, CDD, ELF before/after, work function) is merged into every row of its
system (``elf_contacts_change``: the mean ELF change at the midpoints of the interface's contacts).
Missing inputs give empty cells plus a ``status`` column, never an exception.

Input: whatever hetero.io.store reads (a run folder, a JSON store file, a maggma Store, a list of
document dicts, wrapped or bare) or a RunData it already read. Physics (E_ads, OCV, capacity,
formation energy, D) comes from hetero.analysis.descriptors; this module only picks the numbers.
"""

from __future__ import annotations

import json
import math
import operator
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pymatgen.core import Structure

from hetero.analysis.bader import ion_charge_by_fragment
from hetero.analysis.descriptors import (
    DEFAULT_ATTEMPT_FREQUENCY_HZ,
    DEFAULT_TEMPERATURE_K,
    adsorption_energy,
    diffusion_coefficient,
    endpoint_host_change,
    interface_energy,
    interface_energy_from_total,
    ion_charge,
    ocv_from_adsorption_energy,
    theoretical_capacity,
)
from hetero.io.store import STORE_FILENAME, iter_documents, load_run  # noqa: F401 - first two re-exported
from hetero.schemas import HOST_REARRANGED_A, engine_label

BASE_COLUMNS = [
    "system", "row_kind", "ion", "site", "ended_at", "path", "film", "substrate", "miller", "strain_percent", "n_atoms",
    "area_A2", "engine", "preset", "settings_hash", "energy_eV", "fermi_eV", "formation_energy_eV_per_A2",
    "formation_energy_J_per_m2", "e_ads_reference", "e_ads_eV", "n_ions", "height_A", "ocv_V", "ocv_step_V",
    "capacity_mAh_g", "capacity_basis", "dos_at_fermi", "band_gap_eV", "is_metal", "work_function_eV",
    "work_function_bottom_eV", "cdd_transferred_e", "barrier_eV", "hop_length_A",
    "diffusion_coefficient_cm2_s", "nu_Hz", "temperature_K", "job_uuid", "run_dir", "status",
]

_OPS = {"==": operator.eq, "!=": operator.ne, "<=": operator.le, ">=": operator.ge, "<": operator.lt,
        ">": operator.gt}


def _prov(d: dict) -> dict:
    return d.get("provenance") or {}


def _num(x: Any) -> float | None:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


# ----------------------------------------------------------------------------------- build


def _path_status(status: str, converged: bool, host_change_A: float | None) -> str:
    flags = [] if status == "ok" else [status]
    if not converged:
        flags.append("neb unconverged")
    if (host_change_A or 0.0) > HOST_REARRANGED_A:
        flags.append(f"ends on different host states (a host atom moved {host_change_A:.1f} A): not a migration "
                     "barrier")
    return ";".join(flags) or "ok"


def _single_ion_results(neb: dict, g: dict) -> dict[str, dict]:
    """The one-ion adsorption results of a NEB's ion by site (a coverage series reuses the site labels)."""
    return {d.get("site"): d for d, _ in g.get("adsorption", []) if d.get("ion") == neb.get("ion")
            and int(d.get("n_ions", 1) or 1) == 1}


def _ends_on_bare_host(neb: dict, g: dict, checks: dict) -> bool:
    """Both ends of a hop on the bare host's state, each by its own move or its ion-free host check (the rule of
    hetero.flows.adsorption.neb_endpoints)."""
    ends = _single_ion_results(neb, g)
    sites = (neb.get("path") or "").split("->")

    def on_bare(site: str) -> bool:
        d, check = ends.get(site), checks.get(site)
        return d is not None and ((_num(d.get("host_max_shift_A")) or 0.0) <= HOST_REARRANGED_A or (
            check is not None and (_num(check.get("remaining_shift_A")) or 0.0) <= HOST_REARRANGED_A))

    return len(sites) == 2 and all(on_bare(s) for s in sites)


def _endpoint_host_change(neb: dict, g: dict) -> float | None:
    """A NEB stored before NebDoc.host_change_A existed: the host change between its endpoints' adsorption results."""
    a, _, b = (neb.get("path") or "").partition("->")
    ends = _single_ion_results(neb, g)
    if a not in ends or b not in ends:
        return None
    s0, s1 = (Structure.from_dict(ends[x]["structure"]) for x in (a, b))
    return endpoint_host_change(s0, s1, len(s0) - 1)


def _host_formula(ads: dict) -> str | None:
    """Host formula = adsorption structure minus its ions (species counts only)."""
    st = ads.get("structure") or {}
    sites = st.get("sites") or []
    if not sites:
        return None
    counts: dict[str, int] = {}
    for s in sites:
        sp = s.get("species", [{}])[0].get("element") or s.get("label", "")
        counts[sp] = counts.get(sp, 0) + 1
    ion = ads.get("ion", "")
    counts[ion] = counts.get(ion, 0) - int(ads.get("n_ions", 1))
    if counts.get(ion, 0) <= 0:
        counts.pop(ion, None)
    return "".join(f"{el}{n}" for el, n in sorted(counts.items()) if n > 0) or None


def _capacity(host_formula: str, n_ions: int, ion: str) -> float | None:
    try:
        return theoretical_capacity(host_formula, n_ions, ion_charge(ion))
    except (ValueError, KeyError, AttributeError):  # not a formula pymatgen knows: an empty cell, not a crash
        return None


def _site_values(g: dict, label: str) -> dict:
    """The adsorbed system's own Bader, CDD, DOS and work-function numbers (docs labelled ION@SITE)."""
    out: dict = {}
    host_baders = [doc for doc, _ in g.get("bader", []) if doc.get("label") == "host"]
    for doc, _ in g.get("bader", []):
        if doc.get("label") == label:
            out["ion_bader_charge_e"] = _num((doc.get("fragment_charge") or {}).get("ion"))
            # on a stack: which side took the ion's electrons (negative = gained)
            split = next(filter(None, (ion_charge_by_fragment(h, doc) for h in host_baders)), None) or {}
            for side, q in split.items():
                out[f"ion_charge_to_{side}_e"] = _num(q)
    for doc, _ in g.get("cdd", []):
        if doc.get("label") == label:
            out["ion_cdd_transferred_e"] = _num(doc.get("transferred_e"))
    for doc, _ in g.get("dos", []):
        if doc.get("label") == label:
            out["site_dos_at_fermi"] = _num(doc.get("dos_at_fermi"))
    for doc, _ in g.get("work_function", []):
        if doc.get("label") == label:
            out["site_work_function_top_eV"] = _num(doc.get("work_function_top_eV"))
            out["site_work_function_bottom_eV"] = _num(doc.get("work_function_bottom_eV"))
    return out


def _coverage_step(g: dict, ion: str, site: str, n: int) -> float | None:
    """Voltage of the step (n-1 -> n ions) of a coverage series of this site, if one was run."""
    for doc, _ in g.get("coverage", []):
        if doc.get("ion") == ion and doc.get("site") == site:
            for lo, hi, v in zip(doc.get("step_n_lo", []), doc.get("step_n_hi", []), doc.get("step_voltage_V", [])):
                if hi == n:
                    return _num(v)
    return None


def _host_first(pairs: list) -> list:
    """System-level numbers come from the host/interface calculation, not from an adsorbate's."""
    own = ("host", "interface", "slab", "bulk", "", "main", "reference")
    return sorted(pairs, key=lambda p: 0 if (p[0].get("label") or "") in own else 1)


def _pick_calc(calcs: list[dict], labels: tuple[str, ...]) -> dict | None:
    cand = [c for c in calcs if c.get("label", "") in labels]
    if not cand:
        return None
    # prefer static over relax (a static on the relaxed geometry is the reported energy)
    cand.sort(key=lambda c: 0 if c.get("step") == "static" else 1)
    return cand[0]


def _set_formation_energy(row: dict, e) -> None:
    row["formation_energy_eV_per_A2"] = e.eV_per_A2
    row["formation_energy_J_per_m2"] = e.J_per_m2


def _system_rows(by_sys: dict[str, dict[str, list]]) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    for system, g in by_sys.items():
        r: dict[str, Any] = {"system": system}
        status: list[str] = []
        model = (g.get("model") or [(None, None)])[0][0]
        if model:
            m = model
            r.update(film=m.get("film") or None, substrate=m.get("substrate") or None,
                     strain_percent=_num(m.get("strain_percent")), n_atoms=m.get("n_atoms"),
                     area_A2=_num(m.get("area_A2")))
            fm, sm = m.get("film_miller"), m.get("substrate_miller")
            if fm or sm:
                r["miller"] = "/".join("".join(str(i) for i in x) if x else "" for x in (fm, sm))
        calcs = [c for c, _ in g.get("calc", [])]
        host = _pick_calc(calcs, ("", "host", "interface", "slab", "bulk"))
        if host is None and calcs:
            host = _pick_calc(calcs, tuple({c.get("label", "") for c in calcs if not c.get("label", "").startswith("fragment")})) or None
        if host:
            job = next(j for c, j in g["calc"] if c is host)
            p = _prov(host)
            settings = p.get("settings") or {}
            r.update(energy_eV=_num(host.get("energy_eV")), fermi_eV=_num(host.get("fermi_eV")),
                     n_atoms=host.get("n_atoms", r.get("n_atoms")), engine=engine_label(p),
                     preset=settings.get("preset") or settings.get("name") or job.metadata.get("preset"),
                     settings_hash=p.get("settings_hash"), run_dir=p.get("run_dir"), job_uuid=job.uuid)
            if not host.get("converged", True):
                status.append("unconverged")
        elif model:
            status.append("no calc")
        frags = [c for c in calcs if c.get("label", "").startswith("fragment")]
        if host and len(frags) >= 2 and r.get("area_A2"):
            e = _num(host.get("energy_eV"))
            ef = [_num(f.get("energy_eV")) for f in frags[:2]]
            if e is not None and None not in ef:
                _set_formation_energy(r, interface_energy(e, ef[0], ef[1], r["area_A2"]))
        for dos, _ in _host_first(g.get("dos", []))[:1]:
            r.update(dos_at_fermi=_num(dos.get("dos_at_fermi")), band_gap_eV=_num(dos.get("band_gap_eV")),
                     is_metal=dos.get("is_metal"))
        for bad, _ in _host_first(g.get("bader", []))[:1]:
            for frag, q in (bad.get("fragment_charge") or {}).items():
                r[f"bader_transfer_e_{frag}"] = _num(q)
        for cdd, _ in _host_first(g.get("cdd", []))[:1]:
            if "ion" in (cdd.get("fragments") or {}):
                continue  # an adsorbed ion's CDD: its numbers belong to the site rows, not the system's
            r["cdd_transferred_e"] = _num(cdd.get("transferred_e"))
            eb, area = _num(cdd.get("binding_energy_eV")), _num(cdd.get("area_A2"))
            if r.get("formation_energy_eV_per_A2") is None and eb is not None and area:
                # E(AB) - E(A) - E(B) with A, B frozen at the AB geometry (the CDD step's energies)
                _set_formation_energy(r, interface_energy_from_total(eb, area))
        for elf, _ in g.get("elf_change", [])[:1]:
            # the ELF at the interface contacts' midpoints, mean over contacts: after (junction) - before (sides)
            change = [c["elf_after"] - c["elf_before"] for c in elf.get("contacts") or [] if "elf_after" in c]
            r["elf_contacts_change"] = _num(float(np.mean(change))) if change else None
            r["elf_n_contacts"] = len(change)
        for wf, _ in _host_first(g.get("work_function", []))[:1]:
            r["work_function_eV"] = _num(wf.get("work_function_top_eV"))
            r["work_function_bottom_eV"] = _num(wf.get("work_function_bottom_eV"))
        status.extend(g.get("_status", []))
        r["status"] = ";".join(status) if status else "ok"
        rows[system] = r
    return rows


def build_table(source: Any, nu_Hz: float = DEFAULT_ATTEMPT_FREQUENCY_HZ,
                temperature_K: float = DEFAULT_TEMPERATURE_K, sort: str | None = None,
                filters: str | list[str] | None = None) -> pd.DataFrame:
    """Screening table of a campaign (see the module docstring for rows and columns)."""
    run = load_run(source)
    by_sys: dict[str, dict[str, list]] = {}
    # store order: the rows come out in the order the campaign stored its results
    for doc, job in run.entries:
        by_sys.setdefault(doc.get("system") or "?", {}).setdefault(doc["doc_type"], []).append((doc, job))
    for job in run.failed:  # a job that stored nothing (failed, or skipped after a failed parent): keep a trace
        sysname = job.metadata.get("system") or job.name or "?"
        by_sys.setdefault(sysname, {}).setdefault("_status", []).append(f"no output from job {job.name}")
    sys_rows = _system_rows(by_sys)

    rows: list[dict] = []
    for system, g in by_sys.items():
        base = sys_rows[system]
        n_ion_rows = 0
        checks = {c.get("site"): c for c, _ in g.get("host_check", [])}
        lowest = min(checks.values(), key=lambda c: c["delta_eV"]) if checks else None
        for ads, job in g.get("adsorption", []):
            ion, n = ads.get("ion", ""), int(ads.get("n_ions", 1) or 1)
            z = ion_charge(ion)
            et, eh = _num(ads.get("e_total_eV")), _num(ads.get("e_host_eV"))
            host_reference, lower_host = "bare host", False
            if lowest is not None and lowest["delta_eV"] < 0 and eh is not None:
                lower_host = True
                # the bare host was not the lowest ion-free state found: every E_ads of the system is taken against
                # the lowest one, so each measures binding to one and the same host
                eh += lowest["delta_eV"]
                host_reference = (f"ion-free host relaxed from {lowest['ion']}@{lowest['site']} "
                                  f"({lowest['delta_eV']:+.3f} eV vs the bare host)")
            common = dict(base, row_kind="site", ion=ion, site=ads.get("site"), n_ions=n,
                          height_A=_num(ads.get("height_A")), job_uuid=job.uuid or base.get("job_uuid"),
                          run_dir=_prov(ads).get("run_dir") or base.get("run_dir"),
                          engine=engine_label(_prov(ads)) or base.get("engine"),
                          settings_hash=_prov(ads).get("settings_hash") or base.get("settings_hash"))
            site_label = f"{ion}@{ads.get('site')}" if n == 1 else f"{n}{ion}@{ads.get('site')}"
            common.update(_site_values(g, site_label), lateral_shift_A=_num(ads.get("lateral_shift_A")),
                          ended_at=ads.get("ended_at"), host_max_shift_A=_num(ads.get("host_max_shift_A")))
            check = checks.get(ads.get("site")) if n == 1 else None
            common.update(host_reference=host_reference, host_check_eV=check["delta_eV"] if check else None)
            if (common["host_max_shift_A"] or 0.0) > HOST_REARRANGED_A and check is None:
                # a displacement cannot tell a host that found a lower state of its own (V2O5: 6.6 eV) from a
                # large but local response (Cu2V2O7: +0.26 eV): unchecked, the row is kept, marked, never compared
                moved = common["host_max_shift_A"]
                common["status"] = (f"host rearranged (a host atom moved {moved:.1f} A): E_ads may hold the host's "
                                    "own relaxation; relax the ion-free host to check")
            hf = _host_formula(ads)
            for ref, key, mu_key in (("bulk metal", "e_ads_bulk_eV", "mu_bulk_eV"),
                                     ("isolated atom", "e_ads_atom_eV", "mu_atom_eV")):
                e_ads = None if lower_host else _num(ads.get(key))  # the document's is against the bare host
                mu = _num(ads.get(mu_key))
                if e_ads is None and None not in (et, eh, mu):
                    e_ads = adsorption_energy(et, eh, mu, n)
                if e_ads is None and mu is None:
                    continue
                row = dict(common, e_ads_reference=ref, e_ads_eV=e_ads)
                if ref == "bulk metal" and e_ads is not None:
                    row["ocv_V"] = ocv_from_adsorption_energy(e_ads, z)
                    row["ocv_step_V"] = _coverage_step(g, ion, ads.get("site"), n)
                    if hf:
                        row["capacity_mAh_g"] = _capacity(hf, n, ion)
                        row["capacity_basis"] = f"{n} {ion} per {hf}"
                rows.append(row)
                n_ion_rows += 1
            if n_ion_rows == 0:
                rows.append(dict(common, e_ads_reference=None, e_ads_eV=None,
                                 status=(base["status"] + ";" if base["status"] != "ok" else "") + "no reference energy"))
                n_ion_rows += 1
        for neb, job in g.get("neb", []):
            barrier, hop = _num(neb.get("barrier_eV")), _num(neb.get("hop_length_A"))
            d = diffusion_coefficient(barrier, hop, nu_Hz, temperature_K) if None not in (barrier, hop) else None
            host_change = _num(neb.get("host_change_A"))
            if host_change is None:
                host_change = _endpoint_host_change(neb, g)
            apart = (host_change or 0.0) > HOST_REARRANGED_A and not _ends_on_bare_host(neb, g, checks)
            st = _path_status(base["status"], neb.get("converged", True), host_change if apart else None)
            rows.append(dict(base, row_kind="path", ion=neb.get("ion"), path=neb.get("path"), barrier_eV=barrier,
                             hop_length_A=hop, diffusion_coefficient_cm2_s=d, nu_Hz=nu_Hz,
                             temperature_K=temperature_K, job_uuid=job.uuid or base.get("job_uuid"),
                             # DFT//MLIP: energies on one engine, the band from another (gpaw//mlip:chgnet)
                             engine=(f"{_prov(neb).get('engine')}//{neb['band_engine']}" if neb.get("band_engine")
                                     else engine_label(_prov(neb)) or base.get("engine")),
                             neb_method=neb.get("method") or None, band_barrier_eV=_num(neb.get("band_barrier_eV")),
                             host_change_A=host_change,
                             run_dir=_prov(neb).get("run_dir") or base.get("run_dir"), status=st))
            n_ion_rows += 1
        n_ion_rows += _funnel_rows(rows, base, g)
        if n_ion_rows == 0:
            rows.append(dict(base, row_kind="system"))
        _stacking_rows(rows, base, g)
    missing = (run.campaign or {}).get("steps_not_available") or {}
    if missing:  # an engine without a density (an MLIP): say which columns stay empty and why
        note = "; ".join(f"{step}: {why}" for step, why in missing.items())
        for row in rows:
            row["steps_not_available"] = note
    deferred = (run.campaign or {}).get("steps_deferred") or []
    if deferred:  # columns empty because the run put them off, not because they failed
        for row in rows:
            row["steps_deferred"] = ", ".join(deferred) + " (run put off with --skip-step)"
    df = pd.DataFrame(rows)
    extra = sorted(c for c in df.columns if c not in BASE_COLUMNS)
    df = df.reindex(columns=BASE_COLUMNS + extra)
    if filters:
        df = apply_filters(df, filters)
    if sort:
        df = sort_table(df, sort)
    return df.reset_index(drop=True)


def _funnel_rows(rows: list[dict], base: dict, g: dict) -> int:
    """The MLIP stage of a funnel beside the DFT rows: one row per distinct minimum and model (engine
    mlip:<model>, E_ads vs the MLIP's own bulk metal), each MLIP NEB hop, and the MLIP-vs-DFT agreement."""
    n = 0
    for doc, job in g.get("funnel", []):
        for grp in doc.get("groups", []):
            for model, e_ads in grp.get("e_ads_bulk_eV", {}).items():
                rows.append(dict(base, row_kind="site", ion=doc.get("ion"), site=grp["label"], n_ions=1, engine=model,
                                 e_ads_reference="bulk metal", e_ads_eV=_num(e_ads), funnel_rank=grp["rank"].get(model),
                                 funnel_selected=bool(grp.get("selected")), funnel_members=len(grp.get("members", [])),
                                 job_uuid=job.uuid, settings_hash=None, status="ok"))
                n += 1
        for hop in doc.get("hops", []):
            ends = [Structure.from_dict(hop["images"][i]) for i in (0, -1)] if hop.get("images") else None
            host_change = endpoint_host_change(*ends, len(ends[0]) - 1) if ends else None
            rows.append(dict(base, row_kind="path", ion=doc.get("ion"), path=hop["path"], engine=hop["model"],
                             barrier_eV=_num(hop["barrier_eV"]), job_uuid=job.uuid, settings_hash=None,
                             host_change_A=host_change, status=_path_status("ok", hop.get("converged"), host_change)))
            n += 1
    for doc, job in g.get("funnel_agreement", []):
        rows.append(dict(base, row_kind="funnel", ion=doc.get("ion"), engine=doc.get("model"),
                         mlip_dft_spearman=doc.get("spearman"), mlip_best_site=doc.get("mlip_best"),
                         dft_best_site=doc.get("dft_best"), mlip_best_is_dft_best=doc.get("best_agrees"),
                         mlip_minus_dft_e_ads_eV=doc.get("mean_offset_eV"), job_uuid=job.uuid))
        n += 1
    return n


def _stacking_rows(rows: list[dict], base: dict, g: dict) -> None:
    """The stacking funnel (hetero.flows.stacking): one row per distinct stacking and MLIP, and one per engine
    check of a runner-up, each with its energy above the chosen host (``stacking_delta_eV``; negative on a check:
    the engine puts that stacking below the one the chain ran on)."""
    for doc, job in g.get("stacking_screen", []):
        chosen = next((grp for grp in doc.get("groups", []) if grp["label"] == doc.get("chosen")), None)
        for grp in doc.get("groups", []):
            for model, e in grp.get("e_min_eV", {}).items():
                delta = e - chosen["e_min_eV"][model] if chosen and model in chosen["e_min_eV"] else None
                rows.append(dict(base, row_kind="stacking", stacking=grp["label"], engine=model, energy_eV=_num(e),
                                 stacking_delta_eV=_num(delta), stacking_chosen=grp["label"] == doc.get("chosen"),
                                 funnel_selected=bool(grp.get("selected")), funnel_members=len(grp.get("members", [])),
                                 job_uuid=job.uuid, settings_hash=None, status="ok"))
    for doc, job in g.get("stacking_check", []):
        delta = _num(doc.get("delta_eV"))
        rows.append(dict(base, row_kind="stacking", stacking=doc.get("stacking"), engine=engine_label(_prov(doc)),
                         energy_eV=_num(doc.get("e_stacking_eV")), stacking_delta_eV=delta, stacking_chosen=False,
                         job_uuid=job.uuid, settings_hash=_prov(doc).get("settings_hash"),
                         status=("ok" if delta is None or delta >= 0 else
                                 f"below the chosen host {doc.get('chosen')} by {-delta:.3f} eV on this engine: the "
                                 "chain ran on a higher stacking")))


# ----------------------------------------------------------------------------------- sort/filter


def apply_filters(df: pd.DataFrame, filters: str | list[str]) -> pd.DataFrame:
    """Filters like "ion==Li", "e_ads_eV<-1", "is_metal==True" (a list, or ';'-separated, all must hold)."""
    items = [filters] if isinstance(filters, str) else list(filters)
    items = [f.strip() for it in items for f in it.split(";") if f.strip()]
    for f in items:
        m = re.fullmatch(r"\s*([\w\-\[\]]+)\s*(==|!=|<=|>=|<|>)\s*(.+?)\s*", f)
        if not m:
            raise ValueError(f"bad filter '{f}': use COLUMN OP VALUE with OP one of == != < <= > >=")
        col, op, val = m.groups()
        if col not in df.columns:
            raise ValueError(f"filter '{f}': unknown column '{col}'; columns: {', '.join(df.columns)}")
        val = val.strip("'\"")
        v: Any = val
        if val.lower() in ("true", "false"):
            v = val.lower() == "true"
        else:
            try:
                v = float(val)
            except ValueError:
                pass
        col_s = df[col]
        if isinstance(v, float):
            col_s = pd.to_numeric(col_s, errors="coerce")
        mask = _OPS[op](col_s, v)
        df = df[mask.fillna(False).astype(bool)]
    return df


def sort_table(df: pd.DataFrame, sort: str) -> pd.DataFrame:
    """Sort by comma-separated columns; a leading '-' sorts that column descending."""
    cols, asc = [], []
    for c in sort.split(","):
        c = c.strip()
        if not c:
            continue
        desc = c.startswith("-")
        c = c.lstrip("-")
        if c not in df.columns:
            raise ValueError(f"sort: unknown column '{c}'; columns: {', '.join(df.columns)}")
        cols.append(c)
        asc.append(not desc)
    return df.sort_values(cols, ascending=asc, na_position="last", kind="stable")


# ----------------------------------------------------------------------------------- writers


def write_table(df: pd.DataFrame, out_dir: str | Path, stem: str = "screening",
                formats: tuple[str, ...] = ("csv", "parquet", "md")) -> dict[str, Path]:
    """CSV, Parquet and Markdown copies of the table; returns format -> path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for fmt in formats:
        p = out / f"{stem}.{fmt}"
        if fmt == "csv":
            df.to_csv(p, index=False)
        elif fmt == "parquet":
            pq = df.copy()
            for c in pq.columns:  # mixed object columns (None + bool/str) -> string for Arrow
                if pq[c].dtype == object:
                    pq[c] = pq[c].map(lambda x: None if x is None or (isinstance(x, float) and math.isnan(x)) else str(x))
            pq.to_parquet(p, index=False)
        elif fmt == "md":
            p.write_text(df.to_markdown(index=False, floatfmt=".4g") + "\n")
        elif fmt == "json":
            p.write_text(df.to_json(orient="records", indent=1))
        else:
            raise ValueError(f"unknown format '{fmt}': csv, parquet, md, json")
        paths[fmt] = p
    return paths


def docs_to_json_store(docs: list[dict], path: str | Path) -> Path:
    """Write plain documents as a JSONStore file (a JSON list), wrapped like jobflow outputs."""
    import uuid as _uuid

    path = Path(path)
    wrapped = [d if "output" in d else {"uuid": str(_uuid.uuid4()), "index": 1, "name": d.get("doc_type", ""),
                                         "metadata": {}, "output": d} for d in docs]
    path.write_text(json.dumps(wrapped, default=str))
    return path


def _campaign_engine_sites(table: pd.DataFrame) -> pd.DataFrame:
    """Single-ion site rows of the campaign engine: the funnel's MLIP screen rows rank candidates, never compare;
    a site whose host rearranged has no verified binding energy to compare."""
    sites = table[(table.row_kind == "site") & (table.n_ions == 1)]
    sites = sites[sites["funnel_rank"].isna()] if "funnel_rank" in sites else sites
    return sites[~_host_rearranged(sites)]


def _host_rearranged(rows: pd.DataFrame) -> pd.Series:
    """Rows whose site relaxation moved a host atom more than HOST_REARRANGED_A from the bare host, and whose
    ion-free host was not relaxed again to check it (a checked row's E_ads is against the lowest host found)."""
    if "host_max_shift_A" not in rows:
        return pd.Series(False, index=rows.index)
    unchecked = rows["host_check_eV"].isna() if "host_check_eV" in rows else True
    return (rows["host_max_shift_A"].fillna(0.0) > HOST_REARRANGED_A) & unchecked


def compare_with_published(run_folder: Any) -> pd.DataFrame:
    """Per-site adsorption energies beside the study's published values (campaign.json `published`);
    ``run_folder`` is a run folder or the RunData read from one.

    Columns: site, this work with each reference state, the published value, and both rankings
    (1 = most favourable), so agreement in ordering and magnitude can be read off directly. Our
    values are the screening table's single-ion site rows (the same E_ads, however it was obtained).
    """
    run = load_run(run_folder)
    published = ((run.campaign or {}).get("published") or {}).get("e_ads_eV") or {}
    table = build_table(run)
    rows = []
    if len(table):
        sites = _campaign_engine_sites(table)
        for (_, _, site, engine), g in sites.groupby(["system", "ion", "site", "engine"], sort=False):
            by_ref = dict(zip(g.e_ads_reference, g.e_ads_eV))
            rows.append({"site": site, "engine": engine, "e_ads_bulk_metal_eV": by_ref.get("bulk metal"),
                         "e_ads_isolated_atom_eV": by_ref.get("isolated atom"), "published_eV": published.get(site),
                         "height_A": g.height_A.iloc[0], "ended_at": g.ended_at.iloc[0]})
    # ended_at: where the ion sits after relaxation; a published value belongs to the site, not the start
    df = pd.DataFrame(rows, columns=["site", "engine", "e_ads_bulk_metal_eV", "e_ads_isolated_atom_eV", "published_eV",
                                     "height_A", "ended_at"])
    if len(df):
        df["rank_this_work"] = df["e_ads_bulk_metal_eV"].rank(method="min").astype("Int64")
        df["rank_published"] = df["published_eV"].rank(method="min").astype("Int64")
        df = df.sort_values("e_ads_bulk_metal_eV").reset_index(drop=True)
    return df


# --------------------------------------------------------------------------------------- a study, system by system
# published numbers the study gives per system (not per site), and the table column each is compared with
_PUBLISHED_PER_SYSTEM = {"e_ads_eV": "E_ads, best site", "dos_gap_eV_PBE": "band gap (eV)",
                         "work_function_eV_UPS": "work function (eV)"}


def _published_key(published: dict, values: dict) -> str | None:
    """Which of a per-system published dict is this campaign's system: `published.system` when the study lists
    several, else the only key."""
    if published.get("system") in values:
        return published["system"]
    return next(iter(values)) if len(values) == 1 else None


def study_comparison(sources: list[Any]) -> pd.DataFrame:
    """One row per (campaign, quantity): each campaign's own system (the best DFT site's E_ads against both
    references, the host's gap and work function) beside the number the study publishes for that system
    (campaign.json `published`; per-system values such as a study's 'VS2@V2CTx: -4.67 eV'). The MLIP screen's rows
    never count as a result here: only the campaign engine's sites (DFT, or DFT//MLIP, labelled in `engine`)."""
    rows = []
    for src in sources:
        run = load_run(src)
        camp = run.campaign or {}
        published = camp.get("published") or {}
        table = build_table(run)
        if not len(table):
            continue
        ion = camp.get("ion")
        refs = {f"{ion}-bulk", f"{ion}-atom"}
        host_rows = table[~table.system.isin(refs)]
        if not len(host_rows):
            continue
        host = host_rows.iloc[0]  # the host's own data (gap, work function) is merged into each of its rows
        # ... and comes from the campaign engine even on the MLIP screen's rows
        dft_engines = table.engine.dropna()[~table.engine.dropna().str.startswith("mlip:")]
        host_engine = dft_engines.iloc[0] if len(dft_engines) else None
        base = {"campaign": camp.get("name") or str(src), "system": host.system, "n_atoms": host.n_atoms}
        ours: dict[str, tuple[Any, str, str]] = {}  # quantity -> (value, detail, engine)
        sites = _campaign_engine_sites(table)
        bulk = sites[sites.e_ads_reference == "bulk metal"].dropna(subset=["e_ads_eV"])
        rearranged = table[(table.row_kind == "site") & _host_rearranged(table)].site.nunique()
        if rearranged:
            ours["E_ads, best site"] = (None, f"{rearranged} site(s) left out: the host rearranged under the ion", None)
        if len(bulk):
            best = bulk.loc[bulk.e_ads_eV.idxmin()]
            atom = sites[(sites.site == best.site) & (sites.e_ads_reference == "isolated atom")]
            where = f"{best.site} (of {bulk.site.nunique()} sites)"
            ours["E_ads, best site"] = (best.e_ads_eV, f"{where}, vs bulk {ion}", best.engine)
            if len(atom):
                ours["E_ads, best site (atom)"] = (atom.e_ads_eV.iloc[0], f"{where}, vs the {ion} atom", best.engine)
        # the gap and work function are the bare host's; when an ion-free host below it was found, say so
        lower = next((r for r in sites.get("host_reference", pd.Series(dtype=object)).dropna() if r != "bare host"), None)
        which = f"bare host; a lower host exists: {lower}" if lower else "host"
        if pd.notna(host.band_gap_eV):
            ours["band gap (eV)"] = (host.band_gap_eV, f"Kohn-Sham, {which}", host_engine)
        if pd.notna(host.work_function_eV):
            ours["work function (eV)"] = (host.work_function_eV, f"{which}, top side", host_engine)
        ours.update(_barrier_entries(table))
        pub_for: dict[str, tuple[Any, str]] = {}
        for key, quantity in _PUBLISHED_PER_SYSTEM.items():
            values = published.get(key) or {}
            if isinstance(values, dict) and (k := _published_key(published, values)) is not None:
                pub_for[quantity] = (values[k], k)
                if quantity == "E_ads, best site":
                    pub_for["E_ads, best site (atom)"] = pub_for[quantity]
        for quantity in dict.fromkeys([*ours, *pub_for]):
            value, detail, engine = ours.get(quantity, (None, "not computed", None))
            pub, pub_system = pub_for.get(quantity, (None, None))
            rows.append({**base, "quantity": quantity, "this_work": value, "detail": detail, "engine": engine,
                         "published": pub, "published_system": pub_system,
                         "published_reference": published.get("reference_state") if quantity.startswith("E_ads")
                         else None, "source": published.get("source")})
    cols = ["campaign", "system", "n_atoms", "quantity", "this_work", "detail", "engine", "published",
            "published_system", "published_reference", "source"]
    return pd.DataFrame(rows, columns=cols)


def _barrier_entries(table: pd.DataFrame) -> dict[str, tuple[Any, str, str | None]]:
    """The lowest hop barrier of a run, DFT (incl. DFT//MLIP) and MLIP-only kept apart so an MLIP number is never
    read as DFT; a hop flagged (ends on different host states, unconverged) is no barrier and is said so."""
    out = {}
    paths = table[table.row_kind == "path"].dropna(subset=["barrier_eV"])
    mlip = paths.engine.fillna("").str.startswith("mlip:")
    for quantity, p in (("migration barrier (eV)", paths[~mlip]), ("migration barrier, MLIP (eV)", paths[mlip])):
        ok = p[p.status == "ok"]
        if len(ok):
            low = ok.loc[ok.barrier_eV.idxmin()]
            length = f", {low.hop_length_A:.2f} A hop" if pd.notna(low.get("hop_length_A")) else ""
            out[quantity] = (low.barrier_eV, f"{low.path}, lowest of {len(ok)} hop(s){length}", low.engine)
        elif len(p):
            out[quantity] = (None, f"{len(p)} hop(s), none a barrier: {p.status.iloc[0]}", p.engine.iloc[0])
    return out


def study_orderings(cmp: pd.DataFrame) -> list[str]:
    """'ours: A < B; published: B < A' for each quantity two or more systems have (most negative first)."""
    lines = []
    for quantity, g in cmp.groupby("quantity", sort=False):
        g = g.dropna(subset=["this_work"])
        if quantity == "band gap (eV)":  # metals tie at 0: an order of gaps says little; the values are listed
            continue
        if len(g) < 2:
            continue
        label = lambda r: r.published_system or r.system  # noqa: E731 - one-line key for the printout
        ours = " < ".join(label(r) for r in g.sort_values("this_work").itertuples())
        line = f"{quantity}: this work {ours}"
        p = g.dropna(subset=["published"])
        if len(p) == len(g):
            pub = " < ".join(label(r) for r in p.sort_values("published").itertuples())
            line += f"; published {pub} ({'same' if pub == ours else 'different'} order)"
        lines.append(line)
    return lines
