"""A persistent GPAW worker for local runs (preset key ``gpaw: {persistent_worker: true}``).

One `[mpiexec -n N] python -m hetero.engines.gpaw_worker --serve` per command line and process, started
for the first task and kept for the next: every task then skips mpiexec, Python, the numpy/GPAW imports
and MPI's start-up (about 1 s per task on 2 cores). Each task runs exactly as in the one-shot mode
(hetero.engines.gpaw_worker.run_task); this module is the parent's side of the line protocol:
- the parent writes a task folder as one line on the server's stdin;
- rank 0 answers ``TASK_DONE + folder`` on its stdout once every rank finished and result.json is written;
- anything else the server prints (start-up messages, mpiexec's report of a dead rank) goes to the
  current task's worker.log, where the ranks write their own output during the task;
- end of file on stdout: the server died (a task raised: GPAW aborts MPI as in a one-shot run); the task
  fails like a one-shot one and the next task starts a new server; both are said in the task logs.

Standard library only: the worker imports TASK_DONE from here in every rank.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import threading
from pathlib import Path

from hetero.engines.process import die_with_parent

SERVE_FLAG = "--serve"  # the worker's persistent mode
TASK_DONE = "hetero-gpaw-server: done "
CLOSE_TIMEOUT_S = 30.0


class GpawServer:
    """One persistent worker; ``run`` hands it a task folder and waits for the reply."""

    def __init__(self, cmd: list[str], env: dict[str, str]):
        # env's HETERO_TASK_DIR names the first task's folder (the server reads its folders from stdin):
        # tools that find a run's GPAW processes by it find the server too. PR_SET_PDEATHSIG fires when
        # the starting thread ends: hetero runs its jobs, hence this, in the main thread.
        self.proc = subprocess.Popen([*cmd, SERVE_FLAG], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        self.owner = os.getpid()
        self.tasks = 0
        self.lock = threading.Lock()

    def alive(self) -> bool:
        return self.owner == os.getpid() and self.proc.poll() is None

    def run(self, folder: Path) -> int | None:
        """Run the task in ``folder``: None when the server replied, else its exit code (it died)."""
        folder = Path(os.path.abspath(folder))  # the server keeps the working directory it started in
        done = (TASK_DONE + str(folder)).encode()
        with self.lock, open(folder / "worker.log", "ab") as log:
            self.tasks += 1
            log.write(f"hetero: task {self.tasks} of the persistent GPAW worker pid {self.proc.pid}\n".encode())
            log.flush()
            try:
                self.proc.stdin.write(f"{folder}\n".encode())
                self.proc.stdin.flush()
            except BrokenPipeError:  # it is gone: its exit code below
                pass
            for line in self.proc.stdout:
                if line.rstrip(b"\n") == done:
                    return None
                log.write(line)
                log.flush()
            code = self.proc.wait()
            log.write(f"hetero: the persistent GPAW worker pid {self.proc.pid} exited with code {code} during this "
                      "task; the next task starts a new one\n".encode())
            return code

    def close(self) -> None:
        """End of input: every rank leaves its loop and MPI finalises; killed if it does not end in time."""
        if self.owner != os.getpid():  # a forked child's copy: the server belongs to the parent
            return
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=CLOSE_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired):
            self.kill()

    def kill(self) -> None:
        if self.owner == os.getpid() and self.proc.poll() is None:
            self.proc.kill()  # mpiexec: its ranks die with it (PR_SET_PDEATHSIG in every rank)
            self.proc.wait()


_servers: dict[tuple[str, ...], GpawServer] = {}


def run_on_server(cmd: list[str], env: dict[str, str], folder: Path) -> int:
    """Run the task in ``folder`` on this process's server for ``cmd`` (started when there is none, or a
    new one when the last died). Returns 0 when the task finished, else the dead server's exit code."""
    key = (*cmd, env.get("GPAW_MPI_BACKEND", ""))
    server = _servers.get(key)
    if server is not None and not server.alive():
        if server.owner == os.getpid():
            with open(folder / "worker.log", "ab") as log:
                log.write(f"hetero: the persistent GPAW worker pid {server.proc.pid} had exited (code "
                          f"{server.proc.returncode}) since its last task; starting a new one\n".encode())
        server = None
    if server is None:
        server = _servers[key] = GpawServer(cmd, env)
    try:
        code = server.run(folder)
    except BaseException:  # interrupted mid-task (Ctrl-C, a signal): the server's state is unknown
        server.kill()
        _servers.pop(key, None)
        raise
    if code is not None:
        _servers.pop(key, None)
        return code
    return 0


def close_servers() -> None:
    while _servers:
        _servers.popitem()[1].close()


atexit.register(close_servers)
