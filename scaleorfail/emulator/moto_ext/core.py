"""What every service module shares: the patch registry, the write-behind sink, the state.

* **The registry.** Every change to moto is declared where it is made: an installer function
  carries one ``@declare(target, why=...)`` per thing it puts into moto (``target`` is its
  dotted path in the pinned moto - ``moto.pkg.module.Class.attr``, ``moto.pkg.module.attr``
  or ``moto.pkg.module.mapping[key]`` - and ``adds=True`` when that moto lacks it), and
  makes it with :func:`replace` / :func:`replace_item`, which refuse an undeclared target
  and a second patch of the same one. The methods of our subclasses of moto's response
  classes (served through ``url_paths``, moto's own extension point) are declared with
  ``@override(target, why=...)``. :func:`apply_all` runs the installers in declaration
  order, except those marked :func:`on_first_request`, which :func:`apply_deferred` runs when
  their service is first asked; ``tests/test_moto_ext.py`` checks every target against the
  pinned moto.
* **The sink.** Logs and metrics of invocations and executions, written behind into moto's
  CloudWatch Logs and CloudWatch backends (``LogsBackend.groups`` / ``create_log_group`` /
  ``LogGroup.create_log_stream`` / ``put_log_events``; ``CloudWatchBackend.metric_data``
  and ``MetricDatum``); every read path flushes it first.
* **Shared state.** The runtimes, the sink, the retention ledger and trimmer (``state``).
* **Configuration.** ``moto.core.config.default_user_config``: the Step Functions
  interpreter on, Lambda's Docker off (moto's own configuration, as ``mock_aws(config=...)``).
* **Model instances.** ``moto.core.common_models.BaseModel.__new__`` no longer keeps every
  instance (``instances_tracked``, ``moto.core.model_instances.model_data``).
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
import types
import uuid
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any, ClassVar, TypeVar

from botocore.exceptions import ClientError

from scaleorfail.emulator.endpoints import EndpointRuntime
from scaleorfail.emulator.runtime import Datum, LambdaRuntime
from scaleorfail.emulator.settings import ACCOUNT_ID, EmulatorSettings

log = logging.getLogger("scale-or-fail")
state: dict[str, Any] = {}

# -- the patch registry -------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One thing an extension puts into moto: what it replaces (or adds) and why."""

    path: str  # moto.pkg.module.Class.attr | moto.pkg.module.attr | moto.pkg.module.mapping[key]
    why: str
    adds: bool  # absent from the pinned moto: added, not replaced
    home: str  # the installer (or method) that makes it


Installer = Callable[[], None]
F = TypeVar("F", bound=Callable[..., Any])
INSTALLERS: dict[Installer, list[Target]] = {}  # in declaration order
OVERRIDES: list[tuple[Target, Callable[..., Any]]] = []  # methods of our subclasses of moto's responses
APPLIED: dict[str, Any] = {}  # target path -> what install() put there
_installing: list[Target] = []


def declare(target: str, *, why: str, adds: bool = False) -> Callable[[Installer], Installer]:
    """Declares that the decorated installer puts something at `target` (one decorator per target)."""

    def register(installer: Installer) -> Installer:
        home = f"{installer.__module__}.{installer.__qualname__}"
        INSTALLERS.setdefault(installer, []).insert(0, Target(target, why, adds, home))
        return installer

    return register


def declare_each(targets: Iterable[str], *, why: str) -> Callable[[Installer], Installer]:
    """Declares one patch, for one reason, at each of `targets` (in their order)."""

    def register(installer: Installer) -> Installer:
        for target in reversed(list(targets)):
            installer = declare(target, why=why)(installer)
        return installer

    return register


def override(target: str, *, why: str, adds: bool = False) -> Callable[[F], F]:
    """Declares a method of one of our response subclasses: it overrides (or adds) `target`."""

    def register(method: F) -> F:
        OVERRIDES.append((Target(target, why, adds, f"{method.__module__}.{method.__qualname__}"), method))
        return method

    return register


def path_of(owner: Any, name: str) -> str:
    """The dotted path of `owner.name` (owner: a module or a class)."""
    if isinstance(owner, types.ModuleType):
        return f"{owner.__name__}.{name}"
    if isinstance(owner, type):
        return f"{owner.__module__}.{owner.__qualname__}.{name}"
    raise TypeError(f"cannot name {owner!r}.{name}: patch a module or a class")


def locate(path: str) -> tuple[Any, str]:
    """What holds the target (a module, a class or a mapping) and the attribute name or mapping key."""
    key: str | None = None
    if path.endswith("]"):
        path, _, key = path[:-1].partition("[")
    parts = path.split(".")
    if key is None:
        parts, name = parts[:-1], parts[-1]
    for cut in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for part in parts[cut:]:
            found = getattr(found, part)
        return (found, key) if key is not None else (found, name)
    raise ModuleNotFoundError(path)


