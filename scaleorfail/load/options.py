"""The harness's options: registered on Locust's own parser, validated into LoadSettings.

Every option is also an environment variable (SOF_*) and a key in a `--config` file
(see loadtest/*.conf). Locust's own `--profile` names the load profile.
"""

from __future__ import annotations

import argparse
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scaleorfail import paths
from scaleorfail.errors import UserError
from scaleorfail.load import profiles
from scaleorfail.pipeline import DISTRIBUTED_LIMIT, MAP_LIMIT
from scaleorfail.terminal import hint

RUN_ID_MAX = 64  # execution names <run id>[-xxxx]-<worker>-<seq> stay within AWS's 80 characters
RUN_ID = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9_.-]{{0,{RUN_ID_MAX - 1}}}$")
STAMP_FORMAT = "%Y%m%dT%H%M%S"
# a generated run id is <stamp>-<label>-<4 hex digits>: the label keeps every character that fits
LABEL_MAX = RUN_ID_MAX - len("20260101T000000") - len("-") - len("-0000")
LABEL_CHARACTERS = re.compile(r"^[A-Za-z0-9_.-]*$")
PROFILE_OPTIONS = "--profile, --rate, --duration (or -t), --batch-size, --baseline-rate, --steps"


def register(parser: Any) -> None:
    """Add the harness options to Locust's argument parser."""
    for action in getattr(parser, "_actions", []):
        if action.dest == "profile" and not getattr(action, "env_var", None):
            action.env_var = "SOF_LOAD_PROFILE"  # Locust's --profile doubles as the load profile
            action.help = f"load profile: {', '.join(profiles.NAMES)} (env SOF_LOAD_PROFILE)"
    group = parser.add_argument_group("scale-or-fail", "How the pipeline is loaded (each option: also SOF_* env var)")
    group.add_argument(
        "--target", choices=["local", "aws"], default="local", env_var="SOF_TARGET", help="where the stack runs"
    )
    group.add_argument("--region", default=None, env_var="SOF_REGION", help="AWS region (default: the stack's)")
    group.add_argument(
        "--state-machine-arn",
        default=None,
        env_var="SOF_STATE_MACHINE_ARN",
        help="start executions of this state machine instead of the stack's",
    )
    group.add_argument("--rate", type=float, default=1.0, env_var="SOF_RATE", help="executions started per second")
    group.add_argument(
        "--duration",
        type=float,
        default=None,
        env_var="SOF_DURATION",
        help="seconds of load (profile default); Locust's -t/--run-time sets it too",
    )
    group.add_argument("--batch-size", type=int, default=10, env_var="SOF_BATCH_SIZE", help="tickets per execution")
    group.add_argument(
        "--max-concurrency",
        type=int,
        default=None,
        env_var="SOF_MAX_CONCURRENCY",
        help="Map max_concurrency in each input (0..40; default: the stack's default)",
    )
    group.add_argument(
        "--baseline-rate", type=float, default=None, env_var="SOF_BASELINE_RATE", help="spike: rate outside the spike"
    )
    group.add_argument("--steps", type=int, default=4, env_var="SOF_STEPS", help="step: number of plateaus")
    group.add_argument(
        "--tickets", default=None, env_var="SOF_TICKETS", help="ticket file (default data/tickets.jsonl)"
    )
    group.add_argument("--run-label", default="", env_var="SOF_RUN_LABEL", help="a label for the run (e.g. c2)")
    group.add_argument("--run-dir", default=None, env_var="SOF_RUN_DIR", help="where runs are written (default runs/)")
    group.add_argument("--run-id", default="", env_var="SOF_RUN_ID", help="run id (default: generated)")
    group.add_argument(
        "--overwrite",
        action="store_true",
        default=False,
        env_var="SOF_OVERWRITE",
        help="replace the evidence of an existing run with the same --run-id (refused otherwise)",
    )
    # Locust forwards only custom options to workers: the coordinator copies --profile here.
    group.add_argument("--sof-profile", default="", help=argparse.SUPPRESS)
    group.add_argument(
        "--track-completion",
        choices=["on", "off"],
        default="on",
        env_var="SOF_TRACK_COMPLETION",
        help="report finished executions to Locust as 'Execution' requests (default on)",
    )
    group.add_argument(
        "--drain-timeout",
        type=float,
        default=900.0,
        env_var="SOF_DRAIN_TIMEOUT",
        help="seconds to wait for started executions to finish after the last start",
    )
    group.add_argument(
        "--poll-interval", type=float, default=1.0, env_var="SOF_POLL_INTERVAL", help="seconds between status polls"
    )
    group.add_argument(
        "--progress-interval",
        type=float,
        default=5.0,
        env_var="SOF_PROGRESS_INTERVAL",
        help="seconds between progress lines on stderr (done / running / queued, elapsed, ETA); 0: none",
    )


