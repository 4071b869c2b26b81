"""One CLI: `featureboard demo | serve | precompute | output-evidence | settings | db | users | labels | autolabel`.

Commands raise; :func:`main` is the one place that maps errors to exit codes: an error a user can cause (a bad
SAE folder, a missing corpus, a bad setting, an unknown source) prints one line naming the problem and exits 2,
without a traceback; Ctrl-C exits 130 and says how to continue.
"""

from __future__ import annotations

import argparse
import os
import sys

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def user_error_message(err: BaseException) -> str | None:
    """The one line to print for an error a user can cause (every such error is an app.errors.FeatureboardError;
    a bad setting is pydantic's ValidationError), or None for a bug, which keeps its traceback."""
    from pydantic import ValidationError

    from app.errors import FeatureboardError

    if isinstance(err, FeatureboardError):
        return err.message
    if isinstance(err, ValidationError):
        return str(err)
    return None


def build_parser() -> argparse.ArgumentParser:
    from app.cli import accounts, autolabel, output, precompute, server

    parser = argparse.ArgumentParser(prog="featureboard", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    server.add_commands(sub)
    p = sub.add_parser("precompute", help="compute feature statistics and examples into the database")
    precompute.add_arguments(p)
    p.set_defaults(func=precompute.main)
    p = sub.add_parser("output-evidence", help="measure what each feature does to the model's output (resumable)")
    output.add_arguments(p)
    p.set_defaults(func=output.main)
    accounts.add_commands(sub)
    p = sub.add_parser("autolabel", help="draft labels and score labels for a source's features")
    autolabel.add_arguments(p)
    p.set_defaults(func=autolabel.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print(f"{args.command}: interrupted; run the same command again to continue where it stopped",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:
        message = user_error_message(err)
        if message is None:
            raise
        print(f"featureboard: error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
