"""Adsorption energy per site: this work with each reference state beside the published values."""

from __future__ import annotations

from hetero.plots.core import (
    PUBLISHED_COLOUR,
    REF_HATCH,
    FigureContext,
    FigureJob,
    Skip,
    colour_of,
    entity,
    figure_kind,
    missing,
    new_figure,
    single_ion,
    slug,
)


def adsorption_bars(ads_docs: list[dict], published: dict[str, float] | None = None,
                    published_reference: str = "reference not stated") -> list[dict]:
    """The bars of the adsorption figure: site, source, reference state, value (eV)."""
    bars = []
    def order(site: str) -> tuple:
        ours = [d.get("e_ads_bulk_eV") if d.get("e_ads_bulk_eV") is not None else d.get("e_ads_atom_eV")
                for d in ads_docs if d["site"] == site]
        ours = [v for v in ours if v is not None]
        return (0, min(ours), site) if ours else (1, (published or {}).get(site) or 0.0, site)

    sites = sorted({d["site"] for d in ads_docs} | set((published or {}).keys()), key=order)
    for s in sites:
        for d in [d for d in ads_docs if d["site"] == s]:
            for ref, key in (("bulk metal", "e_ads_bulk_eV"), ("isolated atom", "e_ads_atom_eV")):
                if d.get(key) is not None:
                    bars.append({"site": s, "source": "this work", "reference": ref, "value": float(d[key]),
                                 "entity": entity(d)})
        if published and published.get(s) is not None:
            bars.append({"site": s, "source": "published (literature)", "reference": published_reference,
                         "value": float(published[s]), "entity": ""})
    return bars


def plot_adsorption(ads_docs: list[dict], published: dict[str, float] | None = None,
                    colours: dict[str, str] | None = None, published_reference: str = "reference not stated",
                    title: str = ""):
    """E_ads per site: this work (each reference state) beside the published values, every bar labelled."""
    bars = adsorption_bars(ads_docs, published, published_reference)
    if not bars:
        raise Skip("no adsorption energies (neither bulk-metal nor isolated-atom reference) in the store")
    sites = list(dict.fromkeys(b["site"] for b in bars))
    fig = new_figure(1.8 + 1.3 * len(sites), 4.6)
    ax = fig.add_subplot()
    width = 0.26
    ticks, labels, centres = [], [], []
    for i, s in enumerate(sites):
        group = [b for b in bars if b["site"] == s]
        centres.append(i)
        for k, b in enumerate(group):
            x = i + (k - (len(group) - 1) / 2) * width
            ours = b["source"] == "this work"
            col = colour_of(colours, b["entity"]) if ours else PUBLISHED_COLOUR
            hatch = REF_HATCH.get(b["reference"], "") if ours else REF_HATCH["published"]
            ax.bar(x, b["value"], width * 0.95, color=col, hatch=hatch, edgecolor="k", lw=0.5)
            ax.annotate(f"{b['value']:.3f}", (x, b["value"]), ha="center", va="top" if b["value"] < 0 else "bottom",
                        fontsize=6, xytext=(0, -2 if b["value"] < 0 else 2), textcoords="offset points")
            ticks.append(x)
            labels.append(("this work: " if ours else "published: ") + b["reference"])
            b["x"] = x
    # every bar names its source and reference state (tick labels); the sites label the groups on top
    ax.set_xticks(ticks, labels, rotation=90, fontsize=6)
    for t in ax.get_xticklabels():
        t.set_gid("bar-label")
    top = ax.secondary_xaxis("top")
    top.set_xticks(centres, sites)
    top.set_xlabel("adsorption site")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_ylabel(r"$E_{ads}$ (eV per ion), negative = favourable")
    lo = min(b["value"] for b in bars)
    hi = max(b["value"] for b in bars)
    span = max(hi, 0) - min(lo, 0) or 1.0
    ax.set_ylim(min(lo, 0) - 0.12 * span, max(hi, 0) + 0.12 * span)
    ax.set_xlim(-0.6, len(sites) - 0.4)
    from matplotlib.patches import Patch

    handles = [Patch(facecolor="white", edgecolor="k", hatch=REF_HATCH["bulk metal"], label="this work, ref. bulk metal"),
               Patch(facecolor="white", edgecolor="k", hatch=REF_HATCH["isolated atom"],
                     label="this work, ref. isolated atom"),
               Patch(facecolor=PUBLISHED_COLOUR, edgecolor="k", hatch=REF_HATCH["published"],
                     label=f"published (literature), {published_reference}")]
    ax.legend(handles=handles, frameon=True, framealpha=0.9, loc="best", fontsize=6)
    ax.set_title(title or "Adsorption energy per site")
    return fig, {"bars": bars}



@figure_kind(order=20, headings={"adsorption": "Adsorption energies"})
def jobs(ctx: FigureContext):
    ads = single_ion(ctx.run.of("adsorption"))
    published = (ctx.run.campaign or {}).get("published") or {}
    pub_e = published.get("e_ads_eV") or {}
    pub_ref = published.get("e_ads_reference") or "reference not stated"
    if not ads:
        yield missing("adsorption", "adsorption", "no adsorption documents in the store")
    for system, ion in sorted({(d["system"], d["ion"]) for d in ads}):
        group = [d for d in ads if d["system"] == system and d["ion"] == ion]
        yield FigureJob(slug("adsorption", system, ion), "adsorption", f"Adsorption energy of {ion} on {system}",
                        lambda g=group, s=system, i=ion: plot_adsorption(
                            g, pub_e, ctx.colours, pub_ref, title=f"{i} on {s}: adsorption energy per site"))