def _put(path: str, owner: Any, name: str, new: Any) -> Any:
    declared = {t.path for t in _installing}
    if path not in declared:
        raise RuntimeError(f"{path}: patched without a declaration on its installer (declared: {sorted(declared)})")
    if path in APPLIED:
        raise RuntimeError(f"{path}: patched twice")
    if isinstance(owner, MutableMapping):
        original = owner.get(name)
        owner[name] = new
    else:
        original = getattr(owner, name, None)
        setattr(owner, name, new)
    APPLIED[path] = new
    return original


def replace(owner: Any, name: str, new: Any) -> Any:
    """Puts `new` at owner.name, a target the running installer declared; returns what was there."""
    return _put(path_of(owner, name), owner, name, new)


def replace_item(module: types.ModuleType, mapping: str, key: str, new: Any) -> Any:
    """Puts `new` at module.mapping[key] (``url_paths`` routes and the like); returns what was there."""
    return _put(f"{module.__name__}.{mapping}[{key}]", getattr(module, mapping), key, new)


DEFERRED: dict[Installer, str] = {}  # installer -> the service whose first request runs it
_deferred_done: set[str] = set()
_deferred_lock = threading.Lock()


def on_first_request(service: str) -> Callable[[Installer], Installer]:
    """Marks an installer to run on `service`'s first request (:func:`apply_deferred`), not at install:
    for extensions of a service whose moto modules are slow to import and that nothing else uses (moto's
    CloudFormation: 265 modules, 0.19 s of every install)."""

    def mark(installer: Installer) -> Installer:
        DEFERRED[installer] = service
        return installer

    return mark


def _run(installer: Installer) -> None:
    targets = INSTALLERS.get(installer, [])
    _installing[:] = targets
    try:
        installer()
    finally:
        _installing.clear()
    missed = [t.path for t in targets if t.path not in APPLIED]
    if missed:
        raise RuntimeError(f"{targets[0].home}: declared but not patched: {missed}")


def apply_all() -> None:
    """Runs every installer not deferred once, in declaration order; each must make every patch it declared."""
    for installer in INSTALLERS:
        if installer not in DEFERRED:
            _run(installer)


def apply_deferred(service: str) -> None:
    """Runs the installers deferred to `service`'s first request, in the order they were marked (once;
    a request racing the first waits for them)."""
    if service in _deferred_done or service not in DEFERRED.values():
        return
    with _deferred_lock:
        if service in _deferred_done:
            return
        for installer, wanted in DEFERRED.items():
            if wanted == service:
                _run(installer)
        _deferred_done.add(service)


def configure() -> None:
    """moto's own configuration (what ``mock_aws(config=...)`` sets): the ASL interpreter on, Docker off."""
    from moto.core.config import default_user_config

    default_user_config["stepfunctions"]["execute_state_machine"] = True
    default_user_config["lambda"]["use_docker"] = False


# -- shared state ------------------------------------------------------------------------------


def runtime() -> LambdaRuntime:
    value = state.get("runtime")
    if value is None:
        raise RuntimeError("the emulator extensions are not installed")
    assert isinstance(value, LambdaRuntime)
    return value


def endpoint_runtime() -> EndpointRuntime:
    value = state.get("endpoints")
    if not isinstance(value, EndpointRuntime):
        raise RuntimeError("the emulator extensions are not installed")
    return value


def client_error(code: str, message: str, status: int, operation: str = "Invoke", **extra: Any) -> ClientError:
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": str(uuid.uuid4())},
        **extra,
    }
    return ClientError(response, operation)


def error_text(exc: Exception) -> str:
    """A moto exception as AWS words a failure reason: "<Code>: <message>"."""
    message = getattr(exc, "message", None) or str(exc) or exc.__class__.__name__
    code = getattr(exc, "error_type", None) or getattr(exc, "code", None)
    return f"{code}: {message}" if isinstance(code, str) else str(message)


# -- sink: logs and metrics into moto's backends ------------------------------------------


