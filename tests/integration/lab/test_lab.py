"""The lab: a real API server, upstream CRDs, simulated GPU nodes, the GPU simulator, lab-down.

Tests run in file order. lab-down is tested last, in test_zz_lab_down.py.
"""
import json
import os
import re
import subprocess
import sys
import time

import pytest
import yaml

import lab_helpers
from gpufleet_lab import cli, control_plane, gpu_models, settings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def wait_for(predicate, timeout=30.0, interval=0.2, what="condition"):
    return lab_helpers.wait_for(predicate, timeout=timeout, interval=interval, what=what)


def pod(name, resources=None, node_selector=None, tolerations=None):
    spec = {"containers": [{"name": "main", "image": "registry.invalid/lab-test:0",
                            "resources": {"limits": resources} if resources else {}}]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    if tolerations:
        spec["tolerations"] = tolerations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def running_on(lab, ns, name):
    p = lab.core.read_namespaced_pod(name, ns)
    ready = any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or ())
    return p if p.status.phase == "Running" and ready and p.spec.node_name else None


def capacity(lab, node):
    return dict(lab.core.read_node(node).status.capacity)


# ------------------------------------------------------------------------------------ control plane


def test_apiserver_healthy(lab):
    ok, detail = control_plane.apiserver_ready()
    assert ok, detail
    status, body = control_plane.http_get(settings.api_url() + "/version", control_plane.ssl_context())
    assert status == 200
    assert json.loads(body)["gitVersion"] == "v" + settings.KUBE_VERSION
    status, body = control_plane.http_get(settings.api_url() + "/livez", control_plane.ssl_context())
    assert status == 200, body


def test_control_plane_binds_loopback_only(lab):
    """Every lab port listens on 127.0.0.1 only."""
    with open("/proc/net/tcp") as fh:
        rows = [line.split() for line in fh.readlines()[1:]]
    ports = set(settings.PORTS.values())
    for row in rows:
        local, st = row[1], row[3]
        if st != "0A":  # LISTEN
            continue
        ip_hex, port_hex = local.split(":")
        if int(port_hex, 16) in ports:
            assert ip_hex == "0100007F", "port %d listens on %s" % (int(port_hex, 16), ip_hex)


def test_anonymous_and_unauthorised_requests_rejected(lab):
    """RBAC is on: an unauthenticated client gets no data."""
    import ssl
    ctx = ssl.create_default_context(cafile=os.path.join(settings.PKI, "ca.crt"))
    status, _ = control_plane.http_get(settings.api_url() + "/api/v1/secrets", ctx)
    assert status in (401, 403)


def _crd_names():
    """The CRDs lab-up pre-installs: the upstream ones, less those a real chart ships as templates (Helm owns those)."""
    from gpufleet_lab import charts
    names = []
    for path in sorted(charts.preinstalled_crds()):
        with open(path) as fh:
            text = fh.read()
        meta = re.search(r"^metadata:\n(?:[ ].*\n)*?  name: ([^\s]+)", text, re.M)
        assert meta, path
        names.append(meta.group(1))
    return names


def test_upstream_crds_established(lab):
    expected = _crd_names()
    assert len(expected) >= 15
    crds = {c.metadata.name: c for c in lab.ext.list_custom_resource_definition().items}
    missing = [n for n in expected if n not in crds]
    assert not missing
    not_established = [n for n in expected if not any(
        c.type == "Established" and c.status == "True" for c in crds[n].status.conditions or ())]
    assert not not_established


def test_custom_resource_validated_by_real_schema(lab, namespace):
    """A PrometheusRule (a CRD the lab pre-installs from the monitoring chart's crds/) is accepted; an invalid
    one is rejected by the CRD schema (422). Kueue's CRDs are not pre-installed: the real kueue chart ships them
    as templates, so they exist once the kueue role has run (test_scheduling.py covers its webhook)."""
    from kubernetes.client.rest import ApiException
    body = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": "lab-test", "namespace": namespace},
            "spec": {"groups": [{"name": "g", "rules": [{"record": "lab:test", "expr": "vector(1)"}]}]}}
    lab.custom.create_namespaced_custom_object("monitoring.coreos.com", "v1", namespace, "prometheusrules", body)
    bad = dict(body, metadata={"name": "lab-test-bad", "namespace": namespace}, spec={"groups": "not-a-list"})
    with pytest.raises(ApiException) as err:
        lab.custom.create_namespaced_custom_object("monitoring.coreos.com", "v1", namespace, "prometheusrules", bad)
    assert err.value.status == 422, err.value.body


