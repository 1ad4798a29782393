"""The emulator server process: moto (server mode) with the scale-or-fail extensions.

Started by ``sof local up`` as ``python -m scaleorfail.emulator.server``. It binds
127.0.0.1 unless ``--allow-remote`` is given (and then every request must carry the
access token of :mod:`.auth`, from ``$SOF_EMULATOR_TOKEN``), writes its state file only
once it is listening, answers ``GET /_sof/health`` and stops cleanly on SIGTERM/SIGINT
(warm Lambda environments included). Each start is a new *instance* (its id is in the
state file and the health answer): run manifests and stack outputs record it, so a
restart - which loses every in-memory execution - is told apart from a missing one.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from scaleorfail.emulator import auth, browser, cpuwatch, gcpolicy, workdirs
from scaleorfail.emulator.identity import process_start
from scaleorfail.emulator.settings import PROFILES, TIMING_PROFILES, EmulatorSettings, resolve

LOOPBACK = ("127.0.0.1", "localhost", "::1")
EXIT_ADDRESS_IN_USE = 98  # the port was taken between `sof local up`'s check and the bind (a start race)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost: reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (OSError EADDRINUSE when another process holds it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    address = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)[0][4]
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(128)
    except OSError:
        listener.close()
        raise
    return listener


def state_file(state_dir: Path) -> Path:
    return state_dir / "emulator.json"


class Server:
    def __init__(self, settings: EmulatorSettings, state_dir: Path, token: str | None = None) -> None:
        self.settings = settings
        self.state_dir = state_dir
        self.token = token
        self.started = time.time()
        self.instance = secrets.token_hex(6)
        self.work_dir = workdirs.create(state_dir, self.instance)
        self._stop = threading.Event()
        self.http: Any = None
        self.runtime: Any = None
        self.guard = browser.BrowserGuard(settings.port, check_host=is_loopback(settings.host))
        self.cpu = cpuwatch.CpuWatch()
        self.gc: gcpolicy.FullCollections | None = None

    def health(self) -> dict[str, Any]:
        import moto

        from scaleorfail.emulator.moto_ext.stepfunctions.interpreter import PROGRAMS

        return {
            "status": "ok",
            "pid": os.getpid(),
            "instance": self.instance,
            "started": self.started,
            "uptime_s": round(time.time() - self.started, 1),
            "moto": moto.__version__,
            "token_required": self.token is not None,
            "settings": self.settings.to_json(),
            "timing": self.settings.timing_label,
            "lambda": self.runtime.stats() if self.runtime else {},
            "sagemaker": self._endpoint_stats(),
            "retention": self._retention_stats(),
            "refused": self.guard.stats(),
            "gc": asdict(self.gc.stats) if self.gc else {},
            "programs": dict(PROGRAMS),  # how executions got their parsed definitions (pooled, copied, parsed)
        }

    def cpu_window(self, query: str) -> tuple[str, dict[str, Any]]:
        """GET /_sof/cpu?start=&end= (epoch seconds): the server's CPU over that window (emulator/cpuwatch.py)."""
        from urllib.parse import parse_qs

        asked = parse_qs(query)
        try:
            start, end = float(asked["start"][0]), float(asked["end"][0])
            assert end >= start
        except (KeyError, ValueError, AssertionError):
            return "400 Bad Request", {"__type": "ValidationException", "message": "start and end: epoch seconds"}
        found = self.cpu.window(start, end)
        return "200 OK", {"window": found.to_json() if found else None}

    def _retention_stats(self) -> dict[str, Any]:
        if not self.runtime:
            return {}
        from scaleorfail.emulator import moto_ext

        return moto_ext.retention_stats()

    def _endpoint_stats(self) -> dict[str, Any]:
        if not self.runtime:
            return {}
        from scaleorfail.emulator import moto_ext

        return moto_ext.endpoint_runtime().stats()

    def wrap(self, app: WsgiApp) -> WsgiApp:
        """The browser door outermost, then the access token, then the control endpoints, then moto."""

        def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if self.token is not None and not auth.allowed(environ, self.token):
                status, headers, body = auth.denied()
                start_response(status, headers)
                return [body]
            if path.startswith("/_sof/") and environ.get("REQUEST_METHOD") != "GET" and not control_header(environ):
                body = json.dumps({"__type": "AccessDeniedException", "message": CONTROL_REFUSAL}).encode()
                start_response(
                    "403 Forbidden", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
                )
                return [body]
            if path == "/_sof/health":
                body = json.dumps(self.health()).encode()
                start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
                return [body]
            if path == "/_sof/cpu":
                status, answer = self.cpu_window(environ.get("QUERY_STRING", ""))
                body = json.dumps(answer).encode()
                start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
                return [body]
            if path == "/_sof/account-concurrency" and environ.get("REQUEST_METHOD") == "POST":
                from dataclasses import replace
                from urllib.parse import parse_qs

                query = parse_qs(environ.get("QUERY_STRING", ""))
                try:
                    value = int(query["value"][0])
                    assert value >= 1
                except (KeyError, ValueError, AssertionError):
                    start_response("400 Bad Request", [("Content-Type", "text/plain")])
                    return [b"value must be a whole number >= 1"]
                self.settings = replace(self.settings, account_concurrency=value)
                if self.runtime:
                    self.runtime.settings = replace(self.runtime.settings, account_concurrency=value)
                body = json.dumps({"account_concurrency": value}).encode()
                start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
                return [body]
            if path == "/_sof/reap" and environ.get("REQUEST_METHOD") == "POST":
                from scaleorfail.emulator import moto_ext

                count = moto_ext.reap_all() if self.runtime else 0
                body = json.dumps({"stopped": count}).encode()
                start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
                return [body]
            return app(environ, start_response)

        return self.guard.wrap(middleware)

    def run(self) -> int:
        os.environ["MOTO_PORT"] = str(self.settings.port)  # moto's own SDK calls reach this server
        # moto's own SDK calls (and the Lambda environments' AWS calls) present the token when one is required
        os.environ["AWS_ACCESS_KEY_ID"] = os.environ["SOF_ACCESS_KEY_ID"] = self.token or "test"
        os.environ["AWS_SECRET_ACCESS_KEY"] = "test"
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.setdefault("AWS_DEFAULT_REGION", self.settings.region)
        # moto's server wraps every service app in flask-cors, which echoes any Origin back in
        # Access-Control-Allow-Origin; its documented switch turns that off (checked below).
        os.environ["MOTO_DISABLE_GLOBAL_CORS"] = "true"
        from moto import settings as moto_settings
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication

        from scaleorfail.emulator import moto_ext
        from scaleorfail.emulator.httpserver import HttpServer

        if not moto_settings.DISABLE_GLOBAL_CORS:
            print("error: moto was imported before MOTO_DISABLE_GLOBAL_CORS was set; not starting", file=sys.stderr)
            return 2
        # Many threads each hold the GIL briefly (one per Map iteration and task): a shorter switch
        # interval cuts the time a woken thread waits for it (measured in `make bench`).
        sys.setswitchinterval(float(os.environ.get("SOF_SWITCH_INTERVAL_S", "0.001")))
        self.runtime = moto_ext.install(self.settings, self.work_dir)
        from scaleorfail.emulator import protocol

        app = protocol.wrap(DomainDispatcherApplication(moto_ext.dispatch.backend_app))
        try:  # bound here, not by the HTTP server: a lost race for the port is told apart
            listener = listen(self.settings.host, self.settings.port)
        except OSError as exc:
            print(f"error: cannot listen on {self.settings.host}:{self.settings.port}: {exc.strerror}", file=sys.stderr)
            moto_ext.shutdown()
            shutil.rmtree(self.work_dir, ignore_errors=True)  # a loser of a start race leaves nothing behind
            return EXIT_ADDRESS_IN_USE if exc.errno == errno.EADDRINUSE else 2
        self.http = HttpServer(self.wrap(app), listener)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        record: dict[str, Any] = {
            "pid": os.getpid(),
            "started": self.started,
            "process_start": process_start(),
            "instance": self.instance,
            "work_dir": str(self.work_dir),
            **self.settings.to_json(),
        }
        if self.token is not None:
            record["token"] = self.token
        write_private(state_file(self.state_dir), json.dumps(record, indent=2))
        print(f"scale-or-fail emulator listening on http://{self.settings.host}:{self.settings.port}", flush=True)
        if not is_loopback(self.settings.host):
            print(remote_warning(self.settings.host, self.settings.port), flush=True)
        from scaleorfail.emulator.moto_ext.stepfunctions.interpreter import SFN_THREADS

        runtimes = (self.runtime, moto_ext.endpoint_runtime())  # Lambda invocations, SageMaker requests
        self.gc = gcpolicy.FullCollections(lambda: SFN_THREADS.running > 0 or any(r.busy() for r in runtimes)).install()
        serving = threading.Thread(target=self.http.serve_forever, name="http", daemon=True)
        serving.start()
        self.cpu.start()
        self._stop.wait()
        self.http.shutdown()
        moto_ext.shutdown()
        self._remove_state_file()
        shutil.rmtree(self.work_dir, ignore_errors=True)
        return 0

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._stop.set()

    def _remove_state_file(self) -> None:  # only our own: a newer emulator may have replaced it
        path = state_file(self.state_dir)
        try:
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()
        except (OSError, ValueError):
            pass


