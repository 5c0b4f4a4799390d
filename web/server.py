"""Serving the dashboard: a token, a socket on 127.0.0.1, uvicorn in this process.

:func:`serve` makes a random token (``secrets.token_urlsafe``) unless one is
given, binds ``host:port`` (port 0: a free one), prints the one-time URL
``http://HOST:PORT/?token=…`` — opening it sets the token cookie, as
Jupyter's does — and runs uvicorn until Ctrl-C. Binding anything but a
loopback address prints a warning: whoever reaches the port and holds the
token can read every run served and write labels. :class:`DashboardThread`
runs the same server on a background thread (tests, and later the live
``socius run --ui``).
"""
from __future__ import annotations

import ipaddress
import secrets
import socket
import sys
import threading

__all__ = ["DashboardThread", "bind", "is_loopback", "serve", "url"]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port`` 0 picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        from socius.errors import ConfigError
        raise ConfigError(f"--host/--port: cannot listen on {host}:{port} ({e.strerror or e})") from None
    sock.listen(128)
    return sock


def url(host: str, port: int, token: str) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else (f"[{host}]" if ":" in host else host)
    return f"http://{shown}:{port}/?token={token}"


def _config(app, sock, quiet: bool):
    import uvicorn
    return uvicorn.Config(app, log_level="warning" if quiet else "info", access_log=not quiet,
                          lifespan="off", fd=None)


def serve(runs: dict, host: str = "127.0.0.1", port: int = 8765, token: str | None = None, quiet: bool = False,
          out=sys.stdout) -> None:
    """Serve ``runs`` (``{name: RunSource}``) until interrupted (see the module docstring)."""
    import uvicorn

    from .api import create_app

    token = token or secrets.token_urlsafe(24)
    if not is_loopback(host):
        print(f"warning: --host {host}: the dashboard is reachable from other machines; anyone who can reach "
              "the port and has the token can read these runs and write labels", file=sys.stderr)
    sock = bind(host, port)
    port = sock.getsockname()[1]
    app = create_app(runs, token, cookie=f"socius_token_{port}")
    print(f"socius dashboard: {len(runs)} run(s): {', '.join(runs)}", file=out)
    print(f"open {url(host, port, token)}", file=out, flush=True)
    server = uvicorn.Server(_config(app, sock, quiet))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


class DashboardThread:
    """The dashboard on a background thread: ``with DashboardThread(runs) as d: d.url`` (port chosen freely)."""

    def __init__(self, runs: dict, host: str = "127.0.0.1", port: int = 0, token: str | None = None):
        import uvicorn

        from .api import create_app

        self.token = token or secrets.token_urlsafe(24)
        self.sock = bind(host, port)
        self.host, self.port = host, self.sock.getsockname()[1]
        self.app = create_app(runs, self.token, cookie=f"socius_token_{self.port}")
        self.server = uvicorn.Server(_config(self.app, self.sock, quiet=True))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True,
                                       name="socius-dashboard")
        self.url = url(host, self.port, self.token)

    def __enter__(self) -> "DashboardThread":
        self.thread.start()
        for _ in range(500):
            if self.server.started:
                break
            self.thread.join(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()
