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
  - "EL7: C(grubby --update-kernel=ALL) and C(GRUB_CMDLINE_LINUX) in /etc/default/grub, because EL7
    grubby leaves that file alone and a later grub2-mkconfig would drop the argument."
  - "EL8: grubby, which updates C(kernelopts) in grubenv; EL9: grubby (BLS options) and
    /etc/kernel/cmdline, which new kernels take their options from."
  - "Debian/Ubuntu: a drop-in /etc/default/grub.d/99-memcg-fix.cfg that appends to
    C(GRUB_CMDLINE_LINUX), then update-grub. The drop-in is read after the cloud images' own."
  - Check mode runs nothing that writes (only C(grubby --info=ALL)); with C(--diff) it shows each
    entry's arguments before and after.
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
author: memcg-fix
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
missing:
  description: Entries that lack the argument (state=present) or still have it (state=absent) after the change.
  returned: always
  type: list
reboot_required:
  description: The boot entries and the running kernel's /proc/cmdline disagree about the argument.
  returned: always
  type: bool
files:
  description: Files this run changed (or would change).
  returned: always
  type: list
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside import bootargs, safeedit
from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside.boot import parse_grub_cfg, parse_grubby_info
from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside.cmdline import has_nokmem, split_args
from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside.fileio import SourceError, read_text, run_command, which
from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside.kernel import parse_os_release

DEFAULT_GRUB = "/etc/default/grub"
KERNEL_CMDLINE = "/etc/kernel/cmdline"
DEBIAN_GRUB_CFG = "/boot/grub/grub.cfg"


class Failure(Exception):
    """Stop the module with this one-line message."""


def _read_optional(path):
    try:
        return read_text(path)
    except SourceError:
        return None


def pick_backend(requested):
    if requested != "auto":
        return requested, None
    text = _read_optional("/etc/os-release")
    if text is None:
        raise Failure("cannot pick a boot-loader backend: /etc/os-release is unreadable; set backend")
    release = parse_os_release(text)
    ids = [release.get("id") or ""] + list(release.get("id_like") or [])
    if any(i in ("rhel", "centos", "fedora", "rocky", "almalinux", "ol", "amzn") for i in ids):
        return "grubby", release.get("major")
    if any(i in ("debian", "ubuntu") for i in ids):
        return "debian-grub", release.get("major")
    raise Failure("no boot-loader backend for %s; set backend to grubby or debian-grub" % (release.get("id") or "this distribution"))


def entry_line(entry, args):
    return "index=%s kernel=%s args=\"%s\"" % (entry["index"], entry["kernel"], " ".join(args))


def _diff(header, before, after):
    return {"before_header": header, "after_header": header, "before": before, "after": after}


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
        return (self.arg in args) if self.present else (self.arg not in args)

    def transform(self, text):
        return bootargs.add_arg(text, self.arg) if self.present else bootargs.remove_arg(text, self.arg)

    def preview(self, entries):
        """The entries as they will be after the change (for check mode and diffs)."""
        out = []
        for entry in entries:
            args = split_args(self.transform(" ".join(entry["args"])))
            out.append(dict(entry, args=args, nokmem=has_nokmem(args)))
        return out

    def run(self, argv):
        try:
            rc, out, err = run_command(argv, timeout=self.timeout)
        except SourceError as exc:
            raise Failure(str(exc))
        if rc != 0:
            raise Failure("%s failed (rc=%s): %s" % (" ".join(argv), rc, " ".join(err.split())[:400]))
        return out

    def edit_file(self, path, new_text, old_text):
        """Change ``path`` (atomically, with a backup) unless in check mode."""
        self.files.append(path)
        self.diffs.append(_diff(path, old_text or "", new_text))
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
            raise Failure(str(exc))

    def edit_assignment_file(self, path, name):
        text = _read_optional(path)
        if text is None:
            return
        try:
            new_text = bootargs.edit_shell_assignment(text, name, self.transform)
        except ValueError as exc:
            raise Failure("%s: %s" % (path, exc))
        if new_text != text:
            self.edit_file(path, new_text, text)

    def reboot_required(self):
        cmdline = _read_optional("/proc/cmdline") or ""
        return self.wanted(split_args(cmdline)) is False

    # -- grubby (EL7/8/9, Fedora) -----------------------------------------
    def grubby_entries(self, grubby):
        return parse_grubby_info(self.run([grubby, "--info=ALL"]))

    def apply_grubby(self, major):
        grubby = which("grubby")
        if not grubby:
            raise Failure("grubby is not installed; it is how EL manages boot entries")
        before = self.grubby_entries(grubby)
        if not before:
            raise Failure("grubby --info=ALL lists no boot entries; refusing to guess")
        need = [e for e in before if not self.wanted(e["args"])]
        if need:
            self.diffs.append(_diff("boot entries (grubby --info=ALL)",
                                    "\n".join(entry_line(e, e["args"]) for e in before) + "\n",
                                    "\n".join(entry_line(e, e["args"]) for e in self.preview(before)) + "\n"))
            self.files.append("boot entries")
            if not self.module.check_mode:
                option = "--args=%s" % self.arg if self.present else "--remove-args=%s" % self.arg
                self.begin_entry_change()
                self.run([grubby, "--update-kernel=ALL", option])
        # The files the next grub2-mkconfig / kernel install build entries from.
        self.edit_assignment_file(DEFAULT_GRUB, "GRUB_CMDLINE_LINUX")
        if major is None or major >= 9:
            text = _read_optional(KERNEL_CMDLINE)
            if text is not None:
                new_text = self.transform(text.strip()) + "\n"
                if new_text.strip() != text.strip():
                    self.edit_file(KERNEL_CMDLINE, new_text, text)
        if self.module.check_mode:
            return self.preview(before)
        after = self.grubby_entries(grubby) if need else before
        return after

    # -- Debian / Ubuntu GRUB ---------------------------------------------
    def debian_entries(self):
        text = _read_optional(DEBIAN_GRUB_CFG)
        return parse_grub_cfg(text) if text is not None else []

    def apply_debian(self):
        dropin = self.module.params["dropin"]
        current = _read_optional(dropin)
        desired = bootargs.dropin_text([self.arg]) if self.present else None
        before = self.debian_entries()
        entries_need = [e for e in before if not self.wanted(e["args"])]
        dropin_need = (current != desired) if self.present else (current is not None)
        if not dropin_need and not entries_need:
            return before
        if dropin_need:
            self.files.append(dropin)
            self.diffs.append(_diff(dropin, current or "", desired or ""))
        if entries_need:
            self.files.append(DEBIAN_GRUB_CFG)
            self.diffs.append(_diff(
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
            raise Failure("cannot change %s: %s" % (dropin, exc))
        updater = which("update-grub") or which("grub-mkconfig")
        if not updater:
            raise Failure("neither update-grub nor grub-mkconfig is installed")
        if updater.endswith("grub-mkconfig"):
            self.run([updater, "-o", DEBIAN_GRUB_CFG])
        else:
            self.run([updater])
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
                raise Failure("cannot record the change in %s: %s"
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
                raise Failure("no boot entries found after the change; the argument is on none of them")
            if missing:
                raise Failure("after the change, %d boot entr%s still %s %s: %s" % (
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
    try:
        result = KernelArgs(module).main()
    except Failure as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
