"""A finished task is found again when its input differs only by floating-point noise (a builder on another
machine moves atoms by ~1e-8 A and changes the exact hash): measured on the exported VS2 + Li campaign, whose
resume on a new machine recomputed its host relaxation before this."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from hetero.engines import get_engine
from hetero.engines.base import atoms_dict, same_task_folder
from hetero.schemas import settings_hash


def _task(shift=0.0, **extra):
    s = Structure(Lattice.tetragonal(4.14, 20.0), ["V", "N", "Na"], [[0, 0, 0.40], [0.5, 0.5, 0.40], [0.03, 0.02, 0.5]])
    a = atoms_dict(s)
    a["positions"] = (np.asarray(a["positions"]) + shift).tolist()
    return {"kind": "relax", "settings": {"xc": "PBE", "kpts": [3, 3, 1]}, "atoms": a, "fixed": [0], "cell": False, **extra}


def _write(base, task):
    folder = base / f"{task['kind']}-{settings_hash(task)}"
    folder.mkdir(parents=True)
    (folder / "task.json").write_text(json.dumps(task))
    return folder


def test_noise_finds_the_folder_a_real_change_does_not(tmp_path):
    done = _write(tmp_path, _task())
    assert same_task_folder(_task(shift=3e-8), tmp_path) == done
    assert same_task_folder(_task(shift=0.01), tmp_path) is None  # another geometry: another task
    other_settings = _task(shift=3e-8)
    other_settings["settings"]["kpts"] = [4, 4, 1]
    assert same_task_folder(other_settings, tmp_path) is None
    assert same_task_folder(_task(shift=3e-8, cell=True), tmp_path) is None


def test_prerelaxed_folders_match_on_their_input(tmp_path):
    """A pre-relaxed start keeps its input beside it (input_atoms), which is what is compared; an older
    folder without it is matched within 0.5 A, and only when it is the only candidate."""
    start = _task(shift=0.2)["atoms"]  # what an MLIP pre-relaxation moved the atoms to
    new = _write(tmp_path / "new", dict(_task(), atoms=start, input_atoms=_task()["atoms"], prerelaxed_with="chgnet"))
    assert same_task_folder(_task(shift=3e-8), tmp_path / "new") == new
    old = _write(tmp_path / "old", dict(_task(), atoms=start, prerelaxed_with="chgnet"))
    assert same_task_folder(_task(shift=3e-8), tmp_path / "old") == old
    _write(tmp_path / "old", dict(_task(), atoms=_task(shift=0.25)["atoms"], prerelaxed_with="chgnet"))
    assert same_task_folder(_task(shift=3e-8), tmp_path / "old") is None  # two candidates: recompute


@pytest.mark.mlip
def test_engine_reuses_a_result_across_noise(tmp_path):
    s = Structure(Lattice.tetragonal(4.14, 20.0), ["V", "N", "V", "N", "Na"],
                  [[0, 0, 0.40], [0.5, 0.5, 0.40], [0.5, 0.5, 0.5], [0, 0, 0.5], [0.03, 0.02, 0.61]])
    s.add_site_property("selective_dynamics", [[False] * 3] * 2 + [[True] * 3] * 3)
    eng = get_engine("mlip")
    first = eng.relax(s, tmp_path)
    noisy = s.copy()
    noisy.translate_sites(list(range(len(s))), [2e-8, -1e-8, 3e-8], frac_coords=False)
    again = eng.relax(noisy, tmp_path)
    assert not first.cached and again.cached and again.energy_eV == first.energy_eV
    assert len(list(tmp_path.glob("relax-*"))) == 1
