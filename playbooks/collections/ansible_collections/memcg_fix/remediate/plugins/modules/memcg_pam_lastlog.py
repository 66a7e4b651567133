#!/usr/bin/python
# -*- coding: utf-8 -*-
# Part of memcg-fix. Runs on the target's own Python (2.7, 3.6+).

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: memcg_pam_lastlog
short_description: Stop pam_lastlog from pinning session memcgs through wtmp/lastlog page cache
description:
  - systemd puts every ssh login in its own scope; pam_lastlog writes /var/log/wtmp and
    /var/log/lastlog from inside it, and the page cache of those writes keeps the scope's memory
    cgroup alive as a zombie after logout.
  - "On authselect hosts (EL8/9) it never edits authselect's files: it refuses when
    C(authselect check) fails, derives a custom profile C(custom/<profile>) from the current one,
    fixes the profile's postlogin template, and selects it with the same features."
  - "Files that authselect does not own (/etc/pam.d/login, /etc/pam.d/sshd) are edited in place
    when they carry a pam_lastlog line of their own."
  - "On authconfig (EL7) and plain PAM hosts (Debian/Ubuntu) it edits the pam_lastlog session lines
    in place (atomically, original kept for rollback). On EL7 a later C(authconfig --updateall)
    regenerates postlogin-ac and undoes the edit; the module warns about that."
  - State C(absent) undoes it: authselect's own backup, taken before the first change, is restored
    (C(authselect backup-restore)), so its files come back byte for byte; edited files are restored
    byte for byte from memcg-fix's backups.
options:
  method:
    description:
      - C(noupdate) stops every write (the last-login message stays), C(nowtmp) stops wtmp only,
        C(comment) comments the line out.
    type: str
    choices: [noupdate, nowtmp, comment]
    default: noupdate
  state:
    description: C(present) applies, C(absent) rolls back.
    type: str
    choices: [present, absent]
    default: present
  files:
    description:
      - PAM files to fix on non-authselect hosts. Default, from what exists:
        /etc/pam.d/postlogin (EL), /etc/pam.d/login and /etc/pam.d/sshd (Debian/Ubuntu).
    type: list
    elements: path
  profile_name:
    description: Name of the authselect custom profile to create (selected as C(custom/<name>)).
    type: str
    default: memcg-fix
  backup_dir:
    description: Where originals and the replaced authselect profile are recorded for rollback.
    type: path
    default: /var/lib/memcg-fix/backups
  force:
    description: With C(state=absent), restore files even if they were edited after memcg-fix changed them.
    type: bool
    default: false
author: memcg-fix
"""

EXAMPLES = r"""
- name: Stop pam_lastlog from writing wtmp and lastlog
  memcg_fix.remediate.memcg_pam_lastlog:
    method: noupdate
"""

RETURN = r"""
manager:
  description: Who owns the PAM files, C(authselect), C(authconfig) or C(none).
  returned: always
  type: str
files:
  description: Files changed (or that would be, in check mode).
  returned: always
  type: list
profile:
  description: The authselect profile selected after the run (authselect hosts only).
  returned: when authselect manages PAM
  type: str
