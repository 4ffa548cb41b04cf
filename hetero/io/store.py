"""The one reader of a campaign's job store: the table, the figures and the report all read through it.

A source is a run folder (``<run>/store.json`` plus ``campaign.json`` and ``models.json`` beside
it), a JSON store file, a maggma Store (jobflow JobStore's docs store included), or a list of
entries. An entry is either jobflow's envelope (``uuid``, ``index``, ``name``, ``metadata`` and
``output``, where ``output`` holds our document as a dict with ``doc_type``, or a list/dict of
them) or a bare document. jobflow keeps one entry per run of a job (``index`` grows when a job is
replaced); only the newest of each ``uuid`` is read.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hetero.schemas import NOT_RUN_KEY

STORE_FILENAME = "store.json"
CAMPAIGN_FILENAME = "campaign.json"
MODELS_FILENAME = "models.json"


@dataclass(frozen=True)
class Job:
    """The jobflow job a document came from (empty fields for a bare document)."""

    uuid: str = ""
    name: str = ""
    metadata: dict = field(default_factory=dict, hash=False, compare=False)


# ----------------------------------------------------------------------------------- raw entries


def open_json_store(path: str | Path):
    """maggma's JSONStore on a store file, read only (jobflow keys its docs store by the job uuid)."""
    from maggma.stores import JSONStore

    last: Exception | None = None
    for kw in ({"key": "uuid"}, {}):  # maggma's default key is task_id
        store = JSONStore(str(path), read_only=True, **kw)
        try:
            store.connect()
            return store
        except (KeyError, AttributeError) as exc:
            last = exc
    raise ValueError(f"{path}: not a readable JSON store ({last}); give the store.json that `hetero run` wrote")


def read_store_file(path: str | Path) -> list[dict] | None:
    """A JSONStore file's entries read as one JSON list (maggma's JSONStore loads it into mongomock
    one upsert at a time: ~3 min for 10,000 entries). None when the file is not a plain JSON list
    (compressed or unusual): then maggma reads it. Entries are not yet reduced to the newest run."""
    try:
        import orjson

        data = orjson.loads(Path(path).read_bytes())
    except Exception:  # noqa: BLE001 - compressed or unusual file: let maggma try
        return None
    return data if isinstance(data, list) else None


def _store_path(source: str | Path) -> Path:
    p = Path(source)
    if p.is_dir():
        p = p / STORE_FILENAME
    if not p.exists():
        raise FileNotFoundError(f"no store at {p}: give a run folder holding {STORE_FILENAME} (`hetero run` writes it) "
                                "or a store file")
    return p


class StoreCorruptError(ValueError):
    """A store file that is not a JSON list of entries (cut short by a kill, edited by hand, overwritten)."""


COMPRESSED = (".gz", ".bz2", ".xz", ".zst")


def check_store_file(path: str | Path) -> str | None:
    """None when the file is a JSON list (a store), else what is wrong with it (compressed files: maggma reads them)."""
    p = Path(path)
    if p.suffix in COMPRESSED:
        return None
    try:
        import orjson

        data = orjson.loads(p.read_bytes())
    except Exception as exc:  # noqa: BLE001 - orjson.JSONDecodeError, OSError
        return f"not valid JSON: {' '.join(str(exc).split())[:120]}" if p.stat().st_size else "empty file"
    return None if isinstance(data, list) else f"a JSON {type(data).__name__}, not a list of entries"


def corrupt_store_error(path: Path, problem: str) -> StoreCorruptError:
    """Keep a copy of the corrupt file (nothing overwrites it) and say how to get a good store back."""
    backup = path.with_name(path.stem + ".corrupt" + path.suffix)
    if not backup.exists() or backup.stat().st_size != path.stat().st_size:
        shutil.copy2(path, backup)
    previous = path.with_name("store.previous.json")
    alt = (f", or read the previous store {previous}" if previous.exists() and check_store_file(previous) is None
           else "")
    return StoreCorruptError(
        f"{path} is corrupt ({problem}); a copy is kept at {backup}. Rebuild it by running the campaign again on "
        f"the same --runs-dir (finished results are reused, nothing is recomputed){alt}")


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write-then-rename: a kill leaves the old file or the new one, never half of one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def keep_store_backup(path: Path) -> Path:
    """Before a run rebuilds the store: a good store becomes store.previous.json; a corrupt one is kept
    as store.corrupt.json (a good previous backup is never overwritten by a corrupt store)."""
    problem = check_store_file(path)
    if problem is None:
        dest = path.with_name("store.previous.json")
        atomic_write_text(dest, path.read_text())
        return dest
    dest = path.with_name(path.stem + ".corrupt" + path.suffix)
    shutil.copy2(path, dest)
    logging.getLogger("hetero").warning(f"{path} was corrupt ({problem}); kept as {dest}; the store is rebuilt from "
                                        "the run folders")
    return dest


