"""hetero.plots / `hetero figures`: figures from a store, no DFT.

The store is the real tiny chain store when HETERO_TEST_STORE points to one (a run folder or its
store.json); otherwise a synthetic run folder is built here from schema documents with physically
sensible arrays (a 4-plane VN(001) slab with Na on top-V and hollow).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path

import numpy as np
import pytest

from hetero import plots
from hetero.schemas import (
    AdsorptionDoc,
    BaderDoc,
    CalcDoc,
    CddDoc,
    DosDoc,
    ModelRecord,
    NebDoc,
    Provenance,
    WorkFunctionDoc,
)

SYSTEM = "VN(001)-test"
PUBLISHED = {"bridge": -1.564, "hollow": -1.457, "top-V": -1.83, "top-N": -1.358}


# ----------------------------------------------------------------------------------- synthetic run


def _slab(ion_frac: tuple[float, float] | None = None, ion_z: float = 10.4):
    from pymatgen.core import Lattice, Structure

    a, c = 2.927, 20.0
    species, coords = [], []
    for k in range(4):
        z = 2.0 + 2.07 * k
        first, second = ("V", "N") if k % 2 == 1 else ("N", "V")  # top plane: V at the origin (top-V)
        species += [first, second]
        coords += [[0.0, 0.0, z / c], [0.5, 0.5, z / c]]
    if ion_frac is not None:
        species.append("Na")
        coords.append([ion_frac[0], ion_frac[1], ion_z / c])
    return Structure(Lattice.from_parameters(a, a, c, 90, 90, 90), species, coords)


def _prov(run_dir: Path, step: str) -> Provenance:
    settings = {"preset": "fast", "ecut_eV": 250, "kpts": [4, 4, 1], "xc": "PBE", "step": step}
    from hetero.schemas import settings_hash

    return Provenance(engine="gpaw", engine_version="25.1.0", settings=settings, settings_hash=settings_hash(settings),
                      run_dir=str(run_dir), wall_s=1.0, cores=1, hetero_version="0.1")


def _gauss(x, mu, s):
    return np.exp(-((x - mu) ** 2) / (2 * s * s))


def _dos(label: str, st, run_dir: Path, fragments: bool) -> DosDoc:
    e = np.round(np.arange(-10.0, 5.0001, 0.05), 4)
    v = 3.0 * _gauss(e, -0.5, 1.2) + 1.0 * _gauss(e, 1.5, 0.7)  # V d band across E_F: metallic
    n = 2.5 * _gauss(e, -5.0, 1.0)  # N p band
    na = 0.2 * _gauss(e, 2.0, 0.8) if "Na" in st.symbol_set else np.zeros_like(e)
    total = v + n + na
    proj = {"N": n.tolist(), "V": v.tolist()}
    if "Na" in st.symbol_set:
        proj["Na"] = na.tolist()
    if fragments:
        proj["fragment:host"] = (v + n).tolist()
        proj["fragment:ion"] = na.tolist()
    return DosDoc(system=SYSTEM, label=label, energies_eV=e.tolist(), total=total.tolist(), projected=proj,
                  fermi_eV=4.2, band_gap_eV=0.0, is_metal=True, dos_at_fermi=float(np.interp(0, e, total)),
                  provenance=_prov(run_dir, "dos"))


def _cdd(label: str, st, run_dir: Path) -> CddDoc:
    from hetero.analysis.cdd import planar_profile

    shape = (12, 12, 80)
    cell = st.lattice.matrix
    f = np.stack(np.meshgrid(*[np.arange(n) / n for n in shape], indexing="ij"), axis=-1)
    r = f @ cell
    ion = st.cart_coords[-1]
    top = max(st.cart_coords[:-1, 2])

    def blob(centre, sx, sz):
        d = r - centre
        d[..., :2] -= 0  # cell is wide enough in z; in-plane use minimum image
        fr = np.linalg.solve(cell.T, d.reshape(-1, 3).T).T.reshape(d.shape)
        fr -= np.round(fr)
        d = fr @ cell
        return np.exp(-(d[..., 0] ** 2 + d[..., 1] ** 2) / (2 * sx**2) - d[..., 2] ** 2 / (2 * sz**2))

    acc = blob(np.array([ion[0], ion[1], (ion[2] + top) / 2]), 0.8, 0.6)
    dep = blob(ion, 0.9, 0.9)
    vol = st.volume
    acc *= 0.3 / (acc.sum() * vol / acc.size)  # 0.3 e gained between ion and surface
    dep *= 0.3 / (dep.sum() * vol / dep.size)
    delta = acc - dep
    z, prof = planar_profile(delta, cell)
    dz = z[1] - z[0]
    disp = np.cumsum(prof) * dz
    z_if = float((top + ion[2]) / 2)
    run_dir.mkdir(parents=True, exist_ok=True)
    grid = run_dir / "cdd.npz"
    np.savez_compressed(grid, delta=delta.astype(np.float32), cell=cell)
    n = len(st)
    return CddDoc(system=SYSTEM, label=label, z_A=z.tolist(), planar_avg_e_per_A=prof.tolist(),
                  displacement_e=disp.tolist(), interface_z_A=z_if,
                  transferred_e=float(-np.interp(z_if, z, disp)), integral_e=float(delta.sum() * vol / delta.size),
                  fragments={"host": list(range(n - 1)), "ion": [n - 1]}, files={"grid": str(grid)},
                  provenance=_prov(run_dir, "cdd"))


def synthetic_docs(root: Path, parts: set[str] | None = None) -> tuple[list, dict, dict]:
    """Schema documents of a small Na/VN(001) campaign (+ campaign and models dicts)."""
    keep = lambda t: parts is None or t in parts  # noqa: E731
    docs: list = []
    host = _slab()
    sites = {"top-V": ((0.0, 0.0), 10.6), "hollow": ((0.5, 0.0), 10.1)}
    e_host, mu_bulk, mu_atom = -70.0, -1.30, -0.10
    e_ads_bulk = {"top-V": -0.65, "hollow": -0.92}
    hdir = root / "calc" / "host"
    if keep("calc"):
        docs.append(CalcDoc(system=SYSTEM, label="host", step="static", formula="V4N4", n_atoms=8, energy_eV=e_host,
                            fermi_eV=4.2, structure=host.as_dict(), provenance=_prov(hdir, "static")))
    if keep("dos"):
        docs.append(_dos("host", host, hdir, False))
    if keep("bader"):
        q = [1.25 if s.specie.symbol == "V" else -1.25 for s in host]
        docs.append(BaderDoc(system=SYSTEM, label="host", symbols=[s.specie.symbol for s in host],
                             electrons=[0.0] * 8, valence=[0.0] * 8, net_charge=q, total_electrons=0.0,
                             provenance=_prov(hdir, "bader")))
    if keep("work_function"):
        z = np.linspace(0, 20, 200)
        v = 4.2 + 4.0 - 12 * _gauss(z, 5.1, 3.0)
        docs.append(WorkFunctionDoc(system=SYSTEM, label="host", z_A=z.tolist(), planar_potential_eV=v.tolist(),
                                    fermi_eV=4.2, vacuum_top_eV=8.2, vacuum_bottom_eV=8.2, work_function_top_eV=4.0,
                                    work_function_bottom_eV=4.0, provenance=_prov(hdir, "static")))
    ads_docs = {}
    for site, (frac, z) in sites.items():
        st = _slab(frac, z)
        label = f"Na@{site}"
        d = root / "calc" / label
        e_tot = e_host + mu_bulk + e_ads_bulk[site]
        if keep("calc"):
            docs.append(CalcDoc(system=SYSTEM, label=label, step="static", formula="V4N4Na", n_atoms=9,
                                energy_eV=e_tot, fermi_eV=4.0, structure=st.as_dict(), provenance=_prov(d, "static")))
        if keep("dos"):
            docs.append(_dos(label, st, d, True))
        if keep("bader"):
            q = [1.25 if s.specie.symbol == "V" else -1.25 for s in host] + [0.75]
            q[6] -= 0.4  # the top plane takes most of the Na electron
            q[7] -= 0.35
            docs.append(BaderDoc(system=SYSTEM, label=label, symbols=[s.specie.symbol for s in st],
                                 electrons=[0.0] * 9, valence=[0.0] * 9, net_charge=q,
                                 fragments={"host": list(range(8)), "ion": [8]},
                                 fragment_charge={"host": float(sum(q[:8])), "ion": 0.75}, total_electrons=0.0,
                                 provenance=_prov(d, "bader")))
        if keep("cdd"):
            docs.append(_cdd(label, st, d))
        ad = AdsorptionDoc(system=SYSTEM, ion="Na", site=site, e_total_eV=e_tot, e_host_eV=e_host,
                           mu_bulk_eV=mu_bulk, mu_atom_eV=mu_atom, e_ads_bulk_eV=e_ads_bulk[site],
                           e_ads_atom_eV=e_tot - e_host - mu_atom, height_A=z - 8.21, structure=st.as_dict(),
                           provenance=_prov(d, "static"))
        ads_docs[site] = ad
        if keep("adsorption"):
            docs.append(ad)
    if keep("neb"):
        x = [0.0, 0.73, 1.46]
        e = [0.0, 0.21, 0.27]
        sx = np.linspace(0, 1.46, 41)
        se = 0.27 * np.sin(np.pi / 2 * sx / 1.46) ** 2 + 0.05 * np.sin(np.pi * sx / 1.46)
        docs.append(NebDoc(system=SYSTEM, ion="Na", path="hollow->top-V", reaction_coord_A=x, energies_eV=e,
                           spline_x_A=sx.tolist(), spline_e_eV=se.tolist(), barrier_eV=float(se.max()),
                           hop_length_A=1.46, endpoint_energies_eV=[-71.3 - 0.92, -71.3 - 0.65],
                           provenance=_prov(root / "calc" / "neb", "neb")))
    if keep("model"):
        docs.append(ModelRecord(system=SYSTEM, kind="slab", film="VN", n_atoms=8, structure=host.as_dict(),
                                area_A2=8.566))
    campaign = {"name": "synthetic", "ion": "Na", "preset_used": "fast", "published": {"e_ads_eV": PUBLISHED}}
    models = {"host": {"system": SYSTEM, "kind": "slab", "n_atoms": 8, "structure": host.as_dict(),
                       "strain_percent": None},
              "sites": [{"label": s, "cart_coords": _slab(f, z).cart_coords[-1].tolist()} for s, (f, z) in sites.items()]}
    return docs, campaign, models


def write_run(root: Path, parts: set[str] | None = None) -> Path:
    """A run folder like `hetero run` writes: store.json (jobflow-wrapped docs), campaign.json, models.json."""
    docs, campaign, models = synthetic_docs(root, parts)
    wrapped = [{"uuid": str(uuid.UUID(int=i + 1)), "index": 1, "name": f"{d.doc_type} {getattr(d, 'label', '')}",
                "metadata": {}, "output": d.model_dump()} for i, d in enumerate(docs)]
    wrapped.append({"uuid": str(uuid.UUID(int=999)), "index": 1, "name": "CDD Na@bridge", "metadata": {}, "output": None})
    root.mkdir(parents=True, exist_ok=True)
    (root / "store.json").write_text(json.dumps(wrapped))
    (root / "campaign.json").write_text(json.dumps(campaign))
    (root / "models.json").write_text(json.dumps(models))
    return root


def real_store() -> Path | None:
    p = os.environ.get("HETERO_TEST_STORE")
    if not p:
        return None
    p = Path(p)
    return p if p.is_dir() else p.parent


def copy_run(real: Path, dst: Path) -> Path:
    """The run folder's JSON files and its small grids (no DFT files): documents record their grids by
    absolute path, which an exported run (examples/) no longer has; the reader finds them under the copy."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("store.json", "campaign.json", "models.json"):
        if (real / name).exists():
            (dst / name).write_bytes((real / name).read_bytes())
    for grid in [*real.rglob("cdd.npz"), *real.rglob("elf.npz")]:
        target = dst / grid.relative_to(real)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(grid.read_bytes())
    return dst


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    real = real_store()
    if real is not None:
        return copy_run(real, tmp_path_factory.mktemp("real") / real.name)
    return write_run(tmp_path_factory.mktemp("synthetic") / "synthetic-fast")


