"""Serving the console: a threaded WSGI server on loopback, its URL printed, its state file written."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from scaleorfail import consolelink
from scaleorfail.console.app import create_app
from scaleorfail.console.aws import Api
from scaleorfail.console.context import Console
from scaleorfail.errors import UserError
from scaleorfail.target import Target

DEFAULT_PORT = 4570
VENDOR = Path(__file__).with_name("static") / "vendor"
VENDOR_FILES = ("dagre.esm.js", "uPlot.esm.js", "uPlot.min.css")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class QuietHandler(WSGIRequestHandler):
    """No line per request on the terminal (a live page makes one every 2 s); errors are still logged."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


def assets_missing() -> list[str]:
    """The built front-end files that are not there (make console-assets builds them)."""
    return [name for name in VENDOR_FILES if not (VENDOR / name).is_file()]


def build(
    target: Target, port: int, host: str = "127.0.0.1", read_only: bool = False
) -> tuple[Console, BaseWSGIServer]:
    """The console for a target and its server, bound but not serving yet (port 0: any free port)."""
    missing = assets_missing()
    if missing:
        raise UserError(
            f"the console's browser libraries are not built ({', '.join(missing)} missing in {VENDOR})",
            "make console-assets (needs npm; make setup does it too)",
        )
    if host not in LOOPBACK:
        raise UserError(
            f"the console binds loopback only, not {host}: it reads your AWS account with your credentials",
            "open it on this machine (an SSH tunnel reaches it from another)",
        )
    api = Api(target, read_only=read_only or target.name != "local")
    console = Console(api, port or 1, host)
    app = create_app(console)
    try:
        server = make_server(host, port, app, threaded=True, request_handler=QuietHandler)
    except OSError as error:
        raise UserError(
            f"cannot listen on {host}:{port}: {error.strerror or error}", "choose another port: sof console --port N"
        ) from None
    bound = int(server.server_port)
    if bound != console.port:  # port 0 asked: the app's Host check needs the real port
        console = Console(api, bound, host)
        server.app = create_app(console)
    return console, server


def serve(
    target: Target, port: int, host: str = "127.0.0.1", read_only: bool = False, say: Callable[[str], None] = print
) -> int:
    console, server = build(target, port, host, read_only)
    consolelink.write_state(console.url, target.name, console.api.read_only)
    mode = "read-only" if console.api.read_only else "start/stop executions allowed"
    say(f"console: {console.url}/  ({target.name} target, {target.region}, {mode}; Ctrl+C stops it)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        consolelink.clear_state(os.getpid())
    return 0


class Background:
    """A console serving in a thread (tests, benchmarks, screenshots)."""

    def __init__(self, target: Target, read_only: bool = False) -> None:
        self.console, self.server = build(target, 0, read_only=read_only)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return self.console.url

    def __enter__(self) -> Background:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
