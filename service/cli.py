"""``gaitpose-serve``: run the edge service with uvicorn.

Without API keys the service refuses to listen beyond loopback: anyone on the network could
otherwise upload videos and read every result. ``--insecure-no-auth`` overrides that on purpose.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
from pathlib import Path

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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gaitpose-serve", description="Serve the gaitpose HTTP API and web page.")
    p.add_argument("--host", default=None, help="bind address (default GAITPOSE_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default GAITPOSE_PORT or 8000)")
    p.add_argument("--workers", type=int, default=None, help="analysis worker processes (default GAITPOSE_WORKERS)")
    p.add_argument("--model-dir", type=Path, default=None,
                   help=f"models folder (GAITPOSE_MODEL_DIR; default: the shipped models, {default_model_dir()})")
    p.add_argument("--data-dir", type=Path, default=None,
                   help=f"uploads/results/DB folder (GAITPOSE_DATA_DIR; default: {default_service_data_dir()})")
    p.add_argument("--insecure-no-auth", action="store_true",
                   help="allow a non-loopback bind address without API keys")
    p.add_argument("--log-level", default="info")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = {k: v for k, v in {"host": args.host, "port": args.port, "workers": args.workers,
                                   "model_dir": args.model_dir, "data_dir": args.data_dir}.items() if v is not None}
    try:
        settings = ServiceSettings(**overrides)
    except ValidationError as exc:  # one line per bad field, named as the user sets it
        for err in exc.errors():
            field = "_".join(str(p) for p in err["loc"]).upper()
            print(f"error: GAITPOSE_{field}: {err['msg']} (got {err.get('input')!r})", file=sys.stderr)
        return 2
    if not settings.keys and not _is_loopback(settings.host) and not args.insecure_no_auth:
        print(f"error: refusing to listen on {settings.host} without API keys; set GAITPOSE_API_KEYS "
              "or pass --insecure-no-auth", file=sys.stderr)
        return 2
    _raise_open_file_limit()
    import uvicorn

    from service.app import create_app

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from service.protocol import head_timeout_protocol

    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=args.log_level,
                proxy_headers=False, server_header=False, timeout_graceful_shutdown=10,
                http=head_timeout_protocol(settings.request_head_timeout_s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
