"""Property test: any mutation of config.example.yml is either valid or a clean validation error.

Mutations: wrong types, deleted (possibly required) keys, unknown keys, out-of-range numbers,
anywhere in the tree. A traceback (any exception other than ConfigValidationError) fails.
"""
import copy
import os

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.gpufleet.platform.plugins.module_utils import config_issues, config_plan

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
with open(os.path.join(ROOT, "config.example.yml")) as _handle:
    EXAMPLE = yaml.safe_load(_handle)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, prefix + (index,))


PATHS = [p for p in _paths(EXAMPLE) if p]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10**12, max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["", "auto", "all-1g.10gb", "7g.80gb", "10.0.0.0/8", "::1", "1.35.4", "nvidia.com/gpu"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=6)
out_of_range = st.sampled_from([-1, 0, 17, 65, 10**9, -10**9, 2.5])


@st.composite
def mutation(draw):
    path = draw(st.sampled_from(PATHS))
    kind = draw(st.sampled_from(["replace", "delete", "unknown_key", "number"]))
    return kind, path, draw(values), draw(out_of_range), draw(st.text(min_size=1, max_size=10))


def _apply(config, kind, path, value, number, key):
    parent = config
    for part in path[:-1]:
        if isinstance(parent, dict) and part in parent or isinstance(parent, list) and \
                isinstance(part, int) and part < len(parent):
            parent = parent[part]
        else:
            return
    last = path[-1]
    if not isinstance(parent, (dict, list)):
        return
    if isinstance(parent, dict) and last not in parent or isinstance(parent, list) and \
            not (isinstance(last, int) and last < len(parent)):
        return
    if kind == "replace":
        parent[last] = value
    elif kind == "delete":
        del parent[last]
    elif kind == "number":
        parent[last] = number
    elif isinstance(parent[last], dict):
        parent[last][key] = value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutation(), min_size=1, max_size=3))
def test_mutated_config_is_valid_or_cleanly_rejected(mutations):
    config = copy.deepcopy(EXAMPLE)
    for kind, path, value, number, key in mutations:
        _apply(config, kind, path, value, number, key)
    try:
        plan = config_plan.validate(config)
    except config_issues.ConfigValidationError as error:
        assert error.issues
        for issue in error.issues:
            assert isinstance(issue.path, str)
            assert issue.message
            str(issue)
    else:
        assert isinstance(plan["pools"], dict)


@settings(max_examples=100, deadline=None)
@given(values)
def test_arbitrary_document_never_crashes(document):
    try:
        config_plan.validate(document)
    except config_issues.ConfigValidationError as error:
        assert error.issues


def test_a_disabled_kserve_with_a_model_lacking_its_source_still_plans():
    """Found by the fuzz test above: services.kserve off, a model with neither storage_uri nor registry (the
    rules that require one only run when KServe is on) -- the plan is built, the model has no scheme."""
    config = copy.deepcopy(EXAMPLE)
    config["services"]["kserve"]["enabled"] = False
    for model in config["services"]["kserve"]["models"]:
        model.pop("storage_uri", None)
        model.pop("registry", None)
    plan = config_plan.validate(config)
    assert {m["scheme"] for m in plan["services"]["kserve"]["models"]} == {None}
