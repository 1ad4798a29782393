"""The emulator's doors: the access token beyond loopback, pid files that outlive the emulator,
unsafe deployment packages, and scratch files left behind."""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
import waiting
from botocore.config import Config
from botocore.exceptions import ClientError
from emulator_support import finished, free_port, running_emulator

from scaleorfail.emulator import control, workdirs
from scaleorfail.emulator.identity import alive

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
ROLE = "arn:aws:iam::123456789012:role/lambda"


def sof(state: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return waiting.run(
        [sys.executable, "-m", "scaleorfail.cli", *args],
        # runs under the state's folder, not the repository's runs/ (the suite writes nothing outside its tmp)
        env={**os.environ, "SOF_STATE_DIR": str(state), "SOF_RUNS_DIR": str(state / "runs"), "SOF_COLD_START_MS": "0"}
        | (env or {}),
        cwd=ROOT,
    )


def raw_client(url: str, service: str, access_key: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1}),
    )


def test_beyond_loopback_every_request_needs_the_token_and_sof_passes_it(tmp_path: Path) -> None:
    port = free_port()
    started = sof(tmp_path, "local", "up", "--host", "0.0.0.0", "--allow-remote", "--port", str(port))
    try:
        assert started.returncode == 0, started.stderr
        assert "warning: the emulator listens on 0.0.0.0" in started.stderr and "run code on this machine" in (
            started.stderr
        )
        state = tmp_path / "emulator.json"
        assert stat.S_IMODE(state.stat().st_mode) == 0o600
        token = json.loads(state.read_text())["token"]
        assert f"access token: {token}" in started.stderr
        url = f"http://127.0.0.1:{port}"
        with pytest.raises(ClientError) as refused:
            raw_client(url, "stepfunctions", "test").list_state_machines()
        assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert control.health(url) is None and control.health(url, token=token) is not None
        assert raw_client(url, "stepfunctions", token).list_state_machines()["stateMachines"] == []
        status = sof(tmp_path, "local", "status")
        assert status.returncode == 0 and "access token required" in status.stdout
        # the project's own clients present the token by themselves: deploy, then Activity 2
        assert sof(tmp_path, "deploy", "--target", "local", "--var", "simulated_infer_ms=20").returncode == 0
        invoked = sof(tmp_path, "invoke-one", "-n", "2")
        assert invoked.returncode == 0 and "SUCCEEDED" in invoked.stdout, invoked.stderr
    finally:
        assert sof(tmp_path, "local", "down").returncode == 0


def test_a_stale_pid_file_never_signals_another_process(tmp_path: Path) -> None:
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        from scaleorfail.emulator.identity import process_start

        for started in (1.0, process_start(bystander.pid)):  # another start time / the same one, another program
            record = {"pid": bystander.pid, "host": "127.0.0.1", "port": 1, "process_start": started}
            (tmp_path / "emulator.json").write_text(json.dumps(record))
            stopped = sof(tmp_path, "local", "down")
            assert stopped.returncode == 0 and "was not running" in stopped.stdout
            assert "stale" in stopped.stderr
            assert bystander.poll() is None  # untouched
            assert not (tmp_path / "emulator.json").exists()
    finally:
        bystander.kill()
        bystander.wait()


