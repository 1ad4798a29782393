"""`sof sweep`: the same burst at several max_concurrency settings, compared, with a scaling model.

``--map-mode distributed`` (or ``both``: the inline sweep, then the distributed one, on the same
tickets) deploys the stack's Map in that mode for its runs (the variables deployed before are kept
and deployed again afterwards, as `sof scenario` does): inline settings stop at the inline Map's 40,
distributed ones go to 10,000. Each mode gets its own scaling model.

Each setting says where it is (setting k of n, elapsed, what it reached) as it goes. A batch
too small for its conclusion is called out: at a high setting each Map slot runs only a
few tickets, so every slot's first, cold ticket weighs on the throughput and the fitted
peak and knee come out lower than a longer burst shows. The rule: at least
MIN_TICKETS_PER_SLOT tickets per slot at the highest setting; the warning cites the cold
starts the run's REPORT lines counted.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scaleorfail import paths
from scaleorfail import target as targets
from scaleorfail.errors import UserError
from scaleorfail.evidence import analysis
from scaleorfail.evidence.scaling import USL
from scaleorfail.pipeline import DISTRIBUTED_LIMIT, EMBED, MAP_LIMIT
from scaleorfail.record.model import HarvestRecord
from scaleorfail.terminal import fill
from scaleorfail.usecases.compare import Compared, compare_records, fit_model, write_report
from scaleorfail.usecases.deploy import deploy
from scaleorfail.usecases.harvest import harvest_runs
from scaleorfail.usecases.scenario import snapshot

MIN_TICKETS_PER_SLOT = 10
Say = Callable[[str], None]


def _stderr(text: str) -> None:
    print(fill(text), file=sys.stderr, flush=True)


@dataclass
class Sweep:
    compared: Compared
    model: USL | None
    out: Path
    warnings: list[str]
    limit: int
    models: dict[str, USL] = field(default_factory=dict)  # by map mode (inline, distributed)


MAP_MODES = ("inline", "distributed", "both")
DEFAULT_SETTINGS = {"inline": "1,2,5,10,20,30,40", "distributed": "10,20,40,100,200", "both": "10,20,40,100,200"}


def parse_concurrency(text: str | None, map_mode: str | None = None) -> list[int]:
    text = text or DEFAULT_SETTINGS[map_mode or "inline"]
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise UserError(
            f"--concurrency {text!r} is not a list of whole numbers", "e.g. --concurrency 1,2,5,10"
        ) from None
    limit = MAP_LIMIT if map_mode in (None, "inline") else DISTRIBUTED_LIMIT
    if not values or values[0] < 1 or values[-1] > limit:
        example = DEFAULT_SETTINGS[map_mode or "inline"]
        raise UserError(
            f"--concurrency values must be between 1 and {limit:,}"
            + (" (the inline Map's limit; --map-mode distributed goes to 10,000)" if limit == MAP_LIMIT else ""),
            f"e.g. --concurrency {example}",
        )
    return values


def plan(settings: list[int], map_mode: str | None) -> list[tuple[str | None, int]]:
    """(mode, setting) in run order: inline settings above 40 are left out (the inline Map cannot run them)."""
    if map_mode == "both":
        inline: list[tuple[str | None, int]] = [("inline", c) for c in settings if c <= MAP_LIMIT]
        return inline + [("distributed", c) for c in settings]
    return [(map_mode, c) for c in settings]


def label(mode: str | None, c: int) -> str:
    return f"sweep-dist-c{c}" if mode == "distributed" else f"sweep-c{c}"


@contextmanager
def deployed_as(target: targets.Target, mode: str | None, state: dict[str, Any], say: Say) -> Iterator[None]:
    """The stack's Map in `mode` for the block (deployed when it is not already); state remembers the restore."""
    current = str((targets.load_outputs(target.name, target) or {}).get("map_mode") or "inline")
    if mode is not None and mode != current:
        if "restore" not in state:
            state["restore"] = snapshot(target, say)
        say(f"sweep: deploying the {mode} Map (map_mode={mode}) ...")
        deploy(target, {**state["restore"], "map_mode": mode}, state.get("auto_approve", False))
    yield


