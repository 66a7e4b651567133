"""What grubby will write, computed before it runs.

Runs on the target's own Python (2.7, 3.6+), stdlib only. ``memcg_kernel_args``
uses this to back up every file grubby is about to change, to show check mode
the real result, and to put an owner's ``cgroup.memory=`` options together
with ours. Pure text functions: nothing here reads or writes a file.

The behaviour modelled is that of the grubby each release ships:

* EL7, the C grubby 8.28 (rhboot/grubby, RHEL patches): ``--update-kernel=ALL
  --args=K=V`` edits only the ``linux``/``linux16``/``linuxefi`` lines of
  grub.cfg: an argument with the same key is replaced where it stands,
  anything else is appended. Its --info prints ``root=`` apart from args.
* EL8/EL9, the shell grubby-bls (grubby 8.40-48.el8 / 8.40-63.el9,
  ``update_bls_fragment`` and ``update_args``): an added argument first drops
  every argument with the same key, then goes to the end; words are
  re-joined with single spaces. With ALL, ``kernelopts`` in grubenv is set
  with grub2-editenv when it is not empty, the options of every entry
  without ``$kernelopts`` are rewritten, and /etc/kernel/cmdline is updated,
  first created from the last entry's arguments when it is missing. EL8 also
  turns an entry's options back into ``$kernelopts`` when they equal the new
  kernelopts. Only ``$kernelopts`` is expanded; ``$tuned_params`` and the
  like stay words of their own.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

MYPY = False
if MYPY:  # typing is for mypy only: Python 2.7 has no typing module
    from typing import Any, Dict, List, Optional, Sequence, Tuple  # noqa: F401 # novermin

GRUBENV_HEADER = "# GRUB Environment Block\n"

# Kernel parameters that take a comma-separated list of options, so that an
# owner's options and ours go into one argument: the kernel keeps one
# cgroup.memory= value per option word ("cgroup.memory= [KNL] Pass options
# to the cgroup memory controller. Format: <string> nosocket -- Disable
# socket memory accounting. nokmem -- Disable kernel memory accounting.",
# Documentation/admin-guide/kernel-parameters.txt).
LIST_PARAMS = ("cgroup.memory",)


class PlanError(Exception):
    """The change cannot be made without touching an owner's setting; one line."""


def key_of(word):
    # type: (str) -> str
    return word.split("=", 1)[0]


def _options(value):
    # type: (str) -> List[str]
    return [o for o in value.split(",") if o]


def has_arg(words, arg):
    # type: (Sequence[str], str) -> bool
    """``arg`` is in effect in ``words``: the exact word, or for a list
    parameter its option inside a word with the same key.

    >>> has_arg(["ro", "cgroup.memory=nosocket,nokmem"], "cgroup.memory=nokmem")
    True
    >>> has_arg(["cgroup.memory=nosocket"], "cgroup.memory=nokmem")
    False
    """
    if arg in words:
        return True
    key, sep, value = arg.partition("=")
    if key not in LIST_PARAMS or not sep:
        return False
    for word in words:
        wkey, wsep, wvalue = word.partition("=")
        if wkey == key and wsep and value in _options(wvalue):
            return True
    return False


def with_arg(words, arg):
    # type: (Sequence[str], str) -> Optional[str]
    """The word that gives ``words`` the argument and keeps the owner's
    options (None when it is already there).

    >>> with_arg(["ro", "cgroup.memory=nosocket"], "cgroup.memory=nokmem")
    'cgroup.memory=nosocket,nokmem'
    >>> with_arg(["ro"], "cgroup.memory=nokmem")
    'cgroup.memory=nokmem'
    """
    if has_arg(words, arg):
        return None
    key, sep, value = arg.partition("=")
    same = [w for w in words if key_of(w) == key]
    if not same:
        return arg
    if len(same) > 1:
        raise PlanError("%s is given %d times (%s); memcg-fix will not merge them"
                        % (key, len(same), " ".join(same)))
    _skey, ssep, svalue = same[0].partition("=")
    if key in LIST_PARAMS and sep and ssep and svalue:
        return "%s=%s,%s" % (key, svalue, value)
    raise PlanError("%s is set to %s; memcg-fix will not replace it with %s"
                    % (key, same[0], arg))


def without_arg(word, arg):
    # type: (str, str) -> Optional[str]
    """``word`` without ``arg``: None when nothing is left of it.

    >>> without_arg("cgroup.memory=nosocket,nokmem", "cgroup.memory=nokmem")
    'cgroup.memory=nosocket'
    >>> without_arg("cgroup.memory=nokmem", "cgroup.memory=nokmem") is None
    True
    """
    if word == arg:
        return None
    key, _sep, value = arg.partition("=")
    wkey, wsep, wvalue = word.partition("=")
    if key in LIST_PARAMS and wkey == key and wsep:
        rest = [o for o in _options(wvalue) if o != value]
        return "%s=%s" % (key, ",".join(rest)) if rest else None
    return word