# ------------------------------------------------------------------------------------ nodes


def test_simulated_gpu_nodes_ready_with_labels_and_capacity(lab):
    pools = lab.config["gpu_pools"]
    gpu_nodes = lab.gpu_nodes()
    assert len(gpu_nodes) >= 3
    for cfg in gpu_nodes:
        node = lab.core.read_node(cfg["name"])
        pool = pools[cfg["pool"]]
        model = gpu_models.lookup(pool["model"])
        labels = node.metadata.labels
        ready = [c for c in node.status.conditions if c.type == "Ready"]
        assert ready and ready[0].status == "True", cfg["name"]
        assert labels["gpufleet.io/pool"] == cfg["pool"]
        assert labels["nvidia.com/gpu.present"] == "true"
        assert labels["nvidia.com/gpu.product"].startswith(model.gfd_product)
        assert labels["nvidia.com/gpu.count"] == str(pool["gpus_per_node"])
        assert labels["nvidia.com/gpu.memory"] == str(model.memory_mib)
        assert labels["nvidia.com/mig.capable"] == ("true" if model.mig_capable else "false")
        for key in ("nvidia.com/gpu.family", "nvidia.com/cuda.driver-version.major",
                    "nvidia.com/cuda.driver-version.minor", "nvidia.com/cuda.driver-version.revision",
                    "nvidia.com/cuda.runtime-version.major", "nvidia.com/cuda.runtime-version.minor"):
            assert labels.get(key), (cfg["name"], key)
        if model.mig_capable:
            assert labels["nvidia.com/mig.strategy"] == pool["mig"]["strategy"]
        assert "node-role.kubernetes.io/worker" in labels
        if not ({"nvidia.com/mig.config", "nvidia.com/device-plugin.config"} & set(labels)):
            # untouched by an earlier run of the MIG / sharing tests on a lab that was kept running
            assert node.status.capacity["nvidia.com/gpu"] == str(pool["gpus_per_node"])
            assert node.status.allocatable["nvidia.com/gpu"] == str(pool["gpus_per_node"])
        for res in ("cpu", "memory", "pods"):
            assert res in node.status.allocatable
        addresses = {a.type: a.address for a in node.status.addresses}
        assert addresses["InternalIP"] == cfg["address"]
        assert node.status.node_info.kubelet_version == "v" + settings.KUBE_VERSION
    # CPU-only and control-plane nodes carry no GPU labels
    cp = lab.core.read_node("lab-cp-1")
    assert "nvidia.com/gpu.present" not in cp.metadata.labels
    assert any(t.key == "node-role.kubernetes.io/control-plane" for t in cp.spec.taints)


# ------------------------------------------------------------------------------------ scheduling


def test_gpu_pod_schedules_and_runs(lab, namespace):
    lab.core.create_namespaced_pod(namespace, pod("one-gpu", {"nvidia.com/gpu": "1"}))
    p = wait_for(lambda: running_on(lab, namespace, "one-gpu"), what="one-gpu Running")
    node = lab.core.read_node(p.spec.node_name)
    assert node.metadata.labels.get("nvidia.com/gpu.present") == "true"
    assert p.status.pod_ip


def test_oversized_gpu_pod_stays_pending(lab, namespace):
    biggest = max(int(n.status.allocatable.get("nvidia.com/gpu", "0")) for n in lab.core.list_node().items)
    lab.core.create_namespaced_pod(namespace, pod("too-big", {"nvidia.com/gpu": str(biggest + 1)}))

    def unschedulable():
        p = lab.core.read_namespaced_pod("too-big", namespace)
        return [c for c in p.status.conditions or () if c.type == "PodScheduled" and c.reason == "Unschedulable"]

    cond = wait_for(unschedulable, what="PodScheduled=False/Unschedulable")
    assert "nvidia.com/gpu" in cond[0].message
    time.sleep(2)
    p = lab.core.read_namespaced_pod("too-big", namespace)
    assert p.status.phase == "Pending" and not p.spec.node_name


def test_deployment_pods_run_on_simulated_nodes(lab, namespace):
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:0"}]}}}}
    lab.apps.create_namespaced_deployment(namespace, body)

    def available():
        d = lab.apps.read_namespaced_deployment("web", namespace)
        return (d.status.available_replicas or 0) == 3
    wait_for(available, what="deployment web 3/3 available")
    pods = lab.core.list_namespaced_pod(namespace, label_selector="app=web").items
    assert all(lab.core.read_node(p.spec.node_name).metadata.labels.get(settings.SIMULATED_LABEL) == "true"
               for p in pods)


