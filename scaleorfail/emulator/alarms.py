"""CloudWatch alarm evaluation: from the last periods' datapoints to OK / ALARM / INSUFFICIENT_DATA.

As CloudWatch documents it: the alarm looks at its last ``EvaluationPeriods`` periods
(aligned to the clock: a 60 s period starts on the minute); each period with a value
is breaching or not against ``Threshold`` by ``ComparisonOperator``; a period with no
value is treated by ``TreatMissingData``:

- ``missing`` (the default): not evaluated; all periods missing -> INSUFFICIENT_DATA;
- ``notBreaching`` / ``breaching``: counted as good / bad;
- ``ignore``: not evaluated; all periods missing -> the state stays as it is.

The alarm is ALARM when at least ``DatapointsToAlarm`` (default: all the evaluation
periods) of the evaluated periods breach, otherwise OK. Pure: the caller supplies the
datapoints and applies the result.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
COMPARISONS: dict[str, tuple[str, Callable[[float, float], bool]]] = {
    "GreaterThanThreshold": ("greater than", lambda v, t: v > t),
    "GreaterThanOrEqualToThreshold": ("greater than or equal to", lambda v, t: v >= t),
    "LessThanThreshold": ("less than", lambda v, t: v < t),
    "LessThanOrEqualToThreshold": ("less than or equal to", lambda v, t: v <= t),
}
MISSING = ("missing", "notBreaching", "breaching", "ignore")


@dataclass(frozen=True)
class AlarmSpec:
    name: str
    comparison: str
    threshold: float
    evaluation_periods: int
    period_s: int
    datapoints_to_alarm: int | None = None
    treat_missing: str | None = None
    statistic: str = "Sum"


@dataclass(frozen=True)
class Outcome:
    state: str
    reason: str
    reason_data: str


def window(spec: AlarmSpec, now: datetime) -> list[datetime]:
    """The starts of the periods the alarm evaluates, oldest first; the last one holds `now`."""
    period = max(1, spec.period_s)
    epoch = now.astimezone(UTC).timestamp()
    last = math.floor(epoch / period) * period
    return [datetime.fromtimestamp(last - i * period, UTC) for i in reversed(range(max(1, spec.evaluation_periods)))]


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%d/%m/%y %H:%M:%S")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _number(value: float) -> str:
    return repr(float(value))


def evaluate(spec: AlarmSpec, values: dict[datetime, float], now: datetime, current: str) -> Outcome | None:
    """The alarm's state given the value of each period (missing periods absent); None: no change."""
    periods = window(spec, now)
    if spec.comparison not in COMPARISONS:
        return Outcome(
            "INSUFFICIENT_DATA",
            f"The emulator does not evaluate ComparisonOperator {spec.comparison}.",
            json.dumps({"version": "1.0"}),
        )
    words, breaches = COMPARISONS[spec.comparison]
    treat = spec.treat_missing if spec.treat_missing in MISSING else "missing"
    needed = spec.datapoints_to_alarm or spec.evaluation_periods
    present = [(t, values[t]) for t in periods if t in values]
    missing = len(periods) - len(present)
    breaching = [(t, v) for t, v in present if breaches(v, spec.threshold)]
    bad = len(breaching) + (missing if treat == "breaching" else 0)
    data: dict[str, Any] = {
        "version": "1.0",
        "queryDate": _iso(now),
        "startDate": _iso(periods[0]),
        "statistic": spec.statistic,
        "period": spec.period_s,
        "recentDatapoints": [v for _, v in present],
        "threshold": spec.threshold,
        "evaluatedDatapoints": [{"timestamp": _iso(t), "value": v} for t, v in reversed(present)],
    }
    listed = ", ".join(f"{_number(v)} ({_stamp(t)})" for t, v in reversed(present))
    if not present and treat in ("missing", "ignore"):
        if treat == "ignore":
            return None
        plural = "s" if missing > 1 else ""
        return Outcome(
            "INSUFFICIENT_DATA",
            f"Insufficient Data: {missing} datapoint{plural} {'were' if plural else 'was'} unknown.",
            json.dumps(data),
        )
    if bad >= needed:
        count = len(present)
        detail = (
            f"{len(breaching)} out of the last {count} datapoints [{listed}] "
            f"{'were' if len(breaching) != 1 else 'was'} {words} the threshold ({_number(spec.threshold)})"
            if present
            else f"no datapoints were received for {missing} periods and {missing} missing datapoints were treated "
            "as [Breaching]"
        )
        reason = f"Threshold Crossed: {detail} (minimum {needed} datapoint{'s' if needed != 1 else ''} "
        reason += f"for {current} -> ALARM transition)."
        return Outcome("ALARM", reason, json.dumps(data))
    if present:
        detail = f"{len(present)} datapoint{'s' if len(present) != 1 else ''} [{listed}] "
        detail += f"{'was' if len(present) == 1 else 'were'} not {words} the threshold ({_number(spec.threshold)})"
    else:
        detail = f"no datapoints were received for {missing} period{'s' if missing != 1 else ''} and {missing} "
        detail += f"missing datapoint{'s' if missing != 1 else ''} {'were' if missing != 1 else 'was'} treated as "
        detail += "[NonBreaching]"
    return Outcome("OK", f"Threshold Crossed: {detail}.", json.dumps(data))


def history_summary(name: str, old: str, new: str) -> str:
    return f"Alarm updated from {old} to {new}"


def notification(
    *,
    name: str,
    description: str | None,
    account: str,
    region: str,
    arn: str,
    old: str,
    new: str,
    reason: str,
    reason_data: str,
    changed_at: datetime,
    trigger: dict[str, Any],
) -> tuple[str, str]:
    """(subject, message) of the SNS notification CloudWatch sends for a state change."""
    region_names = {
        "us-east-1": "US East (N. Virginia)",
        "us-east-2": "US East (Ohio)",
        "us-west-2": "US West (Oregon)",
    }
    subject = f'{new}: "{name}" in {region_names.get(region, region)}'
    body = {
        "AlarmName": name,
        "AlarmDescription": description,
        "AWSAccountId": account,
        "AlarmConfigurationUpdatedTimestamp": _iso(changed_at),
        "NewStateValue": new,
        "NewStateReason": reason,
        "StateChangeTime": _iso(changed_at),
        "Region": region_names.get(region, region),
        "AlarmArn": arn,
        "OldStateValue": old,
        "OKActions": trigger.pop("OKActions", []),
        "AlarmActions": trigger.pop("AlarmActions", []),
        "InsufficientDataActions": trigger.pop("InsufficientDataActions", []),
        "Trigger": trigger,
    }
    return subject[:100], json.dumps(body)


def period_values(series: list[tuple[datetime, float]]) -> dict[datetime, float]:
    return {t.astimezone(UTC): v for t, v in series}


def lookback(spec: AlarmSpec, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the data an evaluation needs."""
    periods = window(spec, now)
    return periods[0], periods[-1] + timedelta(seconds=max(1, spec.period_s))
