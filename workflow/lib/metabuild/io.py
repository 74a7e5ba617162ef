"""Atomic file output: a job never leaves a half-written file behind, and a job whose build
has ended never moves a file into place."""

from __future__ import annotations

import glob
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO


class BuildEnded(BaseException):
    """The build that asked for an output has ended (killed): the output must not appear.

    A ``BaseException``, like ``SystemExit``, so that no ``except Exception`` in a script or
    the library carries on writing."""


#: Whether the build this process writes for is still running; None: always (a process that
#: is the build itself). The job workers set it (``metabuild.workers``).
_build_running: Callable[[], bool] | None = None


def set_build_check(check: Callable[[], bool] | None) -> None:
    """Make :func:`move_into_place` ask ``check()`` before every move (None: never ask)."""
    global _build_running
    _build_running = check


def move_into_place(src: str | Path, dst: str | Path) -> None:
    """``os.replace(src, dst)``, the last step of every output's writing, unless the build
    that asked for ``dst`` has ended: then raise :class:`BuildEnded` and leave ``dst`` as it
    was (a build killed with SIGKILL cannot stop its job workers before they get here, and
    Snakemake must not find, after it died, an output it never saw finish)."""
    if _build_running is not None and not _build_running():
        raise BuildEnded(f"not moving {dst} into place: the build that asked for it has ended")
    os.replace(src, dst)


def temporary_prefix(path: Path) -> str:
    """Name prefix of the temporary files and folders written beside ``path`` (with the
    suffix ``.tmp``), so that :func:`remove_stale_temporaries` can find them."""
    return f".{path.name}."


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write`` on a temporary file beside ``path``, then move it into place with
    :func:`move_into_place`: a reader never sees a half-written file. The file gets the usual
    permissions (0666 less the umask), not mkstemp's 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temporary_prefix(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        move_into_place(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Delete the temporaries a killed job left beside ``path`` (a SIGKILL skips the
    clean-up of :func:`atomic_write`); returns what was deleted. Only for the outputs of the
    job about to run: no other job writes them."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    stale = sorted(path.parent.glob(f"{glob.escape(temporary_prefix(path))}*.tmp"))
    for item in stale:
        if item.is_dir():
            shutil.rmtree(item, ignore_errors=True)
        else:
            item.unlink(missing_ok=True)
    return stale


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``path`` atomically."""
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def finite(data: Any) -> Any:
    """``data`` with NaN and infinities replaced by None (JSON has no NaN) and numpy
    scalars, tuples and arrays made plain Python."""
    if isinstance(data, dict):
        return {str(k): finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite(v) for v in data]
    if hasattr(data, "tolist"):
        return finite(data.tolist())
    if isinstance(data, float) and not math.isfinite(data):
        return None
    return data


def write_json(path: str | Path, data: Any) -> None:
    """Deterministic JSON (sorted keys, fixed indentation), written atomically."""
    text = json.dumps(finite(data), indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False)
    write_text(path, text + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))