class MotoSink:
    """Writes logs and metrics into moto's CloudWatch Logs and CloudWatch, write-behind.

    Invocations only queue their records; a flusher thread writes them every
    FLUSH_INTERVAL_S (as CloudWatch itself shows data after a short delay), and every
    read path (GetMetricData, Logs Insights, GetLogEvents ...) flushes first, so what a
    client reads always includes everything that happened before its request.
    """

    FLUSH_INTERVAL_S = 0.25

    def __init__(self, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._logs: list[tuple[str, str, list[tuple[int, str]]]] = []
        self._metrics: list[tuple[str, Datum]] = []
        threading.Thread(target=self._flush_forever, name="cloudwatch-sink", daemon=True).start()

    def log_events(self, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        with self._lock:
            self._logs.append((group, stream, events))

    def metrics(self, namespace: str, data: list[Datum]) -> None:
        with self._lock:
            self._metrics.extend((namespace, d) for d in data)

    def _flush_forever(self) -> None:
        while True:
            time.sleep(self.FLUSH_INTERVAL_S)
            self.flush()

    def flush(self) -> None:
        with self._flush_lock:
            with self._lock:
                logs, self._logs = self._logs, []
                metrics, self._metrics = self._metrics, []
            if logs:
                self._write_logs(logs)
            if metrics:
                self._write_metrics(metrics)
            trimmer = state.get("trimmer")
            if trimmer is not None and (logs or metrics):
                trimmer.maybe_trim()  # under the flush lock: no write of ours can land in a list being replaced

    def _write_logs(self, batches: list[tuple[str, str, list[tuple[int, str]]]]) -> None:
        from moto.logs.models import logs_backends

        backend = logs_backends[self.account_id][self.region]
        by_stream: dict[tuple[str, str], list[tuple[int, str]]] = {}
        for group, stream, events in batches:
            by_stream.setdefault((group, stream), []).extend(events)
        for (group, stream), events in by_stream.items():
            if group not in backend.groups:
                backend.create_log_group(group, {})
            log_group = backend.groups[group]
            if stream not in log_group.streams:
                log_group.create_log_stream(stream)
            ordered = sorted(events, key=lambda e: e[0])
            backend.put_log_events(group, stream, [{"timestamp": t, "message": m} for t, m in ordered])

    def _write_metrics(self, data: list[tuple[str, Datum]]) -> None:
        from moto.cloudwatch.models import MetricDatum, cloudwatch_backends

        backend = cloudwatch_backends[self.account_id][self.region]
        # Appended directly (what put_metric_data does after validating), to keep this cheap.
        backend.metric_data.extend(self._datum(MetricDatum, namespace, d) for namespace, d in data)

    _dimensions: ClassVar[dict[tuple[tuple[str, str], ...], list[Any]]] = {}

    def _datum(self, kind: Any, namespace: str, d: Datum) -> Any:
        """A moto MetricDatum whose Dimension list is shared with every datum of the same dimensions (memory)."""
        key = tuple(d.dimensions.items())
        datum = kind(
            namespace=namespace,
            name=d.name,
            value=float(d.value),
            dimensions=[] if key in self._dimensions else [{"Name": k, "Value": v} for k, v in key],
            timestamp=d.timestamp.astimezone(UTC).replace(tzinfo=None),  # moto keeps naive UTC
            unit=d.unit,
        )
        datum.dimensions = self._dimensions.setdefault(key, datum.dimensions)
        return datum


def flush_sink() -> None:
    sink = state.get("sink")
    if sink is not None:
        sink.flush()


# -- moto's registry of every model instance (issue 12) ------------------------------------------


@declare(
    "moto.core.common_models.BaseModel.__new__",
    why="moto appends every model instance ever made to its class's instances_tracked (for its dashboard): "
    "no log event, metric datum or execution could be freed; only S3's models stay tracked",
)
def _instance_registry() -> None:
    """moto 5.2.5 appends every ``BaseModel`` instance ever made to ``cls.instances_tracked``
    (``moto.core.common_models.BaseModel.__new__``), for its dashboard: no log event, metric
    datum or execution could ever be freed. Only S3's models keep it (``S3Backend.reset``
    closes their temporary files through it); the rest are not tracked.
    """
    from moto.core import common_models
    from moto.core.model_instances import model_data

    base = common_models.BaseModel

    def new(cls: Any, *args: Any, **kwargs: Any) -> Any:
        instance = super(base, cls).__new__(cls)
        if cls.__module__.startswith("moto.s3."):
            cls.instances_tracked.append(instance)
        return instance

    replace(base, "__new__", new)
    for service, models in model_data.items():
        if service != "s3":
            for model in models.values():
                model.instances_tracked = []  # type: ignore[attr-defined]


# -- retention of CloudWatch Logs and metrics (issue 12) ----------------------------------------

Trim = Callable[[str, str, int], int]  # (account, region, budget) -> how many dropped


class Trimmer:
    """Keeps CloudWatch Logs and metrics within the retention counts, checked after sink writes."""

    CHECK_INTERVAL_S = 5.0

    def __init__(self, settings: EmulatorSettings, trim_logs: Trim, trim_metrics: Trim) -> None:
        self.settings = settings
        self.trim_logs = trim_logs
        self.trim_metrics = trim_metrics
        self.dropped_log_events = 0
        self.dropped_metric_points = 0
        self._last = 0.0
        self._lock = threading.Lock()

    def maybe_trim(self) -> None:
        now = time.monotonic()
        if now - self._last < self.CHECK_INTERVAL_S or not self._lock.acquire(blocking=False):
            return
        try:
            self._last = now
            region = self.settings.region
            self.dropped_log_events += self.trim_logs(ACCOUNT_ID, region, self.settings.retain_log_events)
            self.dropped_metric_points += self.trim_metrics(ACCOUNT_ID, region, self.settings.retain_metric_points)
        finally:
            self._lock.release()


def retention_stats() -> dict[str, Any]:
    """What the emulator keeps and has let go (for /_sof/health and `sof local status`)."""
    kept = state.get("retention")
    trimmer = state.get("trimmer")
    out: dict[str, Any] = {}
    if kept is not None:
        ledger, tombstones = kept
        stats = ledger.stats()
        out.update(
            finished_executions=stats["count"],
            finished_execution_bytes=stats["bytes"],
            evicted_executions=tombstones.total,
        )
    if isinstance(trimmer, Trimmer):
        out.update(dropped_log_events=trimmer.dropped_log_events, dropped_metric_points=trimmer.dropped_metric_points)
    return out
