"""sof - the scale-or-fail command line.

Deploy the inference pipeline (to AWS or the embedded emulator), load it, harvest what
happened and explain it. Run `sof <command> --help` for the details of a command.

  sof local up                     start the embedded AWS emulator (127.0.0.1:4566)
  sof deploy --target local        apply terraform/ to it (or --target aws, with Terraform)
  sof invoke-one                   Activity 2: one small batch, its status and step durations
  sof bad-input                    Activity 6: the 5,100-character ticket -> FAILED
  sof console                      the lab console: executions, dashboards, Logs Insights, runs
  sof local down                   stop the emulator
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from scaleorfail.emulator.settings import PROFILES, TIMING_PROFILES
from scaleorfail.errors import UserError

Handler = Callable[[argparse.Namespace], int]


def _package(args: argparse.Namespace) -> int:
    from scaleorfail import paths
    from scaleorfail.packaging import DEFAULT_EXCLUDES, MODEL_ENTRY, build_model_bundle, build_zip
    from scaleorfail.terminal import fill

    output = args.output or paths.build_dir() / "lambda.zip"
    built = [
        build_zip(paths.lambda_src_dir(), output, (*DEFAULT_EXCLUDES, MODEL_ENTRY)),
        build_model_bundle(paths.lambda_src_dir(), output.with_name("model.tar.gz")),
    ]
    for archive in built:
        files = len(archive.files)
        print(
            fill(
                f"built {paths.shown(archive.path)} ({archive.size} bytes, {files} files, "
                f"sha256 {archive.sha256_hex[:16]}...)"
            )
        )
    return 0


def _load_options(args: argparse.Namespace) -> int:
    """Locust prints --help before it loads a locustfile, so the harness's options are listed here."""
    import configargparse  # Locust's parser library; importing locust itself would monkey-patch with gevent

    from scaleorfail.load import options, profiles

    parser = configargparse.ArgumentParser(prog="locust -f loadtest/locustfile.py --headless", add_help=False)
    options.register(parser)
    print("locust -f loadtest/locustfile.py --headless [options]   (also: --config loadtest/<name>.conf)\n")
    print(f"  --profile PROFILE     load profile: {', '.join(profiles.NAMES)} (env SOF_LOAD_PROFILE)\n")
    text = parser.format_help()
    print(text[text.index("scale-or-fail:") :].rstrip())
    return 0


# -- the commands: each names the module that serves it, imported when it runs (`sof --help` stays fast) --


def _local_up(args: argparse.Namespace) -> int:
    from scaleorfail.commands.local import up

    return up(args)


def _local_status(args: argparse.Namespace) -> int:
    from scaleorfail.commands.local import status

    return status(args)


def _local_down(args: argparse.Namespace) -> int:
    from scaleorfail.commands.local import down

    return down(args)


def _deploy(args: argparse.Namespace) -> int:
    from scaleorfail.commands.deploy import deploy

    return deploy(args)


def _outputs(args: argparse.Namespace) -> int:
    from scaleorfail.commands.deploy import outputs_command

    return outputs_command(args)


def _destroy(args: argparse.Namespace) -> int:
    from scaleorfail.commands.deploy import destroy

    return destroy(args)


def _invoke_one(args: argparse.Namespace) -> int:
    from scaleorfail.commands.activities import invoke_one

    return invoke_one(args)


def _bad_input(args: argparse.Namespace) -> int:
    from scaleorfail.commands.activities import bad_input

    return bad_input(args)


def _runs(args: argparse.Namespace) -> int:
    from scaleorfail.commands.runs import runs_command

    return runs_command(args)


def _harvest(args: argparse.Namespace) -> int:
    from scaleorfail.commands.evidence import harvest

    return harvest(args)


def _compare(args: argparse.Namespace) -> int:
    from scaleorfail.commands.evidence import compare_command

    return compare_command(args)


def _report(args: argparse.Namespace) -> int:
    from scaleorfail.commands.evidence import report_command

    return report_command(args)


def _sweep(args: argparse.Namespace) -> int:
    from scaleorfail.commands.evidence import sweep_command

    return sweep_command(args)


def _insights(args: argparse.Namespace) -> int:
    from scaleorfail.commands.insights import insights_command

    return insights_command(args)


def _scenario(args: argparse.Namespace) -> int:
    from scaleorfail.commands.diagnose import scenario_command

    return scenario_command(args)


