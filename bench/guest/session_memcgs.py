#!/usr/bin/env python3
"""Runs inside a cgroup v2 test guest as root (bench/bench_vm_memcgs.py copies it there).

Two measurements, printed as one JSON document on stdout:

* ``logins``: where an ssh login's wtmp/lastlog writes are charged, and how
  many dying memcgs each login leaves, for three PAM stacks of sshd: Debian's
  stock one (no pam_lastlog: sshd records the login itself), one whose
  pam_lastlog writes after pam_systemd (``session optional pam_lastlog.so``
  after ``@include common-session``, as on an EL host whose postlogin always
  writes), and that one with memcg-fix's pam-lastlog mitigation
  (``noupdate``). Each arm makes N logins and logouts of the user ``tester``
  over ssh to localhost with a pty (``ssh -tt``: a pty session is what sshd
  records in wtmp), while one other session of tester stays open so that
  systemd's user manager is not started and stopped between logins. The
  dying count is the root ``cgroup.stat`` ``nr_dying_descendants`` after it
  settles. Which memory cgroup each cached page of /var/log/wtmp and
  /var/log/lastlog is charged to is read from /proc/kpagecgroup (pages found
  with mincore(2) and /proc/self/pagemap, so no page is read in). The kernel
  reports a page of a removed (dying) memcg as its nearest online ancestor
  (page_cgroup_ino() walks up past offline memcgs), so a page charged to a
  removed session-N.scope shows as user-1000.slice, where no process runs.
* ``reclaim``: on cgroup v2, N memory cgroups charged with page cache each
  (a child reads a file of its own, evicted first, and exits), then removed:
  plain rmdir; after ``memory.reclaim`` (5.19+, what memcg-fix-rmdir uses);
  after writing ``0`` to ``memory.high`` (a write below the usage reclaims:
  "mm: memcontrol: reclaim when shrinking memory.high below usage", 2016;
  the only on-demand reclaim v2 has before 5.19).

Everything it changes it puts back: /etc/pam.d/sshd (restored byte for byte),
its cgroups (removed), its files and the key it adds for tester.
"""

import ctypes
import ctypes.util
import json
import mmap
import os
import shutil
import signal
import struct
import subprocess
import sys
import time

CGROUP = "/sys/fs/cgroup"
PREFIX = CGROUP + "/memcg-fix-test-bench"
SSHD_PAM = "/etc/pam.d/sshd"
KEY = "/root/.ssh/memcg-fix-bench"
AUTHORIZED = "/home/tester/.ssh/authorized_keys"
FILES = ("/var/log/wtmp", "/var/log/lastlog")
PAGE = os.sysconf("SC_PAGE_SIZE")
SSH = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
       "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
       "-o", "ControlMaster=no", "-o", "ControlPath=none", "-i", KEY]

STACKS = {
    "stock": None,
    "pam_lastlog writes in the session": "session    optional     pam_lastlog.so\n",
    "pam_lastlog with the mitigation (noupdate)":
        "session    optional     pam_lastlog.so noupdate\n",
}


def dying():
    with open(CGROUP + "/cgroup.stat") as handle:
        for line in handle:
            key, _sep, value = line.partition(" ")
            if key == "nr_dying_descendants":
                return int(value)
    raise RuntimeError("no nr_dying_descendants in cgroup.stat")


def settled(minimum=3.0, step=0.5, maximum=20.0):
    time.sleep(minimum)
    last, waited = dying(), minimum
    while waited < maximum:
        time.sleep(step)
        waited += step
        now = dying()
        if now == last:
            return now
        last = now
    return last


# -- which memcg each cached page of a file is charged to ---------------------

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p)


def _cgroup_inodes():
    inodes = {}
    for directory, _subdirs, _files in os.walk(CGROUP):
        inodes[os.stat(directory).st_ino] = directory[len(CGROUP):] or "/"
    return inodes


