"""remediate.versions against the package managers' own test cases.

The cases live in tests/data/versions/ with their origin: rpm's
tests/rpmvercmp.at and dpkg's lib/dpkg/t/t-version.c and
scripts/t/Dpkg_Version.t. Where the real ``rpm`` and ``dpkg`` binaries are
installed, every case (and random versions, through hypothesis) is also
checked against them, so a case file that drifts from the tools fails too.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remediate.errors import InputError
from remediate.versions import check, compare, dpkg_syntax, is_valid

DATA = Path(__file__).resolve().parents[1] / "data" / "versions"
TOKENS = {"<EMPTY>": "", "<SP>": " ", "<TAB>": "\t"}


def _token(text: str) -> str:
    if text == "<EMPTY>":
        return ""
    for name, value in TOKENS.items():
        text = text.replace(name, value)
    return text


def _ids(cases: list[tuple[str, str, int]]) -> list[str]:
    return [f"{a}~{b}" for a, b, _ in cases]


def _sections(name: str) -> dict[str, list[list[str]]]:
    """``{section: [fields...]}`` of a case file: ``[section]`` headers, ``#`` comments."""
    sections: dict[str, list[list[str]]] = {}
    current = None
    for raw in (DATA / name).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            sections[current] = []
            continue
        assert current is not None, f"{name}: case outside a section: {raw!r}"
        sections[current].append([_token(field) for field in line.split()])
    return sections


RPM = _sections("rpmvercmp.txt")
DPKG = _sections("dpkg-version.txt")
UPSTREAM = _sections("upstream.txt")
EL7 = _sections("el7-kernels.txt")

RPM_CASES = [(a, b, int(e)) for a, b, e in RPM["cases"] + RPM["oddities"]]
DPKG_CASES = [(a, b, int(e)) for a, b, e in DPKG["compare"]]
DPKG_VALID = [(a, b) for a, b in DPKG["valid"]]
DPKG_ERRORS = [row[0] if row else "" for row in DPKG["error"]]
DPKG_WARNINGS = [row[0] for row in DPKG["warning"]]


def test_case_files_hold_what_their_origins_hold():
    # rpmvercmp.at at 7f3fdf6: 91 active RPMVERCMP lines plus 12 documented oddities.
    assert len(RPM["cases"]) == 91 and len(RPM["oddities"]) == 12
    # t-version.c: 17 valid parses, 12 errors, 2 + 24 + 25 warnings.
    assert len(DPKG_VALID) == 17
    assert len(DPKG_ERRORS) == 14  # 12 from t-version.c, 2 from Dpkg_Version.t
    assert len(DPKG_WARNINGS) == 51
    # The empty version survived the <EMPTY> token.
    assert "" in DPKG_ERRORS


@pytest.mark.parametrize(("a", "b", "expected"), RPM_CASES, ids=_ids(RPM_CASES))
def test_rpmvercmp_cases(a, b, expected):
    assert compare(a, b, "rpm") == expected
    assert compare(b, a, "rpm") == -expected


@pytest.mark.parametrize(("a", "b", "expected"), DPKG_CASES, ids=_ids(DPKG_CASES))
def test_dpkg_compare_cases(a, b, expected):
    assert compare(a, b, "dpkg") == expected
    assert compare(b, a, "dpkg") == -expected


@pytest.mark.parametrize(("text", "equivalent"), DPKG_VALID, ids=[repr(a) for a, _ in DPKG_VALID])
def test_dpkg_valid_parses_compare_equal(text, equivalent):
    assert dpkg_syntax(text) == (None, None)
    assert compare(text, equivalent, "dpkg") == 0


@pytest.mark.parametrize("text", DPKG_ERRORS, ids=[repr(t) for t in DPKG_ERRORS])
def test_dpkg_errors_are_refused(text):
    error, _ = dpkg_syntax(text)
    assert error
    with pytest.raises(InputError, match="not a dpkg version"):
        compare(text, "1.0", "dpkg")
    with pytest.raises(InputError, match="not a dpkg version"):
        compare("1.0", text, "dpkg")
    assert not is_valid(text, "dpkg")


@pytest.mark.parametrize("text", DPKG_WARNINGS, ids=[repr(t) for t in DPKG_WARNINGS])
def test_dpkg_warnings_are_not_valid_policy_bounds(text):
    error, warning = dpkg_syntax(text)
    assert error is None and warning
    assert check(text, "dpkg") == warning


def test_dpkg_warning_versions_still_compare_where_dpkg_compares():
    # dpkg warns about an upstream version that does not start with a digit,
    # and still orders it; t-version.c compares "a" with "b" that way.
    assert compare("0:abc3-0", "0:abd3-0", "dpkg") == -1


UPSTREAM_CASES = [(a, b, int(e)) for a, b, e in UPSTREAM["cases"]]


@pytest.mark.parametrize(("a", "b", "expected"), UPSTREAM_CASES, ids=_ids(UPSTREAM_CASES))
def test_upstream_cases(a, b, expected):
    assert compare(a, b, "upstream") == expected
    assert compare(b, a, "upstream") == -expected


@pytest.mark.parametrize("text", [row[0] if row else "" for row in UPSTREAM["invalid"]])
def test_upstream_invalid(text):
    with pytest.raises(InputError, match="not a dotted upstream version"):
        compare(text, "1.0", "upstream")
    assert not is_valid(text, "upstream")


EL7_CASES = [(a, b, int(e)) for a, b, e in EL7["cases"]]


@pytest.mark.parametrize(("a", "b", "expected"), EL7_CASES, ids=_ids(EL7_CASES))
def test_el7_kernel_boundaries(a, b, expected):
    assert compare(a, b, "rpm") == expected
    assert is_valid(a, "rpm") and is_valid(b, "rpm")


