"""GPAW engine: presets, bad input, memory guard, caching and the SCF retry (small real runs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

pytest.importorskip("gpaw")

from hetero.engines.gpaw import GpawEngine, ModelTooLargeError, SCFNotConvergedError  # noqa: E402
from hetero.engines.settings import PresetError, SettingsError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def na_bcc() -> Structure:
    return Structure(Lattice.cubic(4.23), ["Na", "Na"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_unknown_preset_and_keys_name_the_fix():
    with pytest.raises(PresetError, match="valid presets: .*fast"):
        GpawEngine("ultra")
    with pytest.raises(SettingsError, match="'ecut_eV' is not a neutral setting; use 'cutoff_eV'"):
        GpawEngine("fast", overrides={"ecut_eV": 500})
    with pytest.raises(SettingsError, match="unknown GPAW-only settings \\['mixr'\\]"):
        GpawEngine("fast", overrides={"gpaw": {"mixr": 0.1}})


def test_model_too_large_is_refused_before_running(tmp_path):
    big = Structure(Lattice.cubic(30.0), ["V"] * 64, [[i / 4, j / 4, k / 4] for i in range(4) for j in range(4) for k in range(4)])
    with pytest.raises(ModelTooLargeError, match="estimated .* GiB exceeds"):
        GpawEngine("standard").static(big, tmp_path)
    assert not any(tmp_path.iterdir())  # nothing was started


def test_static_is_cached_and_counts_electrons(tmp_path):
    eng = GpawEngine("fast", overrides={"cutoff_eV": 250})
    r1 = eng.static(na_bcc(), tmp_path, outputs=("density", "dos"))
    assert not r1.cached and r1.energy_eV < 0
    assert r1.provenance.engine == "gpaw" and r1.provenance.settings["spinpol"] is False
    assert r1.provenance.settings_sources["cutoff_eV"] == "user"
    # a 2x2x2 mesh samples the broadened DOS coarsely: within 3 % of the valence count
    assert r1.outputs.n_electrons_below_fermi == pytest.approx(sum(r1.outputs.valence), rel=0.03)
    r2 = eng.static(na_bcc(), tmp_path, outputs=("density", "dos"))
    assert r2.cached and r2.energy_eV == r1.energy_eV
    assert Path(r1.files["density"]).exists()


def test_scf_failure_retries_then_fails_clearly(tmp_path):
    eng = GpawEngine("fast", overrides={"cutoff_eV": 250, "gpaw": {"scf_maxiter": 2}})
    with pytest.raises(SCFNotConvergedError, match="retry with safer mixing"):
        eng.static(na_bcc(), tmp_path)
    folder = next(tmp_path.iterdir())
    assert (folder / "gpaw-static-retry.txt").exists()  # the safer second attempt ran
    assert not (folder / "result.json").exists()  # nothing half-done is presented as a result


def test_lcao_cell_relaxation_by_equation_of_state(tmp_path):
    """GPAW's LCAO mode has no stress: a cell relaxation there (the bulk-metal reference of an LCAO campaign)
    fits E(V) instead, extending the scan when the start is far off. bcc Li started 10 % too large."""
    import json

    eng = GpawEngine("fast", overrides={"spin": "off", "kpoints_mesh": [4, 4, 4],
                                        "gpaw": {"mode": "lcao", "basis": "dzp", "h_A": 0.2, "prerelax_mlip": None}})
    start = Structure(Lattice.cubic(3.80), ["Li", "Li"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    r = eng.relax(start, tmp_path, cell=True)
    assert r.provenance.settings["cell_relax"] == "eos" and "Birch-Murnaghan" in r.cell_method
    eos = json.loads(Path(r.files["eos"]).read_text())
    assert len(eos) >= 9 and min(float(k) for k in eos) < -0.06  # the scan was extended toward smaller cells
    a = Structure.from_dict(r.structure).lattice.a
    assert 3.25 < a < 3.60  # PBE bcc Li: 3.43 A; LCAO dzp basis error allowed, but it moved from 3.80
    assert r.energy_eV <= min(eos.values()) + 0.01  # the fitted volume is at the bottom of the scan
    assert eng.relax(start, tmp_path, cell=True).cached
    pw = GpawEngine("fast", overrides={"spin": "off"})
    assert "cell_relax" not in pw.translate(pw.resolve(start), start, "relax", cell=True)  # PW has stress


def test_eigenstate_limit_reaches_gpaw_and_leaves_other_tasks_hashes_alone(tmp_path):
    """`gpaw: {scf_eigenstates: ...}` (a 65-atom PW slab's eigenstate residual stalled at ~1e-6 for 16 iterations
    after energy and density had converged): GPAW gets the limit; unset, the settings (and hashes) are as before."""
    s = na_bcc()
    plain, loose = GpawEngine("fast", overrides={"cutoff_eV": 250}), GpawEngine(
        "fast", overrides={"cutoff_eV": 250, "gpaw": {"scf_eigenstates": 1e-5}})
    assert "scf_eigenstates" not in plain.translate(plain.resolve(s), s, "static")
    assert loose.translate(loose.resolve(s), s, "static")["scf_eigenstates"] == 1e-5
    r = loose.static(s, tmp_path)
    assert r.energy_eV < 0
    txt = (Path(r.provenance.run_dir) / "gpaw-static.txt").read_text()
    assert "[eigenst]ate change: 1e-05 eV^2 / valence electron" in txt


def test_lcao_elf_matches_the_plane_wave_elf_on_silicon():
    """GPAW's LCAO mode has no kinetic-energy density of its own (gpaw.elf raised NotImplementedError after the
    SCF); the worker computes it from the occupied LCAO bands on the grid. Bulk Si, k 3x3x3, the same 24^3 grid in
    both modes (serial, seconds): the LCAO (dzp) ELF follows the plane-wave one."""
    from ase.build import bulk
    from gpaw import GPAW, PW
    from gpaw.elf import elf_from_dft_calculation

    from hetero.engines.gpaw_worker import _give_lcao_a_kinetic_energy_density

    elf, density = {}, {}
    for mode in ("pw", "lcao"):
        atoms = bulk("Si", "diamond", 5.43)
        atoms.calc = GPAW(mode=PW(500) if mode == "pw" else "lcao", basis="dzp", gpts=(24, 24, 24), kpts=(3, 3, 3),
                          txt=None)
        atoms.get_potential_energy()
        if mode == "lcao":
            _give_lcao_a_kinetic_energy_density()
        elf[mode] = elf_from_dft_calculation(atoms.calc, ncut=1e-4).gather(broadcast=True).to_pbc_grid().data
        density[mode] = atoms.calc.get_pseudo_density()
    bonded = density["pw"] > 0.05
    diff = np.abs(elf["pw"] - elf["lcao"])[bonded]
    assert diff.mean() < 0.02 and diff.max() < 0.1  # measured 0.006 / 0.044
    assert np.corrcoef(elf["pw"][bonded], elf["lcao"][bonded])[0, 1] > 0.99
    assert 0.9 < elf["lcao"].max() <= 1.0  # the Si-Si bond: ELF near 1


def test_lcao_campaign_keeps_its_elf_step_and_the_static_writes_it(tmp_path):
    """An LCAO campaign asking for ELF now runs it (it used to drop the step): a 2-rank interface_lcao static of
    bulk Si writes elf.npz on the density's grid."""
    import json

    import yaml
    from pymatgen.core import Structure

    from hetero.campaigns import prepare_campaign
    from hetero.engines import get_engine
    from hetero.engines.base import Capability

    assert Capability.ELF in get_engine("gpaw", "interface_lcao").capabilities
    data = yaml.safe_load((ROOT / "tests" / "data" / "na_vn001_tiny.yaml").read_text())
    data.update(preset="interface_lcao", steps=["relax", "static", "elf", "adsorption"], sites=["hollow"])
    camp = tmp_path / "c.yaml"
    camp.write_text(yaml.safe_dump(data))
    _, _, _, root, flow, _ = prepare_campaign(camp, runs_dir=tmp_path / "runs")
    assert "elf" in json.loads((root / "campaign.json").read_text())["steps_run"]
    statics = [j for j, _ in flow.iterflow() if j.name in ("static host", "static Na@hollow")]
    assert len(statics) == 2 and all("elf" in j.maker.outputs for j in statics)

    si = Structure.from_spacegroup("Fd-3m", [[5.43, 0, 0], [0, 5.43, 0], [0, 0, 5.43]], ["Si"], [[0, 0, 0]])
    si = si.get_primitive_structure()
    r = get_engine("gpaw", "interface_lcao", overrides={"kpoints_mesh": [3, 3, 3]}).static(si, tmp_path / "si",
                                                                                          outputs=("elf", "density"))
    folder = Path(r.provenance.run_dir)
    elf = np.load(folder / "elf.npz")["elf"]
    assert elf.shape == np.load(folder / "density.npz")["pseudo"].shape
    assert 0.0 <= elf.min() and 0.9 < elf.max() <= 1.0
    # the converged SCF was kept while the outputs ran (a kill there resumes without SCF), and removed after
    assert not list(folder.glob("scf-checkpoint*.gpw"))


