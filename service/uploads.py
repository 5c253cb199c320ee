"""Streaming multipart upload to disk, with the size limit enforced while bytes arrive.

Starlette's form parser spools a whole upload before the handler runs and only knows limits for
text fields, so the analysis upload is parsed here straight from ``request.stream()``: each file
part is written in chunks to a server-chosen name, never held in memory, and the request is cut
off with 413 as soon as the running total passes the limit (Content-Length is not trusted).

Protection of a small edge box against slow, junk and too many uploads:

- :class:`UploadGate` admits at most N uploads at once and reserves disk for each (its declared
  size, else the upload limit) within a budget, *before* any byte of the body is read;
- :func:`timed_stream` cuts off an upload that stalls (idle timeout) or takes too long in total;
- each file part is sniffed from its first bytes and refused (415) before anything is written.
"""

from __future__ import annotations

import asyncio
import os
import re
import unicodedata
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from fastapi import HTTPException
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

SNIFF_BYTES = 64
SNIFF_HEAD = SNIFF_BYTES * 4  # bytes of each file part kept in memory and sniffed before writing
MAX_TEXT_FIELD = 1024


@dataclass
class SavedFile:
    field: str
    path: Path
    client_name: str
    size: int = 0
    head: bytes = b""


@dataclass
class ParsedForm:
    files: dict[str, SavedFile] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)


def safe_display_name(name: str | None, default: str = "upload") -> str:
    """A client filename reduced to a harmless label (used for display only, never as a path)."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = unicodedata.normalize("NFKC", base)
    base = re.sub(r"[^\w.\- ]+", "_", base).strip(" .")[:120]
    return base or default


def sniff_video(head: bytes) -> str | None:
    """Container extension from magic bytes, or None when this is no video file we can decode."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "mov" if head[8:10] == b"qt" else "mp4"
    if len(head) >= 8 and head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "mov"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm" if b"webm" in head[:64] else "mkv"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:4] == b"\x00\x00\x01\xba":
        return "mpg"
    if len(head) > 188 and head[:1] == b"\x47" and head[188:189] == b"\x47":
        return "ts"
    if head.startswith(b"#ROSBAG V2.0"):  # RealSense recording: colour (and depth) in one file
        return "bag"
    return None


