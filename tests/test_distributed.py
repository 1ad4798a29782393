"""The Distributed Map on the emulator, driven through boto3 and the AWS CLI as on AWS.

The deployed pipeline (map_mode = distributed: tickets from S3, a Map Run of child executions,
results written to S3) and small hand-written state machines (Pass, Wait, Fail children: no
Lambda, so each test is about the Map Run itself): child executions with their own histories,
DescribeMapRun counts, ListExecutions by Map Run (paged), UpdateMapRun while it runs, tolerated
failure deciding the outcome, ItemBatcher, EXPRESS children whose record is the execution log,
a stop of the parent reaching its children, and the harvest following a Map Run to its tickets.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cli_support import Cli, finished, poll
from compat import compat
from emulator_support import Emulator, deploy, running_emulator, tickets

pytestmark = pytest.mark.slow
ROLE = "arn:aws:iam::123456789012:role/distributed-test"
BUCKET = "distributed-test-items"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with running_emulator(tmp_path_factory.mktemp("distributed")) as running:
        running.client("s3").create_bucket(Bucket=BUCKET)
        yield running


@pytest.fixture(scope="module")
def cli(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return Cli(emulator, tmp_path_factory.mktemp("distributed-cli"))


@pytest.fixture(scope="module")
def pipeline(emulator: Emulator) -> dict[str, Any]:
    return deploy(emulator, map_mode="distributed")


def machine(
    emulator: Emulator, name: str, child: dict[str, Any], logging: dict[str, Any] | None = None, **fields: Any
) -> str:
    """A state machine whose one state is a Distributed Map over $.items with this child workflow."""
    execution_type = fields.pop("execution_type", "STANDARD")
    state = {
        "Type": "Map",
        "Label": "Items",
        "ItemsPath": "$.items",
        "MaxConcurrencyPath": "$.c",
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": execution_type}, **child},
        "End": True,
        **fields,
    }
    definition = json.dumps({"StartAt": "Each", "States": {"Each": state}})
    extra = {"loggingConfiguration": logging} if logging else {}
    return str(
        emulator.client("stepfunctions").create_state_machine(name=name, definition=definition, roleArn=ROLE, **extra)[
            "stateMachineArn"
        ]
    )


PASS = {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}}
WAIT = {"StartAt": "Work", "States": {"Work": {"Type": "Wait", "Seconds": 1, "End": True}}}
FAIL_BAD = {
    "StartAt": "Check",
    "States": {
        "Check": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.bad", "BooleanEquals": True, "Next": "Bad"}],
            "Default": "Fine",
        },
        "Bad": {"Type": "Fail", "Error": "Ticket.Bad", "Cause": "a bad item"},
        "Fine": {"Type": "Pass", "End": True},
    },
}


def start(emulator: Emulator, arn: str, payload: dict[str, Any]) -> str:
    sfn = emulator.client("stepfunctions")
    return str(sfn.start_execution(stateMachineArn=arn, input=json.dumps(payload))["executionArn"])


def map_run(emulator: Emulator, execution_arn: str) -> str:
    sfn = emulator.client("stepfunctions")
    runs = poll(lambda: sfn.list_map_runs(executionArn=execution_arn)["mapRuns"], what="the Map Run")
    return str(runs[0]["mapRunArn"])


def children(emulator: Emulator, map_run_arn: str, page: int = 1000) -> list[dict[str, Any]]:
    sfn = emulator.client("stepfunctions")
    found: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        listed = sfn.list_executions(mapRunArn=map_run_arn, maxResults=page, **({"nextToken": token} if token else {}))
        found += listed["executions"]
        token = listed.get("nextToken")
        if not token:
            return found


def most_at_once(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in spans] + [(stop, -1) for _, stop in spans], key=lambda e: (e[0], e[1]))
    level = peak = 0
    for _, change in edges:
        level += change
        peak = max(peak, level)
    return peak


def spans(listed: list[dict[str, Any]]) -> list[tuple[float, float]]:
    return [(c["startDate"].timestamp(), c["stopDate"].timestamp()) for c in listed]


# -- the pipeline: tickets from S3, one child execution each, results to S3 -------------------------


@compat("Step Functions", "DescribeMapRun", "ListMapRuns", "ListExecutions")
def test_the_pipeline_runs_each_ticket_of_an_s3_batch_as_a_child_execution(
    emulator: Emulator, cli: Cli, pipeline: dict[str, Any]
) -> None:
    batch = tickets(8)
    s3 = emulator.client("s3")
    s3.put_object(
        Bucket=pipeline["map_bucket_name"], Key="batches/eight.jsonl", Body="\n".join(json.dumps(t) for t in batch)
    )
    arn = start(emulator, pipeline["state_machine_arn"], {"tickets_key": "batches/eight.jsonl", "max_concurrency": 3})
    done = finished(emulator.client("stepfunctions"), arn)
    assert done["status"] == "SUCCEEDED", done.get("cause")
    parent = [e["type"] for e in emulator.client("stepfunctions").get_execution_history(executionArn=arn)["events"]]
    assert "MapRunStarted" in parent and "MapRunSucceeded" in parent
    assert not [t for t in parent if t.startswith(("MapIteration", "Task"))]  # the tickets' events are elsewhere

    runs = cli("stepfunctions", "list-map-runs", "--execution-arn", arn)["mapRuns"]
    assert len(runs) == 1 and runs[0]["stateMachineArn"] == pipeline["state_machine_arn"] + "/Tickets"
    described = cli("stepfunctions", "describe-map-run", "--map-run-arn", runs[0]["mapRunArn"])
    assert described["status"] == "SUCCEEDED" and described["maxConcurrency"] == 3
    assert described["itemCounts"]["succeeded"] == described["itemCounts"]["total"] == 8
    assert described["executionCounts"]["succeeded"] == 8 and described["executionCounts"]["resultsWritten"] == 8

    listed = cli("stepfunctions", "list-executions", "--map-run-arn", runs[0]["mapRunArn"])["executions"]
    assert len(listed) == 8 and {c["status"] for c in listed} == {"SUCCEEDED"}
    assert all(c["mapRunArn"] == runs[0]["mapRunArn"] and c["itemCount"] == 1 for c in listed)
    prefix = pipeline["state_machine_arn"].replace(":stateMachine:", ":execution:") + "/Tickets:"
    assert all(c["executionArn"] == prefix + c["name"] for c in listed)
    child = emulator.client("stepfunctions").describe_execution(executionArn=listed[0]["executionArn"])
    assert child["mapRunArn"] == runs[0]["mapRunArn"] and json.loads(child["input"]) in batch
    events = emulator.client("stepfunctions").get_execution_history(executionArn=child["executionArn"])["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if e["type"] == "TaskStateEntered"]
    assert entered == ["Preprocess", "Embed", "Postprocess"]  # each child: its own history

    output = json.loads(done["output"])
    assert output["map_run_arn"] == runs[0]["mapRunArn"]
    manifest_key = output["results_manifest"]["Key"]
    manifest = json.loads(s3.get_object(Bucket=pipeline["map_bucket_name"], Key=manifest_key)["Body"].read())
    (written,) = manifest["ResultFiles"]["SUCCEEDED"]
    results = json.loads(s3.get_object(Bucket=pipeline["map_bucket_name"], Key=written["Key"])["Body"].read())
    assert sorted(json.loads(r["Output"])["ticket_id"] for r in results) == [t["ticket_id"] for t in batch]
    assert manifest_key.startswith("results/") and not manifest["ResultFiles"]["FAILED"]


def test_a_missing_batch_object_fails_the_map_with_item_reader_failed(
    emulator: Emulator, pipeline: dict[str, Any]
) -> None:
    arn = start(emulator, pipeline["state_machine_arn"], {"tickets_key": "batches/none.jsonl", "max_concurrency": 2})
    done = finished(emulator.client("stepfunctions"), arn)
    assert done["status"] == "FAILED" and done["error"] == "States.ItemReaderFailed"
    assert "does not exist" in done["cause"]


# -- the Map Run itself ------------------------------------------------------------------------------


def test_max_concurrency_bounds_the_children_and_list_executions_pages(emulator: Emulator) -> None:
    arn = machine(emulator, "bounded", WAIT)
    execution = start(emulator, arn, {"items": [{"n": i} for i in range(6)], "c": 2})
    assert finished(emulator.client("stepfunctions"), execution)["status"] == "SUCCEEDED"
    listed = children(emulator, map_run(emulator, execution), page=4)  # two pages
    assert len(listed) == 6 and len({c["name"] for c in listed}) == 6
    assert most_at_once(spans(listed)) == 2


@compat("Step Functions", "UpdateMapRun", differences="a new max concurrency applies from the next child started")
def test_update_map_run_raises_max_concurrency_while_the_run_goes_on(emulator: Emulator, cli: Cli) -> None:
    arn = machine(emulator, "updated", WAIT)
    # 16 one-second items one at a time: at least 4 are left when the CLI's update lands, however slow a
    # busy machine makes the CLI
    execution = start(emulator, arn, {"items": [{"n": i} for i in range(16)], "c": 1})
    run_arn = map_run(emulator, execution)
    cli("stepfunctions", "update-map-run", "--map-run-arn", run_arn, "--max-concurrency", "4")
    assert cli("stepfunctions", "describe-map-run", "--map-run-arn", run_arn)["maxConcurrency"] == 4
    assert finished(emulator.client("stepfunctions"), execution)["status"] == "SUCCEEDED"
    listed = children(emulator, run_arn)
    assert most_at_once(spans(listed)) == 4  # 1 at first, then 4 at once
    refused = cli.fails("stepfunctions", "update-map-run", "--map-run-arn", run_arn, "--max-concurrency", "2")
    assert "ValidationException" in refused.stderr  # the run is over


@pytest.mark.parametrize(("tolerated", "status"), [(2, "SUCCEEDED"), (1, "FAILED")])
def test_tolerated_failure_decides_the_map_runs_outcome(emulator: Emulator, tolerated: int, status: str) -> None:
    arn = machine(emulator, f"tolerant-{tolerated}", FAIL_BAD, ToleratedFailureCount=tolerated)
    items = [{"n": i, "bad": i in (2, 5)} for i in range(8)]
    execution = start(emulator, arn, {"items": items, "c": 1})
    done = finished(emulator.client("stepfunctions"), execution)
    assert done["status"] == status
    sfn = emulator.client("stepfunctions")
    described = sfn.describe_map_run(mapRunArn=map_run(emulator, execution))
    assert described["itemCounts"]["failed"] == 2
    events = sfn.get_execution_history(executionArn=execution)["events"]
    if status == "SUCCEEDED":
        output = json.loads(done["output"])
        assert output[2] == {"Error": "Ticket.Bad", "Cause": "a bad item"} and output[0] == items[0]
        assert described["status"] == "SUCCEEDED"
    else:
        assert done["error"] == "States.ExceedToleratedFailureThreshold"
        assert described["status"] == "FAILED"
        failed = next(e for e in events if e["type"] == "MapRunFailed")["mapRunFailedEventDetails"]
        assert failed["error"] == "States.ExceedToleratedFailureThreshold"
        assert described["itemCounts"]["succeeded"] < 6  # the items after the second failure never ran


def test_item_batcher_gives_each_child_a_batch_with_its_batch_input(emulator: Emulator) -> None:
    arn = machine(emulator, "batched", PASS, ItemBatcher={"MaxItemsPerBatch": 4, "BatchInput": {"run.$": "$.run"}})
    execution = start(emulator, arn, {"items": [{"n": i} for i in range(10)], "c": 2, "run": "r1"})
    done = finished(emulator.client("stepfunctions"), execution)
    assert done["status"] == "SUCCEEDED"
    batches = json.loads(done["output"])
    assert [len(b["Items"]) for b in batches] == [4, 4, 2] and {b["BatchInput"]["run"] for b in batches} == {"r1"}
    described = emulator.client("stepfunctions").describe_map_run(mapRunArn=map_run(emulator, execution))
    assert described["itemCounts"]["total"] == 10 and described["executionCounts"]["total"] == 3
    assert sorted(c["itemCount"] for c in children(emulator, described["mapRunArn"])) == [2, 4, 4]


def test_express_children_are_described_and_logged_but_have_no_history(emulator: Emulator) -> None:
    logs = emulator.client("logs")
    logs.create_log_group(logGroupName="/aws/vendedlogs/states/express-test")
    group_arn = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/vendedlogs/states/express-test:*"
    logging = {"level": "ALL", "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": group_arn}}]}
    arn = machine(emulator, "express", PASS, logging=logging, execution_type="EXPRESS")
    execution = start(emulator, arn, {"items": [{"n": i} for i in range(3)], "c": 3})
    assert finished(emulator.client("stepfunctions"), execution)["status"] == "SUCCEEDED"
    listed = children(emulator, map_run(emulator, execution))
    assert len(listed) == 3 and all(":express:express/Items:" in c["executionArn"] for c in listed)
    sfn = emulator.client("stepfunctions")
    described = sfn.describe_execution(executionArn=listed[0]["executionArn"])
    assert described["status"] == "SUCCEEDED" and described["mapRunArn"]
    with pytest.raises(ClientError, match="InvalidArn"):
        sfn.get_execution_history(executionArn=listed[0]["executionArn"])

    def logged() -> set[str]:
        events = logs.filter_log_events(logGroupName="/aws/vendedlogs/states/express-test")["events"]
        return {json.loads(e["message"])["execution_arn"] for e in events}

    assert poll(lambda: {c["executionArn"] for c in listed} <= logged(), what="the children's execution log")


def test_stopping_the_parent_aborts_its_running_children(emulator: Emulator) -> None:
    slow = {"StartAt": "Work", "States": {"Work": {"Type": "Wait", "Seconds": 60, "End": True}}}
    arn = machine(emulator, "stopped", slow)
    execution = start(emulator, arn, {"items": [{"n": i} for i in range(5)], "c": 2})
    run_arn = map_run(emulator, execution)
    poll(lambda: len(children(emulator, run_arn)) == 2, what="two running children")
    sfn = emulator.client("stepfunctions")
    sfn.stop_execution(executionArn=execution, error="Ops.Stop", cause="by hand")
    assert finished(sfn, execution)["status"] == "ABORTED"
    described = poll(lambda: (d := sfn.describe_map_run(mapRunArn=run_arn))["status"] == "ABORTED" and d)
    assert described["executionCounts"]["aborted"] == 2 and described["itemCounts"]["pending"] == 3
    assert {c["status"] for c in children(emulator, run_arn)} == {"ABORTED"}


def test_a_distributed_definition_with_what_moto_cannot_parse_is_accepted_and_bad_fields_refused(
    emulator: Emulator,
) -> None:
    sfn = emulator.client("stepfunctions")
    machine(emulator, "accepted", PASS, ToleratedFailurePercentage=5, ItemBatcher={"MaxItemsPerBatch": 2})
    bad = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "Label": "no spaces allowed",
                "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "FAST"}, **PASS},
                "End": True,
            }
        },
    }
    with pytest.raises(ClientError) as refused:
        sfn.create_state_machine(name="refused", definition=json.dumps(bad), roleArn=ROLE)
    message = refused.value.response["Error"]["Message"]
    assert refused.value.response["Error"]["Code"] == "InvalidDefinition"
    assert "ExecutionType" in message and "Label" in message


# -- the harness and the harvest -------------------------------------------------------------------


def test_a_burst_on_the_distributed_map_is_harvested_ticket_by_ticket(
    emulator: Emulator, pipeline: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scaleorfail.evidence import analysis
    from scaleorfail.load import runner
    from scaleorfail.usecases.harvest import harvest_runs

    monkeypatch.setenv("SOF_RUNS_DIR", str(tmp_path / "runs"))
    run_dir = runner.burst("local", 9, 3, "dist-c3", run_dir=tmp_path / "runs")
    (record,) = harvest_runs([str(run_dir)], quiet=True)
    assert record.final and record.map_mode == "distributed"
    (execution,) = record.executions
    assert execution.status == "SUCCEEDED" and len(execution.items) == 9
    assert {i.status for i in execution.items} == {"SUCCEEDED"}
    assert all([v.step for v in i.visits] == ["Preprocess", "Embed", "Postprocess"] for i in execution.items)
    assert all(v.attempts and v.attempts[-1].request_id for i in execution.items for v in i.visits)
    (run,) = execution.map_runs
    assert run.children == run.children_read == 9 and run.item_counts["succeeded"] == 9 and not run.missing
    assert run.child_state_transitions == 27  # three Task states per child
    stats = analysis.stats(record)
    assert stats.map_mode == "distributed" and stats.tickets_ok == 9 and 1 <= stats.peak_concurrency <= 3
    assert stats.cost is not None and stats.cost.state_transitions >= 27
    queue = [i.start for i in execution.items if i.start is not None]
    assert execution.map_started is not None and min(queue) >= execution.map_started
