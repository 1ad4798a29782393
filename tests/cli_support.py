"""Driving the emulator with the AWS CLI (v1, from PyPI: a dev dependency) as a user would."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import waiting
from emulator_support import Emulator, running_emulator
from emulator_support import finished as execution_end
from waiting import QUIET_S, wait_for

AWS = Path(sys.executable).with_name("aws")


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        """The JSON output; the text itself for the commands that print text (s3, wait)."""
        if not self.stdout.strip():
            return {}
        try:
            return json.loads(self.stdout)
        except ValueError:
            return self.stdout


def environment(emulator: Emulator, home: Path) -> dict[str, str]:
    """Only the emulator: its endpoint, test credentials, no user configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_ENDPOINT_URL": emulator.url,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": emulator.settings.region,
            "AWS_CONFIG_FILE": str(home / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
            "AWS_PAGER": "",
            "HOME": str(home),
        }
    )
    return env


class Cli:
    def __init__(self, emulator: Emulator, home: Path) -> None:
        if not AWS.exists():
            raise AssertionError(
                f"the AWS CLI is not installed at {AWS}: run `make setup` (awscli is a dev dependency)"
            )
        home.mkdir(parents=True, exist_ok=True)
        self.emulator = emulator
        self.env = environment(emulator, home)
        self.cwd = home

    def run(self, *args: str, timeout: float = QUIET_S) -> Result:
        """One command; it fails when neither it nor the emulator did any work for `timeout` s."""
        done = waiting.run(
            [str(AWS), *args, "--output", "json", *self._endpoint(args)],
            env=self.env,
            cwd=self.cwd,
            pids=lambda: self.emulator.pids,
            quiet_s=timeout,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def _endpoint(self, args: tuple[str, ...]) -> list[str]:
        # AWS_ENDPOINT_URL reaches every service but SQS in CLI v1 (its legacy queue.amazonaws.com
        # endpoint wins), so SQS commands also get --endpoint-url.
        return ["--endpoint-url", self.env["AWS_ENDPOINT_URL"]] if args[:1] == ("sqs",) else []

    def __call__(self, *args: str, timeout: float = QUIET_S) -> Any:
        """The parsed JSON output of a command that must succeed."""
        result = self.run(*args, timeout=timeout)
        if result.code != 0:
            raise AssertionError(f"aws {' '.join(args)} exited {result.code}: {result.stderr.strip()}")
        return result.json

    def fails(self, *args: str) -> Result:
        """A command that must fail (exit code 254/255: an error from the service or the client)."""
        result = self.run(*args)
        assert result.code != 0, f"aws {' '.join(args)} succeeded: {result.stdout[:300]}"
        return result


def poll(
    check: Callable[[], Any],
    timeout: float = QUIET_S,
    interval: float = 0.2,
    what: str = "the condition",
    observe: Callable[[], Any] | None = None,
) -> Any:
    """The first truthy value of check(); an AssertionError once nothing moved for `timeout` s (see waiting.py)."""
    return wait_for(check, what, observe=observe, quiet_s=timeout, interval=interval)


def finished(client: Any, arn: str, timeout: float = QUIET_S) -> dict[str, Any]:
    """DescribeExecution once the execution is no longer RUNNING (boto3 client, to poll cheaply).

    It fails when the execution's history stops growing for `timeout` s before it ends."""
    return execution_end(client, arn, quiet_s=timeout, poll_s=0.2)


def state_update(emulator: Emulator, name: str, into: str, since: datetime | None = None) -> dict[str, Any] | None:
    """The alarm's last change into `into` (since a moment) from its history, with its data parsed (boto3: cheap).

    A state lasts only until the next evaluation (a 10 s period without data is missing data again):
    its history is what stays, however late a busy machine looks."""
    items = emulator.client("cloudwatch").describe_alarm_history(
        AlarmName=name, HistoryItemType="StateUpdate", **({"StartDate": since} if since else {})
    )
    changes = [h for h in items["AlarmHistoryItems"] if json.loads(h["HistoryData"])["newState"]["stateValue"] == into]
    return {**changes[0], "data": json.loads(changes[0]["HistoryData"])} if changes else None


@contextmanager
def alarm_emulator(state_dir: Path) -> Iterator[Emulator]:
    """An emulator whose alarms are evaluated every half second (the CLI tests wait for their state)."""
    os.environ["SOF_ALARM_EVALUATION_S"] = "0.5"
    try:
        with running_emulator(state_dir) as running:
            yield running
    finally:
        os.environ.pop("SOF_ALARM_EVALUATION_S", None)