@pytest.fixture(scope="module")
def figset(run_folder):
    return plots.make_figures(run_folder)


# ----------------------------------------------------------------------------------- tests


def test_files_written_png_and_pdf(figset, run_folder):
    assert figset.out_dir == run_folder / "figures"
    assert figset.figures, figset.summary()
    for stem, info in figset.figures.items():
        png, pdf = (Path(f) for f in info["files"])
        assert png.suffix == ".png" and pdf.suffix == ".pdf"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2000, stem
        assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 1000, stem
    manifest = json.loads((figset.out_dir / "figures.json").read_text())
    assert set(manifest["figures"]) == set(figset.figures)


def test_every_kind_present(figset):
    kinds = {v["kind"] for v in figset.figures.values()}
    run = plots.load_run(figset.out_dir.parent)
    expected = {"model"}
    for doc_type, ks in (("dos", {"dos"}), ("cdd", {"cdd_profile", "cdd_slice", "cdd_iso"}), ("bader", {"bader"}),
                         ("adsorption", {"adsorption"}), ("neb", {"neb"}), ("work_function", {"workfunction"})):
        if run.of(doc_type):
            expected |= ks
    if run.of("adsorption") and run.of("neb"):
        expected.add("screening")
    if real_store() is None:  # the synthetic store has every document type
        assert expected >= {"dos", "cdd_profile", "cdd_slice", "cdd_iso", "bader", "adsorption", "neb", "screening"}
    assert expected <= kinds, (kinds, figset.skipped)
    # ELF is not produced by the chain's default outputs: skipped with a reason, not an error
    if not any((c.get("files") or {}).get("elf") for c in run.of("calc")):
        elf = [why for name, why in figset.skipped if name.startswith("elf")]
        assert elf and "elf" in elf[0].lower()
    else:
        assert "elf" in kinds
    assert not [s for s in figset.skipped if s[1].startswith("error")], figset.skipped