def package(entries: list[tuple[zipfile.ZipInfo | str, str]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for info, text in entries:
            archive.writestr(info, text)
    return buffer.getvalue()


def test_unsafe_zips_are_refused_at_upload_and_a_refused_update_keeps_the_old_code(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("evil.py")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    good = package([("handler.py", "def handler(event, context):\n    return {'ok': 1}\n")])
    with running_emulator(tmp_path) as emulator:
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                 "Principal": {"Service": "lambda.amazonaws.com"}}]}  # fmt: skip
        emulator.client("iam").create_role(RoleName="lambda", AssumeRolePolicyDocument=json.dumps(trust))
        lam = emulator.client("lambda", max_attempts=1)
        for name, code, reason in (
            ("dotdot", package([("../../outside.py", "x = 1")]), "leaves the package folder"),
            ("link", package([(link, "/etc/passwd"), ("handler.py", "")]), "is a symbolic link"),
            ("notzip", b"not a zip at all", "Could not unzip uploaded file"),
        ):
            with pytest.raises(ClientError) as refused:
                lam.create_function(
                    FunctionName=name,
                    Runtime="python3.12",
                    Role=ROLE,
                    Handler="handler.handler",
                    Code={"ZipFile": code},
                )
            assert refused.value.response["Error"]["Code"] == "InvalidParameterValueException"
            assert reason in refused.value.response["Error"]["Message"]
            assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert [f["FunctionName"] for f in lam.list_functions()["Functions"]] == []
        lam.create_function(
            FunctionName="ok", Runtime="python3.12", Role=ROLE, Handler="handler.handler", Code={"ZipFile": good}
        )
        with pytest.raises(ClientError) as refused:
            lam.update_function_code(FunctionName="ok", ZipFile=package([("../x.py", "")]))
        assert "leaves the package folder" in refused.value.response["Error"]["Message"]
        answer = lam.invoke(FunctionName="ok", Payload=b"{}")
        assert "FunctionError" not in answer and json.loads(answer["Payload"].read()) == {"ok": 1}
        assert not (tmp_path / "outside.py").exists() and not (tmp_path.parent / "outside.py").exists()


def lying(entries: dict[str, int], declared: int) -> bytes:
    """A zip whose members hold `size` zero bytes each while every header says `declared`."""
    import struct

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return {'ok': 1}\n")
        for name, size in entries.items():
            with archive.open(name, "w") as member:
                for _ in range(size // (1024 * 1024)):
                    member.write(bytes(1024 * 1024))
    raw = bytearray(buffer.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as archive:
        offsets = {name: archive.getinfo(name).header_offset for name in entries}
    for name, offset in offsets.items():
        struct.pack_into("<I", raw, offset + 22, declared)  # the local header's uncompressed size
        central = raw.find(b"PK\x01\x02")
        while central >= 0:  # and the central directory's
            length = struct.unpack_from("<H", raw, central + 28)[0]
            if raw[central + 46 : central + 46 + length] == name.encode():
                struct.pack_into("<I", raw, central + 24, declared)
            central = raw.find(b"PK\x01\x02", central + 4)
    return bytes(raw)


def test_zips_whose_headers_lie_about_sizes_are_refused_at_upload(tmp_path: Path) -> None:
    with running_emulator(tmp_path) as emulator:
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                 "Principal": {"Service": "lambda.amazonaws.com"}}]}  # fmt: skip
        emulator.client("iam").create_role(RoleName="lambda", AssumeRolePolicyDocument=json.dumps(trust))
        lam = emulator.client("lambda", max_attempts=1)
        for name, code, reason in (
            ("bomb", lying({"blob.bin": 300 * 1024 * 1024}, 1024), "Unzipped size must be smaller than 262144000"),
            ("liar", lying({"blob.bin": 8 * 1024 * 1024}, 1024), "say 1,024 bytes and it holds 8,388,608"),
        ):
            with pytest.raises(ClientError) as refused:
                lam.create_function(
                    FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="handler.handler",
                    Code={"ZipFile": code},
                )  # fmt: skip
            assert refused.value.response["Error"]["Code"] == "InvalidParameterValueException"
            assert reason in refused.value.response["Error"]["Message"], refused.value.response["Error"]["Message"]
        assert lam.list_functions()["Functions"] == []


