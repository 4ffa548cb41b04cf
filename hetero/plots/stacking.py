"""The stacking funnel: every registry x start gap relaxed on the MLIPs, the chosen host, the engine's checks."""

from __future__ import annotations

import numpy as np

from hetero.plots.core import PALETTE, FigureContext, FigureJob, Skip, figure_kind, new_figure, slug

MARKERS = {"mlip:chgnet": "o", "mlip:sevennet": "s"}


def plot_stacking(doc: dict, checks: list[dict]):
    """Energy above the chosen host against the relaxed interlayer gap, per MLIP; the engine's checks of the other
    selected stackings beside them (their own energy difference to the host static)."""
    every = doc.get("candidates") or []
    cands = [c for c in every if not c.get("unphysical")]  # broken relaxations (overlapping atoms) are in no group
    if not cands:
        raise Skip("the stacking screen holds no candidates with a physical relaxation")
    groups = {g["label"]: g for g in doc.get("groups", [])}
    chosen = groups[doc["chosen"]]
    fig = new_figure(4.8, 3.4)
    ax = fig.add_subplot()
    values: dict = {"chosen": doc["chosen"], "mlip": {}, "checks": {}}
    for k, model in enumerate(doc["models"]):
        gap = [c["final_gap_A"].get(model, np.nan) for c in cands]
        de = [c["energy_eV"].get(model, np.nan) - chosen["e_min_eV"][model] for c in cands]
        ax.plot(gap, de, MARKERS.get(model, "^"), color=PALETTE[k], mfc="none", ms=6, label=f"{model} (MLIP)")
        values["mlip"][model] = {"gap_A": gap, "delta_eV": de}
    first = doc["models"][0]
    for c in cands:
        if c["id"] in doc.get("selected", []):
            ax.annotate(c["id"].removeprefix("shift-"), (c["final_gap_A"][first],
                                                         c["energy_eV"][first] - chosen["e_min_eV"][first]),
                        fontsize=6, xytext=(4, 3), textcoords="offset points")
    by_id = {c["id"]: c for c in cands}
    for chk in checks:
        c = by_id.get(chk["stacking"])
        if c is None:
            continue
        ax.plot([c["final_gap_A"][first]], [chk["delta_eV"]], "D", color="k", ms=6,
                label="engine check" if not values["checks"] else None)
        values["checks"][chk["stacking"]] = chk["delta_eV"]
    ax.axhline(0, color="0.6", lw=0.8)
    ax.axhline(doc["window_eV"], color="#f2c80f", lw=0.8, ls="--")
    ax.set_xlabel("interlayer gap after relaxation (A)")
    ax.set_ylabel("E - E(chosen host) (eV)")
    broken = f" ({len(every) - len(cands)} broken relaxations left out)" if len(every) > len(cands) else ""
    ax.set_title(f"{doc['system']}: {len(every)} stackings{broken} -> {len(groups)} minima -> host {doc['chosen']}",
                 fontsize=8)
    ax.legend(frameon=False, fontsize=7, loc="best")
    return fig, values


@figure_kind(order=34, headings={"stacking": "Stacking funnel (registry and gap)"})
def jobs(ctx: FigureContext):
    for doc in ctx.run.of("stacking_screen"):
        checks = [c for c in ctx.run.of("stacking_check") if c.get("system") == doc["system"]]
        yield FigureJob(slug("stacking", doc["system"]), "stacking", f"Stacking screen of {doc['system']}",
                        lambda doc=doc, checks=checks: plot_stacking(doc, checks))
