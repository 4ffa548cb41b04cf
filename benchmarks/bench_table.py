"""Build the screening table from 10,000 synthetic documents; print the times (target <= 5 s).

    python benchmarks/bench_table.py [N]
Times: (a) a list of jobflow-wrapped dicts, (b) a maggma MemoryStore, (c) a JSONStore file on disk.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

from maggma.stores import MemoryStore

from hetero.table import build_table, docs_to_json_store

STRUCT = {"sites": [{"species": [{"element": "V", "occu": 1}]}, {"species": [{"element": "S", "occu": 1}]},
                    {"species": [{"element": "S", "occu": 1}]}, {"species": [{"element": "Li", "occu": 1}]}]}


def synthetic(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    prov = {"engine": "vasp", "settings": {"preset": "fast"}, "settings_hash": "h", "run_dir": "/r"}
    docs, i = [], 0
    n_sys = max(1, n // 10)
    while len(docs) < n:
        s = f"sys{i % n_sys}"
        kind = i % 10
        if kind == 0:
            d = {"doc_type": "model", "system": s, "kind": "interface", "film": "VS2", "substrate": "V2CO2",
                 "film_miller": [0, 0, 1], "substrate_miller": [0, 0, 1], "strain_percent": rng.random() * 3,
                 "area_A2": 30.0, "n_atoms": 40, "structure": {}}
        elif kind == 1:
            d = {"doc_type": "calc", "system": s, "label": "host", "step": "static", "formula": "V10S20",
                 "n_atoms": 30, "energy_eV": -200 * rng.random(), "fermi_eV": -1.0, "converged": True,
                 "structure": {}, "provenance": prov}
        elif kind == 2:
            d = {"doc_type": "dos", "system": s, "energies_eV": [], "total": [], "fermi_eV": 0.0,
                 "band_gap_eV": 0.0, "is_metal": True, "dos_at_fermi": rng.random() * 5, "provenance": prov}
        elif kind == 3:
            d = {"doc_type": "bader", "system": s, "symbols": [], "electrons": [], "valence": [], "net_charge": [],
                 "fragment_charge": {"A": 0.1, "B": -0.1}, "total_electrons": 0, "provenance": prov}
        elif kind == 4:
            d = {"doc_type": "work_function", "system": s, "z_A": [], "planar_potential_eV": [], "fermi_eV": -1,
                 "vacuum_top_eV": 4, "vacuum_bottom_eV": 4, "work_function_top_eV": 5.0,
                 "work_function_bottom_eV": 5.0, "provenance": prov}
        elif kind in (5, 6, 7, 8):
            d = {"doc_type": "adsorption", "system": s, "ion": rng.choice(["Li", "Na", "K"]), "site": f"site{kind}",
                 "n_ions": 1, "e_total_eV": -201.0, "e_host_eV": -200.0, "mu_bulk_eV": -1.9, "mu_atom_eV": -0.3,
                 "structure": STRUCT, "provenance": prov}
        else:
            d = {"doc_type": "neb", "system": s, "ion": "Li", "path": "a->b", "reaction_coord_A": [],
                 "energies_eV": [], "spline_x_A": [], "spline_e_eV": [], "barrier_eV": rng.random(),
                 "hop_length_A": 3.0, "endpoint_energies_eV": [], "provenance": prov}
        docs.append({"uuid": f"u{i}", "index": 1, "name": d["doc_type"], "metadata": {}, "output": d})
        i += 1
    return docs


def main(n: int = 10_000) -> None:
    docs = synthetic(n)
    t = time.perf_counter()
    df = build_table(docs)
    t_list = time.perf_counter() - t
    ms = MemoryStore(key="uuid")
    ms.connect()
    ms.update(docs)
    t = time.perf_counter()
    build_table(ms)
    t_mem = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        docs_to_json_store(docs, Path(tmp) / "store.json")
        t = time.perf_counter()
        build_table(tmp)
        t_json = time.perf_counter() - t
    print(f"{n} documents -> {len(df)} rows x {df.shape[1]} columns")
    print(f"list of dicts : {t_list:.2f} s")
    print(f"MemoryStore   : {t_mem:.2f} s")
    print(f"JSONStore file: {t_json:.2f} s (file read directly; maggma JSONStore.connect() took ~174 s here)")
    worst = max(t_list, t_mem, t_json)
    print(f"target <= 5 s: {'met' if worst <= 5 else 'MISSED'} (worst {worst:.2f} s)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