def test_job_pod_completes(lab, namespace):
    from kubernetes import client
    body = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
            "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "main", "image": "registry.invalid/job:0", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}}}
    batch = client.BatchV1Api(lab.api_client)
    batch.create_namespaced_job(namespace, body)
    wait_for(lambda: (batch.read_namespaced_job("once", namespace).status.succeeded or 0) == 1, timeout=45,
             what="job succeeded")


# ------------------------------------------------------------------------------------ GPU simulator

MIG_NODE = "lab-h100-2"
GPU_NS = "gpu-operator"
MUTATED = (MIG_NODE, "lab-a100-2", "lab-l40s-2")


@pytest.fixture(scope="module", autouse=True)
def reset_mutated_nodes(lab):
    """Later tests of the session (the roles') get these nodes back as the config describes them."""
    yield
    lab.reset_nodes(MUTATED)


def _cluster_policy_config(lab, field):
    """The ConfigMap name a ClusterPolicy gives for spec.<field>.config.name (what the simulator reads)."""
    items = lab.custom.list_cluster_custom_object("nvidia.com", "v1", "clusterpolicies")["items"]
    for cp in items:
        name = (((cp.get("spec") or {}).get(field) or {}).get("config") or {}).get("name")
        if name:
            return name
    return None


def _operator_namespace(lab):
    """Where the simulator reads the operator ConfigMaps: the ClusterPolicy's release namespace, else gpu-operator."""
    for cp in lab.custom.list_cluster_custom_object("nvidia.com", "v1", "clusterpolicies")["items"]:
        ns = (cp["metadata"].get("annotations") or {}).get("meta.helm.sh/release-namespace")
        if ns:
            return ns
    return GPU_NS


@pytest.fixture
def put_configmap(lab):
    """Create or replace an operator ConfigMap; put back what was there afterwards."""
    from kubernetes.client.rest import ApiException
    saved = []
    ns = _operator_namespace(lab)
    try:
        lab.core.create_namespace({"metadata": {"name": ns}})
    except ApiException as exc:
        assert exc.status == 409

    def put(name, data):
        try:
            old = lab.core.read_namespaced_config_map(name, ns)
            saved.append((name, old.data))
            lab.core.replace_namespaced_config_map(name, ns, {"metadata": {"name": name}, "data": data})
        except ApiException as exc:
            assert exc.status == 404
            saved.append((name, None))
            lab.core.create_namespaced_config_map(ns, {"metadata": {"name": name}, "data": data})
    yield put
    for name, data in reversed(saved):
        if data is None:
            lab.core.delete_namespaced_config_map(name, ns)
        else:
            lab.core.replace_namespaced_config_map(name, ns, {"metadata": {"name": name}, "data": data})


def _mig_state(lab, node):
    return lab.core.read_node(node).metadata.labels.get("nvidia.com/mig.config.state")


def test_mig_label_publishes_mig_resources(lab, namespace):
    lab.core.patch_node(MIG_NODE, {"metadata": {"labels": {"nvidia.com/mig.config": "all-1g.10gb"}}})
    wait_for(lambda: _mig_state(lab, MIG_NODE) == "success", what="mig.config.state=success")
    cap = capacity(lab, MIG_NODE)
    assert cap["nvidia.com/mig-1g.10gb"] == "56"  # 8 x H100 80GB x 7
    assert cap["nvidia.com/gpu"] == "0"
    labels = lab.core.read_node(MIG_NODE).metadata.labels
    assert labels["nvidia.com/mig-1g.10gb.count"] == "56"
    # a pod asking for a MIG slice lands there
    lab.core.create_namespaced_pod(namespace, pod("mig-slice", {"nvidia.com/mig-1g.10gb": "1"},
                                                  node_selector={"kubernetes.io/hostname": MIG_NODE}))
    p = wait_for(lambda: running_on(lab, namespace, "mig-slice"), what="mig-slice Running")
    assert p.spec.node_name == MIG_NODE


