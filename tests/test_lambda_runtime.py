"""The Lambda runtime's environment pool, driven directly: the emulator's cap on environments and a code change
both shut idle environments down, in the background, and the invocation that needed room goes on."""

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

import psutil
import pytest
import waiting

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


def ended(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def test_at_the_cap_the_oldest_idle_environment_makes_room(runtime: LambdaRuntime) -> None:
    first = pid_of(runtime, spec("a"))
    second = pid_of(runtime, spec("b"))  # the cap is 1: a's idle environment is shut down for b's
    assert second != first
    waiting.wait_for(lambda: ended(first), "the retired environment's end")
    assert runtime.stats()["environments"] == 1 and runtime.stats()["cold_starts"] == 2
    assert pid_of(runtime, spec("b")) == second  # b's stays warm


def test_at_the_cap_with_nothing_idle_an_invocation_is_refused(runtime: LambdaRuntime) -> None:
    busy = threading.Thread(target=pid_of, args=(runtime, spec("a"), {"sleep": 3}))
    busy.start()
    waiting.wait_for(lambda: runtime.stats()["busy"], "a's invocation running")
    with pytest.raises(ThrottledError, match="the emulator's cap of 1 execution environments is reached"):
        pid_of(runtime, spec("b"))
    busy.join()


def test_new_code_retires_the_idle_environments_of_the_old(runtime: LambdaRuntime) -> None:
    old = pid_of(runtime, spec("a"))
    began = time.monotonic()
    new = pid_of(runtime, spec("a", HANDLER + "\n# version 2\n"))
    assert new != old
    waiting.wait_for(lambda: ended(old), "the old code's environment's end")
    assert time.monotonic() - began < 30
