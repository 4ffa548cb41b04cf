"""Screening funnel benchmarks (run on demand; prints a table, asserts nothing).

1. throughput: MLIP candidates ranked per 10 minutes on this machine (HETERO_CORES workers, one torch
   thread each) for Na on a VN(001) slab of <= 40 atoms (target >= 100 per 10 min on 2 cores);
2. DFT work saved: SCF iterations of the site relaxations and statics of a funnel run against the naive
   chain (every site relaxed with DFT), and E_ads on the sites both ran. Give the two run folders; GPAW's own
   logs are counted (a DFT//MLIP funnel run's MLIP relaxations count 0).

    python benchmarks/bench_funnel.py throughput [--n 40] [--size standard]
    python benchmarks/bench_funnel.py saved NAIVE_RUN_FOLDER FUNNEL_RUN_FOLDER
    python benchmarks/bench_funnel.py agreement RUN_FOLDER [--models chgnet sevennet]
    python benchmarks/bench_funnel.py calls [--size standard] [--n 5]

3. agreement: each MLIP relaxes the DFT minima of a finished run (sites, host, bulk metal) and its E_ads
   ranking is set beside DFT's (Spearman, best site, mean offset).
4. calls: CPU seconds per CHGNet call, the engine's energy-and-forces task against CHGNet's default.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path


def throughput(n_random: int, size: str, model: str, preset: str, bfgs_alpha: float | None = None) -> None:
    from pymatgen.core import Structure

    from hetero.builders.candidates import ion_candidates
    from hetero.builders.presets import get_preset
    from hetero.builders.sites import find_sites
    from hetero.engines import get_engine
    from hetero.flows.funnel import _relax_all, check_funnel, mlip_starts

    slab, _ = get_preset("vn001_na", size)
    sites = find_sites(slab, "Na")
    cands = ion_candidates(slab, "Na", sites, random_starts=n_random, seed=1)
    eng = get_engine(f"mlip:{model}", preset, {"mlip": {"bfgs_alpha": bfgs_alpha}} if bfgs_alpha else None)
    mode = check_funnel({})["mlip_relax"]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()  # the host relaxation is part of the stage's cost (once per model)
        host = eng.relax(slab, Path(tmp) / "host")
        starts = mlip_starts(cands, Structure.from_dict(host.structure), mode)
        res = _relax_all(eng, starts, [Path(tmp) / c["id"] for c in cands])
        wall = time.time() - t0
    steps = [r.n_ionic_steps or 0 for r in res]
    print(f"| model | preset | BFGS alpha | mlip_relax | atoms | candidates | wall s | per 10 min | mean steps | converged |")
    print(f"| {model} | {preset} | {bfgs_alpha or 70} | {mode} | {len(slab) + 1} | {len(cands)} | {wall:.0f} | {len(cands) / wall * 600:.0f} | "
          f"{sum(steps) / len(steps):.0f} | {sum(r.converged for r in res)}/{len(res)} |")


def force_call_cost(size: str, calls: int) -> None:
    """CPU seconds per CHGNet call on the Na/VN(001) slab: the engine's calculator (energy and forces) against
    CHGNet's all-properties default (energy, forces, stress, moments). CPU time, so a busy machine still compares."""
    import numpy as np

    from hetero.builders.presets import get_preset
    from hetero.engines import ase_tasks
    from hetero.engines.base import atoms_dict, fixed_indices
    from hetero.engines.mlip import calculator

    slab, _ = get_preset("vn001_na", size)
    atoms = ase_tasks.atoms_from_dict(atoms_dict(slab), fixed_indices(slab))
    calc = calculator("chgnet")
    calc.calculate(atoms, ["energy", "forces"], ["positions"])  # warm-up
    print("| atoms | task | CPU s per call |")
    for task in ("ef", "efsm", "ef", "efsm"):
        t0 = time.process_time()
        for _ in range(calls):
            atoms.positions[-1] += np.array([0.01, 0.0, 0.0])
            calc.calculate(atoms, ["energy", "forces"], ["positions"], task=task)
        print(f"| {len(atoms)} | {task} | {(time.process_time() - t0) / calls:.3f} |")


def _scf_iterations(folder: Path) -> int:
    """SCF iterations of one GPAW run, counted from its text logs ('iter:' lines; GPAW >= 25 writes
    '|iter:   1|'), the logs of interrupted parts (gpaw-relax.part1.txt, ...) included."""
    n = 0
    for log in folder.glob("gpaw-*.txt"):
        n += sum(1 for line in log.read_text(errors="replace").splitlines() if re.match(r"^\|?iter:\s*\d+", line))
    return n


