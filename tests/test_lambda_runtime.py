"""The Lambda runtime's environment pool, driven directly: at the emulator's cap on environments an invocation
waits for one (its own function's, or room made by shutting the oldest idle one down, in the background), and
new code retires the old code's idle environments."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import waiting

from scaleorfail.emulator import runtime as runtime_module
from scaleorfail.emulator.runtime import Datum, FunctionSpec, LambdaRuntime, ThrottledError
from scaleorfail.emulator.settings import resolve

HANDLER = (
    "import os, time\n\ndef handler(event, context):\n    time.sleep(event.get('sleep', 0))\n    return os.getpid()\n"
)


class Discard:
    """A sink that keeps nothing: these tests read the runtime, not CloudWatch."""

    def log_events(self, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        pass

    def metrics(self, namespace: str, data: list[Datum]) -> None:
        pass


def spec(name: str, source: str = HANDLER) -> FunctionSpec:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("fn.py", source)
    code = buffer.getvalue()
    return FunctionSpec(
        name=name,
        arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        version="$LATEST",
        handler="fn.handler",
        runtime="python3.12",
        memory_mb=128,
        timeout_s=30,
        environment={},
        code_sha256=hashlib.sha256(code).hexdigest(),
        reserved_concurrency=None,
        code=code,
    )


@pytest.fixture
def runtime(tmp_path: Path) -> Any:
    settings = replace(resolve(timing="ideal", environ={}), max_environments=1)
    made = LambdaRuntime(settings, Discard(), dict, tmp_path)
    try:
        yield made
    finally:
        made.shutdown()


def pid_of(runtime: LambdaRuntime, function: FunctionSpec, event: dict[str, Any] | None = None) -> int:
    return int(runtime.invoke(function, json.dumps(event or {}).encode()).body)


def test_at_the_cap_the_oldest_idle_environment_makes_room(runtime: LambdaRuntime) -> None:
    first = pid_of(runtime, spec("a"))
    second = pid_of(runtime, spec("b"))  # the cap is 1: a's idle environment is shut down for b's
    assert second != first
    waiting.wait_for(lambda: not waiting.running(first), "the retired environment's end")
    assert runtime.stats()["environments"] == 1 and runtime.stats()["cold_starts"] == 2
    assert pid_of(runtime, spec("b")) == second  # b's stays warm


def in_flight(runtime: LambdaRuntime, function: FunctionSpec, sleep_s: float) -> tuple[threading.Thread, list[Any]]:
    """An invocation of `function` running sleep_s on its own thread; its environment's pid and the moment it
    returned, once it has."""
    found: list[Any] = []
    thread = threading.Thread(
        target=lambda: found.extend([pid_of(runtime, function, {"sleep": sleep_s}), time.monotonic()])
    )
    thread.start()
    waiting.wait_for(lambda: runtime.stats()["busy"], f"{function.name}'s invocation running")
    return thread, found


def test_at_the_cap_an_invocation_waits_for_its_own_functions_environment(runtime: LambdaRuntime) -> None:
    """Its function has an invocation in flight: it waits for that environment (warm), neither shutting another
    down nor being throttled - the cap is the emulator's, not Lambda's."""
    thread, first = in_flight(runtime, spec("a"), 1.5)
    second = pid_of(runtime, spec("a"))
    returned = time.monotonic()
    thread.join()
    assert second == first[0] and returned >= first[1]  # a's environment, once a's invocation had ended
    stats = runtime.stats()
    assert stats["cold_starts"] == 1 and stats["cap_waits"] == 1 and stats["cap_wait_s"] > 0


def test_at_the_cap_with_nothing_idle_an_invocation_waits_for_room(runtime: LambdaRuntime) -> None:
    thread, first = in_flight(runtime, spec("a"), 1.5)
    second = pid_of(runtime, spec("b"))  # b has nothing in flight: a's environment, once idle, makes room
    thread.join()
    assert second != first[0]
    waiting.wait_for(lambda: not waiting.running(first[0]), "a's environment's end")
    assert runtime.stats()["cold_starts"] == 2 and runtime.stats()["cap_waits"] == 1


def test_at_the_cap_an_invocation_that_waited_too_long_is_refused(
    runtime: LambdaRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime_module, "CAP_WAIT_S", 0.5)
    thread, _ = in_flight(runtime, spec("a"), 4)
    began = time.monotonic()
    with pytest.raises(ThrottledError, match="the emulator's cap of 1 execution environments is reached"):
        pid_of(runtime, spec("b"))
    assert time.monotonic() - began < 3.5
    thread.join()


def test_new_code_retires_the_idle_environments_of_the_old(runtime: LambdaRuntime) -> None:
    old = pid_of(runtime, spec("a"))
    began = time.monotonic()
    new = pid_of(runtime, spec("a", HANDLER + "\n# version 2\n"))
    assert new != old
    waiting.wait_for(lambda: not waiting.running(old), "the old code's environment's end")
    assert time.monotonic() - began < 30
