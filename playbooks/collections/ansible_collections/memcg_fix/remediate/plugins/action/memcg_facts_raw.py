# Part of memcg-fix. Controller side (runs in ansible-core's own Python).
"""memcg_facts in one round trip per host, below Ansible's per-module cost.

The ``memcg_facts`` module costs what every module costs: a worker builds
an AnsiballZ zip, the target starts Python, unpacks it and imports
``ansible.module_utils.basic``, and that is most of what detection costs
(docs/benchmarks.md, P1). This action sends the same stdlib-only collector
(``module_utils/hostside``, zlib-compressed) with one shell command, run by
the connection like ``ansible.builtin.raw`` (become, any connection plugin),
and returns exactly what ``memcg_facts`` returns.

The collector goes on the command's stdin where the connection can carry it
(as Ansible's pipelining sends a module), so the command itself, which sudo
logs on the host in full, is a few hundred bytes; elsewhere it is inside the
command (about 64 KB; a sudo with ``requiretty`` gets that form too, after
refusing the first).

The command finds the target's Python the way Ansible does: an explicit
``ansible_python_interpreter`` (or ``interpreter_python`` in the config),
else a ``discovered_interpreter_python`` fact, else the first of
``INTERPRETER_PYTHON_FALLBACK`` that ``command -v`` finds, searched in the
same command. (ansible-core 2.16 picks from a table of distributions after a
probe of its own; there this action calls that same discovery, at the cost
of its extra round trips, so that both paths run the same interpreter.)

The collector runs from memory; the only things written on the host are its
compiled code, kept by content hash, and the ``--version`` texts of the
container tools, kept by the identity of their binaries, in a root-only directory
(``code_cache``, default ``/var/cache/memcg-fix``; never in check mode; see
``module_utils/facts_bootstrap.py``), which saves later runs the compiling and
the tools' runs.
A host without a Python, or where the command fails, fails the task with
a one-line reason; memcg-fix reports such a host as unknown.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shlex
import zlib
from pathlib import Path
from typing import Any

from ansible import constants as C
from ansible.plugins.action import ActionBase

_MODULE_UTILS = Path(__file__).resolve().parent.parent / "module_utils"
_HOSTSIDE = _MODULE_UTILS / "hostside"
_BOOTSTRAP = _MODULE_UTILS / "facts_bootstrap.py"
# what the bootstrap starts from; the modules they import come along
_ENTRY_MODULES = ("collect", "reader")
# from .x import y / from . import a, b as c / from . import (a,\n b)
_RELATIVE_IMPORT = re.compile(
    r"^[ \t]*from[ \t]+\.(\w*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#]+)", re.M)

FACTS_MARK = "MEMCG-FIX-FACTS "
ERROR_MARK = "MEMCG-FIX-ERROR "
NO_PYTHON_MARK = "MEMCG-FIX-NO-PYTHON"
NO_PYTHON_RC = 127
# sudo's refusal under "Defaults requiretty"
_NEEDS_TTY = "must have a tty"
_DISCOVERY_MODES = ("auto", "auto_legacy", "auto_silent", "auto_legacy_silent")
# -E: no PYTHON* variables of the login environment; -S: no site-packages
# (the collector is stdlib only), which also saves a part of Python's start
_PYTHON_FLAGS = ("-E", "-S")


def _module_closure(directory: Path, entries: tuple[str, ...]) -> list[str]:
    """The modules ``entries`` import, directly or not (relative imports only)."""
    seen: list[str] = []
    pending = list(entries)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.append(name)
        source = (directory / f"{name}.py").read_text(encoding="utf-8")
        for module, names in _RELATIVE_IMPORT.findall(source):
            if module:
                pending.append(module)
            else:  # from . import a, b as c
                pending.extend(part.split()[0] for part in names.strip("()").split(",")
                               if part.strip())
    return sorted(seen)


# PEP 263: Python 2.7 compiles non-ASCII source only below such a line
_CODING_COMMENT = re.compile(r"^[ \t]*#.*coding[:=]")
# A string literal (kept whole, so a "#" in it stays) or a comment with the
# blanks before it. The shipped modules run on Python 2.7 too, so they have
# no f-strings, whose nested quotes this would not know; a test checks that
# every shipped module compiles to the same code as its file.
_STRING_OR_COMMENT = re.compile(r"""
    (?:'''(?:[^'\\]|\\.|'(?!''))*'''|\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\"
      |'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")
  | (?P<comment>[ \t]*\#[^\n]*)
""", re.X | re.S)


def _drop_comment(match: re.Match[str]) -> str:
    comment = match.group("comment")
    return "" if comment is not None and not _CODING_COMMENT.match(comment) else match.group(0)


def without_comments(source: str) -> str:
    """``source`` with its comments cut out (type comments, lint markers and
    notes are a tenth of the collector's bytes); a ``#`` in a string stays.
    Lines stay where they were, so a traceback's line numbers are the file's;
    the encoding line stays. (One regular expression: Python's tokenizer did
    the same in 54 ms of each ansible-playbook run, this in 7.)"""
    return _STRING_OR_COMMENT.sub(_drop_comment, source)


def build_payload(directory: Path = _HOSTSIDE) -> str:
    """base64 of zlib of ``name NUL source NUL ...``: what the bootstrap unpacks."""
    blob = b"".join(
        name.encode("ascii") + b"\0"
        + without_comments((directory / f"{name}.py").read_text(encoding="utf-8")).encode("utf-8")
        + b"\0"
        for name in _module_closure(directory, _ENTRY_MODULES)
    )
    # level 6: 0.5 % larger than 9 and 10 ms less of each ansible-playbook run
    return base64.b64encode(zlib.compress(blob, 6)).decode("ascii")


def _load() -> tuple[str, str]:
    return build_payload(), _BOOTSTRAP.read_text(encoding="utf-8")


def cache_key(payload: str, bootstrap: str) -> str:
    """What the host keeps the compiled collector under: the code objects
    depend on the sources and on how the bootstrap compiles them."""
    return hashlib.sha256(f"{payload}\0{bootstrap}".encode("ascii")).hexdigest()[:32]


# Built once per ansible-playbook run: the strategy imports this plugin before
# it forks the workers, so each host's worker inherits it instead of reading
# and compressing the sources again.
try:
    _SHIPPED: tuple[str, str] | None = _load()
    _LOAD_ERROR = ""
except (OSError, UnicodeError) as exc:
    _SHIPPED = None
    _LOAD_ERROR = f"cannot read the collector shipped with the collection: {exc}"


# Python's part of the command when the collector comes on stdin: the first
# line is the payload, the rest the bootstrap, run as the bootstrap's
# ``-c BOOTSTRAP PAYLOAD ROOT`` would be (it reads sys.argv).
STDIN_STUB = ('import sys;d=sys.stdin.read().split("\\n",1);sys.argv[1:1]=d[:1];'
              'exec(compile(d[1],"<memcg-fix-bootstrap>","exec"))')


# The same when the collector is in the command: the first argument is the
# bootstrap, compressed as the payload is (the whole command must stay well
# below the 128 KiB that execve takes in one argument).
ARGV_STUB = ('import sys,zlib,base64;b=zlib.decompress(base64.b64decode(sys.argv.pop(1)));'
             'exec(compile(b,"<memcg-fix-bootstrap>","exec"))')


def remote_command(interpreter: list[str] | None, fallback: list[str], payload: str,
                   bootstrap: str, root: str, *, on_stdin: bool = True, cache: str = ""
                   ) -> tuple[str, bytes | None]:
    """The one POSIX shell command that finds Python and prints the facts, and
    what to send on its stdin.

    ``on_stdin``: the collector goes on stdin, as Ansible's pipelining sends
    a module, and the command stays a few hundred bytes (sudo logs every
    command it runs, in full); otherwise it is in the command itself.
    ``interpreter`` is the words of an explicit interpreter (``/usr/bin/env
    python3`` is two); ``None`` searches ``fallback`` in order, as Ansible's
    discovery does. Every word is quoted: nothing here is evaluated by the
    shell but the fixed script. ``cache``: the directory on the host where the
    compiled collector is kept ("": none).
    """
    cache_args = (f"{cache.rstrip('/')}/{cache_key(payload, bootstrap)}",) if cache else ()
    if on_stdin:
        python_args: tuple[str, ...] = (*_PYTHON_FLAGS, "-c", STDIN_STUB, root, *cache_args)
        in_data: bytes | None = f"{payload}\n{bootstrap}".encode("ascii")
    else:
        packed = base64.b64encode(zlib.compress(bootstrap.encode("ascii"), 9)).decode("ascii")
        python_args = (*_PYTHON_FLAGS, "-c", ARGV_STUB, packed, payload, root, *cache_args)
        in_data = None
    arguments = " ".join(shlex.quote(word) for word in python_args)
    give_up = f"echo {NO_PYTHON_MARK}; exit {NO_PYTHON_RC}"
    if interpreter:
        words = " ".join(shlex.quote(word) for word in interpreter)
        return (f"if command -v {shlex.quote(interpreter[0])} >/dev/null 2>&1; "
                f"then exec {words} {arguments}; fi; {give_up}"), in_data
    candidates = " ".join(shlex.quote(name) for name in fallback)
    return (f'for p in {candidates}; do if command -v "$p" >/dev/null 2>&1; '
            f'then exec "$p" {arguments}; fi; done; {give_up}'), in_data


def parse_output(rc: int, stdout: str, stderr: str, tried: str) -> dict[str, Any]:
    """The task result from what the command printed: the facts, or why not."""
    lines = stdout.splitlines()
    for line in lines:
        if line.startswith(FACTS_MARK):
            try:
                document = json.loads(line[len(FACTS_MARK):])
            except ValueError as exc:
                return _failed(f"the collector's output is not JSON ({exc})", rc)
            if not isinstance(document, dict):
                return _failed("the collector's output is not a JSON object", rc)
            return {"changed": False, "schema_version": document.get("schema_version"),
                    "facts": document.get("facts"), "unknown": document.get("unknown")}
    for line in lines:
        if line.startswith(ERROR_MARK):
            return _failed(f"the collector failed: {line[len(ERROR_MARK):]}", rc)
    if rc == NO_PYTHON_RC and any(line.strip() == NO_PYTHON_MARK for line in lines):
        return _failed(f"no Python interpreter on the host (tried {tried})", rc)
    detail = _last_line(stderr) or _last_line(stdout) or "no output"
    return _failed(f"the collector printed no facts (exit {rc}): {detail}", rc)


def _failed(message: str, rc: int) -> dict[str, Any]:
    return {"failed": True, "changed": False, "msg": message, "rc": rc}


# what the OpenSSH client itself says on stderr: never the command's reason
# (with become, the command runs in a pty and its own stderr comes on stdout)
_SSH_CLIENT_NOISE = re.compile(
    r"^((Shared connection|Connection) to \S+ closed\.|Warning: Permanently added .*)$")


def _last_line(text: str) -> str:
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not _SSH_CLIENT_NOISE.match(line)]
    return lines[-1][:300] if lines else ""


def _stdin_passes(become: Any) -> bool:
    """Whether the become method lets a command's stdin through (Ansible's
    condition for pipelining): the plugin says so since ansible-core 2.17;
    2.16 knows one that does not, su."""
    if not become:
        return True
    declared = getattr(become, "pipelining", None)
    if declared is not None:
        return bool(declared)
    return str(getattr(become, "name", "")).rsplit(".", 1)[-1] != "su"


# where the host keeps the compiled collector (root's, under become)
DEFAULT_CODE_CACHE = "/var/cache/memcg-fix"

# What the task accepts; the module file of the same name documents it (a
# test keeps the two in step).
# "str", not "path": like the module's path, ~ and $VARS are expanded on the host
ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "root": {"type": "str", "default": "/"},
    "code_cache": {"type": "str", "default": DEFAULT_CODE_CACHE},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars if task_vars is not None else {}
        result = super().run(tmp, task_vars)
        del tmp  # no remote temporary directory is used
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        if _SHIPPED is None:
            return {**result, **_failed(_LOAD_ERROR, 1)}
        payload, bootstrap = _SHIPPED
        interpreter, fallback, facts = self._interpreter(task_vars)
        root = args["root"] or "/"
        connection = self._connection
        # stdin where the connection carries it and the become method lets it
        # through (Ansible's own condition for pipelining, whatever that setting)
        on_stdin = bool(connection.has_pipelining and _stdin_passes(connection.become))
        # check mode changes no byte on the host, not even the code cache
        cache = "" if self._task.check_mode else str(args["code_cache"] or "")
        command, in_data = remote_command(interpreter, fallback, payload, bootstrap, root,
                                          on_stdin=on_stdin, cache=cache)
        run = self._low_level_execute_command(command, in_data=in_data)
        if in_data is not None and _NEEDS_TTY in f"{run.get('stdout')}{run.get('stderr')}":
            # sudo with requiretty refuses a command without a terminal: send
            # the collector in the command instead (a second round trip, here only)
            command, in_data = remote_command(interpreter, fallback, payload, bootstrap, root,
                                              on_stdin=False, cache=cache)
            run = self._low_level_execute_command(command)
        tried = shlex.join(interpreter) if interpreter else ", ".join(fallback)
        result.update(parse_output(run.get("rc") or 0, run.get("stdout") or "",
                                   run.get("stderr") or "", tried))
        if facts:
            result["ansible_facts"] = facts
        warnings = getattr(self, "_discovery_warnings", None)  # ansible-core 2.16
        if warnings:
            result.setdefault("warnings", []).extend(warnings)
        return result

    def _interpreter(self, task_vars: dict[str, Any]
                     ) -> tuple[list[str] | None, list[str], dict[str, Any]]:
        """(explicit interpreter words or None, the fallback list, facts to return)."""
        configured = C.config.get_config_value("INTERPRETER_PYTHON", variables=task_vars)
        value = str(self._templar.template(configured) or "").strip()
        fallback = [str(self._templar.template(name)) for name in
                    C.config.get_config_value("INTERPRETER_PYTHON_FALLBACK", variables=task_vars)]
        if value and value not in _DISCOVERY_MODES:
            return shlex.split(value), fallback, {}
        discovered = (task_vars.get("ansible_facts") or {}).get("discovered_interpreter_python")
        if discovered:
            return shlex.split(str(discovered)), fallback, {}
        if C.config.get_configuration_definition("_INTERPRETER_PYTHON_DISTRO_MAP"):
            # ansible-core 2.16: its discovery picks from a table of distributions
            from ansible.executor.interpreter_discovery import discover_interpreter

            found = discover_interpreter(action=self, interpreter_name="python",
                                         discovery_mode=value or "auto", task_vars=task_vars)
            return shlex.split(found), fallback, {"discovered_interpreter_python": found}
        return None, fallback, {}