def test_mig_layout_from_mig_parted_configmap(lab, put_configmap):
    """The simulator reads the mig-parted ConfigMap and computes resources with the collection's MIG logic."""
    from ansible_collections.gpufleet.platform.plugins.module_utils import mig
    layout = {"3g.40gb": 1, "2g.20gb": 1, "1g.10gb": 2}
    plan = mig.plan_layout("h100-sxm5-80gb", layout, gpu_count=8, config_name="lab-mixed")
    cfg = dict(plan["mig_parted"])
    cfg["mig-configs"]["lab-impossible"] = [{"devices": "all", "mig-enabled": True, "mig-devices": {"7g.80gb": 2}}]
    put_configmap(_cluster_policy_config(lab, "migManager") or "gpufleet-mig-parted-config",
                  {"config.yaml": yaml.safe_dump(cfg)})
    lab.core.patch_node(MIG_NODE, {"metadata": {"labels": {"nvidia.com/mig.config": "lab-mixed"}}})
    wait_for(lambda: _mig_state(lab, MIG_NODE) == "success" and
             capacity(lab, MIG_NODE).get("nvidia.com/mig-3g.40gb") == "8", what="lab-mixed applied")
    cap = capacity(lab, MIG_NODE)
    for res, count in plan["resources"]["mixed"].items():
        assert cap[res] == str(count), res
    assert cap["nvidia.com/mig-1g.10gb"] == "16"
    # a layout that does not fit the GPU fails, and keeps the previous resources
    lab.core.patch_node(MIG_NODE, {"metadata": {"labels": {"nvidia.com/mig.config": "lab-impossible"}}})
    wait_for(lambda: _mig_state(lab, MIG_NODE) == "failed", what="mig.config.state=failed")
    assert capacity(lab, MIG_NODE)["nvidia.com/mig-3g.40gb"] == "8"
    ann = lab.core.read_node(MIG_NODE).metadata.annotations
    assert ann.get("lab.gpufleet.io/mig-error")


def test_force_mig_state_hook(lab):
    node = "lab-a100-2"
    before = capacity(lab, node)
    lab.core.patch_node(node, {"metadata": {"annotations": {"lab.gpufleet.io/force-mig-state": "failed"},
                                            "labels": {"nvidia.com/mig.config": "all-1g.10gb"}}})
    wait_for(lambda: _mig_state(lab, node) == "failed", what="forced failed")
    assert capacity(lab, node) == before
    lab.core.patch_node(node, {"metadata": {"annotations": {"lab.gpufleet.io/force-mig-state": None}}})
    wait_for(lambda: _mig_state(lab, node) == "success", what="success once the hook is removed")
    assert capacity(lab, node)["nvidia.com/mig-1g.10gb"] == "56"


def test_time_slicing_replicas(lab, put_configmap):
    node = "lab-l40s-2"
    cfg = {"version": "v1", "sharing": {"timeSlicing": {"resources": [{"name": "nvidia.com/gpu", "replicas": 4}]}}}
    renamed = {"version": "v1", "sharing": {"timeSlicing": {
        "renameByDefault": True, "resources": [{"name": "nvidia.com/gpu", "replicas": 2}]}}}
    put_configmap(_cluster_policy_config(lab, "devicePlugin") or "gpufleet-device-plugin-config",
                  {"l40s": yaml.safe_dump(cfg), "l40s-renamed": yaml.safe_dump(renamed)})
    lab.core.patch_node(node, {"metadata": {"labels": {"nvidia.com/device-plugin.config": "l40s"}}})
    wait_for(lambda: capacity(lab, node).get("nvidia.com/gpu") == "16", what="4 GPUs x 4 replicas")
    labels = lab.core.read_node(node).metadata.labels
    assert labels["nvidia.com/gpu.sharing-strategy"] == "time-slicing"
    assert labels["nvidia.com/gpu.replicas"] == "4"
    assert labels["nvidia.com/gpu.product"].endswith("-SHARED")
    lab.core.patch_node(node, {"metadata": {"labels": {"nvidia.com/device-plugin.config": "l40s-renamed"}}})
    wait_for(lambda: capacity(lab, node).get("nvidia.com/gpu.shared") == "8", what="renamed to gpu.shared")
    assert capacity(lab, node)["nvidia.com/gpu"] == "0"


