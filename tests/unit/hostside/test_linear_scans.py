"""Every scan of host text is linear, and expansions stay within their budget.

Host files and kernel logs are written by whoever controls the host (a log
line by anyone who can run logger(1)). Two kinds of checks:

* the adversarial shapes of tests/hostile_text.py (one long line of a
  repeated token, a prefix repeated without its ending, many unique keys,
  self-referencing variables), 1 MiB each, through every host-side scanner
  in one child process under a CPU-time and an address-space limit. Linear
  scanners need about 3 s of CPU for all of them (their constants are in
  docs/benchmarks.md, S1); the quadratic ones they replaced needed minutes
  for a single shape (the 1 MiB mkdir line alone: about 500 s), so the limit
  tells the two apart with a wide margin on a loaded machine, and is not a
  timing assertion;
* properties: the linear kernel-log scanner finds exactly what the obvious
  line-by-line regex scanner (an oracle written here, quadratic on hostile
  input) finds, on generated logs.
"""

from __future__ import annotations

import json
import re
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remediate.hostside import boot, kernel_log
from remediate.hostside.collect import collect
from remediate.hostside.reader import RootReader
from tests.hostile_text import SCANNERS

REPO = Path(__file__).resolve().parents[3]
SHAPE_SIZE = 1 << 20
CPU_SECONDS = 60
ADDRESS_SPACE = 2 << 30


def _limits() -> None:  # runs in the child, before it starts Python
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


CHILD = textwrap.dedent(f"""
    import json, sys, time
    from tests.hostile_text import SCANNERS
    for scanner in SCANNERS:
        for shape in scanner.shapes:
            text = shape.make({SHAPE_SIZE})
            print(json.dumps([scanner.name, shape.name]), flush=True)
            started = time.process_time()
            scanner.scan(text)
            print(json.dumps([scanner.name, shape.name, time.process_time() - started]),
                  flush=True)
""")


def test_every_scanner_is_linear_on_every_adversarial_shape() -> None:
    proc = subprocess.run([sys.executable, "-c", CHILD], cwd=REPO, capture_output=True,
                          text=True, preexec_fn=_limits, timeout=30 * CPU_SECONDS, check=False)
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    unfinished = [row for row in rows[-1:] if len(row) == 2]
    assert proc.returncode == 0 and not unfinished, (
        f"exit {proc.returncode}; did not finish within {CPU_SECONDS} s of CPU or "
        f"{ADDRESS_SPACE >> 30} GiB: {unfinished}; {proc.stderr[-500:]}")
    done = {(row[0], row[1]) for row in rows if len(row) == 3}
    assert done == {(sc.name, sh.name) for sc in SCANNERS for sh in sc.shapes}


# --- the kernel-log scanner against an oracle ------------------------------------------------

_MKDIR_ORACLE = re.compile(
    r"(?i)(mkdir|create|creating|failed to create)\b.*cgroup|cgroup.*\bmkdir")
_ERRNO_ORACLE = re.compile(r"(?i)no space left on device|cannot allocate memory|ENOSPC|ENOMEM")


def _oracle(text: str) -> dict[str, object]:
    """The scan as one would first write it: every line, every regex, lists."""
    counts = dict.fromkeys(kernel_log.SIGNATURES, 0)
    last: dict[str, str | None] = dict.fromkeys(kernel_log.SIGNATURES)
    caches: list[str] = []
    memcgs: list[str] = []
    for line in text.split("\n"):
        if "SLUB: Unable to allocate memory on node" in line:
            counts["slub_alloc_failure"] += 1
            last["slub_alloc_failure"] = line
            continue
        match = re.search(
            r"Objects remaining in (\S+) on (?:__)?kmem_cache_(?:close|shutdown)\(\)", line)
        if match:
            counts["kmem_cache_close"] += 1
            last["kmem_cache_close"] = line
            if match.group(1) not in caches:
                caches.append(match.group(1))
            continue
        if "oom_memcg=" in line or "as a result of limit of" in line:
            memcg = (re.search(r"oom_memcg=([^,\s]+)", line)
                     or re.search(r"killed as a result of limit of (\S+)", line))
            if memcg and memcg.group(1) not in memcgs:
                memcgs.append(memcg.group(1))
            continue
        if re.search(r"Memory cgroup out of memory: Kill(?:ed)? process", line):
            counts["memcg_oom"] += 1
            last["memcg_oom"] = line
            continue
        if "cgroup" in line and _ERRNO_ORACLE.search(line) and _MKDIR_ORACLE.search(line):
            counts["cgroup_mkdir_failure"] += 1
            last["cgroup_mkdir_failure"] = line
    return {"counts": counts, "last": last, "caches": caches[-50:], "memcgs": memcgs[-50:]}


def _clip(line: str | None) -> str | None:
    if line is None:
        return None
    line = line.strip()
    return line if len(line) <= 500 else line[:500] + "..."