def sniff_depth(head: bytes) -> str | None:
    """Extension for an RGB-D recording: ROS1 bag (RealSense), Kinect MKV, ROS2 bag, numpy arrays."""
    if head.startswith(b"#ROSBAG V2.0"):
        return "bag"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "mkv"
    if head.startswith(b"\x89MCAP"):
        return "mcap"
    if head.startswith(b"SQLite format 3\x00"):
        return "db3"
    if head.startswith(b"PK\x03\x04"):
        return "npz"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    return None


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def receive_multipart(content_type: str, stream: AsyncIterator[bytes], dest: Path, limit: int,
                            file_fields: tuple[str, ...],
                            sniffers: dict[str, Callable[[bytes], str | None]] | None = None,
                            kinds: dict[str, str] | None = None) -> ParsedForm:
    """Parse a multipart body into ``dest``; raises HTTPException 400/413/415 on bad bodies.

    File parts named in ``file_fields`` are written to ``dest/<field>.upload``; unknown file parts
    are drained and dropped (they still count against the limit); short text parts are kept.
    A part with a sniffer in ``sniffers`` is held in memory until its first :data:`SNIFF_HEAD`
    bytes (or its end) are in, and refused with 415 (``kinds[field]`` names what was expected)
    before a byte of it reaches the disk when the sniffer does not recognise it.
    """
    sniffers = sniffers or {}
    kinds = kinds or {}
    ctype, params = parse_options_header(content_type)
    if ctype != b"multipart/form-data":
        raise HTTPException(415, "expected a multipart/form-data body")
    boundary = params.get(b"boundary")
    if not boundary or len(boundary) > 200:
        raise HTTPException(400, "malformed multipart body: missing or invalid boundary")

    form = ParsedForm()
    state: dict = {"headers": {}, "hname": b"", "hval": b"", "file": None, "out": None, "text": None,
                   "total": 0, "ended": False, "error": None}

    def on_part_begin() -> None:
        state.update(headers={}, hname=b"", hval=b"", file=None, out=None, text=None)

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["hname"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["hval"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["hname"].lower()] = state["hval"]
        state["hname"], state["hval"] = b"", b""

    def on_headers_finished() -> None:
        _disp, opts = parse_options_header(state["headers"].get(b"content-disposition", b""))
        name = opts.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in opts:
            client = opts[b"filename"].decode("utf-8", "replace")
            if name in file_fields and name not in form.files:
                saved = SavedFile(name, dest / f"{name}.upload", safe_display_name(client))
                form.files[name] = saved
                state["file"] = saved
            else:
                state["file"] = None
        else:
            state["text"] = (name, bytearray())

    def sniff(saved: SavedFile) -> None:
        """Check the held head of a part; write it out when it is recognised."""
        check = sniffers.get(saved.field)
        if check is not None and check(saved.head) is None:
            raise _Unsupported(saved)
        out = open(saved.path, "wb")  # noqa: SIM115 - closed in on_part_end / finally
        state["out"] = out
        out.write(saved.head)

    def on_part_data(data: bytes, start: int, end: int) -> None:
        n = end - start
        state["total"] += n
        if state["total"] > limit:
            raise _TooBig
        saved: SavedFile | None = state["file"]
        out: BinaryIO | None = state["out"]
        if saved is not None:
            chunk = data[start:end]
            saved.size += n
            if out is None:  # still collecting the head: nothing on disk yet
                take = SNIFF_HEAD - len(saved.head)
                saved.head += chunk[:take]
                chunk = chunk[take:]
                if len(saved.head) < SNIFF_HEAD:
                    return
                sniff(saved)
                out = state["out"]
            if chunk:
                out.write(chunk)
        elif state["text"] is not None:
            buf = state["text"][1]
            buf += data[start:end]
            if len(buf) > MAX_TEXT_FIELD:
                raise HTTPException(400, f"form field '{state['text'][0]}' is too long")

    def on_part_end() -> None:
        saved: SavedFile | None = state["file"]
        if saved is not None and state["out"] is None and saved.size > 0:
            sniff(saved)  # a part shorter than the sniffed head
        out = state["out"]
        if out is not None:
            out.flush()
            os.fsync(out.fileno())
            out.close()
            state["out"] = None
        if state["text"] is not None:
            name, buf = state["text"]
            form.fields[name] = bytes(buf).decode("utf-8", "replace")
            state["text"] = None

    def on_end() -> None:
        state["ended"] = True

    callbacks = {
        "on_part_begin": on_part_begin, "on_part_data": on_part_data, "on_part_end": on_part_end,
        "on_header_field": on_header_field, "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_end": on_end,
    }
    parser = MultipartParser(boundary, callbacks, max_header_count=16, max_header_size=8192)
    try:
        async for chunk in stream:
            if chunk:
                parser.write(chunk)
        parser.finalize()
    except _TooBig:
        raise HTTPException(413, f"upload larger than the limit of {limit / 1048576:.0f} MiB",
                            headers=CLOSE) from None
    except _Unsupported as exc:
        kind = kinds.get(exc.saved.field, "supported file")
        raise HTTPException(415, f"{exc.saved.client_name}: not a {kind} (unrecognised content)",
                            headers=CLOSE) from None
    except MultipartParseError as exc:
        raise HTTPException(400, f"malformed multipart body: {str(exc).splitlines()[0][:200]}") from None
    finally:
        if state["out"] is not None:
            state["out"].close()
    if not state["ended"]:
        raise HTTPException(400, "malformed multipart body: truncated (no closing boundary)")
    return form


class _TooBig(Exception):
    pass


class _Unsupported(Exception):
    def __init__(self, saved: SavedFile) -> None:
        super().__init__(saved.field)
        self.saved = saved


CLOSE = {"Connection": "close"}  # an answer sent before the whole body was read ends the connection


class UploadTimeout(Exception):
    """The client sent nothing for the idle timeout, or the upload passed the total time limit."""


async def timed_stream(stream: AsyncIterator[bytes], idle_s: float, total_s: float) -> AsyncIterator[bytes]:
    """Yield ``stream``'s chunks; raise :class:`UploadTimeout` when one takes longer than ``idle_s``
    or the whole body longer than ``total_s``. Why: a client that trickles or stalls would
    otherwise hold a connection, a file and an upload slot for ever.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + total_s
    it = stream.__aiter__()
    while True:
        left = deadline - loop.time()
        if left <= 0:
            raise UploadTimeout(f"upload took longer than the limit of {total_s:.0f} s")
        try:
            chunk = await asyncio.wait_for(it.__anext__(), timeout=min(idle_s, left))
        except StopAsyncIteration:
            return
        except TimeoutError:
            if idle_s <= left:
                raise UploadTimeout(f"upload stalled: no data for {idle_s:.0f} s") from None
            raise UploadTimeout(f"upload took longer than the limit of {total_s:.0f} s") from None
        yield chunk


class UploadGate:
    """Admission control for analysis uploads: a cap on uploads in flight and on the disk they reserve.

    Runs on the event loop only (no awaits between the check and the update), so it needs no lock.
    Each admitted upload reserves its declared Content-Length (the HTTP server never delivers more
    than declared) or, without one, the upload limit; the body is then capped at that reservation,
    so the disk held by uploads never exceeds ``budget``.
    """

    def __init__(self, max_in_flight: int, budget: int) -> None:
        self.max_in_flight = max_in_flight
        self.budget = budget
        self.reservations: dict[str, int] = {}
        self.peak_reserved = 0

    @property
    def reserved(self) -> int:
        return sum(self.reservations.values())

    def try_acquire(self, upload_id: str, nbytes: int) -> str | None:
        """Reserve a slot and ``nbytes``; returns why not (for a 429) or None when admitted."""
        if len(self.reservations) >= self.max_in_flight:
            return f"{self.max_in_flight} uploads already in progress; retry later"
        if self.reserved + nbytes > self.budget:
            return (f"uploads in progress hold the disk budget ({self.budget / 1048576:.0f} MiB); "
                    "retry later")
        self.reservations[upload_id] = nbytes
        self.peak_reserved = max(self.peak_reserved, self.reserved)
        return None

    def release(self, upload_id: str) -> None:
        self.reservations.pop(upload_id, None)

    def __contains__(self, upload_id: object) -> bool:
        return upload_id in self.reservations
