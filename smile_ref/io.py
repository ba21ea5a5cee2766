"""Atomic file writes and guarded reads: the one place smile_ref touches the disk.

Every file smile_ref writes (checkpoints, results, golden trajectories, ensemble stores,
verification reports) goes through :func:`atomic_write`: the content is written to a temporary
file in the destination's directory, flushed and ``fsync``-ed, and moved into place with
:func:`os.replace` (atomic on POSIX and Windows), then the directory is ``fsync``-ed.  A reader
therefore sees either the old file or the new one, never half of one.

Temporary names start with :data:`TMP_PREFIX` and carry the writer's process id and the
destination's name: ``.tmp-smile_ref-<pid>-<random>-<name>``.  A write killed between the
temporary file and the rename (SIGKILL, power loss) leaves such a file behind; the next write
into the same directory removes

* temporaries of the *same destination* whose writer process is gone, and
* any of our temporaries older than :data:`STALE_AFTER_S` seconds (1 h),

so a crashed run leaves nothing behind once it has been resumed.

Readers (:func:`read_json`, :func:`read_npz`) turn every way a file can be damaged or foreign
(truncated zip, bad CRC, invalid JSON, pickled data, a ``.npy`` where an ``.npz`` is expected)
into :class:`~smile_ref.errors.CorruptFileError` naming the file.

Examples
--------
>>> import os, tempfile, numpy as np
>>> d = tempfile.mkdtemp()
>>> atomic_write_json(os.path.join(d, "a.json"), {"x": 1})
>>> read_json(os.path.join(d, "a.json"))
{'x': 1}
>>> atomic_save_npz(os.path.join(d, "b.npz"), {"v": np.arange(3)})
>>> read_npz(os.path.join(d, "b.npz"))["v"]
array([0, 1, 2])
"""
from __future__ import annotations

import errno
import json
import os
import re
import secrets
import time
import zipfile
from typing import Any, Callable

import numpy as np

from .errors import CorruptFileError

__all__ = [
    "TMP_PREFIX",
    "STALE_AFTER_S",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_save_npz",
    "clean_stale_temporaries",
    "check_writable",
    "read_json",
    "read_npz",
]

#: Prefix of every temporary file smile_ref creates.
TMP_PREFIX = ".tmp-smile_ref-"
#: Age (seconds) after which any of our temporaries in a directory we write to is removed.
STALE_AFTER_S = 3600.0

_TMP_RE = re.compile(r"^" + re.escape(TMP_PREFIX) + r"(\d+)-([0-9a-f]{8})-(.*)$")
# temporaries of smile_ref before this module (tempfile.mkstemp(prefix=".tmp-", suffix=ext))
_LEGACY_RE = re.compile(r"^\.tmp-[A-Za-z0-9_]{8}\.(npz|json|md|txt)$")


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":  # pragma: no cover - no cheap liveness test; rely on the age rule
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - another user's live process
        return True
    except OSError:  # pragma: no cover
        return True
    return True


def clean_stale_temporaries(directory, name: str | None = None, max_age: float = STALE_AFTER_S) -> list[str]:
    """Remove abandoned smile_ref temporaries in ``directory``; returns the removed paths.

    A temporary is abandoned when it belongs to destination ``name`` and its writer process no
    longer exists, or when it is older than ``max_age`` seconds (whatever its destination).
    Temporaries of live writers of other files are never touched.
    """
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    me = os.getpid()
    for e in entries:
        m = _TMP_RE.match(e.name)
        legacy = m is None and _LEGACY_RE.match(e.name) is not None
        if m is None and not legacy:
            continue
        try:
            age = now - e.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        stale = age > max_age
        if m is not None and not stale and name is not None and m.group(3) == name[:150]:
            pid = int(m.group(1))
            stale = pid != me and not _pid_alive(pid)
        if stale:
            try:
                os.remove(e.path)
                removed.append(e.path)
            except OSError:
                pass
    return removed


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write(path, write: Callable[[Any], None], binary: bool = True, encoding: str = "utf-8") -> None:
    """Call ``write(fh)`` on a temporary file beside ``path``, fsync it and move it into place.

    Parameters
    ----------
    path : str or os.PathLike
        Destination; its directory is created if missing.
    write : callable
        ``write(fh)`` writes the whole content to the open file object ``fh``.
    binary : bool
        Open the temporary in binary (default) or text mode (``encoding``).

    On any exception (including ``KeyboardInterrupt``) the temporary is removed and the
    destination is left as it was.  The new file gets the default permissions (umask), not the
    0600 of :func:`tempfile.mkstemp`.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    name = os.path.basename(path)
    clean_stale_temporaries(directory, name)
    tmp = os.path.join(directory, f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-{name[:150]}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": encoding})) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically."""
    atomic_write(path, lambda fh: fh.write(text), binary=False, encoding=encoding)


