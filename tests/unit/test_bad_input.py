"""Bad input: a clear one-line error and a documented exit code, never a traceback.

The corpus is tests/data/bad/: the cases of cases.yaml (facts files, saved
plans and playbooks, inventories, damaged host roots, command lines) and the
malformed policies of policies/ (with policies/expected.json). Every case
runs through the real command line, ``python -m remediate ARGV``, in its own
process. Big and binary inputs (a 1 GB sparse file, random bytes, deep
nesting, FIFOs, symlink loops) are made at test time in a temporary
directory, so the repository stays small.

A damaged host root is not an error: what cannot be read becomes "unknown,
because ..." and everything else is still read and planned.

Every case runs under limits the harness enforces on the child process, not
a timing assertion: at most 10 s of CPU (RLIMIT_CPU: the kernel stops it),
500 MB of peak memory (its own and its children's maximum resident set, from
wait4), and a wall-clock timeout; a 2 GiB address-space limit stops a runaway
allocation long before it could take the machine.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from remediate import cli
from tests.hostile_text import SCANNERS
from tests.targets.ansible import ansible_env

REPO = Path(__file__).resolve().parents[2]
BAD = REPO / "tests" / "data" / "bad"
SAMPLES = REPO / "tests" / "data" / "samples"
CASES: list[dict[str, Any]] = yaml.safe_load((BAD / "cases.yaml").read_text())["cases"]
POLICY_EXPECTED = json.loads((BAD / "policies" / "expected.json").read_text())


def policy_cases() -> list[dict[str, Any]]:
    """The malformed policies, each given to ``plan --policy`` with good facts."""
    return [
        {"id": f"policy-{name.removesuffix('.yaml')}",
         "argv": ["plan", "--policy", f"{{bad}}/policies/{name}",
                  "--facts", "{bad}/facts/good-fleet.json"],
         "exit": 3, "says": expected["says"]}
        for name, expected in sorted(POLICY_EXPECTED.items())
    ]


ALL_CASES = CASES + policy_cases()


# --- inputs made at test time -----------------------------------------------

def _put(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def build_root(root: Path) -> None:
    """A small EL7 host root from the real samples (as test_detect_root builds them)."""
    _put(root, "proc/sys/kernel/osrelease", "3.10.0-1160.24.1.el7.x86_64\n")
    _put(root, "proc/cmdline", (SAMPLES / "cmdline/centos7.txt").read_text())
    _put(root, "proc/cgroups", (SAMPLES / "proc_cgroups/el7-3.10.0-693-at-65535.txt").read_text())
    _put(root, "proc/1/mountinfo", (SAMPLES / "mountinfo/fedora20-v1.txt").read_text())
    for rel in ("kubepods", "kubepods/burstable", "system.slice"):
        _put(root, f"sys/fs/cgroup/memory/{rel}/memory.kmem.usage_in_bytes", "12288\n")
    _put(root, "etc/default/grub", (SAMPLES / "default_grub/el-default-grub.txt").read_text())
    _put(root, "etc/pam.d/postlogin-ac", (SAMPLES / "pam/rhel7-postlogin-ac.txt").read_text())
    os.symlink("postlogin-ac", root / "etc/pam.d/postlogin")
    _put(root, "etc/os-release", 'NAME="CentOS Linux"\nID="centos"\nVERSION_ID="7"\n')
    _put(root, "etc/hostname", "web1.example.com\n")


def _replace(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)


def _shape(name: str, size: int) -> str:
    """The adversarial text ``scanner/shape`` of tests/hostile_text.py."""
    scanner, _sep, shape = name.partition("/")
    return next(sh.make(size) for sc in SCANNERS if sc.name == scanner
                for sh in sc.shapes if sh.name == shape)


def _made_text(spec: dict[str, Any]) -> str:
    """``text``, then ``unit`` repeated to ``size`` characters, then ``suffix``."""
    unit = spec.get("unit", "")
    body = (unit * (int(spec.get("size", 0)) // max(len(unit), 1))) if unit else ""
    return spec.get("text", "") + body + spec.get("suffix", "")


def _nested_dirs(top: Path, depth: int) -> None:
    """``depth`` directories, one in the other, made relative to each other so
    the tree can go deeper than PATH_MAX."""
    top.mkdir(parents=True, exist_ok=True)
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("dd", dir_fd=fd)
            inner = os.open("dd", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
    finally:
        os.close(fd)


def _remove_nested(top: Path) -> None:
    """Remove a tree made by _nested_dirs one level at a time, without
    recursion: pytest's clean-up (and Python 2.7's rmtree in ansible-test's
    units) recurses once per level, gives up on 2,100 of them and leaves
    garbage in the shared temp dir. Each step lifts dd/dd to the top and drops
    the emptied dd."""
    if not top.is_dir():
        return
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        while True:
            try:
                os.rename("dd/dd", "dd-next", src_dir_fd=fd, dst_dir_fd=fd)
            except FileNotFoundError:
                break
            os.rmdir("dd", dir_fd=fd)
            os.rename("dd-next", "dd", src_dir_fd=fd, dst_dir_fd=fd)
        if os.path.isdir(top / "dd"):
            os.rmdir("dd", dir_fd=fd)
    finally:
        os.close(fd)


def damage(root: Path, how: str, rel: str, spec: dict[str, Any] | None = None) -> None:
    path = root / rel
    spec = spec or {}
    if how == "text":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_made_text(spec), encoding="utf-8", errors="surrogateescape")
    elif how == "shape":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_shape(spec["shape"], int(spec["size"])))
    elif how == "deep":
        _nested_dirs(path, int(spec["depth"]))
    elif how == "binary":
        path.write_bytes(b"\x7fELF\x00\x01" + os.urandom(4096) + b"\x00")
    elif how == "fifo":
        _replace(path)
        os.mkfifo(path)  # nothing ever writes to it: a reader that opens it blocks
    elif how == "directory":
        _replace(path)
        path.mkdir()
    elif how == "dangling":
        _replace(path)
        os.symlink("/nonexistent/memcg-fix-dangling", path)
    elif how == "sparse":
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as handle:
            handle.truncate(1 << 30)  # 1 GiB, no data blocks
    elif how == "loop":
        # a loop of two links and a link to the parent, as a careless copy
        # (cp -a of a tree with links) leaves them
        os.symlink("loop-b", path / "loop-a")
        os.symlink("loop-a", path / "loop-b")
        os.symlink("..", path / "parent")
    elif how == "self-loop":
        _replace(path)
        os.symlink(path.name, path)
    elif how == "escape":
        # the controller's own /usr/lib/os-release is what this would reach
        # outside the root; inside it, there is none
        _replace(path)
        os.symlink("../" * 12 + "usr/lib/os-release", path)
    else:
        raise AssertionError(f"unknown damage {how}")


def make(made: Path, spec: dict[str, Any]) -> None:
    path = made / spec["name"]
    if "sparse" in spec:
        with open(path, "wb") as handle:
            handle.truncate(int(spec["sparse"]))
    elif "nested" in spec:
        path.write_text("[" * int(spec["nested"]))
    elif "random" in spec:
        path.write_bytes(b"\x00\xff" + os.urandom(int(spec["random"])))
    elif spec.get("dir"):
        path.mkdir()
    elif "text" in spec:
        path.write_text(_made_text(spec))
    elif spec.get("fifo"):
        os.mkfifo(path)  # nothing ever writes to it
    elif "hosts" in spec:  # a facts file of that many minimal hosts
        with open(path, "w", encoding="ascii") as handle:
            handle.write('{"schema_version": 1, "hosts": [')
            handle.write(",".join(f'{{"host": "h{i}", "facts": {{}}}}'
                                  for i in range(int(spec["hosts"]))))
            handle.write("]}")
    elif "bytes" in spec:
        path.write_bytes(bytes.fromhex(spec["bytes"]) + (REPO / spec["then"]).read_bytes())
    elif "planned" in spec:
        run = _memcg_fix(["plan", "--facts", str(BAD / spec["planned"]), "--format", "json"],
                         made)
        assert run.returncode in (0, 2), run.stderr
        path.write_text(run.stdout)
    elif "rendered" in spec:
        plan = made / (spec["name"] + ".plan.json")
        run = _memcg_fix(["plan", "--facts", str(BAD / spec["rendered"]), "--format", "json"],
                         made)
        plan.write_text(run.stdout)
        run = _memcg_fix(["render", "--plan", str(plan), "--out", str(path)], made)
        assert run.returncode == 0, run.stderr
    else:
        raise AssertionError(f"unknown input to make: {spec}")


# --- running a case -----------------------------------------------------------

@dataclass
class Outcome:
    case: dict[str, Any]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    cpu_seconds: float = 0.0
    max_rss_mb: float = 0.0


CPU_LIMIT = 10  # seconds of CPU per process of a case
RSS_LIMIT_MB = 500
ADDRESS_SPACE = 2 << 30


def _case_limits() -> None:  # in the child, before it runs Python
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_LIMIT, CPU_LIMIT))
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def _env() -> dict[str, str]:
    # the memcg-fix of this checkout, also when the case runs in another directory
    env = ansible_env()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def _memcg_fix(argv: list[str], cwd: Path,
               timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "remediate", *argv], capture_output=True,
                          text=True, cwd=cwd, env=_env(), timeout=timeout, check=False)


def _limited_run(argv: list[str], cwd: Path, timeout: float) -> tuple[int, str, str, Any]:
    """Run ``memcg-fix ARGV`` under the case limits; exit code, output and its rusage."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-m", "remediate", *argv], stdout=out,
                                stderr=err, stdin=subprocess.DEVNULL, cwd=cwd, env=_env(),
                                preexec_fn=_case_limits)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            _pid, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        finally:
            killer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (proc.returncode, out.read().decode("utf-8", "surrogateescape"),
                err.read().decode("utf-8", "surrogateescape"), usage)


