"""AWX/Tower: the job templates in awx/ and a rendered playbook run as AWX runs a job.

For every job AWX builds a private data directory and hands it to
ansible-runner (awx/main/tasks/jobs.py in ansible/awx: build_private_data_dir,
build_project_dir, write_inventory_file, build_args, write_args_file):

* ``project/``: the project's checkout; the template's playbook path is
  relative to it;
* ``inventory/hosts``: an executable script (mode 0700) that prints the
  inventory as JSON;
* ``env/extravars``: the extra variables, survey answers included (YAML);
* ``env/cmdline``: ``--check`` for a check job, ``-u USER``, ``--diff`` with
  diff mode, ``-l LIMIT``.

The containers test builds exactly that around a real Debian container: a
plan from the container's real facts, the playbook rendered from it at the
path the job templates name, the survey's default answers as extra vars, and
runs the check template, then the apply template (twice), then a rollback
through the survey's ``memcg_fix_state``. Nothing sets ANSIBLE_ROLES_PATH:
the role must be found next to the playbook, as in AWX.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml
from packaging.specifiers import SpecifierSet

from remediate.facts import HostFacts
from remediate.policy import evaluate, load
from remediate.render import REPORT_TASK, parse_batches, render
from remediate.resources import role_dir
from remediate.run import collect_facts

REPO = Path(__file__).resolve().parents[2]
AWX = REPO / "awx"
TEMPLATES = AWX / "job-templates.json"
EE = AWX / "execution-environment.yml"
CHECK_TEMPLATE = "memcg-fix plan (check)"
APPLY_TEMPLATE = "memcg-fix apply"
SURVEY_VARIABLES = {"memcg_fix_reboot_ok", "memcg_fix_batches", "memcg_fix_state",
                    "memcg_fix_force"}
# what `awx import` reads (awxkit/awxkit/api/pages/api.py, EXPORTABLE_RESOURCES)
EXPORTABLE = {"users", "organizations", "teams", "credential_types", "credentials",
              "notification_templates", "projects", "inventory", "inventory_sources",
              "job_templates", "workflow_job_templates", "execution_environments",
              "applications", "schedules"}
# AWX's survey question types (awx/api/views: JobTemplateSurveySpec.ALLOWED_TYPES)
SURVEY_TYPES = {"text": str, "textarea": str, "password": str, "multiplechoice": str,
                "multiselect": str, "integer": int, "float": float}

# A site policy for this test: pam-lastlog wherever pam_lastlog writes
# wtmp/lastlog on a Debian host (the stock Debian 12 login stack does).
POLICY = """\
id: awx-layout-test
version: "1.0.0"
description: pam-lastlog on Debian hosts whose pam_lastlog writes wtmp or lastlog.
rules:
  - id: debian-pam-lastlog
    description: >-
      pam_lastlog writes wtmp and lastlog from inside each login's session
      scope; the page cache of those writes keeps the scope's memory cgroup
      alive after logout.
    when:
      distro: [debian]
      pam_lastlog: {active: true, writes_any: true}
    findings:
      - id: pam-lastlog-writes
        severity: info
        summary: pam_lastlog writes wtmp/lastlog from session scopes
    mitigations:
      - id: pam-lastlog
        params: {method: noupdate}
"""


def job_templates() -> dict[str, dict[str, Any]]:
    doc = json.loads(TEMPLATES.read_text())
    return {jt["name"]: jt for jt in doc["job_templates"]}


def survey_errors(spec: dict[str, Any]) -> list[str]:
    """What AWX's API would refuse in a survey spec (JobTemplateSurveySpec._validate_spec_data)."""
    errors = []
    for field, kind in (("name", str), ("description", str), ("spec", list)):
        if not isinstance(spec.get(field), kind):
            errors.append(f"survey field {field!r} missing or not a {kind.__name__}")
    seen: set[str] = set()
    for idx, item in enumerate(spec.get("spec") or ()):
        for field in ("type", "question_name", "variable", "required"):
            kind = bool if field == "required" else str
            if not isinstance(item.get(field), kind):
                errors.append(f"question {idx}: {field!r} missing or not a {kind.__name__}")
        if item.get("variable") in seen:
            errors.append(f"question {idx}: variable {item.get('variable')!r} duplicated")
        seen.add(item.get("variable"))
        qtype = item.get("type")
        if qtype not in SURVEY_TYPES:
            errors.append(f"question {idx}: type {qtype!r} unknown")
            continue
        default = item.get("default")
        if default not in (None, "") and not isinstance(default, SURVEY_TYPES[qtype]):
            errors.append(f"question {idx}: default {default!r} is not a {qtype} answer")
        for key in ("min", "max"):
            if item.get(key) is not None and not isinstance(item[key], int):
                errors.append(f"question {idx}: {key} is not an integer")
        if qtype in ("multiplechoice", "multiselect"):
            choices = item.get("choices")
            if not choices:
                errors.append(f"question {idx}: {qtype} without choices")
                continue
            if isinstance(choices, str):
                choices = choices.splitlines()
            defaults = default.splitlines() if isinstance(default, str) else []
            if qtype == "multiplechoice" and len(defaults) > 1:
                errors.append(f"question {idx}: a multiple choice has one default")
            if any(d not in choices for d in defaults):
                errors.append(f"question {idx}: default {default!r} is not among the choices")
    return errors