@pytest.mark.parametrize(
    ("text", "scheme"),
    [
        ("3.10.0 1062", "rpm"),
        ("", "rpm"),
        ("3.10.0-1062-4", "rpm"),
        ("5.9 or later", "upstream"),
        ("5.9.x", "upstream"),
        (" 6.1.76-1", "dpkg"),
        ("6.1.76-", "dpkg"),
        (5.9, "upstream"),
        ("1.0", "semver"),
    ],
)
def test_check_refuses_sloppy_policy_bounds(text, scheme):
    assert check(text, scheme)
    assert not is_valid(text, scheme)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "scheme"),
    [
        ("3.10.0-1062.4.1.el7", "rpm"),
        ("1:2.3^git1~rc1-4.fc40", "rpm"),
        ("6.1.76-1", "dpkg"),
        ("1:2.30+dfsg-1~bpo12+1", "dpkg"),
        ("5.9", "upstream"),
        ("1.0.0-rc94", "upstream"),
    ],
)
def test_check_accepts_clean_bounds(text, scheme):
    assert check(text, scheme) is None


def test_bad_arguments_are_input_errors():
    with pytest.raises(InputError, match="unknown version scheme"):
        compare("1", "2", "semver")
    with pytest.raises(InputError, match="must be strings"):
        compare("1", 2, "rpm")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="empty rpm version"):
        compare(" ", "1", "rpm")


# --- against the real tools -------------------------------------------------

DPKG_BIN = shutil.which("dpkg")
RPM_BIN = shutil.which("rpm")
needs_dpkg = pytest.mark.skipif(DPKG_BIN is None, reason="dpkg is not installed")
needs_rpm = pytest.mark.skipif(RPM_BIN is None, reason="rpm is not installed (apt-get install rpm)")


def _dpkg(a: str, op: str, b: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["dpkg", "--compare-versions", "--", a, op, b], capture_output=True, text=True
    )


def _dpkg_order(a: str, b: str) -> int:
    """-1/0/1 from ``dpkg --compare-versions``; raises on a syntax error."""
    lower = _dpkg(a, "lt", b)
    if lower.returncode not in (0, 1):
        raise ValueError(lower.stderr.strip())
    if lower.returncode == 0:
        return -1
    return 0 if _dpkg(a, "eq", b).returncode == 0 else 1


def _rpm_orders(pairs: list[tuple[str, str]]) -> list[int]:
    """``rpm.vercmp`` (rpm's own EVR comparison) for many pairs in one rpm run."""
    calls = " ".join(f'print(rpm.vercmp("{a}", "{b}") .. ";")' for a, b in pairs)
    out = subprocess.run(
        ["rpm", "--eval", "%{lua: " + calls + "}"], capture_output=True, text=True, check=True
    ).stdout
    return [int(x) for x in out.replace("\n", "").split(";") if x.strip()]


@needs_dpkg
def test_dpkg_case_file_matches_the_installed_dpkg():
    for a, b, expected in DPKG_CASES:
        assert _dpkg_order(a, b) == expected, (a, b)
    for text in DPKG_ERRORS:
        if text == "":
            continue  # the dpkg command line reads "" as "no version at all", not as a parse
        run = _dpkg(text, "lt", "1")
        assert run.returncode == 2 and "error" in run.stderr, text
    for text in DPKG_WARNINGS:
        run = _dpkg(text, "lt", "1")
        assert run.returncode in (0, 1) and "warning" in run.stderr, text


@needs_rpm
def test_rpm_case_file_matches_the_installed_rpm():
    assert _rpm_orders([(a, b) for a, b, _ in RPM_CASES]) == [e for _, _, e in RPM_CASES]


# Versions built from the characters that matter to each ordering.
_rpm_part = st.text(alphabet="0123456789abz.~^_+", min_size=1, max_size=8)
rpm_versions = st.builds(
    lambda epoch, version, release: f"{epoch}{version}{release}",
    st.sampled_from(["", "", "1:", "2:"]),
    _rpm_part.filter(lambda v: v[0].isalnum()),
    st.one_of(st.just(""), _rpm_part.map(lambda r: f"-{r}")),
)
_dpkg_upstream = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from("0123456789"),
    st.text(alphabet="0123456789ab.+~", max_size=8),
)
dpkg_versions = st.builds(
    lambda epoch, upstream, revision: f"{epoch}{upstream}{revision}",
    st.sampled_from(["", "", "1:", "2:"]),
    _dpkg_upstream,
    st.one_of(
        st.just(""),
        st.text(alphabet="0123456789ab.+~", min_size=1, max_size=5).map(lambda r: f"-{r}"),
    ),
)


@needs_dpkg
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dpkg_versions, dpkg_versions)
def test_dpkg_order_matches_dpkg_on_random_versions(a, b):
    assert compare(a, b, "dpkg") == _dpkg_order(a, b)


@needs_rpm
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(rpm_versions, rpm_versions), min_size=1, max_size=40))
def test_rpm_order_matches_rpm_on_random_versions(pairs):
    assert [compare(a, b, "rpm") for a, b in pairs] == _rpm_orders(pairs)


@given(rpm_versions, rpm_versions, rpm_versions)
def test_rpm_order_is_a_total_preorder(a, b, c):
    ab, bc, ac = compare(a, b, "rpm"), compare(b, c, "rpm"), compare(a, c, "rpm")
    assert compare(b, a, "rpm") == -ab
    if ab <= 0 and bc <= 0:
        assert ac <= 0
