"""`sof sweep`: the same burst at several max_concurrency settings, compared, with a scaling model.

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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scaleorfail import paths
from scaleorfail import target as targets
from scaleorfail.errors import UserError
from scaleorfail.evidence import analysis
from scaleorfail.evidence.scaling import USL
from scaleorfail.pipeline import EMBED, MAP_LIMIT
from scaleorfail.record.model import HarvestRecord
from scaleorfail.terminal import fill
from scaleorfail.usecases.compare import Compared, compare_records, fit_model, write_report
from scaleorfail.usecases.harvest import harvest_runs

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


def parse_concurrency(text: str) -> list[int]:
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise UserError(
            f"--concurrency {text!r} is not a list of whole numbers", "e.g. --concurrency 1,2,5,10"
        ) from None
    if not values or values[0] < 1 or values[-1] > MAP_LIMIT:
        raise UserError(
            f"--concurrency values must be between 1 and {MAP_LIMIT}", "e.g. --concurrency 1,2,5,10,20,30,40"
        )
    return values


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
) -> Sweep:
    from scaleorfail.load import runner

    target = targets.resolve(target_name, region)
    targets.load_outputs(target.name, target)
    run_dirs: list[str] = []
    began = time.monotonic()
    for index, c in enumerate(settings, 1):
        say(f"sweep {index}/{len(settings)}: {tickets} tickets at max_concurrency {c} ...")
        started = time.monotonic()
        run_dir = runner.burst(target_name, tickets, c, f"sweep-c{c}")
        run_dirs.append(str(run_dir))
        (record,) = harvest_runs([str(run_dir)], wait_s=wait_s, quiet=True)
        run = analysis.stats(record)
        left = len(settings) - index
        eta = (time.monotonic() - began) / index * left
        say(
            f"sweep {index}/{len(settings)}: max_concurrency {c} done in {time.monotonic() - started:.1f} s - "
            f"{run.throughput or 0:.2f} tickets/s, {run.executions_ok} ok / {run.executions_failed} failed"
            + (f"; {left} setting(s) left, about {eta:.0f} s" if left else "")
        )
    compared = compare_records(run_dirs, wait_s, True, baseline)
    model = fit_model(compared.runs) if len(settings) >= 3 else None
    out = output or paths.runs_dir() / f"sweep-{Path(run_dirs[0]).name}"
    write_report(compared, model, out)
    warning = small_batch_warning(tickets, settings, compared.records)
    limit = min(MAP_LIMIT, targets.account_concurrency(target) or MAP_LIMIT)
    return Sweep(compared, model, out, [warning] if warning else [], limit)
