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
    C(authselect check) fails, creates a custom profile C(custom/<profile_name>) based on the
    current profile (C(create-profile -b <current>), so a custom profile of the admin's is the
    base, edits and all), fixes that profile's postlogin template, and selects it with the same
    features, taking authselect's own backup on the way (C(select ... --backup=<profile_name>-before)).
    A later C(authselect apply-changes) or C(enable-feature) keeps the fix: it lives in the profile."
  - "If the admin selected another profile after memcg-fix selected its own, the module says so
    (a warning), removes its unused profile and backup, and starts over from the admin's choice."
  - "Files that authselect does not own (/etc/pam.d/login, /etc/pam.d/sshd) are edited in place
    when they carry a pam_lastlog line of their own."
  - "On authconfig (EL7) and plain PAM hosts (Debian/Ubuntu) it edits the pam_lastlog session lines
    in place (atomically, original kept for rollback). On EL7 a later C(authconfig --updateall)
    regenerates postlogin-ac and undoes the edit; the module warns about that."
  - "State C(absent) undoes it: authselect's backup is restored (C(authselect backup-restore)), so
    authselect's files come back byte for byte, then the custom profile and the backup are removed.
    When the authselect configuration changed after memcg-fix applied it (features, the custom
    profile, regenerated files), rollback would discard that change: it refuses and names the
    change, unless C(force). Edited files are restored byte for byte from memcg-fix's backups."
  - Check mode runs every read-only check the real run depends on, so a run that would fail fails
    in check mode too.