CONTROL_HEADER = "X-Sof-Control"
CONTROL_REFUSAL = (
    f"the emulator's control endpoints take POST only with an {CONTROL_HEADER}: 1 header (a browser cannot send it "
    "cross-origin without a preflight, which the emulator refuses)"
)


def control_header(environ: dict[str, Any]) -> bool:
    return str(environ.get("HTTP_X_SOF_CONTROL") or "").strip() == "1"


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (the state file may hold the access token)."""
    temporary = path.with_name(path.name + f".tmp{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    temporary.replace(path)


def remote_warning(host: str, port: int) -> str:
    return (
        f"warning: the emulator listens on {host}:{port}, beyond this machine. Anyone who reaches that port and "
        "holds the access token can create and invoke Lambda functions - that is, run code on this machine as "
        f"{_user()}. The token travels in clear text (plain HTTP): use a trusted network or an SSH tunnel."
    )


def _user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return "the user running it"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the scale-or-fail AWS emulator in the foreground.")
    parser.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default 4566)")
    parser.add_argument("--profile", choices=list(PROFILES), default=None)
    parser.add_argument("--account-concurrency", type=int, default=None)
    parser.add_argument("--timing", choices=list(TIMING_PROFILES), default=None)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--allow-remote", action="store_true", help="allow binding a non-loopback address")
    args = parser.parse_args(argv)
    settings = resolve(
        profile=args.profile,
        timing=args.timing,
        port=args.port,
        host=args.host,
        account_concurrency=args.account_concurrency,
    )
    token = os.environ.pop(auth.ENV_VAR, "") or None
    if not is_loopback(settings.host):
        if not args.allow_remote:
            print(
                f"error: refusing to bind {settings.host}: only loopback is safe without --allow-remote",
                file=sys.stderr,
            )
            return 2
        if token is None or not auth.TOKEN_PATTERN.match(token):
            print(
                f"error: binding {settings.host} needs an access token in ${auth.ENV_VAR} (16-128 letters and digits)",
                file=sys.stderr,
            )
            return 2
    return Server(settings, args.state_dir, token).run()


if __name__ == "__main__":
    sys.exit(main())
