"""Kernel command lines: /proc/cmdline and boot-entry argument strings.

The kernel splits its command line on whitespace outside double quotes and
drops the quotes (``next_arg()`` in lib/cmdline.c); there is no backslash
escaping and no single-quote quoting. ``--`` ends the kernel's parameters:
what follows goes to init.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

MYPY = False
if MYPY:  # typing is for mypy only: Python 2.7 has no typing module
    from typing import Any, Dict, List, Optional  # noqa: F401 # novermin


def split_args(text):
    # type: (str) -> List[str]
    """Split a kernel command line the way the kernel does.

    >>> split_args('ro root=/dev/vda1 dyndbg="file foo.c +p" quiet')
    ['ro', 'root=/dev/vda1', 'dyndbg=file foo.c +p', 'quiet']
    >>> split_args('a "unterminated b')
    ['a', 'unterminated b']
    """
    args = []  # type: List[str]
    current = []  # type: List[str]
    in_quotes = False
    started = False
    for char in text:
        if char == '"':
            in_quotes = not in_quotes
            started = True
            continue
        if char.isspace() and not in_quotes:
            if started:
                args.append("".join(current))
                current = []
                started = False
            continue
        current.append(char)
        started = True
    if started:
        args.append("".join(current))
    return args


def kernel_args(args):
    # type: (List[str]) -> List[str]
    """The arguments before ``--`` (the rest belongs to init)."""
    if "--" in args:
        return args[:args.index("--")]
    return list(args)


def arg_values(args, name):
    # type: (List[str], str) -> List[Optional[str]]
    """Every value given to ``name`` (``None`` for a bare flag), in order.

    >>> arg_values(["cgroup.memory=nokmem", "quiet", "cgroup.memory=nosocket"], "cgroup.memory")
    ['nokmem', 'nosocket']
    >>> arg_values(["systemd.unified_cgroup_hierarchy"], "systemd.unified_cgroup_hierarchy")
    [None]
    """
    values = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if key == name:
            values.append(value if sep else None)
    return values


def has_nokmem(args):
    # type: (List[str]) -> bool
    """True when ``cgroup.memory=`` carries ``nokmem`` (it takes a comma list).

    >>> has_nokmem(["ro", "cgroup.memory=nosocket,nokmem"])
    True
    >>> has_nokmem(["cgroup.memory=nosocket"])
    False
    """
    for value in arg_values(kernel_args(args), "cgroup.memory"):
        if value and "nokmem" in [v.strip() for v in value.split(",")]:
            return True
    return False


def parse_cmdline(text):
    # type: (str) -> Dict[str, Any]
    """Parse /proc/cmdline into the facts memcg-fix uses.

    Sample, /proc/cmdline of a CentOS 7 host (tests/data/samples/cmdline/
    centos7.txt, after thegeekdiary's "CentOS / RHEL 7: How to disable
    Transparent Huge pages")::

        BOOT_IMAGE=/vmlinuz-3.10.0-327.el7.x86_64 root=/dev/mapper/centos-root ro crashkernel=auto rd.lvm.lv=centos/root rd.lvm.lv=centos/swap rhgb quiet transparent_hugepage=never

    >>> c = parse_cmdline("BOOT_IMAGE=/vmlinuz-3.10.0 ro cgroup.memory=nokmem systemd.unified_cgroup_hierarchy=0\\n")
    >>> c["nokmem"], c["cgroup_memory"], c["unified_cgroup_hierarchy"], c["boot_image"]
    (True, ['nokmem'], '0', '/vmlinuz-3.10.0')
    """  # noqa: E501 (real sample lines)
    raw = text.strip()
    args = kernel_args(split_args(raw))
    unified = arg_values(args, "systemd.unified_cgroup_hierarchy")
    no_v1 = arg_values(args, "cgroup_no_v1")
    boot_image = arg_values(args, "BOOT_IMAGE")
    return {
        "raw": raw,
        "args": args,
        "nokmem": has_nokmem(args),
        "cgroup_memory": [v for v in arg_values(args, "cgroup.memory") if v is not None],
        # a bare flag means "yes"; the last one given wins, as in systemd
        "unified_cgroup_hierarchy": ("1" if unified[-1] is None else unified[-1]) if unified
        else None,
        "cgroup_no_v1": no_v1[-1] if no_v1 else None,
        "boot_image": boot_image[-1] if boot_image else None,
    }