options:
  method:
    description:
      - C(noupdate) stops every write (the last-login message stays), C(nowtmp) stops wtmp only,
        C(comment) disables the line (no message, no writes) - kept as a comment, the rule itself
        replaced by C(pam_permit.so) under the same control, so that a C([success=N]) jump over it,
        or its own C([default=N]), still lands on the same rule.
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
      - PAM files to edit in place. Default, those of /etc/pam.d/postlogin (EL), /etc/pam.d/login
        and /etc/pam.d/sshd (Debian/Ubuntu) that exist. On authselect hosts /etc/pam.d/postlogin is
        never edited in place; it is fixed through the custom profile.
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
    description:
      - With C(state=absent), restore even what was changed after memcg-fix changed it (edited
        files; on authselect hosts, features enabled or disabled since, edits of the custom
        profile or of authselect's generated files).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: Runs every read-only check the real run depends on, reports what would change and
      changes nothing.
  diff_mode:
    support: full
    details: Shows the generated postlogin, each edited file and the authselect selection before and after.
  platform:
    platforms: posix
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
author:
  - memcg-fix maintainers (@memcg-fix)
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
  description: Files and directories changed (or that would be, in check mode).
  returned: always
  type: list
  elements: str
profile:
  description: The authselect profile selected after the run (authselect hosts only).
  returned: when authselect manages PAM
  type: str
notices:
  description: What the operator should know about this host, e.g. that the admin selected another
    authselect profile after memcg-fix selected its own (also given as warnings).
  returned: always
  type: list
  elements: str
"""

import hashlib
import os
import shutil
from functools import partial

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside import pamedit, safeedit
from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside.fileio import which
from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside.pam import file_owner
from ansible_collections.memcg_fix.remediate.plugins.module_utils.module_helpers import (
    ModuleFailure,
    command_output,
    file_diff,
    finish,
    one_line,
    read_optional,
    run,
)

POSTLOGIN = "/etc/pam.d/postlogin"
AUTHSELECT_DIR = "/etc/authselect"
AUTHSELECT_CONF = "/etc/authselect/authselect.conf"
AUTHSELECT_CUSTOM = "/etc/authselect/custom"
AUTHSELECT_BACKUPS = "/var/lib/authselect/backups"
# What authselect generates from a profile into /etc/authselect (authselect(8), FILES)
GENERATED = ("system-auth", "password-auth", "fingerprint-auth", "smartcard-auth", "postlogin",
             "nsswitch.conf", "dconf-db", "dconf-locks")
GENERATED_HEADER = "# Generated by authselect on "
# Rollback notes in memcg-fix's manifest. The first two names are those of
# earlier releases, so their records stay readable.
NOTE_PROFILE = "authselect_profile_before_memcg_fix"
NOTE_BACKUP = "authselect_backup_before_memcg_fix"
NOTE_AFTER = "authselect_after_memcg_fix"
NOTE_BACKUPS_DIR_NEW = "authselect_backups_dir_created_by_memcg_fix"
# seconds an authselect call may take (it regenerates a handful of small files)
AUTHSELECT_TIMEOUT = 120


def authselect(*args):
    """The stdout of ``authselect ARGS``; ModuleFailure, quoting its error, unless it exits 0."""
    return command_output(["authselect"] + list(args), AUTHSELECT_TIMEOUT)


def authselect_status(*args):
    """``(rc, what it said)`` of ``authselect ARGS``, for calls whose failure is an answer."""
    rc, out, err = run(["authselect"] + list(args), AUTHSELECT_TIMEOUT)
    return rc, out if rc == 0 else (err or out)


def _sha256(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _generated_body(text):
    """A generated file without authselect's "Generated ... on <date>" line,
    which every regeneration rewrites even when nothing else changes."""
    if text.startswith(GENERATED_HEADER):
        return text.split("\n", 1)[1] if "\n" in text else ""
    return text


def profile_digest(directory):
    """{file name: sha256} of a profile directory (symlinks by their target)."""
    digest = {}
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return digest
    for name in names:
        path = os.path.join(directory, name)
        if os.path.islink(path):
            digest[name] = "link:" + os.readlink(path)
            continue
        data = safeedit.read_file_bytes(path) if os.path.isfile(path) else None
        if data is not None:
            digest[name] = safeedit.sha256_bytes(data)
    return digest


def describe_changes(recorded, now, custom_id):
    """What changed in the authselect configuration between two snapshots."""
    changes = []
    before_words = recorded.get("current", "").split()
    now_words = now["current"].split()
    if before_words[:1] != now_words[:1]:
        changes.append("profile %s -> %s" % (" ".join(before_words[:1]), " ".join(now_words[:1])))
    added = [f for f in now_words[1:] if f not in before_words[1:]]
    removed = [f for f in before_words[1:] if f not in now_words[1:]]
    if added or removed:
        changes.append("features " + " ".join(["+" + f for f in added] + ["-" + f for f in removed]))
    rec_profile, now_profile = recorded.get("profile", {}), now["profile"]
    for name in sorted(set(rec_profile) | set(now_profile)):
        if rec_profile.get(name) != now_profile.get(name):
            what = ("added" if name not in rec_profile else
                    "removed" if name not in now_profile else "edited")
            changes.append("%s/%s %s" % (custom_id, name, what))
    if not changes:
        # neither features nor the profile explain it, e.g. user-nsswitch.conf
        # edited and applied
        rec_gen, now_gen = recorded.get("generated", {}), now["generated"]
        for name in sorted(set(rec_gen) | set(now_gen)):
            if rec_gen.get(name) != now_gen.get(name):
                changes.append("%s/%s regenerated with other content" % (AUTHSELECT_DIR, name))
    return changes


class PamLastlog(object):
    def __init__(self, module):
        self.module = module
        self.method = module.params["method"]
        self.present = module.params["state"] == "present"
        self.force = module.params["force"]
        self.backups = safeedit.Backups(module.params["backup_dir"])
        self.name = module.params["profile_name"]
        self.custom_id = "custom/" + self.name
        self.custom_dir = os.path.join(AUTHSELECT_CUSTOM, self.name)
        self.backup_name = self.name + "-before"
        self.files = []
        self.diffs = []
        self.warnings = []
        self.notices = []

    def manager(self):
        text = read_optional(POSTLOGIN)
        link = os.readlink(POSTLOGIN) if os.path.islink(POSTLOGIN) else None
        owner = file_owner(text, link) if text is not None else None
        if owner == "authselect" and not which("authselect"):
            raise ModuleFailure("%s is generated by authselect, but authselect is not installed" % POSTLOGIN)
        return owner or "none"

    # -- authselect (EL8/9) ------------------------------------------------
    def authselect_current(self):
        rc, out = authselect_status("current", "--raw")
        words = out.split()
        if rc != 0 or not words:
            raise ModuleFailure("authselect has no current profile (authselect current: rc=%s)" % rc)
        return words[0], words[1:]

    def authselect_check(self):
        rc, out = authselect_status("check")
        return rc == 0, one_line(out, 200)

    def snapshot(self):
        """What rollback must find unchanged: the selection, our profile, the generated files."""
        profile, features = self.authselect_current()
        generated = {}
        for name in GENERATED:
            text = read_optional(os.path.join(AUTHSELECT_DIR, name))
            if text is not None:
                generated[name] = _sha256(_generated_body(text))
        return {"current": " ".join([profile] + features),
                "profile": profile_digest(self.custom_dir), "generated": generated}

    def backup_path(self, name=None):
        return os.path.join(AUTHSELECT_BACKUPS, name or self.backup_name)

    def authselect(self):
        valid, detail = self.authselect_check()
        profile, features = self.authselect_current()
        if self.present:
            if not valid:
                raise ModuleFailure(
                    "authselect check fails, so PAM files were edited outside authselect; refusing "
                    "to change PAM. Review them, then run 'authselect select <profile> --force' or "
                    "'authselect apply-changes' (%s)" % detail)
            return self.authselect_apply(profile, features)
        return self.authselect_revert(profile, features, valid, detail)

    def authselect_apply(self, profile, features):
        stale = False
        if self.backups.note(NOTE_PROFILE):
            if profile == self.custom_id:
                return self.authselect_refix(profile, features)
            stale = self.forget_reselected(profile, features)
        elif profile == self.custom_id:
            raise ModuleFailure(
                "authselect profile %s is selected, but memcg-fix has no record of creating it in "
                "%s; it is not memcg-fix's to change: choose another profile_name"
                % (self.custom_id, self.backups.backup_dir))
        generated = read_optional(POSTLOGIN) or ""
        if not pamedit.writing_lines(generated, self.method):
            return profile  # nothing writes: leave the profile alone
        self.preflight(profile, stale)
        after = self.rewrite(generated)
        self.files.extend([POSTLOGIN, AUTHSELECT_CONF, self.custom_dir, self.backup_path()])
        self.diffs.append(file_diff("%s (via authselect profile %s)" % (POSTLOGIN, self.custom_id),
                                    generated, after))
        self.diffs.append(file_diff("authselect profile", " ".join([profile] + features) + "\n",
                                    " ".join([self.custom_id] + features) + "\n"))
        if self.module.check_mode:
            return self.custom_id
        backups_dir_existed = os.path.isdir(AUTHSELECT_BACKUPS)
        done = []
        try:
            # -b takes the full id: "custom/X" is the admin's custom profile,
            # a bare "X" only the vendor/default ones
            authselect("create-profile", self.name, "-b", profile)
            done.append("profile")
            self.fix_template()
            authselect("select", self.custom_id, *(features + ["--backup=" + self.backup_name]))
            done.append("selected")
            authselect("check")
            self.verify_postlogin()
        except (ModuleFailure, safeedit.EditError, pamedit.RewriteError) as exc:
            raise ModuleFailure("%s%s" % (exc, self.undo_failed_apply(done, backups_dir_existed)))
        # the notes are written only once the apply is complete: a failed run
        # leaves no record that a later rollback would act on
        self.backups.note(NOTE_PROFILE, " ".join([profile] + features))
        self.backups.note(NOTE_BACKUP, self.backup_name)
        if not backups_dir_existed:
            self.backups.note(NOTE_BACKUPS_DIR_NEW, True)
        self.record_after()
        return self.custom_id

    def rewrite(self, text):
        try:
            return pamedit.rewrite(text, self.method)
        except pamedit.RewriteError as exc:
            raise ModuleFailure(str(exc))

    def preflight(self, profile, stale_removed):
        """Everything a real apply depends on that can be checked without a change,
        so check mode fails where the run would."""
        _rc, usage = authselect_status("select", "--help")
        if "--backup" not in usage:
            raise ModuleFailure("this authselect has no 'select --backup=NAME'; memcg-fix needs it to "
                                "take a backup that rollback can restore")
        rc, out = authselect_status("show", profile)
        if rc != 0:
            raise ModuleFailure("cannot read the current authselect profile %s, the base of %s "
                                "(authselect show: %s)" % (profile, self.custom_id, one_line(out, 200)))
        if os.path.lexists(self.custom_dir) and not stale_removed:
            raise ModuleFailure(
                "authselect profile %s already exists but is not selected, and memcg-fix did not "
                "create it; remove it or choose another profile_name" % self.custom_id)
        if os.path.lexists(self.backup_path()) and not stale_removed:
            raise ModuleFailure(
                "an authselect backup named %s exists and is not memcg-fix's; remove it "
                "('authselect backup-remove %s') or choose another profile_name"
                % (self.backup_name, self.backup_name))
        template = read_optional(self.base_template(profile))
        if template is not None:
            self.rewrite(template)  # a line it cannot rewrite fails here, not halfway

    def base_template(self, profile):
        if profile.startswith("custom/"):
            return os.path.join(AUTHSELECT_CUSTOM, profile[len("custom/"):], "postlogin")
        for kind in ("vendor", "default"):
            path = os.path.join("/usr/share/authselect", kind, profile, "postlogin")
            if os.path.exists(path):
                return path
        return os.path.join("/usr/share/authselect/default", profile, "postlogin")

    def fix_template(self):
        template = os.path.join(self.custom_dir, "postlogin")
        text = read_optional(template)
        if text is None:
            raise ModuleFailure("profile %s has no postlogin template at %s" % (self.custom_id, template))
        new_text = self.rewrite(text)
        if new_text != text:
            # the profile is memcg-fix's own: no backup, rollback removes it whole
            safeedit.atomic_write(template, new_text.encode("utf-8"))

    def verify_postlogin(self):
        left = pamedit.writing_lines(read_optional(POSTLOGIN) or "", self.method)
        if left:
            raise ModuleFailure("after selecting %s, %s still has: %s"
                                % (self.custom_id, POSTLOGIN, left[0].strip()))

    def record_after(self):
        self.backups.set_note(NOTE_AFTER, self.snapshot())

    def forget_notes(self):
        for key in (NOTE_PROFILE, NOTE_BACKUP, NOTE_AFTER, NOTE_BACKUPS_DIR_NEW):
            self.backups.forget_note(key)

    def undo_failed_apply(self, done, backups_dir_existed):
        """Put back what a failed apply did; returns text for the error message."""
        problems = []
        if "selected" in done or os.path.isdir(self.backup_path()):
            if "selected" in done:
                rc, out = authselect_status("backup-restore", self.backup_name)
                if rc != 0:
                    problems.append("backup-restore %s failed: %s"
                                    % (self.backup_name, one_line(out, 200)))
            if not problems:
                self.remove_backup(self.backup_name, backups_dir_existed)
        if "profile" in done and not problems:
            # (while the restore failed, the profile is still selected: it stays)
            shutil.rmtree(self.custom_dir, ignore_errors=True)
        if problems:
            return "; undoing it failed too: %s" % "; ".join(problems)
        return "; nothing was left changed"

    def remove_backup(self, name, remove_empty_dir):
        if os.path.isdir(self.backup_path(name)):
            authselect("backup-remove", name)
        if remove_empty_dir:
            try:
                os.rmdir(AUTHSELECT_BACKUPS)  # only when empty
            except OSError:
                pass

    def authselect_refix(self, profile, features):
        """Our profile is selected: fix its template again if someone undid the fix."""
        template = os.path.join(self.custom_dir, "postlogin")
        text = read_optional(template) or ""
        generated = read_optional(POSTLOGIN) or ""
        if not pamedit.writing_lines(text, self.method) and \
                not pamedit.writing_lines(generated, self.method):
            return self.custom_id
        self.files.extend([POSTLOGIN, template])
        self.diffs.append(file_diff("%s (via authselect profile %s)" % (POSTLOGIN, self.custom_id),
                                    generated, self.rewrite(generated)))
        if self.module.check_mode:
            return self.custom_id
        recorded = self.backups.note(NOTE_AFTER) or {}
        unchanged_but_postlogin = not describe_changes(
            _without_postlogin(recorded), _without_postlogin(self.snapshot()), self.custom_id)
        self.fix_template()
        authselect("apply-changes")
        authselect("check")
        self.verify_postlogin()
        if unchanged_but_postlogin:
            self.record_after()
        # else: keep the old record, so rollback still sees the admin's other changes
        return self.custom_id

    def leftovers(self, name):
        found = []
        if os.path.isdir(self.custom_dir):
            found.append(self.custom_dir)
        if name and os.path.isdir(self.backup_path(name)):
            found.append(self.backup_path(name))
        return found

    def forget_reselected(self, profile, features):
        """memcg-fix applied before, but another profile is selected now: report it,
        remove what memcg-fix left, forget the old rollback point.

        Returns True when the custom profile and backup are (or, in check mode,
        would be) gone."""
        backup = self.backups.note(NOTE_BACKUP)
        leftovers = self.leftovers(backup)
        if not leftovers:
            # an earlier run that failed before it changed anything left only notes
            if not self.module.check_mode:
                self.forget_notes()
            return True
        self.notify(
            "authselect profile %s was selected after memcg-fix selected %s; memcg-fix leaves "
            "that choice alone, removes its unused %s and starts over from %s"
            % (" ".join([profile] + features), self.custom_id, " and ".join(leftovers), profile))
        edited = self.custom_profile_edited()
        if edited and not self.force:
            raise ModuleFailure(
                "%s was edited after memcg-fix created it (%s) and is no longer selected; "
                "memcg-fix will not delete it: rename or remove it, or choose another profile_name"
                % (self.custom_id, ", ".join(edited)))
        self.files.extend(leftovers)
        if not self.module.check_mode:
            self.remove_leftovers(backup)
            self.forget_notes()
        return True

    def custom_profile_edited(self):
        recorded = (self.backups.note(NOTE_AFTER) or {}).get("profile")
        if recorded is None:
            return []
        now = profile_digest(self.custom_dir)
        return ["%s %s" % (name, "edited" if name in now and name in recorded else
                           "added" if name in now else "removed")
                for name in sorted(set(recorded) | set(now)) if recorded.get(name) != now.get(name)]

    def remove_leftovers(self, backup):
        if os.path.isdir(self.custom_dir):
            shutil.rmtree(self.custom_dir)
        if backup:
            self.remove_backup(backup, bool(self.backups.note(NOTE_BACKUPS_DIR_NEW)))

    def notify(self, message):
        self.warnings.append(message)
        self.notices.append(message)

    def authselect_revert(self, profile, features, valid, detail):
        before = self.backups.note(NOTE_PROFILE)
        if not before:
            return profile
        if profile != self.custom_id:
            # the admin selected another profile since: theirs stays
            backup = self.backups.note(NOTE_BACKUP)
            leftovers = self.leftovers(backup)
            if leftovers:
                self.notify(
                    "authselect profile %s was selected after memcg-fix selected %s; rollback "
                    "leaves that choice alone and only removes %s"
                    % (" ".join([profile] + features), self.custom_id, " and ".join(leftovers)))
                edited = self.custom_profile_edited()
                if edited and not self.force:
                    raise ModuleFailure(
                        "%s was edited after memcg-fix created it (%s); rollback would delete "
                        "that: keep it by renaming it, or use force" % (self.custom_id, ", ".join(edited)))
                self.files.extend(leftovers)
            if not self.module.check_mode:
                if leftovers:
                    self.remove_leftovers(backup)
                self.forget_notes()
            return profile
        backup = self.backups.note(NOTE_BACKUP)
        if not valid and not self.force:
            raise ModuleFailure(
                "authselect check fails: files authselect generated were edited by hand after "
                "memcg-fix selected %s, and restoring its backup would discard that; review them, "
                "or use force (%s)" % (self.custom_id, detail))
        recorded = self.backups.note(NOTE_AFTER)
        if not self.force:
            if recorded is None:
                raise ModuleFailure(
                    "memcg-fix has no record of what %s looked like after it was applied, so it "
                    "cannot tell whether it changed since; use force to restore %s anyway"
                    % (self.custom_id, before))
            changes = describe_changes(recorded, self.snapshot(), self.custom_id)
            if changes:
                raise ModuleFailure(
                    "the authselect configuration changed after memcg-fix applied it (%s); rolling "
                    "back to '%s' would discard that. Keep it, or use force and make the change "
                    "again on the old profile" % ("; ".join(changes), before))
        restorable = bool(backup) and os.path.isdir(self.backup_path(backup))
        old_postlogin = read_optional(os.path.join(self.backup_path(backup), "postlogin")) if restorable else None
        self.files.extend([POSTLOGIN, AUTHSELECT_CONF] + self.leftovers(backup))
        self.diffs.append(file_diff(POSTLOGIN, read_optional(POSTLOGIN) or "",
                                    old_postlogin if old_postlogin is not None else "(regenerated)\n"))
        self.diffs.append(file_diff("authselect profile", " ".join([profile] + features) + "\n",
                                    before + "\n"))
        if self.module.check_mode:
            return before.split()[0]
        if restorable:
            authselect("backup-restore", backup)
        else:
            words = before.split()
            authselect("select", *(words + ([] if valid else ["--force"])))
            self.warnings.append(
                "authselect backup %s is gone: %s was selected again instead, so its files are "
                "regenerated, not restored byte for byte" % (backup, before))
        authselect("check")
        now, _features = self.authselect_current()
        if " ".join([now] + _features) != before:
            raise ModuleFailure("after restoring authselect backup %s the profile is '%s', not '%s'"
                                % (backup, " ".join([now] + _features), before))
        self.remove_leftovers(backup)
        self.forget_notes()
        return now

    # -- authconfig (EL7) and plain PAM (Debian/Ubuntu) --------------------
    def default_files(self):
        candidates = [POSTLOGIN, "/etc/pam.d/login", "/etc/pam.d/sshd"]
        return [p for p in candidates if os.path.exists(p)]

    def plain(self, manager, skip=()):
        paths = [p for p in (self.module.params["files"] or self.default_files()) if p not in skip]
        for path in paths:
            target = safeedit.resolve_edit_target(path)
            text = read_optional(target)
            if text is None:
                continue
            if self.present:
                new_text = self.rewrite(text)
                if new_text == text:
                    continue
                self.files.append(target)
                self.diffs.append(file_diff(target, text, new_text))
                if not self.module.check_mode:
                    self.backups.write(target, new_text.encode("utf-8"))
                continue
            entry = self.backups.entry(target)
            if not entry:
                continue
            changed, _message = self.backups.restore(target, force=self.force, check_mode=True)
            if not changed:
                continue
            original = read_optional(os.path.join(self.backups.backup_dir, entry["backup"])) or ""
            self.files.append(target)
            self.diffs.append(file_diff(target, text, original))
            if not self.module.check_mode:
                self.backups.restore(target, force=self.force)
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
        result.update(changed=bool(self.files), files=self.files, diff=self.diffs,
                      notices=self.notices)
        return result


def _without_postlogin(snapshot):
    return {"current": snapshot.get("current", ""),
            "profile": dict((k, v) for k, v in snapshot.get("profile", {}).items() if k != "postlogin"),
            "generated": dict((k, v) for k, v in snapshot.get("generated", {}).items()
                              if k != "postlogin")}


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
    if not name or "/" in name or name.startswith(".") or name.startswith("-"):
        module.fail_json(msg="profile_name must be a plain name, got %r" % name)
    finish(module, partial(_work, PamLastlog(module)))


def _work(worker):
    result = worker.main()
    for warning in worker.warnings:
        worker.module.warn(warning)
    return result


if __name__ == "__main__":
    main()
