"""`sof local up | status | down`: run the emulator in the background, safely.

The state file (`.sof/emulator.json`, readable by its owner only) names the process by
pid *and* start time; a record whose pid now belongs to another process is stale, and
nothing is ever signalled on the strength of a pid alone.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaleorfail.emulator import auth, workdirs
from scaleorfail.emulator.identity import why_not_emulator
from scaleorfail.emulator.server import EXIT_ADDRESS_IN_USE, is_loopback, remote_warning, state_file
from scaleorfail.emulator.settings import ENV_VARS, TIMING_ENV_VAR, EmulatorSettings
from scaleorfail.errors import UserError
from scaleorfail.terminal import hint

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

    @property
    def local_url(self) -> str:
        """The URL to reach it from this machine (loopback when it listens on all interfaces)."""
        host = "127.0.0.1" if is_loopback(self.host) or self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    @property
    def token(self) -> str | None:
        value = self.record.get("token")
        return str(value) if value else None

    @property
    def instance(self) -> str | None:
        value = self.record.get("instance")
        return str(value) if value else None


def _request(url: str, token: str | None, method: str = "GET") -> urllib.request.Request:
    request = urllib.request.Request(url, method=method)
    if method != "GET":
        request.add_header("X-Sof-Control", "1")  # the control endpoints refuse POSTs without it (server.py)
    if token:
        request.add_header(auth.HEADER, token)
    return request


def health(url: str, timeout: float = 2.0, token: str | None = None) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(_request(f"{url}/_sof/health", token), timeout=timeout) as response:
            return dict(json.loads(response.read()))
    except (urllib.error.URLError, OSError, ValueError):
        return None


def cpu_window(
    url: str, start: float, end: float, token: str | None = None, timeout: float = 5.0
) -> dict[str, Any] | None:
    """The emulator server's CPU over [start, end] (epoch seconds), emulator/cpuwatch.py; None: not known."""
    query = urllib.parse.urlencode({"start": f"{start:.3f}", "end": f"{end:.3f}"})
    try:
        with urllib.request.urlopen(_request(f"{url}/_sof/cpu?{query}", token), timeout=timeout) as response:
            found = json.loads(response.read()).get("window")
    except (urllib.error.URLError, OSError, ValueError, AttributeError):
        return None
    return dict(found) if isinstance(found, dict) else None


def probe(url: str, timeout: float = 2.0, token: str | None = None) -> tuple[str, dict[str, Any] | None]:
    """("ok", health) | ("refused", None): nothing listens | ("denied", None): the token is refused |
    ("silent", None): no (usable) answer in time."""
    try:
        with urllib.request.urlopen(_request(f"{url}/_sof/health", token), timeout=timeout) as response:
            return "ok", dict(json.loads(response.read()))
    except urllib.error.HTTPError as error:
        return ("denied", None) if error.code in (401, 403) else ("silent", None)
    except urllib.error.URLError as error:
        return ("refused", None) if isinstance(error.reason, ConnectionRefusedError) else ("silent", None)
    except ConnectionRefusedError:
        return "refused", None
    except (OSError, ValueError):
        return "silent", None


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
    problem = why_not_emulator(current.pid, current.record.get("process_start"))
    if problem is not None:
        state_file(state_dir).unlink(missing_ok=True)
        workdirs.remove_stale(state_dir)
        print(f"note: removed a stale emulator state file ({problem})", file=sys.stderr)
        return None
    return current


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def access_token(allow_remote: bool, host: str) -> str | None:
    """The token the new emulator will require: $SOF_EMULATOR_TOKEN, or a fresh one beyond loopback."""
    given = os.environ.get(auth.ENV_VAR, "").strip()
    if given and not auth.TOKEN_PATTERN.match(given):
        raise UserError(f"${auth.ENV_VAR} must be 16-128 letters and digits", f"unset it, or e.g. {auth.new_token()}")
    if given:
        return given
    return None if is_loopback(host) else auth.new_token()


def address_in_use(port: int) -> UserError:
    return UserError(
        f"cannot listen on port {port}: address already in use (another program, or another emulator started at "
        "the same moment)",
        f"{hint('sof local status')} shows whether it is this checkout's emulator; else choose another port: "
        f"{hint(f'sof local up --port {port + 1}')}",
    )


