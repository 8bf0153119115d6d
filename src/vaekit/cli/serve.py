"""`vaekit serve`: the web page over trained runs (extra `web`)."""

from __future__ import annotations

import argparse
from typing import Any

from vaekit.cli.options import HelpFormatter, count

__all__ = ["add_serve_command", "cmd_serve"]


def cmd_serve(args: argparse.Namespace) -> None:
    from vaekit.serve import serve

    serve(args.runs, host=args.host, port=args.port)


def add_serve_command(sub: Any) -> None:
    """The `serve` subcommand."""
    p = sub.add_parser("serve", help="a local web page: explore the latent space, draw, sample, write poems",
                       description="Serve a web page over trained runs (needs `pip install 'vaekit[web]'`).",
                       epilog="example: vaekit serve runs/demo runs/cvae --port 8000", formatter_class=HelpFormatter)
    p.add_argument("runs", nargs="*", help="run directories (image runs; poem runs add their form to the poem tab)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1: this machine only)")
    p.add_argument("--port", type=count(1, 65535), default=8000, help="port to listen on")
    p.set_defaults(func=cmd_serve)
