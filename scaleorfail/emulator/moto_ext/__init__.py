"""Every use of moto's internals, one module per moto service.

Written against **moto == 5.2.5** (pinned exactly in pyproject.toml); :func:`install`
refuses any other version (:data:`MOTO_VERSION`), because each patch relies on a private
detail. Each patch is declared where it is made, with the moto target it replaces (or adds)
and why (:mod:`.core`'s registry); ``tests/test_moto_ext.py`` checks every target exists in
the pinned moto and is patched exactly once - a moto upgrade is that test's checklist.

- :mod:`.core` - the registry, the write-behind sink into CloudWatch Logs and CloudWatch,
  shared state, moto's configuration, model instances no longer kept forever.
- :mod:`.awslambda` - Invoke served by the process runtime, reserved concurrency and its 429,
  PutFunctionConcurrency's minimum, GetAccountSettings, package validation.
- :mod:`.stepfunctions` - the ASL interpreter: Lambda / SageMaker tasks, the inline Map cap,
  the history (timing model, 25,000-event limit, execution logging), metrics, retention, the API.
- :mod:`.logs` - FilterLogEvents, Logs Insights queries, query definitions, log retention.
- :mod:`.cloudwatch` - GetMetricData / GetMetricStatistics, metric math, the alarm evaluator.
- :mod:`.cloudformation` - stacks and change sets, the resource types the pipeline uses.
- :mod:`.sagemaker` - InvokeEndpoint served by the endpoint runtime.
- :mod:`.dispatch` - moto's request path: what every API call paid before its action, paid once.

Where moto offers an extension point it is used: the Step Functions, Logs, CloudWatch and
SageMaker Runtime APIs (and Lambda's GetAccountSettings) are subclasses of moto's response
classes put on its ``url_paths``. Backends and interpreter internals are replaced
attribute by attribute: moto builds its backends from module-level ``BackendDict`` objects
that other modules import by name, so there is no smaller seam.
"""

from __future__ import annotations

import threading
from pathlib import Path

import moto

from scaleorfail.emulator.endpoints import EndpointRuntime

# Importing the service modules declares their patches (core.INSTALLERS); install() applies them, except
# CloudFormation's, applied on its first request (core.on_first_request): moto's CloudFormation is 265
# modules that most runs never use (0.19 s of every install).
from scaleorfail.emulator.moto_ext import (  # noqa: F401 - cloudformation, sagemaker: for their declarations
    awslambda,
    cloudformation,
    cloudwatch,
    core,
    dispatch,
    logs,
    sagemaker,
    stepfunctions,
)
from scaleorfail.emulator.moto_ext.core import endpoint_runtime, retention_stats, runtime, state
from scaleorfail.emulator.quotas import Quotas
from scaleorfail.emulator.runtime import LambdaRuntime
from scaleorfail.emulator.settings import ACCOUNT_ID, EmulatorSettings

MOTO_VERSION = "5.2.5"
_install_lock = threading.Lock()

__all__ = [
    "MOTO_VERSION",
    "endpoint_runtime",
    "install",
    "reap_all",
    "retention_stats",
    "runtime",
    "shutdown",
]


def install(settings: EmulatorSettings, work_dir: Path) -> LambdaRuntime:
    """Apply every extension to the moto in this process (once) and start the runtimes."""
    with _install_lock:
        if "runtime" in state:
            return runtime()
        if moto.__version__ != MOTO_VERSION:
            raise RuntimeError(
                f"scaleorfail's emulator extends moto {MOTO_VERSION} internals; found moto {moto.__version__}. "
                "Reinstall with `make setup`."
            )
        core.configure()
        state["settings"] = settings
        sink = core.MotoSink(ACCOUNT_ID, settings.region)
        state["sink"] = sink
        stepfunctions.executions.start_retention(settings)
        core.apply_all()
        cloudwatch.start_alarm_evaluator()
        state["trimmer"] = core.Trimmer(settings, logs.trim_logs, cloudwatch.trim_metrics)
        region = settings.region
        state["quotas"] = quotas = Quotas(settings)
        lambda_runtime = LambdaRuntime(
            settings, sink, lambda: awslambda.reservations(ACCOUNT_ID, region), work_dir, quotas=quotas
        )
        state["runtime"] = lambda_runtime
        state["endpoints"] = EndpointRuntime(settings, sink, dict, work_dir / "endpoints")
        return lambda_runtime


def reap_all() -> int:
    """Stop every idle Lambda environment and endpoint container now; returns how many."""
    return sum(value.reap_idle(older_than_s=0) for value in (runtime(), endpoint_runtime()))


def shutdown() -> None:
    """Stop every Lambda environment and endpoint container."""
    for key in ("runtime", "endpoints"):
        value = state.get(key)
        if isinstance(value, LambdaRuntime):
            value.shutdown()
