"""The saved Logs Insights queries: terraform/queries/ (queries.json and one file per query).

Terraform saves them as query definitions; the harvest runs one of them into the record
(its duration query) and `sof insights` runs any of them by name (:mod:`scaleorfail.evidence.insights`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from scaleorfail import paths


@dataclass(frozen=True)
class Query:
    key: str
    title: str
    text: str
    log_groups: str  # lambda | state_machine


def catalogue() -> dict[str, Query]:
    folder = paths.terraform_dir() / "queries"
    index = json.loads((folder / "queries.json").read_text())
    return {
        key: Query(key, entry["title"], (folder / entry["file"]).read_text(), entry["log_groups"])
        for key, entry in index.items()
    }
