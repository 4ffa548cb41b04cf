"""VASP output parsers -> hetero documents (CalcDoc, DosDoc, WorkFunctionDoc, NebDoc).

Built on pymatgen (>= 2026). Every reader first checks that its file is complete; a truncated or
corrupt file raises `OutputParseError` naming the file and never becomes numbers:
- vasprun.xml must close with ``</modeling>``;
- OUTCAR must hold VASP's final "General timing and accounting" block;
- CHGCAR/AECCAR/LOCPOT must hold nx*ny*nz values after the grid line;
- DOSCAR must hold NEDOS energy lines;
- a planar-average text file must hold two equal-length numeric rows.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from hetero.analysis.descriptors import band_gap_from_dos, dos_at_fermi
from hetero.schemas import CalcDoc, DosDoc, NebDoc, Provenance, WorkFunctionDoc, settings_hash


class OutputParseError(ValueError):
    """A VASP output file is missing, truncated or corrupt. ``path`` names the file."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason} (re-run or restore the file; it was not parsed)")


def _find(folder: Path, name: str) -> Path | None:
    for cand in (name, name + ".gz", name + ".bz2", name + ".xz"):
        p = folder / cand
        if p.exists():
            return p
    return None


def _read_text(path: Path) -> str:
    import gzip
    import bz2
    import lzma

    opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(path.suffix, open)
    try:
        with opener(path, "rt", errors="replace") as fh:
            return fh.read()
    except (OSError, EOFError) as exc:
        raise OutputParseError(path, f"cannot be read ({exc})") from exc


def _tail(path: Path, n: int = 4096) -> str:
    if path.suffix in (".gz", ".bz2", ".xz"):
        return _read_text(path)[-n:]
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - n))
        return fh.read().decode(errors="replace")


# ----------------------------------------------------------------------------------- completeness


