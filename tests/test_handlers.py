"""The three Lambda handlers: validation, named errors, fault knobs, log lines."""

from __future__ import annotations

import json
import re
import resource
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pipeline import common, embed, postprocess, preprocess
from pipeline.model import DIMENSIONS, MODEL_NAME, ROUTES
from pipeline.model import embed as embed_vector

ROOT_TERRAFORM = Path(__file__).resolve().parent.parent / "terraform"
NAMED_ERRORS = (common.InvalidTicket, common.PayloadTooLarge)


@pytest.fixture(autouse=True)
def fast_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """No sleeping unless a test asks for it."""
    monkeypatch.setenv("SIMULATED_INFER_MS", "0")
    monkeypatch.setenv("INFER_JITTER_SIGMA_MS", "0")
    monkeypatch.setenv("MODEL_MEMORY_MB", "0")


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


def run_pipeline(ticket: Any) -> dict[str, Any]:
    return postprocess.handler(embed.handler(preprocess.handler(ticket)))


# -- preprocess ---------------------------------------------------------------------------


def test_preprocess_normalises_whitespace_counts_tokens_and_stamps_time() -> None:
    out = preprocess.handler({"ticket_id": "T-0001", "text": "  I was\tcharged\n\n twice!  "})
    assert out["text"] == "I was charged twice!"
    assert out["token_count"] == 5  # I, was, charged, twice, !
    assert out["char_count"] == len("I was charged twice!")
    assert out["received_at"].endswith("+00:00")


def test_preprocess_drops_control_characters_but_keeps_unicode() -> None:
    out = preprocess.handler({"ticket_id": "T-9", "text": "Caf\u00e9\u0000 \u00fcber \U0001f600\u0007ok"})
    assert out["text"] == "Caf\u00e9 \u00fcber \U0001f600ok"


@pytest.mark.parametrize(
    ("ticket", "fragment"),
    [
        ("just a string", "must be a JSON object, got string"),
        ([1, 2], "got array"),
        (None, "got null"),
        ({"text": "hello"}, "ticket_id is missing"),
        ({"ticket_id": 42, "text": "hello"}, "ticket_id must be a string, got number"),
        ({"ticket_id": "", "text": "hello"}, "ticket_id is empty"),
        ({"ticket_id": "T" * 65, "text": "hello"}, "65 characters, the limit is 64"),
        ({"ticket_id": "T 1", "text": "hello"}, "may only contain"),
        ({"ticket_id": "T-1\n", "text": "hello"}, "may only contain"),
        ({"ticket_id": "T-1"}, "text is missing"),
        ({"ticket_id": "T-1", "text": None}, "text must be a string, got null"),
        ({"ticket_id": "T-1", "text": ["a"]}, "got array"),
        ({"ticket_id": "T-1", "text": "   \n\t"}, "text is empty"),
        ({"ticket_id": "T-1", "text": "\u0000\u0001"}, "text is empty"),
    ],
)
def test_preprocess_rejects_malformed_tickets_as_invalid_ticket(ticket: Any, fragment: str) -> None:
    with pytest.raises(common.InvalidTicket, match=None) as info:
        preprocess.handler(ticket)
    assert fragment in str(info.value)


def test_text_over_the_limit_is_payload_too_large_with_size_and_limit() -> None:
    with pytest.raises(common.PayloadTooLarge) as info:
        preprocess.handler({"ticket_id": "T-5100", "text": "a" * 5100})
    assert "5100 characters" in str(info.value)
    assert "limit is 5000" in str(info.value)
    assert type(info.value).__name__ == "PayloadTooLarge"  # what Step Functions reports


def test_limit_counts_characters_not_bytes_and_is_inclusive() -> None:
    assert preprocess.handler({"ticket_id": "T-1", "text": "\u00e9" * 5000})["char_count"] == 5000
    with pytest.raises(common.PayloadTooLarge):
        preprocess.handler({"ticket_id": "T-1", "text": "\u00e9" * 5001})


def test_limit_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_TEXT_CHARS", "10")
    with pytest.raises(common.PayloadTooLarge, match="limit is 10"):
        preprocess.handler({"ticket_id": "T-1", "text": "eleven char"})
    monkeypatch.setenv("MAX_TEXT_CHARS", "ten")
    with pytest.raises(common.InvalidConfiguration, match="MAX_TEXT_CHARS='ten' is not a number"):
        preprocess.handler({"ticket_id": "T-1", "text": "hello"})


# -- embed ------------------------------------------------------------------------------------


def test_embed_routes_deterministically_and_reports_the_model() -> None:
    ticket = {"ticket_id": "T-1", "text": "I was charged twice, please refund the duplicate payment on my card"}
    first, second = embed.handler(ticket), embed.handler(ticket)
    assert first == second
    assert first["route"] == "billing"
    assert 0.15 <= first["route_score"] <= 1.0
    assert first["model"] == MODEL_NAME == "sentence-transformers/all-MiniLM-L6-v2 (simulated)"
    assert len(first["embedding_hash"]) == 16


