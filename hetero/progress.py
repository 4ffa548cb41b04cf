"""Progress of a local campaign run: one line per finished job with its time, a live bar with the
elapsed time and an estimate of what is left.

jobflow's local manager logs ``Starting job - NAME (UUID)`` and ``Finished job - NAME (UUID)`` for every
job (and ``NAME failed with exception:`` for a failure); `JobProgress` is a logging handler on the
``jobflow`` logger that follows those lines, so neither the flows nor the engines know about it.

The estimate: every job still to run costs the mean time of the jobs of its kind (``relax``, ``static``,
``CDD``, ``CI-NEB``, ...) and scope (slab model or small reference) that ran in this invocation (a
reused, cached job is not counted); a kind that has not run yet is priced from the jobs that did with
rough relative costs (PRIOR). The CI-NEB that "select NEB path" adds at run time is priced in advance.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

# jobflow's log lines around every job it runs
JOB_START = re.compile(r"^Starting job - (?P<name>.*) \((?P<uuid>[0-9a-f-]{36})(?:, \d+)?\)$")
JOB_FINISH = re.compile(r"^Finished job - (?P<name>.*) \((?P<uuid>[0-9a-f-]{36})(?:, \d+)?\)$")
# rough cost of a DFT job before one of its kind has run, in slab relaxations (measured on the demo: a
# static with density, DOS and potential ~0.5 of a 7-step relaxation, a CDD's two fragment SCFs ~0.5, a
# one-image NEB ~1), and a reference (bulk metal cell, isolated atom) against a slab job of its kind
PRIOR = {"relax": 1.0, "static": 0.5, "CDD": 0.5, "CI-NEB": 1.0}
SCOPE_PRIOR = {"slab": 1.0, "reference": 0.05}
NEB_PLACEHOLDER = "CI-NEB added at run time"
REUSED_S = 1.0  # a DFT job that returns faster than this took its result from a finished run folder


def job_kind(name: str) -> str:
    """The first word of a job's name: the flows name jobs "relax host", "static Na@top-V", "CDD host", ..."""
    return name.split(" ", 1)[0] if name else "job"


def job_class(name: str) -> tuple[str, str]:
    """(kind, scope): a reference (bulk metal, isolated atom) costs a fraction of a slab job of its kind."""
    scope = "reference" if re.search(r"\b(bulk|atom)\b", name) else "slab"
    return job_kind(name), scope


