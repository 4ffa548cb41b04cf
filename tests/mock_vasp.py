#!/usr/bin/env python
"""MOCK VASP for tests: an executable that stands in for `vasp_std` (HETERO_VASP_CMD="python tests/mock_vasp.py").

Its outputs test hetero's code (engine, parsers, custodian handlers and validators, flows, table) and are never
results: the numbers mean nothing physically.

Run in a VASP input folder, it
1. recognises the step from its input and checks the tags that step must have (a failed check prints
   "mock VASP: INCAR check failed ..." and exits 1, as a VASP abort would, so custodian and the campaign fail):
   - relax-slab (NSW > 0, IBRION 1-3, vacuum along c): ISIF 2, IBRION 2, EDIFFG < 0, LDIPOL + IDIPOL 3 when the
     slab is asymmetric (atoms held fixed, or another species on one side), none on a symmetric free slab;
   - relax-bulk (no vacuum): ISIF 3, no dipole correction;
   - static-slab: NSW 0, LCHARG, LAECHG, LVHAR (the campaign asks for Bader, CDD and the work function), the
     dipole correction when another species sits on one side;
   - static-fragment (a CDD fragment: NGXF/NGYF/NGZF pinned): LCHARG, LAECHG; ISPIN 2 for a one-atom fragment;
   - static-atom (one atom, >= 8 A of vacuum every way): ISPIN 2 on a 1x1x1 Gamma mesh;
   - static-bulk: NSW 0, no dipole correction;
   - dos (ICHARG 11): LORBIT 11, NEDOS, LCHARG False, the static's CHGCAR present, a mesh no coarser than ../KPOINTS;
   - neb (IMAGES): IMAGES = the number of moving image folders, IBRION 3, POTIM 0, IOPT, LCLIMB, SPRING,
     EDIFFG < 0, ISYM 0, the same atoms in every image;
   - a static with LELF (ELF requested): NPAR = 1 and KPAR = 1 (VASP wiki LELF; VASP stops on LELF with KPAR > 1);
   - every step: a Gamma-centred mesh with one k-point along each vacuum axis.
   MOCK_VASP_REQUIRE="kind:TAG=value;TAG=value" adds required tags (a kind prefix limits one to steps whose kind
   starts with it), e.g. to make a test campaign fail on purpose. Every call appends one JSON line
   {kind, folder, checked, problems} to MOCK_VASP_LOG when that is set.
2. writes outputs from the real VASP outputs in ../shared/reference/vasp used as templates, with the input
   structure transplanted:
   - vasprun.xml from fermi_smearing/ (a metallic Al run: k-points, eigenvalues, E_F and the DOS stay the
     template's): INCAR block and parameters from this INCAR, atominfo from POSCAR + POTCAR(.spec) with ZVAL
     from pymatgen's POTCAR summary data (PBE_54, or MOCK_VASP_POTCAR_FUNCTIONAL), every structure = POSCAR,
     forces 0 on every atom, the template's per-ion projected DOS copied to every atom, projected eigenvalues
     dropped, the spin-2 channel dropped when ISPIN is 1, one ionic step for statics (two for a relaxation);
   - OUTCAR from hBN_monolayer_bands/ (the OUTCAR in that folder, a spin-polarised run): POTCAR/ZVAL lines,
     ions per type, lattice, positions, per-ion charge/magnetisation/force tables, energies, E-fermi and the
     magnetisation rewritten; "reached required accuracy" added to relaxations and NEB images, and to NEB
     images a VTST banner (the mock plays a VASP built with VTST) with NEB force 0;
   - CONTCAR = POSCAR (nothing moves: the mock's relaxations end where they start), a two-line-per-step OSZICAR.
   Volumetric files cannot be taken from another structure; they come from a stated model on the grid
   NGXF x NGYF x NGZF of the INCAR, else the smallest FFT-friendly even grid with spacing <= 0.12 A:
   - CHGCAR (and AECCAR2): every atom's ZVAL electrons as a Gaussian (sigma 0.6 A), plus for ISPIN 2 a
     magnetisation block of each atom's MAGMOM with the same shape;
   - AECCAR0: every atom's Z - ZVAL core electrons as a Gaussian (sigma 0.25 A);
   each Gaussian is normalised on the grid, so every atom's charge integrates exactly to its count;
   - LOCPOT: the electron's electrostatic energy (eV) of the neutral atoms (ion +ZVAL with the core width,
     minus the valence Gaussian), from Poisson's equation by FFT; neutral spherical atoms give a flat vacuum;
   - ELFCAR (LELF): NOT an electron localisation function, a bounded stand-in for one: rho / (rho + <rho>) of the
     valence model above (<rho> its cell average), in [0, 1), high at the atoms, 0 in vacuum; for ISPIN 2 one
     block per spin channel as VASP writes them (up, then down) from rho_up/down = (rho +- magnetisation) / 2.
Energies: E = sum_i(-ZVAL_i) + sum over pairs within 6 A of a Morse term D[(1 - exp(-a(r - r0)))^2 - 1] with
D = 0.3 eV, a = 1.5 /A and r0 the sum of pymatgen's atomic radii; deterministic and different for every
structure, so sites, references and NEB images get distinct energies. The stated generator version and the
OUTCAR's first line say "mock_vasp".
"""

