"""Signals, in one place: Ctrl-C and SIGTERM stop a command cleanly (exit 130, finished runs kept).

Light on purpose (the command line imports it before anything heavy). Python runs signal handlers in the
main thread only, so each helper does nothing elsewhere (a notebook's worker thread, a test runner's).
"""
from __future__ import annotations

import contextlib
import signal
import threading

DEFERRED = {signal.SIGINT, signal.SIGTERM}


def in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def raise_interrupt(signum, frame):
    """A SIGTERM handler: stop the way Ctrl-C does, through KeyboardInterrupt."""
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def deferred():
    """Ctrl-C and SIGTERM wait until the block is left (then they are raised as usual): what the block does
    (take a claim and record it as held) happens whole or not at all."""
    if not in_main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, DEFERRED)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
