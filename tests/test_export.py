"""`hetero export`: small outputs copied, large files left behind, the destination's README kept."""

from __future__ import annotations

import json

from hetero.export import export_run


def test_export_copies_small_outputs_and_keeps_the_examples_readme(tmp_path):
    run, dest = tmp_path / "run", tmp_path / "example"
    (run / "sys" / "host" / "static-abc").mkdir(parents=True)
    (run / "store.json").write_text("[]")
    (run / "README.md").write_text("old copy from an earlier export")
    (run / "sys" / "host" / "static-abc" / "result.json").write_text(json.dumps({"energy_eV": -1.0}))
    (run / "sys" / "host" / "static-abc" / "scf-checkpoint.gpw").write_bytes(b"\0" * 64)
    dest.mkdir()
    (dest / "README.md").write_text("the example's write-up")

    summary = export_run(run, dest)

    assert (dest / "README.md").read_text() == "the example's write-up"
    assert json.loads((dest / "sys" / "host" / "static-abc" / "result.json").read_text())["energy_eV"] == -1.0
    assert not (dest / "sys" / "host" / "static-abc" / "scf-checkpoint.gpw").exists()
    assert summary["skipped"] == 1 and (dest / "export.json").exists()
    # a first export into an empty folder takes the run's README along
    fresh = export_run(run, tmp_path / "fresh")
    assert (tmp_path / "fresh" / "README.md").read_text() == "old copy from an earlier export"
    assert fresh["copied"] == summary["copied"] + 1
