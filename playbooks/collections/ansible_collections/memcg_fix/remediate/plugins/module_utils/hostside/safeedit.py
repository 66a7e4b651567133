"""Atomic file edits with first-touch backups, so rollback is byte for byte.

Runs on the target's own Python (2.7, 3.6+), stdlib only.

Every file memcg-fix changes goes through :class:`Backups`:

* before the first change ever, the original bytes (or the fact that the file
  did not exist), mode and owner are copied under ``<backup_dir>/files/`` and
  recorded in ``<backup_dir>/manifest.json``; later runs never overwrite that
  original, so rollback always returns to the state before memcg-fix;
* the new content is written with :func:`atomic_write`: a temporary file in
  the same directory, fsync, rename over the old one, fsync of the directory.
  A reader (or a crash, or a full disk) sees either the old or the new file,
  never half of one;
* the sha256 of what memcg-fix wrote is recorded, so rollback can tell a file
  that someone edited since (and refuse to clobber it) from one it owns.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import json
import os
import stat
import tempfile
import time

MYPY = False
if MYPY:  # typing is for mypy only: Python 2.7 has no typing module
    from typing import Any, Dict, List, Optional, Tuple  # noqa: F401 # novermin

MANIFEST_VERSION = 1


class EditError(Exception):
    """An edit or a restore could not be done safely; one-line reason."""


def sha256_bytes(data):
    # type: (bytes) -> str
    return hashlib.sha256(data).hexdigest()


def read_file_bytes(path):
    # type: (str) -> Optional[bytes]
    """The bytes of ``path``, or None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except IOError as exc:  # Python 2.7 raises IOError; 3.x raises OSError (an alias)
        if exc.errno == errno.ENOENT:
            return None
        raise EditError("cannot read %s: %s" % (path, exc.strerror))