def _rca(args: argparse.Namespace) -> int:
    from scaleorfail.commands.diagnose import rca_command

    return rca_command(args)


def _portfolio(args: argparse.Namespace) -> int:
    from scaleorfail.commands.diagnose import portfolio_command

    return portfolio_command(args)


def _demo(args: argparse.Namespace) -> int:
    from scaleorfail.commands.demo import demo

    return demo(args)


def _console(args: argparse.Namespace) -> int:
    from scaleorfail.commands.console import console

    return console(args)


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return number


def _concurrency(value: str) -> int:
    from scaleorfail.pipeline import MAP_LIMIT

    number = _positive_int(value)
    if number > MAP_LIMIT:
        raise argparse.ArgumentTypeError(f"{value} is above {MAP_LIMIT}, the inline Map limit")
    return number


def _port(value: str) -> int:
    number = _positive_int(value)
    if number > 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number")
    return number


def _add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target", choices=["local", "aws"], default="local", help="where the stack runs (default local)"
    )
    parser.add_argument("--region", help="AWS region (default: the stack's / your AWS config's)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sof", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    package = commands.add_parser(
        "package",
        help="build the Lambda zip (build/lambda.zip) and the SageMaker model bundle (build/model.tar.gz)",
        description="Package lambda_src/ deterministically: the zip the way Terraform's archive_file builds it, "
        'and model.tar.gz (code/inference.py + code/pipeline/) for embed_backend = "sagemaker", which '
        "Terraform uploads but cannot build: run this before terraform apply.",
    )
    package.add_argument(
        "--output", type=Path, help="where to write the zip (default: build/lambda.zip); the bundle goes next to it"
    )
    package.set_defaults(handler=_package)

    load_options = commands.add_parser(
        "load-options",
        help="the load harness's Locust options (locust --help cannot show them)",
        description="Print the options loadtest/locustfile.py adds to Locust: target, profile, rate, batch size ...",
    )
    load_options.set_defaults(handler=_load_options)

    local = commands.add_parser("local", help="start, inspect or stop the embedded AWS emulator")
    local_commands = local.add_subparsers(dest="local_command", metavar="ACTION", required=True)
    up = local_commands.add_parser(
        "up",
        help="start the emulator in the background",
        description="Start the emulator (moto + a Docker-free Lambda runtime) in the background. "
        "It binds 127.0.0.1 only; state and logs live in .sof/. Whoever reaches its port can create and invoke "
        "Lambda functions, i.e. run code on this machine as you: beyond loopback (--host with --allow-remote) "
        "every request must carry an access token (printed at start, kept in .sof/emulator.json).",
    )
    up.add_argument("--port", type=_port, help="port to listen on (default 4566, or $SOF_EMULATOR_PORT)")
    up.add_argument("--host", help="address to bind (default 127.0.0.1)")
    up.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host; requests must then present the access token ($SOF_EMULATOR_TOKEN, or "
        "a generated one) as their AWS access key id or in an X-Sof-Token header",
    )
    up.add_argument(
        "--profile",
        choices=list(PROFILES),
        help="account profile: default (Lambda account concurrency 1000) or sandbox (10, like workshop accounts)",
    )
    up.add_argument(
        "--account-concurrency", type=_positive_int, help="Lambda account concurrency limit (overrides the profile)"
    )
    up.add_argument(
        "--timing",
        choices=list(TIMING_PROFILES),
        help="timing profile: aws (default; Step Functions and Lambda latencies calibrated to the workshop's AWS "
        "run, so the scaling curve bends as on AWS) or ideal (no modelled latency: the emulator's own overhead). "
        "Also $SOF_TIMING; each knob alone with $SOF_HISTORY_WRITE_MS, $SOF_HISTORY_EVENT_MS, $SOF_TASK_DISPATCH_MS, "
        "$SOF_INVOKE_OVERHEAD_MS, $SOF_COLD_START_MS, $SOF_PLACEMENT_MS (docs/emulator.md)",
    )
    up.set_defaults(handler=_local_up)
    status = local_commands.add_parser("status", help="is it running, with which settings")
    status.set_defaults(handler=_local_status)
    down = local_commands.add_parser("down", help="stop the emulator and every Lambda environment it started")
    down.set_defaults(handler=_local_down)

    for name, verb in (("deploy", "create or update"), ("destroy", "remove")):
        command = commands.add_parser(
            name,
            help=f"{verb} the pipeline on a target",
            description=f"{verb.capitalize()} everything terraform/ declares. --target local works on the running "
            "emulator (no Terraform needed); --target aws runs Terraform.",
        )
        _add_target(command)
        command.add_argument("--var-file", type=Path, help="a .tfvars file with variable values")
        command.add_argument("--var", action="append", metavar="NAME=VALUE", help="set a variable (repeatable)")
        command.add_argument("--auto-approve", action="store_true", help="AWS: do not ask terraform for confirmation")
        command.add_argument("-v", "--verbose", action="store_true", help="list every resource")
        command.set_defaults(handler=_deploy if name == "deploy" else _destroy)

    outputs = commands.add_parser(
        "outputs",
        help="Activity 1: what the deploy created - the stack outputs, one a line",
        description="The stack outputs of a target (.sof/stack-outputs-<target>.json, the same keys on both "
        "targets; docs/stack-outputs.md), one a line, fitted to the terminal.",
    )
    _add_target(outputs)
    outputs.set_defaults(handler=_outputs)

    invoke = commands.add_parser(
        "invoke-one",
        help="Activity 2: run one small batch and show status, step durations and output",
        description="Start one execution with the first N tickets of the dataset, through the load harness (a run "
        "labelled happy-path), wait for it, and print its status, per-step times - the state's time in the history "
        "against the function's own, cold starts on their own rows - and output.",
    )
    _add_target(invoke)
    invoke.add_argument("-n", type=_positive_int, default=3, help="tickets in the batch (default 3)")
    invoke.add_argument("--max-concurrency", type=_concurrency, help="Map max_concurrency (default: the stack's)")
    invoke.add_argument("--tickets", type=Path, help="ticket file (JSON lines; default data/tickets.jsonl)")
    invoke.add_argument("--timeout", type=float, default=300.0, help="seconds to wait (default 300)")
    invoke.add_argument(
        "--label",
        default="happy-path",
        help="label of the run it leaves in runs/ (default happy-path: the portfolio's)",
    )
    invoke.set_defaults(handler=_invoke_one)

    bad = commands.add_parser(
        "bad-input",
        help="Activity 6: send the 5,100-character ticket and show how the execution fails",
        description="Start an execution with one named bad input from data/bad_inputs.json, through the load "
        "harness, and print the FAILED status, the failing state, the error name and cause. It is a run like any "
        "other (runs/<id>/, label bad-input): classify it with `make rca RUN=bad-input`.",
    )
    _add_target(bad)
    bad.add_argument("--name", default="oversized_text_5100", help="which bad input (default oversized_text_5100)")
    bad.add_argument("--timeout", type=float, default=120.0, help="seconds to wait (default 120)")
    bad.add_argument(
        "--label",
        default="bad-input",
        help="label of the run it leaves in runs/ (default bad-input: make rca RUN=bad-input)",
    )
    bad.set_defaults(handler=_bad_input)
    add_evidence_commands(commands)
    add_diagnose_commands(commands)
    add_console_command(commands)
    return parser


def add_console_command(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    console = commands.add_parser(
        "console",
        help="the lab console: state machines, executions, dashboards, Logs Insights, alarms, Lambda, runs",
        description="Serve the lab's web console on 127.0.0.1 and print its URL (it opens nothing by itself). "
        "It reads the target through the AWS APIs like every other command: against the emulator a learner may "
        "start and stop executions; against AWS it is read-only. Pages: docs/console.md.",
    )
    _add_target(console)
    console.add_argument("--port", type=_port, help="port to listen on (default 4570, or $SOF_CONSOLE_PORT)")
    console.add_argument(
        "--read-only", action="store_true", help="refuse every change to the account (always so on --target aws)"
    )
    console.set_defaults(handler=_console)


def _add_run_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "runs",
        nargs="*",
        metavar="RUN",
        help="run ids, labels (the latest run with it) or directories (default: the latest run of each label in runs/)",
    )
    parser.add_argument("--last", type=_positive_int, help="only the N most recent runs")
    parser.add_argument("--all", action="store_true", help="every run in runs/, not only the latest of each label")
    parser.add_argument(
        "--wait", type=float, default=900.0, help="seconds to wait for running executions (default 900)"
    )
    parser.add_argument("--baseline", help="run id or label to compare against (default: the lowest max_concurrency)")
    parser.add_argument(
        "--mixed-tickets",
        action="store_true",
        help="compute speed-up and efficiency between runs of different ticket counts too (not comparable: "
        "cold starts and the ramp weigh differently; by default those cells stay empty, with a note)",
    )


def add_evidence_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    listing = commands.add_parser(
        "runs",
        help="list the runs under runs/ (run id, label, status, tickets ...), or the ones given",
        description="Every run under runs/ (or $SOF_RUNS_DIR), oldest first. A label stands for the latest run "
        "with it wherever a run id is asked for; given run ids or labels, only those runs are shown, and a "
        "missing one is an error (exit 2).",
    )
    listing.add_argument("runs", nargs="*", metavar="RUN", help="run ids, labels or directories (default: every run)")
    listing.add_argument(
        "--show",
        choices=["path", "run_id", "label", "status", "tickets", "max_concurrency", "started_at"],
        help="print only this field of each run, one a line (for scripts: sof runs --show path burst-c2)",
    )
    listing.set_defaults(handler=_runs)

    harvest = commands.add_parser(
        "harvest",
        help="read what runs left behind (statuses, histories, metrics) into runs/<id>/harvest.json",
        description="For each run: wait until its executions finish, read statuses in bulk, histories and the "
        "run window's CloudWatch metrics, reconcile them with the manifest, and cache the result.",
    )
    harvest.add_argument("runs", nargs="*", metavar="RUN", help="run ids, labels or directories (default: every run)")
    harvest.add_argument("--refresh", action="store_true", help="read everything again instead of using the cache")
    harvest.add_argument("--wait", type=float, default=900.0, help="seconds to wait for running executions")
    harvest.add_argument(
        "--wait-metrics",
        action="store_true",
        help="on AWS, wait until CloudWatch has published the run's 1-minute metrics (about 3 min after it ends) "
        "instead of recording them as provisional",
    )
    harvest.set_defaults(handler=_harvest)

    compare = commands.add_parser(
        "compare",
        help="the comparison table of runs (terminal, Markdown, CSV, JSON)",
        description="One row per run: throughput, latency percentiles, queue wait, throttles, retries, peak "
        "concurrency, speed-up and scaling efficiency against a baseline, a Little's-law check and cost. "
        "The terminal table fits the terminal (a narrow layout under 100 columns; --wide: every column); "
        "comparison.md/.csv/.json have every column. The baseline is the first run named, else the lowest "
        "max_concurrency; never a run with a failed execution.",
    )
    _add_run_selection(compare)
    compare.add_argument(
        "--format",
        default="simple",
        choices=["simple", "github", "grid", "plain"],
        help="table format (simple: the terminal's, fitted to its width; the others have every column)",
    )
    compare.add_argument("--wide", action="store_true", help="every column in the terminal too (~330 characters)")
    compare.add_argument(
        "--steps",
        action="store_true",
        help="also where the time goes, per step: the state's time against the function's own (the gap is "
        "orchestration), invocations and cold starts",
    )
    compare.add_argument("--output", type=Path, help="folder for comparison.{md,csv,json} (default runs/compare)")
    compare.set_defaults(handler=_compare)

    report = commands.add_parser(
        "report",
        help="Markdown + PNG plots + one self-contained HTML page",
        description="The comparison plus plots: throughput vs max_concurrency (ideal line, scaling model), "
        "latency per step, concurrency and queue depth over time, throttles over time.",
    )
    _add_run_selection(report)
    report.add_argument("--output", type=Path, help="report folder (default runs/report)")
    report.set_defaults(handler=_report)

    sweep = commands.add_parser(
        "sweep",
        help="the same burst at several max_concurrency settings, compared, with a scaling model",
        description="Run a single-batch burst at each setting, harvest and compare the runs, and fit the "
        "Universal Scalability Law: where do returns diminish, and which setting reaches a target throughput?",
    )
    _add_target(sweep)
    sweep.add_argument(
        "--concurrency",
        default=None,
        help="settings (default 1,2,5,10,20,30,40; with --map-mode distributed or both 10,20,40,100,200)",
    )
    sweep.add_argument(
        "--map-mode",
        choices=("inline", "distributed", "both"),
        default=None,
        help="deploy the Map in this mode for the sweep (both: inline up to 40, then distributed, same tickets), "
        "then the variables deployed before again (default: the stack as deployed)",
    )
    sweep.add_argument("-n", type=_positive_int, default=500, help="tickets per burst (default 500)")
    sweep.add_argument("--target-throughput", type=float, help="tickets/s you need: recommends a setting")
    sweep.add_argument("--output", type=Path, help="report folder (default runs/sweep-<first run>)")
    sweep.add_argument("--wait", type=float, default=900.0, help=argparse.SUPPRESS)
    sweep.add_argument("--baseline", default=None, help=argparse.SUPPRESS)
    sweep.set_defaults(handler=_sweep)


def add_diagnose_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    insights = commands.add_parser(
        "insights",
        help="run a Logs Insights query (the workshop's, by name, or your own)",
        description="Runs one of terraform/queries/ (the same files as the saved query definitions) or --query "
        "through StartQuery/GetQueryResults, and prints the rows as a table.",
    )
    insights.add_argument("name", nargs="?", help="query name (see --list)")
    insights.add_argument("--query", help="your own query text")
    insights.add_argument("--list", action="store_true", help="list the named queries")
    insights.add_argument("--since", default="1h", help="how far back (e.g. 15m, 2h; default 1h)")
    insights.add_argument("--run", help="the time window of this run (id or label) instead of --since")
    insights.add_argument("--log-groups", help="lambda, state_machine, or comma-separated log group names")
    _add_target(insights)
    insights.set_defaults(handler=_insights)

    scenario = commands.add_parser(
        "scenario",
        help="reproduce an incident: queueing, throttled, exhausted, timeout, bad-input, endpoint (SageMaker)",
        description="Set the scenario's Terraform variables, run a small load, harvest it and restore the "
        "variables that were deployed before it. Then classify the run with `sof rca <run>`.",
    )
    scenario.add_argument("name", help="queueing | throttled | exhausted | timeout | bad-input | endpoint")
    _add_target(scenario)
    scenario.add_argument(
        "--scale", type=float, default=1.0, help="multiply the ticket counts (e.g. 0.2 for quick runs)"
    )
    scenario.add_argument("--auto-approve", action="store_true", help="AWS: apply Terraform without asking")
    scenario.set_defaults(handler=_scenario)

    rca = commands.add_parser(
        "rca",
        help="classify a run with the RCA tree and write an evidence-first incident report",
        description="THROTTLED (queueing / hard 429), EXHAUSTED, TIMED OUT, BAD INPUT or HEALTHY - with the "
        "evidence behind each, the hypothesis, the fishbone bone, one safe action and the verification run. "
        "Reads the run's harvest record only: its evidence was frozen at harvest, scoped to the run.",
    )
    rca.add_argument("run", help="run id, label (its latest run) or directory")
    rca.add_argument(
        "--no-logs", action="store_true", help="leave the run's log evidence out (histories and metrics only)"
    )
    rca.set_defaults(handler=_rca)

    portfolio = commands.add_parser(
        "portfolio",
        help="Activity 8: the evidence bundle (graph, wall vs fix, bad input, Insights, incident reports)",
        description="Collect the evidence of the workshop into one Markdown + HTML bundle, with the checklist "
        "ticked only for artefacts that exist. Runs are picked from runs/ unless given.",
    )
    portfolio.add_argument("--wall", help="the max_concurrency 2 run, id or label (default: the newest)")
    portfolio.add_argument("--fix", help="the max_concurrency 10 run, id or label (default: the newest)")
    portfolio.add_argument(
        "--bad-input", help="the bad-input run, id or label (default: the newest PayloadTooLarge failure)"
    )
    portfolio.add_argument(
        "--happy", help="the run drawn as the happy-path graph, id or label (default: the latest happy-path run)"
    )
    portfolio.add_argument("--output", type=Path, help="folder (default runs/portfolio)")
    portfolio.set_defaults(handler=_portfolio)

    demo = commands.add_parser(
        "demo",
        help="the main job on the emulator: deploy, burst at 2 and 10, harvest, compare, report",
        description="Start the emulator (if needed), deploy, run the workshop burst at max_concurrency 2 and 10, "
        "harvest, print the comparison, write the report, and stop the emulator again.",
    )
    demo.add_argument(
        "-n", type=_positive_int, default=500, help="tickets per burst (default 500, the workshop's burst)"
    )
    demo.add_argument("--keep-emulator", action="store_true", help="leave the emulator running afterwards")
    demo.add_argument("--port", type=_port, help="port of the emulator it starts (default 4566, or $SOF_EMULATOR_PORT)")
    demo.set_defaults(handler=_demo)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except UserError as error:
        from scaleorfail.terminal import fill

        print(fill(error.render()), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `sof ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