def format_s(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class JobProgress(logging.Handler):
    """Follows jobflow's job log lines; use as a context manager around ``run_locally``."""

    def __init__(self, flow, console: Console | None = None, title: str = "jobs", log_path: str | Path | None = None):
        """``flow``: a jobflow Flow (its jobs, nested flows included) or a list of jobs; ``log_path``: while
        the jobs run, everything else written to stdout/stderr (library prints, compiled code's output,
        other loggers) goes to this file, and only the progress reaches the terminal."""
        super().__init__(logging.INFO)
        self.log_path = Path(log_path) if log_path else None
        self._saved_fds: tuple[int, int] | None = None
        self._terminal = None
        if console is None and self.log_path is not None:
            self._terminal = os.fdopen(os.dup(1), "w", buffering=1)  # the terminal, kept while fd 1 is the log
        self.console = console or Console(file=self._terminal)
        jobs = [j for j, _ in flow.iterflow()] if hasattr(flow, "iterflow") else list(flow)
        self.pending: dict[str, str] = {j.uuid: j.name for j in jobs}  # uuid -> name, not yet started
        self.total = len(self.pending)
        self.durations: dict[tuple[str, str], list[float]] = {}  # (kind, scope) -> seconds of jobs that ran
        self.finished: list[tuple[str, float, bool]] = []  # (name, seconds, reused)
        self.failed: list[str] = []
        self.current: tuple[str, str, float] | None = None  # (uuid, name, start time)
        self.t0 = time.time()
        self.progress = Progress(
            SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("elapsed"), TimeElapsedColumn(), TextColumn("{task.fields[eta]}"),
            console=self.console, transient=True,
        )
        self.bar = self.progress.add_task(title, total=self.total, eta="estimating ...")
        self.job_task = None

    # ------------------------------------------------------------------ the estimate
    def estimate_left_s(self) -> float | None:
        """Seconds still needed for the pending jobs and the rest of the running one; None until a DFT job ran."""
        def mean(xs):
            return sum(xs) / len(xs) if xs else None

        # one "slab relaxation" as the unit: what each DFT job that ran says it is worth in that unit
        units = {scope: [t / (PRIOR[k] * SCOPE_PRIOR[scope]) for (k, sc), v in self.durations.items()
                         if k in PRIOR and sc == scope for t in v] for scope in SCOPE_PRIOR}
        relaxed = self.durations.get(("relax", "slab"))  # the unit itself, when one has run
        if relaxed:
            units["slab"] = list(relaxed)
        unit = mean(units["slab"]) or mean(units["reference"])
        if unit is None:
            return None
        other = mean([t for (k, _), v in self.durations.items() if k not in PRIOR for t in v]) or 1.0

        def cost(name: str) -> float:
            if name.startswith("select NEB"):  # adds the CI-NEB when it runs: price that NEB now
                name = "CI-NEB"
            kind, scope = job_class(name)
            seen = self.durations.get((kind, scope))
            if seen:
                return mean(seen)
            if kind not in PRIOR:
                return other
            return (mean(units[scope]) or unit * SCOPE_PRIOR[scope]) * PRIOR[kind]

        left = sum(cost(n) for n in self.pending.values())
        if self.current is not None:
            _, name, start = self.current
            left += max(0.0, cost(name) - (time.time() - start))
        return left

    def _eta_text(self) -> str:
        left = self.estimate_left_s()
        return "estimating ..." if left is None else f"about {format_s(left)} left"

    # ------------------------------------------------------------------ jobflow's log lines
    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
            if m := JOB_START.match(msg):
                self._started(m["uuid"], m["name"])
            elif m := JOB_FINISH.match(msg):
                self._finished(m["uuid"], m["name"])
            elif " failed with exception:" in msg:
                if self.log_path is not None:  # the traceback the failed line points to (appended: fd 2 shares the file)
                    with open(self.log_path, "a") as log:
                        log.write(msg + "\n")
                self._failed(msg.partition(" failed with exception:")[0])
        except Exception:  # noqa: BLE001 - progress display must never stop a run
            self.handleError(record)

    def _started(self, uuid: str, name: str) -> None:
        if name.startswith("CI-NEB"):
            self.pending.pop(NEB_PLACEHOLDER, None)
        if self.pending.pop(uuid, None) is None:  # a job added at run time (e.g. the CI-NEB)
            self.total += 1
            self.progress.update(self.bar, total=self.total)
        self.current = (uuid, name, time.time())
        if self.job_task is not None:
            self.progress.remove_task(self.job_task)
        self.job_task = self.progress.add_task(f"  {name}", total=None, eta="")
        self.progress.update(self.bar, eta=self._eta_text())

    def _end_current(self) -> float:
        start = self.current[2] if self.current else time.time()
        self.current = None
        if self.job_task is not None:
            self.progress.remove_task(self.job_task)
            self.job_task = None
        return time.time() - start

    def _finished(self, uuid: str, name: str) -> None:
        took = self._end_current()
        cls = job_class(name)
        reused = cls[0] in PRIOR and took < REUSED_S
        if not reused:
            self.durations.setdefault(cls, []).append(took)
        self.finished.append((name, took, reused))
        if name.startswith("select NEB"):  # its CI-NEB starts next: keep it in the estimate until then
            self.pending[NEB_PLACEHOLDER] = "CI-NEB"
        self.progress.advance(self.bar)
        self.progress.update(self.bar, eta=self._eta_text())
        done = len(self.finished) + len(self.failed)
        self.progress.console.print(
            f"[green]done[/green] [{done}/{self.total}] {name}: {format_s(took)}{' (reused)' if reused else ''}"
            f"  | elapsed {format_s(time.time() - self.t0)}, {self._eta_text()}", soft_wrap=True, markup=True,
            highlight=False)

    def _failed(self, name: str) -> None:
        took = self._end_current()
        self.failed.append(name)
        self.progress.advance(self.bar)
        where = f" (its traceback is in {self.log_path})" if self.log_path else ""
        self.progress.console.print(f"[red]failed[/red] {name} after {format_s(took)}{where}", soft_wrap=True,
                                    highlight=False)

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> JobProgress:
        self.t0 = time.time()
        if self.log_path is not None:
            sys.stdout.flush()
            sys.stderr.flush()
            self._saved_fds = (os.dup(1), os.dup(2))
            with open(self.log_path, "ab") as log:  # fd level: output of compiled code and children too
                os.dup2(log.fileno(), 1)
                os.dup2(log.fileno(), 2)
        self.progress.start()
        self._logger = logging.getLogger("jobflow")
        self._old_level = self._logger.level
        self._logger.addHandler(self)
        self._logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc) -> None:
        self._logger.removeHandler(self)
        self._logger.setLevel(self._old_level)
        self.progress.stop()
        if self._saved_fds is not None:
            sys.stdout.flush()
            sys.stderr.flush()
            for saved, fd in zip(self._saved_fds, (1, 2)):
                os.dup2(saved, fd)
                os.close(saved)
            self._saved_fds = None
        if self._terminal is not None:
            self._terminal.flush()

    def summary_line(self) -> str:
        ran = [t for _, t, r in self.finished if not r]
        reused = sum(1 for *_, r in self.finished if r)
        return (f"{len(self.finished)} jobs finished in {format_s(time.time() - self.t0)} "
                f"({len(ran)} ran, {reused} reused from earlier runs), {len(self.failed)} failed")


def next_steps(root: Path, preset: str) -> list[str]:
    """The last lines of a successful `hetero run`: where the outputs go and what to run next."""
    r = str(root)
    lines = [
        f"results: {r}/store.json",
        f"report:  {r}/report/index.html (written by: hetero table {r} --out {r}/table && hetero figures {r} "
        f"&& hetero report {r})",
    ]
    if preset == "demo":
        lines.append("next:    the real campaign behind this demo (17 atoms, all four sites, fast preset, about "
                     "1.5 h on 2 cores): hetero run workflows/na_vn001.yaml --preset fast")
    else:
        lines.append(f"next:    compare with the published values: hetero table {r} --compare")
    return lines
