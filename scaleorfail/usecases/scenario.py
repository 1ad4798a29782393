"""Reproduce an incident (`sof scenario NAME`): deploy its variables, run it, harvest it, restore.

Before the first run the variables of the current deployment are read (the stack outputs
file keeps what `sof deploy` applied); each run deploys the scenario's own settings - the
module's defaults plus the scenario's variables, keeping only where and how the stack is
deployed (scenarios.PLACEMENT_VARIABLES: name prefix, region, tags ...) so that the
incident is the same whatever was deployed - and afterwards the snapshot is deployed again:
the stack is left as it was found, not reset to the module's defaults.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scaleorfail import paths, scenarios
from scaleorfail import target as targets
from scaleorfail.errors import UserError
from scaleorfail.record.model import HarvestRecord
from scaleorfail.terminal import fill
from scaleorfail.usecases.deploy import deploy
from scaleorfail.usecases.harvest import harvest_runs

Say = Callable[[str], None]


def _stderr(text: str) -> None:
    print(fill(text, subsequent="    "), file=sys.stderr, flush=True)


@dataclass
class ScenarioRuns:
    scenario: scenarios.Scenario
    run_dirs: list[Path] = field(default_factory=list)
    records: list[HarvestRecord] = field(default_factory=list)
    restored: dict[str, Any] = field(default_factory=dict)


@contextmanager
def account_limit(target: targets.Target, value: int | None) -> Iterator[None]:
    """The emulator's account concurrency for the scenario, restored afterwards."""
    if value is None or target.name != "local":
        yield
        return
    from scaleorfail.emulator import control

    current = control.running(paths.state_dir())
    if current is None:
        raise UserError("the emulator is not running", "start it: make local-up (or make deploy TARGET=local)")
    before = int(current.record.get("account_concurrency", 1000))
    url = target.endpoint_url or current.local_url
    info = control.health(url, token=current.token) or {}
    before = int(info.get("settings", {}).get("account_concurrency", before))
    control.set_account_concurrency(url, value, current.token)
    try:
        yield
    finally:
        control.set_account_concurrency(url, before, current.token)


def snapshot(target: targets.Target, say: Say = _stderr) -> dict[str, Any]:
    """The variables the stack is deployed with now (what the scenario restores)."""
    deployed = targets.deployed_variables(target.name)
    if deployed is None:
        say(
            "  note: the variables of the current deployment are not known (it was applied outside `sof deploy`, "
            "or before this version): afterwards the stack is deployed with the module's defaults"
        )
        return {}
    return deployed


def scenario_variables(deployed: dict[str, Any], spec: scenarios.RunSpec, extra: dict[str, Any]) -> dict[str, Any]:
    """A run's variables: where the stack is deployed (kept), then the scenario's own settings."""
    kept = {k: v for k, v in deployed.items() if k in scenarios.PLACEMENT_VARIABLES}
    return {**kept, **spec.variables, **extra}


def run_scenario(
    name: str, target: targets.Target, scale: float = 1.0, auto_approve: bool = False, say: Say = _stderr
) -> ScenarioRuns:
    from scaleorfail.load import runner

    known = scenarios.catalogue(scale)
    if name not in known:
        raise UserError(f"no scenario named {name!r}", f"use one of: {', '.join(known)}")
    scenario = known[name]
    targets.load_outputs(target.name, target)
    extra: dict[str, Any] = {}
    if target.name == "aws" and scenario.account_concurrency:  # the sandbox limit, reproduced on AWS
        limit, unreserved = targets.account_limits(target)
        extra.update(scenarios.aws_throttle_variables(scenario.account_concurrency, limit, unreserved))
    result = ScenarioRuns(scenario, restored=snapshot(target, say))
    say(f"scenario {scenario.name}: {scenario.description}")
    try:
        with account_limit(target, scenario.account_concurrency):
            for spec in scenario.runs:
                variables = scenario_variables(result.restored, spec, extra)
                shown = ", ".join(f"{k}={v}" for k, v in {**spec.variables, **extra}.items()) or "defaults"
                say(f"  {spec.label}: {spec.tickets} tickets at max_concurrency {spec.max_concurrency} ({shown})")
                deploy(target, variables, auto_approve)
                tickets, size = scenarios.ticket_file(spec.batch, spec.tickets)
                try:
                    made = runner.burst(target.name, size, spec.max_concurrency, spec.label, ticket_file=tickets)
                finally:
                    if tickets is not None:
                        tickets.unlink(missing_ok=True)
                result.run_dirs.append(made)
                result.records.append(harvest_runs([str(made)], quiet=True)[0])
    finally:
        shown = ", ".join(f"{k}={v}" for k, v in result.restored.items()) or "the module's defaults"
        say(f"  restoring the deployed variables ({shown})")
        deploy(target, result.restored, auto_approve)
    return result
