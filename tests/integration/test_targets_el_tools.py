"""The EL images run the real grubby of their release, rpm and dnf, and a
repository of test packages whose scriptlets add boot entries the release's
way (tests/targets/el_grubby.py, tests/targets/el_packages.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from remediate.hostside.boot import parse_grubby_info
from tests.targets.el_packages import EL_PACKAGES

pytestmark = pytest.mark.containers

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples" / "grubby"


def _shape(text: str) -> list[tuple[str, bool]]:
    """The line structure of grubby --info output: (key, value quoted?) per line."""
    shape = []
    for line in text.strip().splitlines():
        key, sep, value = line.partition("=")
        shape.append((key, value.startswith('"')) if sep else (line.strip(), False))
    return shape


def _info(target, which: str = "ALL") -> str:
    return target.run(["grubby", f"--info={which}"], check=True).stdout.decode()


def _entries(target) -> list[dict]:
    return parse_grubby_info(_info(target))


def test_real_grubby_answers_as_each_release_does(el7_target, el8_target, el9_target):
    for target, sample in ((el7_target, "el7-legacy-info-all.txt"),
                           (el9_target, "el9-bls-info-all.txt")):
        real = (SAMPLES / sample).read_text()
        assert _shape(_info(target)) == _shape(real), sample
    assert _shape(_info(el8_target)) == _shape((SAMPLES / "el9-bls-info-all.txt").read_text())
    el8_info = _info(el8_target)
    assert "$kernelopts" not in el8_info and 'root="/dev/mapper/rl-root"' in el8_info
    # EL7's C grubby has a version; grubby-bls knows neither option
    assert el7_target.sh("grubby --version").strip() == "grubby version 8.28"
    for el in (el8_target, el9_target):
        for option in ("--version", "--bootloader-probe"):
            assert el.run(["grubby", option]).returncode == 1, option
    # rpm-sort orders the BLS entries: newest kernel first, rescue last
    for el in (el8_target, el9_target):
        releases = [e["release"] for e in _entries(el)]
        installed = [k.kernel_release for k in EL_PACKAGES[el.kind].installed_kernels]
        kernels = [e["kernel"] for e in _entries(el)]
        assert releases[:2] == installed[::-1] and "0-rescue-" in kernels[2]


def test_every_el_image_has_an_rpm_database_and_the_test_repository(
        el7_target, el8_target, el9_target):
    for el in (el7_target, el8_target, el9_target):
        pkgs = EL_PACKAGES[el.kind]
        installed = el.sh("rpm -q kernel --qf '%{VERSION}-%{RELEASE}\\n'").split()
        assert sorted(installed) == sorted(f"{k.version}-{k.release}"
                                           for k in pkgs.installed_kernels)
        assert el.exists("/var/lib/rpm") and el.sh("rpm --eval %_dbpath").strip() == "/var/lib/rpm"
        summary = el.sh("rpm -q --qf '%{SUMMARY}' kernel | head -c 200")
        assert summary.startswith("TEST PACKAGE"), summary
        available = el.sh("dnf -q --showduplicates list available kernel runc 2>/dev/null")
        for build in (*pkgs.newer_kernels, pkgs.runc_old, pkgs.runc_new):
            assert build.evr in available, (build, available)


@pytest.mark.parametrize("kind", ["el7", "el8", "el9"])
def test_a_kernel_package_adds_its_entry_the_release_way(kind, target_factory):
    (t,) = target_factory(kind, 1)
    pkgs = EL_PACKAGES[kind]
    new = pkgs.newer_kernels[-1]
    default_before = _entries(t)[int(t.sh("grubby --default-index"))]
    t.run(["grubby", f"--update-kernel={default_before['kernel']}", "--args=memcg_fix_marker=1"],
          check=True)
    if kind == "el9":
        t.sh("sed -i 's/$/ memcg_fix_cmdline=1/' /etc/kernel/cmdline")

    t.sh(f"dnf -y -q install kernel-{new.version}-{new.release}")

    entries = _entries(t)
    default = entries[int(t.sh("grubby --default-index"))]
    assert default["release"] == new.kernel_release
    assert t.sh("grubby --default-kernel").strip() == f"/boot/vmlinuz-{new.kernel_release}"
    if kind == "el7":
        # new-kernel-pkg: grubby --add-kernel --copy-default, the default's args
        assert "memcg_fix_marker=1" in default["args"]
    elif kind == "el8":
        # the kernel's bls.conf: $kernelopts (grubenv), plus tuned's variables
        entry = t.sh(f"cat /boot/loader/entries/{default['id']}.conf")
        assert "options $kernelopts $tuned_params" in entry
        assert "memcg_fix_marker=1" not in default["args"]
    else:
        # kernel-install's rule: the options of /etc/kernel/cmdline
        assert "memcg_fix_cmdline=1" in default["args"]
        assert "memcg_fix_marker=1" not in default["args"]
    assert t.exists(f"/boot/vmlinuz-{new.kernel_release}")

    # removing the package removes its entry (and the default moves on)
    t.sh(f"dnf -y -q remove kernel-{new.version}-{new.release}")
    assert new.kernel_release not in [e["release"] for e in _entries(t)]
