"""What decides whether a tool's remembered ``--version`` text is used."""

from __future__ import annotations

import os
from pathlib import Path

from remediate.hostside.tool_versions import MAX_TEXT, VersionMemo, binary_identity


def _elf(tmp_path: Path, name: str = "runc") -> Path:
    path = tmp_path / name
    path.write_bytes(Path("/bin/true").read_bytes())
    path.chmod(0o755)
    return path


def test_an_elf_binary_has_an_identity_that_changes_with_its_file(tmp_path: Path) -> None:
    runc = _elf(tmp_path)
    before = binary_identity(str(runc))
    assert before is not None and before == binary_identity(str(runc))
    os.utime(runc, (1_600_000_000, 1_600_000_000))
    assert binary_identity(str(runc)) not in (None, before)
    replaced = _elf(tmp_path, "runc.new")
    os.rename(replaced, runc)  # an upgrade: a new inode at the same path
    assert binary_identity(str(runc)) not in (None, before)


def test_scripts_directories_and_missing_files_have_none(tmp_path: Path) -> None:
    script = tmp_path / "docker"
    script.write_text("#!/bin/sh\nexec podman \"$@\"\n")
    assert binary_identity(str(script)) is None
    assert binary_identity(str(tmp_path)) is None
    assert binary_identity(str(tmp_path / "missing")) is None


def test_a_text_is_recalled_only_for_the_identity_it_was_kept_with(tmp_path: Path) -> None:
    runc = str(_elf(tmp_path))
    identity = binary_identity(runc)
    memo = VersionMemo({runc: {"id": identity, "text": "runc version 1.1.12\n"}})
    assert memo.recall(runc, identity) == "runc version 1.1.12\n"
    assert memo.recall(runc, [*identity[:2], identity[2] + 1, *identity[3:]]) is None
    assert memo.recall(runc, None) is None
    assert memo.recall("/usr/bin/other", identity) is None
    assert list(memo.used) == [runc] and not memo.learned


def test_malformed_entries_are_ignored() -> None:
    memo = VersionMemo({"/a": "text", "/b": {"id": "x", "text": "t"}, "/c": {"id": [1]},
                        "/d": {"id": [1], "text": 5}, "/e": {"id": [1], "text": "ok"}})
    assert list(memo.entries) == ["/e"]
    assert VersionMemo(["not", "a", "dict"]).entries == {}


def test_only_texts_of_known_binaries_and_of_bounded_size_are_learned(tmp_path: Path) -> None:
    memo = VersionMemo()
    memo.remember("/x", None, "script output")
    memo.remember("/y", [1, 2, 3, "4.0", "5.0"], "v" * (MAX_TEXT + 1))
    assert memo.used == {} and not memo.learned
    memo.remember("/z", [1, 2, 3, "4.0", "5.0"], "runc version 1.1.12\n")
    assert memo.learned and memo.used["/z"]["text"] == "runc version 1.1.12\n"
