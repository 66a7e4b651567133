"""The one shell command of ``memcg_facts_raw``, run for real on this machine.

The action plugin (controller side) builds one POSIX shell command that finds
a Python and runs the collector from a compressed copy; here that command
runs under ``/bin/sh`` with every target Python this machine has (3.11, 3.6,
2.7), on a host root, and its output is parsed as the action parses it. The
same command through Ansible (become, ssh, containers, the VM) is
tests/integration/test_fast_detection.py.
"""

from __future__ import annotations

import importlib.util
import json
import marshal
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from remediate.hostside.collect import collect
from remediate.hostside.reader import RootReader
from remediate.resources import collection_dir

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"
PYTHONS = ("/usr/bin/python3", "/root/.pyenv/versions/3.6.15/bin/python3.6",
           "/root/.pyenv/versions/2.7.18/bin/python2.7")
# MAX_ARG_STRLEN: the longest single argument execve(2) takes (32 pages).
# Become and `sh -c` put the whole command into one argument.
MAX_ARG_STRLEN = 32 * 4096


def _load_action() -> ModuleType:
    path = collection_dir() / "plugins" / "action" / "memcg_facts_raw.py"
    spec = importlib.util.spec_from_file_location("memcg_facts_raw_action", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


action = _load_action()


def run_command(shipped: tuple[str, bytes | None],
                env: dict[str, str] | None = None) -> dict[str, Any]:
    command, in_data = shipped
    proc = subprocess.run(["/bin/sh", "-c", command], input=in_data or b"",
                          capture_output=True, timeout=120, env=env, check=False)
    tried = "(test)"
    result: dict[str, Any] = action.parse_output(
        proc.returncode, proc.stdout.decode(), proc.stderr.decode(), tried)
    return result


def shipped(interpreter: list[str] | None, root: str = "/", fallback: list[str] | None = None,
            on_stdin: bool = True, cache: str = "") -> tuple[str, bytes | None]:
    assert action._SHIPPED is not None, action._LOAD_ERROR
    payload, bootstrap = action._SHIPPED
    result: tuple[str, bytes | None] = action.remote_command(
        interpreter, fallback or [], payload, bootstrap, root, on_stdin=on_stdin, cache=cache)
    return result


def _sos_tree(root: Path) -> None:
    def put(rel: str, text: str) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    put("sos_commands/kernel/uname_-a", (SAMPLES / "uname/centos7-uname-a.txt").read_text())
    put("sos_commands/kernel/dmesg", (SAMPLES / "dmesg/centos7-slub-messages.txt").read_text())
    put("proc/cmdline", (SAMPLES / "cmdline/centos7.txt").read_text())
    put("proc/cgroups", (SAMPLES / "proc_cgroups/el7-3.10.0-693-at-65535.txt").read_text())
    put("proc/1/mountinfo", (SAMPLES / "mountinfo/fedora20-v1.txt").read_text())
    put("etc/default/grub", (SAMPLES / "default_grub/el-default-grub.txt").read_text())
    put("etc/pam.d/postlogin", (SAMPLES / "pam/rhel7-postlogin-ac.txt").read_text())
    put("installed-rpms", (SAMPLES / "rpm/centos7-rpm-q-kernel.txt").read_text())
    (root / "sys/fs/cgroup/memory/kubepods").mkdir(parents=True)


@pytest.mark.parametrize("on_stdin", [True, False], ids=["on-stdin", "in-the-command"])
@pytest.mark.parametrize("python", PYTHONS)
def test_the_command_runs_the_collector_exactly_on_every_target_python(
        tmp_path: Path, python: str, on_stdin: bool) -> None:
    if not os.access(python, os.X_OK):
        pytest.skip(f"{python} is not on this machine")
    root = tmp_path / "sosreport"
    _sos_tree(root)
    result = run_command(shipped([python], str(root), on_stdin=on_stdin))
    assert result.get("failed") is not True, result
    expected = collect(RootReader(str(root)))
    collector = result["facts"].pop("collector")
    expected["facts"].pop("collector")
    assert result["facts"] == json.loads(json.dumps(expected["facts"]))
    assert result["unknown"] == expected["unknown"]
    assert result["schema_version"] == 1 and result["changed"] is False
    # the interpreter that ran it is the one asked for, and it read the root
    assert collector["python"] == python and collector["root"] == str(root)
    assert result["facts"]["kernel"]["release"] == "3.10.0-1160.2.2.el7.x86_64"


def test_the_interpreter_is_the_first_of_the_fallback_list_found(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _sos_tree(root)
    fallback = ["memcg-fix-test-no-such-python", "/no/such/python3", "python3.6", "python3"]
    env = dict(os.environ, PATH="/root/.pyenv/versions/3.6.15/bin:/usr/bin:/bin")
    if not os.access("/root/.pyenv/versions/3.6.15/bin/python3.6", os.X_OK):
        pytest.skip("python3.6 is not on this machine")
    result = run_command(shipped(None, str(root), fallback), env)
    assert result["facts"]["collector"]["python"] == "/root/.pyenv/versions/3.6.15/bin/python3.6"


def test_the_command_is_short_and_fits_in_one_exec_argument_with_room_to_grow() -> None:
    """sudo logs every command it runs in full (the collector on stdin keeps
    that to a line or two), and become wraps the whole command into one
    ``sh -c`` argument: one longer than MAX_ARG_STRLEN cannot run at all."""
    command, in_data = shipped(["/usr/bin/python3"])
    assert in_data is not None and len(command) < 400, command
    searched, _ = shipped(None, fallback=["python3.13", "python3.12", "python3.11", "python3"])
    assert len(searched) < 600, searched
    inline, none = shipped(["/usr/bin/python3"], on_stdin=False)
    assert none is None and len(inline.encode()) < MAX_ARG_STRLEN // 2, len(inline)


def test_the_bootstrap_is_ascii() -> None:
    """It travels on stdin to a Python whose locale may be C (Python 3.6: ASCII)."""
    assert action._SHIPPED is not None
    action._SHIPPED[1].encode("ascii")


def test_a_host_without_python_is_a_one_line_reason() -> None:
    explicit = run_command(shipped(["/no/such/python"]))
    assert explicit["failed"] is True
    assert explicit["msg"] == "no Python interpreter on the host (tried (test))"
    searched = run_command(shipped(None, fallback=["memcg-fix-no-python-a", "/no/python-b"]))
    assert searched["failed"] is True and searched["msg"].startswith("no Python interpreter")


def test_an_interpreter_that_is_not_python_fails_with_its_exit_code() -> None:
    result = run_command(shipped(["/bin/false"]))
    assert result["failed"] is True
    assert result["msg"] == "the collector printed no facts (exit 1): no output"


def test_a_corrupt_payload_fails_with_the_reason_not_a_traceback() -> None:
    assert action._SHIPPED is not None
    bootstrap = action._SHIPPED[1]
    result = run_command(action.remote_command(["/usr/bin/python3"], [], "bm90IHpsaWI=",
                                               bootstrap, "/"))
    assert result["failed"] is True
    assert result["msg"].startswith("the collector failed: error: ")
    assert "\n" not in result["msg"] and "Traceback" not in result["msg"]


def test_inventory_values_are_quoted_never_run_by_the_shell(tmp_path: Path) -> None:
    """An interpreter or root from the inventory is data for the shell: the
    words are quoted one by one (``/usr/bin/env python3`` still works)."""
    marker = tmp_path / "ran"
    hostile = f"/usr/bin/python3 $(touch {marker}) `touch {marker}`;touch {marker}"
    run_command(shipped(hostile.split()))
    run_command(shipped(["/usr/bin/python3"], root=f"'; touch {marker}; '"))
    assert not marker.exists()
    env_words = run_command(shipped(["/usr/bin/env", "python3"], root=str(tmp_path)))
    assert env_words.get("failed") is not True, env_words
    assert env_words["facts"]["collector"]["root"] == str(tmp_path)


def test_output_around_the_facts_line_is_ignored() -> None:
    """A login shell may print a banner, and become over ssh runs in a pty
    (CRLF line ends, stderr merged into stdout)."""
    document = {"schema_version": 1, "facts": {"host": {"hostname": "web1"}}, "unknown": []}
    stdout = ("Welcome to web1\r\nsome warning\r\n"
              f"{action.FACTS_MARK}{json.dumps(document)}\r\nlogout\r\n")
    result = action.parse_output(0, stdout, "", "x")
    assert result == {"changed": False, "schema_version": 1,
                      "facts": {"host": {"hostname": "web1"}}, "unknown": []}
    garbage = action.parse_output(0, f"{action.FACTS_MARK}{{not json\n", "", "x")
    assert garbage["failed"] is True and "not JSON" in garbage["msg"]
    not_object = action.parse_output(0, f"{action.FACTS_MARK}[1, 2]\n", "", "x")
    assert not_object["failed"] is True and "not a JSON object" in not_object["msg"]


def test_the_payload_carries_every_module_the_collector_imports() -> None:
    """The closure the action computes from relative imports is what a real
    import of the collector loads (no more, no less)."""
    hostside = collection_dir() / "plugins" / "module_utils" / "hostside"
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import hostside.collect, "
            "hostside.reader; print(sorted(m.split('.')[1] for m in sys.modules "
            "if m.startswith('hostside.')))")
    proc = subprocess.run([sys.executable, "-c", code, str(hostside.parent)],
                          capture_output=True, text=True, check=True)
    imported = json.loads(proc.stdout.replace("'", '"'))
    assert action._module_closure(hostside, action._ENTRY_MODULES) == imported


def test_the_shipped_modules_compile_to_the_same_code_as_their_files() -> None:
    """Comments are cut from what is shipped; the code, its constants and its
    line numbers are the files' own (marshal of the compiled module)."""
    hostside = collection_dir() / "plugins" / "module_utils" / "hostside"
    names = action._module_closure(hostside, action._ENTRY_MODULES)
    shipped_bytes = 0
    for name in names:
        source = (hostside / f"{name}.py").read_text(encoding="utf-8")
        stripped = action.without_comments(source)
        assert stripped.count("\n") == source.count("\n"), name
        assert marshal.dumps(compile(stripped, name, "exec")) == marshal.dumps(
            compile(source, name, "exec")), name
        shipped_bytes += len(stripped)
    assert "# type:" not in "".join(action.without_comments(
        (hostside / f"{n}.py").read_text(encoding="utf-8")) for n in names)
    assert shipped_bytes < sum(len((hostside / f"{n}.py").read_text(encoding="utf-8"))
                               for n in names)


def test_a_hash_in_a_string_or_the_encoding_line_is_not_a_comment() -> None:
    source = ('# -*- coding: utf-8 -*-\n'
              'MARK = "# kept"  # cut\n'
              'x = 1  # type: int\n'
              '# note\n')
    assert action.without_comments(source) == (
        '# -*- coding: utf-8 -*-\nMARK = "# kept"\nx = 1\n\n')


def test_the_reason_is_the_commands_last_words_not_the_ssh_clients() -> None:
    ssh_noise = ("Warning: Permanently added '[127.0.0.1]:2222' (ED25519) to the list of known "
                 "hosts.\r\nShared connection to 127.0.0.1 closed.\r\n")
    silent = action.parse_output(1, "", ssh_noise, "x")
    assert silent["msg"] == "the collector printed no facts (exit 1): no output"
    # in a pty (become over ssh) the command's own stderr arrives on stdout
    crashed = action.parse_output(1, "Traceback (most recent call last):\r\n  File x\r\n"
                                     "SyntaxError: invalid syntax\r\n", ssh_noise, "x")
    assert crashed["msg"] == ("the collector printed no facts (exit 1): "
                              "SyntaxError: invalid syntax")


@pytest.mark.parametrize(("method", "passes"), [("sudo", True), ("su", False)])
def test_stdin_is_used_where_the_become_method_lets_it_through(method: str,
                                                               passes: bool) -> None:
    """Ansible's own rule for pipelining: su reads its password from the
    terminal, so the collector goes in the command (on 2.16 and later cores)."""
    from ansible.plugins.loader import become_loader

    plugin = become_loader.get(method)
    if plugin is None:
        pytest.skip(f"no {method} become plugin in this ansible-core")
    assert action._stdin_passes(plugin) is passes
    assert action._stdin_passes(None) is True


# Run with a target Python: the bootstrap's own functions write a cache entry
# of the shipped code whose collect() also reports {"forged": true}; a run
# that believes the cache reports it too.
_FORGE = """
import sys
namespace = {"__name__": "memcg_fix_forge"}
exec(compile(open(sys.argv[1]).read(), "bootstrap", "exec"), namespace)
sources = namespace["unpack"](open(sys.argv[2]).read())
name = namespace["PACKAGE"] + ".collect"
sources[name] += (b"\\n_real_collect = collect\\n"
                  b"def collect(reader, *rest):\\n"
                  b"    result = _real_collect(reader, *rest)\\n"
                  b"    result['facts']['forged'] = True\\n"
                  b"    return result\\n")
namespace["store_cached"](sys.argv[3], namespace["compile_sources"](sources))
"""


def _forge_cache(python: str, cache_arg: str, tmp_path: Path) -> None:
    assert action._SHIPPED is not None
    payload, bootstrap = action._SHIPPED
    (tmp_path / "bootstrap.py").write_text(bootstrap)
    (tmp_path / "payload.txt").write_text(payload)
    subprocess.run([python, "-c", _FORGE, str(tmp_path / "bootstrap.py"),
                    str(tmp_path / "payload.txt"), cache_arg], check=True, timeout=60)


def _cache_arg(directory: Path) -> str:
    assert action._SHIPPED is not None
    return f"{directory}/{action.cache_key(*action._SHIPPED)}"


@pytest.mark.parametrize("python", PYTHONS)
def test_the_compiled_collector_is_kept_and_the_next_run_uses_it(
        tmp_path: Path, python: str) -> None:
    """The first run compiles and keeps the code (0700 directory, 0600 file);
    the next one runs what was kept: a cache entry made to add a fact shows
    that fact, and the facts of an honest entry are the uncached run's."""
    if not os.access(python, os.X_OK):
        pytest.skip(f"{python} is not on this machine")
    root = tmp_path / "sosreport"
    _sos_tree(root)
    cache = tmp_path / "cache"
    uncached = run_command(shipped([python], str(root)))
    first = run_command(shipped([python], str(root), cache=str(cache)))
    (entry,) = cache.iterdir()
    assert oct(cache.stat().st_mode & 0o777) == "0o700"
    assert oct(entry.stat().st_mode & 0o777) == "0o600"
    assert entry.name.startswith(action.cache_key(*action._SHIPPED) + "-")
    second = run_command(shipped([python], str(root), cache=str(cache)))
    assert first == second == uncached
    assert "forged" not in second["facts"]
    _forge_cache(python, _cache_arg(cache), tmp_path)
    assert run_command(shipped([python], str(root), cache=str(cache)))["facts"]["forged"] is True
    # in the command itself (sudo with requiretty) the cache is the same
    inline = run_command(shipped([python], str(root), on_stdin=False, cache=str(cache)))
    assert inline["facts"]["forged"] is True


def test_a_cache_others_could_write_or_a_corrupt_one_is_never_run(tmp_path: Path) -> None:
    """Only an entry of the user's own, in a directory of the user's own that
    nobody else can write, with the right checksum, is run; anything else is
    compiled afresh (and a bad entry replaced), with the same facts."""
    python = "/usr/bin/python3"
    root = tmp_path / "sosreport"
    _sos_tree(root)
    cache = tmp_path / "cache"
    honest = run_command(shipped([python], str(root), cache=str(cache)))
    (entry,) = cache.iterdir()

    def facts_now() -> dict[str, Any]:
        result = run_command(shipped([python], str(root), cache=str(cache)))
        assert result.get("failed") is not True, result
        return result

    def forged() -> None:
        _forge_cache(python, _cache_arg(cache), tmp_path)
        assert facts_now()["facts"].get("forged") is True  # believed as it is

    forged()
    entry.chmod(0o620)  # group-writable
    assert facts_now() == honest
    forged()
    os.chown(entry, 65534, -1)  # another user's
    assert facts_now() == honest
    forged()
    cache.chmod(0o777)  # a directory anyone can write
    assert facts_now() == honest
    cache.chmod(0o700)
    forged()
    data = bytearray(entry.read_bytes())
    data[-10] ^= 0xFF  # flipped bits: the checksum no longer matches
    entry.write_bytes(bytes(data))
    assert facts_now() == honest
    assert facts_now() == honest  # the replaced entry is the honest code
    # an entry of older code for the same Python is removed when a new one is kept
    stale = cache / entry.name.replace(entry.name.split("-")[0], "0" * 32)
    stale.write_bytes(b"old")
    stale.chmod(0o600)
    entry.unlink()
    assert facts_now() == honest
    assert sorted(p.name for p in cache.iterdir()) == [entry.name]


def test_no_cache_is_asked_for_without_a_directory() -> None:
    command, _ = shipped(["/usr/bin/python3"])
    cached, _ = shipped(["/usr/bin/python3"], cache="/var/cache/memcg-fix/")
    assert command.count("/var/cache") == 0
    key = action.cache_key(*action._SHIPPED)
    assert f" / /var/cache/memcg-fix/{key};" in cached


def _bootstrap() -> dict[str, Any]:
    """The shipped bootstrap's functions and constants (its ``main`` not run)."""
    assert action._SHIPPED is not None
    namespace: dict[str, Any] = {"__name__": "memcg_fix_bootstrap_under_test"}
    exec(compile(action._SHIPPED[1], "bootstrap", "exec"), namespace)
    return namespace


BOOTSTRAP = _bootstrap()


def _live_runc(python: str, cache: Path, bin_dir: Path) -> dict[str, Any]:
    """The runc facts of a live run whose PATH finds ``bin_dir/runc`` first."""
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "LC_ALL": "C"}
    result = run_command(shipped([python], "/", cache=str(cache)), env=env)
    assert result.get("failed") is not True, result
    runc: dict[str, Any] = result["facts"]["runc"]
    return runc


