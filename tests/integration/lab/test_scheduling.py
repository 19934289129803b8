"""The scheduling layer (roles kueue and volcano) against the lab's real API server and upstream CRDs.

The kueue chart is the real upstream chart and the real Kueue v0.19.2 controller plays its pod
(lab/gpufleet_lab/pod_host.py): its webhooks default and validate every object the role applies, and
its controller makes the ClusterQueues Active. Volcano follows the same path once its controllers are
built (lab/gpufleet_lab/controllers.py); until then its chart is the lab's STAND-IN.
"""
import json
import os
import re
import subprocess
import time
import uuid

import pytest
import yaml
from kubernetes import client

from playbook import LAB_CONFIG, ROOT, ansible_playbook, lab_bin

# from the checkout, not beside LAB_CONFIG (a second lab's config is a copy elsewhere)
SHARED = os.environ.get("GPUFLEET_SHARED", os.path.join(ROOT, "..", "shared"))
KUEUE = ("kueue.x-k8s.io", "v1beta2")
VOLCANO = ("scheduling.volcano.sh", "v1beta1")
SKIP_INSTALL = ("--skip-tags", "kueue_install,volcano_install")


def _write(tmp_path, config, name="config.yml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def sched(lab, tmp_path_factory):
    """A lab config with 3 teams across the A100, H100-MIG and L40S-time-sliced pools, Kueue and Volcano on."""
    suffix = uuid.uuid4().hex[:4]
    with open(LAB_CONFIG) as handle:
        config = yaml.safe_load(handle)
    cluster = "sched-%s" % suffix
    config["cluster"]["name"] = cluster
    research, inference, interns = ("s%s-research" % suffix, "s%s-inference" % suffix, "s%s-interns" % suffix)
    config["scheduling"] = {"cohort": cluster, "preemption": "LowerPriority", "queueing_strategy": "StrictFIFO"}
    config["teams"] = [
        {"name": research, "priority": 1000, "cpu": "128", "memory": "1Ti", "volcano": {"weight": 4},
         "quotas": {"a100": {"nvidia.com/gpu": {"nominal": 12, "borrowing_limit": 4, "lending_limit": 4}},
                    "h100": {"nvidia.com/mig-1g.10gb": 64}}},
        {"name": inference, "namespace": "s%s-serving" % suffix, "priority": 2000,
         "volcano": {"weight": 2},
         "quotas": {"l40s": {"nvidia.com/gpu": 24}, "h100": {"nvidia.com/mig-1g.10gb": {"nominal": 32,
                                                                                       "lending_limit": 16}}}},
        # a child queue its parent covers (Volcano's webhook refuses one it does not)
        {"name": interns, "priority": 10, "delete_namespace_on_removal": True, "volcano": {"parent": research},
         "quotas": {"a100": {"nvidia.com/gpu": 4}, "l40s": {"nvidia.com/gpu": 8},
                    "h100": {"nvidia.com/mig-1g.10gb": 16}}},
    ]
    config["services"] = {
        "cert_manager": {"enabled": False}, "gpu_operator": {"enabled": True}, "monitoring": {"enabled": False},
        "kueue": {"enabled": True, "fair_sharing": True,
                  "integrations": ["batch/job", "jobset.x-k8s.io/jobset", "kubeflow.org/pytorchjob", "ray.io/rayjob"],
                  # their operators are not this config's (validation refuses an integration without its operator)
                  "external_integrations": ["jobset.x-k8s.io/jobset", "kubeflow.org/pytorchjob", "ray.io/rayjob"]},
        "volcano": {"enabled": True,
                    "scheduler_plugins": ["gang", "drf", "capacity", "binpack", "priority", "predicates", "nodeorder"]},
    }
    tmp = tmp_path_factory.mktemp("scheduling")
    state = {"config": config, "path": _write(tmp, config), "tmp": tmp, "cluster": cluster,
             "teams": (research, inference, interns)}
    yield state
    _cleanup(lab, cluster)


def _cleanup(lab, cluster):
    selector = "app.kubernetes.io/managed-by=gpufleet,gpufleet.io/cluster=%s" % cluster
    for plural, group, version in (("localqueues", *KUEUE),):
        for obj in lab.custom.list_cluster_custom_object(group, version, plural, label_selector=selector)["items"]:
            lab.custom.delete_namespaced_custom_object(group, version, obj["metadata"]["namespace"], plural,
                                                       obj["metadata"]["name"])
    for plural, group, version in (("clusterqueues", *KUEUE), ("workloadpriorityclasses", *KUEUE),
                                   ("resourceflavors", *KUEUE)):
        for obj in lab.custom.list_cluster_custom_object(group, version, plural, label_selector=selector)["items"]:
            lab.custom.delete_cluster_custom_object(group, version, plural, obj["metadata"]["name"])
    _delete_volcano_queues(lab, selector)
    for ns in lab.core.list_namespace(label_selector=selector).items:
        lab.core.delete_namespace(ns.metadata.name)


def _delete_volcano_queues(lab, selector, timeout=60):
    """Volcano's webhook refuses to delete a parent Queue while it still sees a child: delete what it allows,
    again, until none is left."""
    from kubernetes.client.rest import ApiException
    deadline = time.time() + timeout
    while True:
        left = lab.custom.list_cluster_custom_object(*VOLCANO, "queues", label_selector=selector)["items"]
        if not left:
            return
        for obj in left:
            try:
                lab.custom.delete_cluster_custom_object(*VOLCANO, "queues", obj["metadata"]["name"])
            except ApiException as exc:
                if exc.status == 404 or (exc.status == 400 and "child queue" in str(exc.body)):
                    continue
                raise
        assert time.time() < deadline, "Volcano queues left: %s" % [o["metadata"]["name"] for o in left]
        time.sleep(1)


def _list(lab, group, version, plural, cluster):
    items = lab.custom.list_cluster_custom_object(
        group, version, plural, label_selector="gpufleet.io/cluster=%s" % cluster)["items"]
    return {(o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in items}


def test_converge_idempotent_check(lab, sched):
    first = ansible_playbook("playbooks/scheduling.yml", config=sched["path"])
    assert first.rc == 0, first
    assert first.changed > 0, first
    second = ansible_playbook("playbooks/scheduling.yml", config=sched["path"])
    assert second.rc == 0, second
    assert second.changed == 0, second.changed_tasks()
    check = ansible_playbook("playbooks/scheduling.yml", config=sched["path"], check=True, diff=True)
    assert check.rc == 0, check
    assert check.changed == 0, check.changed_tasks()


def test_kueue_objects_and_quotas(lab, sched):
    research, inference, interns = sched["teams"]
    cluster = sched["cluster"]
    flavors = {k[1]: v for k, v in _list(lab, *KUEUE, "resourceflavors", cluster).items()}
    assert sorted(flavors) == ["a100", "gpufleet-cpu", "h100", "l40s"]
    assert flavors["h100"]["spec"]["nodeLabels"] == {"gpufleet.io/pool": "h100"}
    # the flavors select real lab nodes
    for pool in ("a100", "h100", "l40s"):
        assert len(lab.core.list_node(label_selector="gpufleet.io/pool=%s" % pool).items) == 2
    cqs = {k[1]: v for k, v in _list(lab, *KUEUE, "clusterqueues", cluster).items()}
    assert sorted(cqs) == sorted([research, inference, interns])
    for cq in cqs.values():
        assert cq["spec"]["cohortName"] == cluster
        # set by the real Kueue controller: flavors exist and the queue can admit
        active = [c for c in (cq.get("status") or {}).get("conditions") or [] if c["type"] == "Active"]
        assert active and active[0]["status"] == "True", (cq["metadata"]["name"], cq.get("status"))
        assert cq["spec"]["queueingStrategy"] == "StrictFIFO"
        assert cq["spec"]["preemption"]["withinClusterQueue"] == "LowerPriority"

    def quotas(name):
        gpu = cqs[name]["spec"]["resourceGroups"][1]
        return {(f["name"], r["name"]): r for f in gpu["flavors"] for r in f["resources"] if r["nominalQuota"] != "0"}

    # the numbers config.yml says, and they fit the pools (capacity from the plan: 2 nodes each)
    assert quotas(research) == {
        ("a100", "nvidia.com/gpu"): {"name": "nvidia.com/gpu", "nominalQuota": "12", "borrowingLimit": "4",
                                     "lendingLimit": "4"},
        ("h100", "nvidia.com/mig-1g.10gb"): {"name": "nvidia.com/mig-1g.10gb", "nominalQuota": "64"}}
    assert quotas(inference)[("h100", "nvidia.com/mig-1g.10gb")]["lendingLimit"] == "16"
    assert quotas(inference)[("l40s", "nvidia.com/gpu")]["nominalQuota"] == "24"
    totals = {}
    for name in cqs:
        for (flavor, res), quota in quotas(name).items():
            totals[(flavor, res)] = totals.get((flavor, res), 0) + int(quota["nominalQuota"])
    # a100: 2 nodes x 8 GPUs; h100: 2 x 8 GPUs x 7 1g.10gb; l40s: 2 x 4 GPUs x 4 time-slice replicas
    assert totals == {("a100", "nvidia.com/gpu"): 16, ("h100", "nvidia.com/mig-1g.10gb"): 112,
                      ("l40s", "nvidia.com/gpu"): 32}
    cpu = cqs[research]["spec"]["resourceGroups"][0]["flavors"][0]
    assert cpu == {"name": "gpufleet-cpu", "resources": [{"name": "cpu", "nominalQuota": "128"},
                                                         {"name": "memory", "nominalQuota": "1Ti"}]}
    lqs = _list(lab, *KUEUE, "localqueues", cluster)
    assert sorted(lqs) == sorted([(research, "default"), ("s%s-serving" % research[1:5], "default"),
                                  (interns, "default")])
    assert lqs[(research, "default")]["spec"]["clusterQueue"] == research
    wpcs = {k[1]: v["value"] for k, v in _list(lab, *KUEUE, "workloadpriorityclasses", cluster).items()}
    assert wpcs == {research: 1000, inference: 2000, interns: 10}
    ns = lab.core.read_namespace(interns)
    assert ns.metadata.labels["gpufleet.io/delete-namespace-on-removal"] == "true"
    assert ns.metadata.labels["app.kubernetes.io/managed-by"] == "gpufleet"


def test_volcano_queues(lab, sched):
    """The Queues the role applies pass Volcano's real queue webhook (hierarchy covered) and the real
    Volcano controller opens them."""
    import time
    research, inference, interns = sched["teams"]
    deadline = time.time() + 60
    while True:
        objs = _list(lab, *VOLCANO, "queues", sched["cluster"])
        states = {k[1]: (v.get("status") or {}).get("state") for k, v in objs.items()}
        if all(state == "Open" for state in states.values()) or time.time() > deadline:
            break
        time.sleep(1)
    assert states == {research: "Open", inference: "Open", interns: "Open"}
    queues = {k[1]: v["spec"] for k, v in objs.items()}
    assert sorted(queues) == sorted([research, inference, interns])
    assert queues[research]["weight"] == 4
    assert queues[research]["capability"] == {"nvidia.com/gpu": "16"}
    assert queues[research]["guarantee"] == {"resource": {"nvidia.com/gpu": "8"}}
    assert queues[research]["deserved"]["nvidia.com/mig-1g.10gb"] == "64"
    assert queues[interns]["parent"] == research
    assert queues[inference]["guarantee"] == {"resource": {"nvidia.com/mig-1g.10gb": "16"}}
    assert queues[interns]["reclaimable"] is True


def _helm_values(release, namespace):
    out = subprocess.run([os.path.join(lab_bin(), "helm"), "get", "values", release, "-n", namespace, "-o", "json",
                          "--kubeconfig", os.path.expanduser("~/.cache/gpufleet/lab/run/kubeconfig")],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _keys_exist(values, upstream, path=""):
    for key, value in values.items():
        assert key in upstream, "%s%s is not an upstream values key" % (path, key)
        if isinstance(value, dict) and isinstance(upstream[key], dict) and upstream[key]:
            _keys_exist(value, upstream[key], path + key + ".")


@pytest.mark.parametrize("release, namespace, component, version", [
    ("kueue", "kueue-system", "kueue", "v0.19.2"), ("volcano", "volcano-system", "volcano", "v1.15.1")])
def test_chart_values_contract(lab, sched, release, namespace, component, version):
    path = os.path.join(SHARED, "upstream", component, version, "values", "%s.values.yaml" % component)
    if not os.path.exists(path):
        pytest.skip("upstream values not found at %s" % path)
    with open(path) as handle:
        upstream = yaml.safe_load(handle)
    values = _helm_values(release, namespace)
    _keys_exist(values, upstream)
    if component == "kueue":
        config = yaml.safe_load(values["managerConfig"]["controllerManagerConfigYaml"])
        assert config["apiVersion"] == "config.kueue.x-k8s.io/v1beta2"
        assert config["integrations"]["frameworks"][0] == "batch/job"
        assert "fairSharing" in config and config["waitForPodsReady"]["timeout"] == "5m"
    else:
        conf = yaml.safe_load(values["custom"]["scheduler_config_override"])
        names = [p["name"] for tier in conf["tiers"] for p in tier["plugins"]]
        assert "capacity" in names and "proportion" not in names
        assert "reclaim" in conf["actions"]


def test_job_is_admitted_by_kueue_and_lands_on_its_flavor(lab, sched):
    """What a team relies on: a Job submitted unsuspended to the team's LocalQueue is suspended by Kueue's
    webhook, gets a Workload that the real Kueue controller admits against the ClusterQueue's quota in the
    a100 flavor, is unsuspended with the flavor's node labels, and its pod runs on an A100 node."""
    import time
    from kubernetes import client
    research = sched["teams"][0]
    batch = client.BatchV1Api(lab.api_client)
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": "train", "labels": {"kueue.x-k8s.io/queue-name": "default",
                                                    "kueue.x-k8s.io/priority-class": research}},
           "spec": {"template": {"spec": {
               "restartPolicy": "Never",
               "containers": [{"name": "train", "image": "registry.invalid/train:0",
                               "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}}}
    created = batch.create_namespaced_job(research, job)
    try:
        assert created.spec.suspend is True  # Kueue's mutating webhook holds it until admission
        deadline, admitted, pods = time.time() + 90, None, []
        while time.time() < deadline:
            wls = lab.custom.list_namespaced_custom_object(*KUEUE, research, "workloads")["items"]
            admitted = next((w for w in wls if any(c["type"] == "Admitted" and c["status"] == "True"
                                                   for c in (w.get("status") or {}).get("conditions") or [])), None)
            pods = lab.core.list_namespaced_pod(research, label_selector="job-name=train").items
            if admitted and pods and pods[0].spec.node_name:
                break
            time.sleep(1)
        assert admitted, "no Admitted Workload for the Job: %s" % wls
        assignment = admitted["status"]["admission"]["podSetAssignments"][0]
        assert assignment["flavors"] == {"nvidia.com/gpu": "a100"}
        assert admitted["status"]["admission"]["clusterQueue"] == research
        assert pods and pods[0].spec.node_name in ("lab-a100-1", "lab-a100-2"), [p.spec.node_name for p in pods]
        assert pods[0].spec.node_selector.get("gpufleet.io/pool") == "a100"
    finally:
        batch.delete_namespaced_job("train", research, propagation_policy="Background")


def test_remove_and_readd_team(lab, sched):
    research, inference, interns = sched["teams"]
    cluster = sched["cluster"]
    config = dict(sched["config"], teams=sched["config"]["teams"][:2])
    smaller = _write(sched["tmp"], config, "two-teams.yml")
    check = ansible_playbook("playbooks/scheduling.yml", *SKIP_INSTALL, config=smaller, check=True, diff=True)
    assert check.rc == 0, check
    assert check.changed > 0
    assert "ClusterQueue %s" % interns in check.stdout and "LocalQueue %s/default" % interns in check.stdout
    assert interns in {k[1] for k in _list(lab, *KUEUE, "clusterqueues", cluster)}  # check mode changed nothing

    removed = ansible_playbook("playbooks/scheduling.yml", *SKIP_INSTALL, config=smaller)
    assert removed.rc == 0, removed
    assert interns not in {k[1] for k in _list(lab, *KUEUE, "clusterqueues", cluster)}
    assert (interns, "default") not in _list(lab, *KUEUE, "localqueues", cluster)
    assert interns not in {k[1] for k in _list(lab, *VOLCANO, "queues", cluster)}
    assert interns not in {k[1] for k in _list(lab, *KUEUE, "workloadpriorityclasses", cluster)}
    ns = lab.core.list_namespace(field_selector="metadata.name=%s" % interns).items
    assert not ns or ns[0].status.phase == "Terminating"  # delete_namespace_on_removal: true
    assert research in {k[1] for k in _list(lab, *KUEUE, "clusterqueues", cluster)}

    again = ansible_playbook("playbooks/scheduling.yml", *SKIP_INSTALL, config=sched["path"], timeout=900)
    if again.rc != 0 and "being terminated" in again.stdout:  # the namespace controller had not finished yet
        again = ansible_playbook("playbooks/scheduling.yml", *SKIP_INSTALL, config=sched["path"])
    assert again.rc == 0, again
    assert again.changed > 0
    assert interns in {k[1] for k in _list(lab, *KUEUE, "clusterqueues", cluster)}
    assert (interns, "default") in _list(lab, *KUEUE, "localqueues", cluster)


def test_bad_input_stops_before_any_change(lab, sched, tmp_path):
    config = json.loads(json.dumps(sched["config"]))
    config["teams"][2]["quotas"]["a100"]["nvidia.com/gpu"] = 40  # 12 + 40 > 16
    config["teams"][1]["volcano"]["parent"] = "nobody"
    bad = _write(tmp_path, config)
    result = ansible_playbook("playbooks/scheduling.yml", config=bad)
    assert result.rc != 0
    out = result.stdout + result.stderr
    assert 'teams[2].quotas.a100["nvidia.com/gpu"]' in out and "add up to 52 but the pool provides 16" in out
    assert "teams[1].volcano.parent" in out and "no such team" in out
    assert result.changed == 0
    cqs = {k[1]: v for k, v in _list(lab, *KUEUE, "clusterqueues", sched["cluster"]).items()}
    gpu = cqs[sched["teams"][2]]["spec"]["resourceGroups"][1]["flavors"]
    assert {f["name"]: f["resources"][0]["nominalQuota"] for f in gpu}["a100"] == "4"


def _kueue_metric_names(dashboard):
    """kueue_* series a dashboard queries (histograms by their base name)."""
    with open(os.path.join(ROOT, "roles", "monitoring", "files", "dashboards", dashboard)) as handle:
        names = set(re.findall(r"\bkueue_[a-z_]+", handle.read()))
    return {re.sub(r"_(bucket|sum|count)$", "", n) for n in names}


def test_kueue_metrics_are_served_to_prometheus_when_monitoring_is_on(lab, sched, tmp_path):
    """With services.monitoring on, the Kueue release switches on the chart's ServiceMonitor and per-ClusterQueue
    resource metrics; the real Kueue controller then serves the queue dashboard's gauges for this config's
    ClusterQueues to a scraper holding a token that RBAC allows /metrics (what kube-prometheus-stack grants its
    Prometheus), and refuses one without. The lab runs no Prometheus (kube-prometheus-stack is a STAND-IN there),
    so the test scrapes the controller itself, inside the network namespace the lab gives its pod."""
    from lab_helpers import played_pid, scrape, wait_for

    config = json.loads(json.dumps(sched["config"]))
    with open(LAB_CONFIG) as handle:
        config["services"]["monitoring"] = yaml.safe_load(handle)["services"]["monitoring"]
    result = ansible_playbook("playbooks/scheduling.yml", config=_write(tmp_path, config), timeout=900)
    assert result.rc == 0, result
    ns = "kueue-system"
    monitors = lab.custom.list_namespaced_custom_object("monitoring.coreos.com", "v1", ns, "servicemonitors")["items"]
    monitor = next(m for m in monitors if m["metadata"]["name"] == "kueue-controller-manager-metrics-monitor")
    assert [(e["port"], e["scheme"], e["path"]) for e in monitor["spec"]["endpoints"]] == [("https", "https", "/metrics")]
    selected = lab.core.list_namespaced_service(ns, label_selector=",".join(
        "%s=%s" % kv for kv in monitor["spec"]["selector"]["matchLabels"].items())).items
    assert [s.metadata.name for s in selected] == ["kueue-controller-manager-metrics-service"]
    assert any(p.name == "https" and p.port == 8443 for p in selected[0].spec.ports)

    # the identity Prometheus scrapes with: a ServiceAccount allowed GET /metrics
    name = "gpufleet-test-scraper-%s" % uuid.uuid4().hex[:4]
    rbac = client.RbacAuthorizationV1Api(lab.api_client)
    lab.core.create_namespaced_service_account("default", {"metadata": {"name": name}})
    try:
        rbac.create_cluster_role({"metadata": {"name": name}, "rules": [{"nonResourceURLs": ["/metrics"],
                                                                         "verbs": ["get"]}]})
        rbac.create_cluster_role_binding({
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": "default"}]})
        token = lab.core.create_namespaced_service_account_token(
            name, "default", {"spec": {"expirationSeconds": 600}}).status.token
        research = sched["teams"][0]

        def served():
            pid = played_pid(ns, "kueue-controller-manager")
            if pid is None:
                return None
            try:
                status, body = scrape(pid, 8443, token)
            except OSError:  # the rolled pod's controller is still starting
                return None
            # enableClusterQueueResources (the new configuration) is what adds the reservation gauge
            wanted = 'kueue_cluster_queue_resource_reservation{cluster_queue="%s"' % research
            return (pid, body) if status == 200 and wanted in body else None

        pid, body = wait_for(served, timeout=240, interval=3, what="the Kueue controller serving the new metrics")
        series = {line.split("{")[0].split(" ")[0] for line in body.splitlines() if line.startswith("kueue_")}
        # the gauges Kueue reports for every ClusterQueue (kueue_admitted_active_workloads and the counters and
        # histograms appear with the first admission)
        gauges = {"kueue_cluster_queue_status", "kueue_pending_workloads", "kueue_cluster_queue_resource_pending"}
        assert gauges <= _kueue_metric_names("queues.json"), "the queue dashboard reads these"
        assert gauges <= series, sorted(gauges - series)
        assert 'kueue_pending_workloads{cluster_queue="%s"' % research in body
        assert scrape(pid, 8443)[0] == 401  # no token: refused
    finally:
        for delete in (lambda: rbac.delete_cluster_role_binding(name), lambda: rbac.delete_cluster_role(name),
                       lambda: lab.core.delete_namespaced_service_account(name, "default")):
            try:
                delete()
            except Exception:  # noqa: BLE001 - best-effort cleanup
                pass
