"""`hetero build ...`: slabs, sites, interfaces, migration paths and study presets.

Every command writes a folder of structures (POSCAR .vasp + CIF) and a models.json (ModelRecord list).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(no_args_is_help=True, help="Build slabs, adsorption sites, interfaces, paths and presets.")
console = Console()


def _fail(exc: Exception) -> None:
    console.print(f"[red]error:[/red] {exc}")
    raise typer.Exit(code=1)


@app.command()
def slab(
    bulk: str = typer.Argument(..., help="library name or structure file"),
    miller: tuple[int, int, int] = typer.Option((0, 0, 1), "--miller"),
    layers: int = typer.Option(4, help="atomic planes"),
    vacuum: float = typer.Option(15.0),
    supercell: tuple[int, int] = typer.Option((1, 1)),
    fix_bottom: int = typer.Option(2, help="fixed bottom planes"),
    out: Path = typer.Option(Path("build_slab"), "--out", "-o"),
) -> None:
    """Slab of LAYERS atomic planes, c orthogonal to the surface."""
    from hetero.builders import build_slab
    from hetero.builders.common import write_models

    try:
        s, rec = build_slab(bulk, miller, layers, vacuum=vacuum, supercell=supercell, fix_bottom_layers=fix_bottom)
    except Exception as exc:
        _fail(exc)
    path = write_models(str(out), [("slab", s, rec)])
    console.print(f"{rec.system}: {len(s)} atoms, termination {rec.termination}, fixed {len(rec.fixed_atoms)} -> {path}")


@app.command()
def sites(
    bulk: str = typer.Argument(..., help="library name or structure file (a slab if --is-slab)"),
    ion: str = typer.Option("Li", "--ion"),
    miller: tuple[int, int, int] = typer.Option((0, 0, 1), "--miller"),
    layers: int = typer.Option(4),
    supercell: tuple[int, int] = typer.Option((1, 1)),
    is_slab: bool = typer.Option(False, help="BULK is already a slab (c along z, vacuum on top)"),
    offset: float = typer.Option(0.0, help="in-plane offset (A, along x) of the ion from the site"),
    out: Path = typer.Option(Path("build_sites"), "--out", "-o"),
) -> None:
    """Symmetry-distinct adsorption sites; writes one model per site with the ion placed."""
    from hetero.builders import adsorption_models, build_slab
    from hetero.builders.common import resolve_structure, write_models

    try:
        if is_slab:
            s, _ = resolve_structure(bulk)
            rec = None
        else:
            s, rec = build_slab(bulk, miller, layers, supercell=supercell)
        models = adsorption_models(s, ion, base_record=rec, offset_A=(offset, 0.0))
    except Exception as exc:
        _fail(exc)
    t = Table("site", "multiplicity", "height (A)", "neighbours")
    for site, _, _ in models:
        t.add_row(site.label, str(site.multiplicity), f"{site.height_A:.2f}", " ".join(site.neighbours))
    console.print(t)
    items = [(f"{ion}_{site.label}", st, r) for site, st, r in models]
    if rec is not None:
        items.insert(0, ("slab", s, rec))
    console.print(f"-> {write_models(str(out), items)}")


@app.command()
def interface(
    film: str = typer.Argument(...),
    substrate: str = typer.Argument(...),
    film_miller: tuple[int, int, int] = typer.Option((0, 0, 1), "--film-miller"),
    substrate_miller: tuple[int, int, int] = typer.Option((0, 0, 1), "--substrate-miller"),
    film_thickness: float = typer.Option(1.0, help="slab units (or A with --angstrom)"),
    substrate_thickness: float = typer.Option(1.0),
    angstrom: bool = typer.Option(False, help="thicknesses in Angstrom"),
    vacuum: float = typer.Option(15.0),
    gap: Optional[float] = typer.Option(None, help="interface / vdW gap (A)"),
    max_area: float = typer.Option(200.0),
    max_length_tol: float = typer.Option(0.03),
    max_angle_tol: float = typer.Option(0.01),
    max_area_ratio_tol: float = typer.Option(0.09),
    max_atoms: int = typer.Option(150),
    shift: tuple[float, float] = typer.Option((0.0, 0.0), help="in-plane registry shift of the film (A)"),
    keep: int = typer.Option(10, help="write the best N candidates"),
    out: Path = typer.Option(Path("build_interface"), "--out", "-o"),
) -> None:
    """Enumerate lattice matches x terminations, rank by strain then atoms, write the best."""
    from rich.progress import Progress

    from hetero.builders.common import write_models
    from hetero.builders.interfaces import enumerate_interfaces

    with Progress(console=console, transient=True) as prog:
        task = prog.add_task("matches x terminations", total=None)

        def cb(done: int, total: int) -> None:
            prog.update(task, completed=done, total=total)

        try:
            res = enumerate_interfaces(
                film, substrate, film_miller, substrate_miller, film_thickness=film_thickness,
                substrate_thickness=substrate_thickness, thickness_in_layers=not angstrom, vacuum=vacuum,
                gap=gap, max_area=max_area, max_length_tol=max_length_tol, max_angle_tol=max_angle_tol,
                max_area_ratio_tol=max_area_ratio_tol, max_atoms=max_atoms, in_plane_shift_A=shift, progress=cb,
            )
        except Exception as exc:
            _fail(exc)
    t = Table("rank", "termination", "von Mises %", "principal %", "area A^2", "atoms", "gap A")
    for row in res.table()[:keep]:
        t.add_row(str(row["rank"]), row["termination"], f"{row['strain_%']:.2f}", str(row["principal_%"]),
                  f"{row['area_A2']:.1f}", str(row["n_atoms"]), f"{row['gap_A']:.2f}")
    console.print(t)
    console.print(f"{res.n_matches} matches x {res.n_terminations} terminations; {res.notes}")
    for msg in res.skipped:
        console.print(f"[yellow]skipped:[/yellow] {msg}")
    if not res.candidates:
        _fail(ValueError("every candidate was skipped (see above): raise --max-atoms or lower --max-area / thickness"))
    items = [(f"interface_{i:02d}", c.structure, c.record) for i, c in enumerate(res.candidates[:keep])]
    console.print(f"-> {write_models(str(out), items)}")


@app.command()
def paths(
    bulk: str = typer.Argument(..., help="library name or structure file (a slab if --is-slab)"),
    ion: str = typer.Option("Li", "--ion"),
    miller: tuple[int, int, int] = typer.Option((0, 0, 1), "--miller"),
    layers: int = typer.Option(4),
    supercell: tuple[int, int] = typer.Option((1, 1)),
    is_slab: bool = typer.Option(False),
    max_hop: float = typer.Option(3.5),
    n_images: int = typer.Option(5),
    interlayer: bool = typer.Option(False, help="BULK names a stacked preset (e.g. vs2_v2co2): hops between "
                                    "intercalation sites in its van der Waals gap"),
    model: str = typer.Option("fast", help="preset model size with --interlayer: fast | standard"),
    out: Path = typer.Option(Path("build_paths"), "--out", "-o"),
) -> None:
    """Migration hops between neighbouring surface (or, with --interlayer, vdW-gap) sites with IDPP images."""
    from hetero.builders import build_slab, find_sites
    from hetero.builders.common import record, resolve_structure, write_models
    from hetero.builders.paths import find_interlayer_sites, find_paths

    try:
        if interlayer:
            from hetero.builders.presets import get_preset

            s, rec = get_preset(bulk, model)
            sites = find_interlayer_sites(s, rec.fragments, ion)
        else:
            if is_slab:
                s, _ = resolve_structure(bulk)
            else:
                s, _ = build_slab(bulk, miller, layers, supercell=supercell)
            sites = find_sites(s, ion)
        ps = find_paths(s, sites, ion, max_hop=max_hop, n_images=n_images)
    except Exception as exc:
        _fail(exc)
    summary = []
    for k, p in enumerate(ps):
        items = [
            (f"image_{i:02d}", im, record(im, system=f"{ion} {p.label}", kind="path", needs_dipole_correction=True,
                                          notes=f"image {i} of {len(p.images) - 1}, hop {p.hop_length_A} A"))
            for i, im in enumerate(p.images)
        ]
        write_models(str(out / f"path_{k:02d}"), items)
        summary.append(p.as_dict())
        console.print(f"path_{k:02d}: {p.label}  hop {p.hop_length_A:.2f} A")
    out.mkdir(parents=True, exist_ok=True)
    (out / "paths.json").write_text(json.dumps(summary, indent=1))


@app.command()
def preset(
    name: str = typer.Argument(..., help="vs2_v2co2 | vs2_v2coh2 | vs2_v2cf2 | v2o5_cu2v2o7 | v5s8_sb2s3 | vn001_na"),
    model: str = typer.Option("fast", "--model", help="fast (<=40 atoms) | standard (<=150)"),
    out: Optional[Path] = typer.Option(None, "--out", "-o"),
) -> None:
    """Ready-made model of one of the seed studies (VN(001)+Na also writes one model per Na site)."""
    from hetero.builders import adsorption_models, get_preset
    from hetero.builders.common import write_models

    try:
        s, rec = get_preset(name, model)
        items = [(f"{name}_{model}", s, rec)]
        if name.lower() == "vn001_na":
            items += [(f"Na_{site.label}", st, r) for site, st, r in adsorption_models(s, "Na", base_record=rec)]
    except Exception as exc:
        _fail(exc)
    path = write_models(str(out or Path(f"{name}_{model}")), items)
    console.print(f"{rec.system}: {len(s)} atoms, strain {rec.strain_percent} % -> {path}")
    console.print(rec.notes)
