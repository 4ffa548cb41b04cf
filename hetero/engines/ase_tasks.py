"""The ASE code path that GPAW and the MLIPs share for relaxation and CI-NEB (atomate2's AseMaker idea):
each engine supplies only its calculator. Runs wherever the calculator lives (inside the GPAW MPI
worker, or in-process for an MLIP); ``world`` is GPAW's MPI communicator or None.

Both tasks resume: a relaxation continues from the last frame of its trajectory, a NEB from its last band.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
from ase import Atoms
from ase.constraints import FixAtoms
from ase.io import Trajectory
from ase.optimize import BFGS, FIRE


def with_dispersion(calc, damping: str, xc: str = "PBE"):
    """``calc`` plus dftd3's D3 (damping "d3bj" or "d3zero", the functional's parameters), one ASE calculator."""
    from ase.calculators.mixing import SumCalculator
    from dftd3.ase import DFTD3

    return SumCalculator([calc, DFTD3(method=xc, damping=damping)])


def atoms_from_dict(d: dict, fixed: list[int] | None = None, magmoms: list[float] | None = None) -> Atoms:
    atoms = Atoms(symbols=d["symbols"], positions=d["positions"], cell=d["cell"], pbc=d.get("pbc", [True] * 3))
    if fixed:
        atoms.set_constraint(FixAtoms(indices=fixed))
    if magmoms is not None:
        atoms.set_initial_magnetic_moments(magmoms)
    return atoms


def atoms_to_dict(atoms: Atoms) -> dict:
    return {"symbols": atoms.get_chemical_symbols(), "positions": atoms.get_positions().tolist(),
            "cell": atoms.cell.array.tolist(), "pbc": [bool(p) for p in atoms.pbc]}


def _is_root(world) -> bool:
    return world is None or world.rank == 0


def _last_frames(path: Path, n: int) -> list[Atoms] | None:
    if not path.exists() or path.stat().st_size == 0:
        return None
    try:
        frames = Trajectory(str(path))
        return [frames[i] for i in range(max(0, len(frames) - n), len(frames))] if len(frames) else None
    except Exception:  # a trajectory cut mid-frame by a kill: start from the input geometry
        return None


def _all_frames(path: Path) -> list[Atoms]:
    try:
        return list(Trajectory(str(path)))
    except Exception:  # a trajectory cut mid-frame by a kill: no history to replay
        return []


def relax(atoms: Atoms, folder: Path, fmax: float, steps: int, optimizer: str = "BFGS", cell: bool = False,
          retry: tuple[type[Exception], Callable[[], Any]] | None = None, bfgs_alpha: float | None = None) -> dict[str, Any]:
    """Relax ``atoms`` (calculator attached); ``retry``: (exception, new calculator) for one more try
    from the current geometry; ``bfgs_alpha``: BFGS's initial Hessian (ASE's 70 eV/A^2 when None).
    Returns energy, forces, steps, convergence and the final atoms."""
    traj_path = folder / "relax.traj"
    restarts = 0
    last = _last_frames(traj_path, 1)
    if last:  # resume an interrupted relaxation from its last geometry
        atoms.positions = last[-1].positions
        if cell:
            atoms.set_cell(last[-1].cell, scale_atoms=False)
        restarts = 1
    opt_cls = FIRE if optimizer.upper() == "FIRE" else BFGS
    target = atoms
    if cell:
        from ase.filters import FrechetCellFilter

        target = FrechetCellFilter(atoms)
    done_frames = _all_frames(traj_path) if last and not cell else []
    traj = Trajectory(str(traj_path), "a", atoms)
    extra = {"alpha": bfgs_alpha} if bfgs_alpha and opt_cls is BFGS else {}
    opt = opt_cls(target, logfile=str(folder / "opt.log"), trajectory=traj, **extra)
    if done_frames and isinstance(opt, BFGS):
        # a resumed BFGS rebuilds its Hessian from the frames already computed instead of restarting from
        # H0 (ASE's replay; frames carry their constraints, so fixed atoms' forces are zero as in the run)
        opt.replay_trajectory(done_frames)
    try:
        converged = bool(opt.run(fmax=fmax, steps=steps))
    except Exception as exc:
        if retry is None or not isinstance(exc, retry[0]):
            raise
        atoms.calc = retry[1]()
        opt = opt_cls(target, logfile=str(folder / "opt.log"), trajectory=traj, **extra)
        converged = bool(opt.run(fmax=fmax, steps=steps))
    traj.close()
    forces = atoms.get_forces()
    return {
        "energy_eV": float(atoms.get_potential_energy()),
        "forces_max_eV_A": float(np.linalg.norm(forces, axis=1).max()) if len(forces) else 0.0,
        "n_ionic_steps": int(opt.nsteps),
        "converged": converged,
        "restarts": restarts,
        "atoms": atoms_to_dict(atoms),
        "files": {"trajectory": "relax.traj", "optimizer_log": "opt.log"},
    }


EOS_STRAINS = (-0.06, -0.04, -0.02, 0.0, 0.02, 0.04, 0.06)  # linear strains of the E(V) scan


def relax_cell_by_eos(atoms: Atoms, folder: Path, fmax: float, steps: int, optimizer: str = "BFGS",
                      is_root: bool = True) -> dict[str, Any]:
    """Cell relaxation for a calculator without stress (GPAW LCAO): energies at isotropically scaled cells
    (positions relaxed at each when the cell has more than one atom), a Birch-Murnaghan fit, the scan
    extended while the minimum sits at its edge, then the fitted volume with positions relaxed. Exact for
    cubic cells (the alkali metals used as references); isotropic only, so a non-cubic cell keeps its shape,
    which the result's method says. Each volume's energy is kept in eos.json, so a resumed task skips it."""
    import json

    from ase.eos import EquationOfState

    path = folder / "eos.json"
    done: dict[str, float] = json.loads(path.read_text()) if path.exists() else {}
    cell0 = atoms.cell.array.copy()
    v_start = atoms.get_volume()
    frac = atoms.get_scaled_positions()
    n_steps = 0

    def at_scale(x: float) -> Atoms:
        nonlocal n_steps
        a = atoms.copy()
        a.calc = atoms.calc
        a.set_cell(cell0 * x, scale_atoms=False)
        a.set_scaled_positions(frac)
        if len(a) > 1 and steps > 0:
            opt = (FIRE if optimizer.upper() == "FIRE" else BFGS)(a, logfile=str(folder / "opt.log"))
            opt.run(fmax=fmax, steps=steps)
            n_steps += opt.nsteps
        return a

    strains = list(EOS_STRAINS)
    for _ in range(4):  # at most 4 extensions of the scan (another +-8 % on the side of the minimum)
        for eps in strains:
            key = f"{eps:+.4f}"
            if key not in done:
                done[key] = float(at_scale(1 + eps).get_potential_energy())
                if is_root:
                    path.write_text(json.dumps(done, indent=1))
        keys = sorted(done, key=float)
        lowest = min(keys, key=done.get)
        if lowest not in (keys[0], keys[-1]):
            break
        step = 0.02 if lowest == keys[-1] else -0.02
        strains = [float(lowest) + step * i for i in (1, 2)]
    keys = sorted(done, key=float)
    volumes = [v_start * (1 + float(k)) ** 3 for k in keys]
    v0, _e0, bulk_modulus = EquationOfState(volumes, [done[k] for k in keys], eos="birchmurnaghan").fit()
    final = at_scale((v0 / v_start) ** (1 / 3))
    forces = final.get_forces()
    atoms.set_cell(final.cell, scale_atoms=False)
    atoms.positions = final.positions
    return {
        "energy_eV": float(final.get_potential_energy()),
        "forces_max_eV_A": float(np.linalg.norm(forces, axis=1).max()) if len(forces) else 0.0,
        "n_ionic_steps": n_steps,
        "converged": True,
        "restarts": 0,
        "atoms": atoms_to_dict(atoms),
        "cell_method": (f"E(V) Birch-Murnaghan fit over {len(keys)} isotropic volumes "
                        f"(linear strain {float(keys[0]):+.2f}..{float(keys[-1]):+.2f}), B = {bulk_modulus * 160.2177:.1f} GPa"),
        "files": {"eos": "eos.json"},
    }


def _path_coordinate(images: list[Atoms]) -> list[float]:
    """Cumulative distance along the band (minimum image), as ASE's NEB fit measures it."""
    from ase.geometry import find_mic

    out = [0.0]
    for a, b in zip(images[:-1], images[1:]):
        d, _ = find_mic(b.positions - a.positions, a.cell, a.pbc)
        out.append(out[-1] + float(np.linalg.norm(d)))
    return out


