"""config.yml -> Kubespray variables (config_plan.kubespray_vars and the inventory plugin).

The expected names are Kubespray v2.31.0's, read from its sources (kubernetes-sigs/kubespray at tag
v2.31.0) and written down here, with the file that defines each one. When a Kubespray checkout is
available (env KUBESPRAY_DIR, or the collection installed by `make kubespray-check` under
.build/collections), every name is also looked up in that checkout's role defaults; otherwise that
check is skipped and says why.
"""
import copy
import glob
import json
import os
import re
import tomllib

import pytest
import yaml
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader

from ansible_collections.gpufleet.platform.plugins.inventory.config import InventoryModule
from ansible_collections.gpufleet.platform.plugins.module_utils import config_plan

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))

# Kubespray v2.31.0 variable -> file:line (under the Kubespray tree) that gives its default: read at tag v2.31.0,
# commit 1c9add48975060f45396b34d8e022c30d7f80dab (`git show v2.31.0:<file>`). The plan always sets these.
_DEFAULTS = "roles/kubespray_defaults/defaults/main/main.yml"
_METRICS = "roles/kubernetes-apps/metrics_server/defaults/main.yml"
_CONTROL_PLANE = "roles/kubernetes/control-plane/defaults/main/main.yml"
KUBESPRAY_V2_31_0_VARS = {
    "kube_version": _DEFAULTS + ":28",
    "container_manager": _DEFAULTS + ":338",
    "kube_network_plugin": _DEFAULTS + ":212",
    "kube_proxy_mode": _DEFAULTS + ":34",
    "kube_pods_subnet": _DEFAULTS + ":248",
    "kube_service_addresses": _DEFAULTS + ":243",
    "cluster_name": _DEFAULTS + ":119",
    "dns_mode": _DEFAULTS + ":128",
    "kubeconfig_localhost": _DEFAULTS + ":441",
    "helm_enabled": _DEFAULTS + ":452",
    "cert_manager_enabled": _DEFAULTS + ":468",
    "containerd_extra_args": "roles/container-engine/containerd/defaults/main.yml:84",
    "nvidia_accelerator_enabled": "roles/kubernetes-apps/container_engine_accelerator/nvidia_gpu/defaults/main.yml:2",
    # addons: metrics_server_enabled is in the addon list of kubespray_defaults; the rest are the role's defaults
    # (templates/metrics-server-deployment.yaml.j2 renders replicas, hostNetwork and --metric-resolution)
    "metrics_server_enabled": _DEFAULTS + ":454",
    "metrics_server_replicas": _METRICS + ":11",
    "metrics_server_metric_resolution": _METRICS + ":5",
    "metrics_server_host_network": _METRICS + ":10",
    "kube_oidc_auth": _CONTROL_PLANE + ":147",
}

# Kubespray v2.31.0 variables with no default, only a commented example line (`# kube_oidc_url: https:// ...`) in
# the file:line below; templates/kubeadm-config.v1beta4.yaml.j2:183-207 renders each into an --oidc-* flag when
# it is defined (and kube_oidc_auth is true). The plan sets them only when cluster.oidc gives them.
KUBESPRAY_V2_31_0_OPTIONAL_VARS = {
    "kube_oidc_url": _CONTROL_PLANE + ":167",
    "kube_oidc_client_id": _CONTROL_PLANE + ":168",
    "kube_oidc_username_claim": _CONTROL_PLANE + ":170",
    "kube_oidc_username_prefix": _CONTROL_PLANE + ":171",
    "kube_oidc_groups_claim": _CONTROL_PLANE + ":172",
    "kube_oidc_groups_prefix": _CONTROL_PLANE + ":173",
    "kube_oidc_ca_file": _CONTROL_PLANE + ":175",
}

# Kubespray v2.31.0's own defaults for the metrics-server settings config.yml exposes (_METRICS:5,10,11 and
# _DEFAULTS:454, where Kubespray has it off): config.yml keeps Kubespray's values and turns the addon on.
METRICS_SERVER_KUBESPRAY_DEFAULTS = {"metrics_server_replicas": 1, "metrics_server_metric_resolution": "15s",
                                     "metrics_server_host_network": False}

# Kubespray v2.31.0 choices (comments and asserts in the files above)
NETWORK_PLUGINS = {"calico", "cilium", "flannel", "kube-router", "custom_cni", "kube-ovn", "macvlan", "none"}
PROXY_MODES = {"ipvs", "iptables", "nftables"}


