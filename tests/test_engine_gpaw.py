"""GPAW engine: presets, bad input, memory guard, caching and the SCF retry (small real runs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pymatgen.core import Lattice, Structure

pytest.importorskip("gpaw")

from hetero.engines.gpaw import (  # noqa: E402
    GpawEngine,
    ModelTooLargeError,
    PresetError,
    SCFNotConvergedError,
    kpoint_mesh,
    load_preset,
    vacuum_axes,
)


def na_bcc() -> Structure:
    return Structure(Lattice.cubic(4.23), ["Na", "Na"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_unknown_preset_and_key_list_the_valid_ones():
    with pytest.raises(PresetError, match="valid presets: .*fast"):
        load_preset("ultra")
    with pytest.raises(PresetError, match="unknown preset key 'ecutt'.*valid keys: .*ecut_eV"):
        GpawEngine("fast", overrides={"ecutt": 500})


def test_kpoints_from_spacing_and_vacuum():
    slab = Structure(Lattice.tetragonal(4.14, 25.0), ["V", "N"], [[0, 0, 0.4], [0.5, 0.5, 0.4]])
    assert vacuum_axes(slab) == (2,)
    mesh = kpoint_mesh(slab, {"kspacing_A": 0.4, "kpts": None}, vacuum_axes(slab))
    assert mesh == [4, 4, 1]
    # explicit kpts are for models with vacuum; a bulk reference keeps its spacing-based mesh
    assert kpoint_mesh(na_bcc(), {"kspacing_A": 0.4, "kpts": [3, 3, 1]}, ()) == [4, 4, 4]


def test_model_too_large_is_refused_before_running(tmp_path):
    big = Structure(Lattice.cubic(30.0), ["V"] * 64, [[i / 4, j / 4, k / 4] for i in range(4) for j in range(4) for k in range(4)])
    with pytest.raises(ModelTooLargeError, match="estimated .* GiB exceeds"):
        GpawEngine("standard").static(big, tmp_path)
    assert not any(tmp_path.iterdir())  # nothing was started


def test_static_is_cached_and_counts_electrons(tmp_path):
    eng = GpawEngine("fast", overrides={"ecut_eV": 250})
    r1 = eng.static(na_bcc(), tmp_path)
    assert not r1["cached"] and r1["energy_eV"] < 0
    # a 2x2x2 mesh samples the broadened DOS coarsely: within 3 % of the valence count
    assert r1["n_electrons_below_fermi"] == pytest.approx(sum(r1["valence"]), rel=0.03)
    r2 = eng.static(na_bcc(), tmp_path)
    assert r2["cached"] and r2["energy_eV"] == r1["energy_eV"]
    assert (Path(r1["run_dir"]) / "density.npz").exists()


def test_scf_failure_retries_then_fails_clearly(tmp_path):
    eng = GpawEngine("fast", overrides={"ecut_eV": 250, "scf_maxiter": 2})
    with pytest.raises(SCFNotConvergedError, match="retry with safer mixing"):
        eng.static(na_bcc(), tmp_path, outputs=())
    folder = next(tmp_path.iterdir())
    assert (folder / "gpaw-static-retry.txt").exists()  # the safer second attempt ran
    assert not (folder / "result.json").exists()  # nothing half-done is presented as a result