def atomic_write_json(path, obj, *, indent=2, sort_keys=True, default=str, allow_nan=True) -> None:
    """Serialise ``obj`` first (so that an unserialisable object writes nothing), then write it atomically."""
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, default=default, allow_nan=allow_nan) + "\n"
    atomic_write_text(path, text)


def atomic_save_npz(path, arrays: dict, compressed: bool = False) -> None:
    """Write ``arrays`` (``{key: array}``) to the ``.npz`` file ``path`` atomically (no pickles)."""
    save = np.savez_compressed if compressed else np.savez
    atomic_write(path, lambda fh: save(fh, **arrays))


def check_writable(path, name: str) -> str:
    """Check before any work that the file ``path`` (argument ``name``) can be written; return it.

    The parent directory is created if missing, then a temporary file is created in it and
    removed.  Raises the matching :class:`OSError` subclass (``PermissionError``,
    ``NotADirectoryError``, ``IsADirectoryError``, ...) with a message naming the argument.
    """
    p = os.fspath(path)
    if os.path.isdir(p):
        raise IsADirectoryError(errno.EISDIR, f"{name}={p!r} is a directory; expected a file path")
    directory = os.path.dirname(os.path.abspath(p))
    probe = os.path.join(directory, f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-probe")
    anc = directory
    while not os.path.exists(anc) and os.path.dirname(anc) != anc:
        anc = os.path.dirname(anc)
    if not os.path.isdir(anc):
        raise NotADirectoryError(errno.ENOTDIR, f"{name}={p!r} cannot be written: {anc!r} is a file, not a directory")
    try:
        os.makedirs(directory, exist_ok=True)
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        cls = type(exc) if type(exc) is not OSError else OSError
        raise cls(exc.errno, f"{name}={p!r} cannot be written: directory {directory!r}: "
                             f"{exc.strerror or exc}") from None
    return p


def read_json(path, what: str = "file"):
    """Parse the JSON file ``path``; a damaged or non-JSON file raises :class:`CorruptFileError`."""
    p = os.fspath(path)
    try:
        with open(p, "rb") as fh:
            raw = fh.read()
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise CorruptFileError(f"{what} {p!r} is damaged or not JSON ({type(exc).__name__}: {exc})") from None


_NPZ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, KeyError, OSError, TypeError,
               NotImplementedError)


def read_npz(path, what: str = "file") -> dict:
    """All arrays of the ``.npz`` file ``path`` (loaded without pickles) as a dict.

    A truncated, damaged (bad CRC), pickled or non-``.npz`` file raises
    :class:`CorruptFileError` naming the file; a missing file raises ``FileNotFoundError``.
    """
    p = os.fspath(path)
    if not os.path.exists(p):
        raise FileNotFoundError(errno.ENOENT, f"{what} {p!r} does not exist")
    try:
        data = np.load(p, allow_pickle=False)
    except _NPZ_ERRORS as exc:
        why = "holds pickled objects and cannot be read without pickles" if "pickle" in str(exc) else \
            "is damaged or not an .npz file"
        raise CorruptFileError(f"{what} {p!r} {why} ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise CorruptFileError(f"{what} {p!r} is not an .npz archive (found a single {type(data).__name__})")
    try:
        with data:
            return {k: data[k] for k in data.files}
    except _NPZ_ERRORS as exc:
        why = "holds pickled objects and cannot be read without pickles" if "pickle" in str(exc) else "is damaged"
        raise CorruptFileError(f"{what} {p!r} {why} ({type(exc).__name__}: {exc})") from None
