"""sof - the scale-or-fail command line.

Deploy the inference pipeline (to AWS or the embedded emulator), load it, harvest what
happened and explain it. Run `sof <command> --help` for the details of a command.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from scaleorfail.errors import UserError

Handler = Callable[[argparse.Namespace], int]


def _package(args: argparse.Namespace) -> int:
    from scaleorfail import paths
    from scaleorfail.packaging import DEFAULT_EXCLUDES, build_zip

    output = args.output or paths.build_dir() / "lambda.zip"
    archive = build_zip(paths.lambda_src_dir(), output, DEFAULT_EXCLUDES)
    print(
        f"built {archive.path} ({archive.size} bytes, {len(archive.files)} files, sha256 {archive.sha256_hex[:16]}...)"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sof", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    package = commands.add_parser(
        "package",
        help="build the Lambda deployment zip (build/lambda.zip)",
        description="Zip lambda_src/ deterministically, the same way Terraform's archive_file does.",
    )
    package.add_argument("--output", type=_path, help="where to write the zip (default: build/lambda.zip)")
    package.set_defaults(handler=_package)
    return parser


def _path(value: str) -> object:
    from pathlib import Path

    return Path(value)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except UserError as error:
        print(error.render(), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