@pytest.mark.parametrize("python", PYTHONS)
def test_a_tools_version_text_is_kept_and_used_until_its_binary_changes(
        tmp_path: Path, python: str) -> None:
    """On a live host the first run keeps what `runc --version` printed (in
    the cache directory, 0600); the next run uses it instead of running runc,
    until the binary's file changes."""
    if not os.access(python, os.X_OK):
        pytest.skip(f"{python} is not on this machine")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    runc = bin_dir / "runc"
    runc.write_bytes(Path("/bin/echo").read_bytes())  # an ELF binary with its own inode
    runc.chmod(0o755)
    cache = tmp_path / "cache"
    first = _live_runc(python, cache, bin_dir)
    assert first["path"] == str(runc) and first["source"] == "command"
    kept = cache / BOOTSTRAP["VERSIONS_FILE"]
    assert oct(kept.stat().st_mode & 0o777) == "0o600"
    read = BOOTSTRAP["_read_private"]
    stored = json.loads(read(str(cache), str(kept), BOOTSTRAP["VERSIONS_MAGIC"]))
    assert stored[str(runc)]["text"].startswith("echo (GNU coreutils)")
    inode = kept.stat().st_ino
    assert _live_runc(python, cache, bin_dir) == first
    assert kept.stat().st_ino == inode  # nothing new was learned: not rewritten

    # what is kept is what the next run reports, without running the binary
    stored[str(runc)]["text"] = "runc version 1.1.12\ncommit: v1.1.12-0\n"
    BOOTSTRAP["_write_private"](str(cache), str(kept), BOOTSTRAP["VERSIONS_MAGIC"],
                                json.dumps(stored).encode("utf-8"))
    assert _live_runc(python, cache, bin_dir)["version"] == "1.1.12"
    # the binary changed (an upgrade in place): it runs again
    os.utime(runc, (1_600_000_000, 1_600_000_000))
    assert _live_runc(python, cache, bin_dir) == first


def test_a_scripts_version_is_never_kept(tmp_path: Path) -> None:
    """A script prints what another program says (podman's docker wrapper):
    it runs every time."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    runc = bin_dir / "runc"
    runc.write_text("#!/bin/sh\necho 'runc version 1.0.0-rc93'\n")
    runc.chmod(0o755)
    cache = tmp_path / "cache"
    assert _live_runc("/usr/bin/python3", cache, bin_dir)["version"] == "1.0.0-rc93"
    kept = cache / BOOTSTRAP["VERSIONS_FILE"]
    assert not kept.exists() or str(runc).encode() not in kept.read_bytes()
    runc.write_text("#!/bin/sh\necho 'runc version 1.1.12'\n")
    assert _live_runc("/usr/bin/python3", cache, bin_dir)["version"] == "1.1.12"


def test_a_host_root_keeps_no_tool_versions(tmp_path: Path) -> None:
    root = tmp_path / "sosreport"
    _sos_tree(root)
    cache = tmp_path / "cache"
    run_command(shipped(["/usr/bin/python3"], str(root), cache=str(cache)))
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".code")] == []