def check_vasprun(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise OutputParseError(path, "file not found")
    if "</modeling>" not in _tail(path):
        raise OutputParseError(path, "truncated vasprun.xml (no closing </modeling>)")
    return path


def check_outcar(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise OutputParseError(path, "file not found")
    if "General timing and accounting" not in _tail(path, 20000):
        raise OutputParseError(path, "truncated OUTCAR (no final 'General timing and accounting' block)")
    return path


def check_volumetric(path: str | Path) -> tuple[int, int, int]:
    """Check that a CHGCAR-like file holds its full first grid; returns the grid shape."""
    path = Path(path)
    if not path.exists():
        raise OutputParseError(path, "file not found")
    lines = _read_text(path).splitlines()
    try:
        k = 5
        if lines[k].split()[0].isalpha():  # VASP 5 symbols line
            k += 1
        n_atoms = sum(int(x) for x in lines[k].split())
        k += 1
        if lines[k].strip()[:1].lower() == "s":  # Selective dynamics
            k += 1
        i = k + 1 + n_atoms  # after the Direct/Cartesian line and the coordinates
        while i < len(lines) and not lines[i].split():
            i += 1
        dims = tuple(int(x) for x in lines[i].split())
        if len(dims) != 3:
            raise ValueError("no nx ny nz grid line")
    except (IndexError, ValueError) as exc:
        raise OutputParseError(path, f"corrupt header ({exc})") from exc
    need = int(np.prod(dims))
    got = 0
    for line in lines[i + 1:]:
        toks = line.split()
        if not toks or toks[0].startswith("aug") or len(toks) == 3 and got >= need:
            break
        got += len(toks)
        if got >= need:
            break
    if got < need:
        raise OutputParseError(path, f"truncated grid: {got} of {need} values")
    return dims  # type: ignore[return-value]


# ----------------------------------------------------------------------------------- calc


def _provenance(run_dir: Path, incar: dict[str, Any], version: str = "") -> Provenance:
    settings = {k: v for k, v in dict(incar).items()}
    return Provenance(engine="vasp", engine_version=version, settings=settings,
                      settings_hash=settings_hash(settings), run_dir=str(run_dir))


def overflow_fields(path: str | Path) -> list[str]:
    """Quantities of the final ionic step that VASP printed as '*****' (a number too wide for its field).

    pymatgen reads such a force as NaN but silently mis-reads such an energy, so the text is checked."""
    text = _read_text(Path(path))
    last = text.rfind("<calculation>")
    if last < 0:
        return []
    block = text[last:]
    bad = []
    for name in ("forces", "stress"):
        a = block.find(f'<varray name="{name}"')
        if a >= 0 and "*" in block[a:block.find("</varray>", a)]:
            bad.append(name)
    for m in re.finditer(r'<i name="(e_fr_energy|e_wo_entrp|e_0_energy)">([^<]*)</i>', block):
        if "*" in m.group(2) and m.group(1) not in bad:
            bad.append(m.group(1))
    return bad


def load_vasprun(path: str | Path, parse_dos: bool = True):
    from pymatgen.io.vasp import Vasprun

    path = check_vasprun(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            vr = Vasprun(str(path), parse_potcar_file=False, parse_dos=parse_dos,
                         parse_eigen=True, parse_projected_eigen=False)
    except Exception as exc:  # noqa: BLE001 - pymatgen raises many types on bad XML
        raise OutputParseError(path, f"corrupt vasprun.xml ({type(exc).__name__}: {exc})") from exc
    bad = overflow_fields(path)
    if bad:
        raise OutputParseError(path, f"VASP printed '*****' for {', '.join(bad)} of the final ionic step (a value too "
                                     "large for its field): the run did not produce a valid result")
    return vr


def load_outcar(path: str | Path):
    from pymatgen.io.vasp import Outcar

    path = check_outcar(path)
    try:
        return Outcar(str(path))
    except Exception as exc:  # noqa: BLE001
        raise OutputParseError(path, f"corrupt OUTCAR ({type(exc).__name__}: {exc})") from exc


def parse_calc_dir(run_dir: str | Path, system: str = "", label: str = "", step: str | None = None) -> CalcDoc:
    """A finished VASP run directory -> CalcDoc (vasprun.xml preferred, OUTCAR + CONTCAR otherwise)."""
    run_dir = Path(run_dir)
    vr_path = _find(run_dir, "vasprun.xml")
    oc_path = _find(run_dir, "OUTCAR")
    files: dict[str, str] = {}
    for role, name in [("vasprun", "vasprun.xml"), ("outcar", "OUTCAR"), ("chgcar", "CHGCAR"),
                       ("aeccar0", "AECCAR0"), ("aeccar2", "AECCAR2"), ("locpot", "LOCPOT"),
                       ("doscar", "DOSCAR"), ("contcar", "CONTCAR")]:
        p = _find(run_dir, name)
        if p is not None:
            files[role] = str(p)
    magmom = None
    if vr_path is not None:
        vr = load_vasprun(vr_path, parse_dos=True)  # E_F lives in the DOS block
        structure = vr.final_structure
        last = vr.ionic_steps[-1]
        forces = np.asarray(last.get("forces", []), dtype=float)
        incar = dict(vr.incar)
        nsw = int(incar.get("NSW", 0) or 0)
        ibrion = int(incar.get("IBRION", -1) if incar.get("IBRION") is not None else -1)
        n_ionic = len(vr.ionic_steps)
        if step is None:
            step = "relax" if nsw > 0 and ibrion in (1, 2, 3) else "static"
        converged = bool(vr.converged_electronic and (vr.converged_ionic if step == "relax" else True))
        energy = float(vr.final_energy)
        fermi = float(vr.efermi) if vr.efermi is not None else None
        n_scf = len(last.get("electronic_steps", [])) or None
        version = str(getattr(vr, "vasp_version", "") or "")
        if oc_path is not None:
            try:
                oc = load_outcar(oc_path)
                tm = oc.total_mag
                magmom = float(tm) if tm is not None else None
            except OutputParseError:
                pass
    elif oc_path is not None:
        from pymatgen.core import Structure

        oc = load_outcar(oc_path)
        cont = _find(run_dir, "CONTCAR") or _find(run_dir, "POSCAR")
        if cont is None:
            raise OutputParseError(run_dir / "CONTCAR", "no vasprun.xml and no CONTCAR/POSCAR for the structure")
        structure = Structure.from_file(str(cont))
        if oc.final_energy is None:
            raise OutputParseError(oc_path, "no final energy")
        energy, fermi = float(oc.final_energy), (float(oc.efermi) if oc.efermi is not None else None)
        forces = np.empty((0, 3))
        incar = {}
        incar_p = _find(run_dir, "INCAR")
        if incar_p is not None:
            from pymatgen.io.vasp import Incar

            incar = dict(Incar.from_file(str(incar_p)))
        step = step or ("relax" if int(incar.get("NSW", 0) or 0) > 0 else "static")
        n_ionic, n_scf, converged, version = None, None, True, ""
        magmom = float(oc.total_mag) if oc.total_mag is not None else None
    else:
        raise OutputParseError(run_dir / "vasprun.xml", "no vasprun.xml or OUTCAR in the run directory")
    fmax = None
    if forces.size and np.all(np.isfinite(forces)):
        fmax = float(np.linalg.norm(forces, axis=1).max())
    return CalcDoc(system=system or structure.composition.reduced_formula, label=label, step=step,
                   formula=structure.composition.formula.replace(" ", ""), n_atoms=len(structure),
                   energy_eV=energy, forces_max_eV_A=fmax, fermi_eV=fermi, n_scf=n_scf,
                   n_ionic_steps=n_ionic, converged=converged, magmom_total=magmom,
                   structure=structure.as_dict(), files=files,
                   provenance=_provenance(run_dir, incar, version))


# ----------------------------------------------------------------------------------- DOS


def parse_doscar(path: str | Path) -> dict[str, Any]:
    """Total DOS of a DOSCAR: energies (absolute, eV), total (spin summed), integrated, E_F, NEDOS."""
    path = Path(path)
    if not path.exists():
        raise OutputParseError(path, "file not found")
    lines = _read_text(path).splitlines()
    try:
        emax, emin, nedos, efermi = lines[5].split()[:4]
        nedos = int(nedos)
        rows = np.array([[float(x) for x in ln.split()] for ln in lines[6:6 + nedos]])
    except (IndexError, ValueError) as exc:
        raise OutputParseError(path, f"corrupt DOSCAR ({exc})") from exc
    if rows.ndim != 2 or rows.shape[0] != nedos or rows.shape[1] not in (3, 5):
        raise OutputParseError(path, f"truncated DOSCAR: {rows.shape[0] if rows.ndim == 2 else 0} of {nedos} "
                                     "energy lines")
    if rows.shape[1] == 3:
        total, integ = rows[:, 1], rows[:, 2]
    else:
        total, integ = rows[:, 1] + rows[:, 2], rows[:, 3] + rows[:, 4]
    return {"energies": rows[:, 0], "total": total, "integrated": integ, "efermi": float(efermi),
            "nedos": nedos, "spin_polarized": rows.shape[1] == 5}


def parse_dos(run_dir: str | Path, system: str = "", label: str = "",
              threshold: float | None = None) -> DosDoc:
    """DOS of a run directory -> DosDoc. vasprun.xml preferred (total + element-projected DOS);
    a DOSCAR alone gives the total DOS. The band gap is the eigenvalue gap when vasprun.xml has
    eigenvalues (metal if 0), else the DOS gap at ``threshold`` states/eV."""
    from hetero.analysis.descriptors import DOS_ZERO_THRESHOLD

    run_dir = Path(run_dir)
    thr = DOS_ZERO_THRESHOLD if threshold is None else threshold
    vr_path = _find(run_dir, "vasprun.xml")
    projected: dict[str, list[float]] = {}
    n_valence = None
    version = ""
    if vr_path is not None:
        vr = load_vasprun(vr_path, parse_dos=True)
        if vr.complete_dos is None and vr.tdos is None:
            raise OutputParseError(vr_path, "no DOS in vasprun.xml")
        efermi = float(vr.efermi)
        tdos = vr.tdos
        energies = np.asarray(tdos.energies, dtype=float)
        total = np.sum([np.asarray(d) for d in tdos.densities.values()], axis=0)
        try:
            for el, d in vr.complete_dos.get_element_dos().items():
                projected[str(el)] = np.sum([np.asarray(x) for x in d.densities.values()], axis=0).tolist()
        except Exception:  # noqa: BLE001 - no projections (LORBIT unset)
            projected = {}
        gap_e, _, _, _ = vr.eigenvalue_band_properties
        n_valence = float(vr.parameters.get("NELECT")) if vr.parameters.get("NELECT") else None
        incar = dict(vr.incar)
        version = str(getattr(vr, "vasp_version", "") or "")
        dos_gap = band_gap_from_dos(energies, total, efermi, thr)
        band_gap = float(gap_e)
        is_metal = band_gap <= 1e-3
        if is_metal:
            band_gap = 0.0
    else:
        dp = _find(run_dir, "DOSCAR")
        if dp is None:
            raise OutputParseError(run_dir / "vasprun.xml", "no vasprun.xml or DOSCAR in the run directory")
        d = parse_doscar(dp)
        efermi, energies, total = d["efermi"], d["energies"], d["total"]
        dos_gap = band_gap_from_dos(energies, total, efermi, thr)
        band_gap, is_metal = dos_gap.band_gap_eV, dos_gap.is_metal
        incar = {}
    rel = energies - efermi
    occ = rel <= 0
    n_int = float(np.trapezoid(total[occ], energies[occ])) if occ.sum() > 1 else None
    settings = dict(incar)
    settings["dos_zero_threshold"] = thr
    settings["dos_band_gap_eV"] = dos_gap.band_gap_eV
    return DosDoc(system=system or run_dir.name, label=label, energies_eV=rel.tolist(), total=total.tolist(),
                  projected=projected, fermi_eV=efermi, band_gap_eV=band_gap, is_metal=is_metal,
                  dos_at_fermi=dos_at_fermi(energies, total, efermi), n_electrons_integrated=n_int,
                  n_valence=n_valence, provenance=_provenance(run_dir, settings, version))


# ----------------------------------------------------------------------------------- charge density


def read_chgcar(path: str | Path, kind: str = "Chgcar"):
    """A pymatgen volumetric file (Chgcar, Locpot or Elfcar) after a completeness check."""
    import pymatgen.io.vasp as pmg_vasp

    path = Path(path)
    dims = check_volumetric(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            chg = getattr(pmg_vasp, kind).from_file(str(path))
    except Exception as exc:  # noqa: BLE001
        raise OutputParseError(path, f"corrupt volumetric file ({type(exc).__name__}: {exc})") from exc
    grid = np.asarray(next(iter(chg.data.values())))  # "total" (CHGCAR, LOCPOT) or "spin_up" (spin ELFCAR)
    if tuple(grid.shape) != tuple(dims) or not np.all(np.isfinite(grid)):
        raise OutputParseError(path, "grid shape or values inconsistent with the header")
    return chg


def integrate_chgcar(path_or_chg) -> float:
    """Electrons in a CHGCAR: VASP stores rho*V_cell, so N = sum(data) / n_grid."""
    chg = read_chgcar(path_or_chg) if isinstance(path_or_chg, (str, Path)) else path_or_chg
    d = chg.data["total"]
    return float(d.sum() / d.size)


def bader_reference_chgcar(run_dir: str | Path, out_name: str = "CHGCAR_sum"):
    """AECCAR0 + AECCAR2 (core + valence all-electron density) for Bader's reference; written to
    ``run_dir/out_name`` and returned with its path."""
    run_dir = Path(run_dir)
    a0, a2 = _find(run_dir, "AECCAR0"), _find(run_dir, "AECCAR2")
    if a0 is None or a2 is None:
        raise OutputParseError(run_dir / "AECCAR0", "AECCAR0/AECCAR2 missing: run with LAECHG = True")
    c0, c2 = read_chgcar(a0), read_chgcar(a2)
    total = c0.linear_add(c2)
    out = run_dir / out_name
    total.write_file(str(out))
    return total, out


# ----------------------------------------------------------------------------------- work function


def read_planar_average_txt(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Planar-average text file: row 1 = positions (A), row 2 = potential (eV), comma or space separated
    (MPInterfaces' locpot_data.txt format); two-column files (z V per line) are accepted too."""
    path = Path(path)
    if not path.exists():
        raise OutputParseError(path, "file not found")
    rows = [ln for ln in _read_text(path).splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    try:
        if len(rows) == 2 and len(re.split(r"[,\s]+", rows[0].strip())) > 2:
            z = np.array([float(x) for x in re.split(r"[,\s]+", rows[0].strip())])
            v = np.array([float(x) for x in re.split(r"[,\s]+", rows[1].strip())])
        else:
            arr = np.array([[float(x) for x in re.split(r"[,\s]+", r.strip())] for r in rows])
            z, v = arr[:, 0], arr[:, 1]
    except (ValueError, IndexError) as exc:
        raise OutputParseError(path, f"not a planar-average file ({exc})") from exc
    if z.size != v.size or z.size < 8 or not (np.all(np.isfinite(z)) and np.all(np.isfinite(v))):
        raise OutputParseError(path, f"positions ({z.size}) and potential ({v.size}) rows differ or are too short")
    if np.any(np.diff(z) <= 0):
        raise OutputParseError(path, "positions are not increasing")
    return z, v


def parse_work_function(run_dir: str | Path, system: str = "", label: str = "",
                        planar_file: str | Path | None = None, fermi_eV: float | None = None,
                        shifted_reference: str = "auto") -> WorkFunctionDoc:
    """LOCPOT (or a planar-average text file) + E_F (vasprun/OUTCAR) -> WorkFunctionDoc.

    ``shifted_reference``: a text file may hold a potential already shifted by a constant (MPInterfaces
    subtracts the vacuum maximum, so max == 0 exactly). "auto" detects max == 0 and then restores the
    absolute scale with VASP's zero cell average (see analysis.workfunction.absolute_from_cell_average);
    "cell_average" forces that; "none" uses the values as they are.
    """
    from hetero.analysis.workfunction import absolute_from_cell_average, work_function

    run_dir = Path(run_dir)
    atom_z = None
    cell_length = None
    restored = False
    if planar_file is None and _find(run_dir, "LOCPOT") is not None:
        from pymatgen.io.vasp import Locpot

        lp_path = _find(run_dir, "LOCPOT")
        check_volumetric(lp_path)
        try:
            lp = Locpot.from_file(str(lp_path))
        except Exception as exc:  # noqa: BLE001
            raise OutputParseError(lp_path, f"corrupt LOCPOT ({exc})") from exc
        v = np.asarray(lp.get_average_along_axis(2), dtype=float)
        lat = lp.structure.lattice.matrix
        cell_length = float(abs(np.linalg.det(lat)) / np.linalg.norm(np.cross(lat[0], lat[1])))
        z = np.arange(v.size) * cell_length / v.size
        atom_z = lp.structure.frac_coords[:, 2] % 1.0 * cell_length
        source = str(lp_path)
    else:
        pf = Path(planar_file) if planar_file else run_dir / "locpot_data.txt"
        z, v = read_planar_average_txt(pf)
        source = str(pf)
        mode = shifted_reference
        if mode == "auto":
            mode = "cell_average" if v.max() == 0.0 else "none"
        if mode == "cell_average":
            v = absolute_from_cell_average(v)
            restored = True
        cont = _find(run_dir, "CONTCAR") or _find(run_dir, "POSCAR")
        if cont is not None:
            from pymatgen.core import Structure

            s = Structure.from_file(str(cont))
            lat = s.lattice.matrix
            cell_length = float(abs(np.linalg.det(lat)) / np.linalg.norm(np.cross(lat[0], lat[1])))
            atom_z = s.frac_coords[:, 2] % 1.0 * cell_length
    incar: dict[str, Any] = {}
    version = ""
    if fermi_eV is None:
        vr_p, oc_p = _find(run_dir, "vasprun.xml"), _find(run_dir, "OUTCAR")
        if vr_p is not None:
            vr = load_vasprun(vr_p, parse_dos=True)
            fermi_eV, incar, version = float(vr.efermi), dict(vr.incar), str(getattr(vr, "vasp_version", ""))
        elif oc_p is not None:
            fermi_eV = float(load_outcar(oc_p).efermi)
        else:
            raise OutputParseError(run_dir / "vasprun.xml", "no Fermi level: need vasprun.xml or OUTCAR")
    res = work_function(z, v, fermi_eV, cell_length=cell_length, atom_z=atom_z)
    settings = dict(incar)
    settings.update({"potential_source": source, "potential_restored_from_cell_average": restored})
    return WorkFunctionDoc(system=system or run_dir.name, label=label, z_A=np.asarray(z).tolist(),
                           planar_potential_eV=np.asarray(v).tolist(), fermi_eV=float(fermi_eV),
                           vacuum_top_eV=res.vacuum_top_eV, vacuum_bottom_eV=res.vacuum_bottom_eV,
                           work_function_top_eV=res.work_function_top_eV,
                           work_function_bottom_eV=res.work_function_bottom_eV,
                           provenance=_provenance(run_dir, settings, version))


# ----------------------------------------------------------------------------------- NEB


def _float(tok: str) -> float:
    try:
        return float(tok)
    except ValueError:  # '*****' or a run-together overflow
        return float("nan")


def outcar_neb_image(path: str | Path, fixed: list[int] | None = None) -> dict[str, Any]:
    """What a NEB image's OUTCAR says about the band: the VTST banner (None: plain VASP), VTST's last
    'FORCES: max atom, RMS' (the NEB force it converges on), the largest force on a free atom in the last
    TOTAL-FORCE block (NaN for '*****'), and whether VASP reached the required accuracy."""
    path = check_outcar(path)
    text = _read_text(path)
    vtst = re.search(r"VTST: version\s*([^\n]*)", text)
    neb_forces = re.findall(r"FORCES: max atom, RMS\s+(\S+)\s+(\S+)", text)
    blocks = text.split("TOTAL-FORCE (eV/Angst)")
    free_max = None
    if len(blocks) > 1:
        rows = []
        for line in blocks[-1].splitlines()[2:]:
            if line.lstrip().startswith("---"):
                break
            toks = line.split()
            if len(toks) >= 6:
                rows.append([_float(t) for t in toks[3:6]])
        f = np.array(rows, dtype=float).reshape(-1, 3)
        if fixed:
            f[[i for i in fixed if i < len(f)]] = 0.0
        free_max = float(np.linalg.norm(f, axis=1).max()) if len(f) else None
    return {
        "vtst_version": vtst.group(1).strip() if vtst else None,
        "neb_force_max": _float(neb_forces[-1][0]) if neb_forces else None,
        "force_max_free": free_max,
        "reached_accuracy": "reached required accuracy" in text,
    }


def parse_neb_dir(neb_dir: str | Path, system: str = "", ion: str = "", path: str = "",
                  endpoint_energies: tuple[float, float] | None = None, climbing: bool = True) -> NebDoc:
    """A VASP NEB folder (00 .. NN, OUTCAR in every intermediate image) -> NebDoc.

    Endpoint energies come from 00/OUTCAR and NN/OUTCAR when present, else from ``endpoint_energies``
    (the adsorption results). The reaction coordinate is the cumulative minimum-image distance between
    consecutive images; hop_length_A is the largest single-atom displacement between the endpoints.
    """
    from pymatgen.core import Structure
    from scipy.interpolate import CubicSpline

    neb_dir = Path(neb_dir)
    images = sorted(p for p in neb_dir.iterdir() if p.is_dir() and re.fullmatch(r"\d{2}", p.name))
    if len(images) < 3:
        raise OutputParseError(neb_dir, f"NEB folder needs 00..NN with >= 1 intermediate image, found {len(images)}")
    energies, structures, converged = [], [], True
    for k, img in enumerate(images):
        oc_p = _find(img, "OUTCAR")
        st_p = _find(img, "CONTCAR") or _find(img, "POSCAR")
        if st_p is None:
            raise OutputParseError(img / "POSCAR", "image has no CONTCAR/POSCAR")
        structures.append(Structure.from_file(str(st_p)))
        endpoint = k in (0, len(images) - 1)
        if oc_p is not None:
            oc = load_outcar(oc_p)
            if oc.final_energy is None:
                raise OutputParseError(oc_p, "no final energy")
            energies.append(float(oc.final_energy))
        elif endpoint and endpoint_energies is not None:
            energies.append(float(endpoint_energies[0 if k == 0 else 1]))
        else:
            raise OutputParseError(img / "OUTCAR", "missing OUTCAR" + (" (pass endpoint_energies)" if endpoint else ""))
    e = np.array(energies)
    rc = [0.0]
    for a, b in zip(structures[:-1], structures[1:]):
        df = b.frac_coords - a.frac_coords
        df -= np.round(df)
        rc.append(rc[-1] + float(np.linalg.norm(b.lattice.get_cartesian_coords(df))))
    rc_arr = np.array(rc)
    df = structures[-1].frac_coords - structures[0].frac_coords
    df -= np.round(df)
    hop = float(np.linalg.norm(structures[0].lattice.get_cartesian_coords(df), axis=1).max())
    rel = e - e[0]
    sx = np.linspace(0, rc_arr[-1], 101)
    sy = CubicSpline(rc_arr, rel, bc_type="clamped")(sx) if np.all(np.diff(rc_arr) > 0) else np.interp(sx, rc_arr, rel)
    return NebDoc(system=system or neb_dir.name, ion=ion, path=path, reaction_coord_A=rc_arr.tolist(),
                  energies_eV=rel.tolist(), spline_x_A=sx.tolist(), spline_e_eV=np.asarray(sy).tolist(),
                  barrier_eV=float(rel.max()), hop_length_A=hop,
                  endpoint_energies_eV=[float(e[0]), float(e[-1])], climbing=climbing, converged=converged,
                  provenance=_provenance(neb_dir, {}, ""))
