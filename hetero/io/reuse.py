"""Finished engine tasks shared between run folders (`hetero run --reuse-from OTHER_RUN`).

A task folder is named by the hash of everything that decides its result (kind, engine settings, atoms), under
`<system>/<label>/` of its run folder, and its result.json names its files relative to the folder. So a task of
another run folder at the same relative path is the same calculation: it is linked in (hard links, no copy of
the data) instead of recomputed. Used when one campaign is run in variants (sites, funnel on or off, more steps)
that share the host, the references or some sites. jobflow and atomate2 key results by job uuid, so they cannot
see that two jobs of different flows are one calculation: this is our own.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

REUSE_ENV = "HETERO_REUSE_FROM"  # run folders to take finished tasks from, os.pathsep-separated
REUSED_RECORD = "reused_tasks.tsv"  # <task folder>\t<the finished folder linked in>, one line per task
RUN_MARKER = "campaign.json"  # written into a run folder before any of its jobs runs
# an interrupted run's restart state is not a result: never carried over
SKIP_SUFFIXES = (".gpw",)


def reuse_sources() -> list[Path]:
    return [Path(p) for p in os.environ.get(REUSE_ENV, "").split(os.pathsep) if p]


def check_reuse_source(path: str | Path) -> Path:
    """A run folder to reuse from, or a ValueError naming the input and the fix."""
    p = Path(path).resolve()
    if not p.is_dir() or not ((p / RUN_MARKER).exists() or (p / "store.json").exists()):
        raise ValueError(f"--reuse-from {path}: not a run folder (no {RUN_MARKER} or store.json); give a folder "
                         "`hetero run` wrote, e.g. runs/<campaign>-<preset>")
    return p


def adopt_finished_task(folder: Path, same_task_in: Callable[[Path], Path | None] | None = None) -> Path | None:
    """Link the finished task at `folder`'s place in another run folder into `folder`; the source, or None.

    `same_task_in(dir)` finds the task in `dir` under another name: the other run folder was built on another
    machine or library version, whose last-bit float noise in the atoms changed every task hash."""
    sources = reuse_sources()
    if not sources or (folder / "result.json").exists():
        return None
    folder = Path(folder).resolve()
    root = next((p for p in folder.parents if (p / RUN_MARKER).exists()), None)
    if root is None:
        return None
    rel = folder.relative_to(root)
    for other in sources:
        src = other / rel
        if not (src / "result.json").exists() and same_task_in is not None:
            src = same_task_in(src.parent) or src
        if src.resolve() == folder or not (src / "result.json").exists():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        for sub in (d for d in src.iterdir() if d.is_dir()):
            shutil.copytree(sub, folder / sub.name, copy_function=_link_or_copy, dirs_exist_ok=True)
        # result.json last: a run killed on the way leaves no result without its files
        files = sorted((f for f in src.iterdir() if f.is_file() and not f.name.endswith(SKIP_SUFFIXES)),
                       key=lambda f: f.name == "result.json")
        for item in files:  # the source's files win over an interrupted local start of the same task
            (folder / item.name).unlink(missing_ok=True)
            _link_or_copy(item, folder / item.name)
        with open(root / REUSED_RECORD, "a") as record:  # the run folder's own account of what it did not compute
            record.write(f"{rel}\t{src}\n")
        return src
    return None


def detach_linked_files(folder: Path) -> int:
    """Give every hard-linked file under `folder` its own copy; the number detached.

    Called before an engine writes into a task folder again (a re-run for a density an export left out): the
    worker rewrites some outputs in place (dos.npz), which would change the linked run's file too, and that run
    may be a committed example."""
    detached = 0
    for path in Path(folder).rglob("*"):
        if path.is_file() and not path.is_symlink() and path.stat().st_nlink > 1:
            tmp = path.with_name(path.name + ".detach-tmp")
            shutil.copy2(path, tmp)
            os.replace(tmp, path)
            detached += 1
    return detached


def _link_or_copy(src, dst) -> None:
    try:
        os.link(src, dst)  # same file system: no second copy of a density
    except OSError:
        shutil.copy2(src, dst)