from __future__ import annotations

import copy
import json
import os
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _refdata import reference_vasp_dir  # noqa: E402

MOCK_VERSION = "5.4.4 mock_vasp (template outputs, not a calculation)"
SIGMA_VAL_A, SIGMA_CORE_A, GRID_SPACING_A = 0.6, 0.25, 0.12
MORSE_D_EV, MORSE_A, PAIR_CUTOFF_A = 0.3, 1.5, 6.0
COULOMB_EV_A = 14.399645  # e^2 / (4 pi eps0) in eV A


class CheckFailed(Exception):
    pass


# ------------------------------------------------------------------------------------------ input
def potcar_types(folder: Path, poscar) -> list[dict]:
    """One entry per POSCAR species block: symbol, POTCAR name, TITEL, VRHFIN, ZVAL, mass, count."""
    from pymatgen.core import Element
    from pymatgen.io.vasp.inputs import _load_potcar_summary_stats

    spec = folder / "POTCAR.spec"
    if spec.exists():
        names = spec.read_text().split()
    else:
        from pymatgen.io.vasp import Potcar

        names = [p.symbol for p in Potcar.from_file(str(folder / "POTCAR"))]
    if len(names) != len(poscar.site_symbols):
        raise CheckFailed(f"POTCAR has {len(names)} entries, POSCAR {len(poscar.site_symbols)} species blocks")
    functional = os.environ.get("MOCK_VASP_POTCAR_FUNCTIONAL", "PBE_54")
    stats = _load_potcar_summary_stats()[functional]
    out = []
    for name, el, n in zip(names, poscar.site_symbols, poscar.natoms):
        hits = [(key, e) for key, entries in stats.items() for e in entries if e["symbol"] == name]
        if not hits:
            raise CheckFailed(f"no POTCAR '{name}' in pymatgen's {functional} summary data")
        key, entry = hits[0]
        date = key[len("PAW_PBE") + len(name):]
        if not entry["VRHFIN"].startswith(el + ":"):
            raise CheckFailed(f"POTCAR '{name}' is for {entry['VRHFIN'].split(':')[0]}, POSCAR says {el}")
        out.append({"element": el, "name": name, "titel": f"PAW_PBE {name} {date}", "vrhfin": entry["VRHFIN"],
                    "zval": float(entry["ZVAL"]), "mass": float(Element(el).atomic_mass), "count": int(n)})
    return out


def vacuum_axes(structure, gap_A: float = 5.0) -> list[int]:
    """Axes along which the atoms leave an empty gap of at least gap_A."""
    axes = []
    for ax in range(3):
        f = np.sort(structure.frac_coords[:, ax] % 1.0)
        gaps = np.diff(np.r_[f, f[0] + 1.0]) * structure.lattice.abc[ax]
        if gaps.max() >= gap_A:
            axes.append(ax)
    return axes


def species_asymmetric(structure, tol_A: float = 0.1) -> bool:
    """True when the species' heights along c do not mirror through the slab's middle (e.g. an ion on one side)."""
    z = structure.cart_coords[:, 2]
    mid = (z.max() + z.min()) / 2
    syms = [sp.symbol for sp in structure.species]
    for zi, s in zip(z, syms):
        if not any(abs((2 * mid - zi) - zj) < tol_A and t == s for zj, t in zip(z, syms)):
            return True
    return False


