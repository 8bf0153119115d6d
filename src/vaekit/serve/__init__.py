"""`vaekit serve`: a local web page to move through a model's latent space, draw, sample and write poems.

Needs the `web` extra (`pip install 'vaekit[web]'`: Starlette and uvicorn). The page is plain HTML, CSS and
one hand-written script shipped in the package: no build step, no CDN, works offline.
"""

from __future__ import annotations

import errno
import socket
import sys
from pathlib import Path

__all__ = ["open_runs", "serve", "listen"]


def _require_web() -> None:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise ValueError("vaekit serve needs the web extra: pip install 'vaekit[web]' (Starlette and uvicorn)") from None


def open_runs(paths: list[str | Path]) -> tuple[list, dict[str, Path]]:
    """(image RunViews, poem runs by form) for the run directories given, each checked to be a vaekit run."""
    from vaekit.serve.views import RunView
    from vaekit.tasks import read_settings

    views, poems = [], {}
    for i, path in enumerate(map(Path, paths)):
        config = read_settings(path).flat()
        if config.get("task") == "poem":
            poems[config["form"]] = path
        else:
            run_id = path.name if all(Path(p).name != path.name for p in paths[:i]) else f"{path.name}-{i + 1}"
            views.append(RunView.open(run_id, path))
    return views, poems


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on host:port, or ValueError with one sentence (the port taken, a host not here)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host.strip("[]"), port), family=family)
    except socket.gaierror:
        raise ValueError(f"cannot listen on host {host!r}: no such address on this machine; pass --host "
                         "127.0.0.1") from None
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise ValueError(f"port {port} is in use; pass --port with another number") from None
        if e.errno in (errno.EACCES, errno.EPERM):
            raise ValueError(f"port {port} needs privileges this user lacks; pass --port above 1023") from None
        if e.errno == errno.EADDRNOTAVAIL:
            raise ValueError(f"cannot listen on host {host!r}: not an address of this machine; pass --host "
                             "127.0.0.1") from None
        raise


def serve(paths: list[str | Path], host: str = "127.0.0.1", port: int = 8000) -> None:
    """Load the runs, take the port, print the URL, and serve until interrupted."""
    _require_web()
    import uvicorn

    from vaekit.serve.app import create_app

    views, poems = open_runs(paths)
    sock = listen(host, port)  # before the URL is printed: a taken port is said, not served
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {host}: anyone who can reach this machine can use the page; the default "
              "127.0.0.1 keeps it to this machine", file=sys.stderr)
    shown = f"[{host}]" if ":" in host else host
    print(f"vaekit serve: http://{shown}:{port}/  ({len(views)} image run(s); Ctrl-C stops)", flush=True)
    server = uvicorn.Server(uvicorn.Config(create_app(views, poems, host=host, port=port), log_level="warning"))
    server.run(sockets=[sock])
