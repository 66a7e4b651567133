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
  - Re-acquiring a lock the same owner holds succeeds (a retried task) and records the current
    boot again.
  - The lock records the boot it was taken in (boot id and PID 1's start time, so a restarted
    container counts as a new boot). A reboot or restart ends every process of the run that held
    it, so a lock from an earlier boot is taken over, once this boot is older than the holder's
    I(expect_reboot) window (0 unless the holder was rebooting the host on purpose).
  - In check mode no file is written. The module only waits while another run holds the lock, so
    a dry run never reads a half-applied host and still changes no byte.
options:
  state:
    description: C(acquired) takes the lock, C(released) gives it back.
    type: str
    choices: [acquired, released]
    required: true
  owner:
    description: Id of this run (the same for every host of one run).
    type: str
    required: true
  path:
    description: The lock file.
    type: path
    default: /var/lib/memcg-fix/lock
  timeout:
    description: Seconds to wait for another run's lock.
    type: int
    default: 300
  ttl:
    description: Age in seconds after which a lock is considered abandoned.
    type: int
    default: 3600
  expect_reboot:
    description:
      - Seconds this run will wait for the host to come back from a reboot it starts now (its
        reboot timeout). Until the new boot is that old, another run does not take the lock over.
    type: int
    default: 0
attributes:
  check_mode:
    support: full
    details: Writes nothing; it still waits while another run holds the lock.
  diff_mode:
    support: none
  platform:
    platforms: posix
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
author:
  - memcg-fix maintainers (@memcg-fix)
"""

EXAMPLES = r"""
- name: Take the lock
  memcg_fix.remediate.memcg_lock:
    state: acquired
    owner: run-1234

- name: Give it back
  memcg_fix.remediate.memcg_lock:
    state: released
    owner: run-1234
"""

RETURN = r"""
holder:
  description: Who held the lock when this run gave up waiting.
  returned: failure
  type: str
waited:
  description: Seconds spent waiting for another run's lock.
  returned: always
  type: float
"""

import errno
import json
import os
import time
from functools import partial

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.memcg_fix.remediate.plugins.module_utils.module_helpers import (
    ModuleFailure,
    finish,
)


def read_lock(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (IOError, OSError, ValueError):
        return None


def current_boot():
    """(id of this boot, seconds since it began), or (None, None) when /proc
    cannot tell. The id joins the kernel's boot id with PID 1's start time, so
    a container restart (same kernel, new init) is a new boot too."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            boot_id = handle.read().strip()
        with open("/proc/1/stat") as handle:
            # starttime is field 22; fields are counted after "(comm)", which may hold spaces
            started = int(handle.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as handle:
            uptime = float(handle.read().split()[0])
        age = uptime - started / float(os.sysconf("SC_CLK_TCK"))
    except (IOError, OSError, ValueError, IndexError):
        return None, None
    return "%s:%d" % (boot_id, started), age


def lock_record(owner, boot, expect_reboot):
    return {"owner": owner, "since": time.time(), "pid": os.getpid(), "boot": boot,
            "expect_reboot": expect_reboot}


def try_create(path, record):
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
        json.dump(record, handle)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def rewrite(path, record):
    """Replace our own lock atomically (same owner, new boot or reboot window)."""
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as handle:
        json.dump(record, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o600)
    os.rename(tmp, path)


def ended_with_its_boot(held, boot, age):
    """The holder's boot is over, and so is any reboot window it announced."""
    if not held.get("boot") or boot is None or held["boot"] == boot:
        return False
    try:
        window = float(held.get("expect_reboot") or 0)
    except (TypeError, ValueError):
        window = 0.0
    return age >= window


def take_over(path, held):
    """Remove an abandoned lock, unless it changed since we judged it."""
    if read_lock(path) == held:
        try:
            os.unlink(path)
        except OSError:
            pass


def release(path, owner):
    """Remove the lock if ``owner`` holds it (another run's lock stays)."""
    held = read_lock(path)
    if held and held.get("owner") == owner:
        try:
            os.unlink(path)
        except OSError as exc:
            raise ModuleFailure("cannot remove lock %s: %s" % (path, exc.strerror))
    return dict(changed=False, waited=0.0)


def acquire(path, owner, timeout, ttl, expect_reboot, check_mode):
    """Take the lock for ``owner``, waiting up to ``timeout`` seconds for another run's."""
    started = time.time()

    def done():
        return dict(changed=False, waited=round(time.time() - started, 1))

    while True:
        boot, boot_age = current_boot()
        record = lock_record(owner, boot, expect_reboot)
        if check_mode and not os.path.exists(path):
            return done()
        try:
            if not check_mode and try_create(path, record):
                return done()
        except OSError as exc:
            raise ModuleFailure("cannot create lock %s: %s" % (path, exc.strerror))
        held = read_lock(path) or {}
        if held.get("owner") == owner:
            if not check_mode and (held.get("boot") != boot or held.get("expect_reboot") != expect_reboot):
                try:
                    rewrite(path, dict(record, since=held.get("since", record["since"])))
                except (IOError, OSError) as exc:
                    raise ModuleFailure("cannot update lock %s: %s" % (path, exc.strerror))
            return done()
        age = time.time() - float(held.get("since") or 0)
        if age > ttl or ended_with_its_boot(held, boot, boot_age):
            if check_mode:
                return done()
            # abandoned: its run died (ttl) or every process of its boot is gone
            take_over(path, held)
            continue
        if time.time() - started >= timeout:
            raise ModuleFailure(
                "another memcg-fix run (%s, for %ds) holds %s; gave up after %ds. "
                "If that run is dead, remove the file or wait for its ttl (%ds)"
                % (held.get("owner", "unknown"), int(age), path, timeout, ttl),
                holder=held.get("owner"), **done())
        time.sleep(1)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["acquired", "released"], required=True),
            owner=dict(type="str", required=True),
            path=dict(type="path", default="/var/lib/memcg-fix/lock"),
            timeout=dict(type="int", default=300),
            ttl=dict(type="int", default=3600),
            expect_reboot=dict(type="int", default=0),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["state"] == "released":
        finish(module, partial(release, p["path"], p["owner"]))
    else:
        finish(module, partial(acquire, p["path"], p["owner"], p["timeout"], p["ttl"], p["expect_reboot"],
                               module.check_mode))


if __name__ == "__main__":
    main()