def classify(folder: Path, incar, structure) -> str:
    if "IMAGES" in incar:
        return "neb"
    if incar.get("ICHARG") == 11:
        return "dos"
    vac = vacuum_axes(structure)
    relax = int(incar.get("NSW", 0) or 0) > 0 and incar.get("IBRION", -1) in (1, 2, 3)
    if relax:
        return "relax-slab" if vac else "relax-bulk"
    if len(structure) == 1 and len(vac) == 3 and min(structure.lattice.abc) >= 8.0:
        return "static-atom"
    if all(k in incar for k in ("NGXF", "NGYF", "NGZF")):
        return "static-fragment"
    return "static-slab" if vac else "static-bulk"


def check_inputs(folder: Path, kind: str, incar, kpoints, poscar) -> list[str]:
    """The tags this kind of step must have; returns what was checked, raises CheckFailed listing what is wrong."""
    s = poscar.structure
    problems: list[str] = []
    checked: list[str] = []

    def need(ok: bool, what: str) -> None:
        checked.append(what)
        if not ok:
            problems.append(what)

    def eq(tag, value):
        return incar.get(tag) == value

    vac = vacuum_axes(s)
    need(kpoints.style.name.lower().startswith("gamma"), "KPOINTS Gamma-centred")
    mesh = [int(k) for k in kpoints.kpts[0]]
    for ax in vac:
        need(mesh[ax] == 1, f"k_{'xyz'[ax]} = 1 (vacuum along {'abc'[ax]})")
    fixed = any(not any(f) for f in poscar.selective_dynamics or [])
    dipole = eq("LDIPOL", True) and eq("IDIPOL", 3)
    if kind == "relax-slab":
        need(eq("ISIF", 2), "ISIF = 2")
        need(eq("IBRION", 2), "IBRION = 2")
        need(float(incar.get("EDIFFG", 0)) < 0, "EDIFFG < 0 (force criterion)")
        if fixed or species_asymmetric(s):
            need(dipole, "LDIPOL = True, IDIPOL = 3 (asymmetric slab)")
        else:
            need("LDIPOL" not in incar and "IDIPOL" not in incar, "no LDIPOL/IDIPOL (symmetric slab)")
    elif kind == "relax-bulk":
        need(eq("ISIF", 3), "ISIF = 3")
        need("LDIPOL" not in incar, "no LDIPOL (bulk)")
    elif kind.startswith("static"):
        need(int(incar.get("NSW", 0) or 0) == 0, "NSW = 0")
        if incar.get("LELF"):
            need(incar.get("NPAR") == 1 and incar.get("KPAR", 1) == 1, "NPAR = 1, KPAR = 1 (LELF)")
        if kind == "static-slab":
            for tag in ("LCHARG", "LAECHG", "LVHAR"):
                need(eq(tag, True), f"{tag} = True")
            if species_asymmetric(s):
                need(dipole, "LDIPOL = True, IDIPOL = 3 (one side differs)")
        elif kind == "static-fragment":
            need(eq("LCHARG", True) and eq("LAECHG", True), "LCHARG, LAECHG = True (fragment density)")
            if len(s) == 1:
                need(eq("ISPIN", 2), "ISPIN = 2 (one-atom fragment)")
        elif kind == "static-atom":
            need(eq("ISPIN", 2), "ISPIN = 2 (isolated atom)")
            need(mesh == [1, 1, 1], "1x1x1 mesh (isolated atom)")
        else:
            need("LDIPOL" not in incar, "no LDIPOL (bulk)")
    elif kind == "dos":
        need(eq("LORBIT", 11), "LORBIT = 11")
        need("NEDOS" in incar, "NEDOS set")
        need(not incar.get("LCHARG", True), "LCHARG = False")
        need((folder / "CHGCAR").is_file() and (folder / "CHGCAR").stat().st_size > 0, "CHGCAR of the static present")
        scf = folder.parent / "KPOINTS"
        if scf.exists():
            from pymatgen.io.vasp import Kpoints

            scf_mesh = [int(k) for k in Kpoints.from_file(str(scf)).kpts[0]]
            need(all(m >= k for m, k in zip(mesh, scf_mesh)), f"mesh {mesh} no coarser than the SCF's {scf_mesh}")
    elif kind == "neb":
        images = sorted(p for p in folder.iterdir() if p.is_dir() and re.fullmatch(r"\d\d", p.name))
        need(int(incar.get("IMAGES", 0)) == len(images) - 2 >= 1, f"IMAGES = {len(images) - 2} moving image folders")
        need(eq("IBRION", 3) and incar.get("POTIM") == 0, "IBRION = 3, POTIM = 0 (VTST optimiser)")
        need("IOPT" in incar, "IOPT set")
        need(eq("LCLIMB", True), "LCLIMB = True")
        need("SPRING" in incar, "SPRING set")
        need(float(incar.get("EDIFFG", 0)) < 0, "EDIFFG < 0 (force criterion)")
        need(eq("ISYM", 0), "ISYM = 0")
        from pymatgen.io.vasp import Poscar

        species = {tuple(Poscar.from_file(str(d / "POSCAR")).site_symbols) for d in images}
        need(len(species) == 1, "the same atoms in every image")
    for item in filter(None, os.environ.get("MOCK_VASP_REQUIRE", "").split(";")):
        scope, _, tagval = item.rpartition(":")
        if scope and not kind.startswith(scope):
            continue
        tag, _, val = tagval.partition("=")
        from pymatgen.io.vasp import Incar

        want = Incar.proc_val(tag.strip().upper(), val.strip())
        need(incar.get(tag.strip().upper()) == want, f"{tag.strip().upper()} = {val.strip()} (MOCK_VASP_REQUIRE)")
    if problems:
        raise CheckFailed("; ".join(problems))
    return checked


