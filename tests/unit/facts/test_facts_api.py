"""remediate.facts: derived facts, facts files (schema), Ansible results."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from remediate.errors import ExitCode, InputError
from remediate.facts import (
    HostFacts,
    collect_local,
    collect_root,
    document,
    from_module_result,
    load_facts_files,
)
from remediate.facts.derive import derive, nokmem_supported

REPO = Path(__file__).resolve().parents[3]


def kernel(release: str, version: str | None = None) -> dict[str, Any]:
    from remediate.hostside.kernel import parse_uname

    return parse_uname(release, version)


@pytest.mark.parametrize(
    ("release", "supported"),
    [
        ("3.10.0-1062.1.2.el7.x86_64", False),
        ("3.10.0-1062.4.1.el7.x86_64", True),
        ("3.10.0-1062.4.3.el7.x86_64", True),
        ("3.10.0-957.27.2.el7.x86_64", False),
        ("3.10.0-1160.24.1.el7.x86_64", True),
        ("3.10.0-1160.rt56.1131.el7.x86_64", True),
        ("2.6.32-754.el6.x86_64", False),
        ("4.4.0-21-generic", False),
        ("4.6.0-1-amd64", True),
        ("4.18.0-305.el8.x86_64", True),
        ("4.14.35-2047.510.5.el7uek.x86_64", True),
        ("6.18.44-fc-v657", True),
    ],
)
def test_nokmem_supported(release: str, supported: bool) -> None:
    assert nokmem_supported(kernel(release))[0] is supported


def test_nokmem_supported_unknown_kernel() -> None:
    assert nokmem_supported(None) == (None, "the running kernel is unknown")
    assert nokmem_supported(kernel("garbage"))[0] is None


def test_derive_adds_keys_and_unknowns_without_touching_the_input() -> None:
    raw = {"kernel": kernel("3.10.0-1160.el7.x86_64"), "cmdline": {"nokmem": True},
           "kmem": {"accounting_active": False}}
    facts, unknown = derive(raw, [])
    assert facts["kernel"]["nokmem_supported"] is True
    assert facts["kmem"]["nokmem_honoured"] is True
    assert unknown == []
    assert "nokmem_supported" not in raw["kernel"]
    facts, unknown = derive({"kernel": None, "cmdline": None}, [])
    assert {u["fact"] for u in unknown} == {"kernel.nokmem_supported", "kmem.nokmem_honoured"}


def test_derive_nokmem_on_an_old_el7_kernel_is_not_honoured() -> None:
    facts, _ = derive({"kernel": kernel("3.10.0-957.el7.x86_64"), "cmdline": {"nokmem": True},
                       "kmem": {}}, [])
    assert facts["kmem"]["nokmem_honoured"] is False


def test_collect_root_rejects_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(InputError) as info:
        collect_root(tmp_path / "f")
    assert info.value.exit_code == ExitCode.INVALID


def test_collect_local_is_a_valid_document(tmp_path: Path) -> None:
    host = collect_local("me")
    assert host.host == "me" and host.error is None
    assert host.get("kernel.release")
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(document([host], "0.1.0")))
    [loaded] = load_facts_files([path])
    assert loaded.facts == json.loads(json.dumps(host.facts))
    assert loaded.unknown == host.unknown


# -- facts files ------------------------------------------------------------------------

def write(tmp_path: Path, name: str, doc: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return path


def minimal_host(name: str) -> dict[str, Any]:
    return {"host": name, "facts": {"kernel": {"release": "3.10.0-1160.el7.x86_64",
                                                "family": "rhel", "el_tag": "el7",
                                                "upstream_version": "3.10.0",
                                                "package_version": "3.10.0-1160.el7"},
                                     "memcg": {"live": 10, "total": 20, "dying": 10}},
            "unknown": [{"fact": "runc.version", "reason": "runc is not installed"}]}


def test_load_derives_missing_facts(tmp_path: Path) -> None:
    path = write(tmp_path, "a.json", {"schema_version": 1, "hosts": [minimal_host("a")]})
    [host] = load_facts_files([path])
    assert host.get("kernel.nokmem_supported") is True
    assert host.unknown_reason("runc.version") == "runc is not installed"


def test_load_accepts_a_single_host_entry(tmp_path: Path) -> None:
    path = write(tmp_path, "one.json", minimal_host("solo"))
    assert [h.host for h in load_facts_files([path])] == ["solo"]


def test_load_keeps_failed_hosts(tmp_path: Path) -> None:
    doc = {"schema_version": 1, "hosts": [{"host": "down", "facts": {}, "unknown": [],
                                           "error": "unreachable: ssh timed out"}]}
    [host] = load_facts_files([write(tmp_path, "d.json", doc)])
    assert host.error == "unreachable: ssh timed out"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("{not json", "not JSON (Expecting property name"),
        ([1, 2], "a facts document must be a JSON object"),
        ({"schema_version": 2, "hosts": []}, "schema_version 2 is not supported"),
        ({"hosts": []}, "$.schema_version: expected 1, got None"),
        ({"schema_version": 1, "hosts": [{"facts": {}}]}, "$.hosts[0]: 'host' is a required"),
        ({"schema_version": 1, "hosts": [{"host": "x", "facts": {"memcg": {"dying": -3}}}]},
         "$.hosts[0].facts.memcg.dying: -3 is less than the minimum of 0"),
        ({"schema_version": 1, "hosts": [{"host": "x", "facts": {"cgroup": {"mode": "v3"}}}]},
         "$.hosts[0].facts.cgroup.mode: 'v3' is not one of"),
        ({"schema_version": 1, "hosts": [{"host": "x", "facts": {}, "unknown": [{"fact": 1}]}]},
         "$.hosts[0].unknown[0]"),
    ],
)
def test_bad_facts_files_name_file_and_json_path(tmp_path: Path, doc: Any, message: str) -> None:
    path = write(tmp_path, "bad.json", doc)
    with pytest.raises(InputError) as info:
        load_facts_files([path])
    text = info.value.message
    assert text.startswith(str(path) + ": ")
    assert message in text
    assert "\n" not in text and info.value.exit_code == ExitCode.INVALID


def test_missing_file_and_duplicate_hosts(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such facts file"):
        load_facts_files([tmp_path / "missing.json"])
    a = write(tmp_path, "a.json", minimal_host("same"))
    b = write(tmp_path, "b.json", minimal_host("same"))
    with pytest.raises(InputError, match="host 'same' is also in"):
        load_facts_files([a, b])


def test_project_facts_files_validate() -> None:
    """The facts files other tests use must follow the contract too."""
    good = [p for p in (REPO / "tests/data/facts").glob("*.json")
            if p.name not in ("broken.json", "not-a-document.json")]
    for path in good:
        assert load_facts_files([path])


def test_loading_ten_thousand_hosts_is_fast(tmp_path: Path) -> None:
    host = collect_local("template").to_json()
    hosts = []
    for i in range(10_000):
        entry = dict(host)
        entry["host"] = f"web{i:05d}"
        hosts.append(entry)
    path = write(tmp_path, "fleet.json", {"schema_version": 1, "hosts": hosts})
    # CPU time: other work on a shared test host must not fail this test
    started = time.process_time()
    loaded = load_facts_files([path])
    elapsed = time.process_time() - started
    assert len(loaded) == 10_000
    assert loaded[-1].get("memcg.dying") == host["facts"]["memcg"]["dying"]
    assert elapsed < 2.0, f"loading 10,000 hosts took {elapsed:.2f}s of CPU"


# -- Ansible results --------------------------------------------------------------------------

def test_from_module_result_ok_failed_unreachable() -> None:
    ok = from_module_result("web1", {"changed": False, "schema_version": 1,
                                     "facts": {"kernel": kernel("6.1.0-18-amd64")},
                                     "unknown": [{"fact": "pam", "reason": "none"}]})
    assert ok.error is None and ok.get("kernel.family") == "debian"
    assert ok.get("kernel.nokmem_supported") is True
    assert ok.unknown_reason("pam") == "none"
    failed = from_module_result("web2", {"failed": True, "msg": "boom\nline two"})
    assert failed.error == "memcg_facts failed: boom line two" and failed.facts == {}
    down = from_module_result("web3", {"unreachable": True, "msg": "ssh: timeout"})
    assert down.error == "unreachable: ssh: timeout"
    empty = from_module_result("web4", {"changed": False})
    assert empty.error and "no facts" in empty.error
    assert isinstance(from_module_result("web5", None), HostFacts)  # type: ignore[arg-type]


def test_results_of_both_gather_actions_are_checked_against_the_facts_schema() -> None:
    """A host's facts from Ansible pass the schema a facts file must pass,
    whichever action brought them (``--via module`` or ``raw``)."""
    bad = {"changed": False, "schema_version": 1, "facts": {"memcg": {"dying": "many"}},
           "unknown": []}
    for action in ("memcg_facts", "memcg_facts_raw"):
        host = from_module_result("web1", bad, action=action)
        assert host.facts == {}
        assert host.error == (f"{action} returned facts that break the facts schema: "
                              "$.facts.memcg.dying: 'many' is not of type 'integer', 'null'")
    good = from_module_result("web1", {**bad, "facts": {"memcg": {"dying": 3}}},
                              action="memcg_facts_raw")
    assert good.error is None and good.get("memcg.dying") == 3
    failed = from_module_result("web2", {"failed": True, "msg": "no Python"},
                                action="memcg_facts_raw")
    assert failed.error == "memcg_facts_raw failed: no Python"
