"""Screening map: most favourable E_ads against the lowest migration barrier, coloured by strain."""

from __future__ import annotations

import matplotlib

from hetero.plots.core import FigureContext, FigureJob, RunData, Skip, colour_of, figure_kind, new_figure, single_ion
from hetero.plots.neb import neb_warnings


def screening_points(run: RunData) -> tuple[list[dict], list[str]]:
    """One point per (system, ion): most favourable E_ads (bulk-metal reference if any) and lowest barrier."""
    strain: dict[str, float | None] = {}
    for m in run.of("model"):
        strain[m["system"]] = m.get("strain_percent")
    host = (run.models or {}).get("host") or {}
    if host.get("system") and host["system"] not in strain:
        strain[host["system"]] = host.get("strain_percent")
    pts, notes = [], []
    keys = sorted({(d["system"], d["ion"]) for d in run.of("adsorption")} | {(d["system"], d["ion"]) for d in run.of("neb")})
    for system, ion in keys:
        ads = [d for d in single_ion(run.of("adsorption")) if d["system"] == system and d["ion"] == ion]
        nebs = [d for d in run.of("neb") if d["system"] == system and d["ion"] == ion]
        ref, vals = "bulk metal", [(d["e_ads_bulk_eV"], d["site"]) for d in ads if d.get("e_ads_bulk_eV") is not None]
        if not vals:
            ref, vals = "isolated atom", [(d["e_ads_atom_eV"], d["site"]) for d in ads if d.get("e_ads_atom_eV") is not None]
        if not vals:
            notes.append(f"{system} + {ion}: no adsorption energy")
            continue
        if not nebs:
            notes.append(f"{system} + {ion}: no NEB barrier")
            continue
        e_ads, site = min(vals)
        nb = min(nebs, key=lambda d: d["barrier_eV"])
        pts.append({"system": system, "ion": ion, "e_ads_eV": float(e_ads), "site": site, "reference": ref,
                    "barrier_eV": float(nb["barrier_eV"]), "path": nb["path"], "strain_percent": strain.get(system),
                    "warnings": neb_warnings(nb)})
    return pts, notes


def plot_screening(points: list[dict], colours: dict[str, str] | None = None):
    if not points:
        raise Skip("screening map needs at least one system with both an adsorption energy and an NEB barrier")
    from matplotlib.colors import Normalize

    fig = new_figure(4.8, 3.8)
    ax = fig.add_subplot()
    strains = [p["strain_percent"] for p in points if p["strain_percent"] is not None]
    norm = Normalize(0.0, max(strains + [1.0]))
    cmap = matplotlib.colormaps["viridis"]
    for p in points:
        ec = colour_of(colours, f"{p['system']}:host")
        if p["strain_percent"] is None:
            ax.scatter(p["e_ads_eV"], p["barrier_eV"], s=70, facecolor="white", edgecolor=ec, lw=1.5, hatch="///")
        else:
            ax.scatter(p["e_ads_eV"], p["barrier_eV"], s=70, color=cmap(norm(p["strain_percent"])), edgecolor=ec, lw=1.5)
        ax.annotate(f"{p['system']} + {p['ion']}\n({p['site']}, {p['path']})", (p["e_ads_eV"], p["barrier_eV"]),
                    xytext=(5, 5), textcoords="offset points", fontsize=6)
    sm = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=ax).set_label("interface strain (%, von Mises)")
    if any(p["strain_percent"] is None for p in points):
        ax.text(0.02, 0.02, "open hatched marker: strain not applicable (single slab)", transform=ax.transAxes,
                fontsize=6, color="0.3")
    refs = sorted({p["reference"] for p in points})
    ax.set_xlabel(f"most favourable $E_{{ads}}$ (eV), ref. {' / '.join(refs)}")
    ax.set_ylabel("lowest migration barrier (eV)")
    ax.set_title("Screening map: binding vs mobility")
    flagged = [f"{p['system']} + {p['ion']} ({p['path']}): {w}" for p in points for w in p.get("warnings", [])]
    if flagged:
        n_bad = sum(1 for p in points if p.get("warnings"))
        ax.text(0.02, 0.98, f"WARNING: {n_bad} barrier(s) flagged (plotted as stored; see the NEB figures)",
                transform=ax.transAxes, fontsize=6, color="#b00000", va="top", gid="warning")
        for p in points:
            if p.get("warnings"):
                ax.annotate("!", (p["e_ads_eV"], p["barrier_eV"]), xytext=(-9, -3), textcoords="offset points",
                            color="#b00000", fontsize=10, fontweight="bold")
    xs = [p["e_ads_eV"] for p in points]
    ys = [p["barrier_eV"] for p in points]
    ax.set_xlim(min(xs) - 0.5, max(xs) + 0.5)
    ax.set_ylim(min(0.0, min(ys) - 0.1), max(ys) * 1.3 + 0.1)
    return fig, {"points": points, "warnings": flagged}



@figure_kind(order=10, headings={"screening": "Screening map"})
def jobs(ctx: FigureContext):
    def draw():
        pts, notes = screening_points(ctx.run)
        if not pts:
            raise Skip("; ".join(notes) or "no adsorption or NEB results")
        return plot_screening(pts, ctx.colours)

    yield FigureJob("screening_map", "screening", "Screening map (E_ads vs barrier, coloured by strain)", draw)
