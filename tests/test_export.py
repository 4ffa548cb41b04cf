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


def test_export_back_into_the_example_a_run_was_resumed_from(tmp_path):
    """`hetero run --reuse-from examples/x` hard-links the example's finished tasks into the run; exporting the
    run back into examples/x meets the same files and adds the new ones."""
    import os

    example, run = tmp_path / "example", tmp_path / "run"
    (example / "sys" / "host" / "static-abc").mkdir(parents=True)
    (example / "store.json").write_text("[]")
    (example / "sys" / "host" / "static-abc" / "result.json").write_text(json.dumps({"energy_eV": -1.0}))
    (run / "sys" / "host" / "static-abc").mkdir(parents=True)
    os.link(example / "sys" / "host" / "static-abc" / "result.json", run / "sys" / "host" / "static-abc" / "result.json")
    (run / "sys" / "Li@hcp" / "static-def").mkdir(parents=True)
    (run / "sys" / "Li@hcp" / "static-def" / "result.json").write_text(json.dumps({"energy_eV": -3.0}))
    (run / "store.json").write_text("[1]")

    summary = export_run(run, example)

    assert json.loads((example / "sys" / "Li@hcp" / "static-def" / "result.json").read_text())["energy_eV"] == -3.0
    assert (example / "store.json").read_text() == "[1]" and summary["copied"] == 2