# ------------------------------------------------------------------------------------------ model
def model_energy(structure, zvals: list[float]) -> float:
    from pymatgen.core import Element

    radius = {el: float(Element(el).atomic_radius or 1.5) for el in {sp.symbol for sp in structure.species}}
    syms = [sp.symbol for sp in structure.species]
    e = -float(sum(zvals))
    if len(structure) > 1 or min(structure.lattice.abc) < PAIR_CUTOFF_A:
        i, j, _, d = structure.get_neighbor_list(PAIR_CUTOFF_A)
        r0 = np.array([radius[syms[a]] + radius[syms[b]] for a, b in zip(i, j)])
        morse = MORSE_D_EV * ((1 - np.exp(-MORSE_A * (d - r0))) ** 2 - 1)
        e += 0.5 * float(morse.sum())  # each pair is listed twice
    return e


def fft_grid(structure, incar) -> list[int]:
    if all(k in incar for k in ("NGXF", "NGYF", "NGZF")):
        return [int(incar[k]) for k in ("NGXF", "NGYF", "NGZF")]

    def friendly(n: int) -> int:
        while True:
            m = n
            for p in (2, 3, 5):
                while m % p == 0:
                    m //= p
            if m == 1 and n % 2 == 0:
                return n
            n += 1

    return [friendly(int(np.ceil(length / GRID_SPACING_A))) for length in structure.lattice.abc]


def atom_gaussians(structure, grid: list[int], sigma: float) -> list[np.ndarray]:
    """Per atom, a Gaussian of width sigma (minimum image) normalised to 1 electron on the grid (e/A^3)."""
    voxel = structure.volume / np.prod(grid)
    axes = [np.arange(n) / n for n in grid]
    frac = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    out = []
    for f in structure.frac_coords:
        d = frac - f
        d -= np.round(d)
        r2 = np.sum((d @ structure.lattice.matrix) ** 2, axis=-1)
        g = np.exp(-r2 / (2 * sigma**2))
        out.append(g / (g.sum() * voxel))
    return out


def electrostatic_energy(structure, charge_e_A3: np.ndarray) -> np.ndarray:
    """Electron potential energy (eV) of a neutral periodic charge density (e/A^3), zero cell average."""
    n = charge_e_A3.shape
    rec = structure.lattice.reciprocal_lattice.matrix  # includes 2 pi
    m = np.stack(np.meshgrid(*[np.fft.fftfreq(k, 1.0 / k) for k in n], indexing="ij"), axis=-1)
    g2 = np.sum((m @ rec) ** 2, axis=-1)
    g2[0, 0, 0] = 1.0
    phi_g = 4 * np.pi * np.fft.fftn(charge_e_A3) / g2
    phi_g[0, 0, 0] = 0.0
    return -COULOMB_EV_A * np.real(np.fft.ifftn(phi_g))


