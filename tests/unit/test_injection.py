"""Facts are data, never code: hostile strings are never evaluated, executed or templated.

The corpus is tests/data/injection/strings.txt: Jinja (a ``pipe`` lookup that
would create a marker file), YAML tags and anchors, a newline followed by a
new play or document, shell metacharacters and Markdown/HTML. Each string,
with a marker name unique to the run, goes into every place a host or a
policy can put text: host names, kernel release strings, grub lines, boot
entries, PAM file paths, distro names, kernel log lines, unknown reasons,
host errors (facts files), rule descriptions and finding summaries
(policies), and the names of real memory cgroups on this machine's kernel.

Then ``memcg-fix`` runs for real (``python -m remediate``: policy validate,
plan in every format, render, detect --local) and the tests prove:

* no marker file appears (nothing ran a lookup or a shell);
* the rendered playbook loads back, with memcg-fix's loader and with
  Ansible's own DataLoader, to exactly the plan's data, and Ansible's
  Templar leaves every host string as it is (while it does evaluate the
  playbook's own expressions: the positive control);
* the Markdown report shows each string literally, with no HTML, link,
  code span or extra table cell (rendered by markdown-it-py);
* the source tree loads YAML only through safe loaders and evaluates no code.

On real container targets (grub, PAM and os-release files, inventory host
names, plan -i, apply, rollback) see tests/integration/test_injection_targets.py.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from markdown_it import MarkdownIt

from remediate import render as render_mod
from remediate.facts.model import Unknown
from remediate.hostside import cgroupfs, reclaim
from remediate.plan import HostPlan, Plan, PlannedMitigation, PolicyRef
from remediate.resources import collection_dir, role_dir
from remediate.text import shown
from tests.injection_corpus import injection_strings
from tests.rendered_html import RenderedHtml
from tests.targets.ansible import ansible_bin, ansible_env

REPO = Path(__file__).resolve().parents[2]
BASES = yaml.safe_load((REPO / "policies" / "cases" / "_bases.yaml").read_text())
DEFAULT_POLICY = REPO / "policies" / "default.yaml"
# What the Jinja string "{{ 'memcg-fix-' ~ 'evaluated' }}" becomes if anything templates it
EVALUATED = "memcg-fix-evaluated"




@pytest.fixture
def marker() -> Iterator[str]:
    """A marker file name unique to this test; no such file may exist after it."""
    name = f"memcg-fix-pwned-{uuid.uuid4().hex[:12]}"
    yield name
    found = sorted(str(p) for p in Path("/tmp").glob(name + "*"))
    assert not found, f"an injected command ran: {found}"


def memcg_fix(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "remediate", *args], capture_output=True,
                          text=True, cwd=cwd, env=ansible_env(), timeout=timeout, check=False)


def strings_in(value: Any) -> Iterator[str]:
    """Every string in a loaded document, mapping keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings_in(key)
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


# --- hostile facts and policy ---------------------------------------------------

def hostile_facts(strings: list[tuple[str, str]]) -> dict[str, Any]:
    """One EL7 host per string that gets kernel-upgrade, nokmem and pam-lastlog
    planned, with the string in every text field a host reports; and one
    unreachable host per string, whose error is the string."""
    hosts = []
    for index, (_name, text) in enumerate(strings):
        host = copy.deepcopy(BASES["el7"])
        host["host"] = text
        facts = host["facts"]
        # an old el7 kernel with kmem accounting on: the critical finding quotes
        # kernel.release, and kernel-upgrade + nokmem are planned
        facts["kernel"].update({"release": text, "package_version": "3.10.0-693.el7",
                                "distro_release": "693.el7", "nokmem_supported": False})
        facts["kmem"].update({"accounting_active": True, "nokmem_honoured": False,
                              "evidence": text})
        facts["cmdline"].update({"nokmem": False, "raw": text, "args": [text]})
        facts["distro"].update({"name": text, "pretty_name": text})
        facts["boot"]["default_grub"]["GRUB_CMDLINE_LINUX"] = text
        facts["boot"]["nokmem_all_entries"] = False
        for entry in facts["boot"]["entries"]:
            entry.update({"args": text, "title": text, "nokmem": False})
        facts["pam"].update({"lastlog_active": True, "lastlog_writes_wtmp": True,
                             "lastlog_writes_lastlog": True,
                             "lastlog_writes_in_session": True})
        facts["pam"]["files"][0].update({"path": text, "owner": text})
        facts["kernel_log"]["signatures"]["memcg_oom"] = {"count": 1, "last": text,
                                                         "memcgs": [text]}
        facts["runc"]["version"] = None  # unknown, and the reason is the string
        host["unknown"] = [{"fact": "runc.version", "reason": text}]
        hosts.append(host)
        hosts.append({"host": f"unreachable-{index:02d}", "facts": {}, "unknown": [],
                      "error": text})
    return {"schema_version": 1, "memcg_fix_version": "0.1.0", "hosts": hosts}


