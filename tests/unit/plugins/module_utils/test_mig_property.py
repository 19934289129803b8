"""Property tests: the planner accepts a multiset of MIG profiles iff an independent brute force places it.

The brute force below shares only the *data* with the code under test (each profile's allowed start
slots, width, compute slices, max count and media-engine flag from the catalog).  It does not use the
planner's search, its ordering heuristics, bit masks or enumeration: for every profile it tries every
combination of distinct start slots for its instances (itertools.combinations) and the cartesian
product across profiles, and checks overlap with plain slot sets.
"""
import collections
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.gpufleet.platform.plugins.module_utils import gpu_catalog, mig
from ansible_collections.gpufleet.platform.plugins.module_utils.mig import MigLayoutError, plan_layout

MIG_MODELS = [gpu_catalog.lookup(k) for k in gpu_catalog.mig_capable_keys()]
A100_40_BASE = ["1g.5gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb"]


def brute_force_placements(model, counts):
    """Every placement (frozenset of (name, start)) of exactly these instances, by exhaustive search."""
    table = {p.name: p for p in model.profiles}
    if any(n not in table for n in counts):
        return []
    if any(c > table[n].max_count for n, c in counts.items()):
        return []
    if sum(c for n, c in counts.items() if table[n].media in ("+me", "+me.all")) > 1:
        return []
    if sum(table[n].compute_slices * c for n, c in counts.items()) > model.compute_slice_count:
        return []
    per_profile = []
    for name, count in counts.items():
        p = table[name]
        starts = [s for s in p.starts if s + p.memory_slices <= model.memory_slice_count]
        per_profile.append([[(name, s) for s in combo] for combo in itertools.combinations(starts, count)])
    found = []
    for choice in itertools.product(*per_profile):
        used = set()
        ok = True
        for group in choice:
            for name, start in group:
                slots = set(range(start, start + table[name].memory_slices))
                if used & slots:
                    ok = False
                    break
                used |= slots
            if not ok:
                break
        if ok:
            found.append(frozenset(x for group in choice for x in group))
    return found


def planner_accepts(model, counts):
    try:
        plan = plan_layout(model, counts or "all-enabled")
    except MigLayoutError:
        return False, None
    return True, plan["placements"][0]


@st.composite
def model_and_counts(draw):
    model = draw(st.sampled_from(MIG_MODELS))
    counts = {}
    for p in model.profiles:
        c = draw(st.integers(min_value=0, max_value=p.max_count + 1))
        if c:
            counts[p.name] = c
    return model, counts


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model_and_counts())
def test_planner_agrees_with_brute_force(mc):
    model, counts = mc
    accepted, placement = planner_accepts(model, counts)
    brute = brute_force_placements(model, counts)
    assert accepted == bool(brute), (model.key, counts)
    if accepted:
        got = frozenset((s.split("@")[0], int(s.split("@")[1])) for s in placement)
        assert got in brute  # the planner's placement is one the brute force also found


@settings(max_examples=150, deadline=None)
@given(model_and_counts(), st.sampled_from([None, "460.106.00", "470.57.02", "510.47.03", "525.60.13"]))
def test_driver_gates_only_ever_reject(mc, driver):
    model, counts = mc
    try:
        plan_layout(model, counts or "all-enabled", driver_version=driver)
        gated_ok = True
    except MigLayoutError:
        gated_ok = False
    if gated_ok:
        assert planner_accepts(model, counts)[0]
    assert gated_ok == mig.fits(model, counts, driver)


@pytest.mark.parametrize("model", MIG_MODELS, ids=lambda m: m.key)
def test_placeable_multisets_equal_brute_force(model):
    """Exhaustive (not sampled) over the profile subsets without media variants, per model."""
    plain = [p for p in model.profiles if not p.media]
    expected = set()
    for combo in itertools.product(*[range(p.max_count + 1) for p in plain]):
        counts = dict((p.name, c) for p, c in zip(plain, combo, strict=True) if c)
        if counts and brute_force_placements(model, counts):
            expected.add(tuple(sorted(counts.items())))
    got = set(m for m in mig.placeable_multisets(model) if all(not model.profile(n).media for n, _c in m))
    assert got == expected


def _maximal(sets):
    return [s for s in sets if not any(s < o for o in sets)]


def test_a100_40gb_brute_force_19_placements_12_multisets():
    model = gpu_catalog.lookup("a100-sxm4-40gb")
    placements = set()
    multisets = set()
    for combo in itertools.product(*[range(model.profile(n).max_count + 1) for n in A100_40_BASE]):
        counts = dict((n, c) for n, c in zip(A100_40_BASE, combo, strict=True) if c)
        found = brute_force_placements(model, counts) if counts else []
        placements.update(found)
        if found:
            multisets.add(frozenset(collections.Counter(counts).items()))
    maximal_placements = _maximal(placements)
    assert len(maximal_placements) == 19

    def contains(big, small):
        b, s = dict(big), dict(small)
        return big != small and all(b.get(n, 0) >= c for n, c in s.items())

    maximal_multisets = [m for m in multisets if not any(contains(o, m) for o in multisets)]
    assert len(maximal_multisets) == 12
    assert len(multisets) == 37
    # the planner's own enumeration agrees
    assert sorted(sorted(p) for p in maximal_placements) == sorted(sorted(p) for p in mig.maximal_placements(model, A100_40_BASE))
    assert sorted(tuple(sorted(m)) for m in maximal_multisets) == mig.maximal_multisets(model, A100_40_BASE)
