"""Analyses of a static's density kept beside the static (`<task folder>/bader.json`, `cdd.json`).

An export keeps no full densities, so a campaign resumed from one (a fresh machine, a colleague's copy) would
re-run every static only to redo its Bader and CDD. With the analysis beside the static, the static's lost
density is restored (by re-running it) only when an analysis that is not kept asks for it.
"""

from __future__ import annotations

import json
from pathlib import Path

from hetero.io.store import iter_documents, unwrap

KEPT_ANALYSES = ("bader", "cdd")


def _path(task_folder: str | Path, name: str) -> Path:
    return Path(task_folder) / f"{name}.json"


def read_kept_analysis(task_folder: str | Path, name: str, fragments, provenance: dict) -> dict | None:
    """The document `name` kept in `task_folder` for these fragments, with this run's paths; else None."""
    path = _path(task_folder, name)
    if not path.exists():
        return None
    kept = json.loads(path.read_text())
    if (kept.get("fragments") or {}) != (fragments or {}):
        return None
    doc = dict(kept["doc"], provenance=provenance)
    if isinstance(doc.get("files"), dict):  # files of this folder, not of the one it was computed in
        doc["files"] = {k: str(path.parent / Path(v).name) for k, v in doc["files"].items()}
    return doc


def keep_analysis(task_folder: str | Path, name: str, fragments, doc: dict) -> None:
    path = _path(task_folder, name)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"fragments": fragments or {}, "doc": doc}, default=str))
    tmp.replace(path)


def keep_store_analyses_beside_statics(run_folder: str | Path) -> int:
    """Write each Bader/CDD document of a run folder's store beside its static, where none is kept yet (runs
    before 2026-12-04 kept them in the store only); the number written."""
    root = Path(run_folder)
    written = 0
    for entry in iter_documents(root / "store.json"):
        for doc in unwrap(entry):
            if doc.get("doc_type") not in KEPT_ANALYSES:
                continue
            parts = Path(doc.get("provenance", {}).get("run_dir", "")).parts
            # the static's folder under this run folder: the same tail as where it was computed
            folder = next((root / Path(*parts[i:]) for i in range(1, len(parts))
                           if (root / Path(*parts[i:]) / "task.json").exists()), None)
            if folder is None or _path(folder, doc["doc_type"]).exists():
                continue
            keep_analysis(folder, doc["doc_type"], doc.get("fragments"), doc)
            written += 1
    return written