def test_values_match_documents(figset, run_folder):
    run = plots.load_run(run_folder)
    for d in run.of("neb"):
        v = figset.figures[plots.slug("neb", d["system"], d["ion"], d["path"])]["values"]
        assert v["barrier_eV"] == pytest.approx(d["barrier_eV"])
        assert v["images_e"] == pytest.approx(d["energies_eV"])
    for d in run.of("cdd"):
        v = figset.figures[plots.slug("cdd_profile", d["system"], d["label"])]["values"]
        assert v["transferred_e"] == pytest.approx(d["transferred_e"])
        assert v["interface_z_A"] == pytest.approx(d["interface_z_A"])
        assert v["displacement_e"] == pytest.approx(d["displacement_e"])
    for d in run.of("bader"):
        v = figset.figures[plots.slug("bader", d["system"], d.get("label") or "host")]["values"]
        assert v["net_charge"] == pytest.approx(d["net_charge"])
    for d in run.of("dos"):
        v = figset.figures[plots.slug("dos", d["system"], d.get("label") or "host")]["values"]
        assert v["total"] == pytest.approx(d["total"])
        frag_keys = {k.split(":", 1)[1] for k in d["projected"] if k.startswith("fragment:")}
        assert set(v["fragments"]) == frag_keys
    ads = plots.single_ion(run.of("adsorption"))  # coverage results (n > 1) have the OCV figure
    for system, ion in {(d["system"], d["ion"]) for d in ads}:
        bars = figset.figures[plots.slug("adsorption", system, ion)]["values"]["bars"]
        for d in [d for d in ads if d["system"] == system and d["ion"] == ion]:
            for ref, key in (("bulk metal", "e_ads_bulk_eV"), ("isolated atom", "e_ads_atom_eV")):
                if d.get(key) is not None:
                    (b,) = [b for b in bars if b["site"] == d["site"] and b["reference"] == ref]
                    assert b["value"] == pytest.approx(d[key]) and b["source"] == "this work"
        pub = run.campaign.get("published", {}).get("e_ads_eV", {})
        for site, val in pub.items():
            (b,) = [b for b in bars if b["site"] == site and b["source"] == "published (literature)"]
            assert b["value"] == pytest.approx(val)


