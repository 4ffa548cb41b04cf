"""Runs inside `GPAW_MPI_BACKEND=cgpaw mpiexec -n N python -m hetero.engines.gpaw_worker` (every rank runs
this file; a cluster's `srun -n N gpaw python -m ...` works the same).

The parent process (hetero.engines.gpaw) writes `task.json` into a run folder and passes the folder
by the environment variable HETERO_TASK_DIR (`gpaw python` swallows command-line flags). This worker
makes every calculator call on every rank, writes arrays and `result.json` from rank 0 only, and
never imports jobflow or a flow: it is the bottom of the engine layer. Every rank of every DFT task
pays its imports, so it imports GPAW, ASE and numpy only (not pymatgen, pydantic or the engine classes).

Task kinds: "relax", "static" (SCF + densities + potential + DOS), "neb" (CI-NEB over given images).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from gpaw import GPAW, PW, FermiDirac, KohnShamConvergenceError, Mixer
from gpaw.mpi import broadcast_float, world

from hetero.engines import ase_tasks
from hetero.engines.ase_tasks import atoms_from_dict, atoms_to_dict

DOS_WINDOW_EV = (-12.0, 6.0)
DOS_STEP_EV = 0.01
SERVE_TAG = 7301  # MPI tag of the task folder sent from rank 0


def _atoms(d: dict, settings: dict, fixed: list[int] | None = None):
    """ASE atoms of a task, with initial moments per element when spin is on."""
    moms = settings.get("magmoms") or {}
    magmoms = [float(moms.get(sym, 0.0)) for sym in d["symbols"]] if settings.get("spinpol") else None
    return atoms_from_dict(d, fixed, magmoms)


def _lcao_add_to_ked(wfs, taut_sR, block: int = 30) -> None:
    """tau~(r) += sum_n f_n |grad psi~_n(r)|^2 / 2 for one k-point and spin of an LCAO calculation: the occupied
    bands put on the real-space grid from their LCAO coefficients (at most `block` at a time, as GPAW's own
    LCAO -> plane-wave conversion does) and differentiated by GPAW's grid gradient, as its grid mode does."""
    occ_n = wfs.weight * wfs.spin_degeneracy * wfs.myocc_n
    n_occ = int(np.nonzero(np.abs(occ_n) > 1e-12)[0].max(initial=-1)) + 1
    coefficients = wfs.C_nM.to_xp(np).data
    grid = wfs.basis.grid.new(kpt=wfs.kpt_c, dtype=wfs.dtype)
    for n1 in range(0, n_occ, block):
        n2 = min(n1 + block, n_occ)
        psit_bR = grid.zeros(n2 - n1)
        wfs.basis.lcao_to_grid(coefficients[n1:n2], psit_bR.data, wfs.q, block_size=n2 - n1)
        psit_bR.add_ked(occ_n[n1:n2], taut_sR[wfs.spin])


def _give_lcao_a_kinetic_energy_density() -> None:
    """GPAW's LCAO wave functions raise NotImplementedError for the kinetic-energy density that gpaw.elf needs
    (26.x); this fills the gap with _lcao_add_to_ked. On bulk Si (k 3x3x3, same grid) the LCAO ELF matches the
    plane-wave one to 0.006 on average (tests/test_engine_gpaw.py)."""
    from gpaw.new.lcao.wave_functions import LCAOWaveFunctions
    from gpaw.new.wave_functions import WaveFunctions

    if LCAOWaveFunctions.add_to_ked is WaveFunctions.add_to_ked:  # a GPAW that has its own is left alone
        LCAOWaveFunctions.add_to_ked = _lcao_add_to_ked


