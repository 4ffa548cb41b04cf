"""Where the real VASP reference outputs live ($HETERO_SHARED/reference/vasp or ../shared beside the repo), and
how the campaign tests run `hetero` on the mock VASP (tests/mock_vasp.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

MOCK_VASP = Path(__file__).with_name("mock_vasp.py")


def reference_vasp_dir() -> Path | None:
    env = os.environ.get("HETERO_SHARED")
    cands = [Path(env) / "reference" / "vasp"] if env else []
    cands.append(Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "vasp")
    return next((c for c in cands if c.is_dir()), None)


def mock_vasp_env(ref: Path, calls_log: Path, **extra: str) -> dict[str, str]:
    """The environment of a `hetero run` on the mock VASP: no POTCARs, no dry run, no parallel tags or
    requirements leaking in from the caller's shell unless given in ``extra``."""
    env = {**os.environ, "HETERO_VASP_CMD": f"{sys.executable} {MOCK_VASP}", "HETERO_VASP_ALLOW_POTCAR_SPEC": "1",
           "HETERO_CUSTODIAN_POLL_S": "0.1", "MOCK_VASP_LOG": str(calls_log), "MOCK_VASP_TEMPLATES": str(ref)}
    for key in ("PMG_VASP_PSP_DIR", "HETERO_VASP_PARALLEL", "MOCK_VASP_REQUIRE", "HETERO_VASP_DRY_RUN"):
        env.pop(key, None)
    return {**env, **extra}


def run_hetero(args: list[str], env: dict) -> subprocess.CompletedProcess:
    """The installed `hetero` CLI, as a user runs it."""
    exe = Path(sys.executable).with_name("hetero")
    return subprocess.run([str(exe), *args], env=env, capture_output=True, text=True, timeout=3600)
