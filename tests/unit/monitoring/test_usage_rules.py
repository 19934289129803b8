"""The GPU allocation and GPU-hours recording rules (per team namespace and per pool), rendered from the role's
template, checked and unit-tested with promtool (tests/promtool/gpu-usage.test.yml: every recorded series)."""
import os
import shutil
import subprocess

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
    tmp = tmp_path_factory.mktemp("usage")
    (tmp / "gpu-usage.rules.yml").write_text(render.render_usage_rules())
    shutil.copy(TEST_FILE, tmp / "gpu-usage.test.yml")
    return tmp


def run(*args, cwd=None):
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, check=False, timeout=120)


def rules():
    return [r for g in yaml.safe_load(render.render_usage_rules())["groups"] for r in g["rules"]]


def test_the_recording_rules():
    assert [r["record"] for r in rules()] == RECORDS
    assert not [r for r in rules() if "alert" in r]


def test_promtool_check_rules(promtool, rendered):
    out = run(promtool, "check", "rules", str(rendered / "gpu-usage.rules.yml"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: %d rules found" % len(RECORDS) in out.stdout


def test_promtool_test_rules(promtool, rendered):
    out = run(promtool, "test", "rules", "gpu-usage.test.yml", cwd=str(rendered))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


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
    (tmp_path / "gpu-usage.rules.yml").write_text(text)
    shutil.copy(TEST_FILE, tmp_path / "gpu-usage.test.yml")
    out = run(promtool, "test", "rules", "gpu-usage.test.yml", cwd=str(tmp_path))
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
