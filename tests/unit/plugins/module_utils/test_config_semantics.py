"""Impossible configs the schema cannot see, each refused with the key path, the value and what is
allowed: a model bigger than one node of its pool, an undefined or misshapen credentials variable,
a node address other nodes cannot reach, pod and service networks too small."""
import copy
import os

import pytest
import yaml

from ansible_collections.gpufleet.platform.plugins.module_utils import config_issues, config_plan, config_rules

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


@pytest.fixture(scope="module")
def example():
    with open(os.path.join(ROOT, "config.example.yml")) as handle:
        return yaml.safe_load(handle)


def _issues(config, secret_values=None):
    return [str(issue) for issue in config_rules.check(config, secret_values=secret_values)]


def _serving(example, **model):
    config = copy.deepcopy(example)
    config["services"]["kserve"]["enabled"] = True
    config["services"]["kserve"]["models"][0].update(model)
    return config


# ---------------------------------------------------------------------------------------------- one node

@pytest.mark.parametrize("model,message", [
    ({"gpus": 8, "tensor_parallel_size": 8},
     "services.kserve.models[0].gpus: a replica runs on one node and a node of pool 'l40s' has 4 GPUs "
     "(gpu_pools.l40s.gpus_per_node): ask for at most 4, or use a pool with bigger nodes (got 8)"),
    ({"gpus": 5, "tensor_parallel_size": 5},
     "services.kserve.models[0].gpus: a replica runs on one node and a node of pool 'l40s' has 4 GPUs "
     "(gpu_pools.l40s.gpus_per_node): ask for at most 4, or use a pool with bigger nodes (got 5)"),
])
def test_model_bigger_than_one_node(example, model, message):
    assert message in _issues(_serving(example, **model))


def test_tensor_parallel_alone_bigger_than_one_node(example):
    config = _serving(example, tensor_parallel_size=16)
    del config["services"]["kserve"]["models"][0]["gpus"]
    assert ("services.kserve.models[0].tensor_parallel_size: a replica runs on one node and a node of pool 'l40s' has "
            "4 GPUs (gpu_pools.l40s.gpus_per_node): ask for at most 4, or use a pool with bigger nodes (got 16)"
            ) in _issues(config)


@pytest.mark.parametrize("gpus", [1, 2, 4])
def test_model_within_one_node(example, gpus):
    config = _serving(example, gpus=gpus, tensor_parallel_size=gpus)
    assert not [i for i in _issues(config) if "one node" in i]


# ---------------------------------------------------------------------------------------------- credentials

@pytest.mark.parametrize("uri,values,message", [
    ("s3://bucket/llama", {}, "services.kserve.models[0].credentials.var: names variable 'vault_creds', which is not "
                              "defined; put it in an Ansible Vault file (ansible-vault create "
                              "group_vars/all/vault.yml)"),
    ("s3://bucket/llama", {"vault_creds": "not-a-mapping"},
     "services.kserve.models[0].credentials.var: variable 'vault_creds' must be a mapping with non-empty "
     "access_key_id and secret_access_key (optional: endpoint, region, use_https, verify_ssl)"),
    ("s3://bucket/llama", {"vault_creds": {"access_key_id": "AK", "secret_access_key": ""}},
     "services.kserve.models[0].credentials.var: variable 'vault_creds' must be a mapping with non-empty "
     "access_key_id and secret_access_key (optional: endpoint, region, use_https, verify_ssl)"),
    ("hf://org/model", {"vault_creds": "   "},
     "services.kserve.models[0].credentials.var: variable 'vault_creds' must hold a Hugging Face token (a non-empty "
     "string)"),
    ("hf://org/model", {"vault_creds": None},
     "services.kserve.models[0].credentials.var: variable 'vault_creds' must hold a Hugging Face token (a non-empty "
     "string)"),
])
def test_credential_variables_resolved(example, uri, values, message):
    config = _serving(example, storage_uri=uri, credentials={"var": "vault_creds"})
    issues = _issues(config, secret_values=values)
    assert message in issues
    assert not any("not-a-mapping" in i for i in issues)


def test_credential_variables_ok(example):
    config = _serving(example, storage_uri="s3://bucket/llama", credentials={"var": "vault_creds"})
    assert _issues(config, {"vault_creds": {"access_key_id": "AK", "secret_access_key": "SK"}}) == []
    config = _serving(example, storage_uri="hf://org/model", credentials={"var": "vault_creds"})
    assert _issues(config, {"vault_creds": "hf_token"}) == []
    assert _issues(config) == []  # without the variables (check_secrets: false) nothing is resolved


def test_credential_vars_lists_every_reference(example):
    config = _serving(example, credentials={"var": "vault_hf"})
    config["secrets"]["slurm_db_password"] = {"var": "vault_db"}
    config["secrets"]["registry_credentials"] = {"var": "bad name!"}
    assert config_rules.credential_vars(config) == ["vault_db", "vault_hf"]


# ---------------------------------------------------------------------------------------------- addresses