def test_scratch_files_live_under_the_state_dir_and_a_killed_emulators_are_removed(tmp_path: Path) -> None:
    before = set(Path("/tmp").glob("sof-emulator-*"))
    port = free_port()
    assert sof(tmp_path, "local", "up", "--port", str(port)).returncode == 0
    record = json.loads((tmp_path / "emulator.json").read_text())
    scratch = Path(record["work_dir"])
    assert scratch.parent == workdirs.root(tmp_path) and scratch.is_dir()
    os.kill(record["pid"], signal.SIGKILL)  # no chance to clean up
    waiting.wait_for(lambda: not alive(record["pid"]), "the killed emulator's end", pids=[record["pid"]])
    assert scratch.is_dir()
    assert sof(tmp_path, "local", "up", "--port", str(port)).returncode == 0
    try:
        assert not scratch.exists()  # removed by the next start
        assert set(Path("/tmp").glob("sof-emulator-*")) == before  # nothing in /tmp
    finally:
        assert sof(tmp_path, "local", "down").returncode == 0
    assert list(workdirs.root(tmp_path).iterdir()) == []


def test_scenario_ticket_files_stay_under_the_state_dir_and_are_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scaleorfail import scenarios
    from scaleorfail.load import runner
    from scaleorfail.usecases import scenario

    monkeypatch.setenv("SOF_STATE_DIR", str(tmp_path))
    seen: list[Path] = []

    def burst(target: str, size: int, c: int, label: str, ticket_file: Path | None = None) -> Path:
        assert ticket_file is not None and ticket_file.is_file()
        seen.append(ticket_file)
        raise RuntimeError("the load failed")  # the file must go even then

    class Local:
        name = "local"

    monkeypatch.setattr(runner, "burst", burst)
    monkeypatch.setattr(scenario, "deploy", lambda *a, **k: None)
    monkeypatch.setattr(scenario.targets, "load_outputs", lambda *a, **k: {})
    monkeypatch.setattr(scenario.targets, "deployed_variables", lambda *a, **k: {})
    with pytest.raises(RuntimeError):
        scenario.run_scenario("bad-input", Local(), say=lambda text: None)  # type: ignore[arg-type]
    assert seen and seen[0].parent == tmp_path / "scenario-tickets"
    assert not seen[0].exists()
    assert scenarios.ticket_file("dataset", 3) == (None, 3)


def test_what_a_client_reads_shows_aws_paths_never_this_machines(tmp_path: Path) -> None:
    """Error payloads, Tail logs and an execution's cause read /var/task/..., as on AWS."""
    import base64

    code = package(
        [
            ("index.py", "import os, helper\ndef handler(event, context):\n    print('cwd', os.getcwd())\n"
                         "    return helper.fail()\n"),
            ("helper.py", "def fail():\n    raise ValueError('broken in ' + __file__)\n"),
        ]
    )  # fmt: skip
    with running_emulator(tmp_path) as emulator:
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                 "Principal": {"Service": "lambda.amazonaws.com"}}]}  # fmt: skip
        emulator.client("iam").create_role(RoleName="lambda", AssumeRolePolicyDocument=json.dumps(trust))
        lam = emulator.client("lambda", max_attempts=1)
        lam.create_function(FunctionName="leaky", Runtime="python3.12", Role=ROLE, Handler="index.handler",
                            Code={"ZipFile": code})  # fmt: skip
        answer = lam.invoke(FunctionName="leaky", Payload=b"{}", LogType="Tail")
        payload = json.loads(answer["Payload"].read())
        tail = base64.b64decode(answer["LogResult"]).decode()
        sfn = emulator.client("stepfunctions")
        definition = {"StartAt": "T", "States": {"T": {"Type": "Task", "End": True,
                      "Resource": "arn:aws:lambda:us-east-1:123456789012:function:leaky"}}}  # fmt: skip
        arn = sfn.create_state_machine(name="leaky", definition=json.dumps(definition), roleArn=ROLE)["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
        described = finished(sfn, execution)
    assert payload["errorMessage"] == "broken in /var/task/helper.py", payload
    assert any('File "/var/task/helper.py", line 2, in fail' in line for line in payload["stackTrace"]), payload
    assert "cwd /var/task" in tail and "/var/task/helper.py" in tail, tail
    assert "/var/task/helper.py" in described["cause"], described["cause"]
    for text in (json.dumps(payload), tail, described["cause"]):
        for host in (str(tmp_path), str(ROOT), os.path.expanduser("~") + "/"):
            assert host not in text, (host, text)
