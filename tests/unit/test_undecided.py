"""No silent "nothing to do": each silent pass of issue 13, through the real CLI.

Every test runs ``python -m remediate`` as a user would and checks the exit
code, the host's status and the reason, in the JSON, the table, the Markdown
and the rendered playbook's header. On memcg-fix before "undecided" each of
them exited 0: an el7 root whose kmem state cannot be read was "nothing to
do", an empty directory was "1 nothing to do, 0 unknown" (and ``detect`` on
it exited 0), a fleet of unreachable hosts exited 0, and a critical finding
without a mitigation exited 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from remediate import cli

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "tests" / "data" / "samples"
UNREACHABLE = REPO / "tests" / "data" / "bad" / "inventories" / "unreachable.ini"


def memcg_fix(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``memcg-fix ARGS`` in its own process (stdout, stderr and exit code as a user sees)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))  # this checkout, whatever is installed
    return subprocess.run([sys.executable, "-m", "remediate", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300, check=False)


def memcg_fix_here(capsys: pytest.CaptureFixture[str], *args: str
                   ) -> subprocess.CompletedProcess[str]:
    """The same entry point (``remediate.cli.main``) in this process: no interpreter start."""
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, captured.out, captured.err)


def put(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def plan_everywhere(capsys: pytest.CaptureFixture[str], root_args: list[str],
                    tmp_path: Path) -> dict[str, Any]:
    """The plan as JSON (its own process), table, Markdown and rendered playbook."""
    runs = {"json": memcg_fix("plan", *root_args, "--format", "json", cwd=tmp_path)}
    runs.update({fmt: memcg_fix_here(capsys, "plan", *root_args, "--format", fmt)
                 for fmt in ("table", "markdown")})
    codes = {run.returncode for run in runs.values()}
    assert len(codes) == 1, {fmt: (r.returncode, r.stderr) for fmt, r in runs.items()}
    (tmp_path / "plan.json").write_text(runs["json"].stdout)
    rendered = memcg_fix_here(capsys, "render", "--plan", str(tmp_path / "plan.json"),
                              "--out", "-")
    assert rendered.returncode == 0, rendered.stderr
    return {"code": codes.pop(), "doc": json.loads(runs["json"].stdout),
            "table": runs["table"].stdout, "markdown": runs["markdown"].stdout,
            "stderr": runs["json"].stderr, "playbook": rendered.stdout}


def el7_root_without_kmem_evidence(root: Path) -> Path:
    """An extracted CentOS 7.6 sosreport (3.10.0-957, below 1062.4.1) whose memory
    cgroups carry no memory.kmem.* files and no slab data: the usual offline case."""
    put(root, "sos_commands/kernel/uname_-a",
        "Linux web7 3.10.0-957.27.2.el7.x86_64 #1 SMP Mon Jul 29 17:46:05 UTC 2019 x86_64 "
        "x86_64 x86_64 GNU/Linux\n")
    put(root, "sos_commands/kernel/dmesg", "[    0.000000] Linux version 3.10.0-957.27.2.el7\n")
    put(root, "etc/os-release", 'NAME="CentOS Linux"\nVERSION="7 (Core)"\nID="centos"\n'
        'ID_LIKE="rhel fedora"\nVERSION_ID="7"\n')
    put(root, "proc/cmdline", (SAMPLES / "cmdline/centos7.txt").read_text())
    put(root, "proc/1/mountinfo", (SAMPLES / "mountinfo/fedora20-v1.txt").read_text())
    put(root, "proc/cgroups", "#subsys_name\thierarchy\tnum_cgroups\tenabled\n"
        "memory\t4\t3\t1\n")
    for rel in ("system.slice", "user.slice"):
        (root / "sys/fs/cgroup/memory" / rel).mkdir(parents=True, exist_ok=True)
    put(root, "etc/hostname", "web7\n")
    return root


def test_el7_root_whose_kmem_state_cannot_be_read_is_undecided(capsys, tmp_path: Path) -> None:
    root = el7_root_without_kmem_evidence(tmp_path / "sosreport-web7")
    out = plan_everywhere(capsys, ["--root", str(root)], tmp_path)
    assert out["code"] == 4, out["stderr"]
    (host,) = out["doc"]["hosts"]
    assert host["status"] == "undecided" and host["mitigations"] == []
    blocked = {b["rule"]: b["facts"] for b in host["blocked"]}
    assert blocked["el7-kmem-leak-old-kernel"] == ["kmem.accounting_active"]
    assert blocked["el7-old-kernel-kmem-off"] == ["kmem.accounting_active"]
    assert "el7-kmem-leak-old-kernel" in host["reason"]
    assert "could not be evaluated: kmem.accounting_active" in host["reason"]
    assert out["doc"]["summary"]["undecided"] == 1
    assert {"fact": "kmem.accounting_active"}.items() <= next(
        u for u in host["unknown"] if u["fact"] == "kmem.accounting_active").items()
    # every human output says it too
    assert "web7  undecided" in out["table"]
    assert "1 undecided" in out["table"]
    assert "Status: **undecided**" in out["markdown"]
    assert "### Not decided" in out["markdown"]
    assert '# host "web7": undecided, because el7-kmem-leak-old-kernel' in out["playbook"]
    assert "1 undecided" in out["playbook"]
    assert "memcg-fix: 1 host(s) undecided: web7: " in out["stderr"]


def test_the_same_root_with_sosreports_slab_listing_is_decided(capsys, tmp_path: Path) -> None:
    # sosreport keeps `ls -lt /sys/kernel/slab`; per-memcg caches there are
    # kmem accounting at work, so the el7 kmem rule can be evaluated and fires
    root = el7_root_without_kmem_evidence(tmp_path / "sosreport-web7")
    put(root, "sos_commands/kernel/ls_-lt_.sys.kernel.slab",
        (SAMPLES / "slab/el7-sos-ls-lt-sys-kernel-slab.txt").read_text())
    run = memcg_fix("plan", "--root", str(root), "--format", "json", cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    (host,) = json.loads(run.stdout)["hosts"]
    assert host["status"] == "planned"
    assert [m["id"] for m in host["mitigations"]][:1] == ["kernel-upgrade"]
    assert "el7-kmem-leak-old-kernel" not in {b["rule"] for b in host.get("blocked", [])}


def test_an_empty_directory_is_undecided_and_detect_refuses_it(capsys, tmp_path: Path) -> None:
    image = tmp_path / "mnt"  # an image directory that was never mounted
    image.mkdir()
    out = plan_everywhere(capsys, ["--root", str(image)], tmp_path)
    assert out["code"] == 4, out["stderr"]
    (host,) = out["doc"]["hosts"]
    assert host["status"] == "undecided"
    assert host["reason"].startswith("no rule could be evaluated: ")
    assert len(host["blocked"]) >= 10
    assert "0 nothing to do" in out["table"] and "1 undecided" in out["table"]
    assert "undecided, because no rule could be evaluated" in out["playbook"]
    detect = memcg_fix_here(capsys, "detect", "--root", str(image))
    assert detect.returncode == 3 and detect.stdout == ""
    assert detect.stderr.startswith("memcg-fix: --root ")
    assert "nothing memcg-fix reads is there" in detect.stderr


def test_a_fleet_where_every_host_is_unreachable_is_undecided(tmp_path: Path) -> None:
    out_dir = tmp_path / "plan"
    run = memcg_fix("plan", "-i", str(UNREACHABLE), "--out", str(out_dir), "--format", "json",
                    cwd=tmp_path)
    assert run.returncode == 4, run.stderr
    doc = json.loads(run.stdout)
    assert [h["status"] for h in doc["hosts"]] == ["undecided", "undecided"]
    for host in doc["hosts"]:
        assert "Connection refused" in host["reason"] and host["error"] == host["reason"]
    assert doc["summary"]["undecided"] == 2
    playbook = (out_dir / "memcg-fix.yml").read_text()
    assert "0 to change, 0 need a reboot, 0 need attention, 2 undecided" in playbook
    assert '# host "web1.example.com": undecided, because ' in playbook
    assert "memcg-fix: 2 host(s) undecided: web1.example.com: " in run.stderr


def test_a_critical_finding_without_a_mitigation_needs_attention(capsys, tmp_path: Path) -> None:
    # a remediated Debian 12 host whose kernel log shows cgroup mkdir failing
    sys.path.insert(0, str(REPO / "tests" / "unit" / "policy"))
    try:
        from casefiles import CASES, host_entry, load_case
    finally:
        sys.path.pop(0)
    entry = host_entry(load_case(CASES / "debian12-mkdir-enospc-attention.yaml"))
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps({"schema_version": 1, "hosts": [entry]}))
    out = plan_everywhere(capsys, ["--facts", str(facts)], tmp_path)
    assert out["code"] == 4, out["stderr"]
    (host,) = out["doc"]["hosts"]
    assert host["status"] == "attention" and host["mitigations"] == []
    assert host["reason"] == (
        "critical finding(s) cgroup-mkdir-failures that no mitigation addresses")
    assert host["findings"][0]["severity"] == "critical"
    assert "1 need attention" in out["table"]
    assert "Status: **attention**" in out["markdown"]
    assert '# host "debian12-mkdir-enospc": attention, because critical finding(s)' in (
        out["playbook"])


@pytest.mark.parametrize("status", ["planned", "nothing-to-do"])
def test_plan_exits_0_only_when_every_host_is_decided_and_needs_nothing(capsys, tmp_path, status):
    sys.path.insert(0, str(REPO / "tests" / "unit" / "policy"))
    try:
        from casefiles import CASES, host_entry, load_case
    finally:
        sys.path.pop(0)
    name = "el7-1160-without-nokmem.yaml" if status == "planned" else "debian12-v2-quiet.yaml"
    entry = host_entry(load_case(CASES / name))
    unreachable = {"host": "gone", "facts": {}, "unknown": [], "error": "unreachable: timed out"}
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps({"schema_version": 1, "hosts": [entry]}))
    alone = memcg_fix_here(capsys, "plan", "--facts", str(facts)).returncode
    facts.write_text(json.dumps({"schema_version": 1, "hosts": [entry, unreachable]}))
    with_gone = memcg_fix_here(capsys, "plan", "--facts", str(facts)).returncode
    # 2 (planned) wins over 4 (undecided); 0 only without the unreachable host
    assert (alone, with_gone) == ((2, 2) if status == "planned" else (0, 4))
