"""Claims: two commands writing into one results folder never train the same configuration at once.

Before a run starts, its runner creates runs/.claims/<key>.json exclusively (O_EXCL: exactly one of two
racing processes succeeds) holding its host and pid; the claim is held until the command ends (a command
started beside it must not train the configuration again once it is saved). A claim whose process is gone (same host, pid not alive) is stale and taken over.
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path


def _folder(out: Path) -> Path:
    return Path(out) / "runs" / ".claims"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def holder(path: Path) -> dict | None:
    """Who holds a claim file ({host, pid, since}), or None when it is stale or unreadable."""
    try:
        owner = json.loads(path.read_text(encoding="utf-8"))
        host, pid = owner["host"], int(owner["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if host == socket.gethostname() and not _alive(pid):
        return None
    return owner


def take(out: Path, key: str) -> Path | dict:
    """Claim key in out: the claim's path when it is ours now, else who holds it ({host, pid, since})."""
    folder = _folder(out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.json"
    me = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.strftime("%Y-%m-%dT%H:%M:%SZ")}
    for _ in range(2):  # once more after removing a stale claim
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = holder(path)
            if owner is not None:
                return owner
            path.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(me, handle)
        return path
    return holder(path) or {"host": "?", "pid": "?", "since": "?"}


def release(path: Path) -> None:
    Path(path).unlink(missing_ok=True)
