"""Cheap candidate starts for the screening funnel, and the grouping of where they end.

AdsorbML's recipe (Lan et al., npj Comput. Mater. 2023): every symmetric site plus random placements,
all relaxed with a machine-learned potential, grouped, the best few sent to DFT. Two facts measured on
this project's Na/VN(001) runs shape the starts: a relaxation started exactly on a high-symmetry site
stops on a saddle (no lateral force), so site starts are displaced 0.1-0.25 A in a random direction; and
an ion may end on another site than it started from, so results are grouped by where the ion ends.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pymatgen.core import Structure

from hetero.builders.sites import Site, _height_for, covalent_radius, equivalent_positions, place_ion

OFFSET_RANGE_A = (0.1, 0.25)


def ion_candidates(slab: Structure, ion: str, sites: list[Site], random_starts: int = 8, seed: int = 0,
                   offset_range_A: tuple[float, float] = OFFSET_RANGE_A) -> list[dict[str, Any]]:
    """Starts for the MLIP stage: every site displaced off its symmetric point, plus random placements
    at touching height (on the surface, and at mid-gap height when gap sites are given).

    Returns [{"id", "origin", "site" (label or ""), "structure" (ion last)}]. Deterministic for a seed."""
    rng = np.random.default_rng(seed)
    out = []
    for s in sites:
        theta, r = rng.uniform(0, 2 * np.pi), rng.uniform(*offset_range_A)
        st = place_ion(slab, s, ion, offset_A=(r * np.cos(theta), r * np.sin(theta)))
        out.append({"id": f"site-{s.label}", "origin": f"site {s.label} + {r:.2f} A off-site", "site": s.label,
                    "structure": st, "in_gap": s.kind == "interlayer"})
    gap_z = [s.cart_coords[2] for s in sites if s.kind == "interlayer"]
    r_ion = covalent_radius(ion)
    for k in range(random_starts):
        f = rng.random(2)
        xy = f[0] * slab.lattice.matrix[0, :2] + f[1] * slab.lattice.matrix[1, :2]
        in_gap = bool(gap_z) and k % 2 == 1  # alternate surface and gap when the model has a gap
        z = float(gap_z[0]) if in_gap else _height_for(slab, xy, r_ion)[0]
        st = slab.copy()
        props = {"selective_dynamics": [True] * 3} if "selective_dynamics" in st.site_properties else None
        st.append(ion, [xy[0], xy[1], z], coords_are_cartesian=True, properties=props)
        out.append({"id": f"random-{k:02d}", "origin": f"random {'gap' if in_gap else 'surface'} placement",
                    "site": "", "structure": st, "in_gap": in_gap})
    return out


def on_frozen_host(relaxed_host: Structure, start: Structure) -> Structure:
    """A candidate for an ion-only MLIP relaxation: the model's relaxed host, every host atom fixed, and the
    ion (last site of ``start``) free where the start put it. On Na/VN(001) (33 atoms, CHGNet, 12 starts)
    this took 17 BFGS steps instead of 40 for the whole slab, with energies within 0.05 eV (0.11 eV above the
    full relaxation on the 9-atom slab with one Na per surface V): enough to rank inside a 0.3 eV window. Not for ions in a van der Waals gap, whose layers must open to take them."""
    out = Structure(relaxed_host.lattice, [*relaxed_host.species, start[-1].specie],
                    np.vstack([relaxed_host.cart_coords, start.cart_coords[-1]]), coords_are_cartesian=True)
    out.add_site_property("selective_dynamics", [[False] * 3] * len(relaxed_host) + [[True] * 3])
    return out


def _inplane_distance(slab: Structure, p: np.ndarray, q: np.ndarray) -> float:
    a, b = slab.lattice.matrix[0, :2], slab.lattice.matrix[1, :2]
    return float(min(np.linalg.norm(p[:2] - q[:2] + i * a + j * b) for i in (-1, 0, 1) for j in (-1, 0, 1)))


def classify_final_positions(slab: Structure, finals: list[np.ndarray], sites: list[Site],
                             site_tol_A: float = 0.5, group_tol_A: float = 0.3, z_tol_A: float = 1.2) -> list[str]:
    """Label where each relaxed ion ended: the builder site whose symmetry copy lies within site_tol_A
    in-plane (and at a similar height), else a new group 'other-k' shared by symmetry-equivalent ends."""
    copies = [(s, equivalent_positions(slab, s.cart_coords[:2])) for s in sites]
    others: list[tuple[str, np.ndarray, float]] = []  # label, equivalent xy copies, z
    labels = []
    for p in finals:
        p = np.asarray(p, float)
        best, best_d = None, site_tol_A
        for s, xys in copies:
            if abs(p[2] - s.cart_coords[2]) > z_tol_A:
                continue  # a surface site is no match for an ion that ended in the gap (and vice versa)
            d = min(_inplane_distance(slab, p, xy) for xy in xys)
            if d < best_d:
                best, best_d = s.label, d
        if best is None:
            for label, xys, z in others:
                if abs(p[2] - z) < z_tol_A and min(_inplane_distance(slab, p, xy) for xy in xys) < group_tol_A:
                    best = label
                    break
        if best is None:
            best = f"other-{len(others) + 1}"
            others.append((best, equivalent_positions(slab, p[:2]), float(p[2])))
        labels.append(best)
    return labels


def merge_flat_basins(slab: Structure, labels: list[str], finals: list[np.ndarray], energies: list[float],
                      models: list[str], sites: list[Site], max_A: float = 0.75, max_eV: float = 0.05) -> list[str]:
    """Fold an 'other-k' end into the nearest site's group when it lies within max_A of that site and within
    max_eV of the site group's best energy on the same model: on the flat MLIP landscapes of alkali
    adsorbates, relaxations stop anywhere in a broad basin (measured on Na/VN(001): top-N group members
    0.05-0.5 A off the site within 20 meV), and a separate DFT run for each stopping point is waste."""
    best: dict[tuple[str, str], float] = {}
    for lab, e, m in zip(labels, energies, models):
        if not lab.startswith("other-"):
            best[(lab, m)] = min(best.get((lab, m), np.inf), e)
    copies = [(s.label, equivalent_positions(slab, s.cart_coords[:2]), s.cart_coords[2]) for s in sites]
    out = list(labels)
    for i, (lab, p, e, m) in enumerate(zip(labels, finals, energies, models)):
        if not lab.startswith("other-"):
            continue
        near = sorted((min(_inplane_distance(slab, np.asarray(p), xy) for xy in xys), name)
                      for name, xys, z in copies if abs(p[2] - z) < 1.2)
        for d, name in near:
            if d < max_A and (name, m) in best and abs(e - best[(name, m)]) < max_eV:
                out[i] = name
                break
    return out


def select_for_dft(group_energies: dict[str, dict[str, float]], window_eV: float, always: list[str] | tuple = (),
                   min_selected: int = 2) -> tuple[list[str], str]:
    """Distinct minima within window_eV of each model's minimum (union over models) plus the named
    groups; never top-1 alone (the next best is added). group_energies: {group: {model: E_min}}.
    Ordered rank by rank across the models (every model's best, then every model's second ...), so a cap on the
    DFT sites (flows.funnel.cap_selection) keeps each model's best: CHGNet's window alone filled the VS2/V2CO2 cap
    and left out SevenNet-0's lowest gap minimum."""
    chosen: list[str] = []
    models = sorted({m for e in group_energies.values() for m in e})
    in_window = {}
    for m in models:
        ranked = sorted((e[m], g) for g, e in group_energies.items() if m in e)
        in_window[m] = [g for e, g in ranked if e - ranked[0][0] <= window_eV + 1e-9]
    for rank in range(max((len(v) for v in in_window.values()), default=0)):
        for m in models:
            if rank < len(in_window[m]) and in_window[m][rank] not in chosen:
                chosen.append(in_window[m][rank])
    for g in always:
        if g in group_energies and g not in chosen:
            chosen.append(g)
    rule = f"within {window_eV} eV of the MLIP minimum ({', '.join(models)})"
    if len(chosen) < min_selected:
        m = models[0]
        for _e, g in sorted((e[m], g) for g, e in group_energies.items() if m in e):
            if len(chosen) >= min_selected:
                break
            if g not in chosen:
                chosen.append(g)
                rule += f"; {g} added (never top-1 alone)"
    if always:
        rule += f"; named: {list(always)}"
    return chosen, rule