FRAGMENTS = [
    "SLUB: Unable to allocate memory on node -1", "SLUB", "Objects remaining in ",
    " on kmem_cache_close()", " on __kmem_cache_close()", " on __kmem_cache_shutdown()",
    "kmem_cache_shutdown", "kmem_cache_close", "oom_memcg=",
    "/kubepods/a", ",", "killed as a result of limit of ", "Memory cgroup out of memory: ",
    "Killed process 1", "Kill process 2", "cgroup", "CGROUP", "mkdir", "MkDir", "create",
    "creating", "created", "recreate", "failed to create", "ENOSPC", "enomem",
    "no space left on device", "cannot allocate memory", " ", "  ", "x", "_", "\t", "é",
    "\u0130",  # İ: lower() makes it two characters
]
log_lines = st.lists(st.sampled_from(FRAGMENTS), max_size=10).map("".join)
logs = st.lists(log_lines, max_size=30).map("\n".join)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=logs)
def test_the_linear_scan_finds_what_the_obvious_scan_finds(text: str) -> None:
    got = kernel_log.scan_kernel_log(text)
    want = _oracle(text)
    for name in kernel_log.SIGNATURES:
        assert got[name]["count"] == want["counts"][name], name  # type: ignore[index]
        assert got[name]["last"] == _clip(want["last"][name]), name  # type: ignore[index]
    assert got["kmem_cache_close"]["caches"] == want["caches"]
    assert got["memcg_oom"]["memcgs"] == want["memcgs"]


def test_the_scan_keeps_the_last_fifty_of_many_unique_names() -> None:
    text = "".join(f"oom-kill:oom_memcg=/pod{i},task=x\nBUG: Objects remaining in c{i} on "
                   f"kmem_cache_close()\n" for i in range(100_000))
    got = kernel_log.scan_kernel_log(text)
    assert got["memcg_oom"]["memcgs"] == [f"/pod{i}" for i in range(99_950, 100_000)]
    assert got["kmem_cache_close"]["caches"] == [f"c{i}" for i in range(99_950, 100_000)]
    assert got["kmem_cache_close"]["count"] == 100_000


# --- expansion budgets ------------------------------------------------------------------------

def test_a_self_doubling_grub_variable_is_stopped_at_the_budget() -> None:
    text = 'A="x"\n' + 'A="$A$A"\n' * 40  # 2**40 characters if nothing stopped it
    try:
        boot.parse_default_grub(text)
    except boot.ExpansionError as exc:
        assert "substituting $A goes past 4194304 characters" in str(exc)
    else:
        raise AssertionError("no ExpansionError")
    # below the budget, the same doubling is expanded as the shell would
    env = boot.parse_default_grub('A="x"\n' + 'A="$A$A"\n' * 10)
    assert env["A"] == "x" * 1024


def test_the_budget_spans_a_file_and_its_dropins() -> None:
    budget = boot.ExpansionBudget(limit=100)
    env = boot.parse_default_grub('A="' + "a" * 60 + '"\nB="$A"\n', None, budget)
    try:
        boot.parse_default_grub('C="$A"\n', env, budget, "/etc/default/grub.d/x.cfg")
    except boot.ExpansionError as exc:
        assert str(exc).startswith("/etc/default/grub.d/x.cfg: substituting $A goes past 100")
    else:
        raise AssertionError("no ExpansionError")


def _root(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def _unknown(result: dict[str, object]) -> dict[str, str]:
    return {u["fact"]: u["reason"] for u in result["unknown"]}  # type: ignore[attr-defined,index]


def test_the_collector_makes_a_grub_bomb_unknown(tmp_path: Path) -> None:
    root = _root(tmp_path, {"etc/default/grub": 'A="x"\n' + 'A="$A$A"\n' * 40})
    result = collect(RootReader(str(root)))
    assert result["facts"]["boot"]["default_grub"] is None
    assert "substituting $A goes past" in _unknown(result)["boot.default_grub"]


def test_the_collector_makes_bls_entries_past_the_budget_unknown(tmp_path: Path) -> None:
    grubenv = "# GRUB Environment Block\nkernelopts=" + "ro " * (1 << 20) + "\n"
    entry = "title T\nversion 4.18.0\nlinux /vmlinuz-4.18.0\noptions " + "$kernelopts " * 8
    files = {"boot/grub2/grubenv": grubenv, "boot/loader/entries/a.conf": entry,
             # a grub.cfg that would name other entries: not believed instead
             "boot/grub2/grub.cfg": "menuentry 'x' {\n linux /vmlinuz-5.1 ro\n}\n"}
    result = collect(RootReader(str(_root(tmp_path, files))))
    boot_facts = result["facts"]["boot"]
    assert boot_facts["entries"] == [] and boot_facts["nokmem_all_entries"] is None
    reason = _unknown(result)["boot.nokmem_all_entries"]
    assert reason.startswith("the boot entries cannot be read: /boot/loader/entries/a.conf: "
                             "substituting $kernelopts goes past"), reason
