"""One Lambda execution environment: a process that imports a handler and serves invocations.

Run by the emulator as ``python -I worker.py`` (stdlib only, nothing of the emulator is
imported, so a cold start costs what a real Python runtime start costs). The function's
environment variables are already set by the parent; ``LAMBDA_TASK_ROOT`` holds the
unpacked deployment package and ``_HANDLER`` the ``module.function`` to call.

Protocol (binary, on the original stdin/stdout, one JSON document per line):

- after start-up the worker writes ``{"ready": true, "init_ms": ...}`` or, when the
  handler cannot be imported, ``{"ready": false, "error": {...}, "output": "..."}``;
- each request ``{"request_id", "event", "deadline_ms", "invoked_arn"}`` gets one
  response ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": {...}}``, both with
  ``output`` (everything the handler wrote to stdout/stderr), ``duration_ms`` and
  ``max_rss_kb``.

``python -I worker.py --zygote FD`` is the runtime's fork server instead: started once,
it forks each new environment from a process whose interpreter and runtime are already up, as Lambda
restores a runtime from a snapshot, so a cold start's real work is its handler's import (a fresh
interpreter cost about 35 ms of CPU before that; the fork, about 1). The control channel is the
SOCK_SEQPACKET socket on FD, one JSON message per packet (:class:`ForkServer`):

- ``{"spawn": id, "env": {...}, "cwd": "..."}`` with two file descriptors (SCM_RIGHTS: the
  protocol's stdin and stdout) -> ``{"spawned": id, "pid": n}`` (or ``{"failed": id, "error": ...}``);
- ``{"kill": pid}``: SIGKILL, sent by the zygote only to a child it has not reaped (no pid reuse);
- the zygote reports each child's end: ``{"exited": pid, "status": n}`` (negative: the signal);
- at the channel's end (the emulator stopped or died) it kills its children and exits.

With ``SOF_SERVING=sagemaker`` the worker is a SageMaker serverless container instead: it
imports ``SAGEMAKER_PROGRAM`` and serves requests ``{"body", "content_type", "accept"}``
through the script's input_fn / predict_fn / output_fn (see :func:`load_serving_handler`).

File descriptors 1 and 2 are redirected to a scratch file, so anything the handler
prints (even from C code) is captured as its log output instead of corrupting the
protocol. A watchdog thread ends the process with SIGKILL when its resident memory
exceeds ``SOF_MEMORY_LIMIT_MB`` - the way Lambda's out-of-memory kill looks from outside.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from typing import Any, BinaryIO

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def rss_kb() -> int:
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * PAGE_KB


_STATUS: list[int] = []  # /proc/self/status, opened once: read again at every look


def peak_rss_kb() -> int:
    """VmHWM: the peak resident set of this program (ru_maxrss would include the forked parent's)."""
    if not _STATUS:
        _STATUS.append(os.open("/proc/self/status", os.O_RDONLY))
    data = os.pread(_STATUS[0], 8192, 0)
    start = data.find(b"VmHWM:")
    return int(data[start + 6 : data.index(b"kB", start)]) if start >= 0 else rss_kb()


FLOOR_S = 0.005  # near the limit: a kill within 5 ms of crossing it
CEILING_S = 0.1  # far below it: still a look ten times a second
# How fast a process can make memory resident: the kernel faults in and zeroes each page. This machine's
# kind touches fresh memory at about 2 MB/ms (docs/emulator.md); 8 MB/ms leaves room for faster hosts.
FILL_KB_PER_S = 8 * 1024 * 1000


def next_look_s(limit_kb: int, peak_kb: int) -> float:
    """When the watchdog must look again: before the process could have filled the headroom it has left."""
    return min(CEILING_S, max(FLOOR_S, (limit_kb - peak_kb) / FILL_KB_PER_S))


class MemoryWatchdog:
    """Kills this process (SIGKILL, like the kernel's OOM killer) when its memory exceeds the limit.

    It looks only while an invocation runs, so idle warm environments cost no CPU, and it reads the
    peak resident set (VmHWM), so a spike between two looks is not missed. It looks again no later than
    the process could have reached the limit at FILL_KB_PER_S: every 5 ms near the limit, far less
    often below it (a 256 MB function using 32 MB: every 28 ms), which keeps forty environments that
    sleep through an invocation from waking the machine 8,000 times a second.
    """

    def __init__(self, limit_kb: int) -> None:
        self.limit_kb = limit_kb
        self.busy = threading.Event()
        self.looks = 0
        peak_rss_kb()  # opened here, before the thread that reads it
        threading.Thread(target=self._watch, name="memory-watchdog", daemon=True).start()

    def _watch(self) -> None:
        while True:
            self.busy.wait()
            self.looks += 1
            peak = peak_rss_kb()
            if peak > self.limit_kb:
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(next_look_s(self.limit_kb, peak))


class Context:
    """The subset of Lambda's context object handlers use."""

    def __init__(self, request_id: str, deadline_ms: float, invoked_arn: str) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self._deadline_ms - time.time() * 1000))


