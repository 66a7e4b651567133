#!/usr/bin/python
# -*- coding: utf-8 -*-
# Part of memcg-fix. Runs on the target's own Python (2.7, 3.6+).

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: memcg_kernel_args
short_description: Add or remove one kernel argument on every boot entry
description:
  - Adds (or removes) one kernel argument, such as C(cgroup.memory=nokmem), on B(every) boot entry,
    and in the files a later boot-loader regeneration would rebuild the entries from.
  - "EL7/EL8/EL9: C(grubby --update-kernel=ALL), and C(GRUB_CMDLINE_LINUX) in /etc/default/grub edited by
    this module (only that line; grubby-bls is told C(--no-etc-grub-update) because its own edit also
    rewrites C(GRUB_CMDLINE_LINUX_DEFAULT)). EL8's grubby updates C(kernelopts) in grubenv, EL8's and
    EL9's update (and may create) /etc/kernel/cmdline, which new kernels take their options from."
  - Every file grubby can write is backed up before it runs; the files it changed (or will change) are
    reported in C(files) and shown with C(--diff); rollback (C(state=absent)) puts them back byte for
    byte, removes the ones grubby created, and takes the argument off entries made since.
  - An argument the owner already has with the same key keeps its options where the kernel takes a
    list (C(cgroup.memory=nosocket) becomes C(cgroup.memory=nosocket,nokmem)); rollback takes away
    only ours. Any other same-key argument is refused, never replaced.
  - "Debian/Ubuntu: a drop-in /etc/default/grub.d/99-memcg-fix.cfg that appends to
    C(GRUB_CMDLINE_LINUX), then update-grub. The drop-in is read after the cloud images' own."
  - Check mode runs nothing that writes (only C(grubby --info=ALL)); it computes what grubby will
    write, so its entries and files are those of the real run (which is checked against them).
  - After a change it re-reads every entry and fails if any entry lacks (or still has) the argument.
  - Every file it writes is written atomically, and its original is kept in I(backup_dir).
