"""sof demo: the main job, end to end, on the embedded emulator."""

from __future__ import annotations

import argparse
import time

from scaleorfail import compare, paths
from scaleorfail.commands.evidence import compare_records, fit_model, write_report
from scaleorfail.emulator import control
from scaleorfail.emulator.settings import resolve
from scaleorfail.errors import UserError


def demo(args: argparse.Namespace) -> int:
    from scaleorfail import target as targets
    from scaleorfail.deploy import local
    from scaleorfail.load import runner

    began = time.monotonic()
    state = paths.state_dir()
    state.mkdir(parents=True, exist_ok=True)
    current = control.running(state)
    started_here = current is None
    if current is None:
        settings = resolve(port=args.port)
        print(f"1/5 starting the embedded AWS emulator (127.0.0.1:{settings.port}) ...", flush=True)
        control.up(settings, state, state / "emulator.log")
    else:
        if args.port is not None and args.port != current.port:
            raise UserError(
                f"an emulator is already running at {current.url}, not on port {args.port}",
                "stop it first (sof local down), or run the demo on it without --port / PORT=",
            )
        print(f"1/5 using the emulator that is already running at {current.url}", flush=True)
        info = control.health(current.url, token=current.token)
        timing = str((info or {}).get("timing") or "?")
        if timing != "aws":
            print(
                f"note: that emulator runs the {timing!r} timing profile, so these numbers will not show AWS's "
                "scaling curve; for the calibrated one: sof local down && sof local up --timing aws",
                flush=True,
            )
    try:
        target = targets.local_target()
        print("2/5 deploying terraform/ to it ...", flush=True)
        local.deploy(target)
        run_dirs = []
        for step, c in (("3/5", 2), ("4/5", 10)):
            print(
                f"{step} the workshop burst: {args.n} tickets in one execution at max_concurrency {c} ...", flush=True
            )
            run_dirs.append(str(runner.burst("local", args.n, c, f"demo-c{c}")))
        print("5/5 harvesting histories and metrics, comparing, writing the report ...", flush=True)
        compared = compare_records(run_dirs, wait_s=900.0, quiet=True)
        runs, _, baseline = compared
        written = write_report(compared, fit_model(runs), paths.runs_dir() / "demo-report")
    finally:
        if started_here and not args.keep_emulator:
            control.down(state)
    print()
    print(compare.table(runs, "simple"))
    for note in compare.footnotes(runs, baseline):
        print(f"  - {note}")
    slow, fast = runs[0], runs[-1]
    if slow.wall_s and fast.wall_s and fast.speedup and fast.efficiency:
        factor = (fast.max_concurrency or 1) / (slow.max_concurrency or 1)
        print(
            f"\nmax_concurrency {slow.max_concurrency} -> {fast.max_concurrency}: {slow.wall_s:.1f} s -> "
            f"{fast.wall_s:.1f} s, {fast.speedup:.2f}x the throughput for {factor:.0f}x the concurrency "
            f"(scaling efficiency {fast.efficiency:.0%})"
        )
    print(f"\nreport: {written['html']}")
    print(f"runs:   {', '.join(run_dirs)}")
    print(f"done in {time.monotonic() - began:.0f} s")
    print("\nnext: open the report; try `make burst N=500 MAX_CONCURRENCY=5`, `make sweep`,")
    print("      the sandbox account (`make local-up EMULATOR_PROFILE=sandbox`, then MAX_CONCURRENCY=20),")
    print("      or the AWS path in README.md")
    return 0
