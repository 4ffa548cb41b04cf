"""Process lifetime of the engines' child processes. Standard library only: the GPAW worker imports it
in every MPI rank, where each import is paid once per DFT task."""

from __future__ import annotations


def die_with_parent() -> None:
    """Linux: this process gets SIGKILL when its parent dies (kill -9 included). Set in the launched child
    and again in every GPAW rank, so a killed campaign leaves no orphaned GPAW writing into a task
    folder that the next run is about to use."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: nothing to do
        pass