def _force_calls(folder: Path) -> int:
    """Optimizer lines of every part of a relaxation (opt.log keeps one block per start)."""
    log = folder / "opt.log"
    if not log.exists():
        return 0
    return sum(1 for line in log.read_text().splitlines() if line.startswith(("BFGS:", "FIRE:", "LBFGS:")))


def _site_dft_work(run: Path) -> dict[str, dict]:
    """Per one-ion site: SCF iterations of its GPAW relaxation and static (an MLIP relaxation, as in a
    DFT//MLIP run, writes no GPAW log and counts 0), GPAW force calls, and the site's E_ads vs bulk metal."""
    from hetero.io.store import load_run

    data = load_run(run)
    ads = {d["site"]: d for d in data.of("adsorption") if d.get("n_ions", 1) == 1}
    # the task folders this run's documents name (a run folder can hold other runs' folders of the same site)
    used = {Path(c["provenance"]["run_dir"]).name for c in data.of("calc") if c.get("provenance", {}).get("run_dir")}
    out = {}
    for site_dir in sorted(run.glob("*/*@*")):
        site = site_dir.name.split("@", 1)[1]
        if site_dir.name[0].isdigit() or site not in ads:
            continue  # a coverage model (2Na@...), or unfinished
        relax = [d for d in site_dir.glob("relax-*") if (d / "result.json").exists() and d.name in used]
        static = [d for d in site_dir.glob("static-*") if (d / "result.json").exists() and d.name in used]
        res = json.loads((relax[0] / "result.json").read_text()) if relax else {}
        gpaw_relax = bool(relax) and any(relax[0].glob("gpaw-*.txt"))
        doc = ads[site]
        geometry = doc["provenance"].get("geometry_engine")
        out[site] = {
            # documents written before ended_at existed (the committed naive run) are classified here
            "ended_at": doc.get("ended_at") or _ended_at(run, doc["structure"]),
            "scf_relax": sum(_scf_iterations(d) for d in relax), "scf_static": sum(_scf_iterations(d) for d in static),
            "force_calls": _force_calls(relax[0]) if gpaw_relax else 0, "restarts": res.get("restarts") or 0,
            "energy_eV": doc["e_total_eV"], "e_ads_eV": doc["e_ads_bulk_eV"],
            "engine": doc["provenance"]["engine"] + (f"//{geometry}" if geometry else ""),
        }
    return out


def _ended_at(run: Path, structure: dict) -> str:
    """The builder site where the relaxed ion ended (the funnel's own classifier): a relaxation started on one
    site can end on another (Na started on VN(001)'s bridge ends 0.25 A from top-N)."""
    from pymatgen.core import Structure

    from hetero.builders.candidates import classify_final_positions
    from hetero.builders.sites import Site

    models = json.loads((run / "models.json").read_text())
    host = Structure.from_dict(models["host"]["structure"])
    sites = [Site(**s) for s in models["sites"]]
    return classify_final_positions(host, [Structure.from_dict(structure).cart_coords[-1]], sites)[0]


