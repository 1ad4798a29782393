"""Step Functions: StartExecution and StateTransition quotas, applied as AWS applies them.

The buckets are :class:`scaleorfail.emulator.quotas.Quotas` (``state["quotas"]``):

* :func:`start_allowed` - called by StartExecution (:mod:`.executions`): an empty bucket is
  ``ThrottlingException`` "Rate exceeded" (HTTP 400), and AWS/States ``ThrottledEvents``
  (dimension ``APIName``) counts it;
* :func:`transition` - called for every StateEntered event (:mod:`.history`) and every retry
  (:mod:`.interpreter`, whose ``RetrierDecl._eval_body`` patch sees moto's Retrier end an attempt
  it will retry with ``RetrierOutcome.Executed``): the transition waits for its token, and
  AWS/States ``ExecutionThrottled`` (dimension ``StateMachineArn``) and ``ThrottledEvents``
  (dimension ``ServiceMetric=StateTransition``) count it.

This module patches nothing itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from moto.core.exceptions import AWSError

from scaleorfail.emulator.moto_ext.core import state
from scaleorfail.emulator.quotas import STATE_TRANSITION, Quotas
from scaleorfail.emulator.runtime import Datum
from scaleorfail.emulator.timing import PACER


class ThrottlingError(AWSError):
    """What AWS answers a Step Functions call over its quota."""

    TYPE = "ThrottlingException"
    STATUS = 400

    def __init__(self) -> None:
        super().__init__("Rate exceeded")


def quotas() -> Quotas:
    found = state.get("quotas")
    if not isinstance(found, Quotas):
        raise RuntimeError("the emulator extensions are not installed")
    return found


def _metric(name: str, dimensions: dict[str, str]) -> None:
    state["sink"].metrics("AWS/States", [Datum(name, 1, "Count", dimensions, datetime.now(UTC))])


def start_allowed(region: str) -> None:
    """StartExecution takes a token, or raises ThrottlingException."""
    if not quotas().start_execution(region):
        _metric("ThrottledEvents", {"APIName": "StartExecution"})
        raise ThrottlingError()


def transition(root: Any) -> None:
    """A state transition of the execution whose root Environment is `root`: its token, waited for."""
    if root is None:
        return
    wait = quotas().state_transition(str(root.aws_execution_details.region))
    if wait <= 0:
        return
    arn = str(root.states.context_object.context_object_data["StateMachine"]["Id"])
    _metric("ExecutionThrottled", {"StateMachineArn": arn})
    _metric("ThrottledEvents", {"ServiceMetric": STATE_TRANSITION})
    PACER.sleep(wait)
