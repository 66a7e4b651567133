"""The grubby stand-in of the EL-layout images behaves as the real tool is
documented to, and prints what real hosts print."""

from __future__ import annotations

from pathlib import Path

import pytest

from remediate.hostside.boot import parse_grubby_info

pytestmark = pytest.mark.containers

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples" / "grubby"


def _shape(text: str) -> list[tuple[str, bool]]:
    """The line structure of grubby --info output: (key, value quoted?) per line."""
    shape = []
    for line in text.strip().splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            shape.append((line.strip(), False))
        else:
            shape.append((key, value.startswith('"')))
    return shape


def _info(target, which: str = "ALL") -> str:
    proc = target.run(["grubby", f"--info={which}"], check=True)
    return proc.stdout.decode()


def _all_args(target) -> list[list[str]]:
    return [entry["args"] for entry in parse_grubby_info(_info(target))]


def test_info_all_has_the_shape_of_real_samples(el7_target, el8_target, el9_target):
    for target, sample in ((el7_target, "el7-legacy-info-all.txt"),
                           (el9_target, "el9-bls-info-all.txt")):
        real = (SAMPLES / sample).read_text()
        ours = _info(target)
        assert _shape(ours) == _shape(real), sample
        real_entries, our_entries = parse_grubby_info(real), parse_grubby_info(ours)
        assert len(our_entries) == len(real_entries) == 3
        assert [sorted(e) for e in our_entries] == [sorted(e) for e in real_entries]
        assert [e["id"] is None for e in our_entries] == [e["id"] is None for e in real_entries]
        assert our_entries[0]["release"] and our_entries[-1]["kernel"].startswith(
            "/boot/vmlinuz-0-rescue-")
    # EL8 prints the BLS shape too, with $kernelopts expanded from grubenv
    el8 = _info(el8_target)
    assert _shape(el8) == _shape((SAMPLES / "el9-bls-info-all.txt").read_text())
    assert "$kernelopts" not in el8 and 'root="/dev/mapper/rl-root"' in el8


def test_el7_grubby_edits_grub_cfg_only(el7_target):
    default_grub = el7_target.read_file("/etc/default/grub")
    grub_cfg = el7_target.read_file("/boot/grub2/grub.cfg")
    el7_target.run(["grubby", "--update-kernel=ALL", "--args=cgroup.memory=nokmem"], check=True)
    assert all("cgroup.memory=nokmem" in args for args in _all_args(el7_target))
    assert el7_target.read_file("/boot/grub2/grub.cfg").count(b"cgroup.memory=nokmem") == 3
    assert el7_target.read_file("/etc/default/grub") == default_grub  # as documented

    # removal is by key, whatever the value; the file comes back byte for byte
    el7_target.run(["grubby", "--update-kernel=ALL", "--remove-args=cgroup.memory"],
                   check=True)
    assert el7_target.read_file("/boot/grub2/grub.cfg") == grub_cfg

    assert el7_target.sh("grubby --default-index").strip() == "0"
    default = el7_target.sh("grubby --default-kernel").strip()
    assert default == "/boot/vmlinuz-3.10.0-1160.119.1.el7.x86_64"
    el7_target.run(["grubby", f"--update-kernel={default}", "--args=quiet=1 audit=0"],
                   check=True)
    args = _all_args(el7_target)
    assert "audit=0" in args[0] and "quiet=1" in args[0] and "quiet" not in args[0]
    assert "audit=0" not in args[1]
    bad = el7_target.run(["grubby", "--info=/boot/vmlinuz-9.9.9"])
    assert bad.returncode == 1 and b"incorrect" in bad.stderr


def test_el8_grubby_all_rewrites_kernelopts(el8_target):
    entries_before = el8_target.tree_checksums(("/boot/loader/entries",))
    el8_target.run(["grubby", "--update-kernel=ALL", "--args=cgroup.memory=nokmem"], check=True)
    grubenv = el8_target.read_file("/boot/grub2/grubenv")
    assert len(grubenv) == 1024
    assert b"kernelopts=root=/dev/mapper/rl-root ro" in grubenv
    assert b"cgroup.memory=nokmem" in grubenv
    assert el8_target.tree_checksums(("/boot/loader/entries",)) == entries_before
    assert all("cgroup.memory=nokmem" in args for args in _all_args(el8_target))

    # one kernel: its options are expanded and written literally
    el8_target.run(["grubby", "--update-kernel=DEFAULT", "--args=memcg_fix_test=1"], check=True)
    default_id = el8_target.sh("grubby --info=DEFAULT | sed -n 's/^id=//p'").strip().strip('"')
    text = el8_target.read_file(f"/boot/loader/entries/{default_id}.conf").decode()
    options = next(ln for ln in text.splitlines() if ln.startswith("options "))
    assert "$kernelopts" not in options and "memcg_fix_test=1" in options
    assert "cgroup.memory=nokmem" in options and "root=/dev/mapper/rl-root" in options
    args = _all_args(el8_target)
    assert "memcg_fix_test=1" in args[0] and "memcg_fix_test=1" not in args[1]


def test_el9_grubby_all_rewrites_entries_and_kernel_cmdline(el9_target):
    el9_target.run(["grubby", "--update-kernel=ALL", "--args=cgroup.memory=nokmem"], check=True)
    assert all("cgroup.memory=nokmem" in args for args in _all_args(el9_target))
    assert el9_target.sh("grep -c 'cgroup.memory=nokmem' /boot/loader/entries/*.conf "
                         "| grep -c ':1'").strip() == "3"
    assert b"cgroup.memory=nokmem" in el9_target.read_file("/etc/kernel/cmdline")
    el9_target.run(["grubby", "--update-kernel=ALL", "--remove-args=cgroup.memory"],
                   check=True)
    assert not any("cgroup.memory=nokmem" in args for args in _all_args(el9_target))
    assert b"cgroup.memory" not in el9_target.read_file("/etc/kernel/cmdline")


def test_grubby_fault_knob_fails_half_way(el9_target):
    cmdline = el9_target.read_file("/etc/kernel/cmdline")
    el9_target.sh("mkdir -p /etc/grubby-standin && echo 1 > /etc/grubby-standin/fail-after")
    proc = el9_target.run(["grubby", "--update-kernel=ALL", "--args=cgroup.memory=nokmem"])
    assert proc.returncode == 1 and b"simulated failure" in proc.stderr
    with_arg = ["cgroup.memory=nokmem" in args for args in _all_args(el9_target)]
    assert with_arg.count(True) == 1 and with_arg.count(False) == 2
    assert el9_target.read_file("/etc/kernel/cmdline") == cmdline
    el9_target.sh("rm -r /etc/grubby-standin")
    el9_target.run(["grubby", "--update-kernel=ALL", "--args=cgroup.memory=nokmem"], check=True)
    assert all("cgroup.memory=nokmem" in args for args in _all_args(el9_target))