@dataclass(frozen=True)
class LoadSettings:
    target: str
    region: str | None
    state_machine_arn: str | None
    profile: profiles.Profile
    rate: float
    duration: float
    batch_size: int
    max_concurrency: int | None
    tickets: Path
    run_label: str
    run_dir: Path
    run_id: str
    track_completion: bool
    drain_timeout: float
    poll_interval: float
    baseline_rate: float | None
    steps: int
    overwrite: bool = False
    progress_interval: float = 5.0

    def parameters(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "duration": self.duration,
            "batch_size": self.batch_size,
            "max_concurrency": self.max_concurrency,
            "tickets_file": str(self.tickets),
            "baseline_rate": self.baseline_rate,
            "steps": self.steps,
            "executions_planned": self.profile.total(),
            "drain_timeout": self.drain_timeout,
            "poll_interval": self.poll_interval,
        }


def check_label(label: str) -> None:
    """A run label is kept whole in the run id, so scripts can find the run by it: letters, digits, -, _ and ."""
    if not LABEL_CHARACTERS.match(label) or len(label) > LABEL_MAX:
        raise UserError(
            f"--run-label {label!r} may only hold letters, digits, -, _ and . (at most {LABEL_MAX} characters)",
            "e.g. --run-label burst-c2 (make burst LABEL=burst-c2)",
        )
    if label and not (label[0].isalnum() and label[-1].isalnum()):
        raise UserError(
            f"--run-label {label!r} must begin and end with a letter or digit (the run id keeps it whole; "
            "'.', '..' and '-' would name no run)",
            "e.g. --run-label burst-c2 (make burst LABEL=burst-c2)",
        )


def new_run_id(label: str) -> str:
    """<UTC stamp>-<label>-<4 hex digits>; the label whole (see check_label)."""
    check_label(label)
    stamp = datetime.now(UTC).strftime(STAMP_FORMAT)
    return f"{stamp}-{label + '-' if label else ''}{secrets.token_hex(2)}"


def locust_duration(options: Any, name: str) -> float | None:
    """Locust's own -t/--run-time as the profile's duration; -u/-r have no meaning here and are refused."""
    users, spawn_rate = getattr(options, "num_users", None), getattr(options, "spawn_rate", None)
    if users is not None or spawn_rate is not None:
        given = " and ".join(
            flag for flag, value in (("-u/--users", users), ("-r/--spawn-rate", spawn_rate)) if value is not None
        )
        raise UserError(
            f"{given} do not apply: the harness starts executions on the profile's schedule, not with Locust users",
            f"drop {given}; shape the load with {PROFILE_OPTIONS} (every option: {hint('sof load-options')})",
        )
    run_time = getattr(options, "run_time", None)
    if run_time is None:
        return None
    seconds = float(run_time)
    if name == "single-batch":
        raise UserError(
            "-t/--run-time does not apply to --profile single-batch: it starts one execution, which lasts as long "
            "as its tickets take",
            "drop -t, or load for a while with a stream: --profile steady --rate 2 -t 30s",
        )
    if seconds <= 0:
        raise UserError(f"-t/--run-time must be a positive time, got {run_time}", "e.g. -t 30s")
    duration = getattr(options, "duration", None)
    if duration is not None and float(duration) != seconds:
        raise UserError(
            f"-t/--run-time ({seconds:g} s) and --duration ({float(duration):g} s) disagree",
            "give one of them: -t is the profile's duration",
        )
    return seconds