def _make_gpaw(settings: dict, txt: str, safe: bool = False, gpts=None, communicator=None):
    """GPAW calculator from a flat settings dict (see configs/gpaw/*.yaml)."""
    kw: dict = {
        "xc": settings.get("xc", "PBE"),
        "kpts": {"size": tuple(settings["kpts"]), "gamma": True},
        "occupations": FermiDirac(settings.get("smearing_eV", 0.1) * (2.0 if safe else 1.0)),
        "convergence": {"energy": settings.get("scf_energy_eV", 5e-4), "density": settings.get("scf_density", 1e-4)},
        "maxiter": settings.get("scf_maxiter", 300),
        "txt": txt,
        "symmetry": settings.get("symmetry", {}),
    }
    if settings.get("scf_eigenstates") is not None:
        kw["convergence"]["eigenstates"] = float(settings["scf_eigenstates"])
    if settings.get("mode", "pw") == "pw":
        kw["mode"] = PW(settings.get("ecut_eV", 350))
    else:
        kw["mode"] = "lcao"
        kw["basis"] = settings.get("basis", "dzp")
    if settings.get("h_A") and gpts is None:
        kw["h"] = settings["h_A"]
    if gpts is not None:
        kw["gpts"] = tuple(gpts)
    if settings.get("spinpol"):
        kw["spinpol"] = True
    if settings.get("dipole_correction"):
        kw["poissonsolver"] = {"dipolelayer": "xy"}
    if settings.get("hubbard_u"):
        kw["setups"] = {el: f":d,{u}" for el, u in settings["hubbard_u"].items()}
    if communicator is not None:  # a list of ranks: this calculator runs on those only (parallel NEB images)
        kw["communicator"] = communicator
    if safe:
        kw["mixer"] = Mixer(0.02, 5, 100.0)
    elif settings.get("mixer_beta"):
        kw["mixer"] = Mixer(settings["mixer_beta"], 5, 50.0)
    calc = GPAW(**kw)
    if settings.get("d3"):
        return ase_tasks.with_dispersion(calc, settings["d3"], settings.get("xc", "PBE")), calc
    return calc, calc


def _prepare(atoms: Atoms, settings: dict) -> None:
    if settings.get("dipole_correction"):
        atoms.pbc = [True, True, False]  # GPAW asserts this for the xy dipole layer


# A static's SCF writes its state (density and wave functions) every SCF_CHECKPOINT_EVERY iterations, and a run
# killed on the way (a session's end, a queue's wall time) continues from there instead of from scratch: the
# VS2/V2CO2 stack's static is 64 iterations of ~50 s here. An execution detail, not a setting, so it stays out
# of the task hash; 0 turns it off.
SCF_CHECKPOINT_EVERY = int(os.environ.get("HETERO_SCF_CHECKPOINT_EVERY", "10"))


def _checkpointed_gpaw(settings: dict, txt: str, safe: bool, gpts, checkpoint: Path):
    """(calculator, GPAW calculator, resumed): from the checkpoint an interrupted run left, else new."""
    if checkpoint.exists():
        try:
            dft = GPAW(str(checkpoint), txt=txt)  # the parameters come from the file
        except Exception:  # noqa: BLE001 - a checkpoint cut short by the kill: start over
            dft = None
        if dft is not None:
            calc = ase_tasks.with_dispersion(dft, settings["d3"], settings.get("xc", "PBE")) if settings.get("d3") else dft
            return calc, dft, True
    calc, dft = _make_gpaw(settings, txt, safe, gpts)
    return calc, dft, False


def _write_checkpoint_now(dft, checkpoint: Path) -> None:
    partial = checkpoint.with_name(checkpoint.stem + ".partial.gpw")
    dft.write(str(partial), mode="all")  # every rank takes part; rank 0 writes
    if world.rank == 0:
        os.replace(partial, checkpoint)  # a kill during the write leaves the previous checkpoint whole


# An SCF whose density error reaches no new low, by SCF_STALL_DECADES, over SCF_STALL_WINDOW iterations is
# oscillating, not converging (78-86-atom magnetic slabs here sat at 10^-2.4..-3.3 for tens of ~50-s iterations).
# The first attempt then stops and the safe-mixing retry starts, instead of after scf_maxiter (300) iterations.
# The converging 86-atom junction SCFs here gained >= 1 decade per 40 iterations. Execution details with code
# defaults, so unset they stay out of the task hash; a window of 0 turns the watch off.
SCF_STALL_WINDOW = 40
SCF_STALL_DECADES = 0.5


class SCFStalledError(KohnShamConvergenceError):
    """The density error stopped improving: caught wherever a non-converged SCF is (retry with safe mixing)."""


