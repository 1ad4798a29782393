"""Step Functions: a Distributed Map's ItemReader, ItemBatcher and ResultWriter, as AWS runs them.

* **ItemReader** (``arn:aws:states:::s3:getObject``): the object's items, read from moto's S3
  backend in-process (``moto.s3.models.s3_backends``, ``S3Backend.get_object`` -> ``FakeKey.value``)
  - a JSON array, JSON Lines (one item a line) or CSV (a header row, or ``CSVHeaders``), at most
  ``ReaderConfig.MaxItems``. A missing bucket or key, or a body that does not parse, is
  ``States.ItemReaderFailed``, as on AWS.
* **ItemBatcher**: items grouped into child inputs ``{"Items": [...], "BatchInput": {...}}`` of at
  most ``MaxItemsPerBatch`` items and ``MaxInputBytesPerBatch`` bytes.
* **ResultWriter** (``arn:aws:states:::s3:putObject``): ``<Prefix>/<map run id>/manifest.json`` and
  one ``<STATUS>_0.json`` per status (``S3Backend.put_object``), each child's result as AWS writes
  it (Transformation NONE); the Map's output is then ``{"MapRunArn", "ResultWriterDetails"}``.

Payload templates (``Parameters`` / ``Arguments``, ``BatchInput``) take ``"key.$"`` paths into
the state input (``$``) or the context object (``$$``), through moto's ``json_path.extract_json``.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

from scaleorfail.emulator.moto_ext.stepfunctions.mapruns import Child, MapRun

READER_FAILED = "States.ItemReaderFailed"
WRITER_FAILED = "States.ResultWriterFailed"
MAX_CHILD_INPUT_BYTES = 256 * 1024


class MapRunError(Exception):
    """A Map Run failure with AWS's error name and cause."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(cause)
        self.error, self.cause = error, cause


def resolve(template: Any, state_input: Any, context: Any) -> Any:
    """A payload template with its ``key.$`` paths resolved."""
    from moto.stepfunctions.parser.asl.utils.json_path import extract_json

    if isinstance(template, dict):
        out: dict[str, Any] = {}
        for key, value in template.items():
            if key.endswith(".$") and isinstance(value, str):
                source = context if value.startswith("$$") else state_input
                out[key[:-2]] = extract_json(value[1:] if value.startswith("$$") else value, source)
            else:
                out[key] = resolve(value, state_input, context)
        return out
    if isinstance(template, list):
        return [resolve(value, state_input, context) for value in template]
    return template


def _number(config: dict[str, Any], name: str, state_input: Any, context: Any) -> int | None:
    if config.get(name) is not None:
        return int(config[name])
    path = config.get(f"{name}Path")
    if isinstance(path, str):
        return int(resolve({"v.$": path}, state_input, context)["v"])
    return None


def _s3(account: str) -> Any:
    from moto.s3.models import s3_backends

    return s3_backends[account]["aws"]


# -- ItemReader -------------------------------------------------------------------------------


def read_items(reader: dict[str, Any], state_input: Any, context: Any, account: str) -> list[Any]:
    """The items of the ItemReader's S3 object."""
    resource = str(reader.get("Resource", ""))
    if not resource.endswith(":s3:getObject"):
        raise MapRunError(READER_FAILED, f"The ItemReader resource {resource!r} is not supported by the emulator")
    try:
        parameters = resolve(reader.get("Parameters") or reader.get("Arguments") or {}, state_input, context)
    except Exception as error:
        raise MapRunError(READER_FAILED, f"The ItemReader's Parameters could not be evaluated: {error}") from None
    bucket, key = str(parameters.get("Bucket", "")), str(parameters.get("Key", ""))
    body = _get_object(account, bucket, key)
    config = reader.get("ReaderConfig") or {}
    kind = str(config.get("InputType") or "JSON")
    try:
        items = _parse(body, kind, config)
    except (ValueError, UnicodeDecodeError, csv.Error) as error:
        text = f"Attempting to map over non-iterable node in s3://{bucket}/{key}: {error}"
        raise MapRunError(READER_FAILED, text) from None
    limit = _number(config, "MaxItems", state_input, context)
    return items[:limit] if limit else items


def _get_object(account: str, bucket: str, key: str) -> bytes:
    from moto.s3.exceptions import MissingBucket, MissingKey

    try:
        found = _s3(account).get_object(bucket, key)
    except MissingBucket:
        text = f"The specified bucket does not exist (Service: S3, Bucket: {bucket})"
        raise MapRunError(READER_FAILED, text) from None
    except MissingKey:
        found = None
    if found is None:
        raise MapRunError(READER_FAILED, f"The specified key does not exist (Service: S3, Key: {key})")
    return bytes(found.value)


