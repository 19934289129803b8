"""The GPU allocation and GPU-hours recording rules (per team namespace and per pool), rendered from the role's
template, checked and unit-tested with promtool (tests/promtool/gpu-usage.test.yml: every recorded series)."""
import os

import pytest
import yaml

import render

TEST_FILE = os.path.join(render.ROOT, "tests", "promtool", "gpu-usage.test.yml")
RECORDS = [
    "namespace_pool_resource:gpufleet_gpus_requested:sum",
    "namespace_resource:gpufleet_gpus_requested:sum",
    "pool_resource:gpufleet_gpus_requested:sum",
    "namespace_pool_profile:gpufleet_gpus_in_use:count",
    "namespace_profile:gpufleet_gpus_in_use:count",
    "pool_profile:gpufleet_gpus_in_use:count",
    "namespace_resource:gpufleet_gpu_hours_requested:sum_1h",
    "pool_resource:gpufleet_gpu_hours_requested:sum_1h",
    "namespace_profile:gpufleet_gpu_hours_in_use:sum_1h",
    "pool_profile:gpufleet_gpu_hours_in_use:sum_1h",
]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    return render.promtool_dir(tmp_path_factory.mktemp("usage"), "gpu-usage", render.render_usage_rules())


def rules():
    return [r for g in yaml.safe_load(render.render_usage_rules())["groups"] for r in g["rules"]]


def test_the_recording_rules():
    assert [r["record"] for r in rules()] == RECORDS
    assert not [r for r in rules() if "alert" in r]


def test_promtool_check_and_test_rules(promtool, rendered):
    render.check_rules(promtool, rendered, "gpu-usage", len(RECORDS))
    out = render.unit_test_rules(promtool, rendered, "gpu-usage")
    assert out.returncode == 0 and "SUCCESS" in out.stdout, out.stdout + out.stderr


def test_every_recording_rule_has_a_promtool_test():
    with open(TEST_FILE) as fh:
        tests = yaml.safe_load(fh)["tests"]
    exprs = [t["expr"] for case in tests for t in case.get("promql_expr_test", [])]
    for record in RECORDS:
        assert any(e == record or e.startswith(record + "{") for e in exprs), "no promql_expr_test for %s" % record


def test_a_wrong_rule_fails_the_promtool_tests(promtool, tmp_path):
    """The tests are real: counting finished pods (any phase instead of Running) breaks them."""
    text = render.render_usage_rules().replace('kube_pod_status_phase{phase="Running"}', 'kube_pod_status_phase')
    assert text != render.render_usage_rules()
    out = render.unit_test_rules(promtool, render.promtool_dir(tmp_path, "gpu-usage", text), "gpu-usage")
    assert out.returncode != 0


def test_pools_come_from_the_pool_node_label():
    from ansible_collections.gpufleet.platform.plugins.module_utils import tenancy
    role_vars = render.role_vars(render.plan())
    assert role_vars["_monitoring_pool_label"] == tenancy.POOL_LABEL
    for rule in rules()[:4:3]:
        assert "label_gpufleet_io_pool" in rule["expr"], rule["record"]


def test_the_rules_are_applied_as_a_prometheusrule():
    with open(os.path.join(render.ROLE, "templates", "objects.yml.j2")) as fh:
        text = fh.read()
    assert "name: gpufleet-gpu-usage" in text and "'gpu-usage.rules.yml.j2'" in text