def test_values_match_table(figset, run_folder):
    from hetero import table

    df = table.build_table(run_folder)
    assert "screening_map" in figset.figures, dict(figset.skipped).get("screening_map")
    paths = df[df.row_kind == "path"]
    pts = figset.figures["screening_map"]["values"]["points"]
    for p in pts:
        rows = paths[(paths.system == p["system"]) & (paths.ion == p["ion"])]
        assert p["barrier_eV"] == pytest.approx(rows.barrier_eV.min())
        sites = df[(df.row_kind == "site") & (df.system == p["system"]) & (df.e_ads_reference == p["reference"])]
        assert p["e_ads_eV"] == pytest.approx(sites.e_ads_eV.min())


def test_neb_annotation_text_is_the_document_barrier():
    docs, _, _ = synthetic_docs(Path("/nonexistent"), {"neb"})
    d = docs[0].model_dump()
    fig, values = plots.plot_neb(d)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts if t.get_gid() == "barrier"]
    assert [t.strip() for t in texts] == [f"$E_a$ = {d['barrier_eV']:.3f} eV"]
    ax = fig.axes[0]
    pts = [ln for ln in ax.get_lines() if ln.get_label() == "images"][0]
    assert list(pts.get_ydata()) == pytest.approx(d["energies_eV"])
    spline = [ln for ln in ax.get_lines() if ln.get_label() == "spline"][0]
    assert max(spline.get_ydata()) == pytest.approx(d["barrier_eV"])


