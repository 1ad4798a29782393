"""Lambda environments forked by the runtime's fork server, held against environments exec'd afresh.

Each test drives real worker processes through the worker's own protocol: what a handler sees (its
environment variables, folder, time zone, arguments), how an environment ends (its status, a kill, its
stdin closed), and what happens when the fork server is stopped, killed, or cannot start.
"""

from __future__ import annotations

import io
import json
import os
import signal
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import waiting
from emulator_support import running_emulator

from scaleorfail.emulator import control, zygote
from scaleorfail.emulator.settings import resolve
from scaleorfail.emulator.zygote import Spawner, SpawnError, WorkerProcess
from scaleorfail.errors import UserError

HANDLER = """
import os, sys, time

print("imported", flush=True)

def handler(event, context):
    if "exit" in event:
        sys.exit(event["exit"])
    if "sleep" in event:
        time.sleep(event["sleep"])
    return {
        "name": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"), "tz": time.strftime("%Z"), "cwd": os.getcwd(),
        "argv": sys.argv, "session_leader": os.getsid(0) == os.getpid(), "path0": sys.path[0],
        "secret": os.environ.get("SOF_TEST_SECRET"),
    }
"""


@pytest.fixture
def code(tmp_path: Path) -> Path:
    (tmp_path / "fn.py").write_text(HANDLER)
    return tmp_path


def environment(code: Path) -> dict[str, str]:
    return {
        **zygote.RUNTIME_ENV,
        "LAMBDA_TASK_ROOT": str(code),
        "_HANDLER": "fn.handler",
        "AWS_LAMBDA_FUNCTION_NAME": "f",
    }


@pytest.fixture(params=["fork", "exec"])
def spawner(request: pytest.FixtureRequest) -> Iterator[Spawner]:
    made = Spawner(request.param)
    try:
        yield made
    finally:
        made.close()


def ready(process: WorkerProcess) -> dict[str, Any]:
    assert process.stdout is not None
    return dict(json.loads(process.stdout.readline()))


def invoke(process: WorkerProcess, event: dict[str, Any]) -> bytes:
    assert process.stdin is not None and process.stdout is not None
    request = {"request_id": "r-1", "event": event, "deadline_ms": time.time() * 1000 + 60_000}
    process.stdin.write(json.dumps(request).encode() + b"\n")
    process.stdin.flush()
    return process.stdout.readline()


def test_a_handler_sees_the_same_environment_forked_or_exec_d(spawner: Spawner, code: Path) -> None:
    os.environ["SOF_TEST_SECRET"] = "the emulator's own"  # the parent's variables never reach a function
    try:
        process = spawner(environment(code), code)
    finally:
        del os.environ["SOF_TEST_SECRET"]
    try:
        started = ready(process)
        assert started["ready"] is True and started["output"] == "imported\n"
        answer = json.loads(invoke(process, {}))
        assert answer["ok"] is True and answer["output"] == ""
        assert answer["result"] == {
            "name": "f",
            "tz": "UTC",
            "cwd": str(code),  # the task root (what a handler returns is its own: not scrubbed)
            "argv": [str(zygote.WORKER)],
            "session_leader": True,
            "path0": str(code),
            "secret": None,
        }
    finally:
        process.kill()
        process.wait(10)


@pytest.mark.parametrize(
    ("how", "status"), [("exit 3", 3), ("exit 0", 0), ("killed", -signal.SIGKILL), ("stdin closed", 0)]
)
def test_an_environment_ends_with_the_status_a_fresh_process_would(
    spawner: Spawner, code: Path, how: str, status: int
) -> None:
    process = spawner(environment(code), code)
    ready(process)
    if how.startswith("exit"):
        assert invoke(process, {"exit": int(how.split()[1])}) == b""  # it ended instead of answering
    elif how == "killed":
        process.kill()
    else:
        assert process.stdin is not None
        process.stdin.close()
    assert process.wait(10) == status
    assert process.poll() == status
    process.kill()  # a process already ended is left alone
    assert process.wait(1) == status


def test_a_killed_environment_mid_invocation_ends_at_once(spawner: Spawner, code: Path) -> None:
    process = spawner(environment(code), code)
    ready(process)
    assert process.stdin is not None
    request = {"request_id": "r", "event": {"sleep": 60}, "deadline_ms": time.time() * 1000 + 90_000}
    process.stdin.write(json.dumps(request).encode() + b"\n")
    process.stdin.flush()
    began = time.monotonic()
    process.kill()
    assert process.wait(10) == -signal.SIGKILL and time.monotonic() - began < 10


def test_stopping_the_fork_server_ends_its_environments(code: Path) -> None:
    spawner = Spawner("fork")
    processes = [spawner(environment(code), code) for _ in range(3)]
    for process in processes:
        ready(process)
    server = spawner.pid
    assert server is not None and spawner.mode == "fork"
    assert {p.pid for p in psutil.Process(server).children()} == {p.pid for p in processes}
    spawner.close()
    for process in processes:
        assert process.wait(10) == -signal.SIGKILL
    waiting.wait_for(
        lambda: not any(waiting.running(pid) for pid in (server, *(p.pid for p in processes))), "their end"
    )


