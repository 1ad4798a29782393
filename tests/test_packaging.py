"""The deployment zip: deterministic, clean, and importable as Lambda imports it."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

from scaleorfail.cli import main
from scaleorfail.packaging import build_zip

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