def test_cdd_plots_from_grid(tmp_path):
    docs, _, _ = synthetic_docs(tmp_path, {"cdd", "calc"})
    cdd = next(d for d in docs if d.doc_type == "cdd").model_dump()
    with np.load(cdd["files"]["grid"]) as g:
        delta, cell = g["delta"].astype(float), g["cell"]
    fig, v = plots.plot_cdd_slice(delta, cell)
    assert v["vmin"] == -v["vmax"] and v["max"] > 0 > v["min"]
    mesh = fig.axes[0].collections[0]
    assert mesh.get_cmap().name == "RdBu_r" and mesh.norm.vcenter == 0.0
    fig, v = plots.plot_cdd_iso(delta, cell, isovalue=0.007)
    assert v["faces"]["accumulation"] > 0 and v["faces"]["depletion"] > 0
    colours = {tuple(np.round(c.get_facecolor()[0][:3], 3)) for c in fig.axes[0].collections if len(c.get_facecolor())}
    assert tuple(np.round(matplotlib_rgb(plots.ACCUMULATION), 3)) in colours
    with pytest.raises(plots.Skip, match="isovalue"):
        plots.plot_cdd_iso(delta, cell, isovalue=10.0)
    fig, v = plots.plot_cdd_profile(cdd)
    ann = [t.get_text() for t in fig.axes[1].texts if t.get_gid() == "transferred"]
    assert ann and f"{cdd['transferred_e']:+.3f} e" in ann[0]


def matplotlib_rgb(c):
    from matplotlib.colors import to_rgb

    return to_rgb(c)


def test_adsorption_bars_labelled_with_reference():
    docs, campaign, _ = synthetic_docs(Path("/nonexistent"), {"adsorption"})
    ads = [d.model_dump() for d in docs]
    fig, v = plots.plot_adsorption(ads, campaign["published"]["e_ads_eV"])
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels() if t.get_gid() == "bar-label"]
    assert len(labels) == len(v["bars"]) == 2 * 2 + 4  # two sites x two references + four published
    assert sum("bulk metal" in s for s in labels) == 2 and sum("isolated atom" in s for s in labels) == 2
    assert sum(s.startswith("published") for s in labels) == 4


def test_partial_store(tmp_path):
    root = write_run(tmp_path / "partial-fast", parts={"calc", "dos", "adsorption"})
    fs = plots.make_figures(root)
    kinds = {v["kind"] for v in fs.figures.values()}
    assert {"dos", "adsorption", "model"} <= kinds
    assert not kinds & {"cdd_profile", "cdd_slice", "cdd_iso", "bader", "neb", "screening"}
    skipped = dict(fs.skipped)
    for name in ("cdd_profile", "bader", "neb", "screening_map", "elf"):
        assert name in skipped and skipped[name], name
    assert "job 'CDD Na@bridge'" in skipped  # a job with no output is reported
    assert not [s for s in fs.skipped if s[1].startswith("error")], fs.skipped


def test_empty_store_and_missing_grid(tmp_path):
    root = tmp_path / "empty-fast"
    root.mkdir()
    (root / "store.json").write_text("[]")
    fs = plots.make_figures(root)
    assert fs.figures == {} and len(fs.skipped) >= 6
    root2 = write_run(tmp_path / "nogrid-fast", parts={"calc", "cdd"})
    first = plots.make_figures(root2)  # grids present: slices drawn
    slices = [Path(f) for k, v in first.figures.items() if k.startswith("cdd_slice") for f in v["files"]]
    assert slices and all(p.exists() for p in slices)
    for p in (root2 / "calc").rglob("cdd.npz"):
        p.unlink()
    fs = plots.make_figures(root2, kinds={"cdd_profile"})
    assert all(p.exists() for p in slices)  # a partial redraw (kinds=...) leaves other kinds alone
    fs = plots.make_figures(root2, kinds={"cdd_profile", "cdd_slice"})
    assert any(k.startswith("cdd_profile") for k in fs.figures)
    assert [why for name, why in fs.skipped if name.startswith("cdd_slice") and "not found" in why]
    assert not any(p.exists() for p in slices)  # figures the store no longer supports are removed
    manifest = json.loads((root2 / "figures" / "figures.json").read_text())["figures"]
    assert all((root2 / "figures" / f).exists() for v in manifest.values() for f in v["files"])
    assert any(v["kind"] == "model" for v in manifest.values())  # kept from the full drawing
    with pytest.raises(FileNotFoundError, match="store.json"):
        plots.load_run(tmp_path / "nowhere")