def density_error_stalled(log10_errors: list[float], window: int, decades: float) -> bool:
    """True when the best of the last ``window`` log10 density errors is not ``decades`` below the best before
    them; judged from 1.5 windows of history on, so the start of an SCF is never called a stall."""
    if window <= 0 or len(log10_errors) < window + max(window // 2, 1):
        return False
    return min(log10_errors[-window:]) > min(log10_errors[:-window]) - decades


def stall_history_file(checkpoint: Path) -> Path:
    """The stall watch's density errors so far, saved beside each SCF checkpoint: a resumed SCF is judged on its
    whole history, not only on the iterations since the kill (the 78-atom V5S8 slab: killed at 42 of its plateau,
    it would otherwise spend another 60 iterations, ~50 min, before the retry)."""
    return checkpoint.with_suffix(".errors.json")


def _scf_step_hooks(dft, checkpoint: Path | None, every: int, stall: tuple[int, float] | None,
                    history: list[float] | None = None) -> None:
    """Per-iteration work on GPAW's scf_step hook: the checkpoint every ``every`` iterations, and the stall watch
    (window, decades; ``history``: the log10 density errors before a resume), which raises SCFStalledError on every
    rank at once."""
    if not hasattr(dft, "hooks"):  # GPAW's legacy code has no per-iteration hook
        return
    write = checkpoint is not None and every > 0
    if not write and stall is None:
        return
    errors: list[float] = list(history or [])
    steps_here = 0

    def step(ctx):
        nonlocal steps_here
        if stall is not None:
            if ctx.niter == 1 and steps_here:
                errors.clear()  # a new SCF (the next geometry of a relaxation)
            # per valence electron, as GPAW's density criterion and log column (the V5S8 history was seeded from
            # a log); rank 0 decides, so every rank stops together
            err = broadcast_float(float(ctx.dens.error) / max(float(ctx.wfs.nvalence), 1.0), world)
            if np.isfinite(err) and err > 0:
                errors.append(float(np.log10(err)))
        steps_here += 1
        if write and ctx.niter % every == 0:
            _write_checkpoint_now(dft, checkpoint)
            if stall is not None and world.rank == 0:
                stall_history_file(checkpoint).write_text(json.dumps(errors))
        if stall is not None and density_error_stalled(errors, *stall):
            msg = (f"hetero: SCF stalled at iteration {ctx.niter}: best log10(density error) "
                   f"{min(errors[-stall[0]:]):.2f} over the last {stall[0]} iterations, "
                   f"{min(errors[:-stall[0]]):.2f} before; stopping for the retry with safe mixing")
            if ctx.log:
                ctx.log(msg, flush=True)
            raise SCFStalledError(msg)

    dft.hooks["scf_step"] = step


def _stall_watch(settings: dict, safe: bool) -> tuple[int, float] | None:
    """The first attempt is watched; the safe retry (mixing 0.02: slow by design) runs to scf_maxiter."""
    window = int(settings.get("scf_stall_window", SCF_STALL_WINDOW))
    return None if safe or window <= 0 else (window, float(settings.get("scf_stall_decades", SCF_STALL_DECADES)))


FIRST_ATTEMPT_FAILED = "scf-first-attempt-failed.txt"  # a resume goes straight to the retry


def _scf(atoms: Atoms, settings: dict, txt: str, gpts=None):
    """SCF with one retry (safer mixing, doubled smearing) when it does not converge; each attempt resumes from
    its own checkpoint. Returns (energy, calculator, GPAW calculator, retried, resumed)."""
    _prepare(atoms, settings)
    folder = Path(txt).parent
    for safe in (False, True):
        checkpoint = folder / ("scf-checkpoint-retry.gpw" if safe else "scf-checkpoint.gpw")
        if not safe and ((folder / FIRST_ATTEMPT_FAILED).exists() or (folder / "scf-checkpoint-retry.gpw").exists()):
            continue  # the first attempt already failed before the interruption: go on with the retry
        calc, dft, resumed = _checkpointed_gpaw(settings, txt if not safe else txt.replace(".txt", "-retry.txt"),
                                                safe, gpts, checkpoint)
        saved = stall_history_file(checkpoint)
        history = json.loads(saved.read_text()) if resumed and saved.exists() else None
        _scf_step_hooks(dft, checkpoint, SCF_CHECKPOINT_EVERY, _stall_watch(settings, safe), history)
        atoms.calc = calc
        try:
            energy = atoms.get_potential_energy()
        except KohnShamConvergenceError as exc:
            if safe:
                raise
            if world.rank == 0:
                (folder / FIRST_ATTEMPT_FAILED).write_text(f"{type(exc).__name__}: {exc}\n")
                checkpoint.unlink(missing_ok=True)
                saved.unlink(missing_ok=True)
            world.barrier()
            continue
        if hasattr(dft, "hooks"):
            dft.hooks.pop("scf_step", None)
        if SCF_CHECKPOINT_EVERY > 0:
            # the converged state: a kill during the outputs (an 86-atom LCAO ELF + DOS: ~7 min) resumes here
            # instead of repeating the SCF; run_task removes it once result.json is written
            _write_checkpoint_now(dft, checkpoint)
        return energy, calc, dft, safe, resumed
    raise RuntimeError("unreachable")


def _n_scf(calc) -> int | None:
    try:
        return int(calc.get_number_of_iterations())
    except Exception:  # not every GPAW code path exposes it
        return None


def _save(path: Path, **arrays) -> None:
    if world.rank == 0:
        np.savez_compressed(path, **arrays)


def run_relax(task: dict, folder: Path) -> dict:
    settings = task["settings"]
    atoms = _atoms(task["atoms"], settings, task.get("fixed"))
    _prepare(atoms, settings)
    calc, dft = _make_gpaw(settings, str(folder / "gpaw-relax.txt"))
    _scf_step_hooks(dft, None, 0, _stall_watch(settings, safe=False))
    atoms.calc = calc
    holder = {"dft": dft}

    def safer():  # one retry from the current geometry with safer mixing and smearing
        c, holder["dft"] = _make_gpaw(settings, str(folder / "gpaw-relax-retry.txt"), safe=True)
        return c

    if task.get("cell") and settings.get("cell_relax") == "eos":
        out = ase_tasks.relax_cell_by_eos(atoms, folder, settings.get("fmax_eV_A", 0.05),
                                          settings.get("relax_steps", 100), settings.get("optimizer", "BFGS"),
                                          is_root=world.rank == 0)
    else:
        out = ase_tasks.relax(atoms, folder, settings.get("fmax_eV_A", 0.05), settings.get("relax_steps", 100),
                              settings.get("optimizer", "BFGS"), cell=bool(task.get("cell")),
                              retry=(KohnShamConvergenceError, safer))
    out["fermi_eV"] = float(holder["dft"].get_fermi_level())
    out["files"]["log"] = "gpaw-relax.txt"
    try:
        out["magmom_total"] = float(holder["dft"].get_magnetic_moment())
    except Exception:
        out["magmom_total"] = None
    return out


def run_static(task: dict, folder: Path) -> dict:
    settings = task["settings"]
    want = set(task.get("outputs", []))
    atoms = _atoms(task["atoms"], settings)
    energy, calc, dft, retried, resumed = _scf(atoms, settings, str(folder / "gpaw-static.txt"), task.get("gpts"))
    fermi = float(dft.get_fermi_level())
    out: dict = {
        "energy_eV": float(energy),
        "fermi_eV": fermi,
        "forces_max_eV_A": float(np.linalg.norm(atoms.get_forces(), axis=1).max()),
        "gpts": [int(g) for g in dft.get_number_of_grid_points()],
        "valence": [float(s.Nv) for s in dft.setups],
        "core_electrons": [float(s.Nc) for s in dft.setups],
        "retried_safe_mixing": retried,
        "scf_resumed_from_checkpoint": resumed,
        "atoms": atoms_to_dict(atoms),
        "files": {"log": "gpaw-static.txt"},
    }
    try:
        out["magmom_total"] = float(dft.get_magnetic_moment())
    except Exception:
        out["magmom_total"] = None
    if "density" in want:
        pseudo = dft.get_pseudo_density()
        ae = dft.get_all_electron_density(gridrefinement=2)
        _save(folder / "density.npz", pseudo=pseudo, all_electron=ae, cell=atoms.cell.array)
        out["files"]["density"] = "density.npz"
    if "potential" in want:
        v = dft.get_electrostatic_potential()
        out["planar_potential_eV"] = v.mean(axis=(0, 1)).tolist()
    if "elf" in want:
        from gpaw.elf import elf_from_dft_calculation

        if settings.get("mode", "pw") == "lcao":
            _give_lcao_a_kinetic_energy_density()
        elf = elf_from_dft_calculation(dft, ncut=1e-4).gather(broadcast=True).to_pbc_grid().data
        _save(folder / "elf.npz", elf=elf, cell=atoms.cell.array)
        out["files"]["elf"] = "elf.npz"
        # the density and kinetic-energy density per spin (atomic units, same grid): two fragments' add up to the
        # ELF "before" an interface forms (hetero.analysis.elf)
        density = dft.dft.density if hasattr(dft, "dft") else dft.density
        parts = {name: getattr(density, name).gather(broadcast=True).to_pbc_grid().data for name in ("nt_sR", "taut_sR")}
        _save(folder / "elf_parts.npz", nt=parts["nt_sR"], taut=parts["taut_sR"], cell=atoms.cell.array)
        out["files"]["elf_parts"] = "elf_parts.npz"
    if "dos" in want:
        dos_calc = dft
        if settings.get("dos_kpts"):
            dos_calc = dft.fixed_density(
                kpts={"size": tuple(settings["dos_kpts"]), "gamma": True},
                update_fermi_level=True,
                txt=str(folder / "gpaw-dos.txt"),
            )
        dos = dos_calc.dos()
        energies = np.arange(DOS_WINDOW_EV[0], DOS_WINDOW_EV[1] + 1e-9, DOS_STEP_EV)
        width = settings.get("dos_width_eV", 0.1)
        total = dos.raw_dos(energies, width=width, spin=None)
        per_atom_pdos = []
        for i, setup in enumerate(dos_calc.setups):
            p = np.zeros_like(energies)
            for l in sorted(set(setup.l_j)):
                p += dos.raw_pdos(energies, a=i, l=l, m=None, spin=None, width=width)
            per_atom_pdos.append(p)
        # electron count below E_F over every band (semicore states lie far below the plot window)
        e_full = np.arange(-120.0, 1e-9, 0.02)
        out["n_electrons_below_fermi"] = float(np.trapezoid(dos.raw_dos(e_full, width=width, spin=None), e_full))
        _save(folder / "dos.npz", energies=energies, total=total, per_atom=np.array(per_atom_pdos))
        out["files"]["dos"] = "dos.npz"
        out["dos_fermi_eV"] = float(dos_calc.get_fermi_level())
        try:  # gap from the eigenvalues themselves (a broadened DOS leaks states into a gap)
            from ase.dft.bandgap import bandgap

            out["eigen_gap_eV"] = float(bandgap(dos_calc, output=None)[0])
        except Exception:
            out["eigen_gap_eV"] = None
    if settings.get("write_gpw"):
        dft.write(str(folder / "static.gpw"), mode="all")
        out["files"]["restart"] = "static.gpw"
    out["n_scf"] = _n_scf(dft)
    return out


def run_neb(task: dict, folder: Path) -> dict:
    """CI-NEB over the given images (endpoints fixed, their energies given, not recomputed)."""
    settings = task["settings"]
    images = [_atoms(d, settings, task.get("fixed")) for d in task["images"]]
    for a in images:
        _prepare(a, settings)
    n_mid = len(images) - 2
    # images in parallel (GPAW's recipe: each image on its own group of ranks) when the ranks split
    # evenly over more than one moving image; otherwise one image after another on every rank
    per_image = world.size // n_mid if n_mid else 0
    parallel = bool(settings.get("neb_parallel", True)) and n_mid > 1 and per_image >= 1 and per_image * n_mid == world.size
    for i, a in enumerate(images[1:-1], start=1):
        txt = str(folder / f"gpaw-image{i:02d}.txt")
        if parallel:
            ranks = list(range((i - 1) * per_image, i * per_image))
            if world.rank in ranks:
                a.calc = _make_gpaw(settings, txt, communicator=ranks)[0]
        else:
            a.calc = _make_gpaw(settings, txt)[0]
    return ase_tasks.neb(images, task["endpoint_energies_eV"], folder, settings, parallel=parallel, world=world)


RUNNERS = {"relax": run_relax, "static": run_static, "neb": run_neb}


def _check_launch() -> None:
    from ase.parallel import world as ase_world

    from hetero.engines.process import die_with_parent

    parent = os.getppid()
    die_with_parent()  # a rank outlives neither mpiexec nor the hetero run that launched it
    if os.getppid() != parent:  # the parent died before the line above took effect
        raise SystemExit("the process that launched this GPAW worker is gone")
    if ase_world.size != world.size:  # ASE's trajectories and logs must be written by rank 0 only
        raise SystemExit(f"ASE sees {ase_world.size} MPI ranks, GPAW {world.size}: import gpaw before ASE's world is used")


def run_task(folder: Path) -> None:
    """Run the task in ``folder`` on every rank; rank 0 writes result.json."""
    task = json.loads((folder / "task.json").read_text())
    t0 = time.time()
    result = RUNNERS[task["kind"]](task, folder)
    result["wall_s"] = time.time() - t0
    result["cores"] = world.size
    import gpaw

    result["engine_version"] = gpaw.__version__
    if world.rank == 0:
        tmp = folder / "result.json.tmp"
        tmp.write_text(json.dumps(result))
        tmp.replace(folder / "result.json")
        for p in [*folder.glob("scf-checkpoint*.gpw"), *folder.glob("scf-checkpoint*.errors.json")]:
            p.unlink()  # the result is safe: the converged state and its SCF history are not needed
        (folder / FIRST_ATTEMPT_FAILED).unlink(missing_ok=True)
    world.barrier()


def _next_folder() -> Path | None:
    """The next task folder (None at end of input): rank 0 reads it from stdin and sends it to the other
    ranks, which wait asleep (in a blocking MPI broadcast they would keep polling a core between tasks,
    while the parent pre-relaxes with an MLIP or analyses)."""
    buf = np.zeros(4096, np.uint8)
    if world.rank == 0:
        line = sys.stdin.buffer.readline().strip()
        if len(line) >= len(buf):
            raise SystemExit(f"task folder path longer than {len(buf) - 1} bytes: {line[:80]!r}...")
        buf[: len(line)] = np.frombuffer(line, np.uint8)
        for rank in range(1, world.size):
            world.send(buf, rank, tag=SERVE_TAG)
    else:
        request = world.receive(buf, 0, tag=SERVE_TAG, block=False)
        while not world.test(request):
            time.sleep(0.01)
        world.wait(request)
    path = bytes(buf).rstrip(b"\0").decode()
    return Path(path) if path else None


def _output_to(path: Path) -> tuple[int, int]:
    """Send this rank's stdout and stderr to ``path`` (appended); returns the saved descriptors."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    return saved


def _output_back(saved: tuple[int, int]) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    for fd, old in zip((1, 2), saved):
        os.dup2(old, fd)
        os.close(old)


def serve() -> None:
    """Persistent mode (`... -m hetero.engines.gpaw_worker --serve`, see hetero.engines.gpaw_server): task
    folders arrive one per line; each runs as in the one-shot mode with every rank's output appended to
    the folder's worker.log, then rank 0 replies. An exception is not caught: it ends the server as it
    ends a one-shot worker (traceback in worker.log, GPAW's MPI_Abort), so no rank goes on with MPI in an
    unknown state; the parent starts a new server for the next task. End of input ends the server."""
    import gc

    from hetero.engines.gpaw_server import TASK_DONE

    _check_launch()
    while (folder := _next_folder()) is not None:
        saved = _output_to(folder / "worker.log")
        run_task(folder)
        gc.collect()  # the task's GPAW calculators close their logs, its files and arrays are freed
        world.barrier()  # every rank's logs are complete before the parent reads them
        _output_back(saved)
        if world.rank == 0:
            print(TASK_DONE + str(folder), flush=True)


def main() -> None:
    if "--serve" in sys.argv[1:]:  # hetero.engines.gpaw_server.SERVE_FLAG
        serve()
        return
    _check_launch()
    run_task(Path(os.environ["HETERO_TASK_DIR"]))


if __name__ == "__main__":
    main()
