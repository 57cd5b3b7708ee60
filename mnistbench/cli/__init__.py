"""The command line: argparse sub-commands, each option declared once (cli.options).

May import everything else; nothing imports cli. Only light modules are imported here, so `--help` is
quick and Ctrl-C is handled before torch, pandas or scipy load (in the handlers that use them).
Exit codes: 0 done; 1 a run failed (its error is in its result file) or `compare` found a slowdown;
2 a user mistake (ConfigError and its subclasses DataError, OutputError; ResultError), one line on
stderr, never a traceback; 130 Ctrl-C or SIGTERM, at any moment (a second Ctrl-C stops at once);
141 stdout closed early (`mnistbench list | head -1`), quietly.
"""
from __future__ import annotations

import os
import signal
import sys
import warnings

from .. import files, interrupts
from ..config import ConfigError
from ..registry import PluginWarning
from .commands import add_run
from .options import OneLineParser
from .perf import add_perf
from .verify import add_verify

INTERRUPTED, BROKEN_PIPE, USER_ERROR = 130, 141, 2
# modules whose errors are user mistakes too; looked up only if loaded (a module not imported raised nothing)
USER_ERROR_MODULES = {"mnistbench.results": "ResultError", "mnistbench.data": "DataError"}


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="mnistbench", description="Manual vs builtin vs scikit-learn models on MNIST: "
                           "accuracy, time and throughput under one harness.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    add_run(sub)
    add_perf(sub)
    add_verify(sub)
    return parser


def main(argv=None) -> int:
    previous, interrupted = _install_interrupt_handler(), False
    _printable_streams()
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_plugin_warnings(warnings.showwarning)
            status = _main(argv)
            sys.stdout.flush()  # a closed pipe shows here, inside the handling, not at interpreter exit
            return status
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except KeyboardInterrupt:
        interrupted = True
        if previous is not None:  # the process is ending: Python's shutdown keeps SIG_IGN (not a handler)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        _say("mnistbench: interrupted; finished runs are saved")
        return INTERRUPTED
    finally:
        if previous is not None and not interrupted:
            signal.signal(signal.SIGINT, previous)


def program() -> None:
    """The `mnistbench` program (console script and `python -m mnistbench`): main, then exit with its status.

    After a Ctrl-C it leaves without the interpreter's teardown: a KeyboardInterrupt that landed inside a C
    extension's import (torch's) can leave CPython marking it "unhandled" although main caught it, and CPython
    then ends by killing itself with SIGINT (status -2) instead of exiting 130. Every run is on disk already.
    """
    status = main()
    if status == INTERRUPTED:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(INTERRUPTED)
    raise SystemExit(status)


def _main(argv) -> int:
    try:
        args = build_parser().parse_args(argv)
        _fill_default_out(args)
        return args.handler(args)
    except Exception as exc:
        if not isinstance(exc, _user_errors()):
            raise
        command = f" {sys.argv[1]}" if argv is None and len(sys.argv) > 1 else ""
        _say(f"mnistbench{command}: error: {' '.join(str(exc).split())}")
        return USER_ERROR


def _user_errors() -> tuple:
    loaded = [getattr(sys.modules[name], cls) for name, cls in USER_ERROR_MODULES.items() if name in sys.modules]
    return (ConfigError, *loaded)


def _fill_default_out(args) -> None:
    """--out left out: $MNISTBENCH_OUT (an empty one counts as unset), else mnistbench-out/."""
    if getattr(args, "out", ...) is None:
        args.out = files.default_out()
    if getattr(args, "folder", ...) is None:
        args.folder = files.default_out()


def _one_line_plugin_warnings(show):
    """A plugin's problem is one line on stderr, not Python's two-line warning with a source excerpt."""
    def show_warning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, PluginWarning):
            print(f"mnistbench: warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    return show_warning


# ---------------------------------------------------------------- signals, pipes, encodings
def _on_interrupt(signum, frame):
    """First Ctrl-C: KeyboardInterrupt (the sweep stops, finished runs are on disk). A second one while
    stopping exits at once: every finished run was written atomically, so nothing is lost."""
    signal.signal(signal.SIGINT, _stop_now)
    raise KeyboardInterrupt


def _stop_now(signum, frame):
    _say("mnistbench: interrupted again; stopped at once, finished runs are saved")
    os._exit(INTERRUPTED)


def _install_interrupt_handler():
    if not interrupts.in_main_thread() or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return None  # someone (a notebook, a test runner, a caller) handles Ctrl-C already
    return signal.signal(signal.SIGINT, _on_interrupt)


def _printable_streams() -> None:
    """A non-UTF-8 terminal (LANG=C, PYTHONIOENCODING=ascii) shows '?' for Δ and ±, instead of failing."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure") and (stream.encoding or "").lower().replace("-", "") != "utf8":
            try:
                stream.reconfigure(errors="replace")
            except (ValueError, OSError):  # a detached or closed stream: leave it
                pass


def _say(line: str) -> None:
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):  # stderr closed too: the exit code still says it
        pass


def _quiet_broken_pipe() -> int:
    """The reader of stdout left (`| head`): stop quietly, as a C tool killed by SIGPIPE (exit 141)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's exit-time flush must not fail again
    except (OSError, ValueError):
        pass
    return BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
