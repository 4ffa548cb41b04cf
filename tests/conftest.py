"""Shared fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests import their helpers (_refdata) by name

from _refdata import reference_vasp_dir  # noqa: E402


@pytest.fixture
def ref() -> Path:
    """The real VASP outputs in ../shared/reference/vasp (CI lays shared/ beside the clone). Missing data
    is a failure, not a skip: the VASP parsers would otherwise go untested without anyone noticing."""
    r = reference_vasp_dir()
    if r is None:
        pytest.fail("reference VASP outputs not found: set HETERO_SHARED=/path/to/shared or clone beside ../shared")
    return r


REQUIRED = ("gpaw", "dftd3", "chgnet", "sevenn", "atomate2", "custodian", "baderkit", "jobflow_remote")


def pytest_sessionstart(session):
    """scripts/setup.sh installs every package the suite needs: a missing one is a broken set-up, and the
    tests' importorskip guards must never turn it into silent skips."""
    import importlib.util

    missing = [m for m in REQUIRED if importlib.util.find_spec(m) is None]
    if missing:
        raise pytest.UsageError(f"packages missing from this environment: {missing}; run bash scripts/setup.sh")
