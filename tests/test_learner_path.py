"""The README's workshop as a learner walks it: the nine activities and the On-AWS commands, on the emulator.

One walk, in the README's order, through the README's own commands (the scripts/ and make targets of
its Activities table, then its On-AWS block with `--target local`), in a terminal of 80 columns; the
commands that only read runs are run again at 120. Every output is read as the learner reads it, and
the walk fails on:

- a traceback;
- a line wider than the terminal;
- a hint that cannot be run as printed: a bare `sof` (the learner's shell has no virtualenv on its
  PATH), or a command in backticks whose program is missing or whose arguments are refused - `make -n`
  judges a make target, sof's own parser a sof command, a script must exist and be executable.

What each activity teaches is checked on the screen too (cold starts labelled, the orchestration gap,
THROTTLED as the Map's cap and as a real 429, the baseline a learner means), and the bad-input
report's action and verification are run exactly as printed. The emulator is the one `make deploy`
starts (on PORT, timing profile ideal: this is about the path, not the latency); scenarios run at
SCALE 0.3 and bursts at N=12 tickets.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import waiting
from console_support import CHROMIUM, REQUIRED
from emulator_support import free_port
from playwright.sync_api import Page
from test_pages import overflow

from scaleorfail.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
TICKETS = 12  # per burst: 6 rounds at max_concurrency 2
NARROW, WIDE = 80, 120
ANSI = re.compile(r"\x1b\[[0-9;]*m")
BARE_SOF = re.compile(r"(?<![\w./-])sof (?=[a-z])")  # `sof compare ...` with nothing before it
SPAN = re.compile(r"`([^`\n]+)`")
PROGRAMS = ("make", "scripts/", ".venv/bin/sof", "sof")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]


def learner_path() -> str:
    """The learner's PATH: the test's, without any folder holding a `sof` (no virtualenv activated)."""
    kept = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and not (Path(d) / "sof").exists()]
    return os.pathsep.join(kept or ["/usr/bin", "/bin"])


class Learner:
    """Runs the README's commands from the repository root, in an isolated runs/ and .sof/, and reads them."""

    def __init__(self, home: Path) -> None:
        self.runs = home / "runs"
        self.env = {
            **os.environ,
            "PATH": learner_path(),
            "SOF_RUNS_DIR": str(self.runs),
            "SOF_STATE_DIR": str(home / "state"),
            "SOF_TIMING": "ideal",
            "PORT": str(free_port()),
            "N": str(TICKETS),
            "SCALE": "0.3",
        }
        for name in ("LABEL", "RUN", "RUNS", "TARGET", "MAX_CONCURRENCY", "STEPS", "QUERY", "SCENARIO", "MAKEFLAGS",
                     "MFLAGS", "VIRTUAL_ENV", "PYTHONPATH"):  # fmt: skip
            self.env.pop(name, None)
        self.checked: set[str] = set()

    def run(self, *command: str, width: int = NARROW) -> subprocess.CompletedProcess[str]:
        """One of the README's commands, run to its end (as long as it keeps working: tests/waiting.py), and read."""
        done = waiting.run(list(command), cwd=ROOT, env={**self.env, "COLUMNS": str(width)})
        self.read(done.stdout + done.stderr, width, " ".join(command))
        return done

    def ok(self, *command: str, width: int = NARROW) -> str:
        done = self.run(*command, width=width)
        assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        return done.stdout + done.stderr

    def shell(self, line: str) -> str:
        """A command line exactly as printed (a hint), run by the learner's shell."""
        return self.ok("bash", "-c", line)

    def read(self, text: str, width: int, what: str) -> None:
        """What the learner reads: no traceback, nothing wider than the terminal, every hint runnable."""
        assert "Traceback" not in text, f"{what}:\n{text}"
        wide = [line for line in (ANSI.sub("", raw) for raw in text.splitlines()) if len(line) > width]
        assert wide == [], f"{what}: {len(wide)} line(s) wider than {width} columns:\n" + "\n".join(wide)
        bare = [line for line in text.splitlines() if BARE_SOF.search(line)]
        assert bare == [], f"{what}: `sof` is not on the learner's PATH:\n" + "\n".join(bare)
        for span in SPAN.findall(text):
            if span not in self.checked:
                self.runnable(span, what)
                self.checked.add(span)

    def runnable(self, span: str, what: str) -> None:
        for part in re.split(r"\s*&&\s*", span):
            words = shlex.split(part)
            if not words or not words[0].startswith(PROGRAMS):
                continue  # a flag, a file or a value in backticks: not a command
            program, arguments = words[0], words[1:]
            if program == "make":
                dry = subprocess.run(
                    ["make", "-n", *arguments], cwd=ROOT, env=self.env, capture_output=True, text=True, check=False
                )
                assert dry.returncode == 0, f"{what}: `{span}` cannot run: {dry.stderr.strip()}"
            elif program.startswith("scripts/"):
                assert os.access(ROOT / program, os.X_OK), f"{what}: `{span}`: no script {program}"
            else:
                assert program != "sof" or shutil.which("sof", path=self.env["PATH"]), f"{what}: `{span}`: no sof"
                assert (ROOT / program).exists(), f"{what}: `{span}`: no {program}"
                try:
                    build_parser().parse_args(arguments)
                except SystemExit:
                    pytest.fail(f"{what}: `{span}`: sof refuses these arguments")

    def manifests(self) -> dict[str, dict[str, object]]:
        """label -> manifest of the latest run with it."""
        found: dict[str, dict[str, object]] = {}
        for path in sorted(self.runs.glob("*/manifest.json")):
            data = json.loads(path.read_text())
            found[str(data["label"])] = data
        return found


