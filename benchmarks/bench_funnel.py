"""Screening funnel benchmarks (run on demand; prints a table, asserts nothing).

1. throughput: MLIP candidates ranked per 10 minutes on this machine (HETERO_CORES workers, one torch
   thread each) for Na on a VN(001) slab of <= 40 atoms (target >= 100 per 10 min on 2 cores);
2. DFT work saved: SCF iterations and wall time of the DFT relaxations of a funnel run against the
   naive chain (every site relaxed with DFT). Give the two run folders; GPAW's own logs are counted.

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


def _site_relaxations(run: Path) -> dict[str, dict]:
    out = {}
    for d in sorted(run.glob("*/*@*/relax-*")):
        if not (d / "result.json").exists() or d.parent.name[0].isdigit():
            continue  # unfinished, or a coverage model (2Na@...)
        res = json.loads((d / "result.json").read_text())
        # a resumed relaxation's wall_s covers its last part only: SCF iterations are the cost measure
        wall = res.get("wall_s") if not res.get("restarts") else None
        out[d.parent.name] = {"scf": _scf_iterations(d), "force_calls": _force_calls(d), "wall_s": wall,
                              "restarts": res.get("restarts") or 0, "energy_eV": res["energy_eV"]}
    return out


def saved(naive: Path, funnel: Path) -> None:
    a, b = _site_relaxations(naive), _site_relaxations(funnel)
    print("| run | site | SCF iterations | force calls | restarts | wall s | E (eV) |")
    for name, runs in (("naive", a), ("funnel", b)):
        for site, r in runs.items():
            wall = f"{r['wall_s']:.0f}" if r["wall_s"] is not None else "n/a (resumed)"
            print(f"| {name} | {site} | {r['scf']} | {r['force_calls']} | {r['restarts']} | {wall} | {r['energy_eV']:.4f} |")
    sa, sb = sum(r["scf"] for r in a.values()), sum(r["scf"] for r in b.values())
    print(f"\nSCF iterations of the site relaxations: naive {sa}, funnel {sb} (ratio {sb / max(sa, 1):.2f}; target <= 0.25)")
    fa, fb = sum(r["force_calls"] for r in a.values()), sum(r["force_calls"] for r in b.values())
    print(f"force calls (SCF cycles) of the site relaxations: naive {fa}, funnel {fb} (ratio {fb / max(fa, 1):.2f})")
    if a and b:
        best_a, best_b = min(a, key=lambda s: a[s]["energy_eV"]), min(b, key=lambda s: b[s]["energy_eV"])
        gap = b[best_b]["energy_eV"] - a[best_a]["energy_eV"]
        kept = "kept" if best_a == best_b else "NOT kept"
        print(f"DFT-best site: naive {best_a}, funnel {best_b} ({kept}); funnel minimum - naive minimum = {gap:+.4f} eV "
              f"({'the funnel found a lower minimum' if gap < 0 else 'the naive chain found a lower minimum' if gap > 0 else 'same'})")
        for s_ in sorted(set(a) & set(b)):
            print(f"  {s_}: E(funnel) - E(naive) = {b[s_]['energy_eV'] - a[s_]['energy_eV']:+.4f} eV")


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