def write_volumetric(folder: Path, poscar, incar, types: list[dict]) -> list[int]:
    from pymatgen.core import Element
    from pymatgen.io.vasp import Chgcar, Locpot

    s = poscar.structure
    grid = fft_grid(s, incar)
    zval = [t["zval"] for t in types for _ in range(t["count"])]
    core_n = [Element(t["element"]).Z - t["zval"] for t in types for _ in range(t["count"])]
    valence_g = atom_gaussians(s, grid, SIGMA_VAL_A)
    core_g = atom_gaussians(s, grid, SIGMA_CORE_A)
    vol = s.volume
    valence = sum(z * g for z, g in zip(zval, valence_g))
    data = {"total": valence * vol}
    if int(incar.get("ISPIN", 1)) == 2:
        moms = list(incar.get("MAGMOM", [])) or [0.0] * len(s)
        data["diff"] = sum(m * g for m, g in zip(moms, valence_g)) * vol
    if incar.get("LCHARG", True):
        Chgcar(poscar, data).write_file(str(folder / "CHGCAR"))
    if incar.get("LAECHG"):
        Chgcar(poscar, {"total": sum(c * g for c, g in zip(core_n, core_g)) * vol}).write_file(str(folder / "AECCAR0"))
        Chgcar(poscar, {"total": valence * vol}).write_file(str(folder / "AECCAR2"))
    if incar.get("LVHAR") or incar.get("LVTOT"):
        ions = sum(z * g for z, g in zip(zval, core_g))
        Locpot(poscar, {"total": electrostatic_energy(s, ions - valence)}).write_file(str(folder / "LOCPOT"))
    if incar.get("LELF"):
        from pymatgen.io.vasp import VolumetricData

        def bounded(rho):
            return rho / (rho + valence.mean())

        if "diff" in data:
            mag = data["diff"] / vol
            blocks = {"total": bounded(np.clip((valence + mag) / 2, 0, None)),
                      "diff": bounded(np.clip((valence - mag) / 2, 0, None))}
        else:
            blocks = {"total": bounded(valence)}
        VolumetricData(s, blocks).write_file(str(folder / "ELFCAR"))  # ISPIN 2: up block, then down
    return grid


# ------------------------------------------------------------------------------------------ vasprun.xml
def _text(value) -> str:
    if isinstance(value, bool):
        return " T " if value else " F "
    if isinstance(value, float):
        return f" {value:16.8f} "
    return f" {value} "


def _param(name: str, value) -> ET.Element:
    if isinstance(value, (list, tuple)):
        el = ET.Element("v", name=name)
        el.text = " " + " ".join(f"{float(x):.8f}" for x in value) + " "
        return el
    kind = {bool: "logical", int: "int", str: "string"}.get(type(value))
    el = ET.Element("i", **({"type": kind} if kind else {}), name=name)
    el.text = _text(value)
    return el


def _set_param(el: ET.Element, value) -> None:
    kind = el.get("type")
    try:
        if el.tag == "v":
            el.text = " " + " ".join(f"{float(x):.8f}" for x in np.atleast_1d(value)) + " "
        elif kind == "logical":
            el.text = _text(bool(value) if not isinstance(value, str) else value.upper().startswith("T"))
        elif kind == "int":
            el.text = f" {int(value)} "
        elif kind == "string":
            el.text = f" {value} "
        else:
            el.text = f" {float(value):.8f} "
    except (TypeError, ValueError):
        pass  # a value of another type than the template's field (e.g. LREAL Auto): keep the template's


def _structure_xml(el: ET.Element, structure) -> None:
    lat = structure.lattice
    crystal = el.find("crystal")
    for name, matrix in (("basis", lat.matrix), ("rec_basis", lat.reciprocal_lattice_crystallographic.matrix)):
        va = crystal.find(f"varray[@name='{name}']")
        for v, row in zip(va.findall("v"), matrix):
            v.text = " " + " ".join(f"{x:16.8f}" for x in row) + " "
    crystal.find("i[@name='volume']").text = f" {lat.volume:16.8f} "
    for old in el.findall("varray"):
        el.remove(old)
    pos = ET.SubElement(el, "varray", name="positions")
    for f in structure.frac_coords:
        ET.SubElement(pos, "v").text = " " + " ".join(f"{x:16.8f}" for x in f) + " "