def test_deterministic_output(tmp_path):
    root = write_run(tmp_path / "det-fast", parts={"calc", "neb", "adsorption", "bader", "cdd", "dos"})
    a = plots.make_figures(root, out=tmp_path / "a")
    b = plots.make_figures(root, out=tmp_path / "b")
    assert set(a.figures) == set(b.figures)
    for stem in a.figures:
        for fa, fb in zip(a.figures[stem]["files"], b.figures[stem]["files"]):
            assert hashlib.sha256(Path(fa).read_bytes()).digest() == hashlib.sha256(Path(fb).read_bytes()).digest(), fa
    assert b"CreationDate" not in Path(a.figures[next(iter(a.figures))]["files"][1]).read_bytes()


def test_one_colour_per_model(tmp_path):
    docs, campaign, models = synthetic_docs(tmp_path)
    run = plots.load_run([d.model_dump() for d in docs], campaign=campaign, models=models)
    cmap = plots.colour_map(run)
    assert len(set(cmap.values())) == len(cmap)
    dos = next(d for d in run.of("dos") if d["label"] == "Na@hollow")
    ads = next(d for d in run.of("adsorption") if d["site"] == "hollow")
    assert plots.entity(dos) == plots.entity(ads) and cmap[plots.entity(dos)]
    fig, v = plots.plot_adsorption([ads], colours=cmap)
    bar = fig.axes[0].patches[0]
    from matplotlib.colors import to_rgba

    assert bar.get_facecolor() == pytest.approx(to_rgba(cmap[plots.entity(ads)]))


