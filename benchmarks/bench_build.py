"""Wall time to enumerate every lattice match x termination of each seed pair at max_area 200 A^2.

Run: python benchmarks/bench_build.py   (first call includes pymatgen import/warm-up, reported apart)
"""

from __future__ import annotations

import time
import warnings

warnings.filterwarnings("ignore")

PAIRS = [
    ("VS2_1L", "V2CO2", (0, 0, 1), (0, 0, 1), None),
    ("VS2_1L", "V2COH2", (0, 0, 1), (0, 0, 1), None),
    ("VS2_1L", "V2CF2", (0, 0, 1), (0, 0, 1), None),
    ("V2O5", "Cu2V2O7_beta", (1, 0, 1), (2, 0, 0), {"max_length_tol": 0.10, "max_angle_tol": 0.05, "max_area_ratio_tol": 0.05}),
    ("V5S8", "Sb2S3", (1, 1, 0), (1, 0, 1), {"max_length_tol": 0.10, "max_angle_tol": 0.05, "max_area_ratio_tol": 0.05}),
    ("V2O5", "VN", (1, 0, 1), (0, 0, 1), {"max_length_tol": 0.10, "max_angle_tol": 0.05, "max_area_ratio_tol": 0.05}),
]


def main() -> None:
    from hetero.builders.interfaces import enumerate_interfaces
    from hetero.builders.presets import vn001_na

    t0 = time.perf_counter()
    vn001_na("fast")
    enumerate_interfaces("VS2_1L", "V2CF2", max_area=80, max_atoms=None)
    print(f"warm-up (imports): {time.perf_counter() - t0:.2f} s")
    print(f"{'film':<8} {'substrate':<13} {'matches':>7} {'terms':>5} {'built':>5} {'skipped':>7} {'wall_s':>7}")
    for f, s, fm, sm, tol in PAIRS:
        t = time.perf_counter()
        try:
            r = enumerate_interfaces(f, s, fm, sm, max_area=200, max_atoms=None, **(tol or {}))
            row = f"{r.n_matches:>7} {r.n_terminations:>5} {len(r.candidates):>5} {len(r.skipped):>7}"
        except Exception as exc:
            row = f"  error: {str(exc)[:60]}"
        print(f"{f:<8} {s:<13} {row} {time.perf_counter() - t:>7.2f}" if "error" not in row else f"{f:<8} {s:<13}{row}")


if __name__ == "__main__":
    main()
