"""`memcg-fix plan` and `memcg-fix policy` through the real command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from casefiles import case_files, host_entry, load_case
from jsonschema import Draft202012Validator

from remediate import catalogue, cli
from remediate.schemas import plan_schema

REPO = Path(__file__).resolve().parents[3]
FACTS = REPO / "tests" / "data" / "facts"


def memcg_fix(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "remediate", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def write_facts(path: Path, entries: list[dict]) -> Path:
    path.write_text(
        json.dumps({"schema_version": 1, "memcg_fix_version": "0.1.0", "hosts": entries}),
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def fleet_file(tmp_path_factory) -> Path:
    """Every policy case as one host of one facts document, as detect would write it."""
    entries = [host_entry(load_case(p)) for p in case_files()]
    return write_facts(tmp_path_factory.mktemp("facts") / "fleet.json", entries)


def test_every_case_decides_the_same_through_the_command_line(fleet_file):
    run = memcg_fix("plan", "--facts", str(fleet_file), "--format", "json", "--explain")
    assert run.returncode == 2, run.stderr
    doc = json.loads(run.stdout)
    Draft202012Validator(plan_schema()).validate(doc)
    by_host = {h["host"]: h for h in doc["hosts"]}
    for path in case_files():
        case = load_case(path)
        entry = by_host[host_entry(case)["host"]]
        expect = case["expect"]
        assert entry["status"] == expect["status"], path.name
        assert [m["id"] for m in entry["mitigations"]] == expect["mitigations"], path.name
        fired = sorted(r["rule"] for r in entry["rules"] if r["result"] == "fired")
        assert fired == sorted(expect["fired"]), path.name
    # undecided hosts are named on stderr, with the reason; stdout stays pure JSON
    undecided = sorted(h["host"] for h in doc["hosts"] if h["status"] == "undecided")
    assert "web9" in undecided
    line = next(x for x in run.stderr.splitlines() if " undecided: " in x)
    assert line.startswith(f"memcg-fix: {len(undecided)} host(s) undecided: ")
    named = undecided[:5]  # the first five by name; the rest are counted
    assert all(f"{host}: " in line for host in named)
    assert line.endswith(f"; and {len(undecided) - 5} more") == (len(undecided) > 5)
    assert "need attention: debian12-mkdir-enospc: critical finding(s)" in run.stderr


def test_exit_codes(tmp_path, fleet_file):
    cases = {load_case(p)["host"]: host_entry(load_case(p)) for p in case_files()}
    quiet = write_facts(tmp_path / "quiet.json", [cases["el7-1160-done"], cases["debian12-quiet"]])
    findings_only = write_facts(tmp_path / "findings.json", [cases["cpe"]])
    planned = write_facts(
        tmp_path / "planned.json", [cases["el7-1160-done"], cases["el7-old-runc"]]
    )
    unknown_only = write_facts(tmp_path / "unknown.json", [cases["web9"]])
    critical = write_facts(tmp_path / "critical.json", [cases["debian12-mkdir-enospc"]])
    assert memcg_fix("plan", "--facts", str(quiet)).returncode == 0
    assert memcg_fix("plan", "--facts", str(findings_only)).returncode == 0
    assert memcg_fix("plan", "--facts", str(planned)).returncode == 2
    # nothing planned, but a host could not be read / has a critical finding: 4
    assert memcg_fix("plan", "--facts", str(unknown_only)).returncode == 4
    assert memcg_fix("plan", "--facts", str(critical)).returncode == 4
    # mitigations planned anywhere: 2, whatever the other hosts are
    assert memcg_fix("plan", "--facts", str(planned), str(unknown_only)).returncode == 2
    # several files are one fleet
    run = memcg_fix("plan", "--facts", str(quiet), str(planned), "--format", "json")
    assert run.returncode == 3
    assert "host 'el7-1160-done' is also in" in run.stderr
    run = memcg_fix("plan", "--facts", str(quiet), str(findings_only), "--format", "json")
    assert run.returncode == 0
    assert len(json.loads(run.stdout)["hosts"]) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "one of the arguments --local --root --facts -i/--inventory is required"),
        (["--facts"], "expected at least one argument"),
        (["--local", "--facts", "x.json"], "not allowed with argument"),
        (["--facts", "x.json", "--format", "yaml"], "invalid choice: 'yaml'"),
        (["--facts", "x.json", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_bad_usage_of_plan_exits_3(args, message, capsys):
    assert cli.main(["plan", *args]) == 3
    err = capsys.readouterr().err
    assert err.startswith("memcg-fix: plan: ") and message in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("broken.json", "broken.json"),
        ("not-a-document.json", "not-a-document.json"),
        ("missing.json", "missing.json"),
    ],
)
def test_bad_facts_files_exit_3(name, message):
    run = memcg_fix("plan", "--facts", str(FACTS / name))
    assert run.returncode == 3
    assert message in run.stderr and "Traceback" not in run.stderr
    assert run.stdout == ""


def test_policy_option_replaces_the_default(tmp_path, fleet_file):
    policy = tmp_path / "only-runc.yaml"
    policy.write_text(
        'id: site\nversion: "7"\ndescription: only runc\nrules:\n'
        "  - id: old-runc\n    description: Old runc.\n    when: {runc: {lt: 1.0.0-rc94}}\n"
        "    mitigations: [{id: runc-upgrade, params: {min_version: 1.1.12}}]\n",
        encoding="utf-8",
    )
    run = memcg_fix("plan", "--facts", str(fleet_file), "--policy", str(policy), "--format", "json")
    assert run.returncode == 2
    doc = json.loads(run.stdout)
    assert doc["policy"]["id"] == "site" and doc["policy"]["version"] == "7"
    planned = {h["host"]: h["mitigations"] for h in doc["hosts"] if h["mitigations"]}
    # every case host with a runc older than 1.0.0-rc94, whatever its kernel
    assert set(planned) == {"el7-old-runc", "el7-everything", "debian12-old-runc",
                            "el7-rc10-nokmem", "el7-957-rc10", "rhel8-v1-rc10", "amzn2-414",
                            "amzn2-510", "ol7-uek5", "sles12sp5", "sles15sp5",
                            "ubuntu2004-kmem"}
    assert planned["el7-old-runc"][0]["params"] == {"min_version": "1.1.12", "package": "runc"}


def test_same_input_same_bytes(fleet_file):
    outputs = {
        memcg_fix("plan", "--facts", str(fleet_file), "--format", fmt, "--explain").stdout
        for fmt in ("markdown",)
        for _ in range(2)
    }
    assert len(outputs) == 1


def test_help_documents_exit_codes_and_examples():
    for args in (
        ["plan", "--help"],
        ["policy", "--help"],
        ["policy", "validate", "--help"],
        ["policy", "catalogue", "--help"],
    ):
        run = memcg_fix(*args)
        assert run.returncode == 0, args
        assert "example" in run.stdout, args
        assert "exit codes" in run.stdout or args[-2:] == ["catalogue", "--help"], args
    plan_help = memcg_fix("plan", "--help").stdout
    for line in (
        "0  every host was decided and needs nothing",
        "2  mitigations planned",
        "4  nothing planned, but at least one host is undecided",
        "3  invalid policy or input",
        "1  internal error",
    ):
        assert line in plan_help


def test_catalogue_command_lists_the_catalogue():
    run = memcg_fix("policy", "catalogue", "--format", "json")
    assert run.returncode == 0
    rows = json.loads(run.stdout)
    assert [r["id"] for r in rows] == list(catalogue.ORDER)
    table = memcg_fix("policy", "catalogue").stdout
    assert "grace_seconds (integer, default 300)" in table


def test_validate_accepts_the_shipped_policy():
    run = memcg_fix("policy", "validate", str(REPO / "policies" / "default.yaml"))
    assert run.returncode == 0
    assert run.stdout.endswith("ok (policy default 1.0.0, 15 rules)\n")


def test_plan_local_reads_this_machine():
    run = memcg_fix("plan", "--local", "--format", "json", "--explain")
    assert run.returncode in (0, 2, 4), run.stderr
    doc = json.loads(run.stdout)
    Draft202012Validator(plan_schema()).validate(doc)
    (host,) = doc["hosts"]
    assert host["status"] in ("planned", "attention", "undecided", "nothing-to-do")
    assert len(host["rules"]) == 15
    assert (run.returncode == 2) == bool(host["mitigations"])


def test_plan_root_of_an_empty_tree_is_undecided_and_says_what_it_could_not_read(tmp_path):
    run = memcg_fix("plan", "--root", str(tmp_path), "--format", "json")
    assert run.returncode == 4, run.stderr
    (host,) = json.loads(run.stdout)["hosts"]
    assert host["status"] == "undecided" and host["mitigations"] == []
    assert host["reason"].startswith("no rule could be evaluated: ")
    assert {u["fact"] for u in host["unknown"]} >= {"cgroup.memory_controller"}
    missing = memcg_fix("plan", "--root", str(tmp_path / "nope"))
    assert missing.returncode == 3 and "is not a directory" in missing.stderr


@pytest.mark.slow
def test_a_plan_for_10000_hosts_completes(tmp_path):
    """The benchmark's generated fleet, planned once (bench/bench_plan.py measures it)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_plan", REPO / "bench" / "bench_plan.py")
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    facts = tmp_path / "fleet-10000.json"
    facts.write_text(json.dumps(bench.generate(10_000)), encoding="utf-8")
    run = memcg_fix("plan", "--facts", str(facts), "--format", "json")
    assert run.returncode == 2, run.stderr[-500:]
    doc = json.loads(run.stdout)
    assert doc["summary"]["hosts"] == 10_000
    assert doc["summary"]["planned"] > 1000 and doc["summary"]["undecided"] > 0