def test_converged_scf_is_kept_until_the_result_is_written(tmp_path):
    """A static's converged SCF stays on disk while its outputs run (the 86-atom junction's LCAO ELF and DOS: ~7 min
    after a 45-min SCF), so a kill there resumes without repeating the SCF; run_task removes it with result.json written
    (test_lcao_campaign_keeps_its_elf_step_and_the_static_writes_it). Serial bulk Si, LCAO."""
    from ase.build import bulk

    from hetero.engines import gpaw_worker

    settings = {"mode": "lcao", "basis": "dzp", "h_A": 0.25, "kpts": [2, 2, 2], "xc": "PBE", "scf_energy_eV": 1e-4}
    txt = str(tmp_path / "gpaw-static.txt")
    e1, _, _, _, resumed = gpaw_worker._scf(bulk("Si", "diamond", 5.43), settings, txt)
    assert not resumed and [p.name for p in tmp_path.glob("scf-checkpoint*.gpw")] == ["scf-checkpoint.gpw"]
    e2, _, _, _, resumed = gpaw_worker._scf(bulk("Si", "diamond", 5.43), settings, txt)  # the killed run's resume
    assert resumed and e2 == pytest.approx(e1, abs=1e-8)


def test_stall_watch_leaves_real_converging_scfs_alone_and_catches_an_oscillating_plateau():
    """Real density-error traces of this machine's big LCAO statics (tests/data/scf_density_traces.json): the
    86-atom junction and its 42-atom fragment converged slowly, with plateaus, and must never be called stalled;
    the 78-atom V5S8 slab oscillated at 10^-2.4..-3.3 from iteration 13 and was stopped at 42. Continued with its
    own plateau repeated, the watch stops it within 30 iterations instead of at scf_maxiter (300)."""
    import json

    from hetero.engines.gpaw_worker import SCF_STALL_DECADES, SCF_STALL_WINDOW, density_error_stalled

    traces = json.loads((ROOT / "tests/data/scf_density_traces.json").read_text())["traces"]
    watch = (SCF_STALL_WINDOW, SCF_STALL_DECADES)
    for name, trace in traces.items():
        assert not any(density_error_stalled(trace[:n], *watch) for n in range(1, len(trace) + 1)), name
    v5s8 = traces["v5s8_slab_78_atoms_first_attempt"]
    plateau = v5s8 + v5s8[11:] + v5s8[11:]
    first = next(n for n in range(1, len(plateau) + 1) if density_error_stalled(plateau[:n], *watch))
    assert len(v5s8) < first <= len(v5s8) + 30
    assert not density_error_stalled(plateau, 0, SCF_STALL_DECADES)  # window 0: the watch is off


