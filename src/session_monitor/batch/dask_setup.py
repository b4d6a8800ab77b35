"""Preload of a ``LocalCluster``'s workers: a Ctrl-C at the terminal is the batch's to handle.

The workers share the terminal's process group, so a Ctrl-C reaches them too; without this
it would kill them mid-recording and Dask would retry the recording elsewhere. The batch
process decides instead (let the running recordings finish, or end them on a second Ctrl-C).
"""

from __future__ import annotations

import signal
import threading
from typing import Any

__all__ = ["dask_setup"]


def dask_setup(worker: Any) -> None:
    """Called by Dask in each worker process as it starts."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
