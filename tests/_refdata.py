"""Where the real VASP reference outputs live: $HETERO_SHARED/reference/vasp or ../shared beside the repo."""

from __future__ import annotations

import os
from pathlib import Path


def reference_vasp_dir() -> Path | None:
    env = os.environ.get("HETERO_SHARED")
    cands = [Path(env) / "reference" / "vasp"] if env else []
    cands.append(Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "vasp")
    return next((c for c in cands if c.is_dir()), None)