def words_without_arg(words, arg):
    # type: (Sequence[str], str) -> List[str]
    out = []
    for word in words:
        kept = without_arg(word, arg)
        if kept is not None:
            out.append(kept)
    return out


def text_without_arg(text, arg):
    # type: (str, str) -> str
    """A command line (or shell value) without ``arg``, other words as written.

    >>> text_without_arg("ro quiet cgroup.memory=nosocket,nokmem", "cgroup.memory=nokmem")
    'ro quiet cgroup.memory=nosocket'
    """
    pieces = re.split(r"(\s+)", text)
    out = []  # type: List[str]
    for piece in pieces:
        if piece and not piece.isspace():
            kept = without_arg(piece, arg)
            if kept is None:
                if out and out[-1].isspace():
                    out.pop()
                continue
            piece = kept
        out.append(piece)
    joined = "".join(out)
    return joined.lstrip() if not text[:1].isspace() else joined


def common_word(entry_words, arg):
    # type: (Sequence[Sequence[str]], str) -> Optional[str]
    """The one ``--args`` word every entry that lacks ``arg`` must get.

    grubby gives all entries the same word, so entries that would need
    different ones (an owner's ``cgroup.memory=nosocket`` on some only) are
    refused rather than losing an option.
    """
    wanted = set()
    for words in entry_words:
        word = with_arg(words, arg)
        if word is not None:
            wanted.add(word)
    if len(wanted) > 1:
        raise PlanError("the boot entries would need different %s values (%s); make them "
                        "agree first" % (key_of(arg), ", ".join(sorted(wanted))))
    return wanted.pop() if wanted else None


# -- EL7: grub.cfg ----------------------------------------------------------

_LINUX_LINE = re.compile(r"^(\s*)(linux16|linuxefi|linux)(\s+)(\S+)(.*)$")


def legacy_replace(args_text, word):
    # type: (str, str) -> str
    """EL7 grubby: replace the first argument with ``word``'s key in place, or append."""
    key = key_of(word)
    pieces = re.split(r"(\s+)", args_text)
    for number, piece in enumerate(pieces):
        if piece and not piece.isspace() and key_of(piece) == key:
            pieces[number] = word
            return "".join(pieces)
    stripped = args_text.rstrip()
    return (stripped + " " + word) if stripped else word


def legacy_update(cfg_text, word):
    # type: (str, str) -> str
    """grub.cfg after ``grubby --update-kernel=ALL --args=word`` (EL7)."""
    lines = cfg_text.split("\n")
    for number, match in _entry_kernel_lines(lines):
        lead, cmd, gap, kernel, rest = match.groups()
        lines[number] = "%s%s%s%s %s" % (lead, cmd, gap, kernel,
                                         legacy_replace(rest.strip(), word))
    return "\n".join(lines)


def legacy_entry_args(cfg_text):
    # type: (str) -> List[List[str]]
    """The --info args of every EL7 entry with a kernel, from grub.cfg: the
    words after the kernel path, without the first ``root=``."""
    return [info_args(match.group(5))
            for _number, match in _entry_kernel_lines(cfg_text.split("\n"))]


def _entry_kernel_lines(lines):
    # type: (List[str]) -> List[Tuple[int, Any]]
    """(index, match) of each kernel line inside a ``menuentry { ... }`` of
    grub.cfg's ``lines``: the lines EL7 grubby reads and rewrites."""
    found = []
    in_entry = False
    for number, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("menuentry "):
            in_entry = True
            continue
        if in_entry and stripped == "}":
            in_entry = False
            continue
        match = _LINUX_LINE.match(line) if in_entry else None
        if match:
            found.append((number, match))
    return found


def legacy_info_args(words, word):
    # type: (Sequence[str], str) -> List[str]
    """An EL7 entry's --info args after the same update."""
    return legacy_replace(" ".join(words), word).split()


# -- EL8/EL9: grubby-bls ----------------------------------------------------

def bls_update_args(args_text, remove=(), add=()):
    # type: (str, Sequence[str], Sequence[str]) -> str
    """grubby-bls ``update_args``: remove, drop the added keys, append, re-join.

    >>> bls_update_args("ro quiet cgroup.memory=nosocket $tuned_params",
    ...                 add=["cgroup.memory=nosocket,nokmem"])
    'ro quiet $tuned_params cgroup.memory=nosocket,nokmem'
    """
    words = args_text.split()
    for arg in remove:
        if "=" in arg:
            if arg in words:
                words.remove(arg)  # the sed has no /g: the first one only
        else:
            words = [w for w in words if key_of(w) != arg]
    for arg in add:
        key = key_of(arg)
        words = [w for w in words if key_of(w) != key]
    return " ".join(words + list(add))


def bls_value(text, key):
    # type: (str, str) -> str
    """``get_bls_value``: the value of ``key`` lines (first one), leading blanks cut."""
    for line in text.split("\n"):
        if line.startswith(key + " ") or line.startswith(key + "\t"):
            return line[len(key):].lstrip(" \t")
    return ""


