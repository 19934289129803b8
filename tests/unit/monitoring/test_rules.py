"""The GPU alert rules, rendered once from the role's template with config.example.yml's thresholds,
checked and unit-tested with promtool (built from its Go module, tests/promtool/promtool.mk)."""
import os

import pytest
import yaml

import render

TEST_FILE = os.path.join(render.ROOT, "tests", "promtool", "gpu-alerts.test.yml")
ALERTS = {
    "GPUTemperatureHigh", "GPUFramebufferFull", "GPUXidErrorCritical", "GPUXidError", "GPURowRemapFailure",
    "GPUUncorrectableMemoryError", "GPUThermalThrottling", "GPUPowerThrottling", "GPUUnderutilised",
    "DCGMExporterDown", "DCGMExporterMissing", "KueueWorkloadsPendingTooLong", "KueueWorkloadsInadmissible",
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """The rendering under test: rules file + a copy of the promtool test file beside it."""
    return render.promtool_dir(tmp_path_factory.mktemp("rules"), "gpu-alerts", render.render_rules())


run = render.run


def alerts_in(text):
    return [r["alert"] for g in yaml.safe_load(text)["groups"] for r in g["rules"] if "alert" in r]


def test_promtool_is_the_pinned_version(promtool):
    out = run(promtool, "--version")
    assert "version %s " % render.PROMTOOL_VERSION in out.stdout + out.stderr


def test_promtool_check_rules(promtool, rendered):
    render.check_rules(promtool, rendered, "gpu-alerts", len(ALERTS))


def test_promtool_test_rules(promtool, rendered):
    out = render.unit_test_rules(promtool, rendered, "gpu-alerts")
    assert out.returncode == 0 and "SUCCESS" in out.stdout, out.stdout + out.stderr


def test_every_alert_has_firing_and_silent_cases():
    with open(TEST_FILE) as fh:
        tests = yaml.safe_load(fh)["tests"]
    fired, silent = set(), set()
    for case in tests:
        for t in case["alert_rule_test"]:
            (fired if t["exp_alerts"] else silent).add(t["alertname"])
            for alert in t["exp_alerts"]:
                assert alert["exp_labels"]["severity"] in ("critical", "warning", "info")
    assert set(alerts_in(render.render_rules())) == ALERTS
    assert fired == ALERTS
    assert silent >= ALERTS - {"GPUPowerThrottling"}  # its silent case is the same series set as thermal's


def test_severities():
    rules = {r["alert"]: r for g in yaml.safe_load(render.render_rules())["groups"] for r in g["rules"]}
    assert rules["GPUFramebufferFull"]["labels"]["severity"] == "critical"
    assert rules["GPUUnderutilised"]["labels"]["severity"] == "info"
    assert rules["GPUTemperatureHigh"]["for"] == "5m"
    assert rules["GPUUnderutilised"]["for"] == "30m"


def test_thresholds_come_from_config():
    plan = render.plan(overrides={"gpu_temperature_celsius": 78, "framebuffer_used_percent": 90,
                                  "low_utilisation_percent": 10, "kueue_pending_minutes": 15})
    rules = {r["alert"]: r for g in yaml.safe_load(render.render_rules(plan))["groups"] for r in g["rules"]}
    assert rules["GPUTemperatureHigh"]["expr"].endswith("> 78")
    assert rules["GPUFramebufferFull"]["expr"].endswith("> 90")
    assert rules["GPUUnderutilised"]["expr"].endswith("< 10")
    assert rules["KueueWorkloadsPendingTooLong"]["for"] == "15m"
    assert "[15m]" in rules["KueueWorkloadsPendingTooLong"]["expr"]


def test_custom_thresholds_still_pass_promtool_check(promtool, tmp_path):
    plan = render.plan(overrides={"gpu_temperature_celsius": 40, "kueue_pending_minutes": 10080})
    path = tmp_path / "rules.yml"
    path.write_text(render.render_rules(plan))
    out = run(promtool, "check", "rules", str(path))
    assert out.returncode == 0, out.stdout + out.stderr


def test_role_alert_defaults_equal_the_schema_defaults():
    from ansible_collections.gpufleet.platform.plugins.module_utils import config_schema
    schema = config_schema.SCHEMA["properties"]["services"]["properties"]["monitoring"]
    props = schema["properties"]["alerts"]["properties"]
    with open(os.path.join(render.ROLE, "vars", "main.yml")) as fh:
        role = yaml.safe_load(fh)["_monitoring_alert_defaults"]
    assert role == {k: v["default"] for k, v in props.items()}
