"""The rate quotas the emulator enforces as AWS applies them: token buckets per account and Region.

* **StartExecution** (Step Functions, Standard): a call finding the bucket empty is refused
  with ``ThrottlingException`` ("Rate exceeded", HTTP 400) - SDKs retry it, the load harness
  records it as a throttled start;
* **StateTransition**: every StateEntered event and every retry takes a token; one that finds
  the bucket empty waits its turn (the execution slows down, it does not fail) and counts in
  AWS/States ``ExecutionThrottled``;
* **Lambda's scaling rate**: each function gains at most 1,000 execution environments per
  10 s, refilled continuously (a bucket of 1,000 refilled at 100/s, per function and Region);
  a cold start finding it empty is refused with 429 ``TooManyRequestsException``.

Step Functions' numbers are the Region's published defaults (scaleorfail/data/sfn_api_quotas.json:
us-east-1, us-west-2 and eu-west-1 have the larger ones) unless the account profile or a
``SOF_*`` setting gives others (the ``sandbox`` profile: a new account's lower quotas).
docs/emulator.md ("Quotas") has the region table and the sources.
"""

from __future__ import annotations

import functools
import json
import threading
from pathlib import Path

from scaleorfail.emulator.settings import EmulatorSettings
from scaleorfail.emulator.timing import TokenBucket

QUOTAS_FILE = Path(__file__).resolve().parent.parent / "data" / "sfn_api_quotas.json"
START_EXECUTION = "StartExecution"
STATE_TRANSITION = "StateTransition"


@functools.cache
def published(region: str) -> dict[str, tuple[float, float]]:
    """The Region's published StartExecution and StateTransition buckets (size, refill per second)."""
    data = json.loads(QUOTAS_FILE.read_text())
    tier = "large" if region in data["large_regions"] else "other"
    start = data["apis"][START_EXECUTION][tier]
    transition = data["state_transition"][tier]
    return {
        START_EXECUTION: (float(start[0]), float(start[1])),
        STATE_TRANSITION: (float(transition[0]), float(transition[1])),
    }


class Quotas:
    """The buckets of one emulator: created on first use, per Region (and function)."""

    def __init__(self, settings: EmulatorSettings) -> None:
        self.settings = settings
        self._buckets: dict[tuple[str, ...], TokenBucket] = {}
        self._lock = threading.Lock()

    def limits(self, region: str) -> dict[str, tuple[float, float]]:
        """The StartExecution and StateTransition buckets this emulator applies in a Region."""
        s = self.settings
        defaults = published(region)
        chosen = {
            START_EXECUTION: (s.start_execution_bucket, s.start_execution_rate),
            STATE_TRANSITION: (s.state_transition_bucket, s.state_transition_rate),
        }
        return {name: (size or defaults[name][0], rate or defaults[name][1]) for name, (size, rate) in chosen.items()}

    def _bucket(self, key: tuple[str, ...], size: float, rate: float) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            with self._lock:
                bucket = self._buckets.setdefault(key, TokenBucket(size, rate))
        return bucket

    def start_execution(self, region: str) -> bool:
        """A StartExecution call may go ahead (True), or is throttled."""
        size, rate = self.limits(region)[START_EXECUTION]
        return self._bucket((START_EXECUTION, region), size, rate).take()

    def state_transition(self, region: str) -> float:
        """A state transition's token: the seconds it must wait for it (0: not throttled)."""
        size, rate = self.limits(region)[STATE_TRANSITION]
        return self._bucket((STATE_TRANSITION, region), size, rate).reserve()

    def new_environment(self, function_arn: str) -> bool:
        """A function may start one more execution environment now (True), or the invocation is throttled."""
        key = ("LambdaScaling", function_arn)
        return self._bucket(key, self.settings.lambda_scaling_bucket, self.settings.lambda_scaling_rate).take()
