"""The collector: every source of a host, combined into one facts document.

``collect(reader)`` returns ``{"facts": {...}, "unknown": [{fact, reason}]}``
(docs/facts.md). Each section is read on its own: a source that is missing,
unreadable or garbage leaves its facts ``None`` and records why in
``unknown``; nothing raises out of :func:`collect`.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import re
import sys

from . import boot as boot_parsers
from . import cgroupfs, kernel_log, memory_cost, packages, pamflow, reaper_config, tool_versions
from .cmdline import has_nokmem, parse_cmdline, split_args
from .fileio import SourceError, which
from .kernel import parse_os_release, parse_uname
from .pam import file_owner, lastlog_lines

MYPY = False
if MYPY:  # typing is for mypy only: Python 2.7 has no typing module
    from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple  # noqa: F401 # novermin

    from .reader import LiveReader  # noqa: F401

# Version of the facts contract (docs/facts.md); the controller refuses
# another version.
SCHEMA_VERSION = 1

PAM_FILES = ("/etc/pam.d/postlogin", "/etc/pam.d/login", "/etc/pam.d/sshd")
_PAM_MODULE_DIRS = ("/usr/lib64/security", "/lib64/security", "/usr/lib/security",
                    "/lib/security")
_KMEM_SAMPLE = 50
_KMEM_UNLIMITED = 9223372036854771712  # PAGE_COUNTER_MAX * PAGE_SIZE on 64-bit


class _Context(object):
    """What one collection run knows so far, shared by the sections."""

    def __init__(self, reader, versions=None):
        # type: (LiveReader, Optional[tool_versions.VersionMemo]) -> None
        self.reader = reader
        self.versions = versions
        self.unknown = []  # type: List[Dict[str, str]]
        self.layout = None  # type: Optional[Dict[str, Any]]
        self.cmdline = None  # type: Optional[Dict[str, Any]]
        self.kernel = None  # type: Optional[Dict[str, Any]]
        self.boot = None  # type: Optional[Dict[str, Any]]
        self.dpkg = None  # type: Optional[Dict[str, str]]
        self.rpm_text = None  # type: Optional[str]
        self.slab_entries = None  # type: Optional[Tuple[Optional[List[str]], str]]
        self.slabinfo = None  # type: Optional[Tuple[Optional[str], Optional[SourceError]]]

    def missing(self, fact, reason):
        # type: (str, object) -> None
        reason = " ".join(str(reason).split()) or "no reason given"
        self.unknown.append({"fact": fact, "reason": reason})


def _text_or_none(ctx, path, tail=False):
    # type: (_Context, str, bool) -> Optional[str]
    try:
        return ctx.reader.read(path, tail=tail)
    except SourceError:
        return None


def _slabinfo(ctx):
    # type: (_Context) -> str
    """/proc/slabinfo, read once per run (two sections use it; a read costs
    milliseconds), or raise its SourceError again."""
    if ctx.slabinfo is None:
        try:
            ctx.slabinfo = (ctx.reader.read("/proc/slabinfo"), None)
        except SourceError as exc:
            ctx.slabinfo = (None, exc)
    text, error = ctx.slabinfo
    if error is not None:
        raise error
    return text or ""  # (never None here: read() gave text or the error)


# -- kernel and distro ------------------------------------------------------

def _uname_a(text):
    # type: (str) -> Tuple[Optional[str], Optional[str]]
    """(release, version) from ``uname -a`` output (sosreport's uname_-a)."""
    fields = text.split()
    if len(fields) < 4 or fields[0] != "Linux":
        return None, None
    release = fields[2]
    rest = fields[3:]
    if rest and rest[-1] == "GNU/Linux":
        rest = rest[:-1]
    arch_words = ("x86_64", "aarch64", "ppc64le", "s390x", "i686", "i386", "unknown",
                  "armv7l", "ppc64")
    while rest and rest[-1] in arch_words:
        rest = rest[:-1]
    return release, " ".join(rest) or None


def section_kernel(ctx):
    # type: (_Context) -> Dict[str, Any]
    reader = ctx.reader
    release = version = None
    reasons = []
    try:
        release = reader.read("/proc/sys/kernel/osrelease").strip() or None
        version = _text_or_none(ctx, "/proc/sys/kernel/version")
        version = version.strip() if version else None
    except SourceError as exc:
        reasons.append(str(exc))
    if release is None and not reader.live:
        for source in ("/uname", "/sos_commands/kernel/uname_-a"):
            text = _text_or_none(ctx, source)
            if text:
                release, version = _uname_a(text)
                if release:
                    break
        else:
            reasons.append("no uname output in the host root")
    if not release:
        ctx.missing("kernel", "; ".join(reasons) or "the running kernel is unknown")
        ctx.kernel = None
        return {"release": None, "version": None, "family": None, "upstream_version": None,
                "distro_release": None, "package_version": None, "version_scheme": None,
                "arch": None, "variant": None, "el_tag": None}
    ctx.kernel = parse_uname(release, version)
    if ctx.kernel["upstream_version"] is None:
        ctx.missing("kernel.upstream_version",
                    "release %r does not start with a dotted version" % release)
    return ctx.kernel


def section_host(ctx):
    # type: (_Context) -> Dict[str, Any]
    """The host's own name: kernel hostname (live), /etc/hostname, sosreport."""
    sources = ["/proc/sys/kernel/hostname"] if ctx.reader.live else ["/hostname"]
    sources.append("/etc/hostname")
    for path in sources:
        text = _text_or_none(ctx, path)
        name = text.strip().splitlines()[0].strip() if text and text.strip() else None
        if name:
            return {"hostname": name, "source": path}
    ctx.missing("host.hostname", "no hostname in %s" % ", ".join(sources))
    return {"hostname": None, "source": None}


def section_distro(ctx):
    # type: (_Context) -> Dict[str, Any]
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        text = _text_or_none(ctx, path)
        if text is not None:
            distro = parse_os_release(text)
            if not distro["id"]:
                ctx.missing("distro.id", "%s has no ID" % path)
            return distro
    ctx.missing("distro", "neither /etc/os-release nor /usr/lib/os-release is readable")
    return {"id": None, "version_id": None, "id_like": [], "name": None, "pretty_name": None,
            "major": None}


# -- cgroups ----------------------------------------------------------------

def section_cgroup(ctx):
    # type: (_Context) -> Dict[str, Any]
    layout = cgroupfs.memory_layout(ctx.reader.root, live=ctx.reader.live)
    ctx.layout = layout
    if layout["mode"] is None:
        ctx.missing("cgroup.mode", "no cgroup mount found (no mount table and no "
                                   "/sys/fs/cgroup layout)")
    if layout["memory_controller"] is None:
        ctx.missing("cgroup.memory_controller",
                    "the memory controller is on no v1 mount and cgroup.controllers "
                    "of the cgroup2 root could not be read")
    return layout


def _release_numbers(ctx):
    # type: (_Context) -> Optional[Tuple[int, ...]]
    upstream = (ctx.kernel or {}).get("upstream_version")
    try:
        return tuple(int(part) for part in upstream.split(".")[:2]) if upstream else None
    except ValueError:
        return None


def section_reclaim(ctx):
    # type: (_Context) -> Dict[str, Any]
    """Whether memory cgroups can be reclaimed before removal (memcg-fix-rmdir)."""
    interface, evidence = cgroupfs.reclaim_interface(ctx.reader.root, ctx.layout or {},
                                                     _release_numbers(ctx))
    if interface is None:
        ctx.missing("reclaim.interface", evidence)
    return {"interface": interface, "evidence": evidence}


def section_memcg(ctx):
    # type: (_Context) -> Dict[str, Any]
    result = cgroupfs.dying_memcgs(ctx.reader.root, ctx.layout)
    reason = result.pop("reason", None)
    if reason:
        ctx.missing("memcg", reason)
    result["dying_method"] = result.pop("method")
    result["id_limit"] = cgroupfs.MEMCG_ID_LIMIT
    return result


# -- command line and boot entries ------------------------------------------

def section_cmdline(ctx):
    # type: (_Context) -> Dict[str, Any]
    text = _text_or_none(ctx, "/proc/cmdline")
    if text is None:
        ctx.missing("cmdline", "/proc/cmdline is not readable")
        ctx.cmdline = None
        return {"raw": None, "args": [], "nokmem": None, "cgroup_memory": [],
                "unified_cgroup_hierarchy": None, "cgroup_no_v1": None, "boot_image": None}
    ctx.cmdline = parse_cmdline(text)
    return ctx.cmdline


def _text_or_unknown(ctx, path, fact):
    # type: (_Context, str, str) -> Optional[str]
    """The text of ``path``; None when it does not exist, and an unknown ``fact``
    when it exists but cannot be read (binary, too large, a FIFO, a link loop)."""
    try:
        return ctx.reader.read(path)
    except SourceError as exc:
        try:
            present = os.path.lexists(ctx.reader.path(path))
        except SourceError:
            present = True  # a symlink loop on the way: something is there
        if present:
            ctx.missing(fact, exc)
        return None


def _default_grub(ctx):
    # type: (_Context) -> Optional[Dict[str, Any]]
    text = _text_or_unknown(ctx, "/etc/default/grub", "boot.default_grub")
    files = []
    env = {}  # type: Dict[str, str]
    budget = boot_parsers.ExpansionBudget()  # one for the file and its drop-ins
    try:
        if text is not None:
            env = boot_parsers.parse_default_grub(text, env, budget, "/etc/default/grub")
            files.append("/etc/default/grub")
        try:
            dropins = [n for n in ctx.reader.listdir("/etc/default/grub.d")
                       if n.endswith(".cfg")]
        except SourceError:
            dropins = []
        for name in dropins:
            path = "/etc/default/grub.d/" + name
            dropin = _text_or_unknown(ctx, path, "boot.default_grub")
            if dropin is not None:
                env = boot_parsers.parse_default_grub(dropin, env, budget, path)
                files.append(path)
    except boot_parsers.ExpansionError as exc:
        ctx.missing("boot.default_grub", exc)
        return None
    if not files:
        return None
    linux = env.get("GRUB_CMDLINE_LINUX")
    default = env.get("GRUB_CMDLINE_LINUX_DEFAULT")
    return {
        "GRUB_CMDLINE_LINUX": linux,
        "GRUB_CMDLINE_LINUX_DEFAULT": default,
        "GRUB_DEFAULT": env.get("GRUB_DEFAULT"),
        "files": files,
        # GRUB_CMDLINE_LINUX reaches every entry (recovery too); _DEFAULT does not
        "nokmem": has_nokmem(split_args(linux or "")),
        "nokmem_default_only": (not has_nokmem(split_args(linux or ""))
                                and has_nokmem(split_args(default or ""))),
    }


def _grubenv(ctx):
    # type: (_Context) -> Optional[Dict[str, str]]
    for path in ("/boot/grub2/grubenv", "/boot/grub/grubenv", "/boot/efi/EFI/redhat/grubenv"):
        text = _text_or_none(ctx, path)
        if text is not None:
            return boot_parsers.parse_grubenv(text)
    return None


def _grub_cfg_paths(ctx):
    # type: (_Context) -> List[str]
    paths = ["/boot/grub2/grub.cfg", "/boot/grub/grub.cfg"]
    try:
        for vendor in ctx.reader.listdir("/boot/efi/EFI"):
            paths.append("/boot/efi/EFI/%s/grub.cfg" % vendor)
    except SourceError:
        pass
    return paths


def section_boot(ctx):
    # type: (_Context) -> Dict[str, Any]
    reader = ctx.reader
    result = {"backend": None, "entries": [], "nokmem_all_entries": None,
              "default_index": None, "default_grub": None, "grubenv_kernelopts": None,
              "kernel_cmdline": None, "kernel_cmdline_nokmem": None}  # type: Dict[str, Any]
    reasons = []
    grubenv = _grubenv(ctx) or {}
    result["grubenv_kernelopts"] = grubenv.get("kernelopts")
    entries = []
    unreadable = False
    if reader.live:
        try:
            entries = boot_parsers.parse_grubby_info(reader.run(["grubby", "--info=ALL"]))
            if entries:
                result["backend"] = "grubby"
                try:
                    result["default_index"] = int(reader.run(["grubby", "--default-index"]))
                except (SourceError, ValueError):
                    pass
        except SourceError as exc:
            reasons.append(str(exc))
    if not entries:
        try:
            names = [n for n in reader.listdir("/boot/loader/entries") if n.endswith(".conf")]
        except SourceError:
            names = []
        texts = []
        for name in names:
            text = _text_or_none(ctx, "/boot/loader/entries/" + name)
            if text is not None:
                texts.append((name, text))
        try:
            entries = boot_parsers.bls_entries(texts, grubenv)
        except boot_parsers.ExpansionError as exc:
            # the entries are there but cannot be read: not a reason to
            # believe another boot loader's configuration instead
            entries = []
            reasons.append(str(exc))
            unreadable = True
        if entries:
            result["backend"] = "bls"
            saved = grubenv.get("saved_entry")
            for entry in entries:
                if saved and entry["id"] == saved:
                    result["default_index"] = entry["index"]
            if result["default_index"] is None and not saved:
                result["default_index"] = 0
        elif not names:
            reasons.append("no BLS entries in /boot/loader/entries")
    if not entries and not unreadable:
        for path in _grub_cfg_paths(ctx):
            text = _text_or_none(ctx, path)
            if text is None:
                continue
            entries = boot_parsers.parse_grub_cfg(text)
            if entries:
                result["backend"] = "grub2-legacy" if "grub2" in path or "/EFI/" in path \
                    else "debian-grub"
                break
        else:
            reasons.append("no readable grub.cfg")
    result["entries"] = entries
    result["default_grub"] = _default_grub(ctx)
    kernel_cmdline = _text_or_none(ctx, "/etc/kernel/cmdline")
    if kernel_cmdline is not None:
        result["kernel_cmdline"] = kernel_cmdline.strip()
        result["kernel_cmdline_nokmem"] = has_nokmem(split_args(kernel_cmdline))
    if result["default_index"] is None and entries:
        value = ((result["default_grub"] or {}).get("GRUB_DEFAULT") or "0").strip()
        if value == "saved":
            # grub2-set-default stores a title, an id or an index; none means entry 0
            value = grubenv.get("saved_entry") or "0"
        if value.isdigit():
            result["default_index"] = int(value)
        else:
            for entry in entries:
                if value in (entry.get("title"), entry.get("id")):
                    result["default_index"] = entry["index"]
    if entries:
        result["nokmem_all_entries"] = all(entry["nokmem"] for entry in entries)
    else:
        ctx.missing("boot.nokmem_all_entries",
                    ("the boot entries cannot be read: " if unreadable
                     else "no boot entries found: ") + ("; ".join(reasons) or "no boot loader"))
    ctx.boot = result
    return result


# -- kmem accounting --------------------------------------------------------

def _sample_memcgs(ctx, mount):
    # type: (_Context, str) -> List[str]
    """A few non-root memcgs (first two levels), as paths relative to the host."""
    reader = ctx.reader
    sample = []  # type: List[str]
    try:
        top = [n for n in reader.listdir(mount) if reader.isdir(mount + "/" + n)]
    except SourceError:
        return sample
    for name in top:
        sample.append(mount + "/" + name)
        if len(sample) >= _KMEM_SAMPLE:
            return sample
    for name in top:
        try:
            children = reader.listdir(mount + "/" + name)
        except SourceError:
            continue
        for child in children:
            path = "%s/%s/%s" % (mount, name, child)
            if reader.isdir(path):
                sample.append(path)
                if len(sample) >= _KMEM_SAMPLE:
                    return sample
    return sample


def _slabinfo_eio(path):
    # type: (str) -> Optional[bool]
    """True when reading memory.kmem.slabinfo fails with EIO (kmem accounting
    inactive in that memcg, runc#1725), False when it reads, None otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        os.read(fd, 4096)
        return False
    except OSError as exc:
        return True if exc.errno == errno.EIO else None
    finally:
        os.close(fd)


# A per-memcg slab cache: "dentry(602:docker.socket)" (<cache>(<memcg id>:<cgroup>)),
# listed under /sys/kernel/slab/<cache>/cgroup/ (SLUB, 4.x until 5.9) or, on
# 3.10, at the top of /sys/kernel/slab (a sosreport keeps a listing of it).
# Only kmem accounting creates them. /proc/slabinfo is read for them too, for
# a kernel that prints them there; mainline does not since 3.8 ("memcg:
# aggregate memcg cache values in slabinfo" adds them into the root cache's
# line), and memory.kmem.slabinfo names them by their root cache.
_MEMCG_CACHE = re.compile(r"^[^()\s]+\((\d+):[^()]*\)$")
_MEMCG_CACHE_DIRS = 500  # cache directories probed for a cgroup/ subdirectory
# SLUB gives every root cache a cgroup/ directory or none (sysfs_slab_add()
# makes it for each root cache when memcg sysfs is on; cache_kset() puts the
# per-memcg caches there), and 5.9 has none (9855609bde03, one set of caches
# for all memcgs). So once the first few caches have none, the rest are not
# probed: on a 5.9+ host that was some 400 failed listings, 2-5 ms a run.
_NO_CGROUP_DIR_LIMIT = 3


def _slab_entries(ctx):
    # type: (_Context) -> Tuple[Optional[List[str]], str]
    """``(names, where)`` of /sys/kernel/slab: listed live or in a host root,
    or read from a sosreport's listing of it; ``(None, why)`` otherwise."""
    if ctx.slab_entries is not None:
        return ctx.slab_entries
    try:
        ctx.slab_entries = (ctx.reader.listdir("/sys/kernel/slab"), "/sys/kernel/slab")
    except SourceError as exc:
        ctx.slab_entries = (None, str(exc))
        if not ctx.reader.live:
            for name in memory_cost.SOS_SLAB_LISTINGS:
                try:
                    text = ctx.reader.sos(name)
                except SourceError:
                    continue
                ctx.slab_entries = (memory_cost.parse_ls_names(text), "sos_commands/" + name)
                break
    return ctx.slab_entries


def _per_memcg_caches(ctx):
    # type: (_Context) -> List[str]
    """Up to a few per-memcg slab cache names, with where they were seen."""
    found = []  # type: List[str]
    names, where = _slab_entries(ctx)
    names = names or []
    found.extend("%s: %s" % (where, n) if where.startswith("sos_commands/")
                 else "/sys/kernel/slab/" + n for n in names if _MEMCG_CACHE.match(n))
    if where != "/sys/kernel/slab":
        names = []  # a listing: the cache directories themselves are not there
    probed_without, any_cgroup_dir = 0, False
    for name in names[:_MEMCG_CACHE_DIRS]:
        if len(found) >= 3 or (not any_cgroup_dir and probed_without >= _NO_CGROUP_DIR_LIMIT):
            break
        try:
            entries = ctx.reader.listdir("/sys/kernel/slab/%s/cgroup" % name)
        except SourceError:
            probed_without += 1
            continue
        any_cgroup_dir = True
        found.extend("/sys/kernel/slab/%s/cgroup/%s" % (name, e) for e in entries[:3]
                     if _MEMCG_CACHE.match(e))
    if len(found) < 3:
        try:
            slabinfo = _slabinfo(ctx)
        except SourceError:
            slabinfo = None
        if slabinfo:
            found.extend("/proc/slabinfo: " + row["name"]
                         for row in memory_cost.parse_slabinfo(slabinfo)
                         if _MEMCG_CACHE.match(row["name"]))
    return found[:3]


def _v1_accounting_by_version(ctx, nokmem):
    # type: (_Context, Optional[bool]) -> Optional[bool]
    """From 4.6 every v1 memcg accounts kernel memory (b313aeee2509, "mm:
    memcontrol: enable kmem accounting for all cgroups in the legacy
    hierarchy") unless cgroup.memory=nokmem is given; before, only a memcg
    whose kmem limit was set (runc, kubelet) does."""
    numbers = _release_numbers(ctx)
    if numbers is None or numbers < (4, 6) or nokmem is None:
        return None
    return not nokmem


def section_kmem(ctx):
    # type: (_Context) -> Dict[str, Any]
    result = {"accounting_active": None, "evidence": None, "sources": [],
              "probed_memcgs": 0, "kmem_limited_memcgs": 0, "circumstantial": []}  # type: Dict[str, Any]
    layout = ctx.layout or {}
    nokmem = ctx.cmdline["nokmem"] if ctx.cmdline else None
    if layout.get("memory_controller") == "v2":
        if nokmem is None:
            ctx.missing("kmem.accounting_active", "the kernel command line is unknown")
        else:
            result["accounting_active"] = not nokmem
            result["evidence"] = ("cgroup v2 charges kernel memory to every memcg unless "
                                  "cgroup.memory=nokmem is given (it is %s)"
                                  % ("given" if nokmem else "not given"))
        return result
    mount = layout.get("memory_mount")
    if layout.get("memory_controller") != "v1" or not mount:
        ctx.missing("kmem.accounting_active", "no v1 memory hierarchy to probe")
        return result
    sources = result["sources"]
    by_version = _v1_accounting_by_version(ctx, nokmem)
    if by_version is not None:
        sources.append("kernel %s on v1 with cgroup.memory=nokmem %s: from 4.6 every v1 memcg "
                       "accounts kernel memory unless nokmem is given"
                       % ((ctx.kernel or {}).get("release"), "given" if nokmem else "not given"))
    charged = None
    limited = None
    probed = 0
    for memcg in _sample_memcgs(ctx, mount):
        usage = _text_or_none(ctx, memcg + "/memory.kmem.usage_in_bytes")
        limit = _text_or_none(ctx, memcg + "/memory.kmem.limit_in_bytes")
        if usage is None:
            continue
        probed += 1
        try:
            if limit is not None and int(limit.strip()) < _KMEM_UNLIMITED:
                result["kmem_limited_memcgs"] += 1
                limited = limited or memcg
            if int(usage.strip()) > 0 and charged is None:
                charged = (memcg, int(usage.strip()))
        except ValueError:
            continue
    result["probed_memcgs"] = probed
    if charged:
        sources.append("memory.kmem.usage_in_bytes of %s is %d bytes" % charged)
    if limited:
        sources.append("%s has a kmem limit (setting one turns accounting on)" % limited)
    caches = _per_memcg_caches(ctx)
    if caches:
        sources.append("per-memcg slab caches exist (only kmem accounting makes them): %s"
                       % ", ".join(caches))
    if by_version is not None:
        result["accounting_active"] = by_version
    elif charged or limited or caches:
        result["accounting_active"] = True
    if result["accounting_active"] is not None:
        result["evidence"] = sources[0]
        return result
    if probed and ctx.reader.live:
        first = _sample_memcgs(ctx, mount)[0]
        eio = _slabinfo_eio(first + "/memory.kmem.slabinfo")
        if eio:
            result["accounting_active"] = False
            result["evidence"] = ("reading memory.kmem.slabinfo of %s fails with EIO: kmem "
                                  "accounting is inactive" % first)
            sources.append(result["evidence"])
            return result
    looked = ("memory.kmem.* of %d memcgs, /sys/kernel/slab and /proc/slabinfo" % probed
              if probed else "no non-root memcg with memory.kmem.* files, no per-memcg slab "
                             "cache in /sys/kernel/slab or /proc/slabinfo")
    ctx.missing("kmem.accounting_active",
                "nothing shows whether kmem accounting is on (%s)" % looked)
    return result


def kmem_circumstantial(facts):
    # type: (Dict[str, Any]) -> List[str]
    """Signs that a runtime turns kmem accounting on, reported as such (they
    decide nothing): runc before 1.0.0-rc94 sets memory.kmem.limit_in_bytes on
    every v1 container cgroup (runc#1725, fixed by runc#2840); Docker and
    kubelet drive runc (kubelet through its vendored libcontainer)."""
    signs = []
    for tool in ("runc", "docker", "kubelet"):
        section = facts.get(tool) or {}
        if section.get("installed"):
            signs.append("%s installed%s (%s)" % (
                tool, " " + section["version"] if section.get("version") else "",
                section.get("source") or section.get("path") or "found"))
    return signs


# -- packages ---------------------------------------------------------------

def _dpkg_packages(ctx):
    # type: (_Context) -> Dict[str, str]
    if ctx.dpkg is not None:
        return ctx.dpkg
    reader = ctx.reader
    packages_found = {}
    text = _text_or_none(ctx, "/var/lib/dpkg/status")
    if text is not None:
        packages_found = packages.parse_dpkg_status(text)
    elif not reader.live:
        try:
            packages_found = packages.parse_dpkg_list(reader.sos("dpkg/dpkg_-l"))
        except SourceError:
            packages_found = {}
    ctx.dpkg = packages_found
    return packages_found


def _has_rpm_database(reader):
    # type: (LiveReader) -> bool
    """Whether /var/lib/rpm holds anything (on Fedora 36+ and EL10 it is a link
    to /usr/lib/sysimage/rpm). A Debian host with the rpm tool installed has
    it empty, and asking that rpm, which starts a shell for its macros, was
    the costliest command of a collector's run there (14 ms)."""
    try:
        return bool(reader.listdir("/var/lib/rpm"))
    except SourceError:
        return False


def _rpm_text(ctx):
    # type: (_Context) -> Optional[str]
    """``rpm -q``-style text of installed packages, or None."""
    if ctx.rpm_text is not None:
        return ctx.rpm_text or None
    reader = ctx.reader
    text = None
    if reader.live and _has_rpm_database(reader):
        try:
            text = reader.run(["rpm", "-qa", "kernel", "kernel-uek", "kernel-rt", "runc",
                               "kubelet", "kubernetes-node", "docker", "docker-ce",
                               "moby-engine"],
                              ok_codes=tuple(range(0, 10)))
        except SourceError:
            text = None
    elif not reader.live:
        text = _text_or_none(ctx, "/installed-rpms")
        if text is None:
            try:
                text = reader.sos("rpm/package-data")
            except SourceError:
                text = None
    ctx.rpm_text = text or ""
    return text


def section_kernels(ctx):
    # type: (_Context) -> Dict[str, Any]
    running = ctx.kernel["release"] if ctx.kernel else None
    result = {"installed": [], "default": None, "running": running, "reboot_pending": None,
              "package_manager": None}  # type: Dict[str, Any]
    installed = []
    dpkg = _dpkg_packages(ctx)
    rpm_text = _rpm_text(ctx)
    if rpm_text and packages.parse_rpm_kernels(rpm_text):
        result["package_manager"] = "rpm"
        installed = packages.parse_rpm_kernels(rpm_text)
    elif dpkg:
        result["package_manager"] = "dpkg"
        installed = packages.debian_kernel_releases(dpkg)
    result["installed"] = installed
    if not installed:
        ctx.missing("kernels.installed", "no rpm or dpkg package data lists a kernel")
    boot = ctx.boot or {}
    entries = boot.get("entries") or []
    index = boot.get("default_index")
    for entry in entries:
        if index is not None and entry["index"] == index:
            result["default"] = entry["release"]
    if result["default"] is None:
        ctx.missing("kernels.default", "the default boot entry is not known")
    if result["default"] and running:
        result["reboot_pending"] = result["default"] != running
    else:
        ctx.missing("kernels.reboot_pending", "needs both the running and the default kernel")
    return result


def _tool_version(ctx, names, parse, package_names):
    # type: (_Context, Sequence[str], Callable[[str], Optional[str]], Sequence[str]) -> Tuple[Optional[str], Optional[str], Optional[str]]
    """(version, path, source) of a tool: run it live, else its package."""
    reader = ctx.reader
    if reader.live:
        for name in names:
            path = name if name.startswith("/") else which(name)
            if not path or not os.path.isfile(path):
                continue
            try:
                version = parse(_version_text(ctx, path))
            except SourceError as exc:
                return None, path, str(exc)
            return version, path, "command"
    dpkg = _dpkg_packages(ctx)
    rpm_text = _rpm_text(ctx) or ""
    for package in package_names:
        version = dpkg.get(package) or packages.rpm_package_version(rpm_text, package)
        if version:
            return packages.upstream_of_package_version(version), None, "package %s %s" % (
                package, version)
    for name in names:
        path = name if name.startswith("/") else "/usr/bin/" + name
        if reader.isfile(path) or reader.isfile("/usr/sbin/" + name):
            return None, path, "installed, but its version cannot be read here"
    return None, None, None


def _version_text(ctx, path):
    # type: (_Context, str) -> str
    """What ``path --version`` prints, or what it printed on an earlier run
    of the same binary (``tool_versions``; the raw path keeps them)."""
    memo = ctx.versions
    if memo is None:
        return ctx.reader.run([path, "--version"], timeout=10.0)
    identity = tool_versions.binary_identity(path)  # taken before it runs
    text = memo.recall(path, identity)
    if text is None:
        text = ctx.reader.run([path, "--version"], timeout=10.0)
        memo.remember(path, identity, text)
    return text


def _tool_section(ctx, name, version, path, source):
    # type: (_Context, str, Optional[str], Optional[str], Optional[str]) -> Dict[str, Any]
    """``{version, path, installed, source}``; a tool that is not installed is
    ``installed: false`` and not unknown, unless nothing could tell: a host root
    with no package database and no binary of it."""
    installed = bool(path or version)  # type: Optional[bool]
    if not installed and not ctx.reader.live and not _dpkg_packages(ctx) \
            and not _rpm_text(ctx):
        installed = None
        ctx.missing(name + ".installed", "the host root has no rpm or dpkg package data and "
                                         "no %s binary, so whether it is installed is unknown"
                    % name)
    result = {"version": version, "path": path, "installed": installed, "source": source}  # type: Dict[str, Any]
    if version is None and installed:
        ctx.missing(name + ".version", source or "%s is installed but gave no version" % name)
    elif version is None and installed is None:
        ctx.missing(name + ".version", "whether %s is installed is unknown" % name)
    return result


def section_runc(ctx):
    # type: (_Context) -> Dict[str, Any]
    version, path, source = _tool_version(
        ctx, ("runc", "docker-runc", "/usr/libexec/docker/docker-runc-current"),
        lambda text: packages.parse_runc_version(text)["version"], ("runc", "docker-runc"))
    return _tool_section(ctx, "runc", version, path, source)


def section_docker(ctx):
    # type: (_Context) -> Dict[str, Any]
    version, path, source = _tool_version(
        ctx, ("dockerd", "docker"), packages.parse_docker_version,
        ("docker-ce", "docker", "docker.io", "moby-engine"))
    return _tool_section(ctx, "docker", version, path, source)


def section_kubelet(ctx):
    # type: (_Context) -> Dict[str, Any]
    version, path, source = _tool_version(
        ctx, ("kubelet",), packages.parse_kubelet_version, ("kubelet", "kubernetes-node"))
    return _tool_section(ctx, "kubelet", version, path, source)


# -- PAM ----------------------------------------------------------------------

def _pam_module_installed(ctx, module):
    # type: (_Context, str) -> Optional[bool]
    reader = ctx.reader
    dirs = list(_PAM_MODULE_DIRS)
    for base in ("/lib", "/usr/lib"):
        try:
            dirs.extend("%s/%s/security" % (base, name) for name in reader.listdir(base)
                        if name.endswith("-linux-gnu"))
        except SourceError:
            continue
    return any(reader.isfile(d + "/" + module) for d in dirs)


# The login services whose sessions get a systemd scope of their own.
LOGIN_SERVICES = ("sshd", "login")


def _pam_services(ctx):
    # type: (_Context) -> Tuple[Dict[str, Any], Optional[bool], Optional[str]]
    """Per service, what pam_lastlog does in its session stack (pamflow), and
    whether it writes wtmp/lastlog inside a login's session scope (sshd, login):
    ``(services, in_session, why_unknown)``."""
    def read(name):
        # type: (str) -> Optional[str]
        return _text_or_none(ctx, "/etc/pam.d/" + name)

    services = {}
    for service in pamflow.SERVICES:
        if ctx.reader.isfile("/etc/pam.d/" + service):
            services[service] = pamflow.lastlog_for(read, service)
    judged = [services[s] for s in LOGIN_SERVICES if s in services]
    if not judged:
        return services, None, "neither /etc/pam.d/sshd nor /etc/pam.d/login exists"
    verdicts = [entry["writes_in_session"] for entry in judged]
    if True in verdicts:
        return services, True, None
    if None in verdicts:
        some_paths = "only on some paths (a condition on the user or host)"
        reasons = ["%s: %s" % (e["service"], e["error"] or some_paths)
                   for e in judged if e["writes_in_session"] is None]
        return services, None, "; ".join(reasons)
    return services, False, None


def section_pam(ctx):
    # type: (_Context) -> Dict[str, Any]
    files = []
    lines_all = []
    for path in PAM_FILES:
        text = _text_or_none(ctx, path)
        if text is None:
            continue
        link = ctx.reader.readlink(path)
        lines = lastlog_lines(text)
        lines_all.extend(lines)
        files.append({"path": path, "link": link, "owner": file_owner(text, link),
                      "lastlog_lines": lines})
    result = {"files": files, "lastlog_active": None, "lastlog_writes_wtmp": None,
              "lastlog_writes_lastlog": None, "lastlog2": None, "authselect_managed": None,
              "authconfig_managed": None, "lastlog_module_installed": None, "services": {},
              "lastlog_writes_in_session": None, "lastlog_session_services": []}  # type: Dict[str, Any]
    if not files:
        ctx.missing("pam", "none of %s is readable" % ", ".join(PAM_FILES))
        return result
    classic = [line for line in lines_all if not line["lastlog2"]]
    services, in_session, why = _pam_services(ctx)
    result["services"] = services
    result["lastlog_writes_in_session"] = in_session
    result["lastlog_session_services"] = [
        s for s in LOGIN_SERVICES if (services.get(s) or {}).get("writes_in_session")]
    if in_session is None:
        ctx.missing("pam.lastlog_writes_in_session", why)
    result.update({
        "lastlog_active": bool(classic),
        "lastlog_writes_wtmp": any(line["writes_wtmp"] for line in lines_all),
        "lastlog_writes_lastlog": any(line["writes_lastlog"] for line in lines_all),
        "lastlog2": any(line["lastlog2"] for line in lines_all),
        "authselect_managed": any(f["owner"] == "authselect" for f in files),
        "authconfig_managed": any(f["owner"] == "authconfig" for f in files),
        "lastlog_module_installed": _pam_module_installed(ctx, "pam_lastlog.so"),
    })
    return result


# -- logs and memory cost ---------------------------------------------------

def _kernel_log_text(ctx):
    # type: (_Context) -> Tuple[Optional[str], Any]
    reader = ctx.reader
    reasons = []
    if reader.live:
        for source, argv in (("dmesg", ["dmesg"]),
                             ("journal", ["journalctl", "-k", "-b", "--no-pager", "-q"])):
            try:
                return source, reader.run(argv, timeout=20.0)
            except SourceError as exc:
                reasons.append(str(exc))
    else:
        try:
            return "sos", reader.sos("kernel/dmesg")
        except SourceError as exc:
            reasons.append(str(exc))
    for path in ("/var/log/messages", "/var/log/kern.log", "/var/log/dmesg"):
        try:
            return "messages", reader.read(path, tail=True)
        except SourceError as exc:
            reasons.append(str(exc))
    raise SourceError("; ".join(reasons))


def section_kernel_log(ctx):
    # type: (_Context) -> Dict[str, Any]
    try:
        source, text = _kernel_log_text(ctx)
    except SourceError as exc:
        ctx.missing("kernel_log", "no kernel log could be read: %s" % exc)
        return {"source": None, "signatures": None}
    return {"source": source, "signatures": kernel_log.scan_kernel_log(text)}


def section_memory_cost(ctx):
    # type: (_Context) -> Dict[str, Any]
    result = {"percpu_kb": None, "memcg_slab_cache": None, "memcg_slab_active_objs": None,
              "duplicate_slab_caches": None, "sys_kernel_slab_entries": None}  # type: Dict[str, Any]
    meminfo = _text_or_none(ctx, "/proc/meminfo")
    if meminfo is None:
        ctx.missing("memory_cost.percpu_kb", "/proc/meminfo is not readable")
    else:
        result["percpu_kb"] = memory_cost.parse_meminfo(meminfo).get("Percpu")
        if result["percpu_kb"] is None:
            ctx.missing("memory_cost.percpu_kb", "/proc/meminfo has no Percpu line "
                                                 "(kernels before 4.16 lack it)")
    try:
        caches = memory_cost.parse_slabinfo(_slabinfo(ctx))
        name, active = memory_cost.memcg_cache(caches)
        result.update({"memcg_slab_cache": name, "memcg_slab_active_objs": active,
                       "duplicate_slab_caches": memory_cost.duplicate_caches(caches)})
        if name is None:
            ctx.missing("memory_cost.memcg_slab_cache", "no kmalloc-4k cache in /proc/slabinfo")
    except SourceError as exc:
        ctx.missing("memory_cost.memcg_slab_cache", "/proc/slabinfo: %s" % exc)
    names, where = _slab_entries(ctx)
    if names is None:
        ctx.missing("memory_cost.sys_kernel_slab_entries", where)
    else:
        result["sys_kernel_slab_entries"] = len(names)
    return result


# -- memcg-fix's own footprint ----------------------------------------------

REAPER_CONF = reaper_config.DEFAULT_CONFIG
REAPER_BIN = "/usr/local/sbin/memcg-fix-reaper"
REBOOT_MARKER = "/var/lib/memcg-fix/reboot-required"


def section_memcg_fix(ctx):
    # type: (_Context) -> Dict[str, Any]
    """What memcg-fix itself left on the host: the reaper, a pending reboot.

    reaper.conf is read by the reaper's own reader (reaper_config), with the
    same defaults: a ``[reclaim]`` section without ``enabled`` is on. A file
    the reaper would refuse (exit 2) runs no pass at all.
    """
    conf = _text_or_none(ctx, REAPER_CONF)
    installed = conf is not None and ctx.reader.isfile(REAPER_BIN)
    error = None
    enabled = {"reclaim": False, "drop_caches": False}
    if installed:
        try:
            config = reaper_config.parse_config(conf, REAPER_CONF)
            enabled = {name: bool(config[name]["enabled"]) for name in enabled}
        except reaper_config.ConfigError as exc:
            error = str(exc)
    return {
        "reaper_installed": installed,
        "reaper_reclaim": enabled["reclaim"],
        "reaper_drop_caches": enabled["drop_caches"],
        "reaper_config_error": error,
        "reboot_required": ctx.reader.isfile(REBOOT_MARKER),
    }


SECTIONS = (
    ("host", section_host),
    ("kernel", section_kernel),
    ("distro", section_distro),
    ("cgroup", section_cgroup),
    ("memcg", section_memcg),
    ("reclaim", section_reclaim),
    ("cmdline", section_cmdline),
    ("boot", section_boot),
    ("kmem", section_kmem),
    ("kernels", section_kernels),
    ("runc", section_runc),
    ("docker", section_docker),
    ("kubelet", section_kubelet),
    ("pam", section_pam),
    ("kernel_log", section_kernel_log),
    ("memory_cost", section_memory_cost),
    ("memcg_fix", section_memcg_fix),
)


def _python_version():
    # type: () -> str
    """``platform.python_version()`` without importing ``platform`` (a few ms
    of a collector's run): the first word of ``sys.version``, which is what it
    parses it from."""
    return sys.version.split()[0]


def collect(reader, versions=None):
    # type: (LiveReader, Optional[tool_versions.VersionMemo]) -> Dict[str, Any]
    """All facts of the host behind ``reader``; never raises. ``versions``:
    tools' ``--version`` texts kept from an earlier run (live hosts only)."""
    ctx = _Context(reader, versions)
    facts = {}  # type: Dict[str, Any]
    for name, section in SECTIONS:
        try:
            facts[name] = section(ctx)
        except Exception as exc:  # one broken source must not cost the other facts
            facts[name] = None
            ctx.missing(name, "internal error while reading it: %s: %s"
                        % (type(exc).__name__, exc))
    if isinstance(facts.get("kmem"), dict):
        signs = kmem_circumstantial(facts)
        facts["kmem"]["circumstantial"] = signs
        for entry in ctx.unknown:
            if entry["fact"] == "kmem.accounting_active" and signs:
                # shown beside the unknown, so a reader sees them, and as what they are
                entry["reason"] += "; circumstantial only, deciding nothing: " + "; ".join(signs)
    facts["collector"] = {
        "mode": reader.mode,
        "root": None if reader.live else reader.root,
        "python": sys.executable or None,
        "python_version": _python_version(),
        "sosreport": (not reader.live) and reader.isdir("/sos_commands"),
    }
    return {"facts": facts, "unknown": ctx.unknown}
