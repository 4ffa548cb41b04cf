"""Runs inside `mpiexec -n N gpaw python -m hetero.engines.gpaw_worker` (every rank runs this file).

The parent process (hetero.engines.gpaw) writes `task.json` into a run folder and passes the folder
by the environment variable HETERO_TASK_DIR (`gpaw python` swallows command-line flags). This worker
makes every calculator call on every rank, writes arrays and `result.json` from rank 0 only, and
never imports jobflow or a flow: it is the bottom of the engine layer.

Task kinds: "relax", "static" (SCF + densities + potential + DOS), "neb" (CI-NEB over given images).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.constraints import FixAtoms
from ase.io import Trajectory
from ase.optimize import BFGS, FIRE
from gpaw import GPAW, PW, FermiDirac, KohnShamConvergenceError, Mixer
from gpaw.mpi import world

DOS_WINDOW_EV = (-12.0, 6.0)
DOS_STEP_EV = 0.01


def _atoms_from_dict(d: dict) -> Atoms:
    atoms = Atoms(
        symbols=d["symbols"],
        positions=d["positions"],
        cell=d["cell"],
        pbc=d.get("pbc", [True, True, True]),
    )
    if d.get("fixed"):
        atoms.set_constraint(FixAtoms(indices=d["fixed"]))
    if d.get("magmoms") is not None:
        atoms.set_initial_magnetic_moments(d["magmoms"])
    return atoms


def _atoms_to_dict(atoms: Atoms) -> dict:
    return {
        "symbols": atoms.get_chemical_symbols(),
        "positions": atoms.get_positions().tolist(),
        "cell": atoms.cell.array.tolist(),
        "pbc": [bool(p) for p in atoms.pbc],
    }


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
        from ase.calculators.mixing import SumCalculator
        from dftd3.ase import DFTD3

        return SumCalculator([calc, DFTD3(method=settings.get("xc", "PBE"), damping="d3bj")]), calc
    return calc, calc


def _prepare(atoms: Atoms, settings: dict) -> None:
    if settings.get("dipole_correction"):
        atoms.pbc = [True, True, False]  # GPAW asserts this for the xy dipole layer


def _scf(atoms: Atoms, settings: dict, txt: str, gpts=None):
    """SCF with one retry (safer mixing, doubled smearing) when it does not converge."""
    _prepare(atoms, settings)
    for safe in (False, True):
        calc, dft = _make_gpaw(settings, txt if not safe else txt.replace(".txt", "-retry.txt"), safe, gpts)
        atoms.calc = calc
        try:
            energy = atoms.get_potential_energy()
            return energy, calc, dft, safe
        except KohnShamConvergenceError:
            if safe:
                raise
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
    atoms = _atoms_from_dict(task["atoms"])
    traj_path = folder / "relax.traj"
    # resume: continue from the last geometry of an interrupted relaxation
    if traj_path.exists() and traj_path.stat().st_size > 0:
        try:
            last = Trajectory(str(traj_path))[-1]
            atoms.positions = last.positions
        except Exception:
            pass
    _prepare(atoms, settings)
    calc, dft = _make_gpaw(settings, str(folder / "gpaw-relax.txt"))
    atoms.calc = calc
    opt_cls = FIRE if settings.get("optimizer", "BFGS").upper() == "FIRE" else BFGS
    traj = Trajectory(str(traj_path), "a", atoms)
    opt = opt_cls(atoms, logfile=str(folder / "opt.log"), trajectory=traj)
    fmax = settings.get("fmax_eV_A", 0.05)
    steps = settings.get("relax_steps", 100)
    converged = False
    try:
        converged = bool(opt.run(fmax=fmax, steps=steps))
    except KohnShamConvergenceError:
        # one retry from the current geometry with safer mixing and smearing
        calc, dft = _make_gpaw(settings, str(folder / "gpaw-relax-retry.txt"), safe=True)
        atoms.calc = calc
        opt = opt_cls(atoms, logfile=str(folder / "opt.log"), trajectory=traj)
        converged = bool(opt.run(fmax=fmax, steps=steps))
    energy = atoms.get_potential_energy()
    forces = atoms.get_forces()
    return {
        "energy_eV": float(energy),
        "forces_max_eV_A": float(np.linalg.norm(forces, axis=1).max()),
        "fermi_eV": float(dft.get_fermi_level()),
        "n_ionic_steps": int(opt.nsteps),
        "converged": converged,
        "atoms": _atoms_to_dict(atoms),
        "files": {"trajectory": "relax.traj", "log": "gpaw-relax.txt"},
    }


def run_static(task: dict, folder: Path) -> dict:
    settings = task["settings"]
    want = set(task.get("outputs", ["density", "potential", "dos"]))
    atoms = _atoms_from_dict(task["atoms"])
    energy, calc, dft, retried = _scf(atoms, settings, str(folder / "gpaw-static.txt"), task.get("gpts"))
    fermi = float(dft.get_fermi_level())
    out: dict = {
        "energy_eV": float(energy),
        "fermi_eV": fermi,
        "forces_max_eV_A": float(np.linalg.norm(atoms.get_forces(), axis=1).max()),
        "gpts": [int(g) for g in dft.get_number_of_grid_points()],
        "valence": [float(s.Nv) for s in dft.setups],
        "core_electrons": [float(s.Nc) for s in dft.setups],
        "retried_safe_mixing": retried,
        "atoms": _atoms_to_dict(atoms),
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

        elf = elf_from_dft_calculation(dft, ncut=1e-4).gather(broadcast=True).to_pbc_grid().data
        _save(folder / "elf.npz", elf=elf, cell=atoms.cell.array)
        out["files"]["elf"] = "elf.npz"
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
    from ase.mep import NEB, NEBTools

    settings = task["settings"]
    images = [_atoms_from_dict(d) for d in task["images"]]
    for a in images:
        _prepare(a, settings)
    traj_path = folder / "neb.traj"
    n_mid = len(images) - 2
    if traj_path.exists() and traj_path.stat().st_size > 0:  # resume from the last band
        try:
            band = Trajectory(str(traj_path))[-len(images):]
            if len(band) == len(images):
                for a, b in zip(images[1:-1], band[1:-1]):
                    a.positions = b.positions
        except Exception:
            pass
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
    # endpoints: single points already done by the adsorption jobs; attach a fixed-energy calculator
    from ase.calculators.singlepoint import SinglePointCalculator

    for a, e in zip((images[0], images[-1]), task["endpoint_energies_eV"]):
        a.calc = SinglePointCalculator(a, energy=e, forces=np.zeros((len(a), 3)))
    neb = NEB(images, climb=True, k=settings.get("neb_spring", 0.1), method="improvedtangent",
              allow_shared_calculator=False, parallel=parallel, world=world if parallel else None)
    opt = FIRE(neb, logfile=str(folder / "neb.log"), trajectory=str(traj_path), append_trajectory=True)
    converged = bool(opt.run(fmax=settings.get("neb_fmax_eV_A", 0.1), steps=settings.get("neb_steps", 60)))
    if parallel:  # every rank gets every image's final energy and forces (broadcast by the NEB)
        neb.get_forces()
        for a, e, f in zip(images[1:-1], neb.energies[1:-1], neb.real_forces[1:-1]):
            a.calc = SinglePointCalculator(a, energy=float(e), forces=f.copy())
    energies = [float(a.get_potential_energy()) for a in images]
    tools = NEBTools(images)
    s, e, sfit, efit, lines = tools.get_fit()
    if world.rank == 0:
        with Trajectory(str(folder / "neb-final.traj"), "w") as t:
            for a in images:
                t.write(a)
    return {
        "energies_eV": energies,
        "reaction_coord_A": [float(x) for x in s],
        "spline_x_A": [float(x) for x in sfit],
        "spline_e_eV": [float(x) for x in efit],
        "converged": converged,
        "n_images_moving": n_mid,
        "images_in_parallel": parallel,
        "images": [_atoms_to_dict(a) for a in images],
        "files": {"band": "neb-final.traj", "log": "neb.log"},
    }


RUNNERS = {"relax": run_relax, "static": run_static, "neb": run_neb}


def main() -> None:
    folder = Path(os.environ["HETERO_TASK_DIR"])
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
    world.barrier()


if __name__ == "__main__":
    main()
