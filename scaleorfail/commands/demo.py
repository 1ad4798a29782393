"""sof demo: the main job, end to end, on the embedded emulator."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from scaleorfail import paths
from scaleorfail.evidence import compare
from scaleorfail.terminal import fill
from scaleorfail.usecases.demo import run_demo


def demo(args: argparse.Namespace) -> int:
    began = time.monotonic()
    done = run_demo(args.n, args.keep_emulator, lambda text: print(fill(text), flush=True), port=args.port)
    runs, _, baseline = done.compared
    print()
    print(compare.table(runs, "simple", wide=False))
    for note in compare.footnotes(runs, baseline):
        print(fill(f"  - {note}"))
    slow, fast = runs[0], runs[-1]
    if slow.wall_s and fast.wall_s and fast.speedup and fast.efficiency:
        factor = (fast.max_concurrency or 1) / (slow.max_concurrency or 1)
        print()
        print(
            fill(
                f"max_concurrency {slow.max_concurrency} -> {fast.max_concurrency}: {slow.wall_s:.1f} s -> "
                f"{fast.wall_s:.1f} s, {fast.speedup:.2f}x the throughput for {factor:.0f}x the concurrency "
                f"(scaling efficiency {fast.efficiency:.0%})"
            )
        )
    print()
    print(fill(f"report: {paths.shown(Path(done.written['html']))}"))
    print(fill(f"runs:   {', '.join(Path(d).name for d in done.run_dirs)}", subsequent=" " * 8))
    print(f"done in {time.monotonic() - began:.0f} s")
    print()
    print(
        fill(
            "next: open the report; try `make burst N=500 MAX_CONCURRENCY=5`, `make sweep`, the sandbox account "
            "(`make local-up EMULATOR_PROFILE=sandbox`, then `make burst N=500 MAX_CONCURRENCY=20`), or the "
            "AWS path in README.md"
        )
    )
    return 0
