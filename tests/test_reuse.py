"""`hetero run --reuse-from OTHER_RUN`: a campaign variant links in the finished tasks it shares with another run
folder (same place, same task hash) instead of recomputing them. CHGNet engine on the 8-atom Na/VN(001) model
(real relaxations in seconds)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hetero.cli import app

CAMPAIGN = """\
name: {name}
model: {{preset: vn001_na, size: fast}}
ion: Na
sites: {sites}
steps: [relax, adsorption]
references: [atom]
engine: mlip
preset: fast
"""


def _run(tmp_path: Path, name: str, sites: list[str], *extra: str):
    camp = tmp_path / f"{name}.yaml"
    camp.write_text(CAMPAIGN.format(name=name, sites=json.dumps(sites)))
    return CliRunner().invoke(app, ["run", str(camp), "--runs-dir", str(tmp_path / "runs"), *extra])


def _results(root: Path) -> dict[str, Path]:
    return {str(p.parent.relative_to(root)): p for p in root.rglob("result.json")}


@pytest.mark.mlip
def test_variant_links_the_shared_tasks_and_computes_only_the_new_ones(tmp_path, monkeypatch):
    pytest.importorskip("chgnet")
    monkeypatch.setenv("HETERO_CORES", "1")
    monkeypatch.setenv("COLUMNS", "2000")
    first = _run(tmp_path, "a", ["hollow"])
    assert first.exit_code == 0, first.output
    a = _results(tmp_path / "runs" / "a-mlip-fast")
    second = _run(tmp_path, "b", ["hollow", "top-V"], "--reuse-from", str(tmp_path / "runs" / "a-mlip-fast"))
    assert second.exit_code == 0, second.output
    b = _results(tmp_path / "runs" / "b-mlip-fast")
    shared = set(a) & set(b)
    # host relax + static, the atom reference and Na@hollow relax + static are the same calculations: linked
    assert len(a) == 5 and shared == set(a)
    assert all(a[k].stat().st_ino == b[k].stat().st_ino for k in shared)
    new = set(b) - shared  # only the new site ran: its relaxation and static
    assert len(new) == 2 and all(k.startswith("VN_001_-fast/Na@top-V/") for k in new)
    assert all(b[k].stat().st_nlink == 1 for k in new)
    record = (tmp_path / "runs" / "b-mlip-fast" / "reused_tasks.tsv").read_text().splitlines()
    assert sorted(line.split("\t")[0] for line in record) == sorted(shared)
    assert "reused: 5 finished tasks" in " ".join(second.output.split())


def test_reuse_from_a_folder_that_is_not_a_run_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "2000")
    result = _run(tmp_path, "a", ["hollow"], "--reuse-from", str(tmp_path))
    assert result.exit_code == 2 and "not a run folder" in result.output and "--reuse-from" in result.output
    assert not (tmp_path / "runs" / "a-mlip-fast" / "store.json").exists()


@pytest.mark.mlip
def test_reuse_finds_tasks_whose_hash_moved_with_float_noise(tmp_path, monkeypatch):
    """An exported run built on another machine: last-bit noise in the built atoms changed every task hash, so no
    folder sits at the same path. The same calculation is still found and linked, not recomputed."""
    pytest.importorskip("chgnet")
    monkeypatch.setenv("HETERO_CORES", "1")
    monkeypatch.setenv("COLUMNS", "2000")
    assert _run(tmp_path, "a", ["hollow"]).exit_code == 0
    other = tmp_path / "runs" / "a-mlip-fast"
    for task_json in list(other.rglob("task.json")):  # rename every task and move its atoms by 1e-9 A
        task = json.loads(task_json.read_text())
        for key in ("atoms", "input_atoms"):
            if key in task:
                task[key]["positions"] = [[x + 1e-9 for x in row] for row in task[key]["positions"]]
        task_json.write_text(json.dumps(task))
        folder = task_json.parent
        folder.rename(folder.with_name(folder.name.split("-")[0] + "-000000000000"))
    second = _run(tmp_path, "b", ["hollow"], "--reuse-from", str(other))
    assert second.exit_code == 0, second.output
    b = _results(tmp_path / "runs" / "b-mlip-fast")
    assert len(b) == 5 and all(p.stat().st_nlink == 2 for p in b.values())  # every one linked, none recomputed
    record = (tmp_path / "runs" / "b-mlip-fast" / "reused_tasks.tsv").read_text().splitlines()
    assert len(record) == 5 and all(line.split("\t")[1].endswith("-000000000000") for line in record)


def test_a_rewrite_in_a_linked_task_leaves_the_other_run_alone(tmp_path):
    """A re-run in a task folder linked from another run (a density an export left out) must not change that
    run's files through the link: the source may be a committed example. Before the fix, GPAW's static rewrote
    dos.npz in place and so edited examples/vs2_v2co2_li_mlgeom."""
    from hetero.io.reuse import _link_or_copy, detach_linked_files

    src, dst = tmp_path / "a" / "static-x", tmp_path / "b" / "static-x"
    (src / "sub").mkdir(parents=True)
    dst.mkdir(parents=True)
    (src / "dos.npz").write_bytes(b"first run")
    (src / "sub" / "bader.json").write_text("{}")
    shutil.copytree(src, dst, copy_function=_link_or_copy, dirs_exist_ok=True)
    assert (dst / "dos.npz").stat().st_ino == (src / "dos.npz").stat().st_ino
    assert detach_linked_files(dst) == 2
    with open(dst / "dos.npz", "r+b") as f:  # an in-place rewrite, as np.savez does
        f.write(b"re-run!!!")
    assert (src / "dos.npz").read_bytes() == b"first run"
    assert (dst / "sub" / "bader.json").read_text() == "{}" and (dst / "sub" / "bader.json").stat().st_nlink == 1
    assert detach_linked_files(dst) == 0 and not list(dst.rglob("*.detach-tmp"))


@pytest.mark.mlip
def test_restoring_a_linked_task_recomputes_into_its_own_files(tmp_path, monkeypatch):
    pytest.importorskip("chgnet")
    from hetero.engines import get_engine

    monkeypatch.setenv("HETERO_CORES", "1")
    monkeypatch.setenv("COLUMNS", "2000")
    assert _run(tmp_path, "a", ["hollow"]).exit_code == 0
    assert _run(tmp_path, "b", ["hollow"], "--reuse-from", str(tmp_path / "runs" / "a-mlip-fast")).exit_code == 0
    a, b = _results(tmp_path / "runs" / "a-mlip-fast"), _results(tmp_path / "runs" / "b-mlip-fast")
    key = next(k for k in b if "static-" in k)
    before = {f.name: f.read_bytes() for f in a[key].parent.iterdir() if f.is_file()}
    get_engine("mlip", preset="fast").restore_files(b[key].parent)
    assert all(f.stat().st_nlink == 1 for f in b[key].parent.iterdir() if f.is_file())
    assert {f.name: f.read_bytes() for f in a[key].parent.iterdir() if f.is_file()} == before
