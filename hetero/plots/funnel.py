"""The screening funnel: candidates -> MLIP-relaxed distinct minima -> selected -> DFT, with energies."""

from __future__ import annotations

import numpy as np

from hetero.plots.core import PALETTE, FigureContext, Skip, figure_kind, new_figure, slug, FigureJob
from hetero.schemas import engine_label

MARKERS = {"mlip:chgnet": "o", "mlip:sevennet": "s"}


MAX_GROUPS = 30  # minima drawn


def plot_funnel(doc: dict, dft_e_ads: dict[str, float], second_stage: str = "DFT"):
    """E_ads vs the bulk metal of every distinct minimum (MLIP, per model) and of the selected ones (the second
    stage: DFT, DFT at the MLIP geometry, or the MLIP at tighter settings on an MLIP-engine run; `second_stage`)."""
    groups = doc.get("groups") or []
    if not groups:
        raise Skip("the funnel document holds no groups")
    # best rank on any model first; a low-symmetry junction gives ~120 minima, which no figure can show: the
    # lowest MAX_GROUPS (every selected one among them) are drawn and the title counts the rest
    groups = sorted(groups, key=lambda g: (not g.get("selected"), min(g["rank"].values(), default=10**6)))
    hidden = max(len(groups) - MAX_GROUPS, 0)
    groups = sorted(groups[:MAX_GROUPS], key=lambda g: min(g["rank"].values(), default=10**6))
    x = np.arange(len(groups))
    fig = new_figure(max(4.4, 0.55 * len(groups) + 2.0), 3.4)
    ax = fig.add_subplot()
    values: dict = {"groups": [g["label"] for g in groups], "selected": list(doc["selected"]), "mlip": {}, "dft": {},
                    "groups_not_shown": hidden}
    for k, model in enumerate(doc["models"]):
        y = [g["e_ads_bulk_eV"].get(model, np.nan) for g in groups]
        ax.plot(x + 0.08 * k, y, MARKERS.get(model, "^"), color=PALETTE[k], mfc="none", ms=6, label=f"{model} (MLIP)")
        values["mlip"][model] = y
    ys = [dft_e_ads.get(g["label"], np.nan) for g in groups]
    if np.isfinite(ys).any():
        ax.plot(x, ys, "D", color="k", ms=6, label=f"{second_stage} (selected)")
    values["dft"] = {g["label"]: dft_e_ads[g["label"]] for g in groups if g["label"] in dft_e_ads}
    for i, g in enumerate(groups):
        if g.get("selected"):
            ax.axvspan(i - 0.4, i + 0.4, color="#f2c80f", alpha=0.25, lw=0)
    ax.set_xticks(x, [f"{g['label']}\n({len(g['members'])})" for g in groups], fontsize=7)
    ax.set_ylabel("E$_{ads}$ vs bulk metal (eV)")
    n_mod = len(doc["models"])
    ax.set_title(f"{doc['ion']} on {doc['system']}: {doc['n_candidates']} starts x {n_mod} model(s) -> "
                 f"{len(groups) + hidden} minima -> {len(doc['selected'])} to {second_stage} -> {len(values['dft'])} done"
                 + (f"\n(the lowest {len(groups)} shown; {hidden} higher minima not drawn)" if hidden else ""), fontsize=8)
    ax.legend(frameon=False, fontsize=7, loc="best")
    ax.text(0.01, 0.01, f"shaded: selected ({doc['selection_rule']})", transform=ax.transAxes, fontsize=6, va="bottom",
            color="0.3", wrap=True)
    return fig, values


@figure_kind(order=33, headings={"funnel": "Screening funnel (MLIP -> DFT)"})
def jobs(ctx: FigureContext):
    for doc in ctx.run.of("funnel"):
        ads = [a for a in ctx.run.of("adsorption")
               if a.get("system") == doc["system"] and a.get("n_ions", 1) == 1 and a.get("e_ads_bulk_eV") is not None]
        dft = {a["site"]: a["e_ads_bulk_eV"] for a in ads}
        # the second stage's engine as the table names it: an MLIP-engine run's second stage is no DFT
        stage = (engine_label(ads[0].get("provenance", {})) if ads else None) or "DFT"
        yield FigureJob(slug("funnel", doc["system"], doc["ion"]), "funnel", f"Funnel {doc['ion']} on {doc['system']}",
                        lambda doc=doc, dft=dft, stage=stage: plot_funnel(doc, dft, stage))