def _fsync_dir(path):
    # type: (str) -> None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path, data, mode=None, uid=None, gid=None):
    # type: (str, bytes, Optional[int], Optional[int], Optional[int]) -> None
    """Replace ``path`` with ``data`` atomically.

    Mode and owner default to the existing file's (0644 root for a new file).
    The temporary file lives in the same directory so the rename is atomic;
    on any failure it is removed and the original is left untouched.
    """
    directory = os.path.dirname(path) or "."
    try:
        current = os.stat(path)
    except OSError:
        current = None
    if mode is None:
        mode = stat.S_IMODE(current.st_mode) if current else 0o644
    if uid is None:
        uid = current.st_uid if current else 0
    if gid is None:
        gid = current.st_gid if current else 0
    try:
        fd, tmp = tempfile.mkstemp(prefix=".memcg-fix-", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise EditError("cannot create a temporary file in %s: %s" % (directory, exc.strerror))
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, mode)
        if os.geteuid() == 0:
            os.chown(tmp, uid, gid)
        os.rename(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise EditError("cannot write %s: %s" % (path, exc.strerror))
    _fsync_dir(directory)


def resolve_edit_target(path):
    # type: (str) -> str
    """The file an edit of ``path`` must change.

    /etc/pam.d/postlogin on EL7 is a symlink to postlogin-ac: replacing the
    link with a file would silently detach it from authconfig, so we edit the
    regular file it points to (relative links only, inside the same directory
    tree; anything else is refused).
    """
    seen = 0
    while os.path.islink(path):
        seen += 1
        if seen > 8:
            raise EditError("too many levels of symbolic links at %s" % path)
        target = os.readlink(path)
        if not target.startswith("/"):
            target = os.path.normpath(os.path.join(os.path.dirname(path), target))
        path = target
    return path


class Backups(object):
    """The backup store and manifest under ``backup_dir`` (default /var/lib/memcg-fix/backups)."""

    def __init__(self, backup_dir):
        # type: (str) -> None
        self.backup_dir = backup_dir
        self.manifest_path = os.path.join(backup_dir, "manifest.json")
        self._manifest = None  # type: Optional[Dict[str, Any]]

    # -- manifest ---------------------------------------------------------
    def manifest(self):
        # type: () -> Dict[str, Any]
        if self._manifest is None:
            raw = read_file_bytes(self.manifest_path)
            if raw is None:
                self._manifest = {"version": MANIFEST_VERSION, "files": {}, "notes": {}}
            else:
                try:
                    loaded = json.loads(raw.decode("utf-8"))
                except ValueError:
                    raise EditError("backup manifest %s is corrupt; refusing to continue"
                                    % self.manifest_path)
                if not isinstance(loaded, dict) or loaded.get("version") != MANIFEST_VERSION:
                    raise EditError("backup manifest %s has an unknown format" % self.manifest_path)
                loaded.setdefault("files", {})
                loaded.setdefault("notes", {})
                self._manifest = loaded
        return self._manifest

    def _save(self):
        # type: () -> None
        if not os.path.isdir(self.backup_dir):
            os.makedirs(self.backup_dir, 0o700)
        data = json.dumps(self.manifest(), indent=2, sort_keys=True).encode("utf-8") + b"\n"
        atomic_write(self.manifest_path, data, mode=0o600, uid=0, gid=0)

    def entry(self, path):
        # type: (str) -> Optional[Dict[str, Any]]
        return self.manifest()["files"].get(path)

    def note(self, key, value=None):
        # type: (str, Any) -> Any
        """Remember a small fact for rollback (e.g. the authselect profile we replaced).

        The first value sticks: a later run must not overwrite what was there
        before memcg-fix. Without ``value``, returns the remembered one.
        """
        notes = self.manifest()["notes"]
        if value is None:
            return notes.get(key)
        if key not in notes:
            notes[key] = value
            self._save()
        return notes[key]

    def set_note(self, key, value):
        # type: (str, Any) -> None
        """Remember ``value`` under ``key``, replacing what was there (for facts
        that follow each run, unlike :meth:`note`'s first-value-sticks)."""
        self.manifest()["notes"][key] = value
        self._save()

    def forget_note(self, key):
        # type: (str) -> None
        if self.manifest()["notes"].pop(key, None) is not None:
            self._save()

    # -- first-touch backup -----------------------------------------------
    def preserve(self, path, owner=None):
        # type: (str, Optional[str]) -> Dict[str, Any]
        """Record the original of ``path`` once, before memcg-fix first changes it.

        ``owner`` names the part of memcg-fix that will change it (the
        kernel-argument module's rollback looks for its own files).
        """
        files = self.manifest()["files"]
        if path in files:
            return files[path]
        original = read_file_bytes(path)
        entry = {"existed": original is not None,
                 "preserved_at": int(time.time())}  # type: Dict[str, Any]
        if owner:
            entry["owner"] = owner
        if original is not None:
            st = os.stat(path)
            stored = os.path.join(self.backup_dir, "files", path.lstrip("/"))
            parent = os.path.dirname(stored)
            if not os.path.isdir(parent):
                os.makedirs(parent, 0o700)
            atomic_write(stored, original, mode=0o600, uid=0, gid=0)
            entry.update({
                "sha256": sha256_bytes(original),
                "mode": stat.S_IMODE(st.st_mode),
                "uid": st.st_uid,
                "gid": st.st_gid,
                "backup": os.path.relpath(stored, self.backup_dir),
            })
        files[path] = entry
        self._save()
        return entry

    def record_written(self, path):
        # type: (str) -> None
        """Remember the sha256 of what memcg-fix left in ``path``."""
        entry = self.manifest()["files"].get(path)
        if entry is None:
            return
        current = read_file_bytes(path)
        entry["written_sha256"] = sha256_bytes(current) if current is not None else None
        self._save()

    def write(self, path, data, mode=None, owner=None):
        # type: (str, bytes, Optional[int], Optional[str]) -> None
        """Preserve the original, write ``data`` atomically, record the result."""
        self.preserve(path, owner=owner)
        atomic_write(path, data, mode=mode)
        self.record_written(path)

    def original(self, path):
        # type: (str) -> Optional[bytes]
        """The bytes ``path`` had before memcg-fix (None: it did not exist)."""
        entry = self.entry(path)
        if entry is None or not entry.get("existed"):
            return None
        stored = os.path.join(self.backup_dir, entry["backup"])
        data = read_file_bytes(stored)
        if data is None or sha256_bytes(data) != entry["sha256"]:
            raise EditError("backup of %s is missing or damaged at %s" % (path, stored))
        return data

    def owned_by(self, owner):
        # type: (str) -> List[str]
        files = self.manifest()["files"]
        return sorted(p for p in files if files[p].get("owner") == owner)

    def forget(self, path):
        # type: (str) -> None
        """Drop ``path`` from the manifest (and its stored original)."""
        if path in self.manifest()["files"]:
            self._forget(path)

    # -- rollback ---------------------------------------------------------
    def restore(self, path, force=False, check_mode=False):
        # type: (str, bool, bool) -> Tuple[bool, str]
        """Put ``path`` back as it was before memcg-fix. Returns (changed, message).

        Refuses (EditError) when the file changed since memcg-fix wrote it,
        unless ``force``: someone else's edit must not be lost silently.
        """
        entry = self.entry(path)
        if entry is None:
            return False, "%s: not touched by memcg-fix" % path
        current = read_file_bytes(path)
        current_sha = sha256_bytes(current) if current is not None else None
        original_sha = entry.get("sha256") if entry.get("existed") else None
        if current_sha == original_sha:
            if not check_mode:
                self._forget(path)
            return False, "%s: already as before memcg-fix" % path
        written = entry.get("written_sha256", current_sha)
        if current_sha != written and not force:
            raise EditError(
                "%s changed since memcg-fix wrote it; restore it by hand from %s or use force"
                % (path, os.path.join(self.backup_dir, entry.get("backup", "")))
            )
        if check_mode:
            return True, "%s: would be restored" % path
        if entry.get("existed"):
            stored = os.path.join(self.backup_dir, entry["backup"])
            original = read_file_bytes(stored)
            if original is None or sha256_bytes(original) != entry["sha256"]:
                raise EditError("backup of %s is missing or damaged at %s" % (path, stored))
            atomic_write(path, original, mode=entry["mode"], uid=entry["uid"], gid=entry["gid"])
        else:
            try:
                os.unlink(path)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise EditError("cannot remove %s: %s" % (path, exc.strerror))
        self._forget(path)
        return True, "%s: restored" % path

    def _forget(self, path):
        # type: (str) -> None
        entry = self.manifest()["files"].pop(path, None)
        if entry and entry.get("backup"):
            try:
                os.unlink(os.path.join(self.backup_dir, entry["backup"]))
            except OSError:
                pass
        self._save()

    def paths(self):
        # type: () -> List[str]
        return sorted(self.manifest()["files"])
