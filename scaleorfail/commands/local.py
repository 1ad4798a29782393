"""sof local up | status | down."""

from __future__ import annotations

import argparse

from scaleorfail import paths
from scaleorfail.emulator import control
from scaleorfail.emulator.settings import describe_timing, resolve


def up(args: argparse.Namespace) -> int:
    settings = resolve(
        profile=args.profile,
        timing=args.timing,
        port=args.port,
        host=args.host,
        account_concurrency=args.account_concurrency,
    )
    state = paths.state_dir()
    state.mkdir(parents=True, exist_ok=True)
    current = control.up(settings, state, state / "emulator.log", allow_remote=args.allow_remote)
    record = current.record
    print(
        f"emulator up at {current.url} (pid {current.pid}); profile {record['profile']}, "
        f"Lambda account concurrency {record['account_concurrency']}"
    )
    print(describe_timing(record))
    print("next: sof deploy --target local")
    return 0


def status(args: argparse.Namespace) -> int:
    current = control.running(paths.state_dir())
    if current is None:
        print("the emulator is not running (start it with `sof local up`)")
        return 3
    info = control.health(current.url)
    if info is None:
        print(f"the emulator process {current.pid} is alive but does not answer at {current.url}")
        return 1
    settings = info["settings"]
    runtime = info.get("lambda", {})
    print(f"running at {current.url} (pid {current.pid}, up {info['uptime_s']:.0f} s, moto {info['moto']})")
    print(
        f"profile {settings['profile']}: account concurrency {settings['account_concurrency']}, "
        f"idle expiry {settings['idle_expiry_s']:g} s"
    )
    print(describe_timing(settings))
    print(
        f"Lambda environments: {runtime.get('environments', 0)} ({runtime.get('idle', 0)} idle), "
        f"cold starts so far: {runtime.get('cold_starts', 0)}"
    )
    return 0


def down(args: argparse.Namespace) -> int:
    if control.down(paths.state_dir()):
        print("emulator stopped")
    else:
        print("the emulator was not running")
    return 0
