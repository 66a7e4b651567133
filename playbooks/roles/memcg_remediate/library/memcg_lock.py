#!/usr/bin/python
# -*- coding: utf-8 -*-
# Part of memcg-fix. Runs on the target's own Python (2.7, 3.6+).

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: memcg_lock
short_description: A host-side lock so two memcg-fix runs never change one host at once
description:
  - C(acquired) creates the lock file atomically (O_EXCL) holding the owner id and the time. If
    another owner holds it, the module waits up to I(timeout) seconds, then fails with a message
    naming the holder. A lock older than I(ttl) seconds is taken over (its run died).
  - C(released) removes the lock if this owner holds it.
  - Re-acquiring a lock the same owner holds succeeds (a retried task).
  - In check mode no file is written: the module only waits while another run holds the lock, so
    a dry run never reads a half-applied host and still changes no byte.
options:
  state: {description: acquired or released, type: str, choices: [acquired, released], required: true}
  owner: {description: Id of this run, type: str, required: true}
  path: {description: The lock file, type: path, default: /var/lib/memcg-fix/lock}
  timeout: {description: Seconds to wait for another run's lock, type: int, default: 300}
  ttl: {description: Age in seconds after which a lock is considered abandoned, type: int, default: 3600}
author: memcg-fix
"""

EXAMPLES = r"""
- name: Take the lock
  memcg_lock: {state: acquired, owner: "run-1234"}
"""

RETURN = r"""
holder: {description: Who held the lock when we gave up, returned: on failure, type: str}
waited: {description: Seconds spent waiting, returned: always, type: float}
"""

import errno
import json
import os
import time

from ansible.module_utils.basic import AnsibleModule


def read_lock(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (IOError, OSError, ValueError):
        return None


def try_create(path, owner):
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            return False
        raise
    with os.fdopen(fd, "w") as handle:
        json.dump({"owner": owner, "since": time.time(), "pid": os.getpid()}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["acquired", "released"], required=True),
            owner=dict(type="str", required=True),
            path=dict(type="path", default="/var/lib/memcg-fix/lock"),
            timeout=dict(type="int", default=300),
            ttl=dict(type="int", default=3600),
        ),
        supports_check_mode=True,
    )
    p = module.params
    started = time.time()
    if p["state"] == "released":
        held = read_lock(p["path"])
        if held and held.get("owner") == p["owner"]:
            os.unlink(p["path"])
        module.exit_json(changed=False, waited=0.0)
    while True:
        if module.check_mode and not os.path.exists(p["path"]):
            module.exit_json(changed=False, waited=round(time.time() - started, 1))
        try:
            if not module.check_mode and try_create(p["path"], p["owner"]):
                module.exit_json(changed=False, waited=round(time.time() - started, 1))
        except OSError as exc:
            module.fail_json(msg="cannot create lock %s: %s" % (p["path"], exc.strerror))
        held = read_lock(p["path"]) or {}
        if held.get("owner") == p["owner"]:
            module.exit_json(changed=False, waited=round(time.time() - started, 1))
        age = time.time() - float(held.get("since") or 0)
        if age > p["ttl"]:
            if module.check_mode:
                module.exit_json(changed=False, waited=round(time.time() - started, 1))
            # abandoned: replace atomically, then re-check who won a race
            try:
                os.unlink(p["path"])
            except OSError:
                pass
            continue
        if time.time() - started >= p["timeout"]:
            module.fail_json(
                msg="another memcg-fix run (%s, for %ds) holds %s; gave up after %ds. "
                    "If that run is dead, remove the file or wait for its ttl (%ds)"
                    % (held.get("owner", "unknown"), int(age), p["path"], p["timeout"], p["ttl"]),
                holder=held.get("owner"), waited=round(time.time() - started, 1))
        time.sleep(1)


if __name__ == "__main__":
    main()
