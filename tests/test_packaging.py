"""The deployment zip and the SageMaker model bundle: deterministic, clean, importable as AWS imports them."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from scaleorfail.cli import main
from scaleorfail.packaging import MODEL_ENTRY, build_model_bundle, build_zip

LAMBDA_SRC = Path(__file__).resolve().parent.parent / "lambda_src"


def test_same_sources_give_the_same_zip(tmp_path: Path) -> None:
    first = build_zip(LAMBDA_SRC, tmp_path / "a.zip")
    second = build_zip(LAMBDA_SRC, tmp_path / "b.zip")
    assert first.sha256_hex == second.sha256_hex
    assert "pipeline/embed.py" in first.files


def test_caches_are_left_out(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "pkg" / "__pycache__").mkdir(parents=True)
    (source / "pkg" / "__init__.py").write_text("")
    (source / "pkg" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (source / "top.pyc").write_bytes(b"\0")
    archive = build_zip(source, tmp_path / "out.zip")
    assert archive.files == ("pkg/__init__.py",)
    with zipfile.ZipFile(archive.path) as z:
        assert z.namelist() == ["pkg/__init__.py"]


def test_handlers_import_from_the_zip_alone(tmp_path: Path) -> None:
    archive = build_zip(LAMBDA_SRC, tmp_path / "lambda.zip")
    script = (
        "import json, sys; sys.path.insert(0, sys.argv[1]);"
        "from pipeline import preprocess;"
        "print(json.dumps(preprocess.handler({'ticket_id': 'T-1', 'text': 'hi  there'})))"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", script, str(archive.path)], capture_output=True, text=True, check=True
    )
    log_line, output = done.stdout.strip().splitlines()
    assert json.loads(output)["text"] == "hi there"
    assert json.loads(log_line)["step"] == "preprocess"


def test_sof_package_writes_the_zip(tmp_path: Path, capsys: object) -> None:
    target = tmp_path / "out" / "lambda.zip"
    assert main(["package", "--output", str(target)]) == 0
    assert zipfile.is_zipfile(target)
    with zipfile.ZipFile(target) as archive:
        assert MODEL_ENTRY not in archive.namelist()  # the SageMaker entry script stays out of the Lambda zip
    assert tarfile.is_tarfile(target.with_name("model.tar.gz"))


def test_the_model_bundle_is_deterministic_and_holds_only_the_code(tmp_path: Path) -> None:
    first = build_model_bundle(LAMBDA_SRC, tmp_path / "a.tar.gz")
    second = build_model_bundle(LAMBDA_SRC, tmp_path / "b.tar.gz")
    assert first.sha256_hex == second.sha256_hex
    assert "code/inference.py" in first.files and "code/pipeline/serve.py" in first.files
    assert all(f.startswith("code/") and "__pycache__" not in f for f in first.files)
    with tarfile.open(first.path) as archive:
        members = archive.getmembers()
    assert all(m.isfile() and m.mtime == 0 and m.uid == 0 and m.mode == 0o644 for m in members)


def test_the_inference_script_serves_the_embed_step_as_the_toolkit_calls_it(tmp_path: Path) -> None:
    bundle = build_model_bundle(LAMBDA_SRC, tmp_path / "model.tar.gz")
    with tarfile.open(bundle.path) as archive:
        archive.extractall(tmp_path / "model", filter="data")
    script = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import inference as m;"
        "model = m.model_fn(sys.argv[1]);"
        "body = json.dumps({'ticket_id': 'T-9', 'text': 'my parcel never arrived'});"
        "print(m.output_fn(m.predict_fn(m.input_fn(body, 'application/json'), model), 'application/json'));"
        "\ntry:\n m.input_fn('{', 'application/json')\nexcept Exception as e: print(type(e).__name__)"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", script, str(tmp_path / "model" / "code")],
        capture_output=True,
        text=True,
        check=True,
        env={"SIMULATED_INFER_MS": "0", "PATH": "/usr/bin:/bin"},
    )
    log_line, output, error = done.stdout.strip().splitlines()
    assert json.loads(output)["route"] == "delivery" and json.loads(log_line)["step"] == "embed"
    assert error == "InvalidTicket"