"""

import os
import shutil
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside import pamedit, safeedit
from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside.fileio import SourceError, read_text, run_command, which
from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside.pam import file_owner

POSTLOGIN = "/etc/pam.d/postlogin"
AUTHSELECT_CUSTOM = "/etc/authselect/custom"
NOTE_PROFILE = "authselect_profile_before_memcg_fix"
NOTE_BACKUP = "authselect_backup_before_memcg_fix"


class Failure(Exception):
    """Stop the module with this one-line message."""


def _read(path):
    try:
        return read_text(path)
    except SourceError:
        return None


def _diff(header, before, after):
    return {"before_header": header, "after_header": header, "before": before, "after": after}


class PamLastlog(object):
    def __init__(self, module):
        self.module = module
        self.method = module.params["method"]
        self.present = module.params["state"] == "present"
        self.backups = safeedit.Backups(module.params["backup_dir"])
        self.files = []
        self.diffs = []
        self.warnings = []

    def run(self, argv, check_rc=True):
        try:
            rc, out, err = run_command(argv, timeout=120)
        except SourceError as exc:
            raise Failure(str(exc))
        if check_rc and rc != 0:
            detail = " ".join((err or out).split())[:400]
            raise Failure("%s failed (rc=%s): %s" % (" ".join(argv), rc, detail))
        return rc, out

    def manager(self):
        text = _read(POSTLOGIN)
        link = os.readlink(POSTLOGIN) if os.path.islink(POSTLOGIN) else None
        owner = file_owner(text, link) if text is not None else None
        if owner == "authselect" and not which("authselect"):
            raise Failure("%s is generated by authselect, but authselect is not installed" % POSTLOGIN)
        return owner or "none"

    # -- authselect (EL8/9) ------------------------------------------------
    def authselect_current(self):
        rc, out = self.run(["authselect", "current", "--raw"], check_rc=False)
        words = out.split()
        if rc != 0 or not words:
            raise Failure("authselect has no current profile (authselect current: rc=%s)" % rc)
        return words[0], words[1:]

    def authselect(self):
        rc, out = self.run(["authselect", "check"], check_rc=False)
        if rc != 0:
            raise Failure(
                "authselect check fails, so PAM files were edited outside authselect; refusing to "
                "change PAM. Review them, then run 'authselect select <profile> --force' or "
                "'authselect apply-changes' (%s)" % " ".join(out.split())[:200])
        profile, features = self.authselect_current()
        custom_id = "custom/" + self.module.params["profile_name"]
        custom_dir = os.path.join(AUTHSELECT_CUSTOM, self.module.params["profile_name"])
        template = os.path.join(custom_dir, "postlogin")
        generated = _read(POSTLOGIN) or ""
        if self.present:
            return self.authselect_apply(profile, features, custom_id, custom_dir, template, generated)
        return self.authselect_revert(profile, features, custom_id, custom_dir)

    def authselect_apply(self, profile, features, custom_id, custom_dir, template, generated):
        if profile == custom_id:
            text = _read(template) or ""
            if not pamedit.writing_lines(text, self.method) and not pamedit.writing_lines(generated, self.method):
                return custom_id
        elif not pamedit.writing_lines(generated, self.method):
            return profile  # nothing writes: leave the profile alone
        after = pamedit.rewrite(generated, self.method)
        self.files.append(POSTLOGIN)
        self.diffs.append(_diff("%s (via authselect profile %s)" % (POSTLOGIN, custom_id), generated, after))
        if self.module.check_mode:
            return custom_id
        if profile != custom_id:
            self.backups.note(NOTE_PROFILE, " ".join([profile] + features))
            if not self.backups.note(NOTE_BACKUP):
                # authselect's own backup: rollback restores its files byte
                # for byte without anyone editing them by hand
                name = "memcg-fix-before-%d" % int(time.time())
                self.run(["authselect", "backup", name])
                self.backups.note(NOTE_BACKUP, name)
            if os.path.isdir(custom_dir):
                raise Failure(
                    "authselect profile %s already exists but is not selected; remove it or choose "
                    "another profile_name" % custom_id)
            base = profile[len("custom/"):] if profile.startswith("custom/") else profile
            self.run(["authselect", "create-profile", self.module.params["profile_name"], "-b", base])
        text = _read(template)
        if text is None:
            raise Failure("profile %s has no postlogin template at %s" % (custom_id, template))
        new_text = pamedit.rewrite(text, self.method)
        if new_text != text:
            safeedit.atomic_write(template, new_text.encode("utf-8"))
        if profile != custom_id:
            self.run(["authselect", "select", custom_id] + features)
        else:
            self.run(["authselect", "apply-changes"])
        self.run(["authselect", "check"])
        left = pamedit.writing_lines(_read(POSTLOGIN) or "", self.method)
        if left:
            raise Failure("after selecting %s, %s still has: %s" % (custom_id, POSTLOGIN, left[0].strip()))
        return custom_id

    def authselect_revert(self, profile, features, custom_id, custom_dir):
        before = self.backups.note(NOTE_PROFILE)
        if profile != custom_id or not before:
            return profile
        words = before.split()
        self.files.append(POSTLOGIN)
        self.diffs.append(_diff("authselect profile", " ".join([profile] + features) + "\n", before + "\n"))
        if self.module.check_mode:
            return words[0]
        backup = self.backups.note(NOTE_BACKUP)
        if backup:
            self.run(["authselect", "backup-restore", backup])
        else:
            self.run(["authselect", "select", words[0]] + words[1:])
        self.run(["authselect", "check"])
        # the custom profile is ours; leaving it would block the next apply
        shutil.rmtree(custom_dir, ignore_errors=True)
        self.backups.forget_note(NOTE_PROFILE)
        self.backups.forget_note(NOTE_BACKUP)
        return words[0]

    # -- authconfig (EL7) and plain PAM (Debian/Ubuntu) --------------------
    def default_files(self):
        candidates = [POSTLOGIN, "/etc/pam.d/login", "/etc/pam.d/sshd"]
        return [p for p in candidates if os.path.exists(p)]

    def plain(self, manager, skip=()):
        paths = [p for p in (self.module.params["files"] or self.default_files()) if p not in skip]
        for path in paths:
            target = safeedit.resolve_edit_target(path)
            text = _read(target)
            if text is None:
                continue
            if self.present:
                new_text = pamedit.rewrite(text, self.method)
                if new_text == text:
                    continue
                self.files.append(target)
                self.diffs.append(_diff(target, text, new_text))
                if not self.module.check_mode:
                    self.backups.write(target, new_text.encode("utf-8"))
                continue
            entry = self.backups.entry(target)
            if not entry:
                continue
            changed, _message = self.backups.restore(
                target, force=self.module.params["force"], check_mode=True)
            if not changed:
                continue
            original = _read(os.path.join(self.backups.backup_dir, entry["backup"])) or ""
            self.files.append(target)
            self.diffs.append(_diff(target, text, original))
            if not self.module.check_mode:
                self.backups.restore(target, force=self.module.params["force"])
        if manager == "authconfig" and self.present and self.files:
            self.warnings.append(
                "postlogin is generated by authconfig: 'authconfig --updateall' will undo this "
                "edit; run memcg-fix again afterwards")

    def main(self):
        manager = self.manager()
        result = {"manager": manager}
        if manager == "authselect":
            result["profile"] = self.authselect()
            # login and sshd are not authselect's: a direct pam_lastlog line
            # there is edited like on any other host
            self.plain(manager, skip=(POSTLOGIN,))
        else:
            self.plain(manager)
        result.update(changed=bool(self.files), files=self.files, diff=self.diffs)
        return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            method=dict(type="str", choices=list(pamedit.METHODS), default="noupdate"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            files=dict(type="list", elements="path"),
            profile_name=dict(type="str", default="memcg-fix"),
            backup_dir=dict(type="path", default="/var/lib/memcg-fix/backups"),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    name = module.params["profile_name"]
    if not name or "/" in name or name.startswith("."):
        module.fail_json(msg="profile_name must be a plain name, got %r" % name)
    worker = PamLastlog(module)
    try:
        result = worker.main()
    except (Failure, safeedit.EditError) as exc:
        module.fail_json(msg=str(exc))
    for warning in worker.warnings:
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
