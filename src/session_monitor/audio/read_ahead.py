"""Reading a file ahead on a thread of its own, for a ``--speed max`` replay.

A reader thread takes blocks from the source, groups about ``group_samples`` of them,
hands each group to ``prepare`` (the pipeline scores every channel's VAD over it in one
model call: the same probabilities as block by block, since the model's state is
carried), and queues it, at most two groups ahead; the caller's thread gets the blocks
one at a time, in order, and runs the rest of the pipeline on them meanwhile.

A decoding error (or one from ``prepare``) reaches the caller after every block read
before it; closing the generator (or leaving the loop) stops the reader and waits for
it, so no thread is left behind.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator

import numpy as np

__all__ = ["read_ahead"]


def read_ahead(blocks: Iterable[np.ndarray], prepare: Callable[[list[np.ndarray]], None], *,
               group_samples: int) -> Iterator[np.ndarray]:
    """The blocks of ``blocks`` (each ``(channels, samples)``), read and ``prepare``-d ahead."""
    ready: queue.Queue[list[np.ndarray] | BaseException | None] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def hand_on(item: list[np.ndarray] | BaseException | None) -> None:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def read() -> None:
        ahead: list[np.ndarray] = []
        length = 0  # samples in ahead
        try:
            try:
                for block in blocks:
                    ahead.append(block)
                    length += block.shape[1]
                    if length >= group_samples:
                        group, ahead, length = ahead, [], 0
                        prepare(group)
                        hand_on(group)
                    if stop.is_set():
                        return
            finally:  # at the end, and before a decoding error: the blocks read so far
                if ahead and not stop.is_set():
                    prepare(ahead)
                    hand_on(ahead)
            hand_on(None)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            hand_on(exc)

    reader = threading.Thread(target=read, name="replay-reader", daemon=True)
    reader.start()
    try:
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield from item
    finally:
        stop.set()
        reader.join()