def small_batch_warning(tickets: int, settings: list[int], records: list[HarvestRecord]) -> str | None:
    """Why this batch is too small for the sweep's conclusion (None: it is big enough)."""
    top = max(settings)
    slots = min(top, tickets)
    per_slot = tickets / slots
    if per_slot >= MIN_TICKETS_PER_SLOT:
        return None
    cold = ""
    for record in records:
        embed = record.logs.function(EMBED)
        if record.max_concurrency == top and embed is not None and embed.invocations:
            cold = (
                f" (at max_concurrency {top}, {embed.cold_starts} of {embed.invocations} Embed invocations "
                "were cold starts)"
            )
    needed = MIN_TICKETS_PER_SLOT * top
    return (
        f"-n {tickets} is small for this sweep: at max_concurrency {top} each Map slot runs {per_slot:.1f} tickets, "
        f"so each slot's first, cold ticket weighs on the throughput{cold}; the fitted peak and knee understate what "
        f"a longer burst reaches - use -n {math.ceil(needed)} or more ({MIN_TICKETS_PER_SLOT} tickets per slot)"
    )


def sweep(
    target_name: str,
    region: str | None,
    tickets: int,
    settings: list[int],
    output: Path | None = None,
    wait_s: float = 900.0,
    baseline: str | None = None,
    say: Say = _stderr,
    map_mode: str | None = None,
    auto_approve: bool = False,
) -> Sweep:
    from scaleorfail.load import runner

    target = targets.resolve(target_name, region)
    targets.load_outputs(target.name, target)
    run_dirs: list[str] = []
    began = time.monotonic()
    steps = plan(settings, map_mode)
    state: dict[str, Any] = {"auto_approve": auto_approve}
    try:
        for index, (mode, c) in enumerate(steps, 1):
            with deployed_as(target, mode, state, say):
                where = f"{mode} Map, " if mode else ""
                say(f"sweep {index}/{len(steps)}: {tickets} tickets at max_concurrency {c} ({where}{label(mode, c)})")
                started = time.monotonic()
                run_dir = runner.burst(target_name, tickets, c, label(mode, c))
                run_dirs.append(str(run_dir))
                (record,) = harvest_runs([str(run_dir)], wait_s=wait_s, quiet=True)
            run = analysis.stats(record)
            left = len(steps) - index
            eta = (time.monotonic() - began) / index * left
            say(
                f"sweep {index}/{len(steps)}: max_concurrency {c} done in {time.monotonic() - started:.1f} s - "
                f"{run.throughput or 0:.2f} tickets/s, {run.executions_ok} ok / {run.executions_failed} failed"
                + (f"; {left} setting(s) left, about {eta:.0f} s" if left else "")
            )
            if run.emulator_flag:
                say(f"sweep {index}/{len(steps)}: {run.emulator_flag} - {run.emulator_flag_why}; left out of the fit")
    finally:
        if "restore" in state:
            shown = ", ".join(f"{k}={v}" for k, v in state["restore"].items()) or "the module's defaults"
            say(f"sweep: restoring the deployed variables ({shown})")
            deploy(target, state["restore"], auto_approve)
    compared = compare_records(run_dirs, wait_s, True, baseline)
    models = {
        mode: found
        for mode in ("inline", "distributed")
        if (found := fit_model([r for r in compared.runs if r.map_mode == mode])) is not None
    }
    model = next(iter(models.values()), None)
    out = output or paths.runs_dir() / f"sweep-{Path(run_dirs[0]).name}"
    write_report(compared, model, out)
    warnings = [warning] if (warning := small_batch_warning(tickets, settings, compared.records)) else []
    flagged = [f"{r.label} ({r.emulator_flag})" for r in compared.runs if r.emulator_flag]
    if flagged:
        warnings.append(
            f"{', '.join(flagged)}: the emulator, not the modelled service, set the pace there - those points are "
            "left out of the fit and are not AWS's behaviour (see the report's notes; a quieter machine, or fewer "
            "settings at once, measures them)"
        )
    cap = DISTRIBUTED_LIMIT if map_mode in ("distributed", "both") else MAP_LIMIT
    limit = min(cap, targets.account_concurrency(target) or cap)
    return Sweep(compared, model, out, warnings, limit, models)
