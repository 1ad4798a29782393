"""`sof local up | status | down`: processes, ports, pid files, loopback only."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import waiting
from emulator_support import free_port

from scaleorfail.emulator import control, identity

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def sof(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SOF_STATE_DIR": str(state), "SOF_COLD_START_MS": "0"}
    return waiting.run([sys.executable, "-m", "scaleorfail.cli", *args], env=env, cwd=ROOT)


def listening_addresses(port: int) -> set[str]:
    """Local addresses in LISTEN state on a port, from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if int(port_hex, 16) == port and fields[3] == "0A":
                found.add(address)
    return found


def test_up_status_down_leaves_nothing_running(tmp_path: Path) -> None:
    port = free_port()
    started = sof(tmp_path, "local", "up", "--port", str(port))
    assert started.returncode == 0, started.stderr
    assert f"http://127.0.0.1:{port}" in started.stdout
    record = json.loads((tmp_path / "emulator.json").read_text())
    assert identity.alive(record["pid"])
    assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1 only, nothing on other interfaces
    status = sof(tmp_path, "local", "status")
    assert status.returncode == 0 and "account concurrency 1000" in status.stdout
    # the calibrated profile is the default; a knob set alone (SOF_COLD_START_MS=0 here) shows as custom
    shown = " ".join(status.stdout.split())  # wrapped to the terminal
    assert "timing aws+custom (history write 7 ms" in shown and "cold start 0 ms" in shown
    assert "quotas: StartExecution 1,300 burst / 300 per s published" in shown

    # Put a warm Lambda environment in it, so that `down` has worker processes to stop.
    from emulator_support import Emulator, deploy, run, tickets

    from scaleorfail.emulator.settings import EmulatorSettings

    os.environ["SOF_STATE_DIR"] = str(tmp_path)
    try:
        emulator = Emulator(EmulatorSettings(port=port), tmp_path, f"http://127.0.0.1:{port}")
        outputs = deploy(emulator)
        assert run(emulator, outputs, {"tickets": tickets(2)})["status"] == "SUCCEEDED"
        workers = control.health(emulator.url)["lambda"]["pids"]  # type: ignore[index]
        assert len(workers) >= 3
    finally:
        os.environ.pop("SOF_STATE_DIR", None)

    again = sof(tmp_path, "local", "up", "--port", str(port))
    assert again.returncode == 0 and "already running" in again.stdout

    stopped = sof(tmp_path, "local", "down")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    # `down` waits for the server; its workers are reaped as they exit
    waiting.wait_for(
        lambda: not identity.alive(record["pid"]) and not any(identity.alive(p) for p in workers),
        "the end of the server and its workers",
        pids=[record["pid"], *workers],
    )
    assert not identity.alive(record["pid"])
    assert [pid for pid in workers if identity.alive(pid)] == []
    assert not (tmp_path / "emulator.json").exists()
    assert listening_addresses(port) == set()
    assert sof(tmp_path, "local", "status").returncode == 3

    restarted = sof(tmp_path, "local", "up", "--port", str(port), "--profile", "sandbox", "--timing", "ideal")
    assert restarted.returncode == 0 and "account concurrency 10" in restarted.stdout
    assert "timing ideal (history write 0 ms" in restarted.stdout
    assert "timing ideal" in sof(tmp_path, "local", "status").stdout
    assert sof(tmp_path, "local", "down").returncode == 0


def test_a_second_up_with_other_settings_is_refused_clearly(tmp_path: Path) -> None:
    port = free_port()
    assert sof(tmp_path, "local", "up", "--port", str(port)).returncode == 0
    try:
        other = sof(tmp_path, "local", "up", "--port", str(port), "--account-concurrency", "5")
        assert other.returncode == 2
        assert "already running" in other.stderr and "sof local down" in other.stderr
        assert "Traceback" not in other.stderr
    finally:
        sof(tmp_path, "local", "down")


