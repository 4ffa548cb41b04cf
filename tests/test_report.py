"""hetero.report / `hetero report`: one HTML page from a store, rendered by headless Chromium. No DFT."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile

import pytest

from hetero.report import build_report

try:  # the sibling test module builds the synthetic run folder
    from test_plots import PUBLISHED, copy_run, real_store, write_run
except ImportError:  # pytest --import-mode=importlib: tests/ is not on sys.path
    import importlib.util
    import sys
    from pathlib import Path

    _spec = importlib.util.spec_from_file_location("hetero_test_plots", Path(__file__).with_name("test_plots.py"))
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules["hetero_test_plots"] = _mod
    _spec.loader.exec_module(_mod)
    PUBLISHED, copy_run, real_store, write_run = _mod.PUBLISHED, _mod.copy_run, _mod.real_store, _mod.write_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    real = real_store()
    if real is not None:
        root = tmp_path_factory.mktemp("real") / real.name
        copy_run(real, root)
    else:
        root = write_run(tmp_path_factory.mktemp("synthetic") / "synthetic-fast")
    path, fs = build_report(root)
    return root, path, fs


def _refs(text: str) -> list[str]:
    return [r for r in re.findall(r'(?:src|href)="([^"]+)"', text) if not r.startswith("#")]


def test_index_written_with_sections(report):
    root, path, fs = report
    assert path == root / "report" / "index.html"
    text = path.read_text()
    for heading in ("Campaign", "Published (literature) vs this work", "Screening table", "Figures",
                    "Settings per step", "Provenance"):
        assert f"<h2>{heading}</h2>" in text or f"<h2>{heading.replace('&', '&amp;')}</h2>" in text, heading
    assert "published (literature)" in text and "this work" in text
    assert "<table" in text and "</html>" in text


def test_every_reference_exists(report):
    root, path, fs = report
    refs = _refs(path.read_text())
    imgs = [r for r in refs if r.endswith(".png")]
    assert len(imgs) == len(fs.figures) > 0
    for r in refs:
        assert not r.startswith(("http:", "https:", "/")), r  # self-contained: relative paths only
        assert (path.parent / r).resolve().exists(), r
    assert sum(r.endswith(".pdf") for r in refs) == len(fs.figures)


def test_settings_hashes_and_provenance(report):
    from hetero.plots import load_run

    root, path, _ = report
    text = path.read_text()
    run = load_run(root)
    for docs in run.docs.values():
        for d in docs:
            p = d.get("provenance") or {}
            if p.get("settings_hash"):
                assert p["settings_hash"] in text
                assert f'id="settings-{p["settings_hash"]}"' in text
            if p.get("run_dir"):
                assert p["run_dir"] in text
            if p.get("engine"):
                assert p["engine"] in text


def test_published_beside_ours(report):
    root, path, _ = report
    from hetero.plots import load_run, single_ion

    run = load_run(root)
    text = path.read_text()
    section = text.split("<h2>Published (literature) vs this work</h2>")[1].split("<h2>")[0]
    pub = (run.campaign.get("published") or {}).get("e_ads_eV") or {}
    for site, v in pub.items():
        row = re.search(rf"<tr><td[^>]*>{re.escape(site)}</td>(.*?)</tr>", section)
        assert row, site
        assert f"{v:.4g}" in row.group(1)
    for d in single_ion(run.of("adsorption")):  # the comparison is per site, one ion per cell
        row = re.search(rf"<tr><td[^>]*>{re.escape(d['site'])}</td>(.*?)</tr>", section).group(1)
        assert f"{d['e_ads_bulk_eV']:.4g}" in row


def test_embed_mode(tmp_path):
    root = write_run(tmp_path / "embed-fast", parts={"calc", "adsorption", "neb"})
    path, fs = build_report(root, out=tmp_path / "elsewhere", embed=True)
    text = path.read_text()
    assert text.count("data:image/png;base64,") == len(fs.figures) > 0
    # with --out the figures go beside the report and the run folder is left as it was
    assert fs.out_dir == tmp_path / "elsewhere" / "figures" and not (root / "figures").exists()
    for r in _refs(text):
        if not r.startswith("data:"):
            assert (path.parent / r).resolve().exists(), r


def test_partial_store_report(tmp_path):
    root = write_run(tmp_path / "partial-fast", parts={"dos"})
    path, fs = build_report(root)
    text = path.read_text()
    assert "Skipped" in text and "no NEB documents" in text
    assert all((path.parent / r).resolve().exists() for r in _refs(text))
    for site in PUBLISHED:  # published values are shown even with no results of ours
        assert f">{site}<" in text


def test_cli_report(tmp_path):
    from typer.testing import CliRunner

    from hetero.cli_figures import app

    root = write_run(tmp_path / "cli-fast", parts={"calc", "adsorption"})
    res = CliRunner().invoke(app, ["report", str(root)])
    assert res.exit_code == 0, res.output
    assert (root / "report" / "index.html").exists() and "report" in res.output


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed: cannot check that the report renders")
def test_renders_in_headless_chromium(report, tmp_path):
    from matplotlib.image import imread

    _, path, _ = report
    shot = tmp_path / "out.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tempfile.mkdtemp()}", f"--screenshot={shot}", "--window-size=1200,2000",
           path.resolve().as_uri()]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert shot.exists() and shot.stat().st_size > 0, res.stderr[-2000:]
    img = imread(shot)
    assert img.shape[0] == 2000 and img.shape[1] == 1200
    rgb = img[..., :3]
    assert rgb.std() > 0.05  # not blank
    assert (rgb.min(axis=2) < 0.5).mean() > 0.01  # dark pixels: text and figures were drawn