def ion_on_relaxed_host(mlip_final: Structure, relaxed_host: Structure, shell_A: float = 3.5) -> Structure:
    """The DFT stage's start for one selected minimum: the DFT-relaxed host with the ion (last site) at its
    MLIP position, carried along with its MLIP neighbours (shifted by their mean displacement between the
    MLIP geometry and the DFT host), so its bonds keep the MLIP lengths while the host is already PBE's.
    Tried because whole MLIP geometries took 23-28 DFT force calls per site (examples/na_vn001_funnel); on
    Na@top-N this start took 27 (555 SCF iterations vs 451), so it is an option, not the default."""
    if len(mlip_final) != len(relaxed_host) + 1:
        raise ValueError(f"MLIP structure has {len(mlip_final)} sites, relaxed host {len(relaxed_host)}: "
                         "expected the host's sites plus the ion, last")
    ion = mlip_final[-1]
    neighbours = [n.index for n in mlip_final.get_neighbors(ion, shell_A) if n.index != len(mlip_final) - 1]
    if not neighbours:  # an ion far from everything: keep its MLIP position
        neighbours = [int(np.argmin(mlip_final.distance_matrix[-1, :-1]))]
    d = relaxed_host.frac_coords[neighbours] - mlip_final.frac_coords[neighbours]
    d -= np.round(d)  # minimal image: a neighbour that crossed the cell edge moved by a few tenths of an A
    shift = relaxed_host.lattice.get_cartesian_coords(d).mean(axis=0)
    # no site properties: the caller adds the host's selective dynamics, as for an MLIP start
    return Structure(relaxed_host.lattice, [*relaxed_host.species, ion.specie],
                     np.vstack([relaxed_host.cart_coords, ion.coords + shift]), coords_are_cartesian=True)