def test_cli_figures(tmp_path):
    from typer.testing import CliRunner

    from hetero.cli_figures import app

    root = write_run(tmp_path / "cli-fast", parts={"calc", "neb", "adsorption"})
    res = CliRunner().invoke(app, ["figures", str(root), "--isovalue", "0.01"])
    assert res.exit_code == 0, res.output
    assert "skipped" in res.output and (root / "figures" / "screening_map.png").exists()
    from hetero.cli_figures import figures_command

    fs = figures_command(root, tmp_path / "direct")  # plain call, as the main CLI mounts it
    assert (tmp_path / "direct" / "screening_map.pdf").exists() and fs.figures
    res = CliRunner().invoke(app, ["figures", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "store.json" in res.output


def test_screening_map_many_systems(tmp_path):
    docs, campaign, models = synthetic_docs(tmp_path, {"adsorption", "neb", "model"})
    many = []
    for k, (strain, shift, barrier) in enumerate([(0.4, 0.0, 0.30), (1.8, -0.4, 0.15), (3.5, 0.3, 0.55)]):
        name = f"A{k}/B{k}"
        for d in docs:
            upd = {"system": name}
            if d.doc_type == "model":
                upd.update(kind="interface", strain_percent=strain)
            if d.doc_type == "adsorption":
                upd.update(e_ads_bulk_eV=d.e_ads_bulk_eV + shift, e_ads_atom_eV=d.e_ads_atom_eV + shift)
            if d.doc_type == "neb":
                upd.update(barrier_eV=barrier)
            many.append(d.model_copy(update=upd).model_dump())
    run = plots.load_run(many, campaign={}, models={})
    pts, notes = plots.screening_points(run)
    assert len(pts) == 3 and not notes
    by = {p["system"]: p for p in pts}
    assert by["A1/B1"]["strain_percent"] == 1.8 and by["A1/B1"]["barrier_eV"] == 0.15
    assert by["A1/B1"]["e_ads_eV"] == pytest.approx(-0.92 - 0.4) and by["A1/B1"]["reference"] == "bulk metal"
    fig, v = plots.plot_screening(pts, plots.colour_map(run))
    offsets = np.concatenate([c.get_offsets() for c in fig.axes[0].collections])
    assert sorted(map(tuple, offsets.tolist())) == sorted((p["e_ads_eV"], p["barrier_eV"]) for p in pts)
    fills = {tuple(np.round(c.get_facecolor()[0], 3)) for c in fig.axes[0].collections}
    assert len(fills) == 3  # coloured by strain
    fs = plots.make_figures(many, out=tmp_path / "many", run=run, kinds={"screening", "adsorption", "neb"})
    assert "screening_map" in fs.figures and sum(v["kind"] == "adsorption" for v in fs.figures.values()) == 3


def test_hexagonal_cell_slice_iso_and_elf(tmp_path):
    from pymatgen.core import Lattice, Structure

    lat = Lattice.hexagonal(3.2, 18.0)
    st = Structure(lat, ["V", "S", "S", "Li"], [[0, 0, 0.5], [1 / 3, 2 / 3, 0.58], [2 / 3, 1 / 3, 0.42], [0, 0, 0.7]])
    shape = (10, 10, 60)
    f = np.stack(np.meshgrid(*[np.arange(n) / n for n in shape], indexing="ij"), axis=-1)
    z = f[..., 2] * 18.0
    delta = 0.02 * np.exp(-((z - 11.0) ** 2)) - 0.02 * np.exp(-((z - 12.6) ** 2)) + 0.004 * np.cos(2 * np.pi * f[..., 0])
    fig, v = plots.plot_cdd_slice(delta, lat.matrix, st.cart_coords[-1], st)
    assert v["max"] > 0 > v["min"]
    fig, v = plots.plot_cdd_iso(delta, lat.matrix, 0.007, st)
    assert v["faces"]["accumulation"] > 0 and v["faces"]["depletion"] > 0
    # an ELF file recorded by a calculation is drawn
    np.savez(tmp_path / "elf.npz", elf=np.clip(0.5 + delta * 20, 0, 1), cell=lat.matrix)
    calc = CalcDoc(system="VS2-test", label="Li@top", step="static", formula="VS2Li", n_atoms=4, energy_eV=-20.0,
                   structure=st.as_dict(), files={"elf": str(tmp_path / "elf.npz")},
                   provenance=_prov(tmp_path, "static")).model_dump()
    fs = plots.make_figures([calc], out=tmp_path / "figs", kinds={"elf"})
    assert list(fs.figures) == ["elf_VS2-test_Li_at_top"], fs.skipped


def test_neb_inconsistent_spline_is_flagged_not_hidden():
    docs, _, _ = synthetic_docs(Path("/nonexistent"), {"neb"})
    d = docs[0].model_dump()
    e0 = -40.77  # a spline left in absolute energies while the images are relative
    d["spline_e_eV"] = [x - e0 for x in d["spline_e_eV"]]
    d["barrier_eV"] = max(d["spline_e_eV"])
    fig, v = plots.plot_neb(d)
    assert v["barrier_eV"] == d["barrier_eV"]  # the document's value is what is annotated
    assert v["warnings"] and "inconsistent" in v["warnings"][0]
    assert [t for t in fig.axes[0].texts if t.get_gid() == "warning"]
    fig, v = plots.plot_neb(docs[0].model_dump())
    assert v["warnings"] == []
    d["converged"] = False
    assert "CI-NEB not converged" in plots.plot_neb(d)[1]["warnings"]


def test_neb_path_from_document_images_never_from_result_json(tmp_path):
    from hetero.plots.core import structure_from_dict

    docs, campaign, models = synthetic_docs(tmp_path, {"neb", "adsorption", "calc"})
    run = plots.load_run([d.model_dump() for d in docs], campaign=campaign, models=models)
    neb = run.of("neb")[0]
    # an engine's result.json in the NEB run folder is not read: the figure needs only the store
    rd = Path(neb["provenance"]["run_dir"])
    rd.mkdir(parents=True, exist_ok=True)
    (rd / "result.json").write_text(json.dumps({"images": [{"positions": [[9.0, 9.0, 9.0]]}] * 3}))
    path, how = plots.neb_ion_path(run, neb)  # a store written before NebDoc held the images
    ends = {d["site"]: structure_from_dict(d["structure"]).cart_coords[-1] for d in run.of("adsorption")}
    assert "straight line" in how
    np.testing.assert_allclose(path, [ends["hollow"], ends["top-V"]])
    mid = ((ends["hollow"] + ends["top-V"]) / 2 + [0.0, 0.0, 0.3]).tolist()  # the ion rises over the bridge
    neb["image_ion_positions_A"] = [ends["hollow"].tolist(), mid, ends["top-V"].tolist()]
    path, how = plots.neb_ion_path(run, neb)
    assert how == "images"
    np.testing.assert_allclose(path, neb["image_ion_positions_A"])
    fs = plots.make_figures(None, out=tmp_path / "figs", run=run, kinds={"model"})
    host = fs.figures[plots.slug("model", SYSTEM, "host")]
    np.testing.assert_allclose(host["values"]["path"], neb["image_ion_positions_A"])
    assert host["title"].endswith("NEB path") and not fs.skipped


def test_registry_drives_make_figures_and_report_sections(figset, tmp_path):
    from hetero.plots.core import FigureJob, figure_kind, new_figure

    registered = {kind for fk in plots.REGISTRY.values() for kind in fk.headings}
    assert {v["kind"] for v in figset.figures.values()} <= registered
    drawn = set()
    run = plots.load_run(write_run(tmp_path / "reg-fast", parts={"neb"}))
    assert [k for k, _ in plots.report_sections()][:3] == ["screening", "adsorption", "neb"]

    # a new figure kind: one registered function, nothing else touched
    def jobs(ctx):
        for d in ctx.run.of("neb"):
            def draw(d=d):
                fig = new_figure(3, 2)
                fig.add_subplot().plot(d["reaction_coord_A"], d["energies_eV"])
                drawn.add(d["path"])
                return fig, {"n_images": len(d["energies_eV"])}

            yield FigureJob(plots.slug("hops", d["path"]), "hops", f"hops {d['path']}", draw)

    jobs.__module__ = "hetero.plots.hops"
    figure_kind(order=35, headings={"hops": "Ion hops"})(jobs)
    try:
        fs = plots.make_figures(None, out=tmp_path / "new", run=run, kinds={"hops"})
        assert list(fs.figures) == ["hops_hollow_to_top-V"] and fs.figures["hops_hollow_to_top-V"]["values"]["n_images"] == 3
        assert drawn == {"hollow->top-V"} and ("hops", "Ion hops") in plots.report_sections()
        with pytest.raises(ValueError, match="already registered"):  # a kind belongs to one module
            figure_kind(order=1, headings={"neb": "again"})(lambda ctx: [])
    finally:
        plots.REGISTRY.pop("hops", None)


def test_an_intercalated_ion_has_no_transfer_across_a_plane():
    """Li intercalated in the VS2/V2CO2 gap (committed run): the old CDD put its 'interface' plane through the VS2
    layer above the Li and reported -0.011 e across it. Host atoms lie above and below the Li, so no plane
    separates the two fragments: no transfer is given, the profile says why, and a surface ion keeps its plane."""
    import json
    from pathlib import Path

    from pymatgen.core import Structure

    from hetero.analysis.cdd import no_separating_plane

    static = Path(__file__).resolve().parents[1] / "examples/vs2_v2co2_li_mlgeom/VS2_V2CO2-fast/Li@gap-fcc"
    kept = json.loads(next(static.glob("static-*/cdd.json")).read_text())["doc"]
    atoms = json.loads(next(static.glob("static-*/result.json")).read_text())["atoms"]
    s = Structure(atoms["cell"], atoms["symbols"], atoms["positions"], coords_are_cartesian=True)
    fix = no_separating_plane(s, kept["fragments"])
    assert fix["transferred_e"] is None and fix["interface_z_A"] == pytest.approx(s.cart_coords[-1, 2])
    z = s.cart_coords[:-1, 2]
    assert (z > fix["interface_z_A"] + 1).any() and (z < fix["interface_z_A"] - 1).any()
    fig, _ = plots.plot_cdd_profile({**kept, **fix})
    (ann,) = [t.get_text() for t in fig.axes[1].texts if t.get_gid() == "transferred"]
    assert "no separating plane" in ann and "transferred" not in ann
    on_top = s.copy()
    on_top.replace(len(s) - 1, "Li", [*s.cart_coords[-1, :2], z.max() + 1.8], coords_are_cartesian=True)
    assert no_separating_plane(on_top, kept["fragments"]) == {}


def test_a_funnel_with_a_hundred_minima_draws_the_lowest_and_counts_the_rest():
    """K on the 118-atom V5S8/Sb2S3 junction: 296 MLIP relaxations gave ~120 distinct minima, and one column per
    minimum made a 9600-pixel-wide figure. The lowest 30 are drawn, every selected one among them, and the title
    says how many were left out."""
    from hetero.plots.funnel import MAX_GROUPS, plot_funnel

    models = ["mlip:chgnet", "mlip:sevennet"]
    groups = [{"label": f"other-{i}", "members": [f"site-{i}"], "rank": {m: i for m in models},
               "e_ads_bulk_eV": {m: -2.0 + 0.01 * i for m in models}, "selected": i in (0, 1, 95)}
              for i in range(120)]
    doc = {"groups": groups, "models": models, "selected": ["other-0", "other-1", "other-95"], "ion": "K",
           "system": "junction", "n_candidates": 148, "selection_rule": "window 0.3 eV"}
    fig, v = plot_funnel(doc, {"other-0": -1.5}, "mlip:chgnet")
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()][-1] == "mlip:chgnet (selected)"  # no "DFT"
    assert len(v["groups"]) == MAX_GROUPS and v["groups_not_shown"] == 120 - MAX_GROUPS
    assert {"other-0", "other-1", "other-95"} <= set(v["groups"])  # selected minima are never cut
    assert fig.get_figwidth() < 0.6 * MAX_GROUPS + 3
    title = fig.axes[0].get_title()
    assert f"{120 - MAX_GROUPS} higher minima not drawn" in title and "to mlip:chgnet" in title