def test_gpu_operator_chart_and_cluster_policy_ready(lab):
    """The gpu-operator chart installs with Helm from the mirror and its ClusterPolicy becomes ready: set by the
    real operator when the chart is real (test_gpu_operator.py), by the simulator while it is a stand-in."""
    index_path = os.path.join(settings.CHARTS, "charts.yml")
    with open(index_path) as fh:
        index = yaml.safe_load(fh)
    chart = index["charts"]["gpu-operator"]
    with open(os.path.join(chart["path"], "Chart.yaml")) as fh:
        meta = yaml.safe_load(fh)
    stand_in = chart.get("stand_in", True)
    assert meta["version"] == "v26.7.0"
    if stand_in:
        assert meta["annotations"]["gpufleet.io/stand-in"] == "true" and "STAND-IN" in meta["description"]
    else:
        assert "gpufleet.io/stand-in" not in (meta.get("annotations") or {}) and "STAND-IN" not in meta["description"]
    helm = [settings.binary("helm"), "--kubeconfig", settings.KUBECONFIG]
    existing = lab.custom.list_cluster_custom_object("nvidia.com", "v1", "clusterpolicies")["items"]
    release = None
    if not existing:  # another test (a role) may own the cluster-scoped ClusterPolicy: then only check it
        release, ns = "lab-test-gpu-operator", "lab-test-gpu-operator"
        res = subprocess.run(helm + ["upgrade", "--install", release, chart["package"], "-n", ns, "--create-namespace",
                                     "--wait", "--timeout", "90s",
                                     "--set", "migManager.config.name=gpufleet-mig-parted-config"],
                             check=False, capture_output=True, text=True)
        assert res.returncode == 0, res.stderr

    def ready():
        items = lab.custom.list_cluster_custom_object("nvidia.com", "v1", "clusterpolicies")["items"]
        return items and all((i.get("status") or {}).get("state") == "ready" for i in items)
    try:
        wait_for(ready, what="ClusterPolicy ready")
        if release:
            dep = lab.apps.read_namespaced_deployment("gpu-operator", ns)
            assert dep.status.available_replicas == 1
            assert (dep.spec.template.spec.containers[0].image == "registry.invalid/stand-in:0") == stand_in
    finally:
        if release:
            subprocess.run(helm + ["uninstall", release, "-n", ns, "--wait"], check=False, capture_output=True)
            lab.core.delete_namespace(ns)


def test_every_chart_of_the_mirror_renders(lab):
    with open(os.path.join(settings.CHARTS, "charts.yml")) as fh:
        index = yaml.safe_load(fh)
    from ansible_collections.gpufleet.platform.plugins.module_utils import versions
    pinned = {c["name"]: c["version"] for charts in versions.CHARTS.values() for c in charts}
    assert set(pinned) | {"nvidia-device-plugin"} <= set(index["charts"])  # every chart of the version matrix
    assert {name: index["charts"][name]["version"] for name in pinned} == pinned
    assert index["charts"]["kserve-llmisvc-crd"]["crds"] == 3  # upstream's: LLMInferenceService(Config), CSC
    for name, chart in index["charts"].items():
        assert os.path.basename(chart["package"]) == "%s-%s.tgz" % (name, chart["version"])
        # in a namespace of its own, as the roles install them (nvidia-device-plugin refuses `default`)
        res = subprocess.run([settings.binary("helm"), "template", name, chart["package"], "--namespace", "render-check"],
                             check=False, capture_output=True, text=True)
        assert res.returncode == 0, (name, res.stderr)


def test_simulator_refuses_other_clusters(lab, tmp_path):
    """The simulator only runs against the lab's own 127.0.0.1 API server carrying this lab's marker."""
    env = dict(os.environ, PYTHONPATH=settings.LAB_DIR)
    with open(settings.KUBECONFIG) as fh:
        kc = yaml.safe_load(fh)
    kc["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:6443"
    other = tmp_path / "other.conf"
    other.write_text(yaml.safe_dump(kc))
    for kubeconfig, lab_id in ((str(other), lab.state["lab_id"]), (settings.KUBECONFIG, "not-this-lab")):
        res = subprocess.run([sys.executable, "-m", "gpufleet_lab.gpu_simulator", "--kubeconfig", kubeconfig,
                              "--lab-id", lab_id], check=False, capture_output=True, text=True, env=env, timeout=60)
        assert res.returncode == 2 and "refusing" in res.stderr, res.stderr


def test_lab_up_is_idempotent(lab):
    t = time.time()
    state = cli.up(settings.DEFAULT_CONFIG if "LAB_CONFIG" not in os.environ else os.environ["LAB_CONFIG"],
                   quiet=True)
    assert time.time() - t < 10
    assert state["lab_id"] == lab.state["lab_id"]