def minimal(**cluster):
    return {
        "plugin": "gpufleet.platform.config",
        "cluster": dict({"name": "unit"}, **cluster),
        "nodes": [
            {"name": "cp-1", "address": "192.0.2.11", "roles": ["control-plane", "etcd"]},
            {"name": "gpu-op-1", "address": "192.0.2.21", "roles": ["worker"], "pool": "op"},
            {"name": "gpu-pre-1", "address": "192.0.2.31", "roles": ["worker"], "pool": "pre"},
            {"name": "cpu-1", "address": "192.0.2.41", "roles": ["worker"]},
        ],
        "gpu_pools": {
            "op": {"model": "a100-sxm4-80gb", "gpus_per_node": 8, "driver": {"mode": "operator"}},
            "pre": {"model": "l40s", "gpus_per_node": 4, "driver": {"mode": "preinstalled"}},
        },
    }


def plan_vars(config):
    return config_plan.validate(copy.deepcopy(config))["kubespray"]


CASES = {
    "defaults": ({}, {
        "kube_version": "1.35.4", "container_manager": "containerd", "kube_network_plugin": "calico",
        "kube_proxy_mode": "ipvs", "kube_pods_subnet": "10.233.64.0/18", "kube_service_addresses": "10.233.0.0/18",
        "cluster_name": "cluster.local", "dns_mode": "coredns", "metrics_server_enabled": True,
        "kube_oidc_auth": False}),
    "cilium-iptables": ({"network_plugin": "cilium", "kube_proxy_mode": "iptables"}, {
        "kube_network_plugin": "cilium", "kube_proxy_mode": "iptables", "kube_pods_subnet": "10.233.64.0/18"}),
    "custom-networks-and-domain": ({"pod_cidr": "172.20.0.0/16", "service_cidr": "172.21.0.0/20",
                                    "dns_domain": "gpu.example.internal", "kubernetes_version": "1.34.2",
                                    "kube_proxy_mode": "nftables"}, {
        "kube_pods_subnet": "172.20.0.0/16", "kube_service_addresses": "172.21.0.0/20",
        "cluster_name": "gpu.example.internal", "kube_version": "1.34.2", "kube_proxy_mode": "nftables"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_kubespray_vars_from_config(case):
    cluster, expected = CASES[case]
    got = plan_vars(minimal(**cluster))
    assert sorted(got) == sorted(KUBESPRAY_V2_31_0_VARS), "only Kubespray v2.31.0 names"
    for key, value in expected.items():
        assert got[key] == value, key
    assert got["kube_network_plugin"] in NETWORK_PLUGINS
    assert got["kube_proxy_mode"] in PROXY_MODES
    # the GPU Operator installs the driver and device plugin; Kubespray's legacy path stays off
    assert got["nvidia_accelerator_enabled"] is False
    assert got["kubeconfig_localhost"] is False
    assert got["helm_enabled"] is False
    # the collection installs cert-manager itself (roles/cert_manager); Kubespray's copy stays off
    assert got["cert_manager_enabled"] is False


def test_metrics_server_defaults_are_kubespray_defaults_but_on():
    got = plan_vars(minimal())
    assert got["metrics_server_enabled"] is True  # the platform needs the Metrics API (HPA, kubectl top)
    assert {key: got[key] for key in METRICS_SERVER_KUBESPRAY_DEFAULTS} == METRICS_SERVER_KUBESPRAY_DEFAULTS


def test_metrics_server_settings_passed_through():
    addons = {"metrics_server": {"enabled": True, "replicas": 2, "metric_resolution": "30s", "host_network": True}}
    got = plan_vars(minimal(addons=addons))
    assert {key: got[key] for key in ("metrics_server_enabled", "metrics_server_replicas",
                                      "metrics_server_metric_resolution", "metrics_server_host_network")} == {
        "metrics_server_enabled": True, "metrics_server_replicas": 2, "metrics_server_metric_resolution": "30s",
        "metrics_server_host_network": True}


def test_metrics_server_off():
    got = plan_vars(minimal(addons={"metrics_server": {"enabled": False}}))
    assert got["metrics_server_enabled"] is False
    assert got["metrics_server_replicas"] == 1


def test_oidc_off_by_default_sets_no_oidc_names():
    got = plan_vars(minimal())
    assert got["kube_oidc_auth"] is False
    assert not set(got) & set(KUBESPRAY_V2_31_0_OPTIONAL_VARS)


OIDC_FULL = {"issuer_url": "https://login.example.com/realms/gpu", "client_id": "kubernetes",
             "username_claim": "email", "username_prefix": "oidc:", "groups_claim": "groups",
             "groups_prefix": "oidc:", "ca_file": "/etc/kubernetes/ssl/oidc-ca.pem"}


def test_oidc_every_setting_passed_through():
    got = plan_vars(minimal(oidc=OIDC_FULL))
    assert got["kube_oidc_auth"] is True
    assert {key: got[key] for key in KUBESPRAY_V2_31_0_OPTIONAL_VARS} == {
        "kube_oidc_url": "https://login.example.com/realms/gpu", "kube_oidc_client_id": "kubernetes",
        "kube_oidc_username_claim": "email", "kube_oidc_username_prefix": "oidc:",
        "kube_oidc_groups_claim": "groups", "kube_oidc_groups_prefix": "oidc:",
        "kube_oidc_ca_file": "/etc/kubernetes/ssl/oidc-ca.pem"}
    assert set(got) == set(KUBESPRAY_V2_31_0_VARS) | set(KUBESPRAY_V2_31_0_OPTIONAL_VARS)


def test_oidc_only_given_settings_passed_through():
    # Kubespray renders an --oidc-* flag only for a defined variable: an omitted key keeps Kubernetes' default
    got = plan_vars(minimal(oidc={"issuer_url": "https://idp.example.com", "client_id": "k8s"}))
    assert got["kube_oidc_auth"] is True
    oidc_names = {key for key in got if key.startswith("kube_oidc_")}
    assert oidc_names == {"kube_oidc_auth", "kube_oidc_url", "kube_oidc_client_id"}
    assert got["kube_oidc_url"] == "https://idp.example.com"


def test_kube_version_has_no_v_prefix():
    # Kubespray v2.31.0 keys kubelet_checksums by "1.35.4", and kube_version defaults to the first key
    assert not plan_vars(minimal())["kube_version"].startswith("v")


def _gpu_node_imports_line():
    """What roles/gpu_node writes with its defaults: imports = <to_json([dropin_dir + '/*.toml'])>."""
    with open(os.path.join(ROOT, "roles/gpu_node/defaults/main.yml")) as handle:
        dropin = yaml.safe_load(handle)["gpu_node_containerd_dropin_dir"]
    with open(os.path.join(ROOT, "roles/gpu_node/vars/main.yml")) as handle:
        glob_template = yaml.safe_load(handle)["_gpu_node_import_glob"]
    pattern = glob_template.replace("{{ gpu_node_containerd_dropin_dir }}", dropin)
    return "imports = " + json.dumps([pattern])


def test_containerd_imports_line_is_gpu_nodes_line():
    # gpu_node's lineinfile (regexp ^imports\s*=) then finds its own line: a re-run after Kubespray changes nothing
    extra = plan_vars(minimal())["containerd_extra_args"]
    assert extra == _gpu_node_imports_line()
    assert re.match(r"^imports\s*=", extra)


def test_drop_in_directory_is_the_same_everywhere():
    # Kubespray's imports glob, the directory host_prep creates, the directory gpu_node writes to
    defaults = {}
    for role in ("host_prep", "gpu_node"):
        with open(os.path.join(ROOT, "roles", role, "defaults", "main.yml")) as handle:
            defaults[role] = yaml.safe_load(handle)
    assert defaults["host_prep"]["host_prep_containerd_dropin_dir"] == config_plan.CONTAINERD_DROPIN_DIR
    assert defaults["gpu_node"]["gpu_node_containerd_dropin_dir"] == config_plan.CONTAINERD_DROPIN_DIR


def test_containerd_imports_line_is_a_top_level_toml_key():
    # Kubespray v2.31.0's config.toml.j2 renders containerd_extra_args after oom_score, before [grpc]
    extra = plan_vars(minimal())["containerd_extra_args"]
    rendered = 'version = 3\nroot = "/var/lib/containerd"\noom_score = 0\n\n%s\n\n[grpc]\n  max_recv_message_size = 1\n' % extra
    doc = tomllib.loads(rendered)
    assert doc["imports"] == [config_plan.CONTAINERD_DROPIN_DIR + "/*.toml"]
    assert doc["version"] == 3


@pytest.mark.parametrize("pool,expected", [
    ({"driver": {"mode": "preinstalled"}}, True),
    ({"driver": {"mode": "operator"}}, False),
    ({}, False),
    (None, False),
])
def test_nvidia_runtime_only_with_preinstalled_driver(pool, expected):
    assert config_plan.nvidia_runtime(pool) is expected


# ----------------------------------------------------------------------------------------------
# Through the inventory plugin
# ----------------------------------------------------------------------------------------------

def inventory_of(tmp_path, config):
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(config))
    plugin = InventoryModule()
    data = InventoryData()
    plugin.parse(data, DataLoader(), str(path), cache=False)
    return data


def test_inventory_sets_kubespray_vars_on_k8s_cluster(tmp_path):
    config = minimal(network_plugin="cilium", kube_proxy_mode="iptables", dns_domain="gpu.internal")
    data = inventory_of(tmp_path, config)
    group_vars = data.groups["k8s_cluster"].get_vars()
    assert {key: group_vars[key] for key in KUBESPRAY_V2_31_0_VARS} == plan_vars(config)
    # every host of the cluster gets them through k8s_cluster
    for host in ("cp-1", "gpu-op-1", "gpu-pre-1", "cpu-1"):
        groups = {group.name for group in data.hosts[host].get_groups()}
        assert "k8s_cluster" in groups or {"kube_control_plane", "kube_node"} & groups, host


def test_inventory_sets_addon_and_oidc_vars(tmp_path):
    config = minimal(addons={"metrics_server": {"replicas": 2}}, oidc=OIDC_FULL)
    group_vars = inventory_of(tmp_path, config).groups["k8s_cluster"].get_vars()
    expected = plan_vars(config)
    assert {key: group_vars[key] for key in expected} == expected
    assert group_vars["metrics_server_enabled"] is True and group_vars["metrics_server_replicas"] == 2
    assert group_vars["kube_oidc_auth"] is True and group_vars["kube_oidc_url"] == OIDC_FULL["issuer_url"]


@pytest.mark.parametrize("cluster", [{"addons": "metrics"}, {"addons": {"metrics_server": None}}, {"oidc": "on"},
                                     {"oidc": None}])
def test_inventory_of_bad_addons_or_oidc_still_parses(tmp_path, cluster):
    # the validate play reports it; the inventory must still load so that play can run
    data = inventory_of(tmp_path, minimal(**cluster))
    assert "cp-1" in data.hosts


def test_inventory_sets_nvidia_runtime_per_host(tmp_path):
    data = inventory_of(tmp_path, minimal())
    runtime = {name: host.get_vars()["gpufleet_nvidia_runtime"] for name, host in data.hosts.items()}
    assert runtime == {"cp-1": False, "gpu-op-1": False, "gpu-pre-1": True, "cpu-1": False}


def test_inventory_of_example_config_marks_the_preinstalled_pool(tmp_path):
    with open(os.path.join(ROOT, "config.example.yml")) as handle:
        config = yaml.safe_load(handle)
    data = inventory_of(tmp_path, config)
    preinstalled = {name for name, pool in config["gpu_pools"].items() if pool.get("driver", {}).get("mode") == "preinstalled"}
    for node in config["nodes"]:
        assert data.hosts[node["name"]].get_vars()["gpufleet_nvidia_runtime"] is (node.get("pool") in preinstalled)


# ----------------------------------------------------------------------------------------------
# Against a Kubespray checkout, when there is one
# ----------------------------------------------------------------------------------------------

def kubespray_dir():
    candidates = [os.environ.get("KUBESPRAY_DIR", ""),
                  os.path.join(ROOT, ".build", "collections", "ansible_collections", "kubernetes_sigs", "kubespray")]
    for path in candidates:
        if path and os.path.isdir(os.path.join(path, "roles", "kubespray_defaults")):
            return path
    return None


def test_names_are_in_kubespray_defaults():
    path = kubespray_dir()
    if path is None:
        pytest.skip("no Kubespray checkout: set KUBESPRAY_DIR=<kubespray v2.31.0 tree> or run "
                    "`make kubespray-check KUBESPRAY_SRC=...` (installs it under .build/collections)")
    with open(os.path.join(path, "galaxy.yml")) as handle:
        version = yaml.safe_load(handle)["version"]
    defined = {}
    for name in glob.glob(os.path.join(path, "roles", "**", "defaults", "**", "*.yml"), recursive=True):
        with open(name) as handle:
            for line in handle:
                match = re.match(r"^([a-z_][a-z0-9_]*):", line)
                if match:
                    defined.setdefault(match.group(1), os.path.relpath(name, path))
    missing = sorted(set(KUBESPRAY_V2_31_0_VARS) - set(defined))
    assert not missing, "Kubespray %s at %s defines no default for %s" % (version, path, missing)
    if version == "2.31.0":
        for key, source in list(KUBESPRAY_V2_31_0_VARS.items()) + list(KUBESPRAY_V2_31_0_OPTIONAL_VARS.items()):
            name, line = source.rsplit(":", 1)
            with open(os.path.join(path, name)) as handle:
                lines = handle.read().splitlines()
            # a default (key:) or, for the optional ones, the commented example (# key:), at the line recorded
            form = r"^%s:" if key in KUBESPRAY_V2_31_0_VARS else r"^#\s*%s:"
            assert re.match(form % key, lines[int(line) - 1]), "%s: not at %s" % (key, source)


def test_oidc_names_are_rendered_by_kubespray_kubeadm_template():
    path = kubespray_dir()
    if path is None:
        pytest.skip("no Kubespray checkout: set KUBESPRAY_DIR=<kubespray v2.31.0 tree>")
    with open(os.path.join(path, "roles/kubernetes/control-plane/templates/kubeadm-config.v1beta4.yaml.j2")) as handle:
        template = handle.read()
    for name in ["kube_oidc_auth"] + sorted(KUBESPRAY_V2_31_0_OPTIONAL_VARS):
        assert re.search(r"\{\{ %s[ |]|if %s\b" % (name, name), template), name


def _oidc_block(template):
    """Kubespray's --oidc-* block of the kubeadm template: from `{% if kube_oidc_auth` to its `{% endif %}`."""
    lines = template.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("{% if kube_oidc_auth"))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("{% endif %}"))
    return "\n".join(lines[start:end + 1])