def row(table: str, label: str) -> list[str]:
    """The comparison row of a run (its first column is the label), split into cells."""
    found = re.search(rf"^{re.escape(label)} .*$", table, re.MULTILINE)
    assert found, f"no row {label}:\n{table}"
    return found.group(0).split()


def header(text: str) -> str:
    """The comparison table's header (one or two lines)."""
    found = re.search(r"^run +max.*?(?=^-)", text, re.MULTILINE | re.DOTALL)
    assert found, text
    return found.group(0)


def flat(text: str) -> str:
    """The text as one line: what it says, whatever the terminal's wrapping."""
    return " ".join(text.split())


def last_line(text: str) -> str:
    return [line for line in text.splitlines() if line.strip()][-1]


def between(text: str, start: str, end: str) -> str:
    return text[text.index(start) : text.index(end, text.index(start))]


def on_aws_commands() -> list[str]:
    """The README's On-AWS block, one command a line (continuations joined, comments dropped)."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"^## On AWS\n.*?^```bash\n(.*?)^```", readme, re.MULTILINE | re.DOTALL)
    assert block, "README.md has no On AWS code block"
    joined = block.group(1).replace("\\\n", " ")
    return [shlex.join(shlex.split(line, comments=True)) for line in joined.splitlines() if line.strip()]


@pytest.fixture
def learner() -> Iterator[Learner]:
    home = Path(tempfile.mkdtemp(prefix="sof-lp-"))  # short: the paths it prints fit the terminal
    walker = Learner(home)
    try:
        yield walker
    finally:
        walker.run("make", "--no-print-directory", "local-down")
        shutil.rmtree(home, ignore_errors=True)


def test_the_readme_activities_and_the_on_aws_commands(learner: Learner, page: Page) -> None:
    readme = (ROOT / "README.md").read_text()
    activities = between(readme, "| # | Activity", "\n\n")

    # 8 before anything: the portfolio's checklist says how to make each artefact, with the README's commands.
    out = learner.ok("make", "--no-print-directory", "portfolio")
    items = [" ".join(item.split()) for item in re.split(r"\n(?=\[[ x]\] )", out) if item.startswith("[ ] ")]
    hints = [found.group(1) for item in items if (found := re.search(r" - `([^`]+)`", item))]
    assert len(hints) == 9 and all(f"`{hint}`" in activities for hint in hints), (hints, out)

    # 4 before 3: the wall it compares against is missing - one line, non-zero, nothing started.
    early = learner.run("scripts/04-scale-up.sh")
    assert early.returncode != 0
    assert last_line(early.stderr) == "error: no run labelled burst-c2 (Activity 3's wall: run scripts/03-burst.sh)"
    assert not list(learner.runs.glob("*/manifest.json"))
    no_run = learner.run("make", "--no-print-directory", "rca", "RUN=bad-input")
    assert no_run.returncode != 0 and "no run 'bad-input'" in no_run.stderr

    # 1 - deploy: the emulator comes up on PORT; a first deploy creates everything; the outputs, one a line.
    out = learner.ok("scripts/01-deploy.sh")
    assert f"emulator up at http://127.0.0.1:{learner.env['PORT']}" in out
    created = re.search(r"(\d+) resources \((\d+) created\)", out)
    assert created and created.group(1) == created.group(2), out
    assert re.search(r"^  state_machine_arn:\n    arn:aws:states:", out, re.MULTILINE), out

    # 2 - happy path: SUCCEEDED; each step's state time against its function's, cold starts on their own rows.
    out = learner.ok("scripts/02-invoke-one.sh")
    assert "status:    SUCCEEDED" in out and "label happy-path" in flat(out)
    for step in ("Preprocess", "Embed", "Postprocess"):
        assert re.search(rf"^{step} \(cold start\)\s+\d+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+$", out, re.M), out
    assert "the rest is orchestration" in flat(out)

    # 3 - the wall: progress while it runs, its last line once and before the request summary; the row.
    out = learner.ok("scripts/03-burst.sh")
    finals = re.findall(rf"^progress \d+:\d\d: {TICKETS}/{TICKETS} tickets done, 0 running, 0 queued", out, re.M)
    assert len(finals) == 1 and out.index(finals[0]) < out.index("requests (every Locust table"), out
    assert "Response time percentiles" not in out and "INFO/locust" not in out  # Locust's tables and chatter
    assert row(out, "burst-c2")[1] == "2"
    assert "peak" not in header(out)  # the narrow layout under 100 columns
    wall = learner.manifests()["burst-c2"]
    assert wall["status"] == "complete" and re.fullmatch(r"\d{8}T\d{6}-burst-c2-[0-9a-f]{4}", str(wall["run_id"]))

    # 4 - scale up: bursts at 5 and 10 with the wall's ticket count, and the report of all three.
    out = learner.ok("scripts/04-scale-up.sh")
    for label in ("burst-c2", "burst-c5", "burst-c10"):
        row(out, label)
    assert "against burst-c2 (max_concurrency 2, 12 tickets): the baseline, the first run named" in flat(out)
    report = re.search(r"^report: (\S+report\.html)", out, re.MULTILINE)
    assert report and (ROOT / report.group(1)).stat().st_size > 10_000
    assert learner.manifests()["burst-c10"]["summary"]["tickets"] == TICKETS  # type: ignore[index]

    # 5 - Logs Insights: each query's text before its rows; memory in MB as AWS counts it; where the time goes.
    out = learner.ok("scripts/05-logs-insights.sh")
    counts = dict(re.findall(r"^# ([a-z-]+): (\d+) rows", out, re.MULTILINE))
    assert len(counts) == 5 and all(int(n) > 0 for n in counts.values()), out
    assert len(re.findall(r"^  query \(terraform/queries/[a-z-]+\.logsinsights\):$", out, re.M)) == 5
    assert "    | stats avg(duration_ms) as avg_ms, max(duration_ms) as max_ms," in out
    memory = between(out, "memory_size_mb", "\n\n")
    assert re.search(r"embed\s+\d+\s+[\d.]+\s+256\s", memory) and re.search(r"process\s+\d+\s+[\d.]+\s+128\s", memory)
    steps = between(out, "Where the time goes", "written:")
    for label in ("burst-c2", "burst-c10"):
        assert re.search(rf"^{label}\s+Embed\s+\d+", steps, re.M), steps
    assert "Lambda(s) ran while" in flat(steps)
    for query, where in (("fieldz @message", "line 1, column 1: 'fieldz'"), ("fields @message |", "ends with '|'")):
        typo = learner.run(".venv/bin/sof", "insights", "--query", query)
        assert typo.returncode == 2 and flat(typo.stderr).startswith("error: the query does not parse"), typo.stderr
        assert where in flat(typo.stderr)

    # 6 - bad input: FAILED in Preprocess, classified; the report's action and verification run as printed.
    out = learner.ok("scripts/06-bad-input.sh")
    assert "status:    FAILED" in out and "failed in: Preprocess" in out and "PayloadTooLarge" in out
    assert "BAD INPUT" in out and "_In plain words_: BAD INPUT" in flat(out)
    action = SPAN.findall(between(out, "**Action**", "**Verification run**"))
    verification = SPAN.findall(between(out, "**Verification run**", "## Ruled out"))
    assert action and verification, out
    try:
        said = [learner.shell(command) for command in action + verification if command.startswith(PROGRAMS)]
        assert len(said) == 3 and "ticket T-9002 REJECTED, the batch went on" in " ".join(said[1].split()), said
        shown = said[-1]  # the before/after table
        assert row(shown, "bad-input")[2] == "0/1", shown
        fixed = row(shown, "bad-input-fix")
        assert fixed[2] == "1/0" and fixed[3] == "1", shown  # ok/failed, then the rejected column
    finally:
        learner.ok("make", "deploy")  # back to the module's defaults (bad_input_policy = fail)

    # 7 - throttling, twice: the Map's cap (no 429) and the real 429 wall, each classified, fixed and verified.
    out = learner.ok("scripts/07-throttling.sh")
    cap = between(out, "# Incident report: incident-c2", "## Ruled out")
    assert "THROTTLED here is the orchestration cap, not Lambda refusing calls: 0 throttles, no 429" in flat(cap), (
        between(out, "# Incident report: incident-c2", "== 2.")  # with why each leaf was ruled out
    )
    assert row(between(out, "== 1.", "== 2."), "verify-c10")[1] == "10"
    wall429 = between(out, "# Incident report: throttled-c20", "## Ruled out")
    assert "THROTTLED - hard limit (429)" in wall429 and "Fishbone bone 1" in wall429
    table = out[out.rindex("throttled-fix-c10 throttled-c20 throttled-retry-c20") :].split("\n", 1)[
        1
    ]  # after make's echo
    assert row(table, "throttled-c20")[2] == "0/1" and int(row(table, "throttled-c20")[7]) > 0
    assert row(table, "throttled-fix-c10")[2] == "1/0" and row(table, "throttled-fix-c10")[7] == "0"

    # 3 again: plain `make compare` takes the baseline the learner means - the newest c=2 burst, never bad-input.
    out = learner.ok("make", "compare")
    assert "against incident-c2 (max_concurrency 2, 12 tickets): the baseline, the lowest max_concurrency" in flat(out)
    refused = learner.run(".venv/bin/sof", "compare", "--baseline", "bad-input", "bad-input", "burst-c2")
    assert refused.returncode == 2 and "bad-input cannot be the baseline" in flat(refused.stderr)

    # 9 - going further: Embed on a SageMaker serverless endpoint, queueing against rejection.
    out = learner.ok("make", "scenario", "SCENARIO=endpoint")
    assert "endpoint-c2" in out and "endpoint-c4" in out

    # The On-AWS commands, against the emulator: the README's block with --target local and N tickets.
    commands = on_aws_commands()
    terraform = [c for c in commands if c.startswith("terraform ")]
    assert terraform == ["terraform -chdir=terraform init", "terraform -chdir=terraform apply"]  # make deploy did
    for command in (c for c in commands if not c.startswith("terraform ")):
        out = learner.shell(
            command.replace("--target aws", "--target local").replace("--batch-size 500", f"--batch-size {TICKETS}")
        )
    assert row(out, "burst-c10")[1] == "10"

    # 8 - the portfolio: every box ticked, the happy path drawn from its own run.
    out = learner.ok("make", "--no-print-directory", "portfolio")
    assert out.count("[x]") == 9, out
    text = (learner.runs / "portfolio" / "portfolio.html").read_text()
    assert "label happy-path" in flat(text) and "stackTrace" not in text and "Traceback" not in text

    # The read-only commands at 120 columns: the layout with every story column, still no line wider.
    out = learner.ok("make", "compare", width=WIDE)
    assert "peak" in header(out)
    for command in (
        ("make", "runs"),
        ("make", "compare", "STEPS=1", "RUNS=burst-c2 burst-c10"),
        ("make", "report", "RUNS=burst-c2 burst-c5 burst-c10"),
        ("make", "rca", "RUN=incident-c2"),
        ("make", "insights", "QUERY=recent-lines"),
        ("make", "--no-print-directory", "portfolio"),
        ("scripts/02-invoke-one.sh",),
    ):
        learner.ok(*command, width=WIDE)

    # The pages in Chromium, at 1,400 px: no table of the report or the portfolio runs past the edge.
    if CHROMIUM or REQUIRED:
        for html in (learner.runs / "report" / "report.html", learner.runs / "portfolio" / "portfolio.html"):
            assert overflow(page, html) <= 0, f"a table of {html.name} runs past the page's right edge"

    # 8 - cleanup: the emulator is gone afterwards.
    learner.ok("scripts/08-cleanup.sh")
    status = learner.run(".venv/bin/sof", "local", "status")
    assert status.returncode == 3 and "not running" in status.stdout


def test_make_demo_takes_port(learner: Learner) -> None:
    """PORT= reaches `sof demo`: with an emulator already on another port it says so instead of using it."""
    other = free_port()
    learner.ok(".venv/bin/sof", "local", "up", "--port", str(other))
    try:
        done = learner.run("make", "--no-print-directory", "demo", "DEMO_N=2")
    finally:
        learner.run(".venv/bin/sof", "local", "down")
    assert done.returncode == 2
    assert f"error: an emulator is already running at http://127.0.0.1:{other}, not on port {learner.env['PORT']}" in (
        " ".join(done.stderr.split())
    )
    assert not list(learner.runs.glob("*/manifest.json"))