@pytest.mark.parametrize("address,what", [
    ("127.0.0.1", "a loopback address"), ("127.8.9.10", "a loopback address"), ("::1", "a loopback address"),
    ("0.0.0.0", "the unspecified address"), ("::", "the unspecified address"),
    ("224.0.0.5", "a multicast address"), ("ff02::1", "a multicast address"),
    ("169.254.10.20", "a link-local address"), ("fe80::1", "a link-local address"),
    ("255.255.255.255", "a reserved address (not unicast)"), ("240.0.0.1", "a reserved address (not unicast)"),
    ("::ffff:127.0.0.1", "a loopback address"),
])
def test_node_address_must_be_routable_unicast(example, address, what):
    config = copy.deepcopy(example)
    config["nodes"][3]["address"] = address
    assert ("nodes[3].address: is %s; a node needs a unicast address the other nodes can route to (loopback only "
            "on a simulated lab node) (got '%s')" % (what, address)) in _issues(config)


@pytest.mark.parametrize("address", ["192.0.2.99", "10.1.2.3", "172.16.0.9", "2001:db8::5", "fd00::7", "8.8.4.4"])
def test_node_address_accepted(example, address):
    config = copy.deepcopy(example)
    config["nodes"][3]["address"] = address
    assert _issues(config) == []


def test_loopback_only_on_simulated_nodes(example):
    config = copy.deepcopy(example)
    config["nodes"][3].update(address="127.0.10.4", simulated=True)
    assert _issues(config) == []
    config["nodes"][3]["address"] = "169.254.1.1"
    assert any(i.startswith("nodes[3].address: is a link-local address") for i in _issues(config))


# ---------------------------------------------------------------------------------------------- networks

def _with_nodes(example, count):
    config = copy.deepcopy(example)
    extra = [{"name": "w-%d" % i, "address": "192.0.2.%d" % (100 + i) if i < 150 else "198.51.100.%d" % (i - 100),
              "roles": ["worker"]} for i in range(count - len(config["nodes"]))]
    config["nodes"].extend(extra)
    return config


def test_pod_cidr_too_small_for_the_nodes(example):
    config = copy.deepcopy(example)
    config["cluster"]["pod_cidr"] = "10.233.64.0/22"   # 4 node blocks of /24, 7 nodes
    assert ("cluster.pod_cidr: has room for 4 nodes at Kubespray's per-node /24 (kube_network_node_prefix) but "
            "config.yml has 7; use a /21 or larger network (got '10.233.64.0/22')") in _issues(config)
    config["cluster"]["pod_cidr"] = "10.233.64.0/25"   # smaller than one node's block
    assert ("cluster.pod_cidr: has room for 0 nodes at Kubespray's per-node /24 (kube_network_node_prefix) but "
            "config.yml has 7; use a /21 or larger network (got '10.233.64.0/25')") in _issues(config)
    config["cluster"]["pod_cidr"] = "10.233.64.0/21"   # exactly 8 blocks
    assert _issues(config) == []


def test_pod_cidr_default_holds_64_nodes(example):
    assert not [i for i in _issues(_with_nodes(example, 64)) if "pod_cidr" in i]
    assert ("cluster.pod_cidr: has room for 64 nodes at Kubespray's per-node /24 (kube_network_node_prefix) but "
            "config.yml has 65; use a /17 or larger network (got '10.233.64.0/18')") in _issues(_with_nodes(example, 65))


def test_ipv6_pod_cidr_uses_the_ipv6_node_prefix(example):
    config = copy.deepcopy(example)
    config["cluster"].update(pod_cidr="fd85:ee78:d8a6:8607::1:0/118", service_cidr="fd85:ee78:d8a6:8607::1000/116")
    assert ("cluster.pod_cidr: has room for 4 nodes at Kubespray's per-node /120 (kube_network_node_prefix) but "
            "config.yml has 7; use a /117 or larger network (got 'fd85:ee78:d8a6:8607::1:0/118')") in _issues(config)


@pytest.mark.parametrize("cidr,message", [
    ("10.233.0.0/25", "cluster.service_cidr: has 128 addresses; the platform's Services need at least 256 (a /24) "
                      "(got '10.233.0.0/25')"),
    ("10.0.0.0/8", "cluster.service_cidr: is larger than kube-apiserver accepts (at most 2^20 addresses, a /12) "
                   "(got '10.0.0.0/8')"),
])
def test_service_cidr_size(example, cidr, message):
    config = copy.deepcopy(example)
    config["cluster"]["service_cidr"] = cidr
    assert message in _issues(config)


def test_service_cidr_bounds_accepted(example):
    for cidr in ("10.233.0.0/24", "10.96.0.0/12"):
        config = copy.deepcopy(example)
        config["cluster"].update(service_cidr=cidr, pod_cidr="10.244.0.0/16")
        assert _issues(config) == []


def test_message_lists_at_most_100_problems(example):
    config = copy.deepcopy(example)
    config["nodes"].extend({"name": "n%d" % i, "address": "192.0.2.%d" % (100 + i), "roles": ["worker"], "bad": 1}
                           for i in range(150))
    with pytest.raises(config_issues.ConfigValidationError) as info:
        config_plan.validate(config)
    lines = str(info.value).splitlines()
    assert lines[0] == "config.yml is invalid (%d problems):" % len(info.value.issues)
    assert len(lines) == 1 + 100 + 1
    assert lines[-1] == "  - ... and %d more (the first 100 are listed; fix them and validate again)" % (
        len(info.value.issues) - 100)
