#!/usr/bin/python
# -*- coding: utf-8 -*-
# Part of memcg-fix. Runs on the target's own Python (2.7, 3.6+).

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: memcg_restore
short_description: Restore the files memcg-fix changed, byte for byte, from its backups
description:
  - Every file memcg-fix changes is first copied to I(backup_dir) with its checksum, mode and
    owner (see the manifest there). This puts each one back exactly as it was, or removes it if
    memcg-fix created it.
  - A file edited by someone else after memcg-fix wrote it is not overwritten unless I(force).
    The module fails and names it, so nobody's change is lost silently.
options:
  backup_dir:
    description: The backup store.
    type: path
    default: /var/lib/memcg-fix/backups
  paths:
    description: Only these files (default every file in the manifest).
    type: list
    elements: path
  force:
    description: Restore even files edited since memcg-fix wrote them.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: Reports what would be restored and changes nothing.
  diff_mode:
    support: full
    details: Shows each file's content before and after the restore.
  platform:
    platforms: posix
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
author:
  - memcg-fix maintainers (@memcg-fix)
"""

EXAMPLES = r"""
- name: Put every file back
  memcg_fix.remediate.memcg_restore:

- name: Put one file back, even if someone edited it since
  memcg_fix.remediate.memcg_restore:
    paths: [/etc/pam.d/login]
    force: true
"""

RETURN = r"""
restored:
  description: Files restored (or that would be, in check mode).
  returned: always
  type: list
  elements: path
refused:
  description: Why files were left alone, one line each (they changed since memcg-fix wrote them).
  returned: always
  type: list
  elements: str
"""

import os
from functools import partial

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside import safeedit
from ansible_collections.memcg_fix.remediate.plugins.module_utils.module_helpers import (
    ModuleFailure,
    file_diff,
    finish,
)


def _text(data):
    return (data or b"").decode("utf-8", "replace")


def restore(backup_dir, paths, force, check_mode):
    """Put ``paths`` (default: every file in the manifest) back from the backups."""
    backups = safeedit.Backups(backup_dir)
    restored, refused, diffs = [], [], []
    try:
        for path in paths or backups.paths():
            entry = backups.entry(path)
            if entry is None:
                continue
            before = safeedit.read_file_bytes(path)
            try:
                changed, _msg = backups.restore(path, force=force, check_mode=True)
            except safeedit.EditError as exc:
                refused.append(str(exc))
                continue
            if changed:
                original = b""
                if entry.get("existed"):
                    original = safeedit.read_file_bytes(os.path.join(backups.backup_dir, entry["backup"])) or b""
                diffs.append(file_diff(path, _text(before), _text(original)))
                restored.append(path)
            if not check_mode:
                backups.restore(path, force=force)
    except safeedit.EditError as exc:
        raise ModuleFailure(str(exc), restored=restored, refused=refused)
    if refused:
        raise ModuleFailure("; ".join(refused), restored=restored, refused=refused,
                            changed=bool(restored) and not check_mode)
    return dict(changed=bool(restored), restored=restored, refused=refused, diff=diffs)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            backup_dir=dict(type="path", default="/var/lib/memcg-fix/backups"),
            paths=dict(type="list", elements="path"),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    finish(module, partial(restore, p["backup_dir"], p["paths"], p["force"], module.check_mode))


if __name__ == "__main__":
    main()