def up(settings: EmulatorSettings, state_dir: Path, log_path: Path, allow_remote: bool = False) -> Running:
    current = running(state_dir)
    if current is not None:
        same = all(current.record.get(k) == v for k, v in settings.to_json().items())
        if same and health(current.local_url, token=current.token):
            print(f"the emulator is already running at {current.url} (pid {current.pid})")
            return current
        raise UserError(
            f"an emulator with other settings is already running at {current.url} (pid {current.pid})",
            f"run {hint('sof local down')} first, then {hint('sof local up')} with the new settings",
        )
    if not is_loopback(settings.host) and not allow_remote:
        raise UserError(
            f"refusing to bind {settings.host}: anyone who reaches it could run code on this machine",
            "keep the default 127.0.0.1, or pass --allow-remote (an access token is then required; "
            "see docs/emulator.md)",
        )
    token = access_token(allow_remote, settings.host)
    probe_host = "127.0.0.1" if is_loopback(settings.host) or settings.host in ("0.0.0.0", "::") else settings.host
    if port_in_use(probe_host, settings.port):
        raise address_in_use(settings.port)
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
    env.pop(auth.ENV_VAR, None)
    if token is not None:
        env[auth.ENV_VAR] = token  # through the environment: a command line is visible to every user
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
    url = f"http://{probe_host}:{settings.port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            if process.returncode == EXIT_ADDRESS_IN_USE:  # another start took the port between check and bind
                raise address_in_use(settings.port)
            tail = [line for line in log_path.read_text(errors="replace").strip().splitlines() if "error" in line]
            raise UserError(
                f"the emulator exited during start-up: {' / '.join(tail[-3:]) or 'no error line'}", f"see {log_path}"
            )
        if health(url, timeout=1.0, token=token):
            current = read_state(state_dir)
            if current is not None and current.pid == process.pid:
                if not is_loopback(settings.host):
                    print(remote_warning(settings.host, settings.port), file=sys.stderr)
                    print(
                        f"access token: {token} - clients present it as their AWS access key id "
                        f"(AWS_ACCESS_KEY_ID={token}) or in an {auth.HEADER} header; sof's own commands read it "
                        f"from {state_file(state_dir)}",
                        file=sys.stderr,
                    )
                return current
        time.sleep(0.1)
    process.kill()
    raise UserError(f"the emulator did not answer within {START_TIMEOUT_S:g} s", f"see {log_path}")


def set_account_concurrency(url: str, value: int, token: str | None = None) -> int:
    """Change the running emulator's Lambda account concurrency limit (the sandbox has 10)."""
    request = _request(f"{url}/_sof/account-concurrency?value={value}", token, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        return int(json.loads(response.read())["account_concurrency"])


def reap(url: str, token: str | None = None) -> int:
    """Stop every idle Lambda environment and endpoint container now (the next invocations start cold)."""
    with urllib.request.urlopen(_request(f"{url}/_sof/reap", token, method="POST"), timeout=10) as response:
        return int(json.loads(response.read()).get("stopped", 0))


def down(state_dir: Path) -> bool:
    """Stop the emulator and its Lambda environments; False if none was running."""
    current = running(state_dir)
    if current is None:
        return False
    info = health(current.local_url, token=current.token) or {}
    lambda_info = info.get("lambda", {})
    worker_pids = [
        *lambda_info.get("pids", []),
        *([lambda_info["fork_server"]] if lambda_info.get("fork_server") else []),
    ]
    started = current.record.get("process_start")
    if why_not_emulator(current.pid, started) is None:  # checked again right before signalling
        os.kill(current.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline and why_not_emulator(current.pid, started) is None:
        time.sleep(0.05)
    if why_not_emulator(current.pid, started) is None:
        os.kill(current.pid, signal.SIGKILL)
    for pid in worker_pids:  # normally already stopped by the server itself
        if _is_worker(pid):
            os.kill(pid, signal.SIGKILL)
    state_file(state_dir).unlink(missing_ok=True)
    workdirs.remove_stale(state_dir)
    return True


def _is_worker(pid: int) -> bool:
    """pid is (still) one of the emulator's Lambda or endpoint worker processes."""
    import psutil

    try:
        return any(part.endswith("emulator/worker.py") for part in psutil.Process(pid).cmdline())
    except (psutil.Error, OSError):
        return False
