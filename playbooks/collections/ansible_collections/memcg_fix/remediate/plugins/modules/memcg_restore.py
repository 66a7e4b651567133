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
  - A file edited by someone else after memcg-fix wrote it is not overwritten unless I(force):
    the module fails and names it, so nobody's change is lost silently.
  - Check mode reports what would be restored and changes nothing; C(--diff) shows the content.
options:
  backup_dir: {description: The backup store, type: path, default: /var/lib/memcg-fix/backups}
  paths: {description: Only these files (default every file in the manifest), type: list, elements: path}
  force: {description: Restore even files edited since memcg-fix wrote them, type: bool, default: false}
author: memcg-fix
"""

EXAMPLES = r"""
- name: Put every file back
  memcg_fix.remediate.memcg_restore: {}
"""

RETURN = r"""
restored: {description: Files restored (or that would be), returned: always, type: list}
refused: {description: Files left alone because they changed since memcg-fix wrote them, returned: always, type: list}
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside import safeedit


def _text(data):
    return (data or b"").decode("utf-8", "replace")


def main():
    module = AnsibleModule(
        argument_spec=dict(
            backup_dir=dict(type="path", default="/var/lib/memcg-fix/backups"),
            paths=dict(type="list", elements="path"),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    backups = safeedit.Backups(module.params["backup_dir"])
    restored, refused, diffs = [], [], []
    try:
        paths = module.params["paths"] or backups.paths()
        for path in paths:
            entry = backups.entry(path)
            if entry is None:
                continue
            before = safeedit.read_file_bytes(path)
            try:
                changed, _msg = backups.restore(path, force=module.params["force"], check_mode=True)
            except safeedit.EditError as exc:
                refused.append(str(exc))
                continue
            if changed:
                original = b""
                if entry.get("existed"):
                    original = safeedit.read_file_bytes(
                        os.path.join(backups.backup_dir, entry["backup"])) or b""
                diffs.append({"before_header": path, "after_header": path,
                              "before": _text(before), "after": _text(original)})
                restored.append(path)
            if not module.check_mode:
                backups.restore(path, force=module.params["force"])
    except safeedit.EditError as exc:
        module.fail_json(msg=str(exc), restored=restored, refused=refused)
    if refused:
        module.fail_json(msg="; ".join(refused), restored=restored, refused=refused,
                         changed=bool(restored) and not module.check_mode)
    module.exit_json(changed=bool(restored), restored=restored, refused=refused, diff=diffs)


if __name__ == "__main__":
    main()
