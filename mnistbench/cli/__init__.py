"""The command line: argparse sub-commands, each option declared once (cli.options).

May import everything else; nothing imports cli. User mistakes (ConfigError, DataError, ResultError)
print one line and exit 2, never a traceback.
"""
from __future__ import annotations

import sys
import warnings

from ..config import ConfigError
from ..data import DataError
from ..registry import PluginWarning
from ..results import ResultError
from .commands import add_run
from .options import OneLineParser
from .perf import add_perf
from .verify import add_verify

USER_ERRORS = (ConfigError, DataError, ResultError)


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="mnistbench", description="Manual vs builtin vs scikit-learn models on MNIST: "
                           "accuracy, time and throughput under one harness.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    add_run(sub)
    add_perf(sub)
    add_verify(sub)
    return parser


def main(argv=None) -> int:
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_plugin_warnings(warnings.showwarning)
        return _main(argv)


def _one_line_plugin_warnings(show):
    """A plugin's problem is one line on stderr, not Python's two-line warning with a source excerpt."""
    def show_warning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, PluginWarning):
            print(f"mnistbench: warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    return show_warning


def _main(argv) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except USER_ERRORS as exc:
        command = f" {sys.argv[1]}" if argv is None and len(sys.argv) > 1 else ""
        print(f"mnistbench{command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mnistbench: interrupted; finished runs are saved", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