def validate(options: Any, coordinator: bool = True) -> LoadSettings:
    """One clear error per invalid option (raised as UserError).

    The coordinator also reads Locust's own -t/-u/-r (a worker gets the duration it settled on)."""
    name = getattr(options, "sof_profile", "") or getattr(options, "profile", None) or "single-batch"
    if name not in profiles.NAMES:
        raise UserError(f"unknown load profile {name!r}", f"use --profile one of: {', '.join(profiles.NAMES)}")
    run_time = locust_duration(options, name) if coordinator else None
    duration = run_time if run_time is not None else options.duration
    if options.rate is None or options.rate <= 0:
        raise UserError(
            f"--rate must be a positive number of executions per second, got {options.rate}", "e.g. --rate 5"
        )
    if duration is not None and duration <= 0:
        raise UserError(f"--duration must be a positive number of seconds, got {duration}", "e.g. --duration 30")
    if options.batch_size is None or options.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1 ticket, got {options.batch_size}", "e.g. --batch-size 10")
    if options.max_concurrency is not None and not 0 <= options.max_concurrency <= DISTRIBUTED_LIMIT:
        raise UserError(
            f"--max-concurrency must be between 0 and {DISTRIBUTED_LIMIT:,} (0 = no limit below the Map's own: "
            f"{MAP_LIMIT} inline, {DISTRIBUTED_LIMIT:,} distributed), got {options.max_concurrency}",
            "e.g. --max-concurrency 10",
        )
    if options.baseline_rate is not None and options.baseline_rate < 0:
        raise UserError(f"--baseline-rate must not be negative, got {options.baseline_rate}", "e.g. --baseline-rate 1")
    if options.steps < 1:
        raise UserError(f"--steps must be at least 1, got {options.steps}", "e.g. --steps 4")
    if options.drain_timeout < 0 or options.poll_interval <= 0:
        raise UserError("--drain-timeout must be >= 0 and --poll-interval > 0", "e.g. --poll-interval 1")
    progress_interval = float(getattr(options, "progress_interval", 5.0) or 0.0)
    if progress_interval < 0:
        raise UserError(f"--progress-interval must be >= 0 seconds, got {progress_interval:g}", "e.g. 5, or 0 for none")
    check_label(options.run_label or "")
    run_id = options.run_id or new_run_id(options.run_label)
    if not RUN_ID.match(run_id):
        raise UserError(
            f"--run-id {run_id!r} may only hold letters, digits, -, _ and . (1-{RUN_ID_MAX}, a letter or digit first)",
            "e.g. --run-id c2-burst",
        )
    profile = profiles.build(name, options.rate, duration, baseline_rate=options.baseline_rate, steps=options.steps)
    tickets = Path(options.tickets) if options.tickets else paths.tickets_file()
    run_dir = Path(options.run_dir) if options.run_dir else paths.runs_dir()
    return LoadSettings(
        target=options.target,
        region=options.region,
        state_machine_arn=getattr(options, "state_machine_arn", None) or None,
        profile=profile,
        rate=float(options.rate),
        duration=profile.duration,
        batch_size=int(options.batch_size),
        max_concurrency=options.max_concurrency,
        tickets=tickets,
        run_label=options.run_label or name,
        run_dir=run_dir,
        run_id=run_id,
        track_completion=options.track_completion == "on",
        drain_timeout=float(options.drain_timeout),
        poll_interval=float(options.poll_interval),
        baseline_rate=options.baseline_rate,
        steps=int(options.steps),
        overwrite=bool(getattr(options, "overwrite", False)),
        progress_interval=progress_interval,
    )


def map_mode_check(settings: LoadSettings, map_mode: str) -> None:
    """An inline Map never runs more than 40 at once: a higher knob only makes sense for a Distributed Map."""
    wanted = settings.max_concurrency
    if map_mode != "distributed" and wanted is not None and wanted > MAP_LIMIT:
        raise UserError(
            f"--max-concurrency {wanted} is above {MAP_LIMIT}, the inline Map's limit (the stack's map_mode is "
            f"{map_mode})",
            f"use at most {MAP_LIMIT}, or deploy the Distributed Map: {hint('sof deploy --var map_mode=distributed')}",
        )


def concurrency_warning(
    settings: LoadSettings, account_concurrency: int | None, map_mode: str = "inline"
) -> str | None:
    """A warning when the Map knob exceeds what the account can run at once."""
    wanted = settings.max_concurrency
    if wanted is None or account_concurrency is None:
        return None
    in_flight = (DISTRIBUTED_LIMIT if map_mode == "distributed" else MAP_LIMIT) if wanted == 0 else wanted
    if in_flight > account_concurrency:
        return (
            f"warning: max_concurrency {in_flight} exceeds the target's Lambda account concurrency "
            f"({account_concurrency}): expect 429 TooManyRequestsException throttling "
            "(Lambda.TooManyRequestsException in Step Functions; retried if the Retry policy covers it)"
        )
    return None
