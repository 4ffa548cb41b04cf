"""Density of states: total with per-element and per-fragment projections, and all models overlaid."""

from __future__ import annotations

import numpy as np

from hetero.plots.core import (
    PALETTE,
    FigureContext,
    FigureJob,
    colour_of,
    element_colour,
    each_document,
    entity,
    figure_kind,
    new_figure,
)


def plot_dos(doc: dict, colour: str = PALETTE[0], erange: tuple[float, float] = (-8.0, 5.0)):
    """Total DOS plus per-element (left) and per-fragment (right) projections, E_F at 0."""
    e = np.asarray(doc["energies_eV"], float)
    total = np.asarray(doc["total"], float)
    proj = doc.get("projected") or {}
    elements = {k: np.asarray(v, float) for k, v in sorted(proj.items()) if not k.startswith("fragment:")}
    frags = {k.split(":", 1)[1]: np.asarray(v, float) for k, v in sorted(proj.items()) if k.startswith("fragment:")}
    lo, hi = max(erange[0], float(e.min())), min(erange[1], float(e.max()))
    sel = (e >= lo) & (e <= hi)
    ncol = 2 if frags else 1
    fig = new_figure(3.4 * ncol + 0.4, 3.0)
    axes = [fig.add_subplot(1, ncol, i + 1) for i in range(ncol)]
    panels = [("per element", elements)] + ([("per fragment", frags)] if frags else [])
    frag_colours = ["#e6550d", "#3182bd", "#31a354", "#756bb1", "#636363"]
    ymax = float(total[sel].max()) if sel.any() else 1.0
    for ax, (title, parts) in zip(axes, panels):
        ax.fill_between(e[sel], 0, total[sel], color=colour, alpha=0.25, lw=0)
        ax.plot(e[sel], total[sel], color=colour, label="total", lw=1.2)
        for i, (name, arr) in enumerate(parts.items()):
            c = element_colour(name) if title == "per element" else frag_colours[i % len(frag_colours)]
            if title == "per element" and sum(c) > 2.7:  # white-ish (H): darken
                c = (0.4, 0.4, 0.4)
            ax.plot(e[sel], arr[sel], color=c, label=name, lw=1.0)
        ax.axvline(0.0, color="k", ls="--", lw=0.8)
        ax.text(0.02, 0.97, "$E_F$ = 0", transform=ax.transAxes, va="top", fontsize=7)
        ax.set_xlim(lo, hi)
        ax.set_ylim(0, ymax * 1.08 if ymax > 0 else 1)
        ax.set_xlabel("E - E$_F$ (eV)")
        ax.set_ylabel("DOS (states/eV/cell)")
        ax.set_title(f"{doc.get('system', '')} {doc.get('label', '')}: {title}")
        ax.legend(loc="upper right", frameon=False)
    gap = doc.get("band_gap_eV")
    axes[0].text(0.02, 0.88, "metallic" if doc.get("is_metal") else f"gap {gap:.2f} eV", transform=axes[0].transAxes,
                 va="top", fontsize=7, gid="gap")
    values = {"energies_eV": e.tolist(), "total": total.tolist(), "elements": {k: v.tolist() for k, v in elements.items()},
              "fragments": {k: v.tolist() for k, v in frags.items()}, "fermi_at": 0.0}
    return fig, values


def plot_dos_overlay(docs: list[dict], colours: dict[str, str], erange=(-8.0, 5.0)):
    """Total DOS of every model of the run on one axis (one colour per model)."""
    fig = new_figure(5.0, 3.2)
    ax = fig.add_subplot()
    values = {}
    for d in docs:
        e = np.asarray(d["energies_eV"], float)
        t = np.asarray(d["total"], float)
        sel = (e >= erange[0]) & (e <= erange[1])
        ax.plot(e[sel], t[sel], color=colour_of(colours, entity(d)), label=entity(d))
        values[entity(d)] = float(d.get("dos_at_fermi", np.nan))
    ax.axvline(0.0, color="k", ls="--", lw=0.8)
    ax.set_xlabel("E - E$_F$ (eV)")
    ax.set_ylabel("DOS (states/eV/cell)")
    ax.set_title("Total DOS, E$_F$ at 0")
    ax.legend(frameon=False)
    return fig, values



@figure_kind(order=50, headings={"dos": "Density of states"})
def jobs(ctx: FigureContext):
    yield from each_document(ctx, "dos", "dos", lambda d: f"DOS {entity(d)}", plot_dos,
                             absent="no DOS documents in the store (step 'dos' not run or failed)")
    dos = ctx.run.of("dos")
    if len(dos) > 1:
        yield FigureJob("dos_total_all", "dos", "Total DOS of all models", lambda: plot_dos_overlay(dos, ctx.colours))
