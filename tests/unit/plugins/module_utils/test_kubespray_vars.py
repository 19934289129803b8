"""config.yml -> Kubespray variables (config_rules.kubespray_vars and the inventory plugin).

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
from ansible_collections.gpufleet.platform.plugins.module_utils import config_rules

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))

# Kubespray v2.31.0 variable -> file (under the Kubespray tree) that gives its default.
KUBESPRAY_V2_31_0_VARS = {
    "kube_version": "roles/kubespray_defaults/defaults/main/main.yml",
    "container_manager": "roles/kubespray_defaults/defaults/main/main.yml",
    "kube_network_plugin": "roles/kubespray_defaults/defaults/main/main.yml",
    "kube_proxy_mode": "roles/kubespray_defaults/defaults/main/main.yml",
    "kube_pods_subnet": "roles/kubespray_defaults/defaults/main/main.yml",
    "kube_service_addresses": "roles/kubespray_defaults/defaults/main/main.yml",
    "cluster_name": "roles/kubespray_defaults/defaults/main/main.yml",
    "dns_mode": "roles/kubespray_defaults/defaults/main/main.yml",
    "kubeconfig_localhost": "roles/kubespray_defaults/defaults/main/main.yml",
    "helm_enabled": "roles/kubespray_defaults/defaults/main/main.yml",
    "containerd_extra_args": "roles/container-engine/containerd/defaults/main.yml",
    "nvidia_accelerator_enabled": "roles/kubernetes-apps/container_engine_accelerator/nvidia_gpu/defaults/main.yml",
}

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
    return config_rules.validate(copy.deepcopy(config))["kubespray"]


CASES = {
    "defaults": ({}, {
        "kube_version": "1.35.4", "container_manager": "containerd", "kube_network_plugin": "calico",
        "kube_proxy_mode": "ipvs", "kube_pods_subnet": "10.233.64.0/18", "kube_service_addresses": "10.233.0.0/18",
        "cluster_name": "cluster.local", "dns_mode": "coredns"}),
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
    assert defaults["host_prep"]["host_prep_containerd_dropin_dir"] == config_rules.CONTAINERD_DROPIN_DIR
    assert defaults["gpu_node"]["gpu_node_containerd_dropin_dir"] == config_rules.CONTAINERD_DROPIN_DIR


def test_containerd_imports_line_is_a_top_level_toml_key():
    # Kubespray v2.31.0's config.toml.j2 renders containerd_extra_args after oom_score, before [grpc]
    extra = plan_vars(minimal())["containerd_extra_args"]
    rendered = 'version = 3\nroot = "/var/lib/containerd"\noom_score = 0\n\n%s\n\n[grpc]\n  max_recv_message_size = 1\n' % extra
    doc = tomllib.loads(rendered)
    assert doc["imports"] == [config_rules.CONTAINERD_DROPIN_DIR + "/*.toml"]
    assert doc["version"] == 3


@pytest.mark.parametrize("pool,expected", [
    ({"driver": {"mode": "preinstalled"}}, True),
    ({"driver": {"mode": "operator"}}, False),
    ({}, False),
    (None, False),
])
def test_nvidia_runtime_only_with_preinstalled_driver(pool, expected):
    assert config_rules.nvidia_runtime(pool) is expected


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
        for key, source in KUBESPRAY_V2_31_0_VARS.items():
            with open(os.path.join(path, source)) as handle:
                assert re.search(r"(?m)^%s:" % key, handle.read()), "%s: not in %s" % (key, source)