def _all_entries(source: Any) -> Iterator[Any]:
    if isinstance(source, (str, Path)):
        p = _store_path(source)
        fast = read_store_file(p)
        if fast is not None:
            yield from fast
            return
        problem = check_store_file(p)  # maggma would skip an unreadable file silently: an empty table
        if problem is not None:
            raise corrupt_store_error(p, problem)
        store = open_json_store(p)
        try:
            yield from store.query()
        finally:
            store.close()
        return
    if hasattr(source, "query") and hasattr(source, "connect"):
        try:
            source.connect()
        except Exception:  # noqa: BLE001 - already connected
            pass
        yield from source.query()
        return
    for d in source:
        yield d.model_dump() if hasattr(d, "model_dump") else d  # pydantic documents as dicts


def newest_entries(entries: Iterable[Any]) -> list[dict]:
    """Dict entries in store order, each job uuid once: its run with the highest ``index``."""
    slots: dict[Any, dict] = {}
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            continue
        u = e.get("uuid") if "doc_type" not in e else None
        key = ("job", u) if u is not None else ("entry", i)
        old = slots.get(key)
        if old is None or (e.get("index") or 0) >= (old.get("index") or 0):
            slots[key] = e  # a replaced key keeps its first position
    return list(slots.values())


def iter_documents(source: Any) -> Iterator[dict]:
    """Raw entries (jobflow envelopes or bare documents) of a source, the newest run of each job."""
    yield from newest_entries(_all_entries(source))


def steps_not_run(source: Any) -> list[str]:
    """"<step>: <why>" for each step a run-time decision left out (schemas.NOT_RUN_KEY in a job's output)."""
    outs = (e.get("output") if isinstance(e, dict) else None for e in iter_documents(source))
    return [o[NOT_RUN_KEY] for o in outs if isinstance(o, dict) and o.get(NOT_RUN_KEY)]


def unwrap(entry: Any) -> list[dict]:
    """Our documents in one store entry (an output may be one document, or a list/dict of them)."""
    if not isinstance(entry, dict):
        return []
    if "doc_type" in entry:
        return [entry]
    out = entry.get("output")
    if isinstance(out, dict) and "doc_type" in out:
        return [out]
    items = out.values() if isinstance(out, dict) else out if isinstance(out, list) else []
    return [o for o in items if isinstance(o, dict) and "doc_type" in o]


# ----------------------------------------------------------------------------------- a run


def _sort_key(d: dict) -> tuple:
    return tuple(str(d.get(k, "")) for k in ("system", "label", "ion", "site", "path", "step"))


@dataclass
class RunData:
    """Everything stored about one run: documents grouped by type, their jobs, and the run files."""

    folder: Path | None
    docs: dict[str, list[dict]] = field(default_factory=dict)  # doc_type -> documents, sorted by system/label/...
    entries: list[tuple[dict, Job]] = field(default_factory=list)  # every document with its job, in store order
    failed: list[Job] = field(default_factory=list)  # jobs that stored no output (failed or skipped)
    campaign: dict = field(default_factory=dict)
    models: dict = field(default_factory=dict)
    _jobs: dict[int, Job] = field(default_factory=dict, repr=False)

    def of(self, doc_type: str) -> list[dict]:
        return self.docs.get(doc_type, [])

    def job_of(self, doc: dict) -> Job:
        return self._jobs.get(id(doc), Job())

    @property
    def failed_jobs(self) -> list[str]:
        return sorted(j.name or j.uuid for j in self.failed)

    def resolve(self, path: str | None) -> Path | None:
        """A file a document recorded; if the run folder was moved or exported, the same tail under it."""
        if not path:
            return None
        p = Path(path)
        if p.exists():
            return p
        if self.folder is not None:
            parts = p.parts
            for i in range(1, len(parts)):
                cand = self.folder / Path(*parts[i:])
                if cand.exists():
                    return cand
        return None


def _read_json(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError:
        return {}  # a half-written file must not stop the table or the figures
    return data if isinstance(data, dict) else {}


def load_run(source: Any, campaign: dict | None = None, models: dict | None = None) -> RunData:
    """Read a run folder / store file / Store / list of entries once; ``campaign``/``models`` override
    the run folder's campaign.json / models.json. A RunData is returned as it is."""
    if isinstance(source, RunData):
        return source
    folder = None
    if isinstance(source, (str, Path)):
        p = Path(source)
        folder = p if p.is_dir() else p.parent
    run = RunData(folder=folder)
    for entry in iter_documents(source):
        job = Job(str(entry.get("uuid") or ""), str(entry.get("name") or ""), entry.get("metadata") or {})
        docs = unwrap(entry)
        if not docs and job.uuid and entry.get("output") is None:
            run.failed.append(job)
        for d in docs:
            run.entries.append((d, job))
            run.docs.setdefault(d["doc_type"], []).append(d)
            run._jobs[id(d)] = job
    for docs in run.docs.values():
        docs.sort(key=_sort_key)
    if folder is not None:
        run.campaign = _read_json(folder / CAMPAIGN_FILENAME)
        run.models = _read_json(folder / MODELS_FILENAME)
    if campaign is not None:
        run.campaign = campaign
    if models is not None:
        run.models = models
    return run