def write_vasprun(path: Path, template: Path, incar, poscar, types: list[dict], energy: float, grid: list[int],
                  n_ionic: int) -> float:
    """Writes ``path``; returns the template's E-fermi."""
    s = poscar.structure
    tree = ET.parse(template)
    root = tree.getroot()
    root.find("generator/i[@name='version']").text = MOCK_VERSION
    inc = root.find("incar")
    for child in list(inc):
        inc.remove(child)
    for tag, value in incar.items():
        inc.append(_param(tag, value))
    for tag in ("structure", "varray"):  # the primitive cell and its index map belong to the template
        for el in root.findall(tag):
            if el.get("name") in ("primitive_cell", "primitive_index"):
                root.remove(el)
    nelect = sum(t["zval"] * t["count"] for t in types)
    updates = {**dict(incar), "NELECT": nelect, "NGXF": grid[0], "NGYF": grid[1], "NGZF": grid[2],
               "ISPIN": int(incar.get("ISPIN", 1))}
    for el in root.find("parameters").iter():
        if el.get("name") in updates and el.tag in ("i", "v"):
            _set_param(el, updates[el.get("name")])
    info = root.find("atominfo")
    info.find("atoms").text = f" {len(s)} "
    info.find("types").text = f" {len(types)} "
    atoms_set = info.find("array[@name='atoms']/set")
    for rc in list(atoms_set):
        atoms_set.remove(rc)
    types_set = info.find("array[@name='atomtypes']/set")
    for rc in list(types_set):
        types_set.remove(rc)
    for k, t in enumerate(types, start=1):
        for _ in range(t["count"]):
            rc = ET.SubElement(atoms_set, "rc")
            ET.SubElement(rc, "c").text = f"{t['element']:2s}"
            ET.SubElement(rc, "c").text = f"{k:4d}"
        rc = ET.SubElement(types_set, "rc")
        for val in (f"{t['count']:4d}", f"{t['element']:2s}", f"{t['mass']:16.8f}", f"{t['zval']:16.8f}",
                    f"  {t['titel']}"):
            ET.SubElement(rc, "c").text = val
    for el in root.iter("structure"):
        _structure_xml(el, s)
    calcs = root.findall("calculation")
    for c in calcs[: max(0, len(calcs) - n_ionic)]:
        root.remove(c)
    calcs = root.findall("calculation")
    shift = energy - float(calcs[-1].find("energy/i[@name='e_fr_energy']").text)
    for c in calcs:
        for sc in c.findall("scstep"):
            for i in sc.findall("energy/i"):
                if i.get("name") in ("e_fr_energy", "e_wo_entrp", "e_0_energy"):
                    i.text = f" {float(i.text) + shift:16.8f} "
        e_ionic = float(c.find("energy/i[@name='e_fr_energy']").text) + shift
        for i in c.findall("energy/i"):
            if i.get("name") in ("e_fr_energy", "e_wo_entrp", "e_0_energy"):
                i.text = f" {e_ionic:16.8f} "
        forces = c.find("varray[@name='forces']")
        for v in list(forces):
            forces.remove(v)
        for _ in range(len(s)):
            ET.SubElement(forces, "v").text = "       0.00000000       0.00000000       0.00000000 "
        for proj in c.findall("projected"):
            c.remove(proj)
        partial = c.find("dos/partial/array/set")
        if partial is not None:
            ion = list(partial)[0]
            for old in list(partial):
                partial.remove(old)
            for k in range(len(s)):
                new = copy.deepcopy(ion)
                new.set("comment", f"ion {k + 1}")
                partial.append(new)
    if int(incar.get("ISPIN", 1)) != 2:
        for parent in root.iter():
            for child in list(parent):
                if child.tag == "set" and child.get("comment") == "spin 2":
                    parent.remove(child)
    tree.write(path, encoding="ISO-8859-1", xml_declaration=True)
    return float(root.find(".//dos/i[@name='efermi']").text)


