"""The main job on the embedded emulator, end to end: deploy, the workshop burst at 2 and 10, compare, report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scaleorfail import paths
from scaleorfail.emulator import control
from scaleorfail.emulator.settings import resolve
from scaleorfail.errors import UserError
from scaleorfail.terminal import hint
from scaleorfail.usecases.compare import Compared, compare_records, fit_model, write_report

SETTINGS = (2, 10)


@dataclass
class Demo:
    compared: Compared
    written: dict[str, Path]
    run_dirs: list[str]


def run_demo(tickets: int, keep_emulator: bool, say: Callable[[str], None], port: int | None = None) -> Demo:
    from scaleorfail import target as targets
    from scaleorfail.deploy import local
    from scaleorfail.load import runner

    state = paths.state_dir()
    state.mkdir(parents=True, exist_ok=True)
    current = control.running(state)
    started_here = current is None
    if current is None:
        settings = resolve(port=port)
        say(f"1/5 starting the embedded AWS emulator (127.0.0.1:{settings.port}) ...")
        control.up(settings, state, state / "emulator.log")
    else:
        if port is not None and port != current.port:
            raise UserError(
                f"an emulator is already running at {current.url}, not on port {port}",
                f"stop it first ({hint('sof local down')}), or run the demo on it without --port / PORT=",
            )
        say(f"1/5 using the emulator that is already running at {current.url}")
        info = control.health(current.local_url, token=current.token)
        timing = str((info or {}).get("timing") or "?")
        if timing != "aws":
            say(
                f"note: that emulator runs the {timing!r} timing profile, so these numbers will not show AWS's "
                f"scaling curve; for the calibrated one: {hint('sof local down && sof local up --timing aws')}"
            )
    try:
        target = targets.local_target()
        say("2/5 deploying terraform/ to it ...")
        local.deploy(target)
        run_dirs = []
        for step, c in zip(("3/5", "4/5"), SETTINGS, strict=True):
            say(f"{step} the workshop burst: {tickets} tickets in one execution at max_concurrency {c} ...")
            run_dirs.append(str(runner.burst("local", tickets, c, f"demo-c{c}")))
        say("5/5 harvesting histories and metrics, comparing, writing the report ...")
        compared = compare_records(run_dirs, wait_s=900.0, quiet=True)
        written = write_report(compared, fit_model(compared.runs), paths.runs_dir() / "demo-report")
    finally:
        if started_here and not keep_emulator:
            control.down(state)
    return Demo(compared, written, run_dirs)
