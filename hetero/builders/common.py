"""Small helpers shared by the builders (engine-free: pymatgen/ASE only)."""

from __future__ import annotations

from typing import Any

import numpy as np
from pymatgen.core import Lattice, Structure

from hetero.schemas import ModelRecord


class BuildError(ValueError):
    """Bad input or an impossible request to a builder; the message says what to change."""


def resolve_structure(obj: Any) -> tuple[Structure, str]:
    """Return (Structure, name) for a Structure, a library name or a file path."""
    if isinstance(obj, Structure):
        return obj.copy(), obj.composition.reduced_formula
    if isinstance(obj, str):
        try:
            from hetero.structures import load_structure  # type: ignore[attr-defined]
        except ImportError as exc:  # the library is written by someone else, concurrently
            from pathlib import Path

            data = Path(__file__).resolve().parent.parent / "structures" / "data"
            hits = [p for p in data.glob("*.cif") if p.stem.lower() == obj.lower()] if data.is_dir() else []
            if hits:
                return Structure.from_file(str(hits[0])), hits[0].stem
            try:
                return Structure.from_file(obj), obj
            except Exception:
                raise BuildError(
                    f"cannot load structure {obj!r}: hetero.structures.load_structure is not "
                    f"available ({exc}) and {obj!r} is not a readable structure file"
                ) from exc
        try:
            return load_structure(obj), obj
        except Exception as exc:
            raise BuildError(f"cannot load structure {obj!r}: {exc}") from exc
    raise BuildError(f"expected a pymatgen Structure, a library name or a file path, got {type(obj)!r}")


def cluster_planes(z: np.ndarray, tol: float = 0.3) -> list[np.ndarray]:
    """Group atom indices into planes by their z (Angstrom); planes sorted bottom to top."""
    order = np.argsort(z)
    planes: list[list[int]] = []
    last = None
    for i in order:
        if last is None or z[i] - last > tol:
            planes.append([int(i)])
        else:
            planes[-1].append(int(i))
        last = z[i]
    return [np.array(p, dtype=int) for p in planes]


def restack(struct: Structure, vacuum: float, center: bool = True) -> Structure:
    """Rebuild a slab-like structure with c exactly along z and `vacuum` Angstrom of empty space.

    Assumes a and b lie in the xy plane and the atoms form one contiguous slab along z (no wrap).
    """
    m = struct.lattice.matrix
    if abs(m[0, 2]) > 1e-6 or abs(m[1, 2]) > 1e-6:
        raise BuildError("restack needs a and b in the xy plane (reorient the lattice first)")
    cart = struct.cart_coords.copy()
    z = cart[:, 2]
    thick = float(z.max() - z.min())
    c = thick + vacuum
    cart[:, 2] -= z.min()
    if center:
        cart[:, 2] += vacuum / 2.0
    a, b = reduce_2d(m[0], m[1])
    lat = Lattice([a, b, [0.0, 0.0, c]])
    props = {k: list(v) for k, v in struct.site_properties.items()}
    out = Structure(lat, struct.species, cart, coords_are_cartesian=True, site_properties=props or None)
    fc = out.frac_coords
    fc[:, :2] %= 1.0
    fc[:, :2][np.isclose(fc[:, :2], 1.0, atol=1e-8)] = 0.0
    return Structure(lat, out.species, fc, site_properties=props or None)


def reduce_2d(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lagrange-Gauss reduction of an in-plane basis; gamma >= 90 deg and a x b along +z."""
    a = np.array(a, float)
    b = np.array(b, float)
    for _ in range(100):
        if np.dot(b, b) < np.dot(a, a):
            a, b = b, a
        mu = round(float(np.dot(a, b) / np.dot(a, a)))
        if mu == 0:
            break
        b = b - mu * a
    if np.dot(b, b) < np.dot(a, a) - 1e-9:
        a, b = b, a
    if np.dot(a, b) > 1e-9:  # make gamma >= 90 (hexagonal: 120)
        b = -b
    if np.cross(a, b)[2] < 0:  # right-handed with c along +z: swap keeps gamma
        a, b = b, a
    return a, b


def unwrap_along_c(struct: Structure) -> Structure:
    """Shift fractional c so the atoms are contiguous (largest empty gap is put at the cell boundary)."""
    s = struct.copy()
    fc = s.frac_coords[:, 2] % 1.0
    order = np.sort(fc)
    gaps = np.diff(np.concatenate([order, [order[0] + 1.0]]))
    k = int(np.argmax(gaps))
    start = order[(k + 1) % len(order)]
    new = (fc - start) % 1.0
    fcs = s.frac_coords.copy()
    fcs[:, 2] = new
    return Structure(s.lattice, s.species, fcs, site_properties=s.site_properties or None)


def record(struct: Structure, **kw: Any) -> ModelRecord:
    kw.setdefault("n_atoms", len(struct))
    return ModelRecord(structure=struct.as_dict(), **kw)


def write_models(folder: str, items: list[tuple[str, Structure, ModelRecord]]) -> str:
    """Write POSCAR + CIF per model and one models.json (list of ModelRecord dicts)."""
    import json
    from pathlib import Path

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    docs = []
    for name, s, rec in items:
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
        s.to(filename=str(out / f"{safe}.vasp"), fmt="poscar")
        s.to(filename=str(out / f"{safe}.cif"))
        d = rec.model_dump()
        d["files"] = {"poscar": f"{safe}.vasp", "cif": f"{safe}.cif"}
        d["name"] = name
        docs.append(d)
    (out / "models.json").write_text(json.dumps(docs, indent=1, default=str))
    return str(out / "models.json")
