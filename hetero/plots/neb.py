"""CI-NEB energy profile: images, spline and the stored barrier, with what looks wrong flagged."""

from __future__ import annotations

import numpy as np

from hetero.plots.core import PALETTE, FigureContext, each_document, figure_kind, new_figure, slug


def neb_warnings(doc: dict) -> list[str]:
    """What looks wrong in a NEB document (its numbers are still plotted as stored)."""
    e = np.asarray(doc.get("energies_eV") or [0.0], float)
    se = np.asarray(doc.get("spline_e_eV") or [], float)
    barrier = float(doc.get("barrier_eV", 0.0))
    out = []
    if len(se) and abs(float(se[0]) - float(e[0])) > 0.05:
        out.append(f"spline starts {float(se[0]) - float(e[0]):+.3f} eV away from the first image: the document's "
                   "spline (and a barrier taken from it) is inconsistent with its images")
    img_barrier = float(e.max() - e[0])
    if abs(barrier - img_barrier) > max(1.0, 2 * abs(img_barrier)):
        out.append(f"barrier_eV {barrier:.3f} far from the image maximum {img_barrier:.3f} eV")
    if not doc.get("converged", True):
        out.append("CI-NEB not converged")
    return out


def plot_neb(doc: dict, colour: str = PALETTE[0]):
    """Images (points), spline (line), barrier annotated with NebDoc.barrier_eV."""
    x = np.asarray(doc["reaction_coord_A"], float)
    e = np.asarray(doc["energies_eV"], float)
    sx = np.asarray(doc.get("spline_x_A") or [], float)
    se = np.asarray(doc.get("spline_e_eV") or [], float)
    barrier = float(doc["barrier_eV"])
    fig = new_figure(4.4, 3.2)
    ax = fig.add_subplot()
    band = doc.get("band_engine")  # DFT//MLIP: single points on an MLIP band, joined by straight lines
    if len(sx):
        ax.plot(sx, se, color=colour, lw=1.3, label="joined (no forces)" if band else "spline")
    ax.plot(x, e, "o", color=colour, mec="k", mew=0.6, ms=6, label="images", zorder=3)
    top_x = float(sx[np.argmax(se)]) if len(se) else float(x[np.argmax(e)])
    top_e = float(e[0] + barrier)
    ax.annotate("", xy=(top_x, top_e), xytext=(top_x, e[0]), arrowprops={"arrowstyle": "<->", "lw": 0.8})
    ax.axhline(e[0], color="0.6", lw=0.6, ls=":")
    right = top_x > (float(x.min()) + float(x.max())) / 2
    ax.text(top_x, (e[0] + top_e) / 2, f"  $E_a$ = {barrier:.3f} eV" + ("  " if right else ""), va="center",
            ha="right" if right else "left", fontsize=8, gid="barrier")
    warnings = neb_warnings(doc)
    if warnings:
        ax.text(0.02, 0.03, "WARNING:\n" + "\n".join(w.split(":")[0] for w in warnings), transform=ax.transAxes,
                fontsize=6, color="#b00000", va="bottom", gid="warning")
    conv = "" if doc.get("converged", True) else " (NOT converged)"
    kind = f"{(doc.get('provenance') or {}).get('engine', '')} on {band} CI-NEB band" if band else "CI-NEB"
    ax.set_title(f"{kind} {doc.get('ion', '')} {doc.get('path', '')} on {doc.get('system', '')}{conv}")
    ax.set_xlabel(r"reaction coordinate ($\AA$)")
    ax.set_ylabel("E - E$_{initial}$ (eV)")
    ax.legend(frameon=False, loc="best")
    return fig, {"barrier_eV": barrier, "images_x": x.tolist(), "images_e": e.tolist(),
                 "spline_x": sx.tolist(), "spline_e": se.tolist(), "converged": bool(doc.get("converged", True)),
                 "warnings": warnings}



@figure_kind(order=30, headings={"neb": "Migration (CI-NEB)"})
def jobs(ctx: FigureContext):
    yield from each_document(
        ctx, "neb", "neb", lambda d: f"CI-NEB {d['ion']} {d['path']} on {d['system']}", plot_neb,
        stem=lambda d: slug("neb", d["system"], d["ion"], d["path"]),
        absent="no NEB documents in the store (step 'neb' not run, failed, or fewer than 2 distinct sites)")