def survey_defaults(template: dict[str, Any]) -> dict[str, Any]:
    """The extra vars AWX sends when every survey question keeps its default."""
    answers: dict[str, Any] = {}
    for item in template["related"]["survey_spec"]["spec"]:
        if item.get("default") in (None, ""):
            continue
        if item["type"] == "multiselect":  # AWX hands a multiselect answer over as a list
            answers[item["variable"]] = item["default"].splitlines()
        else:
            answers[item["variable"]] = item["default"]
    return answers


# ------------------------------------------------------------------ files


def test_job_templates_are_an_awx_export_with_a_check_and_a_run_template():
    doc = json.loads(TEMPLATES.read_text())
    assert set(doc) <= EXPORTABLE, set(doc) - EXPORTABLE
    templates = job_templates()
    assert set(templates) == {CHECK_TEMPLATE, APPLY_TEMPLATE}
    check, apply = templates[CHECK_TEMPLATE], templates[APPLY_TEMPLATE]
    assert (check["job_type"], check["diff_mode"]) == ("check", True)
    assert (apply["job_type"], apply["diff_mode"]) == ("run", False)
    projects = {json.dumps(p["natural_key"], sort_keys=True): p for p in doc["projects"]}
    environments = {e["name"] for e in doc["execution_environments"]}
    for jt in templates.values():
        assert jt["natural_key"] == {"organization": {"name": "Default", "type": "organization"},
                                     "name": jt["name"], "type": "job_template"}
        # the project it runs from is in the same file, and lets a launch pick the change branch
        project = projects[json.dumps(jt["project"], sort_keys=True)]
        assert project["allow_override"] and jt["ask_scm_branch_on_launch"]
        assert jt["execution_environment"]["name"] in environments
        assert jt["ask_limit_on_launch"] is True
        assert jt["survey_enabled"] is True
        credential_types = {c["credential_type"]["kind"] for c in jt["related"]["credentials"]}
        assert credential_types == {"ssh"}


def test_the_playbook_path_sits_next_to_the_collection_in_the_repository():
    for jt in job_templates().values():
        playbook = Path(jt["playbook"])
        assert not playbook.is_absolute() and ".." not in playbook.parts
        # Ansible finds collections in collections/ beside the playbook: the
        # rendered playbook goes into the repository's playbooks/ folder,
        # next to the memcg_fix.remediate collection
        assert (REPO / playbook.parent).resolve() == (REPO / "playbooks").resolve()
        collection = REPO / playbook.parent / "collections/ansible_collections/memcg_fix/remediate"
        assert (collection / "roles" / "memcg_remediate" / "tasks" / "main.yml").is_file()


def test_the_survey_is_valid_for_awx_and_asks_what_the_playbook_reads(tmp_path):
    plan = evaluate(load(_write(tmp_path / "policy.yaml", POLICY)), [])
    rendered = render(plan)
    for jt in job_templates().values():
        spec = jt["related"]["survey_spec"]
        assert survey_errors(spec) == []
        variables = {item["variable"] for item in spec["spec"]}
        assert variables == SURVEY_VARIABLES
        for variable in variables:  # each answer reaches the playbook
            assert variable in rendered, variable
        by_var = {item["variable"]: item for item in spec["spec"]}
        assert by_var["memcg_fix_reboot_ok"]["default"] == "false"  # no reboot unless asked
        assert by_var["memcg_fix_state"]["choices"] == ["present", "absent"]
        assert by_var["memcg_fix_batches"]["type"] == "multiselect"
        # every batch size the survey offers is one the renderer accepts
        parse_batches(",".join(by_var["memcg_fix_batches"]["choices"]))


