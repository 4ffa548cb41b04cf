"""The material library: shipped CIFs with provenance, plus a user library of added structures.

Public API (other layers code against exactly this):

- ``load_structure(name_or_path) -> Structure``: a library name (case-insensitive) or any file
  pymatgen or ASE reads (CIF, POSCAR, extxyz with a cell, ...).
- ``list_entries() -> list[LibraryEntry]``, ``get_entry(name) -> LibraryEntry``.
- ``add_structure(path, name=None, source="user") -> LibraryEntry``: validate a file and copy it (as
  CIF) into the user library (``~/.hetero/structures`` or ``$HETERO_USER_LIBRARY``).
- ``StructureInputError(ValueError)``: one line naming the file and the problem.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from pymatgen.core import Element, Structure

__all__ = [
    "LibraryEntry",
    "StructureInputError",
    "add_structure",
    "get_entry",
    "list_entries",
    "load_structure",
    "read_structure_file",
    "user_library_dir",
]

DATA_DIR = Path(__file__).parent / "data"
MIN_DISTANCE = 0.5  # Angstrom; closer atoms are rejected as unphysical input
_PYMATGEN_FIRST = {".cif", ".mcif", ".vasp", ".poscar", ".json"}


class StructureInputError(ValueError):
    """Bad structure input. The message is one line: '<file>: <problem>'."""


@dataclass(frozen=True)
class LibraryEntry:
    name: str
    formula: str
    spacegroup_symbol: str | None
    spacegroup_number: int | None
    source: str
    dimensionality: str  # "bulk" or "2D" (layer with vacuum along c)
    verified: bool
    notes: str
    temperature_K: float | None = None
    symprec: float = 0.01
    n_sites: int | None = None
    file: str | None = None
    path: Path | None = None  # None: no structure file available for this entry
    user: bool = False  # True for entries of the user library
    # "derived": built here from a prototype/parent lattice (hetero.structures.derived), never experimental;
    # the exact recipe is in `recipe`. Empty for the other entries (their `source` says where they come from).
    provenance: str = ""
    recipe: dict | None = field(default=None, compare=False, hash=False)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["path"] = str(self.path) if self.path else None
        return d


# --------------------------------------------------------------------------------------------
# reading and validating files
# --------------------------------------------------------------------------------------------
def _one_line(exc: BaseException) -> str:
    msg = " ".join(str(exc).split()) or type(exc).__name__
    return msg[:200]


def _validate(structure: Structure, label: str) -> Structure:
    for sp in structure.composition.elements:
        sym = getattr(sp, "symbol", str(sp))
        try:
            Element(re.sub(r"[^A-Za-z]", "", sym))
        except (ValueError, KeyError):
            raise StructureInputError(f"{label}: unknown element {sym!r}") from None
    vol = structure.lattice.volume
    if not np.isfinite(vol) or abs(vol) < 1e-6:
        raise StructureInputError(f"{label}: cell volume is zero (degenerate lattice vectors)")
    if len(structure) == 0:
        raise StructureInputError(f"{label}: no atoms in file")
    if len(structure) > 1:
        if len(structure) <= 400:
            dm = structure.distance_matrix
            np.fill_diagonal(dm, np.inf)
            dmin = float(dm.min())
        else:
            centers, points, _images, dists = structure.get_neighbor_list(MIN_DISTANCE, exclude_self=True)
            dmin = float(dists.min()) if len(dists) else np.inf
        if dmin < MIN_DISTANCE:
            raise StructureInputError(
                f"{label}: atoms only {dmin:.2f} A apart (minimum {MIN_DISTANCE} A); check units and duplicates")
    # a 1-atom cell: its own periodic images must also be far enough apart
    lat_min = min(structure.lattice.abc)
    if lat_min < MIN_DISTANCE:
        raise StructureInputError(f"{label}: lattice vector of {lat_min:.2f} A is shorter than {MIN_DISTANCE} A")
    return structure


def _from_ase(path: Path, label: str) -> Structure:
    from ase.io import read as ase_read
    from pymatgen.io.ase import AseAtomsAdaptor

    try:
        atoms = ase_read(str(path))
    except Exception as exc:  # noqa: BLE001 - any reader failure means unreadable
        raise StructureInputError(f"{label}: unreadable as a structure ({_one_line(exc)}); give a CIF, POSCAR or "
                                  "extxyz file with a cell") from None
    if isinstance(atoms, list):
        atoms = atoms[-1]
    if len(atoms) == 0:
        raise StructureInputError(f"{label}: no atoms in file")
    bad = [s for s in atoms.get_chemical_symbols() if s == "X"]
    if bad:
        raise StructureInputError(f"{label}: unknown element in file")
    if not any(atoms.pbc) or atoms.cell.rank == 0:
        raise StructureInputError(
            f"{label}: non-periodic (no cell / pbc false); give a lattice (e.g. extxyz Lattice=, CIF or POSCAR)")
    if atoms.cell.rank < 3 or abs(atoms.cell.volume) < 1e-6:
        raise StructureInputError(f"{label}: cell volume is zero (degenerate lattice vectors)")
    return AseAtomsAdaptor.get_structure(atoms)


def read_structure_file(path: str | os.PathLike) -> Structure:
    """Read and validate any periodic structure file; raise StructureInputError on bad input."""
    p = Path(path)
    label = str(path)
    if not p.is_file():
        raise StructureInputError(f"{label}: no such file")
    suffix = p.suffix.lower()
    name_up = p.name.upper()
    pymatgen_first = suffix in _PYMATGEN_FIRST or "POSCAR" in name_up or "CONTCAR" in name_up
    pmg_err: str | None = None
    structure: Structure | None = None
    if pymatgen_first:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                structure = Structure.from_file(str(p))
        except StructureInputError:
            raise
        except Exception as exc:  # noqa: BLE001
            pmg_err = _one_line(exc)
            low = pmg_err.lower()
            if ("element" in low or "symbol" in low) and ("xx" in low or "not a valid" in low or "unknown" in low):
                raise StructureInputError(f"{label}: unknown element ({pmg_err})") from None
    if structure is None:
        try:
            structure = _from_ase(p, label)
        except StructureInputError as err:
            if pmg_err and "unreadable" in str(err):
                raise StructureInputError(f"{label}: unreadable as a structure ({pmg_err}); give a CIF, POSCAR or "
                                          "extxyz file with a cell") from None
            if "unknown element" not in str(err) and _has_unknown_symbol(p):
                raise StructureInputError(f"{label}: unknown element in file") from None
            raise
    if not isinstance(structure, Structure):
        raise StructureInputError(f"{label}: not a periodic structure")
    return _validate(structure, label)


def _has_unknown_symbol(p: Path) -> bool:
    """Cheap hint for 'unknown element' when the readers fail: the usual bogus symbol Xx."""
    try:
        text = p.read_text(errors="ignore")[:20000]
    except OSError:
        return False
    return re.search(r"(^|\s)Xx(\s|$)", text, re.M) is not None


# --------------------------------------------------------------------------------------------
# library
# --------------------------------------------------------------------------------------------
def user_library_dir() -> Path:
    return Path(os.environ.get("HETERO_USER_LIBRARY") or Path.home() / ".hetero" / "structures").expanduser()


def _entries_from_index(index_path: Path, folder: Path, user: bool) -> dict[str, LibraryEntry]:
    if not index_path.is_file():
        return {}
    raw = json.loads(index_path.read_text())
    fields = set(LibraryEntry.__dataclass_fields__)
    out = {}
    for name, rec in raw.items():
        rec = {k: v for k, v in rec.items() if k in fields}
        rec["name"] = name
        rec["path"] = (folder / rec["file"]) if rec.get("file") else None
        rec["user"] = user
        out[name.lower()] = LibraryEntry(**rec)
    return out


def _builtin() -> dict[str, LibraryEntry]:
    return _entries_from_index(DATA_DIR / "index.json", DATA_DIR, user=False)


def _user() -> dict[str, LibraryEntry]:
    d = user_library_dir()
    return _entries_from_index(d / "index.json", d, user=True)


def _all() -> dict[str, LibraryEntry]:
    entries = _builtin()
    for key, e in _user().items():
        # a user entry fills a shipped placeholder (no file) or adds a new name
        if key not in entries or entries[key].path is None:
            entries[key] = e
    return entries


def list_entries() -> list[LibraryEntry]:
    """All library entries: shipped ones first (index order), then user additions."""
    return list(_all().values())


def get_entry(name: str) -> LibraryEntry:
    try:
        return _all()[name.strip().lower()]
    except KeyError:
        known = ", ".join(e.name for e in list_entries())
        raise KeyError(f"no library entry {name!r}; known: {known}") from None


def load_structure(name_or_path: str | os.PathLike) -> Structure:
    """A library structure by (case-insensitive) name, or a structure file by path."""
    key = str(name_or_path)
    entries = _all()
    if key.strip().lower() in entries:
        e = entries[key.strip().lower()]
        if e.path is None:
            raise StructureInputError(
                f"{e.name}: no structure file in the library ({e.notes.split('.')[0]}); "
                f"add one with `hetero structures add FILE --name {e.name}`")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Structure.from_file(str(e.path))
    if Path(key).exists():
        return read_structure_file(key)
    raise StructureInputError(f"{key}: neither a library name nor an existing file")


def add_structure(path: str | os.PathLike, name: str | None = None, source: str = "user") -> LibraryEntry:
    """Validate a structure file and copy it as CIF into the user library."""
    from pymatgen.io.cif import CifWriter
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    structure = read_structure_file(path)
    name = (name or Path(path).stem).strip()
    if not re.fullmatch(r"[A-Za-z0-9_.()+\-]+", name):
        raise StructureInputError(f"{path}: invalid library name {name!r} (letters, digits, _ . - + () only)")
    builtin = _builtin()
    if name.lower() in builtin and builtin[name.lower()].path is not None:
        raise StructureInputError(f"{path}: name {name!r} is a shipped library entry; choose another --name")
    symprec = 0.01
    try:
        sga = SpacegroupAnalyzer(structure, symprec=symprec)
        sg_symbol, sg_number = sga.get_space_group_symbol(), sga.get_space_group_number()
    except Exception:  # noqa: BLE001 - symmetry is informative only
        sg_symbol, sg_number = None, None
    c = structure.lattice.matrix[2]
    frac_c = np.array([s.frac_coords[2] % 1.0 for s in structure])
    gap = _largest_gap(frac_c) * np.linalg.norm(c)
    dim = "2D" if gap >= 10.0 else "bulk"
    folder = user_library_dir()
    folder.mkdir(parents=True, exist_ok=True)
    fname = f"{name}.cif"
    CifWriter(structure).write_file(folder / fname)
    entry = LibraryEntry(
        name=name, formula=structure.composition.reduced_formula, spacegroup_symbol=sg_symbol,
        spacegroup_number=sg_number, source=source, dimensionality=dim, verified=False,
        notes=f"user structure added from {Path(path).name}; not checked against literature",
        temperature_K=None, symprec=symprec, n_sites=len(structure), file=fname,
        path=folder / fname, user=True)
    index_path = folder / "index.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else {}
    rec = entry.to_dict()
    rec.pop("path")
    rec.pop("user")
    index[name] = rec
    index_path.write_text(json.dumps(index, indent=2) + "\n")
    return replace(entry)


def _largest_gap(frac: np.ndarray) -> float:
    """Largest empty fraction of the c axis between atoms (periodic)."""
    if len(frac) == 0:
        return 1.0
    z = np.sort(frac)
    gaps = np.diff(np.concatenate([z, [z[0] + 1.0]]))
    return float(gaps.max())
