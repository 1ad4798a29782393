"""Where the project's files are: the checkout holding terraform/, lambda_src/, data/."""

from __future__ import annotations

import os
from pathlib import Path

from scaleorfail.errors import UserError

MARKERS = ("terraform", "lambda_src", "pyproject.toml")


def _is_project(path: Path) -> bool:
    return all((path / marker).exists() for marker in MARKERS)


def project_root() -> Path:
    """$SOF_PROJECT_DIR, else the nearest parent of the current directory, else the package's checkout."""
    override = os.environ.get("SOF_PROJECT_DIR")
    if override:
        path = Path(override).resolve()
        if not _is_project(path):
            raise UserError(
                f"SOF_PROJECT_DIR={override} is not a scale-or-fail checkout", "point it at the repository root"
            )
        return path
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if _is_project(candidate):
            return candidate
    package_checkout = Path(__file__).resolve().parent.parent
    if _is_project(package_checkout):
        return package_checkout
    raise UserError(
        "cannot find the scale-or-fail checkout (terraform/, lambda_src/)",
        "run it from inside the repository",
    )


def terraform_dir() -> Path:
    return project_root() / "terraform"


def lambda_src_dir() -> Path:
    return project_root() / "lambda_src"


def build_dir() -> Path:
    return project_root() / "build"


def data_dir() -> Path:
    return project_root() / "data"


def tickets_file() -> Path:
    """The dataset: labelled support tickets, one JSON object a line."""
    return data_dir() / "tickets.jsonl"


def runs_dir() -> Path:
    return Path(os.environ.get("SOF_RUNS_DIR") or project_root() / "runs")


def state_dir() -> Path:
    """Local, uncommitted state: stack outputs, the emulator's pid file and logs."""
    return Path(os.environ.get("SOF_STATE_DIR") or project_root() / ".sof")


def shown(path: Path) -> str:
    """A path as the learner reads it: relative to the current directory when it is below it."""
    try:
        return str(path.absolute().relative_to(Path.cwd().absolute()))
    except ValueError:
        return str(path)
