"""`read_ahead`: a bulk load's reader runs in a thread, a bounded number of batches ahead of
the COPY, so parsing the next chunk's lines overlaps the server judging and storing this one
(the main thread waits on the server with the GIL released). At 10M events: 0.5 s a 1M-row
chunk that no longer adds to the load's time."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
_POLL_S = 0.1  # how often a blocked reader looks whether the load has stopped


@dataclass(frozen=True)
class _End:
    error: BaseException | None = None


def read_ahead(items: Iterator[T], ahead: int) -> Iterator[T]:
    """Yield what `items` yields, in order, with up to `ahead` of them read in advance by a
    thread. The reader's exception is raised here, where its item would have come. Closing the
    generator (or leaving its loop by an exception) stops the thread and waits for it."""
    if ahead < 1:
        raise ValueError(f"ahead must be >= 1, got {ahead}")
    buffer: queue.Queue[T | _End] = queue.Queue(ahead)
    stop = threading.Event()

    def put(item: T | _End) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put(_End(exc))
            return
        put(_End())

    thread = threading.Thread(target=read, name="recsys-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        stop.set()
        thread.join()