def test_a_survey_awx_would_refuse_is_caught():
    spec = job_templates()[APPLY_TEMPLATE]["related"]["survey_spec"]
    broken = json.loads(json.dumps(spec))
    broken["spec"][0]["default"] = "maybe"
    broken["spec"].append(dict(broken["spec"][1]))
    errors = survey_errors(broken)
    assert any("not among the choices" in e for e in errors)
    assert any("duplicated" in e for e in errors)


def test_the_execution_environment_pins_ansible_core_2_16_and_needs_nothing_else():
    ee = yaml.safe_load(EE.read_text())
    assert ee["version"] == 3
    deps = ee["dependencies"]
    core = SpecifierSet(deps["ansible_core"]["package_pip"].removeprefix("ansible-core"))
    assert "2.16.19" in core and "2.17.0" not in core and "2.15.13" not in core
    assert not deps.get("galaxy") and not deps.get("python") and not deps.get("system")
    assert ee["images"]["base_image"]["name"]
    try:  # ansible-builder's own schema, where it is installed
        from ansible_builder.ee_schema import validate_schema
    except ImportError:
        pass
    else:
        validate_schema(ee)


def test_the_role_uses_only_ansible_builtin_and_its_own_modules():
    # the reason the execution environment needs no other collection
    tasks = role_dir() / "tasks"
    used: set[str] = set()
    for path in tasks.glob("*.yml"):
        _actions(yaml.safe_load(path.read_text()) or [], used)
    assert used, "no task actions found"
    foreign = {a for a in used
               if not a.startswith(("ansible.builtin.", "ansible.legacy.", "memcg_fix.remediate."))}
    assert not foreign, foreign


_TASK_KEYWORDS = {"name", "when", "loop", "loop_control", "vars", "register", "become",
                  "changed_when", "failed_when", "check_mode", "notify", "tags", "block",
                  "rescue", "always", "delegate_to", "run_once", "until", "retries", "delay",
                  "environment", "no_log", "ignore_errors", "args", "listen"}


def _actions(tasks: list[Any], out: set[str]) -> None:
    for task in tasks:
        if not isinstance(task, dict):
            continue
        for section in ("block", "rescue", "always"):
            _actions(task.get(section) or [], out)
        out.update(k for k in task if k not in _TASK_KEYWORDS and "." in k)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ------------------------------------------------------------------ a job, run as AWX runs it


