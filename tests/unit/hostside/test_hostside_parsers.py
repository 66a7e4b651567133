"""Every host-side parser on the real samples of tests/data/samples/.

Each sample has its origin in a sibling ``.origin`` file (or SOURCES.md);
a test at the end checks that none is missing one.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import remediate.hostside
from remediate.hostside import (
    boot,
    cmdline,
    kernel,
    kernel_log,
    memory_cost,
    packages,
    pam,
    pamedit,
)

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"


def sample(name: str) -> str:
    return (SAMPLES / name).read_text()


# -- uname and os-release ----------------------------------------------------------

@pytest.mark.parametrize(
    ("release", "version", "expected"),
    [
        ("3.10.0-1160.24.1.el7.x86_64", None,
         {"family": "rhel", "upstream_version": "3.10.0", "el_tag": "el7", "arch": "x86_64",
          "package_version": "3.10.0-1160.24.1.el7", "version_scheme": "rpm"}),
        ("3.10.0-1160.2.2.el7.x86_64", "#1 SMP Tue Oct 20 16:53:08 UTC 2020",
         {"family": "rhel", "distro_release": "1160.2.2.el7"}),
        ("5.14.0-162.6.1.el9_1.x86_64", None, {"family": "rhel", "el_tag": "el9"}),
        ("5.14.0-70.13.1.el9_0.x86_64+debug", None, {"variant": "debug", "arch": "x86_64"}),
        ("3.10.0-1160.rt56.1131.el7.x86_64", None, {"variant": "rt", "el_tag": "el7"}),
        ("5.15.0-308.179.6.3.el9uek.x86_64", None,
         {"family": "ol-uek", "el_tag": "el9uek", "version_scheme": "rpm"}),
        ("4.14.35-2047.510.5.el7uek.x86_64", None, {"family": "ol-uek"}),
        ("4.14.336-257.562.amzn2.x86_64", None, {"family": "amzn", "upstream_version": "4.14.336"}),
        ("6.1.79-99.167.amzn2023.x86_64", None, {"family": "amzn"}),
        ("6.5.6-300.fc39.x86_64", None, {"family": "fedora", "el_tag": None}),
        ("6.1.0-31-amd64", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.128-1 (2025-02-07)",
         {"family": "debian", "package_version": "6.1.128-1", "arch": "amd64",
          "version_scheme": "dpkg", "upstream_version": "6.1.0"}),
        ("6.1.0-43-cloud-amd64", None, {"family": "debian", "variant": "cloud"}),
        ("5.4.0-216-generic", "#236-Ubuntu SMP Fri Apr 11 19:53:21 UTC 2025",
         {"family": "ubuntu", "package_version": "5.4.0-216.236", "variant": "generic"}),
        ("5.15.0-1051-aws", None, {"family": "ubuntu", "variant": "aws"}),
        ("5.14.21-150500.55.65-default", None,
         {"family": "suse", "package_version": "5.14.21-150500.55.65", "variant": "default"}),
        ("6.18.44-fc-v657", "#1 SMP PREEMPT_DYNAMIC @0",
         {"family": "upstream", "version_scheme": "upstream", "package_version": None}),
        ("6.9", None, {"family": "upstream", "upstream_version": "6.9.0"}),
    ],
)
def test_parse_uname(release: str, version: str | None, expected: dict) -> None:
    facts = kernel.parse_uname(release, version)
    assert facts["release"] == release
    for key, value in expected.items():
        assert facts[key] == value, key


def test_parse_uname_of_garbage_has_no_version() -> None:
    assert kernel.parse_uname("garbage")["upstream_version"] is None
    assert kernel.parse_uname("")["release"] is None


def test_os_release_samples() -> None:
    debian = kernel.parse_os_release(sample("os_release/debian12.txt"))
    assert (debian["id"], debian["version_id"], debian["major"]) == ("debian", "12", 12)
    ubuntu = kernel.parse_os_release(sample("os_release/ubuntu2004.txt"))
    assert (ubuntu["id"], ubuntu["id_like"], ubuntu["major"]) == ("ubuntu", ["debian"], 20)
    assert ubuntu["pretty_name"] == "Ubuntu 20.04.6 LTS"


def test_release_from_kernel_path() -> None:
    assert kernel.release_from_kernel_path("/boot/vmlinuz-6.1.0-37-amd64") == "6.1.0-37-amd64"
    assert kernel.release_from_kernel_path("/boot/vmlinuz-0-rescue-4d684a") is None
    assert kernel.release_from_kernel_path("/boot/initrd.img") is None


# -- command lines ------------------------------------------------------------------------

def test_cmdline_centos7() -> None:
    facts = cmdline.parse_cmdline(sample("cmdline/centos7.txt"))
    assert facts["boot_image"] == "/vmlinuz-3.10.0-327.el7.x86_64"
    assert facts["nokmem"] is False
    assert "transparent_hugepage=never" in facts["args"]


def test_cmdline_stops_at_the_init_separator() -> None:
    facts = cmdline.parse_cmdline(sample("cmdline/debian12-firecracker-6.18.txt"))
    assert "--firecracker-init" not in facts["args"]
    assert facts["args"][-1] == "rdinit=/process_api"


@pytest.mark.parametrize(
    ("text", "nokmem"),
    [
        ("ro cgroup.memory=nokmem", True),
        ('ro "cgroup.memory=nosocket,nokmem" quiet', True),
        ("ro cgroup.memory=nosocket", False),
        ("ro nokmem", False),
        ("ro -- cgroup.memory=nokmem", False),
    ],
)
def test_nokmem_detection(text: str, nokmem: bool) -> None:
    assert cmdline.parse_cmdline(text)["nokmem"] is nokmem


def test_cmdline_cgroup_switches() -> None:
    facts = cmdline.parse_cmdline(
        "systemd.unified_cgroup_hierarchy=0 cgroup_no_v1=all systemd.unified_cgroup_hierarchy")
    assert facts["unified_cgroup_hierarchy"] == "1"
    assert facts["cgroup_no_v1"] == "all"


# -- grubby, BLS, grub.cfg, /etc/default/grub ---------------------------------------------------

def test_grubby_el7_legacy_sample() -> None:
    entries = boot.parse_grubby_info(sample("grubby/el7-legacy-info-all.txt"))
    assert [e["index"] for e in entries] == list(range(len(entries)))
    assert entries[0]["release"] == "3.10.0-1160.15.2.el7.x86_64"
    assert all(e["source"] == "grubby" and not e["nokmem"] for e in entries)
    assert "crashkernel=auto" in entries[0]["args"]


def test_grubby_el7_wrapped_value_and_non_linux_entry() -> None:
    entries = boot.parse_grubby_info(sample("grubby/rhel7-insights-info-all.txt"))
    assert len(entries) == 4  # index=4 "non linux entry" is dropped
    assert entries[2]["args"][-1] == "LANG=en_US.UTF-8"  # the value wrapped onto a new line
    assert entries[3]["release"] is None  # rescue entry
    assert entries[1]["title"].startswith("Red Hat Enterprise Linux Server (3.10.0-862.14.4")


def test_grubby_el9_bls_sample() -> None:
    entries = boot.parse_grubby_info(sample("grubby/el9-bls-info-all.txt"))
    assert entries[0]["kernel"] == "/boot/vmlinuz-5.14.0-162.6.1.el9_1.x86_64"
    assert entries[0]["id"] == "4d684a4a6166439a867e701ded4f7e10-5.14.0-162.6.1.el9_1.x86_64"
    assert entries[0]["args"][:2] == ["ro", "crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M"]
    assert len(entries) == 3


def test_grubby_with_nokmem_on_one_entry_only() -> None:
    text = sample("grubby/el9-bls-info-all.txt").replace(
        'rhgb quiet retbleed=stuff"', 'rhgb quiet retbleed=stuff cgroup.memory=nokmem"', 1)
    entries = boot.parse_grubby_info(text)
    assert [e["nokmem"] for e in entries] == [True, False, False]


def test_bls_entry_expands_kernelopts_from_grubenv() -> None:
    env = boot.parse_grubenv(sample("grubenv/rhel8-grubenv.txt"))
    assert env["saved_entry"].endswith("4.18.0-305.el8.x86_64")
    entries = boot.bls_entries(
        [("rhel-20190227183418-4.18.0-74.el8.x86_64.conf",
          sample("bls/rhel8-4.18.0-74.el8.x86_64.conf"))], env)
    [entry] = entries
    assert entry["release"] == "4.18.0-74.el8.x86_64"
    assert entry["args"][:2] == ["root=/dev/mapper/root_vg-lv_root", "ro"]
    assert "transparent_hugepages=never" in entry["args"]  # $tuned_params
    assert entry["nokmem"] is False


def test_bls_entries_sort_newest_first() -> None:
    texts = [(f"m-{v}.conf", f"version {v}\nlinux /vmlinuz-{v}\noptions ro\n")
             for v in ("4.18.0-80.el8", "4.18.0-305.el8", "4.18.0-147.el8")]
    releases = [e["release"] for e in boot.bls_entries(texts, {})]
    assert releases == ["4.18.0-305.el8", "4.18.0-147.el8", "4.18.0-80.el8"]


def test_grub_cfg_debian12() -> None:
    [entry] = boot.parse_grub_cfg(sample("grub_cfg/debian12-grub-cfg-excerpt.txt"))
    assert entry["release"] == "6.1.0-37-amd64"
    assert entry["args"] == ["root=UUID=ffa49137-324a-452f-9bff-f1d0d5520b3e", "ro", "quiet"]
    assert entry["title"] == "Debian GNU/Linux"


def test_default_grub_debian_then_cloud_dropin() -> None:
    env = boot.parse_default_grub(sample("default_grub/debian12-default-grub.txt"))
    assert env["GRUB_CMDLINE_LINUX_DEFAULT"] == "quiet"
    assert env["GRUB_CMDLINE_LINUX"] == ""
    assert env["GRUB_DISTRIBUTOR"].startswith("`lsb_release")  # never executed
    env = boot.parse_default_grub(sample("default_grub/50-cloudimg-settings.cfg"), env)
    assert env["GRUB_CMDLINE_LINUX_DEFAULT"] == "console=tty1 console=ttyS0"
    assert env["GRUB_TIMEOUT"] == "0"


def test_default_grub_el_and_an_appending_dropin() -> None:
    env = boot.parse_default_grub(sample("default_grub/el-default-grub.txt"))
    assert env["GRUB_DEFAULT"] == "saved"
    env = boot.parse_default_grub(
        'GRUB_CMDLINE_LINUX="${GRUB_CMDLINE_LINUX} cgroup.memory=nokmem"\n', env)
    assert env["GRUB_CMDLINE_LINUX"].endswith("net.ifnames=0 cgroup.memory=nokmem")


def test_default_grub_quoting() -> None:
    env = boot.parse_default_grub(
        "A='single $NOT'\nB=\"dq \\\"x\\\"\"\nexport C=plain\nD=\"kept\"  # comment\n")
    assert env == {"A": "single $NOT", "B": 'dq "x"', "C": "plain", "D": "kept"}


# -- packages and runtimes ---------------------------------------------------------------------

def test_rpm_q_kernel_sample() -> None:
    assert packages.parse_rpm_kernels(sample("rpm/centos7-rpm-q-kernel.txt")) == [
        "3.10.0-1127.el7.x86_64", "3.10.0-1160.2.2.el7.x86_64"]


def test_dpkg_list_samples() -> None:
    pkgs = packages.parse_dpkg_list(sample("dpkg/debian12-dpkg-l-linux-image.txt"))
    assert packages.debian_kernel_releases(pkgs) == ["6.1.0-31-amd64"]
    upgraded = packages.parse_dpkg_list(sample("dpkg/debian11to12-dpkg-l-rc.txt"))
    assert packages.debian_kernel_releases(upgraded) == ["6.1.0-43-cloud-amd64"]


def test_dpkg_status_sample() -> None:
    pkgs = packages.parse_dpkg_status(sample("dpkg/debian12-status-excerpt.txt"))
    assert pkgs["runc"] == "1.1.5+ds1-1+deb12u1"
    assert packages.upstream_of_package_version(pkgs["runc"]) == "1.1.5"
    assert "libpam-modules" in pkgs


@pytest.mark.parametrize(
    ("name", "version"),
    [("runc/ubuntu2004-1.0.0-rc10.txt", "1.0.0-rc10"),
     ("runc/ubuntu2004-1.0.0-rc10-commit.txt", "1.0.0-rc10"),
     ("runc/nerdctl-1.1.3.txt", "1.1.3"),
     ("runc/debian12-1.1.5.txt", "1.1.5+ds1")],
)
def test_runc_version_samples(name: str, version: str) -> None:
    assert packages.parse_runc_version(sample(name))["version"] == version


def test_runc_commit_and_spec() -> None:
    facts = packages.parse_runc_version(sample("runc/ubuntu2004-1.0.0-rc10-commit.txt"))
    assert facts["commit"] == "dc9208a3303feef5b3839f4323d9beb36df0a9dd"
    assert facts["spec"] == "1.0.1-dev"


def test_kubelet_version_sample() -> None:
    assert packages.parse_kubelet_version(sample("kubelet/kubeadm-ha-1.9.3.txt")) == "1.9.3"


# -- PAM -----------------------------------------------------------------------------------

def test_pam_rhel7_authconfig_postlogin() -> None:
    text = sample("pam/rhel7-postlogin-ac.txt")
    assert pam.file_owner(text) == "authconfig"
    lines = pam.lastlog_lines(text)
    assert [(x["writes_wtmp"], x["writes_lastlog"]) for x in lines] == [(False, True),
                                                                          (False, False)]


def test_pam_rhel8_authselect_postlogin() -> None:
    text = sample("pam/rhel8-postlogin-authselect.txt")
    assert pam.file_owner(text) == "authselect"
    assert pam.file_owner("#%PAM-1.0\n", "/etc/authselect/postlogin") == "authselect"
    assert not any(x["writes_wtmp"] for x in pam.lastlog_lines(text))


def test_pam_authselect_postlogin_that_writes_wtmp() -> None:
    lines = pam.lastlog_lines(sample("pam/oracle-postlogin-lastlog-required.txt"))
    assert [(x["control"], x["writes_wtmp"]) for x in lines] == [("required", True)]


def test_pam_debian_login_and_sshd() -> None:
    login = pam.lastlog_lines(sample("pam/debian12-login.txt"))
    assert [(x["module"], x["writes_wtmp"]) for x in login] == [("pam_lastlog.so", True)]
    assert pam.lastlog_lines(sample("pam/debian12-sshd.txt")) == []
    rules = pam.parse_pam_lines(sample("pam/debian12-sshd.txt"))
    assert {"type": "@include", "control": None, "module": "common-session", "args": []} in rules
    # the inline "# [1]" comment is cut off
    mail = [r for r in rules if r["module"] == "pam_mail.so"]
    assert mail[0]["args"] == ["standard", "noenv"]


def test_pam_lastlog2_and_commented_lines() -> None:
    text = ("#session required pam_lastlog.so\n"
            "session optional pam_lastlog2.so silent\n"
            "-session optional pam_lastlog.so \\\n    nowtmp\n")
    lines = pam.lastlog_lines(text)
    assert [(x["module"], x["writes_wtmp"]) for x in lines] == [
        ("pam_lastlog2.so", False), ("pam_lastlog.so", False)]


# authselect's postlogin template (authselect 1.2.6 profiles/sssd/postlogin)
POSTLOGIN_TEMPLATE = """\
session     optional                   pam_umask.so silent
session     [success=1 default=ignore] pam_succeed_if.so service !~ gdm* service !~ su* quiet
session     [default=1]                pam_lastlog.so nowtmp {if "with-silent-lastlog":silent|showfailed}
session     optional                   pam_lastlog.so silent noupdate showfailed
"""  # noqa: E501 (the real template)


def test_pamedit_comment_keeps_the_rule_count_and_every_control() -> None:
    before = pam.parse_pam_lines(POSTLOGIN_TEMPLATE)
    text = pamedit.rewrite(POSTLOGIN_TEMPLATE, "comment")
    after = pam.parse_pam_lines(text)
    assert [(r["type"], r["control"]) for r in after] == [
        (r["type"], r["control"]) for r in before]
    assert [r["module"] for r in after] == [
        "pam_umask.so", "pam_succeed_if.so", "pam_permit.so", "pam_lastlog.so"]
    assert pamedit.COMMENT_PREFIX + POSTLOGIN_TEMPLATE.splitlines()[2] in text.splitlines()
    assert pamedit.rewrite(text, "comment") == text  # a second run changes nothing


def test_pamedit_comment_keeps_line_operators_and_refuses_a_continued_rule() -> None:
    line = "-session optional /lib64/security/pam_lastlog.so showfailed {include if \"x\"}\n"
    assert pamedit.rewrite(line, "comment").splitlines()[1] == (
        '-session optional pam_permit.so {include if "x"}')
    # a "#" line ending in a backslash would not hide the continued rule
    with pytest.raises(pamedit.RewriteError):
        pamedit.rewrite("session optional pam_lastlog.so \\\n    showfailed\n", "comment")


def test_pamedit_puts_the_word_before_a_continuation() -> None:
    text = "session optional pam_lastlog.so \\\n    showfailed\n"
    assert pamedit.rewrite(text, "noupdate") == (
        "session optional pam_lastlog.so noupdate \\\n    showfailed\n")


# -- kernel log ------------------------------------------------------------------------------

def test_kernel_log_slub_sample() -> None:
    sigs = kernel_log.scan_kernel_log(sample("dmesg/centos7-slub-messages.txt"))
    assert sigs["slub_alloc_failure"]["count"] == 5
    assert sigs["slub_alloc_failure"]["last"].endswith("(gfp=0xd0)")
    assert sigs["memcg_oom"]["count"] == 0


def test_kernel_log_kmem_cache_close_sample() -> None:
    sigs = kernel_log.scan_kernel_log(sample("dmesg/el7-kmem-cache-close.txt"))
    assert sigs["kmem_cache_close"]["count"] == 1
    assert sigs["kmem_cache_close"]["caches"] == ["slab_test"]


def test_kernel_log_kmem_cache_shutdown_sample() -> None:
    # 4.6 and later (RHEL 8/9, Ubuntu, Debian) name __kmem_cache_shutdown()
    sigs = kernel_log.scan_kernel_log(sample("dmesg/kmem-cache-shutdown-dax.txt"))
    assert sigs["kmem_cache_close"]["count"] == 1
    assert sigs["kmem_cache_close"]["caches"] == ["dax_cache"]
    assert "__kmem_cache_shutdown()" in sigs["kmem_cache_close"]["last"]


def test_kernel_log_memcg_oom_sample() -> None:
    sigs = kernel_log.scan_kernel_log(sample("dmesg/debian12-memcg-oom.txt"))
    assert sigs["memcg_oom"]["count"] == 1
    assert sigs["memcg_oom"]["memcgs"] == ["/user.slice/user-1000.slice/dans-slice"]
    assert "Killed process 4045" in sigs["memcg_oom"]["last"]


def test_kernel_log_old_oom_format() -> None:
    text = ("Task in /docker/abc killed as a result of limit of /docker/abc\n"
            "Memory cgroup out of memory: Kill process 1234 (java) score 1000 or sacrifice child\n")
    sigs = kernel_log.scan_kernel_log(text)
    assert sigs["memcg_oom"]["count"] == 1 and sigs["memcg_oom"]["memcgs"] == ["/docker/abc"]


def test_kernel_log_mkdir_failures_sample() -> None:
    sigs = kernel_log.scan_kernel_log(sample("dmesg/cgroup-mkdir-failures.txt"))
    assert sigs["cgroup_mkdir_failure"]["count"] == 2
    assert sigs["cgroup_mkdir_failure"]["last"].endswith("cannot allocate memory")


def test_kernel_log_quiet_host() -> None:
    sigs = kernel_log.scan_kernel_log("[    1.0] Linux version 6.18\n[    2.0] random: crng init\n")
    assert all(sigs[name]["count"] == 0 for name in kernel_log.SIGNATURES)


# -- memory cost ------------------------------------------------------------------------------

def test_meminfo_sample() -> None:
    values = memory_cost.parse_meminfo(sample("meminfo/debian12-6.18.txt"))
    assert values["MemTotal"] == 24684092
    assert isinstance(values["Percpu"], int)


def test_slabinfo_sample_of_this_host() -> None:
    caches = memory_cost.parse_slabinfo(sample("slabinfo/debian12-6.18.txt"))
    assert memory_cost.memcg_cache(caches) == ("kmalloc-4k", 292)  # the captured row
    assert memory_cost.duplicate_caches(caches) == []


def test_slabinfo_duplicates_and_zombie_cache() -> None:
    caches = memory_cost.parse_slabinfo(sample("slabinfo/el7-duplicate-slab-test.txt"))
    assert memory_cost.duplicate_caches(caches) == ["slab_test"]
    assert memory_cost.memcg_cache(caches) == ("kmalloc-4k", 10199)


# -- doctests and origins --------------------------------------------------------------------

def _hostside_modules() -> list[str]:
    return [f"remediate.hostside.{m.name}" for m in pkgutil.iter_modules(
        remediate.hostside.__path__)]


@pytest.mark.parametrize("name", _hostside_modules())
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    failed, _attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert failed == 0


@pytest.mark.parametrize(
    "name", ["cgroupfs", "kernel", "cmdline", "boot", "packages", "pam", "kernel_log",
             "memory_cost"])
def test_every_parser_has_a_sample_and_examples(name: str) -> None:
    module = importlib.import_module(f"remediate.hostside.{name}")
    parsers = [getattr(module, n) for n in dir(module)
               if n.startswith("parse_") and callable(getattr(module, n))]
    for parser in parsers:
        doc = parser.__doc__ or ""
        assert ">>>" in doc, f"{name}.{parser.__name__} has no example"
        assert "Sample" in doc, f"{name}.{parser.__name__} has no sample of its input"


def test_every_sample_names_its_origin() -> None:
    missing = []
    for path in SAMPLES.rglob("*"):
        if not path.is_file() or path.suffix == ".origin" or path.name == "SOURCES.md":
            continue
        origin = path.with_name(path.name + ".origin")
        listed = (path.parent / "SOURCES.md").is_file() and path.name in (
            path.parent / "SOURCES.md").read_text()
        if not (origin.is_file() and origin.read_text().strip()) and not listed:
            missing.append(str(path.relative_to(SAMPLES)))
    assert missing == []


def test_bls_kernel_paths_are_the_ones_grubby_prints() -> None:
    # Issue 12, defect 5. With /boot on its own file system (anaconda's default
    # layout) entries say "linux /vmlinuz-...", and grubby-bls prints
    # kernel="/boot/vmlinuz-..." (its get_prefix); the same host's grubby
    # output is the sample. On one file system the entry already says /boot/.
    grubby = boot.parse_grubby_info(sample("grubby/el9-bls-info-all.txt"))
    texts = [(f"{e['id']}.conf", f"title {e['title']}\nlinux {e['kernel'][len('/boot'):]}\n"
              f"options root=/dev/mapper/rhel-root {' '.join(e['args'])}\n") for e in grubby]
    offline = boot.bls_entries(texts, {})
    assert [e["kernel"] for e in offline] == [e["kernel"] for e in grubby]
    one_fs = [(name, text.replace("linux /vmlinuz-", "linux /boot/vmlinuz-"))
              for name, text in texts]
    assert [e["kernel"] for e in boot.bls_entries(one_fs, {})] == [e["kernel"] for e in grubby]
