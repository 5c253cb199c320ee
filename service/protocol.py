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


def head_timeout_protocol(timeout_s: float) -> type | str:
    """A subclass of uvicorn's httptools protocol that gives each request head ``timeout_s`` seconds.

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

        def _arm_head_timer(self) -> None:
            self._cancel_head_timer()
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
