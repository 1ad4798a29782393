"""`sof local up | status | down`: run the emulator in the background, safely."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaleorfail.emulator.server import LOOPBACK, state_file
from scaleorfail.emulator.settings import ENV_VARS, TIMING_ENV_VAR, EmulatorSettings
from scaleorfail.errors import UserError

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


@dataclass
class Running:
    pid: int
    host: str
    port: int
    record: dict[str, Any]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours is not alive
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def health(url: str, timeout: float = 2.0) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{url}/_sof/health", timeout=timeout) as response:
            return dict(json.loads(response.read()))
    except (urllib.error.URLError, OSError, ValueError):
        return None


def read_state(state_dir: Path) -> Running | None:
    path = state_file(state_dir)
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
        return Running(int(record["pid"]), str(record["host"]), int(record["port"]), record)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def running(state_dir: Path) -> Running | None:
    """The emulator this checkout started, if it is alive (removing a stale state file)."""
    current = read_state(state_dir)
    if current is None:
        if state_file(state_dir).exists():
            state_file(state_dir).unlink()
        return None
    if not pid_alive(current.pid):
        state_file(state_dir).unlink(missing_ok=True)
        print(f"note: removed a stale emulator state file (pid {current.pid} is gone)", file=sys.stderr)
        return None
    return current


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def up(settings: EmulatorSettings, state_dir: Path, log_path: Path, allow_remote: bool = False) -> Running:
    current = running(state_dir)
    if current is not None:
        same = all(current.record.get(k) == v for k, v in settings.to_json().items())
        if same and health(current.url):
            print(f"the emulator is already running at {current.url} (pid {current.pid})")
            return current
        raise UserError(
            f"an emulator with other settings is already running at {current.url} (pid {current.pid})",
            "run `sof local down` first, then `sof local up` with the new settings",
        )
    if settings.host not in LOOPBACK and not allow_remote:
        raise UserError(
            f"refusing to bind {settings.host}: the emulator has no authentication",
            "keep the default 127.0.0.1, or pass --allow-remote on a trusted network",
        )
    if port_in_use("127.0.0.1" if settings.host in LOOPBACK else settings.host, settings.port):
        raise UserError(
            f"port {settings.port} is already in use by another program",
            f"stop that program or choose another port: sof local up --port {settings.port + 1}",
        )
    state_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "scaleorfail.emulator.server",
        "--state-dir",
        str(state_dir),
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--profile",
        settings.profile,
        "--account-concurrency",
        str(settings.account_concurrency),
    ]
    if allow_remote:
        command.append("--allow-remote")
    env = dict(os.environ)
    env.update({name: str(getattr(settings, field)) for name, (field, _) in ENV_VARS.items()})
    env[TIMING_ENV_VAR] = settings.timing
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
    url = f"http://{'127.0.0.1' if settings.host in LOOPBACK else settings.host}:{settings.port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            raise UserError(f"the emulator exited during start-up: {' / '.join(tail)}", f"see {log_path}")
        if health(url, timeout=1.0):
            current = read_state(state_dir)
            if current is not None:
                return current
        time.sleep(0.1)
    process.kill()
    raise UserError(f"the emulator did not answer within {START_TIMEOUT_S:g} s", f"see {log_path}")


def set_account_concurrency(url: str, value: int) -> int:
    """Change the running emulator's Lambda account concurrency limit (the sandbox has 10)."""
    request = urllib.request.Request(f"{url}/_sof/account-concurrency?value={value}", method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        return int(json.loads(response.read())["account_concurrency"])


def down(state_dir: Path) -> bool:
    """Stop the emulator and its Lambda environments; False if none was running."""
    current = running(state_dir)
    if current is None:
        return False
    info = health(current.url) or {}
    worker_pids = list(info.get("lambda", {}).get("pids", []))
    os.kill(current.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline and pid_alive(current.pid):
        time.sleep(0.05)
    if pid_alive(current.pid):
        os.kill(current.pid, signal.SIGKILL)
    for pid in worker_pids:  # normally already stopped by the server itself
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    state_file(state_dir).unlink(missing_ok=True)
    return True