def neb(images: list[Atoms], endpoint_energies: list[float], folder: Path, settings: dict[str, Any],
        parallel: bool = False, world=None, shared_calculator: bool = False) -> dict[str, Any]:
    """CI-NEB (ASE, improved tangent, FIRE) over images whose moving calculators are attached;
    endpoints carry their given energies. Resumes from the last band in neb.traj.
    ``shared_calculator``: one stateless calculator serves every moving image (an MLIP: loading a model
    per image would cost memory for nothing); a DFT calculator keeps its wavefunctions, one per image."""
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.mep import NEB, NEBTools

    band = _last_frames(folder / "neb.traj", len(images))
    restarts = 0
    if band and len(band) == len(images):
        for a, b in zip(images[1:-1], band[1:-1]):
            a.positions = b.positions
        restarts = 1
    for a, e in zip((images[0], images[-1]), endpoint_energies):
        a.calc = SinglePointCalculator(a, energy=e, forces=np.zeros((len(a), 3)))
    climb = bool(settings.get("neb_climb", True))
    neb_obj = NEB(images, climb=climb, k=settings.get("neb_spring", 0.1), method="improvedtangent",
                  allow_shared_calculator=shared_calculator, parallel=parallel, world=world if parallel else None)
    opt = FIRE(neb_obj, logfile=str(folder / "neb.log"), trajectory=str(folder / "neb.traj"), append_trajectory=True)
    converged = bool(opt.run(fmax=settings.get("neb_fmax_eV_A", 0.1), steps=settings.get("neb_steps", 60)))
    if parallel:  # every rank gets every image's final energy and forces (broadcast by the NEB)
        neb_obj.get_forces()
        for a, e, f in zip(images[1:-1], neb_obj.energies[1:-1], neb_obj.real_forces[1:-1]):
            a.calc = SinglePointCalculator(a, energy=float(e), forces=f.copy())
    energies = [float(a.get_potential_energy()) for a in images]
    method = f"ASE NEB ({'climbing image, ' if climb else ''}improved tangent), FIRE"
    try:
        s, _e, sfit, efit, _lines = NEBTools(images).get_fit()
    except np.linalg.LinAlgError:
        # two neighbouring images coincide (a climbing image that reached an endpoint which is itself a saddle, not a
        # minimum): ASE's spline has no solution; the band's energies stand alone, joined by straight lines
        s = _path_coordinate(images)
        sfit, efit = s, [e - energies[0] for e in energies]
        method += "; no spline (two neighbouring images coincide: an endpoint is not a minimum)"
    if _is_root(world):
        with Trajectory(str(folder / "neb-final.traj"), "w") as t:
            for a in images:
                t.write(a)
    return {
        "energies_eV": energies,
        "reaction_coord_A": [float(x) for x in s],
        "spline_x_A": [float(x) for x in sfit],
        "spline_e_eV": [float(x) for x in efit],
        "converged": converged,
        "climbing": climb,
        "method": method,
        "n_images_moving": len(images) - 2,
        "images_in_parallel": parallel,
        "restarts": restarts,
        "images": [atoms_to_dict(a) for a in images],
        "files": {"band": "neb-final.traj", "log": "neb.log"},
    }