def saved(naive: Path, funnel: Path) -> None:
    a, b = _site_dft_work(naive), _site_dft_work(funnel)
    print("| run | site | ion ended at | engine | SCF relax | SCF static | GPAW force calls | restarts | E (eV) | E_ads vs bulk (eV) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, runs in (("naive", a), ("funnel", b)):
        for site, r in runs.items():
            print(f"| {name} | {site} | {r['ended_at']} | {r['engine']} | {r['scf_relax']} | {r['scf_static']} | {r['force_calls']} | "
                  f"{r['restarts']} | {r['energy_eV']:.4f} | {r['e_ads_eV']:+.3f} |")
    for what, keys in (("site relaxations", ("scf_relax",)), ("site relaxations + statics", ("scf_relax", "scf_static"))):
        sa = sum(r[k] for r in a.values() for k in keys)
        sb = sum(r[k] for r in b.values() for k in keys)
        print(f"SCF iterations of the {what}: naive {sa}, funnel {sb} (ratio {sb / max(sa, 1):.2f}; target <= 0.25)")
    if a and b:
        # E_ads, not total energies: a DFT//MLIP total energy sits above the DFT minimum of the same basin, while
        # its host sits at the MLIP geometry too
        best_a, best_b = min(a, key=lambda s: a[s]["e_ads_eV"]), min(b, key=lambda s: b[s]["e_ads_eV"])
        kept = "kept" if a[best_a]["ended_at"] == b[best_b]["ended_at"] else "NOT kept"
        print(f"DFT-best site: naive {best_a}, ion ended at {a[best_a]['ended_at']} ({a[best_a]['e_ads_eV']:+.3f} eV); "
              f"funnel {best_b}, ended at {b[best_b]['ended_at']} ({b[best_b]['e_ads_eV']:+.3f} eV): {kept}")
        # sites compared by where the ion ended, not by the start's label (a start can slide to another site)
        for sb_, rb in b.items():
            for sa_, ra in a.items():
                if ra["ended_at"] == rb["ended_at"]:
                    print(f"  ended at {rb['ended_at']}: funnel {sb_} - naive {sa_} = {rb['e_ads_eV'] - ra['e_ads_eV']:+.3f} eV "
                          "(target within 0.05)")


def agreement(run: Path, models: list[str]) -> None:
    from pymatgen.core import Structure
    from scipy.stats import spearmanr

    from hetero.engines import get_engine
    from hetero.engines.settings import ModelFacts
    from hetero.io.store import load_run

    data = load_run(run)
    ads = [d for d in data.of("adsorption") if d.get("n_ions", 1) == 1 and d.get("e_ads_bulk_eV") is not None]
    host_calc = next(c for c in data.of("calc") if c["label"] == "host" and c["step"] == "relax")
    bulk_calc = next(c for c in data.of("calc") if c["system"].endswith("-bulk"))
    sites = [d["site"] for d in ads]
    dft = [d["e_ads_bulk_eV"] for d in ads]
    print(f"| site | DFT E_ads (eV) | " + " | ".join(f"{m} E_ads (eV)" for m in models) + " |")
    table = {m: [] for m in models}
    with tempfile.TemporaryDirectory() as tmp:
        for m in models:
            eng = get_engine(f"mlip:{m}")
            e_host = eng.relax(Structure.from_dict(host_calc["structure"]), Path(tmp) / m / "host").energy_eV
            bulk = Structure.from_dict(bulk_calc["structure"])
            mu = eng.relax(bulk, Path(tmp) / m / "bulk", ModelFacts(kind="bulk"), cell=True).energy_eV / len(bulk)
            for d in ads:
                e = eng.relax(Structure.from_dict(d["structure"]), Path(tmp) / m / d["site"]).energy_eV
                table[m].append(e - e_host - mu)
    for i, site in enumerate(sites):
        print(f"| {site} | {dft[i]:.3f} | " + " | ".join(f"{table[m][i]:.3f}" for m in models) + " |")
    best = sites[min(range(len(sites)), key=lambda i: dft[i])]
    for m in models:
        rho = spearmanr(dft, table[m]).statistic if len(sites) >= 3 else float("nan")
        mb = sites[min(range(len(sites)), key=lambda i: table[m][i])]
        off = sum(a - b for a, b in zip(table[m], dft)) / len(dft)
        print(f"{m}: Spearman {rho:.2f}; best site {mb} (DFT: {best}); mean MLIP - DFT {off:+.3f} eV")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="what", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--n", type=int, default=40, help="random starts (plus the 4 sites)")
    t.add_argument("--size", default="standard", help="vn001_na model: fast (9 atoms) or standard (33)")
    t.add_argument("--model", default="chgnet")
    t.add_argument("--preset", default="fast", help="configs/mlip preset; the funnel's default is fast (fmax 0.05)")
    t.add_argument("--bfgs-alpha", type=float, default=None, help="mlip: {bfgs_alpha}, BFGS's initial Hessian (ASE: 70)")
    c = sub.add_parser("calls")
    c.add_argument("--size", default="standard")
    c.add_argument("--n", type=int, default=5)
    s = sub.add_parser("saved")
    s.add_argument("naive", type=Path)
    s.add_argument("funnel", type=Path)
    a = sub.add_parser("agreement")
    a.add_argument("run", type=Path)
    a.add_argument("--models", nargs="+", default=["chgnet", "sevennet"])
    args = p.parse_args()
    if args.what == "throughput":
        throughput(args.n, args.size, args.model, args.preset, args.bfgs_alpha)
    elif args.what == "calls":
        force_call_cost(args.size, args.n)
    elif args.what == "saved":
        saved(args.naive, args.funnel)
    else:
        agreement(args.run, args.models)
