"""sof console: serve the lab console for a target (an argument adapter over scaleorfail.console)."""

from __future__ import annotations

import argparse
import os

from scaleorfail import target as targets


def console(args: argparse.Namespace) -> int:
    from scaleorfail.console.server import DEFAULT_PORT, serve

    port = args.port or int(os.environ.get("SOF_CONSOLE_PORT") or DEFAULT_PORT)
    return serve(targets.resolve(args.target, args.region), port, read_only=args.read_only)
