"""An HTTP protocol for uvicorn that closes connections whose request head never completes.

Why: uvicorn starts no timer before the first response on a connection, so a client that opens
a connection and sends nothing, or sends a request head a byte at a time and stops ("slowloris"),
holds a socket and a file descriptor for ever; enough of them exhaust the process's descriptors.
Upload bodies have their own idle and total limits (``service.uploads.timed_stream``); this covers
the part before the application sees the request.
"""

from __future__ import annotations

import asyncio
from typing import Any

MAX_HEAD_BYTES = 64 * 1024
_HEAD_TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain\r\n"
                   b"Content-Length: 33\r\nConnection: close\r\n\r\nrequest head larger than 64 KiB\r\n")


def head_timeout_protocol(timeout_s: float, max_head_bytes: int = MAX_HEAD_BYTES) -> type | str:
    """A subclass of uvicorn's httptools protocol that gives each request head ``timeout_s`` seconds.

    It also caps a request head at ``max_head_bytes`` (answered 431 and closed): httptools itself
    sets no limit, so a client could make the server buffer megabytes of header lines. The check
    runs after each socket read, so a head that completes inside one read (at most 256 KiB, asyncio's
    read size) still passes: what the cap bounds is the memory a trickled head can hold.

    The timer starts when the connection is made and again when a request begins (a keep-alive
    connection's next request), and stops when the head is complete. Returns ``"auto"`` (uvicorn's
    own choice, no head timeout) when httptools is not installed.
    """
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return "auto"

    class HeadTimeoutHttpToolsProtocol(HttpToolsProtocol):
        _head_timer: asyncio.TimerHandle | None = None
        _head_bytes: int = 0

        def data_received(self, data: bytes) -> None:
            if self._head_timer is not None:  # inside a request head: count what it has taken so far
                self._head_bytes += len(data)
            super().data_received(data)
            # One read may carry the end of a head and much of the body: only a head that is still
            # incomplete after parsing counts as too large.
            if self._head_timer is not None and self._head_bytes > max_head_bytes:
                self._cancel_head_timer()
                if not self.transport.is_closing():
                    self.transport.write(_HEAD_TOO_LARGE)
                    self.transport.close()

        def _arm_head_timer(self) -> None:
            self._cancel_head_timer()
            self._head_bytes = 0
            self._head_timer = self.loop.call_later(timeout_s, self._head_timed_out)

        def _cancel_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_head_timer()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm_head_timer()

        def on_headers_complete(self) -> None:
            self._cancel_head_timer()
            super().on_headers_complete()

        def connection_lost(self, exc: Any) -> None:
            self._cancel_head_timer()
            super().connection_lost(exc)

    return HeadTimeoutHttpToolsProtocol
