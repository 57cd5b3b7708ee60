"""Files in and out: atomic UTF-8 writes with the user's umask, output folders that exist or say why, and
reads of regular files only. Every failure is one OutputError naming the path, never a traceback.

Light on purpose (no torch, no pandas): the command line imports it before anything heavy.
"""
from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from .config import ConfigError

ENCODING = "utf-8"  # every file mnistbench writes or reads, whatever the locale says
OUT_VARIABLE = "MNISTBENCH_OUT"
DEFAULT_OUT = "mnistbench-out"


class OutputError(ConfigError):
    """An output that cannot be written (permissions, a file where a folder should be, a full disk):
    the CLI prints it as one line naming the path and exits 2; what was written before stays intact."""


def reason(exc: OSError) -> str:
    """An OSError in words without Python's repr: 'No space left on device'."""
    if exc.errno == errno.ENOSPC:
        return "no space left on the device; free some and rerun with --resume"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{exc.strerror or 'permission denied'}; choose a folder you can write with --out"
    return exc.strerror or str(exc) or type(exc).__name__


def _umask() -> int:
    """The process umask, without changing it (Linux reports it in /proc; elsewhere set and restore)."""
    try:
        for line in Path("/proc/self/status").read_text(encoding=ENCODING).splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path, text: str) -> None:
    """Write text as UTF-8 via a temp file in the same folder and os.replace: a reader sees all or nothing.
    The file gets the mode a plain open() would (0644 under the usual umask), not mkstemp's 0600."""
    atomic_write_bytes(path, text.encode(ENCODING))


def atomic_write_bytes(path, payload: bytes) -> None:
    """atomic_write_text for bytes (a picture): temp file, fsync, os.replace, the umask's mode."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {reason(exc)}") from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {reason(exc)}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make_folder(folder, what: str = "output folder") -> Path:
    """The folder, created with its parents if needed; OutputError in one line if it cannot be."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{what} {folder} is a file, not a folder; remove it or choose another path")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a parent is a file
        raise OutputError(f"{what} {folder} cannot be created: a file is in the way") from None
    except OSError as exc:
        raise OutputError(f"{what} {folder} cannot be created: {reason(exc)}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {folder} is not writable; choose a folder you can write with --out")
    return folder


def save_or_stop(save, record, out, saved_before: int = 0):
    """save(record, out) for a sweep's save loop: an OSError (a full disk, a folder made read-only) stops
    the sweep with an OutputError saying which run could not be saved and that the earlier ones are."""
    try:
        return save(record, out)
    except (OSError, OutputError) as exc:
        why = reason(exc) if isinstance(exc, OSError) else str(exc)
        raise OutputError(f"stopped: run {record.run_id} finished but could not be saved in "
                          f"{out} ({why}); the {saved_before} run(s) saved before it are intact") from None


def read_regular_text(path, max_bytes: int = 256 * 2**20) -> str:
    """A regular file's text (UTF-8): OSError for a folder, a named pipe, a device or a file over
    max_bytes, so a FIFO named *.json cannot hang a reader; UnicodeDecodeError for bytes that are not UTF-8."""
    path = Path(path)
    # O_NONBLOCK: opening a FIFO without a writer returns at once instead of waiting
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        if info.st_size > max_bytes:
            raise OSError(errno.EFBIG, f"larger than {max_bytes} bytes", str(path))
        with os.fdopen(fd, "rb") as handle:
            fd = -1
            raw = handle.read(max_bytes + 1)
    finally:
        if fd >= 0:
            os.close(fd)
    if len(raw) > max_bytes:
        raise OSError(errno.EFBIG, f"larger than {max_bytes} bytes", str(path))
    return raw.decode(ENCODING)


def env_value(name: str) -> str | None:
    """An environment variable's value, None when unset or empty (an empty value means 'not set')."""
    value = os.environ.get(name, "").strip()
    return value or None


def user_path(text, what: str) -> Path:
    """A path the user gave, with ~ expanded; ConfigError in one line when ~ cannot be (no such user,
    no home). what names the option or variable."""
    text = str(text)
    if not text.strip():
        raise ConfigError(f"{what}: empty path")
    if "\0" in text:
        raise ConfigError(f"{what}: a path cannot contain a NUL character")
    try:
        return Path(text).expanduser()
    except RuntimeError as exc:  # Path.expanduser: 'Could not determine home directory'
        raise ConfigError(f"{what} {text}: cannot expand '~' ({exc}); give the full path") from None


def default_out() -> Path:
    """$MNISTBENCH_OUT (unset or empty: mnistbench-out/ in the working directory)."""
    value = env_value(OUT_VARIABLE)
    return user_path(value, OUT_VARIABLE) if value else Path(DEFAULT_OUT)