# ------------------------------------------------------------------------------------------ OUTCAR
def write_outcar(path: Path, template: Path, poscar, types: list[dict], energy: float, efermi: float, ispin: int,
                 magmoms: list[float], extra: list[str]) -> None:
    s = poscar.structure
    n = len(s)
    lat = s.lattice
    lines = template.read_text(errors="replace").splitlines()
    first = next(i for i, ln in enumerate(lines) if ln.startswith(" POTCAR:"))
    last = next(i for i, ln in enumerate(lines) if ln.startswith(" POSCAR:"))
    potcar = [f" POTCAR:    {t['titel']}" for t in types]
    for t in types:
        potcar += [f" POTCAR:    {t['titel']}", f"   VRHFIN ={t['vrhfin']}", "   LEXCH  = PE", f"   TITEL  = {t['titel']}",
                   f"   POMASS = {t['mass']:8.3f}; ZVAL   = {t['zval']:8.3f}    mass and valenz", ""]
    lines = [lines[0].rstrip() + "  (mock_vasp.py: template OUTCAR, not a VASP run)"] + lines[1:first] + potcar + lines[last:]
    nelect = sum(t["zval"] * t["count"] for t in types)
    mag = float(sum(magmoms)) if ispin == 2 else 0.0
    subs = [
        (r"(ions per type =).*", lambda m: m[1] + "".join(f"{t['count']:4d}" for t in types)),
        (r"(NIONS =)\s*\d+", lambda m: f"{m[1]}{n:7d}"),
        (r"^(\s+POMASS =)(?!.*;).*", lambda m: m[1] + "".join(f"{t['mass']:6.2f}" for t in types)),
        (r"^(\s+ZVAL   =).*", lambda m: m[1] + "".join(f"{t['zval']:6.2f}" for t in types)),
        (r"(NELECT =)\s*\S+", lambda m: f"{m[1]}{nelect:13.4f}"),
        (r"(ISPIN  =)\s*\d", lambda m: f"{m[1]}      {ispin}"),
        (r"(number of electron)\s+\S+\s+(magnetization)\s+\S+", lambda m: f"{m[1]} {nelect:15.7f} {m[2]} {mag:15.7f}"),
        (r"(free  energy   TOTEN  =)\s*\S+", lambda m: f"{m[1]} {energy:17.8f}"),
        (r"(energy  without entropy=)\s*\S+(\s+energy\(sigma->0\) =)\s*\S+",
         lambda m: f"{m[1]} {energy:17.8f}{m[2]} {energy:17.8f}"),
        (r"(E-fermi :)\s*\S+", lambda m: f"{m[1]} {efermi:8.4f}"),
    ]
    cart = s.cart_coords
    rec = lat.reciprocal_lattice_crystallographic.matrix
    out: list[str] = []
    i = 0
    while i < len(lines):
        ln = lines[i]
        for pattern, repl in subs:
            ln = re.sub(pattern, repl, ln)
        out.append(ln)
        head = ln.strip()
        if head.startswith("direct lattice vectors"):
            out += [" " + " ".join(f"{x:12.9f}" for x in lat.matrix[k]) + "   " + " ".join(f"{x:12.9f}" for x in rec[k])
                    for k in range(3)]
            i += 4
            continue
        if head.startswith("position of ions in"):
            rows = s.frac_coords % 1.0 if "fractional" in head else cart
            out += [" " + " ".join(f"{x:12.8f}" for x in r) for r in rows]
            i += 1
            while i < len(lines) and lines[i].strip():
                i += 1
            continue
        if head in ("total charge", "magnetization (x)", "FORCES acting on ions:") or (
                head.startswith("POSITION") and "TOTAL-FORCE" in head):
            j = i + 1
            while not lines[j].lstrip().startswith("---"):  # up to the ruler above the rows
                out.append(lines[j])
                j += 1
            out.append(lines[j])
            k = j + 1
            rows = []
            while not lines[k].lstrip().startswith("---"):
                rows.append(lines[k])
                k += 1
            if head == "total charge":
                new = [f"{a + 1:3d}" + rows[a % len(rows)][3:] for a in range(n)]
            elif head == "magnetization (x)":
                m = magmoms if ispin == 2 else [0.0] * n
                new = [f"{a + 1:3d}      {0:7.3f} {0:7.3f} {0:7.3f} {m[a]:7.3f}" for a in range(n)]
            elif head.startswith("FORCES"):
                new = [rows[a % len(rows)] for a in range(n)]
            else:  # POSITION / TOTAL-FORCE: this structure, zero forces
                new = [" " + "".join(f"{x:13.5f}" for x in cart[a]) + "      " + "".join(f"{0:14.6f}" for _ in range(3))
                       for a in range(n)]
            out += new
            out.append(lines[k])
            if head == "magnetization (x)":
                out.append(f"tot       {0:7.3f} {0:7.3f} {0:7.3f} {sum(m):7.3f}")
                k += 1
            elif head.startswith("POSITION"):
                out.append(f"    total drift:                         {0:14.6f}{0:14.6f}{0:14.6f}")
                k += 1
            i = k + 1
            continue
        if "General timing and accounting" in ln:
            out[-1:] = extra + [ln]
        i += 1
    path.write_text("\n".join(out) + "\n")


