"""Every dashboard is valid JSON of the expected shape, and every PromQL expression in it (panel targets
and template-variable queries) parses with promtool: they become records of a temporary rules file."""
import glob
import json
import os
import re
import subprocess

import pytest
import yaml

import render

FILES = sorted(glob.glob(os.path.join(render.DASHBOARDS, "*.json")))
# Grafana's own variables, and the dashboards' variables, replaced by a value of the same PromQL kind.
MACROS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
LABEL_VALUES = re.compile(r"^label_values\((?:(?P<expr>.+),\s*)?(?P<label>[A-Za-z_][A-Za-z0-9_]*)\)$")


def load(path):
    with open(path) as fh:
        return json.load(fh)


def substitute(expr):
    for macro, value in MACROS.items():
        expr = expr.replace(macro, value)
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", ".*", expr)


def expressions(dashboard):
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield "panel %r %s" % (panel["title"], target["refId"]), target["expr"]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            match = LABEL_VALUES.match(var["query"]["query"])
            assert match, "variable %s: only label_values(...) queries are used" % var["name"]
            if match.group("expr"):
                yield "variable %s" % var["name"], match.group("expr")


def test_the_dashboards():
    assert [os.path.basename(f) for f in FILES] == ["gpu-fleet.json", "queues.json", "serving.json", "slurm.json",
                                                    "teams.json"]


@pytest.mark.parametrize("path", FILES, ids=os.path.basename)
def test_dashboard_shape(path):
    d = load(path)
    assert d["uid"].startswith("gpufleet-") and len(d["uid"]) <= 40
    assert "gpufleet" in d["tags"] and d["title"]
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    names = [v["name"] for v in d["templating"]["list"]]
    assert "datasource" in names
    for panel in d["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        g = panel["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, panel["title"]
        for target in panel["targets"]:
            for var in re.findall(r"\$\{?([A-Za-z_]+)", target["expr"]):
                assert var.startswith("__") or var in names, "%s uses undefined $%s" % (panel["title"], var)


def test_dashboard_uids_unique():
    uids = [load(f)["uid"] for f in FILES]
    assert len(uids) == len(set(uids))


def test_dashboard_content():
    fleet, queues, serving, slurm, teams = (json.dumps(load(f)) for f in FILES)
    for metric in ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE",
                   "DCGM_FI_DEV_XID_ERRORS", "GPU_I_ID", "GPU_I_PROFILE"):
        assert metric in fleet
    for metric in ("kube_pod_container_resource_requests", "kueue_pending_workloads", "kueue_admitted_active_workloads",
                   "kueue_cluster_queue_resource_usage", "kueue_cluster_queue_nominal_quota"):
        assert metric in teams
    for metric in ("vllm:request_success_total", "vllm:e2e_request_latency_seconds_bucket",
                   "vllm:generation_tokens_total", "vllm:kv_cache_usage_perc"):
        assert metric in serving
    for metric in ("kueue_pending_workloads", "kueue_admitted_workloads_total", "kueue_admission_wait_time_seconds_bucket",
                   "volcano_queue_pod_group_pending_count", "volcano_queue_allocated_scalar_resources"):
        assert metric in queues
    for metric in ("slurm_jobs_pending", "slurm_partition_jobs_pending", "slurm_node_gpus_alloc", "slurm_nodes_down",
                   "slurm_schedule_cycle_last"):
        assert metric in slurm


def test_every_promql_expression_parses(promtool, tmp_path):
    rules, where = [], {}
    for path in FILES:
        for i, (what, expr) in enumerate(expressions(load(path))):
            record = "gpufleet_dashboard:%s:%d" % (re.sub(r"[^a-z]", "_", os.path.basename(path)[:-5]), i)
            rules.append({"record": record, "expr": substitute(expr)})
            where[record] = "%s %s" % (os.path.basename(path), what)
    assert len(rules) > 30
    path = tmp_path / "dashboard-exprs.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    out = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, "%s\n%s" % (out.stdout + out.stderr, where)
    assert "SUCCESS: %d rules found" % len(rules) in out.stdout


def test_a_broken_expression_is_caught(promtool, tmp_path):
    """The parse check is real: a malformed expression fails it."""
    path = tmp_path / "bad.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [
        {"record": "x:y", "expr": substitute('sum by (Hostname (DCGM_FI_DEV_GPU_UTIL{Hostname=~"$node"})')}]}]}))
    out = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert out.returncode != 0


def test_every_dashboard_is_provisioned_as_a_labelled_configmap():
    """Each files/dashboards/*.json becomes a ConfigMap the Grafana sidecar loads (label grafana_dashboard: "1")."""
    maps = [o for o in render.render_objects() if o["kind"] == "ConfigMap"]
    assert sorted(m["metadata"]["name"] for m in maps) == sorted(
        "gpufleet-dashboard-" + os.path.basename(f)[:-5] for f in FILES)
    for m in maps:
        assert m["metadata"]["labels"]["grafana_dashboard"] == "1"
        (key,) = m["data"]
        name = m["metadata"]["name"][len("gpufleet-dashboard-"):]
        assert key == "gpufleet-%s.json" % name
        assert json.loads(m["data"][key]) == load(os.path.join(render.DASHBOARDS, name + ".json"))


def test_volcano_is_scraped_when_enabled():
    plan = render.plan()
    assert not plan["services"]["volcano"]["enabled"]
    assert not [o for o in render.render_objects(plan) if o["kind"] == "ServiceMonitor"]
    plan["services"]["volcano"]["enabled"] = True
    (monitor,) = [o for o in render.render_objects(plan) if o["kind"] == "ServiceMonitor"]
    assert monitor["metadata"]["name"] == "gpufleet-volcano"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["volcano-system"]}
    assert monitor["spec"]["selector"]["matchExpressions"] == [
        {"key": "app", "operator": "In", "values": ["volcano-scheduler", "volcano-controller"]}]
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics"}]
    assert not [o for o in render.render_objects(plan, {"monitoring_scrape_volcano": False})
                if o["kind"] == "ServiceMonitor"]
