"""One `hetero run` per run folder: ``<run folder>/run.lock`` holds the owner's pid, host and start time.

The exclusion itself is an flock(2) on that file, which the kernel releases when the owner dies (even by
kill -9), so a stale lock is taken over without a race between two newcomers; the pid in the file is what
the refusal message names. A second run refuses (RunFolderBusy) or, with ``wait=True``, waits.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

LOCK_FILENAME = "run.lock"


class RunFolderBusy(RuntimeError):
    """Another live `hetero run` holds the run folder."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def read_owner(folder: str | Path) -> dict:
    try:
        return json.loads((Path(folder) / LOCK_FILENAME).read_text() or "{}")
    except (OSError, ValueError):
        return {}


class RunLock:
    """``with RunLock(folder): ...``; ``taken_over`` holds the dead owner's record when a stale lock was taken."""

    def __init__(self, folder: str | Path, wait: bool = False, poll_s: float = 2.0, timeout_s: float | None = None):
        self.folder, self.wait, self.poll_s, self.timeout_s = Path(folder), wait, poll_s, timeout_s
        self.path = self.folder / LOCK_FILENAME
        self.fd: int | None = None
        self.taken_over: dict | None = None

    def acquire(self) -> RunLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                owner = read_owner(self.folder)
                if not self.wait or (self.timeout_s is not None and time.time() - t0 > self.timeout_s):
                    raise RunFolderBusy(self._busy_message(owner)) from None
                time.sleep(self.poll_s)
                continue
            break
        previous = read_owner(self.folder)
        if previous.get("pid") and previous.get("pid") != os.getpid():
            # the file outlived its owner (killed); same host: its pid is gone, other host: flock says it is free
            self.taken_over = previous
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                  "command": " ".join(Path(a).name if i == 0 else a for i, a in enumerate(sys.argv))}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        os.fsync(fd)
        self.fd = fd
        return self

    def _busy_message(self, owner: dict) -> str:
        who = f"pid {owner.get('pid', '?')} on {owner.get('host', '?')}, started {owner.get('started', '?')}"
        if owner.get("command"):
            who += f": {owner['command']}"
        return (f"run folder {self.folder} is in use by another hetero run ({who}); wait for it to finish, "
                f"pass --wait to start when it does, or use another --runs-dir")

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.ftruncate(self.fd, 0)  # an empty file = nobody holds the folder
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def stale_owner_message(owner: dict, folder: Path) -> str:
    alive = owner.get("host") == socket.gethostname() and _pid_alive(int(owner.get("pid", 0) or 0))
    state = "was killed or crashed" if not alive else "no longer holds it"
    return (f"took over the lock of {folder}: its previous owner (pid {owner.get('pid')}, started "
            f"{owner.get('started', '?')}) {state}; finished results are reused")