def test_a_stalled_first_scf_goes_to_the_safe_retry_and_a_resume_does_not_repeat_it(tmp_path):
    """The stall watch stops the first attempt on every rank through GPAW's scf_step hook; the safe-mixing retry
    converges to the energy of a plain SCF, and a resume starts at
    the retry's checkpoint. A watch no SCF can pass (10 decades in 3 iterations) forces the stall. Serial Si, LCAO;
    the reference is a plain SCF at the retry's doubled smearing (0.2 eV)."""
    from ase.build import bulk

    from hetero.engines import gpaw_worker

    settings = {"mode": "lcao", "basis": "dzp", "h_A": 0.25, "kpts": [2, 2, 2], "xc": "PBE", "scf_energy_eV": 1e-5}
    plain = tmp_path / "plain"
    plain.mkdir()
    e_plain, *_ = gpaw_worker._scf(bulk("Si", "diamond", 5.43), {**settings, "scf_stall_window": 0, "smearing_eV": 0.2},
                                   str(plain / "gpaw-static.txt"))
    watched = {**settings, "scf_stall_window": 3, "scf_stall_decades": 10.0}
    e, _, _, retried, resumed = gpaw_worker._scf(bulk("Si", "diamond", 5.43), watched, str(tmp_path / "gpaw-static.txt"))
    assert retried and not resumed
    first_log = (tmp_path / "gpaw-static.txt").read_text()
    assert "hetero: SCF stalled at iteration 5" in first_log and "Converged in" not in first_log
    # the watch reads the density error as GPAW's log prints it (per valence electron), so a history seeded from
    # a log and one recorded by the watch are on one scale
    logged = [float(line.split("|")[5].strip().rstrip("c")) for line in first_log.splitlines()
              if line.startswith("|iter:") and line.split("|")[5].strip()]
    said = first_log.split("best log10(density error) ")[1]
    best, before = float(said.split()[0]), float(said.split(", ")[1].split()[0])
    # the hook runs before GPAW logs the iteration: the window is iterations 3-5, "before" is iteration 2
    assert before == pytest.approx(logged[0], abs=0.006) and best <= min(logged[1:]) + 0.006
    assert "Converged in" in (tmp_path / "gpaw-static-retry.txt").read_text()
    assert (tmp_path / gpaw_worker.FIRST_ATTEMPT_FAILED).exists()
    assert not (tmp_path / "scf-checkpoint.gpw").exists() and (tmp_path / "scf-checkpoint-retry.gpw").exists()
    assert e == pytest.approx(e_plain, abs=1e-3)
    e2, _, _, retried, resumed = gpaw_worker._scf(bulk("Si", "diamond", 5.43), watched, str(tmp_path / "gpaw-static.txt"))
    assert retried and resumed and e2 == pytest.approx(e, abs=1e-6)


