"""Bader charges: net charge per atom (coloured by element) and per fragment."""

from __future__ import annotations

import numpy as np

from hetero.plots.core import PALETTE, FigureContext, each_document, element_colour, entity, figure_kind, new_figure


def plot_bader(doc: dict, colour: str = PALETTE[0]):
    """Net Bader charge per atom (bars coloured by element) and per fragment."""
    q = np.asarray(doc["net_charge"], float)
    syms = list(doc["symbols"])
    fc = doc.get("fragment_charge") or {}
    ncol = 2 if fc else 1
    many = len(q) > 60
    fig = new_figure(min(12.0, 3.6 + 2.4 * (ncol - 1) + 0.08 * len(q)), 3.0)
    gs = fig.add_gridspec(1, ncol, width_ratios=[max(3, len(q)), 2][:ncol])
    ax = fig.add_subplot(gs[0, 0])
    x = np.arange(len(q))
    ax.bar(x, q, color=[element_colour(s) for s in syms], edgecolor="k", lw=0.4)
    if not many:
        ax.set_xticks(x, [f"{s}{i}" for i, s in enumerate(syms)], rotation=90, fontsize=6)
    else:
        from matplotlib.patches import Patch

        ax.legend(handles=[Patch(color=element_colour(el), label=el) for el in sorted(set(syms))], frameon=False)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_ylabel("net Bader charge (e)\n+ = electrons lost")
    ax.set_xlabel("atom (index in the structure)")
    ax.set_title(f"Bader {doc.get('system', '')} {doc.get('label', '')}")
    values = {"net_charge": q.tolist(), "fragment_charge": {k: float(v) for k, v in fc.items()}}
    if fc:
        ax2 = fig.add_subplot(gs[0, 1])
        names = list(fc)
        vals = [float(fc[n]) for n in names]
        bars = ax2.bar(names, vals, color=colour, edgecolor="k", lw=0.4)
        for b, v in zip(bars, vals):
            ax2.annotate(f"{v:+.3f}", (b.get_x() + b.get_width() / 2, v), ha="center",
                         va="bottom" if v >= 0 else "top", fontsize=7)
        ax2.axhline(0, color="k", lw=0.5)
        ax2.set_ylabel("fragment net charge (e)")
        ax2.set_title("per fragment")
        lim = max(abs(v) for v in vals) * 1.3 or 1
        ax2.set_ylim(-lim, lim)
    return fig, values



@figure_kind(order=80, headings={"bader": "Bader charges"})
def jobs(ctx: FigureContext):
    yield from each_document(ctx, "bader", "bader", lambda d: f"Bader charges {entity(d)}", plot_bader,
                             absent="no Bader documents in the store (step 'bader' not run or failed)")