def test_a_port_in_use_gets_a_clear_message(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = sof(tmp_path, "local", "up", "--port", str(port))
    assert result.returncode == 2
    assert f"cannot listen on port {port}: address already in use" in result.stderr and "--port" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_stale_pid_file_is_cleaned_up(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "emulator.json").write_text(json.dumps({"pid": dead.pid, "host": "127.0.0.1", "port": 1}))
    status = sof(tmp_path, "local", "status")
    assert status.returncode == 3 and "stale" in status.stderr
    assert not (tmp_path / "emulator.json").exists()
    port = free_port()
    assert sof(tmp_path, "local", "up", "--port", str(port)).returncode == 0
    assert sof(tmp_path, "local", "down").returncode == 0


def test_binding_a_public_address_needs_an_explicit_flag(tmp_path: Path) -> None:
    result = sof(tmp_path, "local", "up", "--host", "0.0.0.0", "--port", str(free_port()))
    assert result.returncode == 2
    assert "refusing to bind 0.0.0.0" in result.stderr and "--allow-remote" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["local", "up", "--port", "0"], "must be at least 1"),
        (["local", "up", "--port", "70000"], "not a port number"),
        (["local", "up", "--profile", "huge"], "invalid choice"),
        (["local", "up", "--account-concurrency", "ten"], "not a whole number"),
        (["invoke-one", "--max-concurrency", "41"], "above 40"),
        (["invoke-one", "-n", "0"], "must be at least 1"),
    ],
)
def test_bad_arguments_get_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = sof(tmp_path, *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_commands_that_need_the_emulator_say_how_to_start_it(tmp_path: Path) -> None:
    for args in (["deploy", "--target", "local"], ["invoke-one"], ["bad-input"]):
        result = sof(tmp_path, *args)
        assert result.returncode == 2
        assert "the local emulator is not running" in result.stderr and "`make local-up`" in result.stderr


def test_commands_that_need_a_deployment_say_deploy_first(tmp_path: Path) -> None:
    port = free_port()
    assert sof(tmp_path, "local", "up", "--port", str(port)).returncode == 0
    try:
        result = sof(tmp_path, "invoke-one")
        assert result.returncode == 2
        assert "deploy first: make deploy TARGET=local" in result.stderr
        bad_var = sof(tmp_path, "deploy", "--target", "local", "--var", "default_max_concurrency=99")
        assert bad_var.returncode == 2 and "between 1 and 40" in bad_var.stderr
        unknown = sof(tmp_path, "deploy", "--target", "local", "--var", "max_concurency=3")
        assert unknown.returncode == 2 and "no variable named max_concurency" in unknown.stderr
    finally:
        sof(tmp_path, "local", "down")


def test_three_ups_on_one_port_at_once_one_wins_the_others_say_address_in_use_and_leave_nothing(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {**os.environ, "SOF_STATE_DIR": str(tmp_path), "SOF_COLD_START_MS": "0"}
    racers = [
        subprocess.Popen(
            [sys.executable, "-m", "scaleorfail.cli", "local", "up", "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for _ in range(3)
    ]
    try:
        outcomes = [(racer.wait(), *racer.communicate()) for racer in racers]  # each ends on its own: up or refused
        winners = [o for o in outcomes if o[0] == 0 and "emulator up at" in o[1]]
        assert len(winners) == 1, outcomes
        for code, out, err in outcomes:
            if (code, out, err) in winners:
                continue
            said = out + err
            # a loser that started after the winner wrote its state file is told it is running (exit 0);
            # one that raced it to the bind says why it lost
            assert "address already in use" in said or "already running" in said, said
            assert "GET /" not in said and "HTTP/1.1" not in said and "Traceback" not in said, said
        state = json.loads((tmp_path / "emulator.json").read_text())
        work = sorted(p.name for p in (tmp_path / "work").iterdir())
        assert work == [state["instance"]], work  # no orphan work folder from the losers
        assert control.health(f"http://127.0.0.1:{port}") is not None
    finally:
        assert sof(tmp_path, "local", "down").returncode == 0
