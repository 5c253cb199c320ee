"""Decode ahead on a background thread so decoding overlaps with inference.

Why: video decoding (FFmpeg through PyAV), colour conversion, OpenCV resizes and ONNX Runtime all
release the GIL, so on a two-core edge box one thread can decode frame t+1 while the other runs the
pose model on frame t. The queue is short (a few frames) so memory stays bounded for long videos.

Errors raised by the source (a corrupt frame, a truncated file) reach the consumer at the position
they happened, as the same exception; a consumer that stops early (``break``, an exception of its
own) stops the producer thread too.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
U = TypeVar("U")

_DONE = object()

__all__ = ["prefetch"]


class _Failure:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(
    source: Iterable[T],
    depth: int = 3,
    prepare: Callable[[T], U] | None = None,
) -> Iterator[T] | Iterator[U]:
    """Iterate over ``source`` with up to ``depth`` items produced ahead on a daemon thread.

    ``prepare`` (optional) runs on the producer thread for each item, e.g. a resize that the
    consumer will need, and its result is what is yielded. ``depth <= 0`` disables the thread
    (plain iteration, for debugging and for callers that must stay single-threaded).
    """
    if depth <= 0:
        return iter(source) if prepare is None else map(prepare, source)
    return _prefetch(source, depth, prepare)


def _prefetch(source: Iterable[T], depth: int, prepare: Callable[[T], U] | None) -> Iterator[T] | Iterator[U]:
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        it = iter(source)
        try:
            for item in it:
                if not put(item if prepare is None else prepare(item)):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, re-raised there
            put(_Failure(exc))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()  # release the decoder/container of a generator source on its own thread

    thread = threading.Thread(target=produce, name="gaitpose-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join(timeout=5.0)