@pytest.mark.parametrize("oidc,flags", [
    (None, {}),
    ({"issuer_url": "https://idp.example.com", "client_id": "k8s"},
     {"oidc-issuer-url": "https://idp.example.com", "oidc-client-id": "k8s"}),
    (OIDC_FULL, {"oidc-issuer-url": OIDC_FULL["issuer_url"], "oidc-client-id": "kubernetes",
                 "oidc-ca-file": OIDC_FULL["ca_file"], "oidc-username-claim": "email", "oidc-groups-claim": "groups",
                 "oidc-username-prefix": "oidc:", "oidc-groups-prefix": "oidc:"}),
])
def test_kubespray_kubeadm_template_renders_the_oidc_flags(oidc, flags):
    # the plan's variables through Kubespray v2.31.0's own template block: the API server gets these flags
    jinja2 = pytest.importorskip("jinja2")
    path = kubespray_dir()
    if path is None:
        pytest.skip("no Kubespray checkout: set KUBESPRAY_DIR=<kubespray v2.31.0 tree>")
    with open(os.path.join(path, "roles/kubernetes/control-plane/templates/kubeadm-config.v1beta4.yaml.j2")) as handle:
        block = _oidc_block(handle.read())
    variables = plan_vars(minimal(**({"oidc": oidc} if oidc else {})))
    rendered = jinja2.Environment().from_string(block).render(
        dict(variables, kube_apiserver_use_authentication_config_file=False))
    args = yaml.safe_load("extraArgs:\n" + rendered) if rendered.strip() else {"extraArgs": None}
    assert {arg["name"]: arg["value"] for arg in args["extraArgs"] or []} == flags


def test_metrics_server_names_are_rendered_by_kubespray_deployment_template():
    path = kubespray_dir()
    if path is None:
        pytest.skip("no Kubespray checkout: set KUBESPRAY_DIR=<kubespray v2.31.0 tree>")
    with open(os.path.join(path, "roles/kubernetes-apps/metrics_server/templates/"
                                 "metrics-server-deployment.yaml.j2")) as handle:
        template = handle.read()
    for name in sorted(METRICS_SERVER_KUBESPRAY_DEFAULTS):
        assert re.search(r"\{\{ %s[ |]" % name, template), name