def has_kernelopts(options):
    # type: (str) -> bool
    return "$kernelopts" in options.split()


def expand_kernelopts(options, kernelopts):
    # type: (str, Optional[str]) -> str
    """``get_bls_args``: the first ``$kernelopts`` replaced, words re-joined."""
    words = options.split()
    if kernelopts and kernelopts.strip() and "$kernelopts" in words:
        at = words.index("$kernelopts")
        words = words[:at] + kernelopts.split() + words[at + 1:]
    return " ".join(words)


def info_args(args_text):
    # type: (str) -> List[str]
    """What --info prints as args: the words without the first ``root=``."""
    words = args_text.split()
    for number, word in enumerate(words):
        if word.startswith("root="):
            return words[:number] + words[number + 1:]
    return words


def set_bls_options(text, options):
    # type: (str, str) -> str
    """``set_bls_value``: every line starting with ``options`` becomes ``options VALUE``."""
    lines = text.split("\n")
    for number, line in enumerate(lines):
        if line.startswith("options"):
            lines[number] = "options " + options
    return "\n".join(lines)


def grubenv_get(text, name):
    # type: (str, str) -> Optional[str]
    for line in text.split("\n"):
        if line.startswith(name + "="):
            return line[len(name) + 1:]
    return None


def grubenv_kernelopts(text):
    # type: (str) -> Optional[str]
    """What grubby-bls reads (``grub2-editenv list | grep kernelopts``), or None."""
    value = grubenv_get(text, "kernelopts")
    return value.strip() if value is not None else None


def grubenv_set(text, name, value):
    # type: (str, str, str) -> str
    """grub2-editenv ``set``: the variable's line replaced (or added), the
    block padded with ``#`` to its old size (1024 bytes)."""
    size = len(text)
    lines = text.split("\n")
    body = []
    for line in lines:
        if line and not line.startswith("#"):
            body.append(line)
    found = False
    for number, line in enumerate(body):
        if line.startswith(name + "="):
            body[number] = "%s=%s" % (name, value)
            found = True
    if not found:
        body.append("%s=%s" % (name, value))
    out = GRUBENV_HEADER + "".join(line + "\n" for line in body)
    if len(out) > size:
        raise PlanError("grubenv would outgrow its %d bytes" % size)
    return out + "#" * (size - len(out))


class BlsEntry(object):
    def __init__(self, path, text):
        # type: (str, str) -> None
        self.path = path
        self.text = text
        self.options = bls_value(text, "options")


class BlsPlan(object):
    """``grubby --update-kernel=ALL --args=WORD`` on a BLS host, file by file.

    ``entries`` in grubby's order (its --info order); ``grubenv`` and
    ``kernel_cmdline`` are texts or None; ``restores_kernelopts`` is EL8's
    grubby-bls (it turns equal options back into ``$kernelopts``).
    """

    def __init__(self, entries, grubenv, kernel_cmdline, restores_kernelopts):
        # type: (List[BlsEntry], Optional[str], Optional[str], bool) -> None
        self.entries = entries
        self.grubenv = grubenv
        self.kernel_cmdline = kernel_cmdline
        self.restores_kernelopts = restores_kernelopts

    def kernelopts(self, grubenv):
        # type: (Optional[str]) -> Optional[str]
        return grubenv_kernelopts(grubenv) if grubenv is not None else None

    def update_all(self, word):
        # type: (str) -> Tuple[Dict[str, str], List[List[str]]]
        """{path: new text or None (unchanged)}, and the entries' new --info args."""
        files = {}
        grubenv = self.grubenv
        old_opts = self.kernelopts(grubenv)
        new_opts = None
        if old_opts and grubenv is not None:  # kernelopts are only read from a grubenv
            new_opts = bls_update_args(old_opts, add=[word])
            grubenv = grubenv_set(grubenv, "kernelopts", new_opts)
            files["grubenv"] = grubenv
        args_after = []
        for entry in self.entries:
            options = entry.options
            if not has_kernelopts(options):
                new_args = bls_update_args(expand_kernelopts(options, new_opts), add=[word])
                text = set_bls_options(entry.text, new_args)
                if self.restores_kernelopts and new_opts is not None and new_args == new_opts:
                    text = set_bls_options(entry.text, "$kernelopts")
                    options = "$kernelopts"
                else:
                    options = new_args
                files[entry.path] = text
            args_after.append(info_args(expand_kernelopts(options, self.kernelopts(grubenv))))
        cmdline = self.kernel_cmdline
        if cmdline is None:
            last = self.entries[-1].options if self.entries else ""
            cmdline = expand_kernelopts(last, self.kernelopts(grubenv)) + "\n"
        first = cmdline.split("\n", 1)[0].strip()
        files["/etc/kernel/cmdline"] = bls_update_args(first, add=[word]) + "\n"
        return files, args_after