def test_embedding_has_384_unit_length_dimensions() -> None:
    vector = embed_vector("where is my parcel, tracking says delivered but nothing arrived")
    assert len(vector) == DIMENSIONS == 384
    assert sum(x * x for x in vector) == pytest.approx(1.0)
    assert embed_vector("!!! ???") == [0.0] * 384


@pytest.mark.parametrize(
    ("text", "route"),
    [
        ("My parcel is lost, tracking has not moved and the courier never delivered it", "delivery"),
        ("The app crashes with error 500 when I try to log in after the update", "technical"),
        ("Please cancel my subscription and close my account, I want to stop the renewal", "cancellation"),
        ("There is a double charge on my invoice, I need a refund for the payment", "billing"),
    ],
)
def test_embed_picks_the_obvious_route(text: str, route: str) -> None:
    assert embed.handler({"ticket_id": "T-1", "text": text})["route"] == route


def test_simulated_latency_follows_the_knob_with_clamped_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMULATED_INFER_MS", "250")
    monkeypatch.setenv("INFER_JITTER_SIGMA_MS", "25")
    monkeypatch.setenv("INFER_JITTER_CLAMP_MS", "50")
    draws = [embed.inference_latency_ms(f"T-{i}") for i in range(2000)]
    assert min(draws) >= 200.0 and max(draws) <= 300.0
    mean = sum(draws) / len(draws)
    assert 245 <= mean <= 255
    sigma = (sum((d - mean) ** 2 for d in draws) / len(draws)) ** 0.5
    assert 18 <= sigma <= 27  # clamping trims the tails of sigma=25 a little


def test_seeded_latency_is_reproducible_per_ticket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMULATED_INFER_MS", "250")
    monkeypatch.setenv("INFER_JITTER_SIGMA_MS", "25")
    monkeypatch.setenv("INFER_SEED", "7")
    assert embed.inference_latency_ms("T-1") == embed.inference_latency_ms("T-1")
    assert embed.inference_latency_ms("T-1") != embed.inference_latency_ms("T-2")


def test_embed_really_sleeps_the_simulated_latency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMULATED_INFER_MS", "120")
    started = time.perf_counter()
    embed.handler({"ticket_id": "T-1", "text": "hello there"})
    assert time.perf_counter() - started >= 0.118


def test_model_memory_is_really_allocated_and_touched(monkeypatch: pytest.MonkeyPatch) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    monkeypatch.setenv("MODEL_MEMORY_MB", "96")
    weights = embed.load_model()
    assert len(weights) == 96 * 1024 * 1024
    assert weights[0] == 1 and weights[-embed.PAGE] == 1
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib >= 60 * 1024 or before >= 96 * 1024  # resident, not just reserved


def test_slow_dependency_raises_dependency_timeout_after_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPENDENCY_LATENCY_MS", "500")
    monkeypatch.setenv("DEPENDENCY_TIMEOUT_MS", "50")
    slept: list[float] = []
    real_sleep = time.sleep
    monkeypatch.setattr(embed.time, "sleep", lambda seconds: slept.append(seconds) or real_sleep(seconds))
    started = time.perf_counter()
    with pytest.raises(common.DependencyTimeout) as info:
        embed.handler({"ticket_id": "T-1", "text": "hello"})
    assert slept == [0.05]  # it waits the timeout, not the latency (and nothing else)
    assert time.perf_counter() - started >= 0.045
    assert "within 50 ms" in str(info.value) and "500 ms" in str(info.value)