def run_case(case: dict[str, Any], workdir: Path) -> Outcome:
    made = workdir / "made"
    made.mkdir(parents=True)
    for spec in case.get("make", []):
        make(made, spec)
    root = workdir / "root"
    if "damage" in case:
        build_root(root)
        damages = case["damage"] if isinstance(case["damage"], list) else [case["damage"]]
        for spec in damages:
            damage(root, spec["how"], spec["path"], spec)
    argv = [a.format(bad=BAD, made=made, root=root) for a in case["argv"]]
    started = time.monotonic()
    try:
        code, out, err, usage = _limited_run(argv, workdir, timeout=case.get("seconds", 60))
    finally:
        for spec in damages if "damage" in case else []:
            if spec["how"] == "deep":
                _remove_nested(root / spec["path"])
    return Outcome(case, code, out, err, time.monotonic() - started,
                   usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


class _PlaybookLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's safe loader (Ansible's parser) that reads !unsafe as a string."""


_PlaybookLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


# what no human-facing output may hold (the sanitizer escapes them)
def _controls(text: str) -> set[str]:
    return {ch for ch in text if (ch != "\n" and unicodedata.category(ch) in ("Cc", "Cf", "Cs"))
            or ch in "\u2028\u2029"}


def _dotted(doc: Any, path: str) -> Any:
    for part in path.split("."):
        doc = doc[part]
    return doc


def problems_of(outcome: Outcome) -> list[str]:
    """Everything wrong with one case's outcome (empty: the case holds)."""
    case, problems = outcome.case, []
    out, err = outcome.stdout, outcome.stderr
    if outcome.returncode != case["exit"]:
        problems.append(f"exit {outcome.returncode}, expected {case['exit']}")
    if "Traceback" in out + err:
        problems.append("a traceback was printed")
    lines = err.splitlines()
    if not all(line.startswith("memcg-fix: ") for line in lines):
        problems.append("stderr has lines not starting with 'memcg-fix: '")
    if "says" in case:
        if len(lines) != 1:
            problems.append(f"{len(lines)} lines on stderr, expected one")
        elif case["says"] not in lines[0] or case.get("also", "") not in lines[0]:
            problems.append(f"stderr does not say {case['says']!r}")
        if out:
            problems.append("an error also printed to stdout")
    if "stderr" in case and err.strip() != case["stderr"]:
        problems.append(f"stderr is not {case['stderr']!r}")
    if "stderr_has" in case and case["stderr_has"] not in err:
        problems.append(f"stderr does not contain {case['stderr_has']!r}")
    if "stdout" in case and case["stdout"] not in out:
        problems.append(f"stdout does not contain {case['stdout']!r}")
    if "unknown" in case or "facts" in case:
        try:
            [host] = json.loads(out)["hosts"]
        except (ValueError, KeyError, TypeError):
            return [*problems, "stdout is not a facts document with one host"]
        if "unknown" in case:
            want = case["unknown"]
            reasons = [u["reason"] for u in host["unknown"] if u["fact"] == want["fact"]]
            if not any(want["says"] in r for r in reasons):
                problems.append(f"{want['fact']} is not unknown because {want['says']!r} "
                                f"(reasons: {reasons})")
        for path, value in (case.get("facts") or {}).items():
            try:
                actual = _dotted(host["facts"], path)
            except (KeyError, TypeError):
                actual = "<missing>"
            if actual != value:
                problems.append(f"facts.{path} is {actual!r}, expected {value!r}")
    if outcome.seconds > case.get("seconds", 60):
        problems.append(f"took {outcome.seconds:.1f} s")
    if outcome.returncode in (-9, -24) or outcome.cpu_seconds > CPU_LIMIT:
        problems.append(f"killed at the CPU limit ({outcome.cpu_seconds:.1f} s)")
    if outcome.max_rss_mb > RSS_LIMIT_MB:
        problems.append(f"used {outcome.max_rss_mb:.0f} MB of memory (limit {RSS_LIMIT_MB})")
    if case.get("inert") and _controls(out + err):
        problems.append(f"control characters reached the output: {_controls(out + err)}")
    if "not_in_stderr" in case and case["not_in_stderr"] in err:
        problems.append(f"stderr says {case['not_in_stderr']!r}")
    if case.get("playbook_loads"):
        try:
            yaml.load(out, Loader=_PlaybookLoader)
        except yaml.YAMLError as exc:
            problems.append(f"the playbook does not load: {' '.join(str(exc).split())[:200]}")
    return problems


