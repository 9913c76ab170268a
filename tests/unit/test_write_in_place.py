"""`files.write_in_place` replaces a sidecar even when another process writes the same one
at the same moment (two passes shelving one waiting batch): the second's exclusive create
found the first's file between its removal and its creation and failed the whole pass
(`FileExistsError`, seen once in a full run of the suite)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import files


def test_a_file_made_between_the_removal_and_the_creation_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "batch.xml.findings.txt"
    real = files.write_new
    raced = []

    def write_new(target: Path, data: bytes | str, **options: object) -> None:
        if not raced:  # the other process's file appears just before ours is created
            raced.append(True)
            target.write_text("the other's findings\n")
        real(target, data, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(files, "write_new", write_new)
    files.write_in_place(path, "ours\n", mode=0o444, sync=False)
    assert path.read_text() == "ours\n" and raced


def test_write_once_never_replaces_a_file_there(tmp_path: Path) -> None:
    """`write_once` writes a file whole where none is, and leaves one another process
    wrote meanwhile as it is, saying so; no temporary is left either way."""
    path = tmp_path / "installation"
    assert files.write_once(path, "1\n") is True
    assert files.write_once(path, "2\n") is False
    assert path.read_text() == "1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["installation"]
