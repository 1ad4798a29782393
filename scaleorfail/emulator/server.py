"""The emulator server process: moto (server mode) with the scale-or-fail extensions.

Started by ``sof local up`` as ``python -m scaleorfail.emulator.server``. It binds
127.0.0.1 unless ``--allow-remote`` is given, writes its state file only once it is
listening, answers ``GET /_sof/health`` and stops cleanly on SIGTERM/SIGINT (warm Lambda
environments included).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from scaleorfail.emulator.settings import PROFILES, TIMING_PROFILES, EmulatorSettings, resolve

LOOPBACK = ("127.0.0.1", "localhost", "::1")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def state_file(state_dir: Path) -> Path:
    return state_dir / "emulator.json"


class Server:
    def __init__(self, settings: EmulatorSettings, state_dir: Path) -> None:
        self.settings = settings
        self.state_dir = state_dir
        self.started = time.time()
        self.work_dir = Path(tempfile.mkdtemp(prefix="sof-emulator-"))
        self._stop = threading.Event()
        self.http: Any = None
        self.runtime: Any = None

    def health(self) -> dict[str, Any]:
        import moto

        return {
            "status": "ok",
            "pid": os.getpid(),
            "uptime_s": round(time.time() - self.started, 1),
            "moto": moto.__version__,
            "settings": self.settings.to_json(),
            "timing": self.settings.timing_label,
            "lambda": self.runtime.stats() if self.runtime else {},
            "sagemaker": self._endpoint_stats(),
        }

    def _endpoint_stats(self) -> dict[str, Any]:
        if not self.runtime:
            return {}
        from scaleorfail.emulator import moto_ext

        return moto_ext.endpoint_runtime().stats()

    def wrap(self, app: WsgiApp) -> WsgiApp:
        def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path == "/_sof/health":
                body = json.dumps(self.health()).encode()
                start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
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

        return middleware

    def run(self) -> int:
        os.environ["MOTO_PORT"] = str(self.settings.port)  # moto's own SDK calls reach this server
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
        os.environ.setdefault("AWS_DEFAULT_REGION", self.settings.region)
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        from scaleorfail.emulator import moto_ext

        # Many threads each hold the GIL briefly (one per Map iteration and task): a shorter switch
        # interval cuts the time a woken thread waits for it (measured in `make bench`).
        sys.setswitchinterval(float(os.environ.get("SOF_SWITCH_INTERVAL_S", "0.001")))
        self.runtime = moto_ext.install(self.settings, self.work_dir)
        from scaleorfail.emulator import protocol

        app = protocol.wrap(DomainDispatcherApplication(create_backend_app))
        try:
            self.http = make_server(self.settings.host, self.settings.port, self.wrap(app), threaded=True)
        except OSError as exc:
            print(f"error: cannot listen on {self.settings.host}:{self.settings.port}: {exc.strerror}", file=sys.stderr)
            moto_ext.shutdown()
            return 2
        self.http.daemon_threads = True
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        record = {"pid": os.getpid(), "started": self.started, **self.settings.to_json()}
        state_file(self.state_dir).write_text(json.dumps(record, indent=2))
        print(f"scale-or-fail emulator listening on http://{self.settings.host}:{self.settings.port}", flush=True)
        serving = threading.Thread(target=self.http.serve_forever, name="http", daemon=True)
        serving.start()
        self._stop.wait()
        self.http.shutdown()
        moto_ext.shutdown()
        self._remove_state_file()
        shutil.rmtree(self.work_dir, ignore_errors=True)
        return 0

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._stop.set()

    def _remove_state_file(self) -> None:
        path = state_file(self.state_dir)
        try:
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()
        except (OSError, ValueError):
            pass


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
    if settings.host not in LOOPBACK and not args.allow_remote:
        print(f"error: refusing to bind {settings.host}: the emulator has no authentication", file=sys.stderr)
        return 2
    return Server(settings, args.state_dir).run()


if __name__ == "__main__":
    sys.exit(main())
