"""ansible-playbook and ansible-inventory against config.yml, through real Ansible processes.

The "touches no host" proof: the inventory's nodes are loopback addresses with an SSH port nothing
listens on, so any contact shows up as UNREACHABLE. With a bad config the run must fail in the
validate play and never get that far; with a good config the same play does reach (and fail on) the
hosts, which shows the check is meaningful.
"""
import copy
import json
import os

import pytest
import yaml
from ansible_runs import ROOT, run


def example():
    with open(os.path.join(ROOT, "config.example.yml")) as handle:
        return yaml.safe_load(handle)


def write_config(tmp_path, config, name="config.yml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(path)


def unreachable_config():
    """config.example.yml with every node on loopback, SSH port 9 (nothing listens there). Loopback node
    addresses are allowed only on simulated nodes; the play below still contacts every host."""
    config = copy.deepcopy(example())
    for i, node in enumerate(config["nodes"]):
        node["address"] = "127.0.9.%d" % (i + 1)
        node["simulated"] = True
    config["cluster"]["ssh"] = {"user": "nobody", "port": 9, "become": False}
    return config


@pytest.mark.parametrize("inventory,extra", [
    ("config.example.yml", []),
    ("inventories/example/config.yml", []),
    ("inventories/example/classic/hosts.yml", ["-e", "gpufleet_config_file=inventories/example/config.yml"]),
])
def test_shipped_configs_validate(inventory, extra):
    result = run("ansible-playbook", "-i", inventory, *extra, "playbooks/validate.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "failed=0" in result.stdout


def test_inventory_graph_has_kubespray_and_gpu_groups():
    result = run("ansible-inventory", "-i", "config.example.yml", "--graph")
    assert result.returncode == 0, result.stderr
    graph = result.stdout
    for group in ("@k8s_cluster:", "@kube_control_plane:", "@kube_node:", "@etcd:", "@gpu_nodes:",
                  "@pool_a100:", "@pool_h100_mig:", "@pool_l40s:"):
        assert group in graph, graph
    listing = json.loads(run("ansible-inventory", "-i", "config.example.yml", "--list").stdout)
    assert sorted(listing["etcd"]["hosts"]) == ["cp-1", "cp-2", "cp-3"]
    assert sorted(listing["kube_node"]["hosts"]) == ["gpu-a100-1", "gpu-a100-2", "gpu-h100-1", "gpu-l40s-1"]
    assert listing["pool_a100"]["hosts"] == ["gpu-a100-1", "gpu-a100-2"]
    hostvars = listing["_meta"]["hostvars"]
    assert hostvars["gpu-h100-1"]["ansible_host"] == "192.0.2.31"
    assert hostvars["gpu-h100-1"]["ip"] == "192.0.2.31"
    assert hostvars["gpu-h100-1"]["ansible_user"] == "ubuntu"
    assert hostvars["gpu-h100-1"]["gpufleet_pool"] == "h100-mig"
    assert hostvars["gpu-h100-1"]["gpufleet_node"]["labels"] == {"topology.example.com/rack": "r2"}
    assert hostvars["cp-1"]["kube_version"] == "1.35.4"
    assert hostvars["cp-1"]["kube_network_plugin"] == "calico"
    assert hostvars["cp-1"]["kube_service_addresses"] == "10.233.0.0/18"


def _site_like_playbook(tmp_path):
    """validate.yml, then a play that contacts every host (as the cluster/node layers will)."""
    path = tmp_path / "site.yml"
    path.write_text(
        "- name: Validate\n"
        "  ansible.builtin.import_playbook: %s/playbooks/validate.yml\n"
        "- name: Contact every node\n"
        "  hosts: all\n"
        "  gather_facts: true\n"
        "  tasks:\n"
        "    - name: Reached a node\n"
        "      ansible.builtin.ping:\n" % ROOT)
    return str(path)


def test_bad_config_stops_before_any_host_is_contacted(tmp_path):
    config = unreachable_config()
    config["teams"][2]["quotas"]["a100"]["nvidia.com/gpu"] = 40          # quota over capacity
    config["gpu_pools"]["h100-mig"]["mig"]["layout"] = {"7g.80gb": 2}    # impossible MIG layout
    config["nodes"][0]["adress"] = "typo"                                 # unknown key
    inventory = write_config(tmp_path, config)
    result = run("ansible-playbook", "-i", inventory, _site_like_playbook(tmp_path))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "config.yml is invalid (3 problems)" in output
    assert 'teams[2].quotas.a100["nvidia.com/gpu"]' in output
    assert "gpu_pools.h100-mig.mig.layout" in output
    assert "nodes[0].adress: unknown key 'adress'; did you mean 'address'?" in output
    assert "UNREACHABLE" not in output
    assert "Contact every node" not in output
    assert "Gathering Facts" not in output


def test_good_config_does_reach_the_hosts(tmp_path):
    """Control for the test above: the same inventory, valid, gets past validation to the hosts."""
    inventory = write_config(tmp_path, unreachable_config())
    result = run("ansible-playbook", "-i", inventory, _site_like_playbook(tmp_path))
    assert result.returncode != 0
    assert "UNREACHABLE" in result.stdout


def test_undefined_vault_variable_fails(tmp_path):
    config = example()
    config["secrets"]["grafana_admin_password"] = {"var": "vault_grafana_admin_password"}
    inventory = write_config(tmp_path, config)
    result = run("ansible-playbook", "-i", inventory, "playbooks/validate.yml")
    assert result.returncode != 0
    assert "secrets.grafana_admin_password.var: names variable 'vault_grafana_admin_password', which is not " \
           "defined" in result.stdout


def test_default_password_in_vars_fails_and_is_not_printed(tmp_path):
    config = example()
    config["secrets"]["grafana_admin_password"] = {"var": "vault_grafana_admin_password"}
    inventory = write_config(tmp_path, config)
    result = run("ansible-playbook", "-i", inventory, "-e", "vault_grafana_admin_password=prom-operator",
                 "playbooks/validate.yml")
    assert result.returncode != 0
    assert "holds a well-known default password" in result.stdout
    assert "prom-operator" not in result.stdout


def test_validate_in_check_mode(tmp_path):
    result = run("ansible-playbook", "-i", "config.example.yml", "--check", "--diff", "playbooks/validate.yml")
    assert result.returncode == 0, result.stdout
    assert "changed=0" in result.stdout


def test_yaml_syntax_error_is_reported(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text("plugin: gpufleet.platform.config\ncluster: {name: x\n")
    result = run("ansible-playbook", "-i", str(path), "-e", "gpufleet_config_file=%s" % path,
                 "playbooks/validate.yml")
    assert result.returncode != 0
    output = " ".join(result.stdout.split())  # the yaml callback wraps long lines
    assert "%s is not valid YAML: line 3, column 1: while parsing a flow mapping" % path in output
