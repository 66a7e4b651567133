"""hostside/grubbyedit.py: what each release's grubby writes, on the EL8 and
EL7 layout files of the test images (the integration tests check the same
predictions against the real grubby in tests/integration/test_kernel_args_el.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from remediate.hostside import grubbyedit as ge

LAYOUTS = Path(__file__).resolve().parents[2] / "targets" / "layouts"
NOKMEM = "cgroup.memory=nokmem"


def test_an_owners_cgroup_memory_options_are_kept():
    assert ge.with_arg(["ro", "cgroup.memory=nosocket"], NOKMEM) == "cgroup.memory=nosocket,nokmem"
    assert ge.with_arg(["cgroup.memory=nosocket,nokmem"], NOKMEM) is None
    assert ge.without_arg("cgroup.memory=nosocket,nokmem", NOKMEM) == "cgroup.memory=nosocket"
    assert ge.text_without_arg("a  cgroup.memory=nokmem b", NOKMEM) == "a b"
    with pytest.raises(ge.PlanError, match="given 2 times"):
        ge.with_arg(["cgroup.memory=nosocket", "cgroup.memory=nobpf"], NOKMEM)
    with pytest.raises(ge.PlanError, match="will not replace"):
        ge.with_arg(["quiet=1"], "quiet=2")
    with pytest.raises(ge.PlanError, match=r"different cgroup\.memory values"):
        ge.common_word([["cgroup.memory=nosocket"], ["ro"]], NOKMEM)


def test_el7_grubby_replaces_in_place_and_touches_only_kernel_lines():
    cfg = (LAYOUTS / "el7/root/boot/grub2/grub.cfg").read_text()
    owned = cfg.replace("rhgb quiet", "rhgb cgroup.memory=nosocket quiet")
    new = ge.legacy_update(owned, "cgroup.memory=nosocket,nokmem")
    changed = [(a, b) for a, b in zip(owned.split("\n"), new.split("\n"), strict=True) if a != b]
    assert len(changed) == 3
    for _old, line in changed:
        assert line.lstrip().startswith("linux16 ")
        assert "rhgb cgroup.memory=nosocket,nokmem quiet" in line
    args = ge.legacy_entry_args(new)
    assert len(args) == 3 and not any(a.startswith("root=") for words in args for a in words)


def test_el8_grubby_bls_writes_kernelopts_and_creates_the_kernel_cmdline():
    root = LAYOUTS / "el8/root"
    entries = [ge.BlsEntry(str(p), p.read_text())
               for p in sorted((root / "boot/loader/entries").glob("*.conf"), reverse=True)]
    grubenv = (root / "boot/grub2/grubenv").read_text()
    plan = ge.BlsPlan(entries, grubenv, None, restores_kernelopts=True)
    files, args = plan.update_all(NOKMEM)
    # grub2-editenv: the value re-joined without grub2-mkconfig's trailing
    # space, the block still 1024 bytes; the entries keep "$kernelopts"
    assert set(files) == {"grubenv", "/etc/kernel/cmdline"}
    assert len(files["grubenv"]) == 1024
    assert "rhgb quiet cgroup.memory=nokmem\n" in files["grubenv"]
    # created from the last entry, then updated: $tuned_params stays a word
    assert files["/etc/kernel/cmdline"].endswith("rhgb quiet $tuned_params cgroup.memory=nokmem\n")
    assert all(a[-2:] == [NOKMEM, "$tuned_params"] for a in args)


def test_el9_grubby_bls_rewrites_literal_options():
    root = LAYOUTS / "el9/root"
    entries = [ge.BlsEntry(str(p), p.read_text())
               for p in sorted((root / "boot/loader/entries").glob("*.conf"), reverse=True)]
    cmdline = (root / "etc/kernel/cmdline").read_text()
    plan = ge.BlsPlan(entries, (root / "boot/grub2/grubenv").read_text(), cmdline,
                      restores_kernelopts=False)
    files, args = plan.update_all("cgroup.memory=nokmem")
    assert "grubenv" not in files  # no kernelopts on EL9
    for entry in entries:
        assert f"options {ge.bls_value(files[entry.path], 'options')}" in files[entry.path]
        assert ge.bls_value(files[entry.path], "options").endswith("rhgb quiet " + NOKMEM)
    assert files["/etc/kernel/cmdline"] == cmdline.strip() + " " + NOKMEM + "\n"
    assert all(a[-1] == NOKMEM and not a[0].startswith("root=") for a in args)


def test_grubenv_set_keeps_the_block_size_and_refuses_to_outgrow_it():
    env = ge.GRUBENV_HEADER + "saved_entry=x\nkernelopts=ro \n"
    env += "#" * (1024 - len(env))
    out = ge.grubenv_set(env, "kernelopts", "ro quiet")
    assert len(out) == 1024
    assert out.startswith(ge.GRUBENV_HEADER + "saved_entry=x\nkernelopts=ro quiet\n#")
    with pytest.raises(ge.PlanError):
        ge.grubenv_set(env, "kernelopts", "x" * 1100)
