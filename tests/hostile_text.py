"""Adversarial shapes of host text, and the host-side scanners they are fed to.

Shared by the linear-scan test (tests/unit/hostside/test_linear_scans.py) and
the scanner benchmark (bench/bench_scan.py). Each shape makes text of about
``size`` characters that pushed a scanner past linear time, or would push a
naive one: one long line of a repeated token, a prefix repeated without its
ending, many lines with unique keys (list membership), deep or unbalanced
nesting. ``needle`` is what ``grep -c`` counts in the benchmark's baseline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from remediate.hostside import (
    boot,
    cgroupfs,
    cmdline,
    kernel,
    kernel_log,
    memory_cost,
    packages,
    pam,
    pamflow,
)


def repeat(unit: str, size: int) -> str:
    """``unit`` repeated to ``size`` characters."""
    return (unit * (size // len(unit) + 1))[:size]


def unique_lines(template: str, size: int) -> str:
    """Lines of ``template`` with ``{}`` numbered 0, 1, 2...: every key new."""
    lines, total, index = [], 0, 0
    while total < size:
        line = template.format(index)
        lines.append(line)
        total += len(line) + 1
        index += 1
    return "\n".join(lines) + "\n"


def same_lines(line: str, size: int) -> str:
    """``line`` again and again, ``size`` characters in all."""
    return "\n".join([line] * max(1, size // (len(line) + 1))) + "\n"


@dataclass(frozen=True)
class Shape:
    name: str
    make: Callable[[int], str]
    needle: str  # a fixed string grep -c counts in the same text


@dataclass(frozen=True)
class Scanner:
    name: str
    scan: Callable[[str], object]
    shapes: tuple[Shape, ...]


def _default_grub(text: str) -> object:
    try:
        return boot.parse_default_grub(text)
    except boot.ExpansionError as exc:  # past the budget: the collector's unknown
        return str(exc)


def _bls(text: str) -> object:
    try:
        return boot.bls_entries([("a.conf", text)], {"kernelopts": "ro quiet"})
    except boot.ExpansionError as exc:
        return str(exc)


KERNEL_LOG = (
    # the reported 400 KB line: one errno, then the verb again and again, no cgroup after it
    Shape("one long mkdir line", lambda n: "cgroup ENOSPC " + repeat("create ", n), "cgroup"),
    # 8 KB syslog lines of the same shape (the reported 16 MiB, 69 s)
    Shape("8 KiB mkdir lines", lambda n: same_lines(
        "kernel: cgroup ENOSPC " + repeat("create ", 8170), n), "cgroup"),
    Shape("cgroup then mkdir words", lambda n: "no space left on device cgroup"
          + repeat(" xmkdir", n), "cgroup"),
    Shape("unique slab caches", lambda n: unique_lines(
        "BUG c{0}: Objects remaining in cache{0} on kmem_cache_close()", n), "kmem_cache_close"),
    Shape("unique oom_memcg paths", lambda n: unique_lines(
        "oom-kill:constraint=CONSTRAINT_MEMCG,oom_memcg=/kubepods/pod{0},task=x", n),
        "oom_memcg="),
    Shape("repeated prefix, no ending", lambda n: repeat("Objects remaining in ", n)
          + " kmem_cache_close", "kmem_cache_close"),
    Shape("unique slab caches, 4.6+", lambda n: unique_lines(
        "BUG c{0}: Objects remaining in cache{0} on __kmem_cache_shutdown()", n),
        "kmem_cache_shutdown"),
    Shape("repeated oom_memcg=", lambda n: repeat("oom_memcg=", n), "oom_memcg="),
    Shape("every needle on every line", lambda n: unique_lines(
        "SLUB cgroup oom_memcg kmem_cache_close as a result of {0}", n), "cgroup"),
    Shape("quiet log", lambda n: unique_lines("[ {0}.000000] usb 1-1: new device", n), "cgroup"),
)

PAM = (
    Shape("one long continued rule", lambda n: repeat("session optional pam_lastlog.so \\\n", n),
          "pam_lastlog"),
    Shape("unclosed bracket", lambda n: "session [" + repeat("success=ok ", n), "session"),
    Shape("unique rules", lambda n: unique_lines("session optional pam_lastlog.so arg{0}", n),
          "pam_lastlog"),
)

DEFAULT_GRUB = (
    Shape("long value", lambda n: 'GRUB_CMDLINE_LINUX="' + repeat("quiet ", n) + '"', "GRUB"),
    Shape("dollar signs", lambda n: 'A="' + repeat("$", n) + '"', "A="),
    Shape("unique variables", lambda n: unique_lines("V{0}=x$V{0}", n), "V"),
    Shape("self-doubling variable", lambda n: 'A="x"\n' + repeat('A="$A$A"\n', n), "A="),
    Shape("quotes", lambda n: "A=" + repeat("'\"", n), "A="),
)

BLS = (
    Shape("options lines", lambda n: "linux /vmlinuz-5.14.0\n" + repeat("options a\n", n),
          "options"),
    Shape("kernelopts again and again", lambda n: "linux /vmlinuz-5.14.0\noptions "
          + repeat("$kernelopts ", n), "kernelopts"),
)

GRUB_CFG = (
    Shape("open braces", lambda n: "menuentry 'x' {\n" + repeat("{\n", n), "{"),
    Shape("unique entries", lambda n: unique_lines(
        "menuentry 'x{0}' {{\nlinux /vmlinuz-5.{0} ro\n}}", n), "menuentry"),
)

GRUBBY = (
    Shape("unterminated quote", lambda n: 'index=0\nkernel=/boot/vmlinuz-1\nargs="'
          + repeat("a\n", n), "index"),
    Shape("unique entries", lambda n: unique_lines(
        "index={0}\nkernel=/boot/vmlinuz-3.10.0-{0}.el7.x86_64", n), "index"),
)

OS_RELEASE = (
    Shape("unique keys", lambda n: unique_lines('K{0}="v"', n), "K"),
    Shape("escapes", lambda n: 'ID="' + repeat('\\\\\\"', n) + '"', "ID"),
)

OSRELEASE_UNAME = (
    Shape("repeated el tag", lambda n: "3.10.0-" + repeat(".el7_1", n), "el7"),
    Shape("underscores", lambda n: "3.10.0-1.el7" + repeat("_1", n) + "x", "el7"),
)

MOUNTINFO = (
    Shape("unique mounts", lambda n: unique_lines(
        "{0} 1 0:1 / /m{0} rw - cgroup cgroup rw,memory", n), "cgroup"),
    Shape("octal escapes", lambda n: "1 2 3 4 " + repeat("\\040", n) + " rw - ext4 x rw", "rw"),
    Shape("separators", lambda n: "1 2 3 4 5 6 " + repeat("- ", n), "-"),
)

PROC_CGROUPS = (
    Shape("unique controllers", lambda n: unique_lines("s{0} 1 1 1", n), "1"),
)

CMDLINE = (
    Shape("quotes", lambda n: repeat('a" ', n), "a"),
    Shape("many nokmem", lambda n: repeat("cgroup.memory=nokmem ", n), "nokmem"),
)

RPM = (Shape("unique kernels", lambda n: unique_lines("kernel-3.10.0-{0}.el7.x86_64", n),
             "kernel"),)
DPKG_STATUS = (Shape("unique kernel packages", lambda n: unique_lines(
    "Package: linux-image-{0}-amd64\nStatus: install ok installed\nVersion: 1\n", n),
    "linux-image"),)
SLABINFO = (Shape("unique caches", lambda n: unique_lines(
    "c{0} 1 1 1 1 1 : tunables 0 0 0 : slabdata 1 1 0", n), "slabdata"),)

SLAB_LISTING = (
    Shape("one long line of dates", lambda n: "lrwxrwxrwx 1 root root 0"
          + repeat(" Feb  7 05:23", n), "Feb"),
    Shape("unique entries", lambda n: unique_lines(
        "lrwxrwxrwx 1 root root 0 Feb  7 05:23 dentry({0}:docker.socket) -> :t-0000192", n),
        "dentry"),
)


def _pam_stack(text: str) -> object:
    return pamflow.lastlog_for(lambda name: text if name == "sshd" else None, "sshd")


PAM_STACK = (
    Shape("unknown branches", lambda n: unique_lines(
        "session [success=1 default=ok] pam_succeed_if.so user = u{0}", n), "session"),
    Shape("one long rule", lambda n: "session optional pam_lastlog.so " + repeat("x ", n),
          "session"),
)

SCANNERS = (
    Scanner("kernel log signatures", kernel_log.scan_kernel_log, KERNEL_LOG),
    Scanner("PAM lastlog lines", pam.lastlog_lines, PAM),
    Scanner("/etc/default/grub", _default_grub, DEFAULT_GRUB),
    Scanner("BLS entry", _bls, BLS),
    Scanner("grub.cfg", boot.parse_grub_cfg, GRUB_CFG),
    Scanner("grubby --info", boot.parse_grubby_info, GRUBBY),
    Scanner("os-release", kernel.parse_os_release, OS_RELEASE),
    Scanner("kernel release", kernel.parse_uname, OSRELEASE_UNAME),
    Scanner("mountinfo", cgroupfs.parse_mountinfo, MOUNTINFO),
    Scanner("/proc/cgroups", cgroupfs.parse_proc_cgroups, PROC_CGROUPS),
    Scanner("/proc/cmdline", cmdline.parse_cmdline, CMDLINE),
    Scanner("rpm kernels", packages.parse_rpm_kernels, RPM),
    Scanner("dpkg status", lambda t: packages.debian_kernel_releases(
        packages.parse_dpkg_status(t)), DPKG_STATUS),
    Scanner("slabinfo", lambda t: memory_cost.duplicate_caches(memory_cost.parse_slabinfo(t)),
            SLABINFO),
    Scanner("ls -l of /sys/kernel/slab", memory_cost.parse_ls_names, SLAB_LISTING),
    Scanner("PAM session stack", _pam_stack, PAM_STACK),
)