# --- the tests ------------------------------------------------------------------

def test_the_corpus_is_large_and_covers_every_kind_of_input():
    ids = [c["id"] for c in ALL_CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    assert len(ids) >= 60
    kinds = {i.split("-")[0] for i in ids}
    assert kinds == {"facts", "plan", "render", "playbook", "inventory", "root", "cli", "policy"}
    # what the promise names, each present
    for wanted in ("facts-truncated", "facts-wrong-type-count", "facts-unknown-schema-version",
                   "facts-not-utf8", "facts-empty-file", "facts-huge-sparse-file",
                   "facts-host-without-name", "facts-duplicate-host",
                   "inventory-missing", "inventory-invalid-yaml", "inventory-invalid-ini",
                   "inventory-without-hosts", "inventory-limit-matches-nothing",
                   "root-binary-proc-cgroups", "root-binary-os-release",
                   "root-fifo-in-place-of-proc-cgroups", "root-dangling-symlink-proc-cmdline",
                   "root-1gb-sparse-default-grub", "root-symlink-loop-in-the-cgroup-tree",
                   "cli-unknown-verb", "cli-unknown-option", "cli-missing-value",
                   "cli-bad-format", "cli-bad-batches-zero", "cli-conflicting-sources",
                   "policy-empty", "policy-non-utf8", "policy-yaml-syntax-error"):
        assert wanted in ids, wanted


def _readme_exit_codes() -> dict[str, dict[int, str]]:
    """The README's exit-code table: command -> {code: meaning}."""
    table: dict[str, dict[int, str]] = {}
    text = (REPO / "README.md").read_text()
    for line in text.splitlines():
        match = re.match(r"^\| `(?P<cmd>[a-z ]+)` \|(?P<cells>.*)\|$", line)
        if match:
            cells = [c.strip() for c in match["cells"].split("|")]
            table[match["cmd"]] = {code: cell for code, cell in enumerate(cells)
                                   if cell and cell != "\u2013"}  # an en dash: none
    return table


def test_every_expected_exit_code_is_the_documented_one():
    table = _readme_exit_codes()
    assert set(table) >= {"detect", "plan", "render", "apply", "rollback", "policy validate"}
    for case in ALL_CASES:
        argv = case["argv"]
        verb = " ".join(argv[:2]) if argv[:1] == ["policy"] and len(argv) > 1 else (
            argv[0] if argv else "")
        if verb in table:
            meaning = table[verb].get(case["exit"])
            assert meaning, f"{case['id']}: exit {case['exit']} is not documented for {verb}"
            if "says" in case:  # an error: bad usage or bad input, never "internal error"
                assert "usage" in meaning or "input" in meaning or "invalid" in meaning, (
                    case["id"], meaning)
        else:
            # no verb, an unknown verb or `policy` alone: the top-level usage error
            assert case["exit"] == 2 and "2 bad usage" in " ".join(cli.EPILOG.split())


def test_every_case_through_the_real_command_line(tmp_path):
    """One process per case, four at a time; every failing case is reported at once."""
    workdirs = {case["id"]: tmp_path / case["id"] for case in ALL_CASES}
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(lambda c: run_case(c, workdirs[c["id"]]), ALL_CASES))
    failures = {}
    for outcome in outcomes:
        problems = problems_of(outcome)
        if problems:
            failures[outcome.case["id"]] = (problems, outcome.returncode, outcome.stderr[-600:])
    assert not failures, "\n".join(f"{k}: {v}" for k, v in failures.items())


