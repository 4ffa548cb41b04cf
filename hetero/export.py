"""Export a run folder's small outputs (store, settings, logs, CDD grids) for committing or sharing.

Wavefunctions, restart files and full densities stay behind; everything `hetero table`, `hetero
figures` and `hetero report` need is copied.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from hetero.io.analysis_cache import keep_store_analyses_beside_statics

KEEP_SUFFIXES = {".json", ".log", ".txt", ".traj", ".md", ".csv", ".tsv", ".png", ".pdf", ".html", ".yaml"}
KEEP_NAMES = {"cdd.npz", "dos.npz", "elf.npz", "elf_before.npz"}  # small grids/arrays the figures are drawn from
MAX_FILE_MB = 20.0


def export_run(run_folder: str | Path, dest: str | Path) -> dict:
    src, dst = Path(run_folder).resolve(), Path(dest).resolve()
    if not (src / "store.json").exists():
        raise FileNotFoundError(f"{src} has no store.json: not a hetero run folder")
    copied, skipped = 0, []
    for path in sorted(src.rglob("*")):
        if not path.is_file() or dst in path.parents:
            continue
        keep = path.suffix in KEEP_SUFFIXES or path.name in KEEP_NAMES
        if not keep or path.stat().st_size > MAX_FILE_MB * 2**20:
            skipped.append(str(path.relative_to(src)))
            continue
        target = dst / path.relative_to(src)
        if target == dst / "README.md" and target.exists():
            # the example's own write-up; a run folder resumed from that example holds an older copy of it
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and target.samefile(path):  # linked in from this example (`hetero run --reuse-from`)
            continue
        shutil.copy2(path, target)
        copied += 1
    # the store keeps the original absolute paths (provenance); readers find the files under the
    # copy by their tail (hetero.io.store.RunData.resolve)
    # a resumed run then finds each Bader/CDD beside its static and does not re-run the static for its density
    kept = keep_store_analyses_beside_statics(dst)
    summary = {"copied": copied, "skipped": len(skipped), "skipped_examples": skipped[:10], "analyses_kept": kept}
    (dst / "export.json").write_text(json.dumps({"source": str(src), **summary}, indent=1))
    return summary