def test_a_fork_server_that_died_is_replaced_and_its_environments_end(code: Path) -> None:
    spawner = Spawner("fork")
    try:
        orphan = spawner(environment(code), code)
        ready(orphan)
        first = spawner.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        assert orphan.wait(10) == -signal.SIGKILL  # reported ended: the runtime will not reuse it
        orphan.kill()
        assert orphan.stdin is not None
        orphan.stdin.close()  # what Environment.kill does next: the orphan reads EOF and ends
        waiting.wait_for(lambda: not waiting.running(orphan.pid), "the orphan's end")
        process = spawner(environment(code), code)
        assert ready(process)["ready"] is True
        assert spawner.pid not in (None, first)
        assert json.loads(invoke(process, {}))["ok"] is True
    finally:
        spawner.close()


def test_where_the_fork_server_cannot_start_environments_are_exec_d(
    code: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Any) -> None:
        raise SpawnError("the Lambda runtime's fork server did not start: test")

    monkeypatch.setattr(zygote.Zygote, "__init__", broken)
    spawner = Spawner("fork")
    process = spawner(environment(code), code)
    try:
        assert ready(process)["ready"] is True
        assert spawner.mode == "exec" and spawner.pid is None
        assert json.loads(invoke(process, {}))["result"]["name"] == "f"
    finally:
        process.kill()
        process.wait(10)
        spawner.close()


def test_a_forked_start_costs_a_fraction_of_a_fresh_interpreter(code: Path) -> None:
    """The feature itself: CPU per environment start, both ways side by side (a ratio, generous margin)."""
    costs: dict[str, float] = {}
    for mode in ("fork", "exec"):
        spawner = Spawner(mode)
        spawner(environment(code), code).kill()  # the fork server's own start is not an environment's
        before = psutil.Process().cpu_times()
        children_before = _tree_cpu(spawner)
        processes = [spawner(environment(code), code) for _ in range(8)]
        for process in processes:
            ready(process)
        spent = _tree_cpu(spawner) + sum(_cpu(p.pid) for p in processes) - children_before
        own = psutil.Process().cpu_times()
        costs[mode] = spent + (own.user + own.system - before.user - before.system)
        for process in processes:
            process.kill()
            process.wait(10)
        spawner.close()
    assert costs["fork"] < costs["exec"] / 2, costs


def _cpu(pid: int) -> float:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


def _tree_cpu(spawner: Spawner) -> float:
    return _cpu(spawner.pid) if spawner.pid is not None else 0.0


@pytest.mark.parametrize("mode", ["fork", "exec"])
def test_the_emulator_starts_environments_as_sof_lambda_spawn_says(tmp_path: Path, mode: str) -> None:
    """Through the Lambda API: the same answers either way; /_sof/health says how environments start, and
    in fork mode the environments are the fork server's children, which stops with the emulator."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("fn.py", HANDLER)
    with running_emulator(tmp_path / "state", lambda_spawn=mode) as emulator:
        lam = emulator.client("lambda")
        role = emulator.client("iam").create_role(RoleName="z", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        lam.create_function(
            FunctionName="z", Runtime="python3.12", Role=role, Handler="fn.handler", Code={"ZipFile": buffer.getvalue()}
        )
        answers = [json.loads(lam.invoke(FunctionName="z", Payload=b"{}")["Payload"].read()) for _ in range(2)]
        assert answers[0] == answers[1] and answers[0]["name"] == "z" and answers[0]["tz"] == "UTC"
        with urllib.request.urlopen(f"{emulator.url}/_sof/health", timeout=10) as response:
            runtime = json.loads(response.read())["lambda"]
        assert runtime["spawn"] == mode and runtime["cold_starts"] == 1 and len(runtime["pids"]) == 1
        parent = psutil.Process(runtime["pids"][0]).ppid()
        if mode == "fork":
            assert parent == runtime["fork_server"]
            server = psutil.Process(runtime["fork_server"])
        else:
            state = control.read_state(emulator.state_dir)
            assert state is not None and runtime["fork_server"] is None and parent == state.pid
    gone = [runtime["pids"][0], *([server.pid] if mode == "fork" else [])]
    waiting.wait_for(lambda: not any(waiting.running(pid) for pid in gone), "the environments' end with the emulator")


def test_sof_lambda_spawn_is_fork_or_exec() -> None:
    assert resolve(environ={}).lambda_spawn == "fork"
    assert resolve(environ={"SOF_LAMBDA_SPAWN": "exec"}).lambda_spawn == "exec"
    with pytest.raises(UserError, match="SOF_LAMBDA_SPAWN='vfork' is not a way to start Lambda environments"):
        resolve(environ={"SOF_LAMBDA_SPAWN": "vfork"})
