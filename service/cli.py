"""``gaitpose-serve``: run the edge service with uvicorn.

Without API keys the service refuses to listen beyond loopback: anyone on the network could
otherwise upload videos and read every result. ``--insecure-no-auth`` overrides that on purpose.
"""

from __future__ import annotations

import ipaddress
import logging
import sys
from pathlib import Path

import typer
from pydantic import ValidationError

from gaitpose.registry import default_model_dir, default_service_data_dir
from service.settings import ServiceSettings


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _raise_open_file_limit() -> None:
    """Use the hard limit on open files: every connection is one, and a burst must not hit the soft 1024."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY:
            hard = 1 << 20
        if soft != resource.RLIM_INFINITY and soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):  # not POSIX, or not allowed: keep the limit
        pass


def make_app() -> typer.Typer:
    """The ``gaitpose-serve`` command (built on call: its help shows the folders as resolved now)."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.command()
    def serve(
        host: str | None = typer.Option(None, "--host", help="Bind address (default: GAITPOSE_HOST or 127.0.0.1)."),
        port: int | None = typer.Option(None, "--port", help="Port (default: GAITPOSE_PORT or 8000)."),
        workers: int | None = typer.Option(
            None, "--workers", help="Analysis worker processes (default: GAITPOSE_WORKERS)."),
        model_dir: Path | None = typer.Option(
            None, "--model-dir",
            help=f"Models folder (default: GAITPOSE_MODEL_DIR or the shipped models, {default_model_dir()})."),
        data_dir: Path | None = typer.Option(
            None, "--data-dir", help=f"Uploads, results and job database (default: GAITPOSE_DATA_DIR or "
            f"{default_service_data_dir()})."),
        insecure_no_auth: bool = typer.Option(
            False, "--insecure-no-auth", help="Allow a non-loopback bind address without API keys."),
        log_level: str = typer.Option("info", "--log-level", help="critical, error, warning, info or debug."),
    ) -> None:
        """Serve the gaitpose HTTP API and web page (upload a walk video, follow the job, read the report)."""
        code = _serve(host, port, workers, model_dir, data_dir, insecure_no_auth, log_level)
        if code:
            raise typer.Exit(code)

    return app


def main(argv: list[str] | None = None) -> int:
    """``gaitpose-serve``: the same typer style, help and one-line ``error:`` exits as ``gaitpose``."""
    try:
        make_app()(args=argv, prog_name="gaitpose-serve")
    except SystemExit as exc:  # typer's standalone mode: help (0), a bad option (2) or our own exit code
        return exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    return 0


def _serve(host: str | None, port: int | None, workers: int | None, model_dir: Path | None, data_dir: Path | None,
           insecure_no_auth: bool, log_level: str) -> int:
    overrides = {k: v for k, v in {"host": host, "port": port, "workers": workers,
                                   "model_dir": model_dir, "data_dir": data_dir}.items() if v is not None}
    try:
        settings = ServiceSettings(**overrides)
    except ValidationError as exc:  # one line per bad field, named as the user sets it
        for err in exc.errors():
            field = "_".join(str(p) for p in err["loc"]).upper()
            print(f"error: GAITPOSE_{field}: {err['msg']} (got {err.get('input')!r})", file=sys.stderr)
        return 2
    if not settings.keys and not _is_loopback(settings.host) and not insecure_no_auth:
        print(f"error: refusing to listen on {settings.host} without API keys; set GAITPOSE_API_KEYS "
              "or pass --insecure-no-auth", file=sys.stderr)
        return 2
    _raise_open_file_limit()
    import uvicorn

    from service.app import create_app

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from service.protocol import head_timeout_protocol

    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=log_level,
                proxy_headers=False, server_header=False, timeout_graceful_shutdown=10,
                http=head_timeout_protocol(settings.request_head_timeout_s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
