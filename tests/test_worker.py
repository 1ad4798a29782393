"""A Lambda execution environment's memory watchdog, driven through the worker's own protocol.

The worker is started as the emulator starts it (``python -I worker.py``, a handler in LAMBDA_TASK_ROOT,
SOF_MEMORY_LIMIT_MB), sent one invocation, and watched from outside: a handler past its memory dies
while it runs, as the kernel's OOM killer ends it on AWS; one under it answers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import pytest

from scaleorfail.emulator import worker
from scaleorfail.emulator.runtime import WORKER

HANDLER = """
import time

def handler(event, context):
    grown = bytearray(event["mb"] * 1024 * 1024)
    grown[::4096] = b"\\x01" * len(range(0, len(grown), 4096))  # resident, page by page
    time.sleep(event["sleep_s"])
    return {"held_mb": len(grown) // (1024 * 1024)}
"""


def start(tmp_path: Path, limit_mb: int) -> subprocess.Popen[bytes]:
    (tmp_path / "grow.py").write_text(HANDLER)
    env = {"LAMBDA_TASK_ROOT": str(tmp_path), "_HANDLER": "grow.handler", "SOF_MEMORY_LIMIT_MB": str(limit_mb)}
    process = subprocess.Popen(
        [sys.executable, "-I", str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=tmp_path
    )
    assert process.stdout is not None
    assert json.loads(process.stdout.readline())["ready"] is True
    return process


def invoke(process: subprocess.Popen[bytes], event: dict[str, Any]) -> None:
    stdin: IO[bytes] | None = process.stdin
    assert stdin is not None
    request = {"request_id": "r-1", "event": event, "deadline_ms": time.time() * 1000 + 600_000}
    stdin.write(json.dumps(request).encode() + b"\n")
    stdin.flush()


def test_an_invocation_past_its_memory_is_killed_while_it_runs(tmp_path: Path) -> None:
    process = start(tmp_path, limit_mb=48)
    try:
        began = time.monotonic()
        invoke(process, {"mb": 96, "sleep_s": 60})
        code = process.wait(timeout=30)  # the handler would sleep 60 s: only the watchdog ends it sooner
        assert code == -9  # SIGKILL, as the kernel's OOM killer sends it
        assert time.monotonic() - began < 30
    finally:
        process.kill()
        process.wait()


def test_an_invocation_under_its_memory_answers_with_its_peak(tmp_path: Path) -> None:
    process = start(tmp_path, limit_mb=256)
    try:
        invoke(process, {"mb": 32, "sleep_s": 0.3})
        assert process.stdout is not None
        response = json.loads(process.stdout.readline())
        assert response["ok"] is True and response["result"] == {"held_mb": 32}
        assert 32 * 1024 < response["max_rss_kb"] < 256 * 1024
        assert process.poll() is None
    finally:
        process.kill()
        process.wait()


@pytest.mark.parametrize(
    ("headroom_kb", "expected_s"),
    [
        (0, worker.FLOOR_S),  # at the limit: as often as it looks at all
        (-1024, worker.FLOOR_S),
        (10 * 1024, worker.FLOOR_S),  # 10 MB fill in about 1 ms: the floor
        (224 * 1024, 224 * 1024 / worker.FILL_KB_PER_S),  # a 256 MB function using 32 MB: 28 ms
        (10 * 1024 * 1024, worker.CEILING_S),  # 10 GB away: still ten looks a second
    ],
)
def test_the_watchdog_looks_again_before_the_headroom_could_be_filled(headroom_kb: int, expected_s: float) -> None:
    limit_kb = 12 * 1024 * 1024
    assert worker.next_look_s(limit_kb, limit_kb - headroom_kb) == pytest.approx(expected_s)
    assert 0.027 < 224 * 1024 / worker.FILL_KB_PER_S < 0.029


def test_far_below_its_limit_the_watchdog_looks_a_few_times_a_second(tmp_path: Path) -> None:
    """The cost it had: every 5 ms whatever the headroom, 200 wake-ups a second in each busy environment."""
    watchdog = worker.MemoryWatchdog(limit_kb=64 * 1024 * 1024)  # 64 GB: nothing this test does comes near
    watchdog.busy.set()
    time.sleep(1.0)
    watchdog.busy.clear()
    # at most one look per CEILING_S (a busy machine makes fewer, never more), and at least one
    assert 1 <= watchdog.looks <= 1.0 / worker.CEILING_S + 2