def test_a_resumed_scf_keeps_its_stall_history(tmp_path):
    """The stall watch's density errors are saved with each SCF checkpoint and given back on resume, so an SCF killed
    on its plateau is stopped for the retry after a few more iterations, not after another 1.5 windows. Driven
    through the real scf_step hook with the V5S8 slab's recorded density errors (its 42 iterations, killed)."""
    import json
    from types import SimpleNamespace

    from hetero.engines import gpaw_worker
    from hetero.engines.gpaw_worker import SCF_STALL_DECADES, SCF_STALL_WINDOW, SCFStalledError, stall_history_file

    v5s8 = json.loads((ROOT / "tests/data/scf_density_traces.json").read_text())["traces"][
        "v5s8_slab_78_atoms_first_attempt"]
    watch = (SCF_STALL_WINDOW, SCF_STALL_DECADES)
    checkpoint = tmp_path / "scf-checkpoint.gpw"
    nvalence = 678  # the slab's valence electrons: GPAW's hook gives the unnormalised error, its log per electron

    class Calc:  # GPAW's hook interface: hooks["scf_step"](ctx) each iteration; write() for the checkpoint
        hooks: dict = {}

        def write(self, path, mode):
            Path(path).write_text("state")

    def iterations_until_stopped(history, errors, checkpoint):
        calc = Calc()
        gpaw_worker._scf_step_hooks(calc, checkpoint, 10, watch, history)
        for n, e in enumerate(errors, start=1):
            try:
                calc.hooks["scf_step"](SimpleNamespace(niter=n, dens=SimpleNamespace(error=nvalence * 10.0 ** e),
                                                       wfs=SimpleNamespace(nvalence=nvalence), log=None))
            except SCFStalledError:
                return n
        return None

    assert iterations_until_stopped(None, v5s8[:40], checkpoint) is None  # killed after the checkpoint at 40
    saved = json.loads(stall_history_file(checkpoint).read_text())
    assert saved == pytest.approx(v5s8[:40]) and checkpoint.exists()
    # the resume goes on with the same plateau: with the saved history the watch stops it within one window...
    resumed = iterations_until_stopped(saved, v5s8[11:] * 3, None)
    assert resumed is not None and resumed < SCF_STALL_WINDOW
    # ...without it, only after 1.5 windows of new iterations
    assert iterations_until_stopped(None, v5s8[11:] * 3, None) >= SCF_STALL_WINDOW * 3 // 2
