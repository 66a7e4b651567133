"""Run ansible-playbook against test targets and read its PLAY RECAP.

The ansible-playbook next to the running interpreter is used, so the
ansible-core 2.16 tier (its own venv) drives the targets with 2.16.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from remediate.resources import collections_path

RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
    r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)"
    r"(?:\s+skipped=(?P<skipped>\d+))?(?:\s+rescued=(?P<rescued>\d+))?"
    r"(?:\s+ignored=(?P<ignored>\d+))?", re.M)


@dataclass
class PlaybookResult:
    returncode: int
    output: str
    stats: dict[str, dict[str, int]] = field(default_factory=dict)

    def changed(self, host: str | None = None) -> int:
        hosts = [host] if host else list(self.stats)
        return sum(self.stats[h]["changed"] for h in hosts)

    def failed(self) -> int:
        return sum(s["failed"] + s["unreachable"] for s in self.stats.values())

    def describe(self) -> str:
        return f"exit {self.returncode}; recap {self.stats}\n{self.output[-6000:]}"


def ansible_bin(name: str) -> str:
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


def ansible_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    cache = Path(os.environ.get("MEMCG_FIX_CACHE", "/var/cache/memcg-fix-dev"))
    # the project's collection (role and modules) first, then the cached
    # third-party ones (containers.podman, ansible.posix)
    third_party = env.get("ANSIBLE_COLLECTIONS_PATH") or str(cache / "collections")
    env["ANSIBLE_COLLECTIONS_PATH"] = os.pathsep.join((str(collections_path()), third_party))
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env.update({
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_STDOUT_CALLBACK": "default",
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
    })
    env.update(extra or {})
    return env


def run_playbook(playbook: Path | str, inventory: Path | str, *, check: bool = False,
                 diff: bool = False, extra_args: list[str] | None = None,
                 timeout: float = 1800, env: dict[str, str] | None = None) -> PlaybookResult:
    argv = [ansible_bin("ansible-playbook"), "-i", str(inventory), str(playbook)]
    if check:
        argv.append("--check")
    if diff:
        argv.append("--diff")
    argv += extra_args or []
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=timeout, env=ansible_env(env),
                          check=False)
    output = proc.stdout.decode(errors="replace")
    stats = {}
    for match in RECAP.finditer(output):
        stats[match.group("host")] = {k: int(v or 0) for k, v in match.groupdict().items()
                                      if k != "host"}
    return PlaybookResult(proc.returncode, output, stats)
