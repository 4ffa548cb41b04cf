"""Coverage series: average E_ads per ion vs ion count, and the voltage profile against the metal anode."""

from __future__ import annotations

from hetero.plots.core import PALETTE, FigureContext, each_document, figure_kind, new_figure, slug


def plot_ocv(doc: dict, colour: str = PALETTE[0]):
    """Left: average E_ads per ion vs number of ions. Right: the voltage profile (steps vs the metal anode)."""
    n = doc["n_ions"]
    fig = new_figure(8.0, 3.6)
    ax1, ax2 = fig.subplots(1, 2)
    for key, ref, mk in (("e_ads_avg_bulk_eV", "bulk metal", "o"), ("e_ads_avg_atom_eV", "isolated atom", "s")):
        pts = [(k, v) for k, v in zip(n, doc.get(key) or []) if v is not None]
        if pts:
            ax1.plot(*zip(*pts), marker=mk, color=colour, ls="-" if ref == "bulk metal" else "--",
                     label=f"ref. {ref}")
            for k, v in pts:
                ax1.annotate(f"{v:.3f}", (k, v), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax1.axhline(0, color="k", lw=0.6)
    ax1.set_xlabel(f"{doc['ion']} ions in the cell ({doc['host_formula']})")
    ax1.set_ylabel(r"average $E_{ads}$ (eV per ion)")
    ax1.set_xticks([k for k in n if k > 0])
    ax1.legend(fontsize=6)
    v = doc.get("step_voltage_V") or []
    if v:
        cap = dict(zip(n, doc.get("capacity_mAh_g") or []))
        for lo, hi, volt in zip(doc["step_n_lo"], doc["step_n_hi"], v):
            x0, x1 = cap.get(lo), cap.get(hi)
            if x0 is None or x1 is None:
                x0, x1 = lo, hi
            ax2.plot([x0, x1], [volt, volt], color=colour, lw=2)
            ax2.annotate(f"{lo}->{hi}: {volt:.2f} V", ((x0 + x1) / 2, volt), ha="center", fontsize=6,
                         xytext=(0, 3), textcoords="offset points")
        for (lo, hi, a), b in zip(zip(doc["step_n_lo"], doc["step_n_hi"], v), v[1:]):
            x = cap.get(hi, hi)
            ax2.plot([x, x], [a, b], color=colour, lw=1)
        ax2.axhline(0, color="k", lw=0.6)
        ax2.set_xlabel("capacity (mAh/g of the host cell)" if cap else "ions in the cell")
        ax2.set_ylabel(f"voltage vs {doc['ion']}/{doc['ion']}$^+$ (V)")
    else:
        ax2.text(0.5, 0.5, "no bulk-metal reference:\nno voltage", ha="center", va="center", transform=ax2.transAxes)
        ax2.set_axis_off()
    note = f"site {doc['site']}; series ends: {doc.get('stopped_because') or 'as requested'}"
    fig.suptitle(f"{doc['ion']} coverage series on {doc['system']}\n{note}", fontsize=7)
    return fig, {"n_ions": n, "step_voltage_V": v}



@figure_kind(order=40, headings={"ocv": "Coverage series and voltage profile"})
def jobs(ctx: FigureContext):
    # an optional step: no document, no entry in `skipped`
    yield from each_document(
        ctx, "coverage", "ocv",
        lambda d: f"Coverage series and voltage profile of {d['ion']} at {d['site']} on {d['system']}", plot_ocv,
        stem=lambda d: slug("ocv", d["system"], d["ion"], d["site"]))
