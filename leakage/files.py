"""Write a file so that a reader sees either the old content or the new, never half of it.

Result files (``report.json``, ``report.html``, reconstruction grids, transcripts) are
read by people and by other tools while a run may still be going, or after it crashed.
:func:`write_atomically` is the one routine that writes them: the data goes to a fresh
temporary file in the target's own folder (``os.replace`` is atomic only within one file
system), is flushed to disk, and is then moved over the target in one step.

This is a base module: it imports nothing from the rest of the toolkit.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

__all__ = ["write_atomically"]


def write_atomically(path: str | os.PathLike[str], data: str | bytes) -> Path:
    """Write ``data`` to ``path`` in one step and return the path; ``str`` is written as UTF-8, byte for byte.

    The data goes to a hidden temporary file beside ``path`` (a fresh name each call, so
    two writers never share one), is fsynced, and replaces ``path`` with ``os.replace``.
    If anything fails, the temporary file is removed and an existing ``path`` is left
    exactly as it was. Missing parent folders are created. The new file gets the
    process's usual permissions (the umask), not the 0600 of :func:`tempfile.mkstemp`.
    Text is not newline-translated: ``"\\n"`` is written as ``"\\n"`` on every platform.

    Args:
        path: the file to create or replace.
        data: the whole new content.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        TypeError: ``data`` is neither ``str`` nor ``bytes``.
        OSError: the folder cannot be created or written, or ``path`` is a folder.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     target = write_atomically(pathlib.Path(folder) / "out" / "result.json", '{"leakage": 0.25}\\n')
    ...     target.read_text(encoding="utf-8"), [p.name for p in target.parent.iterdir()]
    ('{"leakage": 0.25}\\n', ['result.json'])
    """
    if isinstance(data, str):
        payload = data.encode("utf-8")
    elif isinstance(data, bytes):
        payload = data
    else:
        raise TypeError(f"data must be str or bytes, got {type(data).__name__}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        # "x": fail rather than follow or truncate anything already at the temporary name.
        with open(temporary, "xb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _sync_folder(target.parent)
    return target


def _sync_folder(folder: Path) -> None:
    """Flush the folder's entry for the renamed file, so the rename itself survives a power cut (POSIX only)."""
    if os.name != "posix":  # Windows cannot open a folder for fsync; its rename is already journaled
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