def test_one_bad_host_among_good_ones_leaves_the_good_ones_planned(tmp_path):
    run = _memcg_fix(["plan", "--facts", str(BAD / "facts" / "mixed-one-bad-host.json"),
                      "--format", "json", "--explain"], tmp_path)
    assert run.returncode == 2, run.stderr
    plan = json.loads(run.stdout)
    status = {h["host"]: h for h in plan["hosts"]}
    assert status["web1.example.com"]["status"] == "planned"
    assert status["db1.example.com"]["status"] == "planned"
    assert [m["id"] for m in status["web1.example.com"]["mitigations"]] == ["pam-lastlog"]
    broken = status["broken.example.com"]
    assert broken["status"] == "undecided" and broken["mitigations"] == []
    assert broken["reason"].startswith("unreachable: ssh: connect to host 192.0.2.7")
    # the host whose sections could not be read: nothing is planned on guesses,
    # and each unreadable section is listed with its reason
    garbage = status["garbage.example.com"]
    assert garbage["status"] == "undecided" and garbage["mitigations"] == []
    reasons = {u["fact"]: u["reason"] for u in garbage["unknown"]}
    assert reasons["kernel.family"] == "/proc/sys/kernel/osrelease holds binary data, not text"
    assert reasons["cgroup.memory_controller"] == "/proc/self/mountinfo is not a regular file"
    assert reasons["memcg.dying"] == "/proc/cgroups is larger than 16 MiB"
    assert run.stderr.strip().startswith(
        "memcg-fix: 2 host(s) undecided: broken.example.com: unreachable: ssh: connect")
    # the good hosts' decisions are exactly those of a fleet without the bad ones
    alone = _memcg_fix(["plan", "--facts", str(BAD / "facts" / "good-fleet.json"),
                        "--format", "json"], tmp_path)
    good = {h["host"]: h["mitigations"] for h in json.loads(alone.stdout)["hosts"]}
    assert {h: status[h]["mitigations"] for h in good} == good


def test_the_markdown_of_a_damaged_root_says_unknown_because(tmp_path):
    root = tmp_path / "root"
    build_root(root)
    damage(root, "binary", "proc/cgroups")
    damage(root, "fifo", "etc/pam.d/postlogin-ac")
    run = _memcg_fix(["plan", "--root", str(root), "--format", "markdown", "--explain"], tmp_path)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    text = run.stdout
    assert "memcg" in text and "holds binary data, not text" in text
    assert "none of /etc/pam.d/postlogin, /etc/pam.d/login, /etc/pam.d/sshd is readable" in text
    # what could be read still decided: the EL7 host without nokmem gets it
    assert "nokmem" in text
