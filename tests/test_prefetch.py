"""Decode-ahead iterator: order, errors at the right place, early stop, and a real video source."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from gaitpose.errors import InputError
from gaitpose.io.prefetch import prefetch

DATA = Path(__file__).parent / "data"


def test_prefetch_keeps_order_and_applies_prepare_on_the_producer_thread() -> None:
    threads: set[str] = set()

    def prepare(x: int) -> int:
        threads.add(threading.current_thread().name)
        return x * 10

    assert list(prefetch(range(50), depth=3, prepare=prepare)) == [x * 10 for x in range(50)]
    assert threads == {"gaitpose-prefetch"}
    assert list(prefetch(range(5), depth=0)) == [0, 1, 2, 3, 4]


def test_prefetch_raises_the_source_error_after_the_items_before_it() -> None:
    def source():
        yield 1
        yield 2
        raise InputError("clip.mp4", "decode error (corrupt frame)")

    got = []
    with pytest.raises(InputError, match=r"clip\.mp4.*corrupt frame"):
        for x in prefetch(source(), depth=4):
            got.append(x)
    assert got == [1, 2]


def test_prefetch_stops_the_producer_when_the_consumer_stops_early() -> None:
    produced = []
    closed = threading.Event()

    def source():
        try:
            for i in range(10_000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    it = prefetch(source(), depth=2)
    assert next(it) == 0
    it.close()  # consumer breaks out of its loop
    assert closed.wait(5.0), "the source generator was not closed"
    time.sleep(0.2)
    assert len(produced) < 10, "the producer kept decoding after the consumer stopped"


def test_prefetch_over_a_real_video_matches_plain_decoding() -> None:
    from gaitpose.io.video import VideoRecording

    clip = DATA / "sports2d_walk.mp4"
    plain = [(f.index, f.t_ms, int(f.rgb[::50, ::50].sum())) for f in VideoRecording(clip).color_frames()]
    ahead = [(f.index, f.t_ms, int(f.rgb[::50, ::50].sum())) for f in prefetch(VideoRecording(clip).color_frames())]
    assert len(plain) > 100 and ahead == plain