class Capture:
    """fd 1 and 2 go to a scratch file; read() returns what was written since last time."""

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
        os.dup2(self.file.fileno(), 1)
        os.dup2(self.file.fileno(), 2)
        sys.stdout = os.fdopen(1, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
        sys.stderr = os.fdopen(2, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)

    def read(self) -> str:
        sys.stdout.flush()
        sys.stderr.flush()
        self.file.seek(0)
        data = self.file.read()
        self.file.seek(0)
        self.file.truncate()
        os.lseek(1, 0, os.SEEK_SET)
        return scrub(data.decode("utf-8", errors="replace"))


AWS_TASK_ROOT = "/var/task"  # where Lambda unpacks a function's code
AWS_RUNTIME_DIR = "/var/runtime"  # Lambda's runtime client and the SDK it bundles
LAMBDA_USER = "sbx_user1051"  # the user a Lambda function runs as


def host_prefixes() -> list[tuple[str, str]]:
    """Where this process really lives -> where a Lambda function lives on AWS, longest first: a client
    (error payloads, Tail logs, execution causes) sees AWS's paths, never this machine's, user or home."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    pairs = [
        (os.environ.get("LAMBDA_TASK_ROOT", ""), AWS_TASK_ROOT),
        (os.path.dirname(os.path.abspath(__file__)), AWS_RUNTIME_DIR),
        (os.path.dirname(os.__file__), f"/var/lang/lib/python{version}"),  # the standard library
        (os.path.expanduser("~"), f"/home/{LAMBDA_USER}"),
    ]
    pairs += [(entry, AWS_RUNTIME_DIR) for entry in sys.path if entry.endswith(("site-packages", "dist-packages"))]
    if sys.prefix not in ("/usr", "/usr/local"):  # a virtual environment's own folder names this machine
        pairs.append((sys.prefix, "/var/lang"))
    found = [(os.path.realpath(host), aws) for host, aws in pairs if host and host != "/"]
    found += [(host, aws) for host, aws in pairs if host and host != "/"]  # as given, too (symlinks)
    return sorted({h: a for h, a in found if len(h) > 1}.items(), key=lambda pair: -len(pair[0]))


_PREFIXES: list[tuple[str, str]] = []


def scrub(text: str) -> str:
    """The text as a client may read it: host paths as AWS's, the user's name as Lambda's."""
    if not text:
        return text
    if not _PREFIXES:
        _PREFIXES.extend(host_prefixes())
    for host, aws in _PREFIXES:
        text = text.replace(host, aws)
    user = os.environ.get("SOF_HOST_USER", "")
    if user and user != "root":  # as a path component only: a user called "test" must not change the words
        text = text.replace(f"/{user}/", f"/{LAMBDA_USER}/")
    return text


def handler_frames(exc: BaseException) -> Any:
    """The traceback without this runtime's own frame, as Lambda shows it."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return tb


def error_payload(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    frames = traceback.extract_tb(handler_frames(exc)) if error_type is None else []
    return {
        "errorMessage": scrub(str(exc)),
        "errorType": error_type or type(exc).__name__,
        "requestId": "",
        "stackTrace": [scrub(f'  File "{f.filename}", line {f.lineno}, in {f.name}\n    {f.line}\n') for f in frames],
    }


def log_error_record(exc: BaseException) -> None:
    """Like Lambda's Python runtime: one log event, lines joined by carriage returns."""
    lines = traceback.format_exception(type(exc), exc, handler_frames(exc))
    record = f"[ERROR] {type(exc).__name__}: {exc}\r" + "".join(lines).rstrip("\n").replace("\n", "\r")
    sys.stderr.write(scrub(record) + "\n")


def load_handler() -> Any:
    spec = os.environ.get("_HANDLER", "")
    module_name, _, function_name = spec.rpartition(".")
    if not module_name:
        raise LookupError(f"Bad handler '{spec}': not enough values to unpack (expected 2, got 1)")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ImportError(f"Unable to import module '{module_name}': {exc}") from exc
    handler = getattr(module, function_name, None)
    if handler is None:
        raise LookupError(f"Handler '{function_name}' missing on module '{module_name}'")
    return handler


def load_serving_handler() -> Any:
    """``SOF_SERVING=sagemaker``: serve a SageMaker model script the way the inference toolkit does.

    The script named by ``SAGEMAKER_PROGRAM`` is imported from the model's ``code/``
    folder (the task root); ``model_fn(SM_MODEL_DIR)`` runs once, here at start-up, and
    each request ``{"body", "content_type", "accept"}`` goes through ``input_fn`` ->
    ``predict_fn`` -> ``output_fn`` (JSON defaults where the script has none).
    """
    program = os.environ.get("SAGEMAKER_PROGRAM", "inference.py")
    module_name = program.removesuffix(".py")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ImportError(f"Unable to import module '{module_name}': {exc}") from exc
    predict_fn = getattr(module, "predict_fn", None)
    if predict_fn is None:
        raise LookupError(f"{program} defines no predict_fn")
    model_fn = getattr(module, "model_fn", None)
    model = model_fn(os.environ.get("SM_MODEL_DIR", "/opt/ml/model")) if model_fn else None
    input_fn = getattr(module, "input_fn", None) or (lambda body, content_type: json.loads(body))
    output_fn = getattr(module, "output_fn", None) or (lambda prediction, accept: json.dumps(prediction))

    def handle(event: dict[str, Any], context: Context) -> dict[str, Any]:
        accept = event.get("accept") or "application/json"
        data = input_fn(event["body"], event.get("content_type") or "application/json")
        body = output_fn(predict_fn(data, model), accept)
        if isinstance(body, tuple):  # (body, content type), as some toolkits return
            body, accept = body[0], body[1]
        if isinstance(body, bytes):
            body = body.decode("utf-8")
        return {"body": str(body), "content_type": accept}

    return handle


def send(out: BinaryIO, message: dict[str, Any]) -> None:
    out.write(json.dumps(message, separators=(",", ":")).encode("utf-8") + b"\n")
    out.flush()


def serve() -> None:
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    capture = Capture()
    limit_mb = float(os.environ.get("SOF_MEMORY_LIMIT_MB", "0") or 0)
    watchdog = MemoryWatchdog(int(limit_mb * 1024)) if limit_mb > 0 else None
    task_root = os.environ.get("LAMBDA_TASK_ROOT", "")
    if task_root:
        sys.path.insert(0, task_root)
        os.chdir(task_root)
    started = time.perf_counter()
    try:
        handler = load_serving_handler() if os.environ.get("SOF_SERVING") == "sagemaker" else load_handler()
    except ImportError as exc:
        send(
            proto_out,
            {"ready": False, "error": error_payload(exc, "Runtime.ImportModuleError"), "output": capture.read()},
        )
        return
    except LookupError as exc:
        send(
            proto_out,
            {"ready": False, "error": error_payload(exc, "Runtime.HandlerNotFound"), "output": capture.read()},
        )
        return
    except BaseException as exc:  # the module raised while importing
        send(proto_out, {"ready": False, "error": error_payload(exc), "output": capture.read()})
        return
    send(proto_out, {"ready": True, "init_ms": (time.perf_counter() - started) * 1000, "output": capture.read()})

    for line in proto_in:
        request = json.loads(line)
        context = Context(request["request_id"], request["deadline_ms"], request.get("invoked_arn", ""))
        began = time.perf_counter()
        response: dict[str, Any]
        if watchdog is not None:
            watchdog.busy.set()
        try:
            result = handler(request["event"], context)
            try:
                json.dumps(result)
                response = {"ok": True, "result": result}
            except (TypeError, ValueError) as exc:
                response = {
                    "ok": False,
                    "error": {
                        "errorMessage": f"Unable to marshal response: {exc}",
                        "errorType": "Runtime.MarshalError",
                    },
                }
        except Exception as exc:
            payload = error_payload(exc)
            payload["requestId"] = request["request_id"]
            log_error_record(exc)
            response = {"ok": False, "error": payload}
        if watchdog is not None:
            watchdog.busy.clear()
        response["duration_ms"] = (time.perf_counter() - began) * 1000
        response["max_rss_kb"] = peak_rss_kb()
        response["output"] = capture.read()
        send(proto_out, response)


# -- the fork server ------------------------------------------------------------------


def _become_worker(request: dict[str, Any], fds: list[int], closing: list[int]) -> None:
    """In the forked child: the environment a fresh ``python -I worker.py`` would have had, then serve()."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for fd in closing:
        os.close(fd)
    os.setsid()  # its own session, as the emulator starts a worker (start_new_session)
    os.dup2(fds[0], 0)
    os.dup2(fds[1], 1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    for fd in (*fds, null):
        if fd > 2:
            os.close(fd)
    os.environ.clear()
    os.environ.update(request["env"])
    time.tzset()
    os.chdir(request["cwd"])
    sys.argv[:] = [os.path.abspath(__file__)]
    code = 0
    try:
        serve()
    except SystemExit as exc:  # sys.exit() in a handler ends the environment with its status, as it would
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        import atexit

        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
    os._exit(code)


class ForkServer:
    """Forks a worker for each spawn request on the control channel; reaps and reports the children."""

    def __init__(self, control_fd: int) -> None:
        import socket

        self.channel = socket.socket(fileno=control_fd)
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a child's end wakes select() through the wakeup fd
        self.children: set[int] = set()

    def tell(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):  # the emulator is gone: the loop sees the channel's end next
            self.channel.send(json.dumps(message, separators=(",", ":")).encode("utf-8"))

    def run(self) -> None:
        import gc
        import select
        import socket

        gc.freeze()  # what the runtime allocated so far stays shared with the children (copy-on-write)
        self.tell({"ready": os.getpid()})
        while True:
            readable, _, _ = select.select([self.channel.fileno(), self.wake_r], [], [])
            if self.wake_r in readable:
                os.read(self.wake_r, 4096)
            self.reap()
            if self.channel.fileno() not in readable:
                continue
            try:
                data, fds, _, _ = socket.recv_fds(self.channel, 1 << 20, 2)
            except OSError:
                data, fds = b"", []
            if not data:  # the emulator closed the channel: no environment outlives it
                for pid in self.children:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                return
            self.handle(json.loads(data), fds)

    def reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.children.discard(pid)
            self.tell({"exited": pid, "status": os.waitstatus_to_exitcode(status)})

    def handle(self, request: dict[str, Any], fds: list[int]) -> None:
        if "kill" in request:
            if request["kill"] in self.children:  # never a pid already reaped (the system may reuse it)
                os.kill(request["kill"], signal.SIGKILL)
            return
        try:
            pid = os.fork()
        except OSError as exc:
            pid = -1
            self.tell({"failed": request["spawn"], "error": str(exc)})
        if pid == 0:
            _become_worker(request, fds, [self.channel.detach(), self.wake_r, self.wake_w])
        for fd in fds:
            os.close(fd)
        if pid > 0:
            self.children.add(pid)
            self.tell({"spawned": request["spawn"], "pid": pid})


if __name__ == "__main__":
    if sys.argv[1:2] == ["--zygote"]:
        ForkServer(int(sys.argv[2])).run()
    else:
        serve()
