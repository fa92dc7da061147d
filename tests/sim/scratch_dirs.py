"""The simulator's scratch directories (the nodes' homes): named for their process, never left.

A home is `<tmp>/spark-sim-node<index>-<pid>-<random>`. It goes when the cluster stops; when the
process ends before that, on SIGTERM or SIGHUP (a CI timeout, `kill`, a closed terminal) or on
an exit that skipped the cluster's stop; and, for a process killed with SIGKILL, when the next
simulator starts: the homes of pids that no longer run are removed then. Only this user's homes
are swept, and a pid that still runs keeps its homes (a pid of another user's live process
answers EPERM and counts as running), so a sweep never touches a live simulator's directory.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Final

PREFIX: Final = "spark-sim-node"
_HOME_NAME: Final = re.compile(rf"{PREFIX}\d+-(?P<pid>\d+)-[^/]+")
# Signals that end a process without unwinding Python: cleaned up here, then re-raised.
_FATAL_SIGNALS: Final = (signal.SIGTERM, signal.SIGHUP)

_live: set[Path] = set()
_guarded = False


def make_home(index: int) -> Path:
    """A new private directory for node `index`, removed with this process at the latest."""
    _guard_process()
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{index}-{os.getpid()}-"))
    _live.add(path)
    return path


def remove_home(path: Path) -> None:
    _live.discard(path)
    shutil.rmtree(path, ignore_errors=True)


def remove_stale_homes(root: Path | None = None) -> list[Path]:
    """Remove this user's homes whose process no longer runs; the paths removed."""
    removed: list[Path] = []
    for path in (root or Path(tempfile.gettempdir())).glob(f"{PREFIX}*"):
        match = _HOME_NAME.fullmatch(path.name)
        if match is None or _running(int(match["pid"])):
            continue
        with contextlib.suppress(OSError):
            info = path.lstat()
            if path.is_dir() and not path.is_symlink() and info.st_uid == os.getuid():
                shutil.rmtree(path)
                removed.append(path)
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def _remove_live() -> None:
    for path in list(_live):
        remove_home(path)


def _guard_process() -> None:
    """Once per process: remove the live homes at exit and on a fatal signal nobody handles.

    A signal someone already handles (`python -m tests.sim` stops the cluster on SIGTERM
    itself) is left to them. SIGINT needs nothing here: its KeyboardInterrupt unwinds through
    the cluster's stop or, at the latest, the exit hook.
    """
    global _guarded  # noqa: PLW0603 - one guard per process
    if _guarded:
        return
    _guarded = True
    atexit.register(_remove_live)
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread
    for signum in _FATAL_SIGNALS:
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, _remove_live_then_die)


def _remove_live_then_die(signum: int, _frame: FrameType | None) -> None:
    """Clean up, then end the way the signal would have ended the process."""
    _remove_live()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
