"""Security headers of every response: CSP, nosniff, framing, referrer and cross-origin policies.

Why: the page keeps the API key in localStorage and the service serves HTML reports from the same
origin, so scripts are limited to the page's own same-origin files and reports are sandboxed.
"""

from __future__ import annotations

import base64
import hashlib


def _report_style_hashes() -> str:
    """CSP hash sources of the inline stylesheet of report.html.

    The page opens a report as a ``blob:`` document, and such a document inherits the page's CSP;
    allowing exactly the report's stylesheet by hash keeps ``'unsafe-inline'`` out of the page's policy.
    """
    try:
        from gaitpose.report.html import CSS
    except ImportError:  # no report module in this build: nothing to allow
        return ""
    digest = base64.b64encode(hashlib.sha256(CSS.encode("utf-8")).digest()).decode("ascii")
    return f" 'sha256-{digest}'"


def page_csp() -> str:
    """CSP of the page and every API answer: same-origin scripts only, no inline script, no framing."""
    return ("default-src 'self'; script-src 'self'; style-src 'self'" + _report_style_hashes() + "; "
            "img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; font-src 'self'; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


# Result files (report.html above all) are served as sandboxed documents with no script at all:
# an opaque origin that cannot read the page's storage (API key) even if a report were hostile.
RESULT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; media-src 'self'; "
              "base-uri 'none'; form-action 'none'; frame-ancestors 'none'; sandbox")
# Swagger UI (only when GAITPOSE_API_DOCS is on) loads from the jsDelivr CDN and starts with an inline script.
DOCS_CSP = ("default-src 'none'; script-src https://cdn.jsdelivr.net 'unsafe-inline'; "
            "style-src https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
            "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'")


class SecurityHeaders:
    """Add CSP, nosniff, framing and referrer headers to every response (unless a route set its own CSP)."""

    def __init__(self, app, csp: str, docs_paths: tuple[str, ...] = ()) -> None:
        self.app = app
        self.csp = csp.encode("ascii")
        self.docs_paths = docs_paths

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP.encode("ascii") if scope.get("path") in self.docs_paths else self.csp

        async def send_wrapper(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for name, value in (
                    (b"content-security-policy", csp),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                    (b"cross-origin-resource-policy", b"same-origin"),
                ):
                    if name not in present:
                        headers.append((name, value))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_wrapper)