def hostile_policy(strings: list[tuple[str, str]]) -> dict[str, Any]:
    """The default policy with a string in every rule description, and the
    strings that hold no brace (summaries quote facts as {path}) in summaries."""
    policy = yaml.safe_load(DEFAULT_POLICY.read_text())
    braceless = [text for _name, text in strings if "{" not in text and "}" not in text]
    policy["description"] = " ".join(text for _name, text in strings)
    for index, rule in enumerate(policy["rules"]):
        rule["description"] += " " + strings[index % len(strings)][1]
        for finding in rule.get("findings", []):
            finding["summary"] += " " + braceless[index % len(braceless)]
    return policy


@pytest.fixture
def hostile_run(tmp_path: Path, marker: str) -> dict[str, Any]:
    """policy validate, plan (json, markdown, table) and render, for real."""
    strings = injection_strings(marker)
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps(hostile_facts(strings), indent=1))
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(hostile_policy(strings), sort_keys=False))
    out: dict[str, Any] = {"strings": strings, "dir": tmp_path, "marker": marker}
    checked = memcg_fix("policy", "validate", str(policy), cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    for fmt in ("json", "markdown", "table"):
        run = memcg_fix("plan", "--facts", str(facts), "--policy", str(policy), "--format", fmt,
                        "--explain", cwd=tmp_path)
        assert run.returncode == 2, run.stderr
        assert "Traceback" not in run.stderr
        out[fmt] = run.stdout
    (tmp_path / "plan.json").write_text(out["json"])
    playbook = tmp_path / "memcg-fix.yml"
    rendered = memcg_fix("render", "--plan", str(tmp_path / "plan.json"), "--out", str(playbook),
                         cwd=tmp_path)
    assert rendered.returncode == 0, rendered.stderr
    out["playbook"] = playbook
    out["plan"] = json.loads(out["json"])
    return out


# --- the rendered playbook ----------------------------------------------------------

def _expected_plan_data(plan: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {h["host"]: [{"id": m["id"], "params": m["params"]} for m in h["mitigations"]]
            for h in plan["hosts"]}


def test_every_string_reaches_the_plan_unchanged(hostile_run):
    plan = hostile_run["plan"]
    names = {h["host"] for h in plan["hosts"]}
    by_name = {h["host"]: h for h in plan["hosts"]}
    for _name, text in hostile_run["strings"]:
        assert text in names
        host = by_name[text]
        assert host["status"] == "planned"
        assert [m["id"] for m in host["mitigations"]] == ["kernel-upgrade", "nokmem",
                                                          "pam-lastlog"]
        # kernel.release, quoted in the finding's summary (which is one line)
        assert any(" ".join(text.split()) in f["summary"] for f in host["findings"])
        assert {"fact": "runc.version", "reason": text} in host["unknown"]
    errors = sorted(h["error"] for h in plan["hosts"] if "error" in h)
    assert errors == sorted(" ".join(text.split()) for _name, text in hostile_run["strings"])
    for fmt in ("json", "markdown", "table"):
        assert EVALUATED not in hostile_run[fmt]


def test_the_playbook_loads_back_to_exactly_the_plan(hostile_run):
    text = hostile_run["playbook"].read_text()
    plan = hostile_run["plan"]
    check = render_mod.check(text)
    assert check.untouched, check.problems
    assert check.fingerprint == plan["fingerprint"]
    # the header is comments only: no string broke out of its comment line
    header = text.split("\n---\n", 1)[0].splitlines()
    assert header and all(line.startswith("#") for line in header)
    plays = yaml.load(text, Loader=render_mod.PlaybookLoader)
    assert [p["name"] for p in plays] == [render_mod.SELECT_PLAY, render_mod.APPLY_PLAY]
    assert plays[1]["vars"]["memcg_fix_plan"] == _expected_plan_data(plan)
    assert plays[0]["vars"]["memcg_fix_planned_hosts"] == sorted(
        h["host"] for h in plan["hosts"] if h["mitigations"])
    assert check.plan == _expected_plan_data(plan)
    # nothing else in the body came from a host: only the plan data has the strings
    hostile = {t for _n, t in hostile_run["strings"]}
    body_strings = set(strings_in([{k: v for k, v in p.items() if k != "vars"} for p in plays]))
    assert not body_strings & hostile


def _ansible_load(path: Path) -> Any:
    """The playbook as ansible-playbook loads it (trusted as a template source on 2.19+)."""
    from ansible.parsing.dataloader import DataLoader

    loader = DataLoader()
    try:
        return loader, loader.load_from_file(str(path), trusted_as_template=True)
    except TypeError:  # ansible-core 2.16: no data tagging, every string is a template
        return loader, loader.load_from_file(str(path))


def test_ansible_loads_the_same_data_and_never_templates_it(hostile_run):
    from ansible.template import Templar

    loader, plays = _ansible_load(hostile_run["playbook"])
    plan = hostile_run["plan"]
    assert json.loads(json.dumps(plays[1]["vars"]["memcg_fix_plan"])) == _expected_plan_data(plan)
    templar = Templar(loader=loader, variables={})
    # positive control: the playbook's own expressions are templates to Ansible
    role_vars = plays[1]["roles"][0]["vars"]
    assert templar.template(role_vars["memcg_remediate_state"]) == "present"
    data = [plays[1]["vars"]["memcg_fix_plan"], plays[0]["vars"]["memcg_fix_planned_hosts"]]
    seen = 0
    for text in strings_in(data):
        assert str(templar.template(text)) == str(text), text
        seen += 1
    assert seen > 2 * len(hostile_run["strings"])


def test_ansible_playbook_syntax_check_runs_nothing(hostile_run, tmp_path):
    env = ansible_env()
    proc = subprocess.run([ansible_bin("ansible-playbook"), "--syntax-check", "-i", "localhost,",
                           str(hostile_run["playbook"])], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hostile_params_and_names_stay_data_even_in_a_hand_made_plan(marker, tmp_path):
    """A plan whose parameter values are hostile (no policy can set such values:
    the catalogue checks them) still renders them as data, never as templates."""
    from ansible.template import Templar

    strings = injection_strings(marker)
    hosts = tuple(
        HostPlan(host=text, status="planned", mitigations=(PlannedMitigation(
            id="runc-upgrade", params={"min_version": text, "package": text}, needs_reboot=False,
            risk="low", disruption="low", rationale=text, alternatives=(), rule=name),),
            unknown=(Unknown("runc.version", text),))
        for name, text in strings)
    plan = Plan(policy=PolicyRef("default", "1.0.0", "0" * 64), hosts=hosts)
    text = render_mod.render(plan)
    assert render_mod.check(text).untouched
    expected = {t: [{"id": "runc-upgrade", "params": {"min_version": t, "package": t}}]
                for _n, t in strings}
    plays = yaml.load(text, Loader=render_mod.PlaybookLoader)
    assert plays[1]["vars"]["memcg_fix_plan"] == expected
    # each host string is written with Ansible's !unsafe tag: the host name (a
    # key), both parameter values and the entry in the planned hosts' list
    body = text.split("\n---\n", 1)[1]
    assert body.count("!unsafe") >= 4 * len(strings)
    path = tmp_path / "hand-made.yml"
    path.write_text(text)
    loader, loaded = _ansible_load(path)
    templar = Templar(loader=loader, variables={})
    for value in strings_in(loaded[1]["vars"]["memcg_fix_plan"]):
        assert str(templar.template(value)) == str(value)


# --- the Markdown report ---------------------------------------------------------

def _shown(text: str) -> str:
    return " ".join(shown(text).split())


def test_the_markdown_report_shows_every_string_escaped(hostile_run):
    html = MarkdownIt("commonmark").enable("table").enable("strikethrough").render(
        hostile_run["markdown"])
    parsed = RenderedHtml()
    parsed.feed(html)
    allowed = {"h1", "h2", "h3", "p", "strong", "ul", "li", "ol", "table", "thead", "tbody",
               "tr", "th", "td"}
    assert set(parsed.tags) <= allowed, set(parsed.tags) - allowed
    assert set(parsed.attrs) <= {"style"}
    # one heading per host with findings: no string started a heading of its own
    plan = hostile_run["plan"]
    assert parsed.tags.count("h2") == 1 + len(plan["hosts"])
    # the summary: five cells per host, the host's name whole in the first
    summary = [row for row in parsed.rows if len(row) == 5][1:]
    assert [_shown(row[0]) for row in summary] == [_shown(h["host"]) for h in plan["hosts"]]
    text = _shown("".join(parsed.text))
    for _name, value in hostile_run["strings"]:
        assert _shown(value) in text, value


def test_a_policy_summary_with_jinja_is_refused_as_a_bad_template(tmp_path, marker):
    policy = yaml.safe_load(DEFAULT_POLICY.read_text())
    jinja = [t for n, t in injection_strings(marker) if n.startswith("jinja-")]
    for index, text in enumerate(jinja):
        policy["rules"][index]["findings"] = [{"id": "f", "severity": "info",
                                               "summary": "x " + text}]
    path = tmp_path / "jinja.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    run = memcg_fix("policy", "validate", str(path), cwd=tmp_path)
    assert run.returncode == 3
    assert "Traceback" not in run.stderr
    lines = run.stderr.splitlines()
    for index in range(len(jinja)):
        mine = [line for line in lines if f"$.rules[{index}].findings[0].summary: " in line]
        assert mine and all("unbalanced { or }" in line or "is not a fact path" in line
                            for line in mine), lines


# --- real memory cgroups with hostile names ---------------------------------------

def _slashless(text: str) -> str | None:
    """The string as a cgroup directory name: no "/" (the marker goes to /tmp by
    cd-ing there), no newline (the kernel refuses it in cgroup names)."""
    text = text.replace("touch /tmp/", "cd;cd ..;cd tmp;touch ").replace("touch${IFS}/tmp/",
                                                                          "cd;cd ..;cd tmp;touch ")
    if "/" in text or "\n" in text:
        return None
    return text


@pytest.fixture
def hostile_cgroups(marker: str, tmp_path: Path) -> Iterator[list[Path]]:
    """Top-level v1 memory cgroups named memcg-fix-test-inject-<pid>-<string>, each
    charged with some kernel memory (dentries of files a child created); removed
    (reclaimed first) at the end."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create memory cgroups")
    layout = cgroupfs.memory_layout("/", live=True)
    if layout["memory_controller"] != "v1" or not layout["memory_mount"]:
        pytest.skip(f"needs a v1 memory hierarchy: {layout}")
    mount = Path(layout["memory_mount"])
    prefix = f"memcg-fix-test-inject-{os.getpid()}-"
    created: list[Path] = []
    scratch = tmp_path / "files"
    scratch.mkdir()
    try:
        for index, (_name, text) in enumerate(injection_strings(marker)):
            name = _slashless(text)
            if name is None:
                continue
            path = mount / (prefix + name)
            path.mkdir()
            created.append(path)
            pid = os.fork()
            if pid == 0:  # the child: join the cgroup, make kernel objects, leave
                try:
                    (path / "cgroup.procs").write_text(str(os.getpid()))
                    for n in range(50):
                        (scratch / f"{index}-{n}").write_text("x")
                finally:
                    os._exit(0)
            os.waitpid(pid, 0)
        yield created
    finally:
        for path in created:
            reclaim.reclaim_cgroup(str(path), 30)
            for _ in range(50):
                try:
                    os.rmdir(path)
                    break
                except OSError:
                    time.sleep(0.1)
            assert not path.exists(), f"could not remove {path}"


@pytest.mark.live_kernel
def test_cgroups_with_hostile_names_on_the_real_kernel_stay_names(hostile_cgroups, tmp_path):
    assert len(hostile_cgroups) >= 12
    detected = memcg_fix("detect", "--local", "--format", "json", "--host", "this-host",
                         cwd=tmp_path)
    assert detected.returncode == 0, detected.stderr
    [host] = json.loads(detected.stdout)["hosts"]
    assert host["facts"]["memcg"]["live"] >= len(hostile_cgroups) + 1
    evidence = host["facts"]["kmem"]["evidence"] or ""
    # the kmem probe names the first charged memcg in sorted order; when that
    # is one of ours (unless another test's cgroup sorts first) it is verbatim
    ours = [str(p) for p in hostile_cgroups]
    named = re.search(r"of (/sys/fs/cgroup/memory/memcg-fix-test-inject-.*) is \d+ bytes$",
                      evidence)
    if named:
        assert named.group(1) in ours, evidence
    assert EVALUATED not in detected.stdout
    (tmp_path / "facts.json").write_text(detected.stdout)
    for fmt in ("json", "markdown", "table"):
        plan = memcg_fix("plan", "--facts", str(tmp_path / "facts.json"), "--format", fmt,
                         "--explain", cwd=tmp_path)
        assert plan.returncode in (0, 2), plan.stderr
        assert "Traceback" not in plan.stderr and EVALUATED not in plan.stdout
        if fmt == "json":
            (tmp_path / "plan.json").write_text(plan.stdout)
    rendered = memcg_fix("render", "--plan", str(tmp_path / "plan.json"), cwd=tmp_path)
    assert rendered.returncode == 0, rendered.stderr
    assert render_mod.check(rendered.stdout).untouched
    local = memcg_fix("plan", "--local", "--format", "markdown", "--explain", cwd=tmp_path)
    assert local.returncode in (0, 2), local.stderr


# --- the source tree: safe YAML only, no eval --------------------------------------

# (file, function) pairs allowed to call eval/exec, and why
EVAL_ALLOWED: dict[tuple[str, str | None], str] = {
    ("playbooks/collections/ansible_collections/memcg_fix/remediate/plugins/module_utils/"
     "facts_bootstrap.py", "_execute"):
        "memcg_facts_raw's importer runs the collector's modules from the payload it came "
        "with, as an import runs a module: the sources are the controller's own collection, "
        "sent to the host; nothing from the host is executed",
    ("playbooks/collections/ansible_collections/memcg_fix/remediate/plugins/module_utils/"
     "facts_bootstrap.py", "compile_sources"):
        "compiles those same modules (the controller's own collection) for the importer",
    ("playbooks/collections/ansible_collections/memcg_fix/remediate/plugins/module_utils/"
     "facts_bootstrap.py", "load_cached"):
        "marshal.loads of the compiled collector the bootstrap itself kept: only from a "
        "directory and file of the user's own that nobody else can write, with a checksum; "
        "never anything the host produced",
}
SAFE_LOADERS = {"SafeLoader", "CSafeLoader", "PlaybookLoader", "_Loader"}
SAFE_DUMPERS = {"SafeDumper", "CSafeDumper", "_Dumper"}
UNSAFE_YAML = {"load_all", "full_load", "full_load_all", "unsafe_load", "unsafe_load_all",
               "Loader", "FullLoader", "UnsafeLoader", "Dumper", "UnsafeConstructor",
               "CLoader", "CFullLoader", "CUnsafeLoader", "CDumper"}


def _python_sources() -> list[Path]:
    files = [*(REPO / "remediate").rglob("*.py"), *(REPO / "tests" / "targets").rglob("*.py")]
    collection = collection_dir()
    # module_utils/hostside is remediate/hostside (a symlink), scanned above;
    # tests/output is ansible-test's scratch space
    files += [p for p in collection.rglob("*.py")
              if "hostside" not in p.parts and "output" not in p.relative_to(collection).parts]
    for path in (REPO / "tests" / "targets" / "standins").iterdir():
        if path.is_file() and path.read_bytes().startswith(b"#!/usr/bin/env python"):
            files.append(path)
    for path in (role_dir() / "files").iterdir():
        if path.is_file() and b"python" in path.read_bytes()[:100]:
            files.append(path)
    return sorted(set(files))


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _last_name(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def unsafe_uses(path: Path) -> list[str]:
    """Unsafe YAML loading/dumping and eval/exec in one Python file."""
    tree = ast.parse(path.read_text(), str(path))
    rel = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else path.name
    problems = []
    functions = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                functions.setdefault(id(inner), node.name)
    for node in ast.walk(tree):
        where = f"{rel}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "yaml" and node.attr in UNSAFE_YAML:
            problems.append(f"{where}: yaml.{node.attr}")
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                and func.value.id == "yaml":
            if func.attr == "load":
                loader = _keyword(node, "Loader") or (node.args[1] if len(node.args) > 1
                                                      else None)
                if _last_name(loader) not in SAFE_LOADERS:
                    problems.append(f"{where}: yaml.load without a safe Loader")
            if func.attr in ("dump", "dump_all"):
                dumper = _keyword(node, "Dumper")
                if _last_name(dumper) not in SAFE_DUMPERS:
                    problems.append(f"{where}: yaml.{func.attr} without a safe Dumper")
        if isinstance(func, ast.Name) and func.id in ("eval", "exec", "compile"):
            if (rel, functions.get(id(node))) not in EVAL_ALLOWED:
                problems.append(f"{where}: {func.id}()")
        if _last_name(func) in ("system", "popen") and isinstance(func, ast.Attribute) \
                and _last_name(func.value) == "os":
            problems.append(f"{where}: os.{func.attr}()")
        shell = _keyword(node, "shell")
        if isinstance(shell, ast.Constant) and shell.value is True:
            problems.append(f"{where}: a subprocess with shell=True")
        if _last_name(func) in ("loads", "load") and _last_name(getattr(func, "value", None)) in (
                "pickle", "marshal") and (rel, functions.get(id(node))) not in EVAL_ALLOWED:
            problems.append(f"{where}: {_last_name(func.value)}.{func.attr}")
    return problems


def test_only_safe_yaml_and_no_eval_in_the_source_tree():
    files = _python_sources()
    assert len(files) > 40
    problems = [p for path in files for p in unsafe_uses(path)]
    assert not problems, "\n".join(problems)
    # the custom loaders and dumper named as safe really are safe ones
    from remediate.policy.source import _Loader

    assert issubclass(render_mod.PlaybookLoader, yaml.SafeLoader)
    assert issubclass(_Loader, yaml.SafeLoader)
    assert issubclass(render_mod._Dumper, yaml.SafeDumper)


def test_the_scan_finds_what_it_looks_for(tmp_path):
    """The scanner itself: each unsafe form in a throwaway file is reported."""
    sample = tmp_path / "probe.py"
    sample.write_text(
        "import yaml, os, pickle, subprocess\n"
        "yaml.load(text, Loader=yaml.Loader)\n"
        "yaml.load(text)\n"
        "yaml.unsafe_load(text)\n"
        "yaml.dump(data)\n"
        "eval(text)\n"
        "exec(text)\n"
        "os.system(text)\n"
        "subprocess.run(text, shell=True)\n"
        "pickle.loads(text)\n"
        "yaml.safe_load(text)\n"
        "yaml.load(text, Loader=yaml.SafeLoader)\n")
    found = unsafe_uses(sample)
    lines = sorted(int(p.split(":")[1]) for p in found)
    assert lines == [2, 2, 3, 4, 5, 6, 7, 8, 9, 10], found
