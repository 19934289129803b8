"""monitoring role against the lab: kube-prometheus-stack (STAND-IN chart: inert operator Deployment, the
real prometheus-operator CRDs), the collection's PrometheusRule, dashboard ConfigMaps and vLLM PodMonitor
validated by the real API server; the Grafana admin Secret generated once and kept.

What the lab cannot show: no Prometheus, Grafana or Alertmanager runs (the stand-in chart installs only an
inert operator Deployment), so rules are not evaluated here (tests/unit/monitoring runs them with promtool)
and dashboards are not loaded by a Grafana sidecar; the GPU Operator stand-in creates no DCGM ServiceMonitor.
"""
import base64
import subprocess
import uuid

import pytest
import yaml
from kubernetes.client.rest import ApiException

from gpufleet_lab import settings
from playbook import LAB_CONFIG, ansible_playbook, lab_bin

PLAYBOOK = "playbooks/monitoring.yml"
RECEIVERS = {"vault_am_receivers": {"receivers": [
    {"name": "gpu-oncall", "webhook_configs": [{"url": "http://127.0.0.1:9/never-called"}]}]}}


def write_config(tmp_path, namespace, **secrets):
    with open(LAB_CONFIG) as fh:
        config = yaml.safe_load(fh)
    config["services"]["monitoring"] = {"enabled": True, "namespace": namespace, "retention": "7d",
                                        "alerts": {"gpu_temperature_celsius": 83}}
    config["services"]["kserve"] = {"enabled": True}
    config["secrets"].update(secrets)
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def secret(lab, namespace, name):
    try:
        return lab.core.read_namespaced_secret(name, namespace).data
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


@pytest.fixture
def monitoring_ns(lab):
    name = "lab-mon-" + uuid.uuid4().hex[:6]
    yield name
    helm = lab_bin() + "/helm"
    subprocess.run([helm, "uninstall", "kube-prometheus-stack", "-n", name, "--kubeconfig", settings.KUBECONFIG],
                   capture_output=True, check=False, timeout=120)
    try:
        lab.core.delete_namespace(name, grace_period_seconds=0)
    except ApiException:
        pass


def test_monitoring_converges_idempotent_and_check_clean(lab, tmp_path, monitoring_ns):
    config = write_config(tmp_path, monitoring_ns, alertmanager_receivers={"var": "vault_am_receivers"})
    varsfile = tmp_path / "vault.yml"
    varsfile.write_text(yaml.safe_dump(RECEIVERS))
    extra = ("-e", "@%s" % varsfile)

    first = ansible_playbook(PLAYBOOK, *extra, config=config)
    assert first.rc == 0, first
    assert first.changed > 0, first
    grafana = secret(lab, monitoring_ns, "gpufleet-grafana-admin")
    assert grafana is not None
    password = base64.b64decode(grafana["admin-password"]).decode()
    assert len(password) == 32 and password.isalnum()
    assert base64.b64decode(grafana["admin-user"]).decode() == "gpufleet-admin"
    assert password not in first.stdout + first.stderr

    second = ansible_playbook(PLAYBOOK, *extra, config=config)
    assert second.rc == 0, second
    assert second.changed == 0, second.changed_tasks()

    check = ansible_playbook(PLAYBOOK, *extra, config=config, check=True, diff=True)
    assert check.rc == 0, check
    assert check.changed == 0, check.changed_tasks()
    assert password not in second.stdout + check.stdout

    # The Grafana admin password is generated once and never regenerated.
    assert secret(lab, monitoring_ns, "gpufleet-grafana-admin") == grafana

    # The API server accepted the objects against the real prometheus-operator CRDs.
    rule = lab.custom.get_namespaced_custom_object("monitoring.coreos.com", "v1", monitoring_ns, "prometheusrules",
                                                   "gpufleet-gpu-alerts")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert alerts["GPUTemperatureHigh"]["expr"] == "DCGM_FI_DEV_GPU_TEMP > 83"
    assert alerts["GPUTemperatureHigh"]["annotations"]["summary"].startswith("GPU {{ $labels.gpu }}")
    assert len(alerts) == 13
    assert all(r["annotations"]["runbook_url"] == "docs/operations/runbooks.md#" + name.lower()
               for name, r in alerts.items())
    usage = lab.custom.get_namespaced_custom_object("monitoring.coreos.com", "v1", monitoring_ns, "prometheusrules",
                                                    "gpufleet-gpu-usage")
    records = [r["record"] for g in usage["spec"]["groups"] for r in g["rules"]]
    assert len(records) == 10 and "namespace_resource:gpufleet_gpu_hours_requested:sum_1h" in records
    pm = lab.custom.get_namespaced_custom_object("monitoring.coreos.com", "v1", monitoring_ns, "podmonitors",
                                                 "gpufleet-vllm")
    assert pm["spec"]["podMetricsEndpoints"][0]["portNumber"] == 8080
    cms = lab.core.list_namespaced_config_map(monitoring_ns, label_selector="grafana_dashboard=1").items
    assert sorted(c.metadata.name for c in cms) == ["gpufleet-dashboard-gpu-fleet", "gpufleet-dashboard-queues",
                                                    "gpufleet-dashboard-serving", "gpufleet-dashboard-slurm",
                                                    "gpufleet-dashboard-teams"]
    for cm in cms:
        (body,) = cm.data.values()
        assert yaml.safe_load(body)["uid"].startswith("gpufleet-")
        assert cm.metadata.labels["app.kubernetes.io/managed-by"] == "gpufleet"
    am = yaml.safe_load(base64.b64decode(secret(lab, monitoring_ns, "gpufleet-alertmanager-config")["alertmanager.yaml"]))
    assert am["route"]["receiver"] == "gpu-oncall"
    assert [r["name"] for r in am["receivers"]] == ["null", "gpu-oncall"]
    deploy = lab.apps.read_namespaced_deployment("kube-prometheus-stack-operator", monitoring_ns)
    assert deploy.status.available_replicas == 1


def test_known_default_grafana_password_fails_before_any_change(lab, tmp_path):
    namespace = "lab-mon-bad-" + uuid.uuid4().hex[:6]
    config = write_config(tmp_path, namespace, grafana_admin_password={"var": "vault_grafana_admin"})
    result = ansible_playbook(PLAYBOOK, "-e", "vault_grafana_admin=prom-operator", config=config)
    assert result.rc != 0
    assert "secrets.grafana_admin_password.var" in result.stdout
    assert "well-known default password" in result.stdout
    with pytest.raises(ApiException) as exc:
        lab.core.read_namespace(namespace)
    assert exc.value.status == 404


def test_generated_receivers_are_refused(lab, tmp_path):
    namespace = "lab-mon-bad-" + uuid.uuid4().hex[:6]
    config = write_config(tmp_path, namespace, alertmanager_receivers={"generate": True})
    result = ansible_playbook(PLAYBOOK, config=config)
    assert result.rc != 0
    assert "secrets.alertmanager_receivers" in result.stdout
    with pytest.raises(ApiException) as exc:
        lab.core.read_namespace(namespace)
    assert exc.value.status == 404