options:
  arg:
    description: The argument, exactly as it must appear, e.g. C(cgroup.memory=nokmem).
    type: str
    required: true
  state:
    description: C(present) adds the argument, C(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  backend:
    description: C(auto) picks C(grubby) on EL/Fedora and C(debian-grub) on Debian/Ubuntu from /etc/os-release.
    type: str
    choices: [auto, grubby, debian-grub]
    default: auto
  backup_dir:
    description: Where originals are kept for rollback.
    type: path
    default: /var/lib/memcg-fix/backups
  dropin:
    description: The GRUB drop-in the C(debian-grub) backend manages.
    type: path
    default: /etc/default/grub.d/99-memcg-fix.cfg
  command_timeout:
    description: Seconds to allow grubby or update-grub to run.
    type: int
    default: 600
attributes:
  check_mode:
    support: full
    details: Runs only C(grubby --info=ALL); computes what grubby will write and reports those files and entries.
  diff_mode:
    support: full
    details: Shows every file it changes (or would change) and the boot entries before and after.
  platform:
    platforms: posix
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
author:
  - memcg-fix maintainers (@memcg-fix)
"""

EXAMPLES = r"""
- name: Boot every entry with kmem accounting off
  memcg_fix.remediate.memcg_kernel_args:
    arg: cgroup.memory=nokmem
  register: nokmem

- name: Remove it again (rollback)
  memcg_fix.remediate.memcg_kernel_args:
    arg: cgroup.memory=nokmem
    state: absent
"""

RETURN = r"""
backend:
  description: The backend used (C(grubby) or C(debian-grub)).
  returned: always
  type: str
entries:
  description: Every boot entry after the change (or as it would be, in check mode).
  returned: always
  type: list
  elements: dict
missing:
  description: Kernels of the entries that lack the argument (state=present) or still have it (state=absent) after the change.
  returned: always
  type: list
  elements: str
reboot_required:
  description: The boot entries and the running kernel's /proc/cmdline disagree about the argument.
  returned: always
  type: bool
files:
  description: Files this run changed (or would change).
  returned: always
  type: list
  elements: str
"""

import os
from functools import partial

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside import bootargs, grubbyedit, safeedit
from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside.boot import parse_grub_cfg, parse_grubby_info
from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside.cmdline import has_nokmem, split_args
from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside.fileio import which
from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside.kernel import parse_os_release
from ansible_collections.memcg_fix.remediate.plugins.module_utils.module_helpers import (
    ModuleFailure,
    command_output,
    file_diff,
    finish,
    read_optional,
)

DEFAULT_GRUB = "/etc/default/grub"
KERNEL_CMDLINE = "/etc/kernel/cmdline"
GRUB2_CFG = "/boot/grub2/grub.cfg"
GRUBENV = "/boot/grub2/grubenv"
BLS_DIR = "/boot/loader/entries"
DEBIAN_GRUB_CFG = "/boot/grub/grub.cfg"


def pick_backend(requested):
    if requested != "auto":
        return requested, None
    text = read_optional("/etc/os-release")
    if text is None:
        raise ModuleFailure("cannot pick a boot-loader backend: /etc/os-release is unreadable; set backend")
    release = parse_os_release(text)
    ids = [release.get("id") or ""] + list(release.get("id_like") or [])
    if any(i in ("rhel", "centos", "fedora", "rocky", "almalinux", "ol", "amzn") for i in ids):
        return "grubby", release.get("major")
    if any(i in ("debian", "ubuntu") for i in ids):
        return "debian-grub", release.get("major")
    raise ModuleFailure("no boot-loader backend for %s; set backend to grubby or debian-grub" % (release.get("id") or "this distribution"))


def entry_line(entry, args):
    return "index=%s kernel=%s args=\"%s\"" % (entry["index"], entry["kernel"], " ".join(args))


class KernelArgs(object):
    def __init__(self, module):
        self.module = module
        self.arg = module.params["arg"]
        self.present = module.params["state"] == "present"
        self.timeout = module.params["command_timeout"]
        self.backups = safeedit.Backups(module.params["backup_dir"])
        self.files = []
        self.diffs = []

    # -- shared -------------------------------------------------------------
    def wanted(self, args):
        present = grubbyedit.has_arg(args, self.arg)
        return present if self.present else not present

    def transform(self, text):
        return bootargs.add_arg(text, self.arg) if self.present else bootargs.remove_arg(text, self.arg)

    def preview(self, entries):
        """The entries as they will be after the change (for check mode and diffs)."""
        out = []
        for entry in entries:
            args = split_args(self.transform(" ".join(entry["args"])))
            out.append(dict(entry, args=args, nokmem=has_nokmem(args)))
        return out

    def edit_file(self, path, new_text, old_text):
        """Change ``path`` (atomically, with a backup) unless in check mode."""
        self.files.append(path)
        self.diffs.append(file_diff(path, old_text or "", new_text))
        if self.module.check_mode:
            return
        if not self.present and self.backups.entry(path):
            # rollback: the original back byte for byte when nobody edited it since
            try:
                self.backups.restore(path)
                return
            except safeedit.EditError:
                pass  # edited since; fall back to removing just our argument
        try:
            self.backups.write(path, new_text.encode("utf-8"))
        except safeedit.EditError as exc:
            raise ModuleFailure(str(exc))

    def edit_assignment_file(self, path, name):
        text = read_optional(path)
        if text is None:
            return
        try:
            new_text = bootargs.edit_shell_assignment(text, name, self.transform)
        except ValueError as exc:
            raise ModuleFailure("%s: %s" % (path, exc))
        if new_text != text:
            self.edit_file(path, new_text, text)

    def reboot_required(self):
        cmdline = read_optional("/proc/cmdline") or ""
        return self.wanted(split_args(cmdline)) is False

    # -- grubby (EL7/8/9, Fedora) -----------------------------------------
    def apply_grubby(self, major):
        return GrubbyBackend(self, major).main()

    # -- Debian / Ubuntu GRUB ---------------------------------------------
    def debian_entries(self):
        text = read_optional(DEBIAN_GRUB_CFG)
        return parse_grub_cfg(text) if text is not None else []

    def apply_debian(self):
        dropin = self.module.params["dropin"]
        current = read_optional(dropin)
        desired = bootargs.dropin_text([self.arg]) if self.present else None
        before = self.debian_entries()
        entries_need = [e for e in before if not self.wanted(e["args"])]
        dropin_need = (current != desired) if self.present else (current is not None)
        if not dropin_need and not entries_need:
            return before
        if dropin_need:
            self.files.append(dropin)
            self.diffs.append(file_diff(dropin, current or "", desired or ""))
        if entries_need:
            self.files.append(DEBIAN_GRUB_CFG)
            self.diffs.append(file_diff(
                "boot entries (%s)" % DEBIAN_GRUB_CFG,
                "\n".join(entry_line(e, e["args"]) for e in before) + "\n",
                "\n".join(entry_line(e, e["args"]) for e in self.preview(before)) + "\n"))
        if self.module.check_mode:
            return self.preview(before)
        self.begin_entry_change()
        try:
            if self.present:
                parent = os.path.dirname(dropin)
                if not os.path.isdir(parent):
                    os.makedirs(parent, 0o755)
                self.backups.write(dropin, desired.encode("utf-8"), mode=0o644)
            elif current is not None:
                if self.backups.entry(dropin):
                    self.backups.restore(dropin, force=True)
                else:
                    os.unlink(dropin)
        except (safeedit.EditError, OSError) as exc:
            raise ModuleFailure("cannot change %s: %s" % (dropin, exc))
        updater = which("update-grub") or which("grub-mkconfig")
        if not updater:
            raise ModuleFailure("neither update-grub nor grub-mkconfig is installed")
        if updater.endswith("grub-mkconfig"):
            command_output([updater, "-o", DEBIAN_GRUB_CFG], self.timeout)
        else:
            command_output([updater], self.timeout)
        return self.debian_entries()

    def note_key(self):
        return "kernel_arg_added:" + self.arg

    def begin_entry_change(self):
        """Boot entries are about to change. When adding, remember it first:
        a grubby or update-grub that fails half-way (or a host lost mid-run)
        can leave some entries with the argument, and rollback only removes
        what such a note says memcg-fix added."""
        if self.present:
            try:
                self.backups.note(self.note_key(), True)
            except (safeedit.EditError, OSError) as exc:
                raise ModuleFailure("cannot record the change in %s: %s"
                                    % (self.backups.manifest_path, exc))

    def main(self):
        backend, major = pick_backend(self.module.params["backend"])
        if not self.present and not self.backups.note(self.note_key()):
            # Only ever remove what memcg-fix added: an argument the host had
            # before memcg-fix is the owner's, not ours.
            return dict(changed=False, backend=backend, entries=[], missing=[],
                        reboot_required=False, files=[], diff=[],
                        msg="%s was not added by memcg-fix; left alone" % self.arg)
        if backend == "grubby":
            entries = self.apply_grubby(major)
        else:
            entries = self.apply_debian()
        missing = [e for e in entries if not self.wanted(e["args"])]
        if not self.module.check_mode:
            if not entries and self.present:
                raise ModuleFailure("no boot entries found after the change; the argument is on none of them")
            if missing:
                raise ModuleFailure("after the change, %d boot entr%s still %s %s: %s" % (
                    len(missing), "y" if len(missing) == 1 else "ies",
                    "lack" if self.present else "have", self.arg,
                    ", ".join(str(e.get("kernel")) for e in missing)))
        changed = bool(self.files)
        if not self.present and not self.module.check_mode:
            # every entry is free of the argument now (checked above), also
            # when an earlier failed run had added it to none of them
            self.backups.forget_note(self.note_key())
        all_wanted = not missing and bool(entries or not self.present)
        reboot_required = bool(all_wanted and self.reboot_required())
        return dict(
            changed=changed,
            backend=backend,
            entries=entries,
            missing=[e.get("kernel") for e in missing],
            reboot_required=reboot_required,
            files=self.files,
            diff=self.diffs,
        )


class GrubbyBackend(object):
    """EL7/8/9 (and Fedora): every boot entry through grubby.

    Before grubby runs, every file it can write is backed up, and what it will
    write is computed (hostside/grubbyedit.py), so check mode shows the real
    result and the files, and the run is checked against it. The files are
    the ones grubby manages (EL7: grub.cfg; EL8/EL9: the BLS entries, grubenv,
    /etc/kernel/cmdline) and /etc/default/grub, which memcg-fix edits itself
    (grubby-bls is told ``--no-etc-grub-update``: its own edit also rewrites
    GRUB_CMDLINE_LINUX_DEFAULT).
    """

    def __init__(self, km, major):
        self.km = km
        self.arg = km.arg
        self.major = major
        self.owner = "kernel-args:" + km.arg
        self.grubby = which("grubby")
        if not self.grubby:
            raise ModuleFailure("grubby is not installed; it is how EL manages boot entries")
        self.before = self.entries()
        if not self.before:
            raise ModuleFailure("grubby --info=ALL lists no boot entries; refusing to guess")
        # grubby-bls prints an id for every entry, EL7's C grubby none
        self.legacy = all(e.get("id") is None for e in self.before)
        self.grub_cfg = safeedit.resolve_edit_target(GRUB2_CFG)

    # -- reading ------------------------------------------------------------
    def entries(self):
        return parse_grubby_info(command_output([self.grubby, "--info=ALL"], self.km.timeout))

    def entry_path(self, entry):
        return "%s/%s.conf" % (BLS_DIR, entry["id"])

    def boot_paths(self):
        """Every file grubby can write on this host, and /etc/default/grub."""
        if self.legacy:
            paths = [self.grub_cfg, GRUBENV]
        else:
            paths = [self.entry_path(e) for e in self.before] + [GRUBENV, KERNEL_CMDLINE]
        return paths + [DEFAULT_GRUB]

    def read_files(self):
        return dict((path, read_optional(path)) for path in self.boot_paths())

    def entries_from_files(self, files):
        """The entries' --info args as the files say they will be."""
        out = []
        if self.legacy:
            lines = grubbyedit.legacy_entry_args(files.get(self.grub_cfg) or "")
            if len(lines) != len(self.before):
                raise ModuleFailure("grub.cfg has %d kernel lines but grubby lists %d entries"
                                    % (len(lines), len(self.before)))
            for number, entry in enumerate(self.before):
                out.append(self.with_args(entry, lines[number]))
            return out
        kernelopts = grubbyedit.grubenv_kernelopts(files.get(GRUBENV) or "")
        for entry in self.before:
            text = files.get(self.entry_path(entry))
            if text is None:
                out.append(entry)
                continue
            options = grubbyedit.bls_value(text, "options")
            out.append(self.with_args(entry, grubbyedit.info_args(
                grubbyedit.expand_kernelopts(options, kernelopts))))
        return out

    @staticmethod
    def with_args(entry, args):
        return dict(entry, args=list(args), nokmem=has_nokmem(args))

    def note(self, path, before, after):
        self.km.files.append(path)
        self.km.diffs.append(file_diff(path, before or "", after or ""))

    def note_entries(self, before, after):
        self.km.diffs.append(file_diff("boot entries (grubby --info=ALL)",
                                       "\n".join(entry_line(e, e["args"]) for e in before) + "\n",
                                       "\n".join(entry_line(e, e["args"]) for e in after) + "\n"))

    def main(self):
        return self.add() if self.km.present else self.remove()

    # -- apply --------------------------------------------------------------
    def add(self):
        need = [e for e in self.before if not grubbyedit.has_arg(e["args"], self.arg)]
        current = self.read_files()
        after = {}
        try:
            word = grubbyedit.common_word([e["args"] for e in need], self.arg)
            if word:
                after.update(self.grubby_result(current, word))
            after.update(self.own_edits(dict(current, **after), grubby_ran=bool(word)))
        except grubbyedit.PlanError as exc:
            raise ModuleFailure(str(exc))
        changes = dict((p, t) for p, t in after.items() if t != current.get(p))
        files_after = dict(current, **after)
        preview = self.entries_from_files(files_after) if word else self.before
        if word:
            self.note_entries(self.before, preview)
        for path in sorted(changes):
            self.note(path, current.get(path), changes[path])
        if self.km.module.check_mode or not changes:
            return preview
        if word:
            self.km.begin_entry_change()
            self.preserve_all()
            argv = [self.grubby, "--update-kernel=ALL", "--args=%s" % word]
            if not self.legacy:
                argv.append("--no-etc-grub-update")  # grubby-bls takes it only last
            command_output(argv, self.km.timeout)
        for path in sorted(self.own_paths(changes, word)):
            self.write(path, changes[path])
        actual = self.settle_all(current)
        real = self.entries()
        if [(e["kernel"], e["args"]) for e in real] != [(e["kernel"], e["args"]) for e in preview]:
            raise ModuleFailure("grubby's result differs from the preview: %s" % "; ".join(
                "%s: %s" % (e["kernel"], " ".join(e["args"])) for e in real))
        unexpected = sorted(set(actual) ^ set(changes))
        if unexpected:
            self.km.module.warn("grubby changed other files than foreseen: %s (backed up)"
                                % ", ".join(unexpected))
            self.km.files[:] = sorted(actual)
        return real

    def grubby_result(self, current, word):
        """{path: text} of what ``grubby --update-kernel=ALL --args=word`` writes."""
        if self.legacy:
            return {self.grub_cfg: grubbyedit.legacy_update(current[self.grub_cfg] or "", word)}
        plan = grubbyedit.BlsPlan(
            [grubbyedit.BlsEntry(self.entry_path(e), current.get(self.entry_path(e)) or "")
             for e in self.before],
            current.get(GRUBENV), current.get(KERNEL_CMDLINE),
            restores_kernelopts=self.major == 8)
        files, _args = plan.update_all(word)
        out = {}
        for path, text in files.items():
            out[GRUBENV if path == "grubenv" else path] = text
        return out

    def own_edits(self, files, grubby_ran):
        """The files grubby leaves alone that later entries are built from:
        GRUB_CMDLINE_LINUX (grub2-mkconfig) and, where grubby did not run,
        /etc/kernel/cmdline (kernel-install, EL9)."""
        out = {}
        text = files.get(DEFAULT_GRUB)
        if text is not None:
            try:
                out[DEFAULT_GRUB] = bootargs.edit_shell_assignment(
                    text, "GRUB_CMDLINE_LINUX", self.add_to_value)
            except ValueError as exc:
                raise ModuleFailure("%s: %s" % (DEFAULT_GRUB, exc))
        cmdline = files.get(KERNEL_CMDLINE)
        if not self.legacy and not grubby_ran and cmdline is not None:
            first, sep, rest = cmdline.partition("\n")
            out[KERNEL_CMDLINE] = self.add_to_value(first) + sep + rest
        return out

    def add_to_value(self, value):
        word = grubbyedit.with_arg(value.split(), self.arg)
        return grubbyedit.legacy_replace(value, word) if word else value

    def own_paths(self, changes, word):
        own = [DEFAULT_GRUB]
        if not word:
            own.append(KERNEL_CMDLINE)
        return [p for p in own if p in changes]

    # -- backups ------------------------------------------------------------
    def preserve_all(self):
        try:
            for path in self.boot_paths():
                self.km.backups.preserve(path, owner=self.owner)
        except (safeedit.EditError, OSError) as exc:
            raise ModuleFailure("cannot back up the boot files before grubby runs: %s" % exc)

    def write(self, path, text):
        try:
            self.km.backups.write(path, text.encode("utf-8"), owner=self.owner)
        except safeedit.EditError as exc:
            raise ModuleFailure(str(exc))

    def settle_all(self, before):
        """After the run: forget the backups of files nothing changed, record
        the others. Returns the paths that changed."""
        changed = []
        try:
            for path in self.boot_paths():
                if self.km.backups.entry(path) is None:
                    continue
                now = read_optional(path)
                if now == before.get(path):
                    if self.km.backups.entry(path).get("written_sha256") is None:
                        self.km.backups.forget(path)  # preserved for this run only
                    continue
                self.km.backups.record_written(path)
                changed.append(path)
        except safeedit.EditError as exc:
            raise ModuleFailure(str(exc))
        return changed

    # -- rollback -----------------------------------------------------------
    def remove(self):
        backups = self.km.backups
        current = self.read_files()
        files_after = dict(current)
        actions = []
        try:
            for path in backups.owned_by(self.owner):
                action, text = self.undo(path)
                actions.append((path, action, text))
                if action in ("restore", "revert"):
                    files_after[path] = text
                    self.note(path, read_optional(path), text)
            for path in (GRUBENV, KERNEL_CMDLINE):
                # an argument no backup accounts for (an earlier memcg-fix version)
                if backups.entry(path) is None and files_after.get(path) is not None:
                    text = self.strip(path, None, files_after[path])
                    if text != files_after[path]:
                        actions.append((path, "strip", text))
                        self.note(path, files_after[path], text)
                        files_after[path] = text
        except (safeedit.EditError, grubbyedit.PlanError) as exc:
            raise ModuleFailure(str(exc))
        planned = self.entries_from_files(files_after)
        leftovers = [e for e in planned if grubbyedit.has_arg(e["args"], self.arg)]
        preview = [self.with_args(e, self.leftover_args(e["args"])) if e in leftovers else e
                   for e in planned]
        if leftovers or actions:
            self.note_entries(self.before, preview)
        if leftovers:
            self.km.files.append("boot entries")
        if self.km.module.check_mode:
            return preview
        try:
            for path, action, text in actions:
                if action == "restore":
                    backups.restore(path)
                elif action == "forget":
                    backups.forget(path)
                else:
                    self.rewrite(path, text)
                    backups.forget(path)
        except (safeedit.EditError, OSError) as exc:
            raise ModuleFailure("cannot restore the boot files: %s" % exc)
        for entry in leftovers:
            command_output(self.leftover_argv(entry), self.km.timeout)
        return self.entries()

    def undo(self, path):
        """What rollback does with one of our files: ``restore`` it byte for
        byte while it holds what memcg-fix wrote; ``revert`` only memcg-fix's
        change in a file someone changed since; ``forget`` one that is back
        as it was."""
        backups = self.km.backups
        entry = backups.entry(path)
        now = safeedit.read_file_bytes(path)
        now_sha = safeedit.sha256_bytes(now) if now is not None else None
        original_sha = entry.get("sha256") if entry.get("existed") else None
        if now_sha == original_sha:
            return "forget", None
        original = backups.original(path)
        original_text = original.decode("utf-8") if original is not None else None
        if now_sha == entry.get("written_sha256", now_sha):
            return "restore", original_text
        return "revert", self.strip(path, original_text, now.decode("utf-8"))

    def strip(self, path, original, text):
        """``text`` without our argument; where the owner's original line (or
        value) is what is left, that line as it was."""
        if path == GRUBENV:
            value = grubbyedit.grubenv_get(text, "kernelopts")
            if value is None or not grubbyedit.has_arg(value.split(), self.arg):
                return text
            was = grubbyedit.grubenv_get(original, "kernelopts") if original else None
            return grubbyedit.grubenv_set(text, "kernelopts", self.restored(value, was))
        if path == DEFAULT_GRUB:
            was = None
            if original:
                was = bootargs.shell_assignment_value(original, "GRUB_CMDLINE_LINUX")
            try:
                return bootargs.edit_shell_assignment(
                    text, "GRUB_CMDLINE_LINUX", lambda value: self.restored(value, was))
            except ValueError as exc:
                raise ModuleFailure("%s: %s" % (path, exc))
        old_lines = original.split("\n") if original else []
        lines = text.split("\n")
        for number, line in enumerate(lines):
            if grubbyedit.has_arg(line.split(), self.arg):
                left = grubbyedit.text_without_arg(line, self.arg)
                was = [old for old in old_lines if sorted(old.split()) == sorted(left.split())]
                lines[number] = was[0] if was else left
        return "\n".join(lines)

    def restored(self, value, was=None):
        if not grubbyedit.has_arg(value.split(), self.arg):
            return value
        left = grubbyedit.text_without_arg(value, self.arg)
        if was is not None and sorted(was.split()) == sorted(left.split()):
            return was
        return left

    def rewrite(self, path, text):
        if text is None:
            return
        current = os.stat(path)
        safeedit.atomic_write(path, text.encode("utf-8"), mode=current.st_mode & 0o7777,
                              uid=current.st_uid, gid=current.st_gid)

    def leftover_args(self, args):
        """An entry's args after grubby takes our argument away (the way each grubby does)."""
        word = next(w for w in args if grubbyedit.has_arg([w], self.arg))
        rest = grubbyedit.without_arg(word, self.arg)
        if rest is None:
            return [w for w in args if w != word]
        if self.legacy:
            return [rest if w == word else w for w in args]
        return grubbyedit.bls_update_args(" ".join(args), add=[rest]).split()

    def leftover_argv(self, entry):
        word = next(w for w in entry["args"] if grubbyedit.has_arg([w], self.arg))
        rest = grubbyedit.without_arg(word, self.arg)
        argv = [self.grubby, "--update-kernel=%s" % entry["kernel"]]
        argv.append("--args=%s" % rest if rest else "--remove-args=%s" % word)
        if not self.legacy:
            argv.append("--no-etc-grub-update")
        return argv


def main():
    module = AnsibleModule(
        argument_spec=dict(
            arg=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            backend=dict(type="str", choices=["auto", "grubby", "debian-grub"], default="auto"),
            backup_dir=dict(type="path", default="/var/lib/memcg-fix/backups"),
            dropin=dict(type="path", default="/etc/default/grub.d/99-memcg-fix.cfg"),
            command_timeout=dict(type="int", default=600),
        ),
        supports_check_mode=True,
    )
    arg = module.params["arg"]
    if not arg or len(split_args(arg)) != 1 or arg != arg.strip() or '"' in arg:
        module.fail_json(msg="arg must be one kernel argument without spaces or quotes, got %r" % arg)
    finish(module, partial(KernelArgs(module).main))


if __name__ == "__main__":
    main()