def charged_to(path):
    """``{cgroup path or "removed (dying) memcg": pages}`` for the file's cached pages."""
    size = os.path.getsize(path)
    if not size:
        return {}
    return _charged_via_ctypes(path, (size + PAGE - 1) // PAGE)


def _charged_via_ctypes(path, pages):
    libc = _libc
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long)
    libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
    fd = os.open(path, os.O_RDONLY)
    try:
        address = libc.mmap(None, pages * PAGE, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
    finally:
        os.close(fd)
    if address in (None, ctypes.c_void_p(-1).value):
        raise OSError(ctypes.get_errno(), "mmap failed")
    try:
        vector = ctypes.create_string_buffer(pages)
        if libc.mincore(address, pages * PAGE, vector) != 0:
            raise OSError(ctypes.get_errno(), "mincore failed")
        inodes = _cgroup_inodes()
        counts = {}
        with open("/proc/self/pagemap", "rb") as pagemap, \
                open("/proc/kpagecgroup", "rb") as kpagecgroup:
            for index in range(pages):
                if not ord(vector.raw[index:index + 1]) & 1:
                    continue  # not cached: touching it would read it in (and charge us)
                ctypes.string_at(address + index * PAGE, 1)  # map the cached page
                pagemap.seek(((address // PAGE) + index) * 8)
                entry = struct.unpack("<Q", pagemap.read(8))[0]
                if not entry >> 63 & 1:
                    continue
                pfn = entry & ((1 << 55) - 1)
                kpagecgroup.seek(pfn * 8)
                inode = struct.unpack("<Q", kpagecgroup.read(8))[0]
                where = inodes.get(inode, "removed (dying) memcg" if inode else "no memcg")
                counts[where] = counts.get(where, 0) + 1
        return counts
    finally:
        libc.munmap(address, pages * PAGE)


# -- logins -------------------------------------------------------------------

def login(command="exit"):
    proc = subprocess.run([*SSH, "-tt", "tester@localhost", command],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"ssh tester@localhost failed: {proc.stderr.decode()[-300:]}")


def set_stack(original, extra):
    text = original
    if extra:
        marker = "@include common-session\n"
        if marker not in text:
            raise RuntimeError(f"no '@include common-session' line in {SSHD_PAM}")
        text = text.replace(marker, marker + extra, 1)
    with open(SSHD_PAM, "w") as handle:
        handle.write(text)


def logins(n):
    with open(SSHD_PAM) as handle:
        original = handle.read()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", KEY], check=True)
    with open(AUTHORIZED) as handle:
        authorized = handle.read()
    with open(KEY + ".pub") as handle:
        public = handle.read()
    with open(AUTHORIZED, "a") as handle:
        handle.write(public)
    holder = subprocess.Popen([*SSH, "tester@localhost", "sleep 86400"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    results = []
    try:
        time.sleep(5)
        for name, extra in STACKS.items():
            set_stack(original, extra)
            for _ in range(3):  # warm up: files cached, the user manager running
                login()
            wtmp_before = os.path.getsize("/var/log/wtmp")
            before = settled()
            charged_before = {path: charged_to(path) for path in FILES}
            started = time.time()
            for _ in range(n):
                login()
            seconds = time.time() - started
            after = settled()
            results.append({
                "stack": name, "logins": n, "dying_before": before, "dying_after": after,
                "dying_per_login": round((after - before) / float(n), 3),
                "seconds": round(seconds, 1),
                "wtmp_bytes_written": os.path.getsize("/var/log/wtmp") - wtmp_before,
                "charged": {path: charged_to(path) for path in FILES},
            })
            arm = results[-1]
            # the pages this arm added, per cgroup
            arm["charged_new"] = {
                path: {where: n - charged_before[path].get(where, 0)
                       for where, n in arm["charged"][path].items()
                       if n != charged_before[path].get(where, 0)}
                for path in FILES}
    finally:
        os.killpg(holder.pid, signal.SIGTERM)
        holder.wait()
        with open(SSHD_PAM, "w") as handle:
            handle.write(original)
        with open(AUTHORIZED, "w") as handle:
            handle.write(authorized)
        for path in (KEY, KEY + ".pub"):
            os.unlink(path)
    return results


# -- reclaim before rmdir on v2 -----------------------------------------------

def _charge(cgroup, data):
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            with open(cgroup + "/cgroup.procs", "w") as handle:
                handle.write(str(os.getpid()))
            with open(data, "rb") as handle:
                while handle.read(1 << 20):
                    pass
            code = 0
        finally:
            os._exit(code)
    os.waitpid(pid, 0)


def _usage(cgroup):
    with open(cgroup + "/memory.current") as handle:
        return int(handle.read())


def _write(path, text):
    with open(path, "w") as handle:
        handle.write(text)


def reclaim_arm(name, n, workdir, before_rmdir):
    parent = f"{PREFIX}/{name}"
    os.mkdir(parent)
    _write(parent + "/cgroup.subtree_control", "+memory")
    cgroups = []
    for i in range(n):
        data = f"{workdir}/{name}-{i:03d}"
        with open(data, "wb") as handle:
            handle.write(os.urandom(256 * 1024))
            handle.flush()
            os.fsync(handle.fileno())
            os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        cgroup = f"{parent}/c{i:03d}"
        os.mkdir(cgroup)
        _charge(cgroup, data)
        cgroups.append(cgroup)
    charged = sum(_usage(c) for c in cgroups) // n
    before = settled()
    errors = []
    for cgroup in cgroups:
        try:
            before_rmdir(cgroup)
        except OSError as exc:
            errors.append(f"{os.path.basename(cgroup)}: {exc.strerror}")
        os.rmdir(cgroup)
    after = settled()
    pinned = _usage(parent)
    return {"arm": name, "n": n, "charged_mean_bytes": charged, "dying_before": before,
            "dying_after": after, "delta": after - before, "still_charged_below_bytes": pinned,
            "errors": errors[:3]}


def reclaim(n):
    workdir = f"/var/tmp/memcg-fix-bench-{os.getpid()}"
    os.mkdir(workdir)
    os.mkdir(PREFIX)
    _write(PREFIX + "/cgroup.subtree_control", "+memory")
    # arm names are cgroup names: not "memory.reclaim", which is a file there
    arms = [
        ("plain", lambda cgroup: None),
        ("reclaim", lambda cgroup: _write(cgroup + "/memory.reclaim",
                                          str(max(_usage(cgroup), PAGE)))),
        ("high", lambda cgroup: _write(cgroup + "/memory.high", "0")),
    ]
    try:
        return [reclaim_arm(name, n, workdir, action) for name, action in arms]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        for directory, _subdirs, _files in sorted(os.walk(PREFIX), reverse=True):
            try:  # reclaim first, so that nothing we made stays behind as a zombie
                _write(directory + "/memory.reclaim", str(1 << 30))
            except OSError:
                pass
            try:
                os.rmdir(directory)
            except OSError:
                pass


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    release = os.uname()[2]
    doc = {"kernel": release, "logins": logins(n), "reclaim": reclaim(n),
           "memory_reclaim_exists": os.path.exists(CGROUP + "/memory.reclaim")}
    json.dump(doc, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
