"""The ticket dataset and the named bad inputs, checked against the real handlers."""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

import pytest
from pipeline import common, embed, postprocess, preprocess

DATA = Path(__file__).resolve().parent.parent / "data"
CATEGORIES = {"billing", "delivery", "technical", "cancellation", "general"}


def tickets() -> list[dict[str, Any]]:
    with (DATA / "tickets.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def bad_inputs() -> list[dict[str, Any]]:
    return list(json.loads((DATA / "bad_inputs.json").read_text(encoding="utf-8")))


@pytest.fixture(autouse=True)
def fast_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMULATED_INFER_MS", "0")
    monkeypatch.setenv("INFER_JITTER_SIGMA_MS", "0")
    monkeypatch.setenv("MODEL_MEMORY_MB", "0")


def test_at_least_200_varied_tickets_in_every_category() -> None:
    rows = tickets()
    assert len(rows) >= 200
    counts = collections.Counter(row["category"] for row in rows)
    assert set(counts) == CATEGORIES
    assert min(counts.values()) >= 30
    assert len({row["ticket_id"] for row in rows}) == len(rows)
    assert len({" ".join(row["text"].lower().split()) for row in rows}) == len(rows)
    lengths = sorted(len(row["text"]) for row in rows)
    assert lengths[0] < 60 and lengths[-1] > 800  # short and long ones


def test_every_ticket_goes_through_the_pipeline(capsys: pytest.CaptureFixture[str]) -> None:
    for row in tickets():
        out = postprocess.handler(embed.handler(preprocess.handler(row)))
        assert out["ticket_id"] == row["ticket_id"]
    capsys.readouterr()


def test_routes_agree_with_the_human_labels_mostly(capsys: pytest.CaptureFixture[str]) -> None:
    """The simulated model is crude but not random: most labelled tickets route to their label."""
    labelled = [row for row in tickets() if row["category"] != "general"]
    hits = sum(embed.handler(preprocess.handler(row))["route"] == row["category"] for row in labelled)
    capsys.readouterr()
    assert hits / len(labelled) >= 0.65


def test_bad_inputs_are_named_and_described() -> None:
    entries = bad_inputs()
    assert len(entries) >= 20
    assert len({e["name"] for e in entries}) == len(entries)
    for entry in entries:
        assert set(entry) == {"name", "description", "ticket", "expected_error"}
        assert entry["expected_error"] in (None, "PayloadTooLarge", "InvalidTicket")
    names = {e["name"] for e in entries}
    assert {"oversized_text_5100", "huge_ticket_id", "at_limit_5000"} <= names
    oversized = next(e for e in entries if e["name"] == "oversized_text_5100")
    assert len(oversized["ticket"]["text"]) == 5100


@pytest.mark.parametrize("entry", bad_inputs(), ids=lambda e: e["name"])
def test_each_bad_input_gets_its_expected_outcome(entry: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    expected = entry["expected_error"]
    if expected is None:
        assert preprocess.handler(entry["ticket"])["text"]
    else:
        with pytest.raises(common.PipelineError) as info:
            preprocess.handler(entry["ticket"])
        assert type(info.value).__name__ == expected
    capsys.readouterr()
