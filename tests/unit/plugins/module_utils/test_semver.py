"""module_utils/semver.py: strict Semantic Versioning 2.0.0 parsing and precedence (semver.org section 11)."""
import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.gpufleet.platform.plugins.module_utils import semver
from ansible_collections.gpufleet.platform.plugins.module_utils.semver import SemverError, Version, parse

# semver.org 11.4's example, in increasing precedence
SPEC_ORDER = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
              "1.0.0-rc.1", "1.0.0", "2.0.0", "2.1.0", "2.1.1"]


@pytest.mark.parametrize("text, core, pre, build", [
    ("1.35.4", (1, 35, 4), (), ()),
    ("v1.35.4", (1, 35, 4), (), ()),
    ("V0.20.0", (0, 20, 0), (), ()),
    (" 1.30.0 ", (1, 30, 0), (), ()),
    ("v0.20.0-rc.1", (0, 20, 0), ("rc", "1"), ()),
    ("1.2.3-beta.2+build.7", (1, 2, 3), ("beta", "2"), ("build", "7")),
    ("1.0.0+20130313144700", (1, 0, 0), (), ("20130313144700",)),
    ("1.0.0-0.3.7", (1, 0, 0), ("0", "3", "7"), ()),
    ("1.0.0-x-y-z.--", (1, 0, 0), ("x-y-z", "--"), ()),
    ("1.0.0+001", (1, 0, 0), (), ("001",)),  # leading zeros are fine in build metadata
    ("4.6.0-4.8.3-distroless", (4, 6, 0), ("4", "8", "3-distroless"), ()),  # the DCGM exporter's tag
])
def test_parse(text, core, pre, build):
    v = parse(text)
    assert (v.core, v.prerelease, v.build) == (core, pre, build)
    assert v.is_prerelease is bool(pre)


@pytest.mark.parametrize("text", [
    "1.35", "1", "", "v", "1.35.4.1", "01.2.3", "1.02.3", "1.2.03", "1.2.3-01", "1.2.3-", "1.2.3+", "1.2.3-a..b",
    "1.2.3+a..b", "vv1.2.3", "1.2.3 -rc1", "1.2.3_rc1", "-1.2.3", "1.2.3-ä", "535.154.05", "R535",
])
def test_refuses_what_is_not_semver(text):
    with pytest.raises(SemverError) as err:
        parse(text)
    assert repr(text) in str(err.value)
    assert not semver.is_valid(text)


@pytest.mark.parametrize("value", [None, 1, 1.35, True, ["1.2.3"]])
def test_refuses_non_strings(value):
    with pytest.raises(SemverError, match="is not a version string"):
        parse(value)


def test_v_prefix_can_be_refused():
    with pytest.raises(SemverError):
        parse("v1.2.3", allow_v=False)
    assert parse("1.2.3", allow_v=False) == parse("v1.2.3")


def test_spec_precedence_example():
    versions = [parse(t) for t in SPEC_ORDER]
    for lower, higher in zip(versions, versions[1:]):
        assert lower < higher and higher > lower and lower != higher, (lower, higher)
    shuffled = list(SPEC_ORDER)
    random.Random(7).shuffle(shuffled)
    assert semver.sort(shuffled) == SPEC_ORDER
    assert semver.sort(shuffled, reverse=True) == SPEC_ORDER[::-1]


def test_every_pair_of_the_example_compares_by_position():
    for (i, a), (j, b) in itertools.product(enumerate(SPEC_ORDER), repeat=2):
        assert semver.compare(a, b) == (i > j) - (i < j), (a, b)


def test_build_metadata_does_not_change_precedence():
    assert parse("1.0.0+a") == parse("1.0.0+b") == parse("v1.0.0")
    assert hash(parse("1.0.0+a")) == hash(parse("1.0.0"))
    assert semver.compare("1.0.0-rc.1+x", "1.0.0-rc.1") == 0


def test_numbers_compare_numerically_not_as_text():
    assert parse("1.10.0") > parse("1.9.0")
    assert parse("1.0.0-rc.10") > parse("1.0.0-rc.9")
    assert parse("1.0.0-2") < parse("1.0.0-10")
    assert parse("1.0.0-999") < parse("1.0.0-a")  # numeric identifiers before alphanumeric ones


def test_str_is_canonical_and_round_trips():
    assert str(parse("v1.2.3-rc.1+b.5")) == "1.2.3-rc.1+b.5"
    assert repr(parse("v1.2.3")) == "Version('1.2.3')"
    assert parse(parse("1.2.3")) == parse("1.2.3")


def test_release_lines():
    assert parse("1.35.4").minor_line == (1, 35) and parse("v1.35.0-rc.0").minor_line == (1, 35)


def test_comparison_with_other_types():
    assert parse("1.2.3") != "1.2.3"
    with pytest.raises(TypeError):
        parse("1.2.3") < "1.2.4"  # noqa: B015


def test_what_the_kubernetes_version_rule_needs():
    """config_rules: Kubespray v2.31.0 supports Kubernetes 1.30.0 up to 1.35.x (cluster.kubernetes_version)."""
    minimum, pinned = parse("1.30.0"), parse("1.35.4")
    assert parse("1.29.15") < minimum <= parse("1.30.0") < parse("1.30.1")
    assert parse("1.35.99").minor_line <= pinned.minor_line < parse("1.36.0").minor_line
    # the old tuple-of-ints parser's order, for every version the schema accepts (1.N.N)
    for a, b in itertools.product(["1.29.9", "1.30.0", "1.30.10", "1.35.4", "1.36.0", "1.100.0"], repeat=2):
        old = tuple(int(p) for p in a.split(".")), tuple(int(p) for p in b.split("."))
        assert (parse(a) < parse(b)) == (old[0] < old[1]), (a, b)


ident = st.one_of(st.integers(min_value=0, max_value=10 ** 6).map(str),
                  st.from_regex(r"\A[0-9]*[A-Za-z-][0-9A-Za-z-]{0,5}\Z"))
versions = st.builds(
    lambda core, pre, build: "%d.%d.%d" % core + ("-" + ".".join(pre) if pre else "") + ("+" + ".".join(build) if build else ""),
    st.tuples(*[st.integers(min_value=0, max_value=10 ** 6)] * 3),
    st.lists(ident, max_size=4),
    st.lists(st.from_regex(r"\A[0-9A-Za-z-]{1,6}\Z"), max_size=2))


@given(versions)
def test_round_trip(text):
    v = parse(text)
    assert str(v) == text and parse("v" + text) == v


@given(versions, versions, versions)
def test_total_order(a, b, c):
    a, b, c = parse(a), parse(b), parse(c)
    assert sum((a < b, a == b, a > b)) == 1
    if a <= b <= c:
        assert a <= c
    if a == b:
        assert hash(a) == hash(b)


@given(versions)
def test_a_release_is_above_its_prereleases(text):
    v = parse(text)
    release = Version(*v.core)
    assert (v < release) is v.is_prerelease
    assert v >= Version(*v.core, prerelease=("0",)) or not v.is_prerelease
