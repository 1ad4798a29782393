"""Driving the emulator with the AWS CLI (v1, from PyPI: a dev dependency) as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator_support import Emulator, running_emulator

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
        self.env = environment(emulator, home)
        self.cwd = home

    def run(self, *args: str, timeout: float = 120.0) -> Result:
        done = subprocess.run(
            [str(AWS), *args, "--output", "json", *self._endpoint(args)],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.cwd,
            timeout=timeout,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def _endpoint(self, args: tuple[str, ...]) -> list[str]:
        # AWS_ENDPOINT_URL reaches every service but SQS in CLI v1 (its legacy queue.amazonaws.com
        # endpoint wins), so SQS commands also get --endpoint-url.
        return ["--endpoint-url", self.env["AWS_ENDPOINT_URL"]] if args[:1] == ("sqs",) else []

    def __call__(self, *args: str, timeout: float = 120.0) -> Any:
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


def poll(check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.2, what: str = "the condition") -> Any:
    """The first truthy value of check(), or an AssertionError after the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} did not happen within {timeout:g} s (last: {last!r})")


def finished(cli_or_client: Any, arn: str, timeout: float = 120.0) -> dict[str, Any]:
    """DescribeExecution once the execution is no longer RUNNING (boto3 client, to poll cheaply)."""

    def check() -> dict[str, Any] | None:
        description = cli_or_client.describe_execution(executionArn=arn)
        return None if description["status"] == "RUNNING" else dict(description)

    return dict(poll(check, timeout=timeout, what=f"the end of {arn}"))


@contextmanager
def alarm_emulator(state_dir: Path) -> Iterator[Emulator]:
    """An emulator whose alarms are evaluated every half second (the CLI tests wait for their state)."""
    os.environ["SOF_ALARM_EVALUATION_S"] = "0.5"
    try:
        with running_emulator(state_dir) as running:
            yield running
    finally:
        os.environ.pop("SOF_ALARM_EVALUATION_S", None)