def _private_data_dir(root: Path, target, playbook_text: str, template: dict[str, Any],
                      extravars: dict[str, Any]) -> Path:
    """A private data dir laid out as AWX lays out one job's."""
    root.mkdir()
    # project/: the repository checkout (what the playbook needs of it: the
    # playbooks folder with its playbook-adjacent collection)
    project = root / "project"
    shutil.copytree(REPO / "playbooks", project / "playbooks", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    (project / template["playbook"]).write_text(playbook_text)
    # inventory/hosts: an executable script printing the inventory as JSON
    hostvars = {k: v for k, v in target.inventory_vars.items() if k != "ansible_user"}
    script_data = {"all": {"children": ["ungrouped"]}, "ungrouped": {"hosts": [target.name]},
                   "_meta": {"hostvars": {target.name: hostvars}}}
    hosts = root / "inventory" / "hosts"
    hosts.parent.mkdir()
    hosts.write_text("#! /usr/bin/env python3\n# -*- coding: utf-8 -*-\n"
                     f"print({json.dumps(script_data)!r})\n")
    hosts.chmod(0o700)
    # env/: extra vars (the survey's answers) and the command line AWX builds
    env = root / "env"
    env.mkdir()
    (env / "extravars").write_text(yaml.safe_dump(extravars))
    args = []
    if template["job_type"] == "check":
        args.append("--check")
    args += ["-u", target.user]
    if template["diff_mode"]:
        args.append("--diff")
    args += ["-l", target.name]  # ask_limit_on_launch: this change's host
    (env / "cmdline").write_text(" ".join(args))
    (env / "envvars").write_text(yaml.safe_dump({
        "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
    }))
    (env / "settings").write_text(yaml.safe_dump({"job_timeout": 900, "idle_timeout": 600}))
    return root


def _run_job(data_dir: Path, template: dict[str, Any]) -> Any:
    import ansible_runner

    return ansible_runner.run(
        private_data_dir=str(data_dir), ident="job", playbook=template["playbook"],
        inventory=str(data_dir / "inventory" / "hosts"), quiet=True)


def _report(runner: Any, host: str) -> dict[str, Any]:
    for event in runner.events:
        data = event.get("event_data", {})
        if (event.get("event") == "runner_on_ok" and data.get("host") == host
                and data.get("task") == REPORT_TASK):
            return dict(data["res"]["msg"])
    raise AssertionError(f"no '{REPORT_TASK}' event for {host}")


def _stdout(runner: Any) -> str:
    return runner.stdout.read()


def test_a_rendered_playbook_runs_from_an_awx_private_data_dir(debian_target, inventory_path,
                                                              tmp_path, monkeypatch):
    for var in ("ANSIBLE_ROLES_PATH", "ANSIBLE_CONFIG", "ANSIBLE_LIBRARY",
                "ANSIBLE_COLLECTIONS_PATH"):
        monkeypatch.delenv(var, raising=False)
    # ansible-runner runs the ansible-playbook it finds on PATH: this
    # interpreter's (the 2.16 tier runs 2.16, the core of the EE)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    target = debian_target
    login_before = target.read_file("/etc/pam.d/login")

    # facts -> plan -> playbook, from the container's real facts
    facts, report = collect_facts([str(inventory_path([target]))], data_dir=tmp_path / "facts")
    assert report.rc == 0 and [f.host for f in facts] == [target.name]
    assert isinstance(facts[0], HostFacts) and facts[0].error is None
    plan = evaluate(load(_write(tmp_path / "policy.yaml", POLICY)), facts)
    (host_plan,) = plan.hosts
    assert host_plan.status == "planned"
    assert [m.id for m in host_plan.mitigations] == ["pam-lastlog"]
    playbook = render(plan)

    templates = job_templates()
    check, apply = templates[CHECK_TEMPLATE], templates[APPLY_TEMPLATE]
    answers = survey_defaults(apply)
    assert answers["memcg_fix_batches"] == ["1", "10%", "25%"]  # a list, as AWX sends it

    # 1. the check template: shows the diff, changes no byte
    watched = ("/etc", "/var/lib/memcg-fix", "/usr/local/sbin")
    before = target.tree_checksums(watched, metadata=True)
    job = _run_job(_private_data_dir(tmp_path / "check", target, playbook, check, answers), check)
    out = _stdout(job)
    assert job.status == "successful", out[-4000:]
    assert "+session    optional   pam_lastlog.so noupdate" in out
    assert _report(job, target.name)["check_mode"] is True
    assert job.stats["changed"].get(target.name, 0) >= 1
    assert target.tree_checksums(watched, metadata=True) == before

    # 2. the apply template: changes the host as planned, and verifies it
    job = _run_job(_private_data_dir(tmp_path / "apply", target, playbook, apply, answers), apply)
    out = _stdout(job)
    assert job.status == "successful", out[-4000:]
    result = _report(job, target.name)
    assert result["changed"] == ["pam-lastlog"] and result["verified"] is True
    assert result["rebooted"] is False and result["state"] == "present"
    login = target.read_file("/etc/pam.d/login").decode()
    active = [line for line in login.splitlines()
              if "pam_lastlog.so" in line and not line.lstrip().startswith("#")]
    assert active and all("noupdate" in line.split() for line in active), active

    # 3. launched again: nothing left to change
    job = _run_job(_private_data_dir(tmp_path / "again", target, playbook, apply, answers), apply)
    assert job.status == "successful", _stdout(job)[-4000:]
    assert job.stats["changed"].get(target.name, 0) == 0, job.stats
    assert _report(job, target.name)["changed"] == []

    # 4. the survey's rollback answer puts the file back byte for byte
    rollback = dict(answers, memcg_fix_state="absent")
    job = _run_job(_private_data_dir(tmp_path / "rollback", target, playbook, apply, rollback),
                   apply)
    assert job.status == "successful", _stdout(job)[-4000:]
    assert _report(job, target.name)["state"] == "absent"
    assert target.read_file("/etc/pam.d/login") == login_before

