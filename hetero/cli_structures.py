"""`hetero structures ...`: list, show, add and check library structures."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(no_args_is_help=True, help="The material library and user structures.")
console = Console(width=200)
err_console = Console(stderr=True, width=200)


@app.command("list")
def list_cmd() -> None:
    """Table of library entries: name, formula, space group, verified, source."""
    from hetero.structures import list_entries

    table = Table(title="hetero structure library")
    for col in ("name", "formula", "space group", "dim", "verified", "file", "source"):
        table.add_column(col, overflow="fold")
    for e in list_entries():
        sg = f"{e.spacegroup_symbol} ({e.spacegroup_number})" if e.spacegroup_number else "-"
        table.add_row(e.name, e.formula, sg, e.dimensionality, "yes" if e.verified else "no",
                      ("user" if e.user else "yes") if e.path else "none", e.source)
    console.print(table)


@app.command("show")
def show_cmd(name: str = typer.Argument(..., help="library name (case-insensitive)")) -> None:
    """Formula, space group, lattice, site count, source and notes of one entry."""
    from hetero.structures import StructureInputError, get_entry, load_structure

    try:
        e = get_entry(name)
    except KeyError as exc:
        err_console.print(f"error: {exc.args[0]}")
        raise typer.Exit(2) from None
    table = Table(show_header=False, title=e.name)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("formula", e.formula)
    table.add_row("space group", f"{e.spacegroup_symbol} ({e.spacegroup_number})")
    table.add_row("dimensionality", e.dimensionality)
    try:
        s = load_structure(e.name)
        a, b, c = s.lattice.abc
        al, be, ga = s.lattice.angles
        table.add_row("lattice a b c (A)", f"{a:.4f} {b:.4f} {c:.4f}")
        table.add_row("alpha beta gamma (deg)", f"{al:.2f} {be:.2f} {ga:.2f}")
        table.add_row("sites", str(len(s)))
    except StructureInputError as exc:
        table.add_row("structure", f"not available: {exc}")
    table.add_row("temperature (K)", "-" if e.temperature_K is None else f"{e.temperature_K:g}")
    table.add_row("verified", "yes" if e.verified else "no")
    table.add_row("source", e.source)
    table.add_row("notes", e.notes)
    table.add_row("file", str(e.path) if e.path else "none")
    console.print(table)


@app.command("add")
def add_cmd(
    file: Path = typer.Argument(..., help="structure file (CIF, POSCAR, extxyz with cell, ...)"),
    name: str = typer.Option(None, "--name", "-n", help="library name (default: file stem)"),
    source: str = typer.Option("user", "--source", help="where the structure comes from"),
) -> None:
    """Validate FILE and copy it into the user library ($HETERO_USER_LIBRARY or ~/.hetero/structures)."""
    from hetero.structures import StructureInputError, add_structure

    try:
        e = add_structure(file, name=name, source=source)
    except StructureInputError as exc:
        err_console.print(f"error: {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    console.print(f"added {e.name} ({e.formula}, {e.spacegroup_symbol}, {e.n_sites} sites) -> {e.path}")


@app.command("check")
def check_cmd(
    names: list[str] = typer.Argument(None, help="entries to check (default: all with a structure)"),
    no_relax: bool = typer.Option(False, "--no-relax", help="skip the CHGNet relaxation"),
    fmax: float = typer.Option(0.1, help="CHGNet force criterion, eV/A"),
    steps: int = typer.Option(100, help="maximum CHGNet steps"),
) -> None:
    """Run the plausibility check and print a pass/fail table (exit 1 if any verified entry fails)."""
    from hetero.structures import StructureInputError, get_entry, list_entries, load_structure
    from hetero.structures.check import check_structure

    try:
        entries = [get_entry(n) for n in names] if names else list_entries()
    except KeyError as exc:
        err_console.print(f"error: {exc.args[0]}")
        raise typer.Exit(2) from None
    table = Table(title="plausibility check")
    for col in ("name", "verified", "result", "space group", "bond valence", "nn distances", "CHGNet relax"):
        table.add_column(col, overflow="fold")
    failed_verified = False
    for e in entries:
        try:
            s = load_structure(e.name)
        except StructureInputError as exc:
            table.add_row(e.name, "yes" if e.verified else "no", "no file", str(exc), "", "", "")
            continue
        r = check_structure(s, e, relax=not no_relax, fmax=fmax, steps=steps)
        cells = []
        for item in r.items:
            mark = {True: "ok", False: "FAIL", None: "-"}[item.passed]
            cells.append(f"{mark}: {item.detail}")
        result = "[green]pass[/green]" if r.passed else "[red]FAIL[/red]"
        failed_verified |= (not r.passed) and e.verified
        table.add_row(e.name, "yes" if e.verified else "no", result, *cells)
    console.print(table)
    if failed_verified:
        raise typer.Exit(1)
