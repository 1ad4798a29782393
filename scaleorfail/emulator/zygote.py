"""Lambda environments forked from a running runtime: the emulator's side of the worker's fork server.

A cold start used to start a fresh interpreter (``python -I worker.py``): about 35 ms of CPU before the
handler's import. Under a burst that grows concurrency, those starts took half of a 2-CPU machine and
slowed every invocation in flight, which then held its environment longer, so more were started: the
emulator's own work, not Lambda's, made cold starts. The :class:`Zygote` keeps one runtime process up
(``worker.py --zygote``) and has it fork each new environment, as Lambda restores a runtime from a
snapshot; the environment's init is then its handler's import, measured as before.

:class:`ForkedProcess` is what :class:`scaleorfail.emulator.runtime.Environment` uses of
``subprocess.Popen`` (``pid``, ``stdin``, ``stdout``, ``poll``, ``wait``, ``kill``). The zygote is the
children's parent: it reaps them and reports each one's exit status, and it alone sends SIGKILL, to a
child it has not reaped, so a pid the system has reused is never signalled.

Where the fork server cannot run (no ``os.fork`` or SCM_RIGHTS: not Linux or macOS) or cannot start,
:func:`spawner` falls back to a fresh interpreter per environment, as ``SOF_LAMBDA_SPAWN=exec`` asks.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol

LOG = logging.getLogger("scale-or-fail")
WORKER = Path(__file__).with_name("worker.py")
START_TIMEOUT_S = 30.0
SPAWN_TIMEOUT_S = 30.0
# What the runtime process starts with; each child gets its function's own environment variables.
RUNTIME_ENV = {"PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin", "LANG": "C.UTF-8", "TZ": ":UTC"}


class WorkerProcess(Protocol):
    """What the runtime uses of a worker's process: a ``subprocess.Popen`` or a :class:`ForkedProcess`."""

    pid: int
    stdin: IO[bytes] | None
    stdout: IO[bytes] | None

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def kill(self) -> None: ...


class SpawnError(RuntimeError):
    """The fork server could not start an environment."""


class ForkedProcess:
    """A worker forked by the zygote, seen through the part of ``subprocess.Popen`` the runtime uses."""

    def __init__(self, zygote: Zygote, pid: int, stdin: IO[bytes], stdout: IO[bytes]) -> None:
        self.pid = pid
        self.stdin: IO[bytes] | None = stdin
        self.stdout: IO[bytes] | None = stdout
        self.returncode: int | None = None
        self._zygote = zygote
        self._ended = threading.Event()

    def ended(self, status: int) -> None:
        """Told by the zygote: the process ended with this status (negative: killed by that signal)."""
        self.returncode = status
        self._ended.set()

    def poll(self) -> int | None:
        return self.returncode if self._ended.is_set() else None

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired([str(WORKER)], timeout or 0.0)
        assert self.returncode is not None
        return self.returncode

    def kill(self) -> None:
        if not self._ended.is_set():
            self._zygote.kill(self.pid)


