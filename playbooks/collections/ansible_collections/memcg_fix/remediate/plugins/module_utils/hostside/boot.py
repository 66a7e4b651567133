"""Boot entries and the places their kernel arguments come from.

* ``grubby --info=ALL`` (EL7 legacy grub.cfg, EL8/9 BLS);
* BLS entries ``/boot/loader/entries/*.conf``, whose ``options`` may use
  ``$kernelopts`` and ``$tuned_params`` from grubenv (EL8);
* ``/boot/grub/grub.cfg`` menu entries (Debian, Ubuntu);
* ``GRUB_CMDLINE_LINUX`` / ``GRUB_CMDLINE_LINUX_DEFAULT`` of
  /etc/default/grub, then /etc/default/grub.d/*.cfg (read later, so they win);
* /etc/kernel/cmdline (EL9: what new kernels get).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from .cmdline import has_nokmem, split_args
from .kernel import release_from_kernel_path

MYPY = False
if MYPY:  # typing is for mypy only: Python 2.7 has no typing module
    from typing import Any, Dict, List, Match, Optional, Sequence, Tuple  # noqa: F401 # novermin

_GRUBBY_KEYS = ("index", "kernel", "args", "root", "initrd", "title", "id", "boot")

_PLAIN_RUN = re.compile(r"[^'\"\\\\$]+")
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")

# Characters that substitutions ($VAR in /etc/default/grub, $kernelopts in
# BLS entries) may add, in all, to what one host's boot sources say. Without
# a bound, 40 lines of A="$A$A" double A forty times (a terabyte), and an
# 8 MiB grubenv kernelopts used by 800 BLS entries is 6.4 GB. Real values
# are a kernel command line (at most a few KiB), so 4 Mi characters is far
# above any real host, and what expansion holds stays under that plus the
# files themselves (each at most 16 MiB).
MAX_EXPANSION = 4 * 1024 * 1024


class ExpansionError(ValueError):
    """Substitutions went past :data:`MAX_EXPANSION`; ``str(exc)`` says where."""


class ExpansionBudget(object):
    """What substitutions may still add; shared by every file of one source."""

    def __init__(self, limit=MAX_EXPANSION):
        # type: (int) -> None
        self.limit = limit
        self.left = limit

    def spend(self, value, name, where):
        # type: (str, str, str) -> str
        self.left -= len(value)
        if self.left < 0:
            raise ExpansionError(
                "%s: substituting $%s goes past %d characters of expansion (a value that "
                "refers to itself again and again?)" % (where, name, self.limit))
        return value


def _unquote(value):
    # type: (str) -> str
    value = value.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1]
    return value


def parse_grubby_info(text):
    # type: (str) -> List[Dict[str, Any]]
    """Parse ``grubby --info=ALL`` into a list of boot entries.

    Sample, EL7 legacy form (RedHatInsights/insights-core,
    insights/parsers/tests/test_grubby.py)::

        index=0
        kernel=/boot/vmlinuz-3.10.0-957.1.3.el7.x86_64
        args="ro crashkernel=auto rd.lvm.lv=rhel/root rd.lvm.lv=rhel/swap rhgb quiet LANG=en_US.UTF-8"
        root=/dev/mapper/rhel-root
        initrd=/boot/initramfs-3.10.0-957.1.3.el7.x86_64.img
        title=Red Hat Enterprise Linux Server (3.10.0-957.1.3.el7.x86_64) 7.5 (Maipo)

    EL9 BLS form (insights-core insights/tests/combiners/test_grubby.py):
    the same keys with every value quoted, plus ``id="<machine-id>-<release>"``.
    A quoted value may span lines; entries without a kernel (``non linux
    entry``) are dropped.

    >>> e = parse_grubby_info('index=0\\nkernel="/boot/vmlinuz-5.14.0-70.el9.x86_64"\\nargs="ro cgroup.memory=nokmem"\\nindex=1\\nnon linux entry\\n')
    >>> len(e), e[0]["index"], e[0]["kernel"], e[0]["release"], e[0]["nokmem"]
    (1, 0, '/boot/vmlinuz-5.14.0-70.el9.x86_64', '5.14.0-70.el9.x86_64', True)
    """  # noqa: E501 (real sample lines)
    entries = []  # type: List[Dict[str, Any]]
    current = None  # type: Optional[Dict[str, Any]]
    pending_key = None
    pending = []
    for line in text.splitlines():
        if pending_key is not None and current is not None:  # a quoted value goes on
            pending.append(line)
            if line.rstrip().endswith('"'):
                current[pending_key] = _unquote(" ".join(pending))
                pending_key, pending = None, []
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or key not in _GRUBBY_KEYS:
            continue
        if key == "index":
            try:
                index = int(_unquote(value))
            except ValueError:
                current = None
                continue
            current = {"index": index}
            entries.append(current)
            continue
        if current is None:
            continue
        stripped = value.strip()
        if stripped.startswith('"') and (len(stripped) == 1 or not stripped.endswith('"')):
            pending_key, pending = key, [stripped]
            continue
        current[key] = _unquote(stripped)
    if pending_key is not None and current is not None:
        current[pending_key] = _unquote(" ".join(pending) + '"')
    result = []
    for entry in entries:
        if not entry.get("kernel"):
            continue
        args = split_args(entry.get("args", ""))
        result.append(_entry(entry["index"], entry["kernel"], entry.get("title"), args,
                             "grubby", entry.get("id")))
    return result


def _entry(index, kernel, title, args, source, entry_id=None):
    # type: (int, str, Optional[str], List[str], str, Optional[str]) -> Dict[str, Any]
    return {
        "index": index,
        "id": entry_id,
        "kernel": kernel,
        "release": release_from_kernel_path(kernel),
        "title": title,
        "args": args,
        "nokmem": has_nokmem(args),
        "source": source,
    }


def _expand_shell(value, env, budget=None, where="a shell word"):
    # type: (str, Dict[str, str], Optional[ExpansionBudget], str) -> str
    """Expand a shell word: quotes, backslashes, ``$VAR`` and ``${VAR}``.

    Command substitution is never run: a word holding a backtick or ``$(``
    is returned as written. Substituted values count against ``budget``
    (:class:`ExpansionError` past it).
    """
    if "`" in value or "$(" in value:
        return value
    if budget is None:
        budget = ExpansionBudget()
    out = []
    i = 0
    quote = None
    while i < len(value):
        if quote == "'":
            end = value.find("'", i)  # nothing is special inside single quotes
            if end < 0:
                out.append(value[i:])
                break
            out.append(value[i:end])
            quote = None
            i = end + 1
            continue
        plain = _PLAIN_RUN.match(value, i)
        if plain:  # copy a run of ordinary characters at once
            out.append(plain.group())
            i = plain.end()
            continue
        char = value[i]
        if char == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            if quote is None or nxt in '"\\$`':
                out.append(nxt)
                i += 2
                continue
        if char == "'" and quote is None:
            quote = "'"
        elif char == '"':
            quote = None if quote == '"' else '"'
        elif char == "$":
            match = _VARIABLE.match(value, i)
            if match:
                name = match.group(1) or match.group(2)
                out.append(budget.spend(env.get(name, ""), name, where))
                i = match.end()
                continue
            out.append(char)
        else:
            out.append(char)
        i += 1
    return "".join(out)


def parse_default_grub(text, env=None, budget=None, where="/etc/default/grub"):
    # type: (str, Optional[Dict[str, str]], Optional[ExpansionBudget], str) -> Dict[str, str]
    """Apply the ``KEY=value`` lines of /etc/default/grub (or a grub.d drop-in).

    ``env`` holds the values so far, so that a drop-in's
    ``GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX cgroup.memory=nokmem"`` builds
    on what came before. Returns the new ``env``. Substitutions spend
    ``budget`` (give the same one to a file and its drop-ins); past it,
    :class:`ExpansionError`.

    Sample, Debian 12's stock /etc/default/grub (grub2-common
    2.06-13+deb12u2, /usr/share/grub/default/grub)::

        GRUB_DEFAULT=0
        GRUB_TIMEOUT=5
        GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`
        GRUB_CMDLINE_LINUX_DEFAULT="quiet"
        GRUB_CMDLINE_LINUX=""

    >>> env = parse_default_grub('GRUB_CMDLINE_LINUX="ro quiet"\\n')
    >>> parse_default_grub('GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX cgroup.memory=nokmem"', env)["GRUB_CMDLINE_LINUX"]
    'ro quiet cgroup.memory=nokmem'
    """  # noqa: E501 (real sample lines)
    env = dict(env or {})
    if budget is None:
        budget = ExpansionBudget()
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].strip()
        match = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if not match:
            continue
        value = match.group(2).strip()
        # a trailing comment after a closing quote: KEY="x"  # note
        comment = re.match(r'^("[^"]*"|\'[^\']*\')\s+#.*$', value)
        if comment:
            value = comment.group(1)
        env[match.group(1)] = _expand_shell(value, env, budget, where)
    return env


def parse_bls_entry(text):
    # type: (str) -> Dict[str, str]
    """Parse a Boot Loader Specification entry (``key value`` lines).

    Sample, a RHEL 8 entry (Red Hat, "Managing, monitoring and updating the
    kernel", 8, section "What boot entries are")::

        title Red Hat Enterprise Linux (4.18.0-74.el8.x86_64) 8.0 (Ootpa)
        version 4.18.0-74.el8.x86_64
        linux /vmlinuz-4.18.0-74.el8.x86_64
        initrd /initramfs-4.18.0-74.el8.x86_64.img $tuned_initrd
        options $kernelopts $tuned_params
        id rhel-20190227183418-4.18.0-74.el8.x86_64

    >>> parse_bls_entry("title T\\nversion 4.18.0\\noptions $kernelopts quiet\\n")["options"]
    '$kernelopts quiet'
    """
    entry = {}
    options = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _sep, value = line.partition(" ")
        key = key.strip()
        if key == "options":
            options.append(value.strip())  # several options lines add up
        elif key:
            entry[key] = value.strip()
    if options:
        entry["options"] = " ".join(options)
    return entry


def parse_grubenv(text):
    # type: (str) -> Dict[str, str]
    """Parse a GRUB environment block (``grub2-editenv list`` format).

    Sample, /boot/grub2/grubenv of a RHEL 8 host (insights-core,
    insights/parsers/tests/test_grubenv.py)::

        # GRUB Environment Block
        saved_entry=295e1ba1696e4fad9e062f096f92d147-4.18.0-305.el8.x86_64
        kernelopts=root=/dev/mapper/root_vg-lv_root ro crashkernel=auto resume=/dev/mapper/root_vg-lv_swap rd.lvm.lv=root_vg/lv_root rd.lvm.lv=root_vg/lv_swap console=tty0 console=ttyS0,115200
        boot_success=0
        ####################...

    >>> parse_grubenv("# GRUB Environment Block\\nkernelopts=root=/dev/vda ro\\n#####\\n")["kernelopts"]
    'root=/dev/vda ro'
    """  # noqa: E501 (real sample lines)
    env = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if sep and re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
            env[key] = value
    return env


def expand_bls_options(options, grubenv, budget=None, where="a BLS entry"):
    # type: (Optional[str], Dict[str, str], Optional[ExpansionBudget], str) -> str
    """Expand ``$var`` references in BLS options from grubenv.

    Substituted values spend ``budget`` (:class:`ExpansionError` past it).

    >>> expand_bls_options("$kernelopts $tuned_params", {"kernelopts": "ro quiet"})
    'ro quiet'
    """
    if budget is None:
        budget = ExpansionBudget()

    def repl(match):
        # type: (Match[str]) -> str
        name = match.group(1) or match.group(2)
        return budget.spend(grubenv.get(name, ""), name, where)
    expanded = _VARIABLE.sub(repl, options or "")
    return " ".join(expanded.split())


def bls_entries(named_texts, grubenv, budget=None):
    # type: (Sequence[Tuple[str, str]], Dict[str, str], Optional[ExpansionBudget]) -> List[Dict[str, Any]]
    """Boot entries from ``[(file name, text), ...]`` of /boot/loader/entries.

    Sorted as GRUB's blscfg does: newest version first. The expansion of
    every entry's options spends one ``budget`` (:class:`ExpansionError`).
    """
    if budget is None:
        budget = ExpansionBudget()
    parsed = []
    for name, text in named_texts:
        entry = parse_bls_entry(text)
        kernel = entry.get("linux") or entry.get("efi")
        if not kernel:
            continue
        if not kernel.startswith("/boot/"):
            # relative to the /boot file system (anaconda's separate /boot):
            # grubby-bls prints it with the /boot prefix (its get_prefix)
            kernel = "/boot" + ("" if kernel.startswith("/") else "/") + kernel
        entry_id = name[:-5] if name.endswith(".conf") else name
        args = split_args(expand_bls_options(entry.get("options", ""), grubenv, budget,
                                             "/boot/loader/entries/" + name))
        parsed.append((entry.get("version") or entry_id, entry_id, kernel, entry.get("title"),
                       args))
    parsed.sort(key=lambda item: _version_key(item[0]), reverse=True)
    return [_entry(i, kernel, title, args, "bls", entry_id)
            for i, (_v, entry_id, kernel, title, args) in enumerate(parsed)]


def _version_key(text):
    # type: (str) -> List[Tuple[int, int, str]]
    """A rough sort key for kernel versions (numbers compare as numbers)."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.findall(r"\d+|[A-Za-z]+", text)]


def parse_grub_cfg(text):
    # type: (str) -> List[Dict[str, Any]]
    """Boot entries of a generated grub.cfg (``menuentry`` blocks and their
    ``linux``/``linux16``/``linuxefi`` line).

    Sample, the ``linux`` line of a Debian 12 /boot/grub/grub.cfg menu entry
    (as quoted in a public Debian 12 boot-partition how-to; update-grub's
    10_linux writes one such block per kernel)::

        linux\t/boot/vmlinuz-6.1.0-37-amd64 root=UUID=ffa49137-324a-452f-9bff-f1d0d5520b3e ro  quiet
        initrd\t/boot/initrd.img-6.1.0-37-amd64

    >>> e = parse_grub_cfg("menuentry 'Debian' {\\n  linux /boot/vmlinuz-6.1.0-18-amd64 root=/dev/vda1 ro quiet\\n}\\n")
    >>> e[0]["release"], e[0]["args"]
    ('6.1.0-18-amd64', ['root=/dev/vda1', 'ro', 'quiet'])
    """  # noqa: E501 (real sample lines)
    entries = []  # type: List[Dict[str, Any]]
    title = None
    depth = 0
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("menuentry ") or line.startswith("submenu "):
            match = re.match(r"^(?:menuentry|submenu)\s+(['\"])(.*?)\1", line)
            if line.startswith("menuentry "):
                title = match.group(2) if match else None
            depth += line.count("{") - line.count("}")
            continue
        if depth > 0:
            words = line.split(None, 2)
            if words and words[0] in ("linux", "linux16", "linuxefi") and len(words) >= 2:
                args = split_args(words[2]) if len(words) > 2 else []
                entries.append(_entry(len(entries), words[1], title, args, "grub.cfg"))
            depth += line.count("{") - line.count("}")
            if depth <= 0:
                depth, title = 0, None
    return entries
