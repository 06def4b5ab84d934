"""Tests for the atomic file write: the target holds the old content or the new one, never a part."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from leakage.files import write_atomically


def test_writes_text_as_utf8_without_translating_newlines(tmp_path: Path) -> None:
    target = tmp_path / "report.html"

    written = write_atomically(target, "ε ≥ 0.5\nline two\n")

    assert written == target
    assert target.read_bytes() == "ε ≥ 0.5\nline two\n".encode()
    assert [path.name for path in tmp_path.iterdir()] == ["report.html"]


def test_writes_bytes_unchanged_and_creates_missing_folders(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "grid.png"
    payload = bytes(range(256)) * 3

    write_atomically(str(target), payload)

    assert target.read_bytes() == payload


def test_replaces_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old, and longer than the new content", encoding="utf-8")

    write_atomically(target, "new")

    assert target.read_text(encoding="utf-8") == "new"
    assert [path.name for path in tmp_path.iterdir()] == ["report.json"]


def test_new_file_gets_the_umask_permissions_not_mkstemps_0600(tmp_path: Path) -> None:
    if os.name != "posix":
        pytest.skip("permission bits are POSIX")
    umask = os.umask(0o022)
    try:
        written = write_atomically(tmp_path / "report.json", "{}")
    finally:
        os.umask(umask)

    assert stat.S_IMODE(written.stat().st_mode) == 0o644


def test_failed_replace_keeps_the_old_file_and_removes_the_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.html"
    target.write_text("previous report", encoding="utf-8")

    def crash(source: object, destination: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        write_atomically(target, "new report")

    assert target.read_text(encoding="utf-8") == "previous report"
    assert [path.name for path in tmp_path.iterdir()] == ["report.html"]


def test_interrupted_write_removes_the_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "grid.png"

    def interrupt(descriptor: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(target, b"\x89PNG")

    assert list(tmp_path.iterdir()) == []


def test_a_folder_in_the_way_is_an_error_and_leaves_nothing_behind(tmp_path: Path) -> None:
    (tmp_path / "report.json").mkdir()

    with pytest.raises(OSError):
        write_atomically(tmp_path / "report.json", "{}")

    assert [path.name for path in tmp_path.iterdir()] == ["report.json"]
    assert (tmp_path / "report.json").is_dir()


def test_rejects_data_that_is_neither_text_nor_bytes(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="data must be str or bytes, got dict"):
        write_atomically(tmp_path / "report.json", {"leakage": 1})  # type: ignore[arg-type]

    assert list(tmp_path.iterdir()) == []