def _parse(body: bytes, kind: str, config: dict[str, Any]) -> list[Any]:
    text = body.decode("utf-8")
    if kind == "JSON":
        items = json.loads(text)
        if not isinstance(items, list):
            raise ValueError("the object is not a JSON array")
        return items
    if kind == "JSONL":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    if kind == "CSV":
        rows = list(csv.reader(io.StringIO(text), delimiter=str(config.get("CSVDelimiter") or ",")[:1] or ","))
        if config.get("CSVHeaderLocation") == "GIVEN":
            headers = [str(h) for h in config.get("CSVHeaders") or []]
        else:
            headers, rows = (rows[0], rows[1:]) if rows else ([], [])
        return [dict(zip(headers, row, strict=False)) for row in rows]
    raise ValueError(f"InputType {kind} is not supported by the emulator")


# -- ItemBatcher ------------------------------------------------------------------------------


def batches(items: list[Any], batcher: dict[str, Any] | None, state_input: Any, context: Any) -> list[tuple[Any, int]]:
    """The child inputs and how many items each carries: one per item, or ItemBatcher's batches."""
    if not batcher:
        return [(item, 1) for item in items]
    max_items = _number(batcher, "MaxItemsPerBatch", state_input, context) or len(items) or 1
    max_bytes = _number(batcher, "MaxInputBytesPerBatch", state_input, context) or MAX_CHILD_INPUT_BYTES
    extra = resolve(batcher["BatchInput"], state_input, context) if "BatchInput" in batcher else None
    envelope = {"Items": []} if extra is None else {"BatchInput": extra, "Items": []}
    base = len(json.dumps(envelope, separators=(",", ":")))
    out: list[tuple[Any, int]] = []
    current: list[Any] = []
    size = base
    for item in items:
        item_bytes = len(json.dumps(item, separators=(",", ":"))) + (1 if current else 0)
        if current and (len(current) >= max_items or size + item_bytes > max_bytes):
            out.append(({**envelope, "Items": current}, len(current)))
            current, size = [], base
            item_bytes -= 1
        current.append(item)
        size += item_bytes
    if current:
        out.append(({**envelope, "Items": current}, len(current)))
    return out


# -- ResultWriter -----------------------------------------------------------------------------


def _stamp(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def result_entry(run: MapRun, child: Child) -> dict[str, Any]:
    """One child's result as ResultWriter writes it (Transformation NONE)."""
    execution = child.execution
    entry: dict[str, Any] = {
        "ExecutionArn": child.arn,
        "Input": json.dumps(execution.input_data, separators=(",", ":")),
        "InputDetails": {"Included": True},
        "Name": execution.name,
        "RedriveCount": 0,
        "RedriveStatus": "NOT_REDRIVABLE",
        "StartDate": _stamp(execution.start_date),
        "StateMachineArn": run.state_machine_arn,
        "Status": child.status,
        "StopDate": _stamp(execution.stop_date),
    }
    if child.status == "SUCCEEDED":
        entry["Output"] = json.dumps(child.output, separators=(",", ":"))
        entry["OutputDetails"] = {"Included": True}
    else:
        entry["Error"], entry["Cause"] = child.error, child.cause
    return entry


def write_results(run: MapRun, writer: dict[str, Any], state_input: Any, context: Any, account: str) -> dict[str, Any]:
    """The Map Run's results in S3; the Map state's output."""
    resource = str(writer.get("Resource", ""))
    if not resource.endswith(":s3:putObject"):
        raise MapRunError(WRITER_FAILED, f"The ResultWriter resource {resource!r} is not supported by the emulator")
    parameters = resolve(writer.get("Parameters") or writer.get("Arguments") or {}, state_input, context)
    bucket, prefix = str(parameters.get("Bucket", "")), str(parameters.get("Prefix", ""))
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    folder = f"{prefix}{run.arn.rsplit(':', 1)[1]}/"
    s3 = _s3(account)
    with run.lock:
        children = sorted(run.children, key=lambda c: c.index)
    by_status: dict[str, list[Child]] = {"SUCCEEDED": [], "FAILED": [], "PENDING": []}
    for child in children:
        by_status["SUCCEEDED" if child.status == "SUCCEEDED" else "FAILED"].append(child)
    files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    try:
        for status, group in by_status.items():
            if not group:
                continue
            body = json.dumps([result_entry(run, c) for c in group], separators=(",", ":")).encode()
            key = f"{folder}{status}_0.json"
            s3.put_object(bucket, key, body)
            files[status].append({"Key": key, "Size": len(body)})
        manifest = {"DestinationBucket": bucket, "MapRunArn": run.arn, "ResultFiles": files}
        manifest_key = f"{folder}manifest.json"
        s3.put_object(bucket, manifest_key, json.dumps(manifest, indent=2).encode())
    except Exception as error:
        text = f"The results could not be written to s3://{bucket}/{folder}: {error}"
        raise MapRunError(WRITER_FAILED, text) from None
    run.results_written(children)
    return {"MapRunArn": run.arn, "ResultWriterDetails": {"Bucket": bucket, "Key": manifest_key}}
