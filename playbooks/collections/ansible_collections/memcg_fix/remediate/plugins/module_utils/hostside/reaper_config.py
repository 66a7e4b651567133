"""The reaper's configuration, /etc/memcg-fix/reaper.conf: one reader for all.

``memcg-fix-reaper`` runs what this reads, and the collector reports what
this reads (``facts.memcg_fix``), so the two can never disagree about a
section without ``enabled`` (``[reclaim]`` is on by default, ``[drop_caches]``
off) or about a file the reaper would refuse. Every option is documented in
the role's templates/reaper.conf.j2. Runs on the target's own Python (2.7,
3.6+), stdlib only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import math

MYPY = False
if MYPY:  # typing is for mypy only: Python 2.7 has no typing module
    from typing import Any, Dict, List, Optional, Tuple  # noqa: F401 # novermin

DEFAULT_CONFIG = "/etc/memcg-fix/reaper.conf"
MAX_CONFIG_BYTES = 1024 * 1024

# section -> option -> (kind, default). Every option is documented in the
# role's templates/reaper.conf.j2.
OPTIONS = {
    "reaper": {
        "state_dir": ("path", "/var/lib/memcg-fix"),
        "textfile_dir": ("optional_path", "/var/lib/node_exporter/textfile_collector"),
        "host_root": ("path", "/"),
        "lock_timeout_seconds": ("seconds", 120.0),
        "reboot_required_files": ("paths",
                                  "/var/lib/memcg-fix/reboot-required /var/run/reboot-required"),
    },
    "reclaim": {
        "enabled": ("bool", True),
        "dry_run": ("bool", False),
        "grace_seconds": ("count", 300),
        "min_charge_bytes": ("count", 1048576),
        "timeout_seconds": ("seconds", 30.0),
        "max_per_pass": ("count", 100),
        "subtrees": ("relpaths", ""),
        "exclude": ("patterns", ""),
    },
    "drop_caches": {
        "enabled": ("bool", False),
        "dry_run": ("bool", False),
        "dying_threshold": ("count", 5000),
        "min_interval_seconds": ("count", 3600),
        "require_growth": ("bool", True),
        "timeout_seconds": ("seconds", 600.0),
    },
}  # type: Dict[str, Dict[str, Tuple[str, Any]]]

_TRUE = ("1", "yes", "true", "on")
_FALSE = ("0", "no", "false", "off")


class ConfigError(Exception):
    """The configuration cannot be used; one-line reason."""


def _split(value):
    # type: (str) -> List[str]
    return [item for item in value.replace(",", " ").split() if item]


def _convert(kind, value, where):
    # type: (str, str, str) -> Any
    value = value.strip()
    if kind == "bool":
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ConfigError("%s: '%s' is not a boolean (true/false)" % (where, value))
    if kind == "count":
        try:
            number = int(value)
        except ValueError:
            raise ConfigError("%s: '%s' is not a whole number" % (where, value))
        if number < 0:
            raise ConfigError("%s: %d is negative" % (where, number))
        return number
    if kind == "seconds":
        try:
            seconds = float(value)
        except ValueError:
            raise ConfigError("%s: '%s' is not a number of seconds" % (where, value))
        if math.isnan(seconds) or seconds <= 0:
            raise ConfigError("%s: must be more than 0 seconds" % where)
        return seconds
    if kind in ("path", "optional_path"):
        if not value and kind == "optional_path":
            return ""
        if not value.startswith("/"):
            raise ConfigError("%s: '%s' is not an absolute path" % (where, value))
        return value
    if kind == "paths":
        items = _split(value)
        for item in items:
            if not item.startswith("/"):
                raise ConfigError("%s: '%s' is not an absolute path" % (where, item))
        return items
    if kind == "relpaths":
        items = []
        for item in _split(value):
            clean = item.strip("/")
            if ".." in clean.split("/"):
                raise ConfigError("%s: '%s' contains '..'" % (where, item))
            items.append(clean)
        return items
    if kind == "patterns":
        return _split(value)
    raise ConfigError("%s: unknown option kind %s" % (where, kind))  # pragma: no cover


def defaults():
    # type: () -> Dict[str, Dict[str, Any]]
    """The configuration used when no file exists: safe on any host
    (reclaim on with a 5 minute grace, drop_caches off)."""
    config = {}  # type: Dict[str, Dict[str, Any]]
    for section, options in OPTIONS.items():
        config[section] = {}
        for name, (kind, default) in options.items():
            config[section][name] = (_convert(kind, str(default), "%s.%s" % (section, name))
                                     if isinstance(default, str) else default)
    return config


def parse_config(text, source="<config>"):
    # type: (Any, str) -> Dict[str, Dict[str, Any]]
    """Parse INI ``text`` into a complete config dict; raise ConfigError.

    Unknown sections and options are errors (a typo must not silently fall
    back to a default).
    """
    # imported here: the collector loads this module on every host, and most
    # have no reaper.conf to parse
    try:
        import configparser  # novermin - Python 3 name; 2.7 takes the fallback below
    except ImportError:  # Python 2.7
        import ConfigParser as configparser  # type: ignore[import-not-found,no-redef] # novermin
    parser = configparser.RawConfigParser()
    try:
        if hasattr(parser, "read_string"):
            parser.read_string(text, source)  # novermin - guarded by hasattr
        else:  # Python 2.7
            import io
            parser.readfp(io.StringIO(text if not isinstance(text, bytes)
                                      else text.decode("utf-8")), source)
    except configparser.Error as exc:
        raise ConfigError("%s: %s" % (source, " ".join(str(exc).split())))
    config = defaults()
    for section in parser.sections():
        if section not in OPTIONS:
            raise ConfigError("%s: unknown section [%s]; expected one of %s"
                              % (source, section, ", ".join(sorted(OPTIONS))))
        for name, value in parser.items(section):
            if name not in OPTIONS[section]:
                raise ConfigError("%s: unknown option '%s' in [%s]" % (source, name, section))
            kind = OPTIONS[section][name][0]
            config[section][name] = _convert(kind, value, "%s: [%s] %s" % (source, section, name))
    return config


def load_config(path, explicit):
    # type: (str, bool) -> Tuple[Dict[str, Dict[str, Any]], Optional[str]]
    """The config at ``path``; the built-in defaults when the default path is
    missing. An explicitly given path must exist."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES)
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT and not explicit:
            return defaults(), "%s does not exist; using the built-in defaults" % path
        raise ConfigError("cannot read %s: %s" % (path, exc.strerror or exc))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError("%s is not UTF-8 text" % path)
    return parse_config(text, path), None