# ------------------------------------------------------------------------------------------ run
def oszicar(energies: list[float], mag: float | None) -> str:
    rows = ["       N       E                     dE             d eps       ncg     rms          rms(c)"]
    for k, e in enumerate(energies, start=1):
        rows.append(f"DAV:   1    {e: .8E}   {e: .5E}   -0.10000E-04   100   0.100E-03")
        rows.append(f"   {k} F= {e: .8E} E0= {e: .8E}  d E = {0: .6E}" + (f"  mag= {mag:10.4f}" if mag is not None else ""))
    return "\n".join(rows) + "\n"


def run_point(folder: Path, incar, ref: Path, kind: str, extra: list[str]) -> float:
    """Outputs of one VASP run in ``folder`` (a relax/static/DOS folder or one NEB image)."""
    import shutil

    from pymatgen.io.vasp import Poscar

    poscar = Poscar.from_file(str(folder / "POSCAR"))
    types = potcar_types(folder if (folder / "POTCAR.spec").exists() or (folder / "POTCAR").exists() else folder.parent,
                         poscar)
    zvals = [t["zval"] for t in types for _ in range(t["count"])]
    energy = model_energy(poscar.structure, zvals)
    ispin = int(incar.get("ISPIN", 1))
    magmoms = [float(x) for x in incar.get("MAGMOM", [])] or [0.0] * len(poscar.structure)
    grid = write_volumetric(folder, poscar, incar, types) if kind.startswith("static") else fft_grid(poscar.structure, incar)
    n_ionic = 2 if kind.startswith("relax") else 1
    efermi = write_vasprun(folder / "vasprun.xml", ref / "fermi_smearing" / "vasprun.xml", incar, poscar, types,
                           energy, grid, n_ionic)
    write_outcar(folder / "OUTCAR", ref / "hBN_monolayer_bands" / "OUTCAR", poscar, types, energy, efermi, ispin,
                 magmoms, extra)
    shutil.copy(folder / "POSCAR", folder / "CONTCAR")
    (folder / "OSZICAR").write_text(oszicar([energy + 0.01 * (n_ionic - 1 - k) for k in range(n_ionic)],
                                            sum(magmoms) if ispin == 2 else None))
    return energy


def main() -> int:
    import warnings

    from pymatgen.io.vasp import Incar, Kpoints, Poscar

    warnings.simplefilter("ignore")
    folder = Path.cwd()
    print(f" {MOCK_VERSION}\n running on    1 total cores", flush=True)
    incar = Incar.from_file(str(folder / "INCAR"))
    kpoints = Kpoints.from_file(str(folder / "KPOINTS"))
    neb = "IMAGES" in incar
    first = folder / ("00" if neb else "") / "POSCAR"
    poscar = Poscar.from_file(str(first))
    kind = classify(folder, incar, poscar.structure)
    record = {"kind": kind, "folder": str(folder), "checked": [], "problems": []}
    try:
        record["checked"] = check_inputs(folder, kind, incar, kpoints, poscar)
        if not neb:
            potcar_types(folder, poscar)
    except CheckFailed as exc:
        record["problems"] = [str(exc)]
        msg = f"mock VASP: INCAR check failed for {kind} in {folder}: {exc}"
        print(msg, flush=True)
        print(msg, file=sys.stderr, flush=True)
        return 1
    finally:
        log = os.environ.get("MOCK_VASP_LOG")
        if log:
            with open(log, "a") as fh:
                fh.write(json.dumps(record) + "\n")
    ref = Path(os.environ["MOCK_VASP_TEMPLATES"]) if os.environ.get("MOCK_VASP_TEMPLATES") else reference_vasp_dir()
    if ref is None:
        print("mock VASP: reference outputs not found (set MOCK_VASP_TEMPLATES or HETERO_SHARED)", flush=True)
        return 2
    done = " reached required accuracy - stopping structural energy minimisation"
    if neb:
        images = sorted(p for p in folder.iterdir() if p.is_dir() and re.fullmatch(r"\d\d", p.name))[1:-1]
        vtst = [" VTST: version 4.2 (mock_vasp.py plays a VASP built with VTST; no band was optimised)",
                "  FORCES: max atom, RMS     0.000000    0.000000", done]
        for img in images:
            run_point(img, incar, ref, kind, vtst)
    else:
        run_point(folder, incar, ref, kind, [done] if kind.startswith("relax") else [])
    if kind.startswith("relax") or neb:
        print(done, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
