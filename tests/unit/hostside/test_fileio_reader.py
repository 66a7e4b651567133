"""fileio and the readers: bounded reads, root confinement, commands with timeouts."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from remediate.hostside import fileio
from remediate.hostside.fileio import SourceError
from remediate.hostside.reader import LiveReader, RootReader


def test_absolute_symlink_resolves_inside_the_root(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "usr/lib").mkdir(parents=True)
    (tmp_path / "usr/lib/os-release").write_text("ID=inside\n")
    os.symlink("/usr/lib/os-release", tmp_path / "etc/os-release")
    assert RootReader(str(tmp_path)).read("/etc/os-release") == "ID=inside\n"


def test_dotdot_cannot_climb_out_of_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (tmp_path / "secret").write_text("outside\n")
    os.symlink("../../../../secret", root / "etc/link")
    with pytest.raises(SourceError, match="cannot open"):
        RootReader(str(root)).read("/etc/link")
    with pytest.raises(SourceError):
        RootReader(str(root)).read("/../secret")


def test_symlink_loop_is_a_reason_not_a_crash(tmp_path: Path) -> None:
    os.symlink("b", tmp_path / "a")
    os.symlink("a", tmp_path / "b")
    with pytest.raises(SourceError, match="symbolic links"):
        RootReader(str(tmp_path)).read("/a")
    with pytest.raises(SourceError, match="symbolic links"):
        LiveReader().read(str(tmp_path / "a"))


def test_reads_are_capped(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"x" * 100 + b"\n" + b"y" * 50)
    with pytest.raises(SourceError, match="larger than"):
        fileio.read_bytes(str(big), cap=64)
    tail = fileio.read_bytes(str(big), cap=60, tail=True)
    assert tail == b"y" * 50  # from the first full line of the tail


def test_a_sparse_gigabyte_file_is_refused_quickly(tmp_path: Path) -> None:
    huge = tmp_path / "huge.log"
    with open(huge, "wb") as handle:
        handle.truncate(1 << 30)
        handle.seek((1 << 30) - 6)
        handle.write(b"\nlast\n")
    started = time.monotonic()
    with pytest.raises(SourceError, match="larger than 16 MiB"):
        fileio.read_text(str(huge))
    assert fileio.read_text(str(huge), tail=True).endswith("last\n")
    assert time.monotonic() - started < 5


def test_fifo_and_directories_are_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(SourceError, match="not a regular file"):
        fileio.read_text(str(tmp_path / "fifo"))
    with pytest.raises(SourceError, match="not a regular file"):
        fileio.read_text(str(tmp_path))


def test_binary_content_is_refused_and_bad_utf8_replaced(tmp_path: Path) -> None:
    (tmp_path / "bin").write_bytes(b"\x7fELF\x00\x01")
    with pytest.raises(SourceError, match="binary"):
        fileio.read_text(str(tmp_path / "bin"))
    (tmp_path / "latin1").write_bytes(b"caf\xe9\n")
    assert fileio.read_text(str(tmp_path / "latin1")) == "caf\ufffd\n"


def test_procfs_files_with_size_zero_are_read() -> None:
    assert fileio.read_text("/proc/self/status").startswith("Name:")


def test_run_command_output_and_status() -> None:
    code, out, _err = fileio.run_command(["sh", "-c", "echo hi; exit 3"])
    assert (code, out) == (3, "hi\n")


def test_run_command_timeout_kills_the_child() -> None:
    started = time.monotonic()
    with pytest.raises(SourceError, match="timed out"):
        fileio.run_command(["sleep", "30"], timeout=0.5)
    assert time.monotonic() - started < 5


def test_run_command_of_a_missing_tool() -> None:
    with pytest.raises(SourceError, match="not installed"):
        fileio.run_command(["memcg-fix-no-such-tool"])


def test_live_reader_reports_nonzero_exit() -> None:
    with pytest.raises(SourceError, match="exited with status 1"):
        LiveReader().run(["false"])
    assert LiveReader().run(["sh", "-c", "exit 2"], ok_codes=(0, 2)) == ""


def test_root_reader_never_runs_commands(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not run on a host root"):
        RootReader(str(tmp_path)).run(["true"])


def test_root_reader_finds_sosreport_outputs(tmp_path: Path) -> None:
    reader = RootReader(str(tmp_path))
    with pytest.raises(SourceError, match="not a sosreport"):
        reader.sos("kernel/dmesg")
    (tmp_path / "sos_commands/kernel").mkdir(parents=True)
    (tmp_path / "sos_commands/kernel/dmesg").write_text("[0.0] hello\n")
    assert reader.sos("kernel/missing", "kernel/dmesg") == "[0.0] hello\n"
    with pytest.raises(SourceError, match="none of"):
        reader.sos("kernel/missing")


def test_readlink_inside_a_root(tmp_path: Path) -> None:
    (tmp_path / "etc/pam.d").mkdir(parents=True)
    os.symlink("/etc/authselect/postlogin", tmp_path / "etc/pam.d/postlogin")
    reader = RootReader(str(tmp_path))
    assert reader.readlink("/etc/pam.d/postlogin") == "/etc/authselect/postlogin"
    assert reader.readlink("/etc/pam.d") is None


def test_an_empty_var_lib_rpm_is_no_rpm_database(tmp_path: Path) -> None:
    """A Debian host with the rpm tool has /var/lib/rpm empty: its rpm is
    not asked (it would start a shell for its macros in every run)."""
    from remediate.hostside.collect import _has_rpm_database
    from remediate.hostside.reader import RootReader

    reader = RootReader(str(tmp_path))
    assert _has_rpm_database(reader) is False  # no /var/lib/rpm at all
    (tmp_path / "var/lib/rpm").mkdir(parents=True)
    assert _has_rpm_database(reader) is False
    (tmp_path / "var/lib/rpm/rpmdb.sqlite").write_bytes(b"")
    assert _has_rpm_database(reader) is True


@pytest.mark.parametrize("python", ["/usr/bin/python3",
                                    "/root/.pyenv/versions/3.6.15/bin/python3.6",
                                    "/root/.pyenv/versions/2.7.18/bin/python2.7"])
def test_the_python_version_is_platforms_without_importing_it(python: str) -> None:
    import subprocess

    if not os.access(python, os.X_OK):
        pytest.skip(f"{python} is not on this machine")
    hostside = Path(__file__).resolve().parents[3] / "remediate"
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import hostside.collect as c; "
            "print('platform' in sys.modules); import platform; "
            "print(c._python_version() == platform.python_version())")
    out = subprocess.run([python, "-S", "-c", code, str(hostside)], capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["False", "True"], out