class Zygote:
    """One running Lambda runtime that forks the environments (``worker.py --zygote``)."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._channel = ours
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[threading.Event, list[dict[str, Any]]]] = {}
        self._children: dict[int, ForkedProcess] = {}
        self._early_ends: dict[int, int] = {}  # an end reported before its spawn's answer was handled
        self._lock = threading.Lock()
        self._closed = False
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", str(WORKER), "--zygote", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=RUNTIME_ENV,
                cwd=str(WORKER.parent),
                start_new_session=True,
            )
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.settimeout(START_TIMEOUT_S)
        try:
            ready = json.loads(ours.recv(1 << 16) or b"{}")
        except (OSError, ValueError) as exc:
            self.close()
            raise SpawnError(f"the Lambda runtime's fork server did not start: {exc}") from exc
        if "ready" not in ready:
            self.close()
            raise SpawnError("the Lambda runtime's fork server did not start (it exited)")
        ours.settimeout(None)
        threading.Thread(target=self._listen, name="lambda-zygote", daemon=True).start()

    def alive(self) -> bool:
        return not self._closed and self.process.poll() is None

    def spawn(self, env: dict[str, str], cwd: Path) -> ForkedProcess:
        """A new worker with these environment variables, in cwd; its protocol pipes are ours."""
        child_in, to_child = os.pipe()
        from_child, child_out = os.pipe()
        number = next(self._ids)
        done = threading.Event()
        answer: list[dict[str, Any]] = []
        with self._lock:
            self._pending[number] = (done, answer)
        try:
            request = json.dumps({"spawn": number, "env": env, "cwd": str(cwd)}).encode("utf-8")
            with self._send_lock:
                socket.send_fds(self._channel, [request], [child_in, child_out])
        except OSError as exc:
            for fd in (to_child, from_child):
                os.close(fd)
            raise SpawnError(f"the Lambda runtime's fork server is gone: {exc}") from exc
        finally:
            os.close(child_in)
            os.close(child_out)
        if not done.wait(SPAWN_TIMEOUT_S) or "pid" not in answer[0]:
            with self._lock:
                self._pending.pop(number, None)
            for fd in (to_child, from_child):
                os.close(fd)
            reason = answer[0].get("error", "no answer") if answer else "no answer"
            raise SpawnError(f"the Lambda runtime's fork server could not start an environment: {reason}")
        pid = int(answer[0]["pid"])
        process = ForkedProcess(self, pid, os.fdopen(to_child, "wb"), os.fdopen(from_child, "rb"))
        self._meet(pid, process=process)
        return process

    def _meet(self, pid: int, process: ForkedProcess | None = None, status: int | None = None) -> None:
        """The spawner's process and the fork server's report of its end meet here, in either order (the
        report can be read before the spawner has its answer)."""
        with self._lock:
            if process is None:
                process = self._children.pop(pid, None)
                if process is None:
                    self._early_ends[pid] = int(status or 0)
                    return
            else:
                status = self._early_ends.pop(pid, None)
                if status is None:
                    self._children[pid] = process
                    return
        process.ended(int(status or 0))

    def kill(self, pid: int) -> None:
        with self._send_lock, contextlib.suppress(OSError):  # gone: it killed its children as it ended
            self._channel.send(json.dumps({"kill": pid}).encode("utf-8"))

    def _listen(self) -> None:
        while True:
            try:
                data = self._channel.recv(1 << 16)
            except OSError:
                data = b""
            if not data:
                break
            message = json.loads(data)
            if "exited" in message:
                self._meet(int(message["exited"]), status=int(message["status"]))
                continue
            number = int(message.get("spawned", message.get("failed", 0)))
            with self._lock:
                waiting = self._pending.pop(number, None)
            if waiting is not None:
                waiting[1].append(message)
                waiting[0].set()
        self._closed = True
        with self._lock:  # the fork server ended (it kills its children first): nothing else will be told
            orphans, self._children = list(self._children.values()), {}
            pending, self._pending = list(self._pending.values()), {}
        for process in orphans:
            process.ended(-9)
        for done, _ in pending:
            done.set()

    def close(self) -> None:
        """Stop the fork server; it kills the environments it still has."""
        self._closed = True
        with contextlib.suppress(OSError):
            self._channel.shutdown(socket.SHUT_RDWR)
        self._channel.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def fork_server_supported() -> bool:
    return hasattr(os, "fork") and hasattr(socket, "send_fds") and hasattr(socket, "SOCK_SEQPACKET")


Spawn = Callable[[dict[str, str], Path], WorkerProcess]


class Spawner:
    """Starts environments: forked by a zygote (started on first use, restarted if it died), or exec'd."""

    def __init__(self, mode: str) -> None:
        self.mode = mode if mode == "exec" or fork_server_supported() else "exec"
        self._zygote: Zygote | None = None
        self._lock = threading.Lock()

    def __call__(self, env: dict[str, str], cwd: Path) -> WorkerProcess:
        if self.mode == "fork":
            zygote = self._running()
            if zygote is not None:
                try:
                    return zygote.spawn(env, cwd)
                except SpawnError as exc:
                    LOG.warning("%s; starting this environment with a fresh interpreter", exc)
        return exec_worker(env, cwd)

    def _running(self) -> Zygote | None:
        with self._lock:
            if self._zygote is not None and not self._zygote.alive():
                self._zygote = None
            if self._zygote is None:
                try:
                    self._zygote = Zygote()
                except (OSError, SpawnError) as exc:
                    LOG.warning("%s; Lambda environments start with a fresh interpreter", exc)
                    self.mode = "exec"
                    return None
            return self._zygote

    @property
    def pid(self) -> int | None:
        """The fork server's process, while one runs."""
        zygote = self._zygote
        return zygote.process.pid if zygote is not None and zygote.alive() else None

    def close(self) -> None:
        with self._lock:
            zygote, self._zygote = self._zygote, None
        if zygote is not None:
            zygote.close()


def exec_worker(env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    """A fresh interpreter for one environment (``SOF_LAMBDA_SPAWN=exec``, or where forking cannot be done)."""
    return subprocess.Popen(
        [sys.executable, "-I", str(WORKER)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=str(cwd),
        start_new_session=True,
    )
