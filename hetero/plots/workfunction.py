"""Work function: planar-averaged electrostatic potential with E_F and the vacuum level on each side."""

from __future__ import annotations

import numpy as np

from hetero.plots.core import PALETTE, FigureContext, each_document, entity, figure_kind, new_figure


def plot_workfunction(doc: dict, colour: str = PALETTE[0]):
    z = np.asarray(doc["z_A"], float)
    v = np.asarray(doc["planar_potential_eV"], float)
    fig = new_figure(4.6, 3.2)
    ax = fig.add_subplot()
    ax.plot(z, v, color=colour, label="planar-averaged potential")
    ax.axhline(doc["fermi_eV"], color="k", ls="--", lw=0.8, label="E$_F$")
    if doc.get("vacuum_top_eV") is not None:
        ax.axhline(doc["vacuum_top_eV"], color="0.5", ls=":", lw=0.8, label="vacuum level (top)")
    if doc.get("vacuum_bottom_eV") is not None:
        ax.axhline(doc["vacuum_bottom_eV"], color="0.3", ls="-.", lw=0.7, label="vacuum level (bottom)")

    def _fmt(v):  # a side whose vacuum never flattened has no work function
        return "n/a (no flat vacuum)" if v is None else f"{v:.3f} eV"

    ax.text(0.02, 0.05, f"$\\Phi_{{top}}$ = {_fmt(doc['work_function_top_eV'])}\n"
            f"$\\Phi_{{bottom}}$ = {_fmt(doc['work_function_bottom_eV'])}", transform=ax.transAxes, fontsize=7,
            gid="workfunction")
    ax.set_xlabel(r"z ($\AA$)")
    ax.set_ylabel("electrostatic potential energy (eV)")
    ax.set_title(f"Work function {doc.get('system', '')} {doc.get('label', '')}")
    ax.legend(frameon=False, fontsize=6, loc="center right")
    return fig, {"work_function_top_eV": doc["work_function_top_eV"],
                 "work_function_bottom_eV": doc["work_function_bottom_eV"]}



@figure_kind(order=90, headings={"workfunction": "Work function"})
def jobs(ctx: FigureContext):
    # an optional output: no document, no entry in `skipped`
    yield from each_document(ctx, "work_function", "workfunction", lambda d: f"Work function {entity(d)}",
                             plot_workfunction)
