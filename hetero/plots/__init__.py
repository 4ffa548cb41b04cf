"""Figures of a campaign, redrawn from the store alone (no recomputation).

`make_figures(run_folder)` reads the run once through hetero.io.store (`<run>/store.json` +
`campaign.json`, `models.json`) and writes PNG and PDF copies of every figure it can draw into
`<run>/figures/`; what it cannot draw (missing documents, missing grid files, nothing above the
isovalue ...) is listed in `skipped` with the reason, never raised. Each `plot_*` function takes
documents (dicts) and returns `(Figure, values)`: `values` are the numbers that were plotted, so tests
can compare them with the documents. Figures are built on `matplotlib.figure.Figure` (no pyplot
state) inside a fixed `rc_context` and saved with fixed DPI and without creation dates, so the same
store gives the same files.

Colours: one colour per model ("system:label", e.g. "VN(001)-fast:host", "VN(001)-fast:Na@top-V"),
assigned once per run in sorted order and used by every figure; elements use Jmol colours.

Layout: `core` (style, colours, saving, store access, the REGISTRY), `grids` (slices and isosurfaces
shared by CDD and ELF), `driver` (make_figures), and one module per figure kind. A figure-kind module
registers itself with `@figure_kind(order, headings)`; every module of this package is imported
below, so a new kind is one new file.
"""

from __future__ import annotations

import importlib
import pkgutil

from hetero.plots.adsorption import adsorption_bars, plot_adsorption
from hetero.plots.bader import plot_bader
from hetero.plots.cdd import plot_cdd_iso, plot_cdd_profile, plot_cdd_slice
from hetero.plots.core import (
    ACCUMULATION,
    DEPLETION,
    DPI,
    ISOVALUE_DEFAULT,
    PALETTE,
    PUBLISHED_COLOUR,
    REF_HATCH,
    REGISTRY,
    STYLE,
    FigureContext,
    FigureJob,
    FigureKind,
    RunData,
    Skip,
    colour_map,
    covalent_radius,
    element_colour,
    entity,
    figure_kind,
    load_run,
    save_figure,
    single_ion,
    slug,
)
from hetero.plots.dos import plot_dos, plot_dos_overlay
from hetero.plots.driver import FigureSet, make_figures, report_sections
from hetero.plots.elf import plot_elf_slice
from hetero.plots.grids import grid_slice, isosurfaces
from hetero.plots.neb import neb_warnings, plot_neb
from hetero.plots.ocv import plot_ocv
from hetero.plots.screening import plot_screening, screening_points
from hetero.plots.structure import neb_ion_path, plot_structure
from hetero.plots.workfunction import plot_workfunction

# figure kinds added later register themselves on import: no list to extend here
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "ACCUMULATION", "DEPLETION", "DPI", "ISOVALUE_DEFAULT", "PALETTE", "PUBLISHED_COLOUR", "REF_HATCH", "REGISTRY",
    "STYLE", "FigureContext", "FigureJob", "FigureKind", "FigureSet", "RunData", "Skip", "adsorption_bars",
    "colour_map", "covalent_radius", "element_colour", "entity", "figure_kind", "grid_slice", "isosurfaces",
    "load_run", "make_figures", "neb_ion_path", "neb_warnings", "plot_adsorption", "plot_bader", "plot_cdd_iso",
    "plot_cdd_profile", "plot_cdd_slice", "plot_dos", "plot_dos_overlay", "plot_elf_slice", "plot_neb", "plot_ocv",
    "plot_screening", "plot_structure", "plot_workfunction", "report_sections", "save_figure", "screening_points",
    "single_ion", "slug",
]
