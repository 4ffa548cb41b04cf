"""Dry run of a campaign on VASP: every input folder that can be written now, and what the rest waits for.

The campaign's own jobflow Flow runs locally with the VASP engine in dry-run mode (HETERO_VASP_DRY_RUN):
each VASP task writes its inputs (INCAR, KPOINTS, POSCAR, POTCAR.spec; a static asking for the DOS also
its non-SCF folder) into the folder a real run will use (same task hash), then stops that job. Jobs that
need an earlier result (statics after relaxations, NEB images after endpoints, CDD fragments after the
AB static) do not run; they are listed with the jobs they wait for. Nothing is computed, no POTCARs are
needed. Tasks whose folder already holds a result (an earlier real run) are reused, so a dry run after a
partial run shows the next round of inputs.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class DryRunReport:
    written: list[dict[str, Any]] = field(default_factory=list)  # {job, kind, folder, tags, encut_check}
    waiting: list[dict[str, Any]] = field(default_factory=list)  # {job, waits_for: [job names], tags}
    finished: list[str] = field(default_factory=list)  # jobs that ran (no VASP task, or a stored result)
    failed: list[dict[str, str]] = field(default_factory=list)  # {job, error}: a real error, not a dry stop

    def text(self) -> str:
        lines = [f"dry run: {len(self.written)} input folder(s) written, {len(self.waiting)} job(s) wait for "
                 f"earlier results, {len(self.finished)} job(s) needed no VASP run, {len(self.failed)} failed"]
        for w in self.written:
            tags = " ".join(f"{k}={v}" for k, v in (w.get("tags") or {}).items())
            lines.append(f"  written  {w['kind']:<7} {w['folder']}   ({w['job']})" + (f"  [{tags}]" if tags else ""))
        checks = sorted({w["encut_check"] for w in self.written if w.get("encut_check")})
        lines += [f"  ENCUT: {c}" for c in checks]
        for w in self.waiting:
            tags = ", ".join(w.get("tags", {}).values())
            lines.append(f"  waits    {w['job']}  <- {', '.join(w['waits_for'])}" + (f"  [will set {tags}]" if tags else ""))
        lines += [f"  FAILED   {f['job']}: {f['error']}" for f in self.failed]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {"written": self.written, "waiting": self.waiting, "finished": self.finished, "failed": self.failed}


class _JobErrors(logging.Handler):
    """jobflow's local manager logs a failing job and swallows the exception: collect name -> last line."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.errors: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if " failed with exception:" in msg:
            name, _, tb = msg.partition(" failed with exception:")
            last = [ln for ln in tb.strip().splitlines() if ln.strip()]
            self.errors[name] = last[-1] if last else "unknown error"


def dry_run_flow(flow, out_json: str | Path | None = None) -> DryRunReport:
    """Run ``flow`` (a campaign's jobflow Flow on the VASP engine) in dry-run mode; see the module doc.
    ``out_json``: also write the report there (e.g. <run folder>/dry_run.json)."""
    import json

    from jobflow import JobStore
    from jobflow.managers.local import run_locally
    from maggma.stores import MemoryStore

    from hetero.engines import vasp

    vasp.WRITTEN.clear()
    errors = _JobErrors()
    jf_logger = logging.getLogger("jobflow")
    old_level, old_env = jf_logger.level, os.environ.get("HETERO_VASP_DRY_RUN")
    jf_logger.addHandler(errors)
    jf_logger.setLevel(logging.INFO)
    os.environ["HETERO_VASP_DRY_RUN"] = "1"
    try:
        responses = run_locally(flow, store=JobStore(MemoryStore()), log=False, ensure_success=False)
    finally:
        jf_logger.removeHandler(errors)
        jf_logger.setLevel(old_level)
        if old_env is None:
            os.environ.pop("HETERO_VASP_DRY_RUN", None)
        else:
            os.environ["HETERO_VASP_DRY_RUN"] = old_env
    report = DryRunReport()
    written_by = {}
    for w in vasp.WRITTEN:
        entry = dict(w)
        report.written.append(entry)
        written_by.setdefault(w.get("job_uuid"), entry)
    jobs = {job.uuid: (job, parents) for job, parents in flow.iterflow()}
    done = set(responses)
    for uuid, (job, parents) in jobs.items():
        if uuid in done:
            report.finished.append(job.name)
            continue
        if uuid in written_by:
            written_by[uuid]["job"] = job.name
            continue
        error = errors.errors.get(job.name)
        if error and "InputsWritten" not in error:
            report.failed.append({"job": job.name, "error": error})
            continue
        waits = [jobs[p][0].name for p in parents if p not in done and p in jobs]
        entry = {"job": job.name, "waits_for": waits or ["a job created while the flow runs"]}
        outputs = getattr(job.maker, "outputs", None)
        if outputs:  # a static that waits: the INCAR tags its outputs will set
            entry["tags"] = {o: vasp.OUTPUT_TAGS[o] for o in outputs if o in vasp.OUTPUT_TAGS}
        report.waiting.append(entry)
    for w in report.written:
        w.pop("job_uuid", None)
        w.setdefault("job", "?")
    if out_json is not None:
        Path(out_json).write_text(json.dumps(report.as_dict(), indent=1))
    return report
