"""``socius serve RUN_DIR...``: the dashboard for finished and running runs.

Top-level imports stay light (the command line imports this module to list
its commands); FastAPI and uvicorn — the ``ui`` extra — load in :func:`run`.
"""
from __future__ import annotations

from socius.app.registry import Command
from socius.errors import ConfigError, MissingExtraError

__all__ = ["COMMANDS"]


def _add_arguments(p) -> None:
    p.add_argument("runs", nargs="+", metavar="RUN_DIR",
                   help="run directories, or folders holding run directories")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; anything else warns)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    p.add_argument("--token", default=None, help="the access token (default: a random one, printed)")
    p.add_argument("--quiet", action="store_true", help="no request log")


def _run(args) -> int:
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port: must be 0..65535, got {args.port}")
    if args.token is not None and len(args.token) < 16:
        raise ConfigError("--token: use at least 16 characters")
    for module, package in (("fastapi", "fastapi"), ("uvicorn", "uvicorn")):
        try:
            __import__(module)
        except ImportError:
            raise MissingExtraError("ui", package, "socius serve") from None
    from .runs import discover_runs
    from .server import serve

    runs = discover_runs(args.runs)
    try:
        serve(runs, host=args.host, port=args.port, token=args.token, quiet=args.quiet)
    except KeyboardInterrupt:
        pass
    return 0


COMMANDS = (Command(path=("serve",), help="browse runs in the web dashboard (agents, metrics, labelling)",
                    add_arguments=_add_arguments, run=_run),)
