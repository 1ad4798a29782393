"""sof local up | status | down."""

from __future__ import annotations

import argparse

from scaleorfail import paths
from scaleorfail.emulator import control
from scaleorfail.emulator.quotas import published
from scaleorfail.emulator.settings import describe_quotas, describe_timing, resolve
from scaleorfail.terminal import fill


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
        fill(
            f"emulator up at {current.url} (pid {current.pid}); profile {record['profile']}, "
            f"Lambda account concurrency {record['account_concurrency']}"
        )
    )
    print(fill(describe_timing(record)))
    print(fill(describe_quotas(record, published(str(record.get("region", "us-east-1"))))))
    print("next: `make deploy`")
    return 0


def status(args: argparse.Namespace) -> int:
    current = control.running(paths.state_dir())
    if current is None:
        print("the emulator is not running (start it with `make local-up`)")
        return 3
    info = control.health(current.local_url, token=current.token)
    if info is None:
        print(fill(f"the emulator process {current.pid} is alive but does not answer at {current.url}"))
        return 1
    settings = info["settings"]
    runtime = info.get("lambda", {})
    print(
        fill(
            f"running at {current.url} (pid {current.pid}, instance {info.get('instance', '?')}, "
            f"up {info['uptime_s']:.0f} s, moto {info['moto']})"
        )
    )
    if info.get("token_required"):
        print(fill(f"access token required (beyond loopback): it is in {paths.state_dir() / 'emulator.json'}"))
    print(
        f"profile {settings['profile']}: account concurrency {settings['account_concurrency']}, "
        f"idle expiry {settings['idle_expiry_s']:g} s"
    )
    print(fill(describe_timing(settings)))
    print(fill(describe_quotas(settings, published(str(settings.get("region", "us-east-1"))))))
    print(
        f"Lambda environments: {runtime.get('environments', 0)} ({runtime.get('idle', 0)} idle), "
        f"cold starts so far: {runtime.get('cold_starts', 0)}"
    )
    kept = info.get("retention") or {}
    if kept:
        print(
            fill(
                f"retention: {kept.get('finished_executions', 0)} finished executions kept "
                f"({kept.get('finished_execution_bytes', 0) / 1024 / 1024:.1f} MB of "
                f"{settings['retain_execution_mb']:g}, at most {settings['retain_executions']}), "
                f"{kept.get('evicted_executions', 0)} evicted; log events dropped "
                f"{kept.get('dropped_log_events', 0)}, metric points dropped {kept.get('dropped_metric_points', 0)}"
            )
        )
    return 0


def down(args: argparse.Namespace) -> int:
    if control.down(paths.state_dir()):
        print("emulator stopped")
    else:
        print("the emulator was not running")
    return 0