def test_dependency_within_timeout_adds_its_latency(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setenv("DEPENDENCY_LATENCY_MS", "60")
    monkeypatch.setenv("DEPENDENCY_TIMEOUT_MS", "1000")
    started = time.perf_counter()
    embed.handler({"ticket_id": "T-1", "text": "hello"})
    assert time.perf_counter() - started >= 0.058
    assert log_lines(capsys)[-1]["dependency_ms"] == 60.0


@pytest.mark.parametrize(
    ("name", "value"),
    [("SIMULATED_INFER_MS", "-1"), ("MODEL_MEMORY_MB", "1.5"), ("DEPENDENCY_TIMEOUT_MS", "soon")],
)
def test_bad_knob_values_are_named_configuration_errors(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(common.InvalidConfiguration, match=name):
        embed.handler({"ticket_id": "T-1", "text": "hello"})


# -- postprocess ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "score", "priority", "action"),
    [
        ("billing", 0.15, "P1", "HUMAN_REVIEW"),
        ("delivery", 0.9, "P1", "HUMAN_REVIEW"),
        ("billing", 0.1499, "P2", "AUTO_REPLY"),
        ("technical", 0.9, "P2", "AUTO_REPLY"),
        ("cancellation", 0.5, "P2", "AUTO_REPLY"),
    ],
)
def test_priority_rule(route: str, score: float, priority: str, action: str) -> None:
    out = postprocess.handler({"ticket_id": "T-1", "route": route, "route_score": score})
    assert (out["priority"], out["action"], out["status"]) == (priority, action, "OK")


@pytest.mark.parametrize(
    "item",
    [
        {"ticket_id": "T-1", "route": "spam", "route_score": 0.5},
        {"ticket_id": "T-1", "route": "billing", "route_score": "high"},
        {"ticket_id": "T-1", "route": "billing", "route_score": True},
        {"ticket_id": "T-1", "route": "billing"},
        {"route": "billing", "route_score": 0.5},
    ],
)
def test_postprocess_rejects_malformed_items(item: dict[str, Any]) -> None:
    with pytest.raises(common.InvalidTicket):
        postprocess.handler(item)


# -- logging ------------------------------------------------------------------------------------


def test_one_structured_log_line_per_invocation(capsys: pytest.CaptureFixture[str]) -> None:
    run_pipeline({"ticket_id": "T-0042", "text": "Where is my package? The courier says delivered."})
    lines = log_lines(capsys)
    assert [line["step"] for line in lines] == ["preprocess", "embed", "postprocess"]
    for line in lines:
        assert line["ticket_id"] == "T-0042"
        assert isinstance(line["duration_ms"], float)
        assert line["status"] == "ok"
    assert {"token_count", "char_count"} <= set(lines[0])
    assert {"route", "route_score", "inference_ms"} <= set(lines[1])
    assert {"priority", "action"} <= set(lines[2])


def test_failures_log_one_line_with_the_error_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(common.PayloadTooLarge):
        preprocess.handler({"ticket_id": "T-BIG", "text": "x" * 6000})
    (line,) = log_lines(capsys)
    assert line["error"] == "PayloadTooLarge" and line["status"] == "error" and line["ticket_id"] == "T-BIG"


def test_every_line_names_the_invocations_request_id_and_function(capsys: pytest.CaptureFixture[str]) -> None:
    """As Powertools' Logger does: the Lambda context's aws_request_id and function_name on each line."""
    ok = SimpleNamespace(aws_request_id="0d3f7c1e-0000-4000-8000-000000000001", function_name="sof-preprocess")
    bad = SimpleNamespace(aws_request_id="0d3f7c1e-0000-4000-8000-000000000002", function_name="sof-preprocess")
    preprocess.handler({"ticket_id": "T-1", "text": "refund please"}, ok)
    with pytest.raises(common.PayloadTooLarge):
        preprocess.handler({"ticket_id": "T-2", "text": "x" * 6000}, bad)
    preprocess.handler({"ticket_id": "T-3", "text": "no context: a SageMaker endpoint's predict_fn"})
    first, second, third = log_lines(capsys)
    assert (first["function_request_id"], first["function_name"]) == (ok.aws_request_id, "sof-preprocess")
    assert (second["function_request_id"], second["error"]) == (bad.aws_request_id, "PayloadTooLarge")
    assert "function_request_id" not in third and "function_name" not in third  # nothing left from the last one


def test_log_lines_match_the_workshop_logs_insights_regexes(capsys: pytest.CaptureFixture[str]) -> None:
    run_pipeline({"ticket_id": "T-7", "text": "refund my double charge please"})
    raw = capsys.readouterr().out.splitlines()
    queries = (ROOT_TERRAFORM / "queries" / "step-fields.logsinsights").read_text()
    patterns = [p.replace("(?<", "(?P<") for p in re.findall(r"parse @message /(.+)/", queries)]
    assert len(patterns) == 3
    for line in raw:
        fields: dict[str, str] = {}
        for pattern in patterns:
            match = re.search(pattern, line)
            assert match, f"{pattern} does not match {line}"
            fields.update(match.groupdict())
        assert fields["ticket_id"] == "T-7"
        float(fields["duration_ms"])


# -- properties -----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
ticket_like = st.fixed_dictionaries(
    {},
    optional={
        "ticket_id": st.one_of(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,70}", fullmatch=True), json_values),
        "text": st.one_of(st.text(max_size=300), st.text(min_size=4990, max_size=5010, alphabet="ab \n"), json_values),
        "route": st.one_of(st.sampled_from(ROUTES), json_values),
        "route_score": st.one_of(st.floats(allow_nan=True), json_values),
    },
)


@settings(max_examples=300, deadline=None)
@given(event=st.one_of(json_values, ticket_like))
def test_any_json_input_succeeds_or_fails_with_a_named_error(event: Any) -> None:
    for handler in (preprocess.handler, embed.handler, postprocess.handler):
        try:
            out = handler(event)
        except NAMED_ERRORS:
            continue
        assert isinstance(out, dict) and isinstance(out["ticket_id"], str)
        json.dumps(out)  # the output is JSON, as Step Functions needs


@settings(max_examples=200, deadline=None)
@given(event=st.one_of(json_values, ticket_like))
def test_the_whole_pipeline_never_fails_with_an_unnamed_error(event: Any) -> None:
    try:
        out = run_pipeline(event)
    except NAMED_ERRORS:
        return
    assert out["priority"] in ("P1", "P2") and out["route"] in ROUTES
