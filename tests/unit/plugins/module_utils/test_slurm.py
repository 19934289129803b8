"""Slurm values from the plan (module_utils/slurm.py, filters/slurm.py): GRES lines, node sets, partitions.

Plans come from the shipped config.example.yml through the real validation (config_plan.validate), with
Slurm turned on in the shapes the README documents: full H100s and A100 MIG slices.
"""
import copy
import os

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.gpufleet.platform.plugins.filter import slurm as slurm_filter
from ansible_collections.gpufleet.platform.plugins.module_utils import config_plan, slurm
from ansible_collections.gpufleet.platform.plugins.module_utils.config_issues import ConfigValidationError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGpufleetexamplekeyexamplekeyexamplekey alice@example"


def _example():
    with open(os.path.join(ROOT, "config.example.yml")) as fh:
        return yaml.safe_load(fh)


def _config(**slurm_keys):
    """The example with an H100 (full GPUs) pool for Slurm only, the MIG pool split with Kueue."""
    config = _example()
    config["nodes"].append({"name": "gpu-h100-full-1", "address": "192.0.2.141", "roles": ["worker"],
                            "pool": "h100"})
    config["nodes"].append({"name": "gpu-h100-full-2", "address": "192.0.2.142", "roles": ["worker"],
                            "pool": "h100"})
    config["gpu_pools"]["h100"] = {"model": "h100-sxm5-80gb", "gpus_per_node": 8, "driver": {"mode": "operator"},
                                   "mig": {"strategy": "mixed", "layout": "all-disabled"},
                                   "taints": [{"key": "dedicated", "value": "slurm", "effect": "NoSchedule"}]}
    # inference keeps 8 x 2g.20gb, research 6 x 3g.40gb + 8 x 1g.10gb, interns 8 x 1g.10gb: Slurm takes the rest
    config["services"]["slurm"].update({
        "enabled": True,
        "nodesets": [
            {"name": "h100", "pool": "h100", "gres": {"gpu": 8}},
            {"name": "mig", "pool": "h100-mig", "replicas": 1, "shared_with_queues": True,
             "gres": {"3g.40gb": 2, "1g.10gb": 0}},
        ],
        "partitions": [
            {"name": "gpu", "nodesets": ["h100"], "default": True, "max_time": "2-00:00:00"},
            {"name": "slices", "nodesets": ["mig"]},
        ],
        "login_ssh_keys": [KEY],
    })
    config["services"]["slurm"].update(slurm_keys)
    return config


def _plan(config):
    return config_plan.validate(copy.deepcopy(config))


@pytest.fixture(scope="module")
def plan():
    return _plan(_config())


@pytest.mark.parametrize("resources,lines", [
    ({"nvidia.com/gpu": 8}, ["gpu:8"]),
    ({"nvidia.com/mig-3g.40gb": 1, "nvidia.com/mig-1g.10gb": 2}, ["gpu:1g.10gb:2", "gpu:3g.40gb:1"]),
    ({}, []),
    ({"cpu": 4}, []),
])
def test_gres_lines(resources, lines):
    assert slurm.gres_lines(resources) == lines


@pytest.mark.parametrize("key,resource", [("gpu", "nvidia.com/gpu"), ("1g.10gb", "nvidia.com/mig-1g.10gb")])
def test_gres_resource(key, resource):
    assert slurm.gres_resource(key) == resource


def test_full_gpu_nodeset(plan):
    values = slurm.nodeset_values(plan, plan["services"]["slurm"]["nodesets"][0], 0)
    assert values == {
        "enabled": True,
        "replicas": 2,  # no replicas: one slurmd per node of the pool
        "slurmd": {"resources": {"limits": {"nvidia.com/gpu": 8}}},
        "extraConfMap": {"Gres": ["gpu:8"], "Features": ["h100"]},
        "podSpec": {"nodeSelector": {"gpufleet.io/pool": "h100"},
                    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "slurm",
                                     "effect": "NoSchedule"}]},
    }


def test_mig_nodeset_counts_come_from_the_layout(plan):
    values = slurm.nodeset_values(plan, plan["services"]["slurm"]["nodesets"][1], 1)
    # zero counts are dropped; the MIG pool's taint value "present" is tolerated
    assert values["slurmd"]["resources"]["limits"] == {"nvidia.com/mig-3g.40gb": 2}
    assert values["extraConfMap"]["Gres"] == ["gpu:3g.40gb:2"]
    assert values["podSpec"]["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "present",
                                                 "effect": "NoSchedule"}]
    assert values["replicas"] == 1


def test_nodeset_without_gres_takes_what_the_pool_exposes(plan):
    nodeset = {"name": "all", "pool": "h100-mig"}
    assert slurm.gres_resources(plan, nodeset) == plan["pools"]["h100-mig"]["resources_per_node"]
    assert slurm.gres_lines(slurm.gres_resources(plan, nodeset)) == [
        "gpu:1g.10gb:16", "gpu:2g.20gb:8", "gpu:3g.40gb:8"]


@pytest.mark.parametrize("nodeset,fragment", [
    ({"name": "x", "pool": "v100"}, "services.slurm.nodesets[0].pool: no such GPU pool 'v100'"),
    ({"name": "x", "pool": "h100", "gres": {"gpu": 9}}, "services.slurm.nodesets[0].gres.gpu: 9 is more than"),
    ({"name": "x", "pool": "h100-mig", "gres": {"7g.80gb": 1}},
     "services.slurm.nodesets[0].gres.7g.80gb: pool 'h100-mig' does not provide nvidia.com/mig-7g.80gb"),
    ({"name": "x", "pool": "h100-mig", "gres": {"gpu": 1}}, "does not provide nvidia.com/gpu"),
    ({"name": "x", "pool": "h100-mig", "gres": {"1g.10gb": 17}}, "(16 nvidia.com/mig-1g.10gb)"),
])
def test_gres_that_do_not_fit_are_refused(plan, nodeset, fragment):
    with pytest.raises(slurm.SlurmError) as info:
        slurm.gres_resources(plan, nodeset)
    assert fragment in str(info.value)
    broken = copy.deepcopy(plan)
    broken["services"]["slurm"]["nodesets"] = [nodeset]
    assert any(fragment in p for p in slurm.problems(broken))
    with pytest.raises(AnsibleFilterError, match="services.slurm.nodesets"):
        slurm_filter.slurm_values(broken, "a", "j")


def test_partitions():
    assert slurm.partition_values({"name": "gpu", "nodesets": ["h100"], "default": True, "max_time": "1:00:00"}) == {
        "enabled": True, "nodesets": ["h100"], "configMap": {"Default": "YES", "MaxTime": "1:00:00", "State": "UP"}}
    assert slurm.partition_values({"name": "s", "nodesets": ["a", "b"]})["configMap"] == {
        "Default": "NO", "MaxTime": "UNLIMITED", "State": "UP"}


def test_cluster_values(plan):
    values = slurm.slurm_values(plan, "slurm-auth-slurm", "slurm-auth-jwt")
    assert values["clusterName"] == "slurm"
    assert values["slurmKey"] == {"create": False, "secretRef": {"name": "slurm-auth-slurm", "key": "slurm.key"}}
    assert values["jwtKey"] == {"create": False, "secretRef": {"name": "slurm-auth-jwt", "key": "jwt.key"}}
    # monitoring is on in the example: slurmctld's metrics, and slurm-operator's ServiceMonitor for them
    assert values["controller"] == {"extraConfMap": {"GresTypes": ["gpu"]},
                                    "persistence": {"enabled": True, "resources": {"requests": {"storage": "4Gi"}}},
                                    "metrics": {"enabled": True, "serviceMonitor": {"enabled": True}}}
    assert sorted(values["nodesets"]) == ["h100", "mig"]
    assert sorted(values["partitions"]) == ["gpu", "slices"]
    assert values["partitions"]["gpu"]["configMap"]["Default"] == "YES"
    # a MIG node set: NVML autodetection (AutoDetect=nvidia does not see MIG devices)
    assert values["configFiles"] == {"gres.conf": "AutoDetect=nvml\n"}
    assert values["loginsets"] == {"login": {"enabled": True, "replicas": 1, "rootSshAuthorizedKeys": KEY + "\n"}}
    # monitoring and the DCGM exporter are on in the example
    assert values["vendor"] == {"nvidia": {"dcgm": {"enabled": True,
                                                    "jobMappingDir": "/var/lib/dcgm-exporter/job-mapping"}}}
    assert "accounting" not in values and values["prologScripts"] == {} and values["epilogScripts"] == {}
    assert "image" not in values["controller"]  # no air gap in the example


def test_full_gpus_only_use_nvidia_autodetect_and_options():
    config = _config(nodesets=[{"name": "h100", "pool": "h100", "gres": {"gpu": 4}}],
                     partitions=[{"name": "gpu", "nodesets": ["h100"], "default": True}], login_ssh_keys=[])
    config["services"]["monitoring"]["enabled"] = False
    values = slurm.slurm_values(_plan(config), "a", "j")
    assert values["configFiles"] == {"gres.conf": "AutoDetect=nvidia\n"}
    assert "vendor" not in values and "loginsets" not in values
    assert "metrics" not in values["controller"]  # no Prometheus to scrape them
    assert slurm.slurm_values(_plan(config), "a", "j", gres_conf="AutoDetect=off")["configFiles"] == {
        "gres.conf": "AutoDetect=off\n"}
    assert "vendor" not in slurm.slurm_values(_plan(_config()), "a", "j", dcgm=False)


def test_accounting_prolog_epilog():
    prolog = {"10-gpu-check.sh": "#!/bin/sh\nnvidia-smi -L\n"}
    config = _config(accounting={"enabled": True, "database_host": "db.example", "database_port": 3307},
                     prolog_scripts=prolog, epilog_scripts={"90-clean.sh": "#!/bin/sh\nexit 0\n"})
    config["secrets"]["slurm_db_password"] = {"var": "vault_slurm_db_password"}
    plan = _plan(config)
    with pytest.raises(slurm.SlurmError, match="secrets.slurm_db_password"):
        slurm.slurm_values(plan, "a", "j")
    values = slurm.slurm_values(plan, "a", "j", db_secret="slurm-accounting-db")
    assert values["accounting"] == {"enabled": True, "storageConfig": {
        "host": "db.example", "username": "slurm", "port": 3307,
        "passwordKeyRef": {"name": "slurm-accounting-db", "key": "password"}}}
    assert values["controller"]["extraConfMap"]["AccountingStorageTRES"] == ["gres/gpu", "gres/gpu:3g.40gb"]
    assert values["prologScripts"] == prolog
    assert values["epilogScripts"] == {"90-clean.sh": "#!/bin/sh\nexit 0\n"}


def test_air_gap_images():
    config = _config()
    config["airgap"] = {"enabled": True, "chart_mirror": {"type": "local", "location": "/srv/charts"},
                        "image_registry": "registry.example:5000/mirror"}
    plan = _plan(config)
    values = slurm.slurm_values(plan, "a", "j")
    assert values["controller"]["slurmctld"]["image"] == {
        "repository": "registry.example:5000/mirror/slinkyproject/slurmctld"}
    assert values["nodesetDefaults"]["logfile"]["image"] == {"repository": "registry.example:5000/mirror/library/alpine"}
    assert slurm.operator_values(plan) == {
        "crds": {"enabled": False}, "certManager": {"enabled": True},
        "operator": {"image": {"repository": "registry.example:5000/mirror/slinkyproject/slurm-operator"}},
        "webhook": {"image": {"repository": "registry.example:5000/mirror/slinkyproject/slurm-operator-webhook"}}}


def test_gpu_share(plan):
    assert slurm.gpu_share(plan) == {"h100": {"nvidia.com/gpu": 16}, "h100-mig": {"nvidia.com/mig-3g.40gb": 2}}


def test_split_pool_accepted_when_it_fits():
    # research holds 6 x 3g.40gb of 8: Slurm may take 2, not 3
    _plan(_config())
    config = _config()
    config["services"]["slurm"]["nodesets"][1]["gres"] = {"3g.40gb": 3}
    with pytest.raises(ConfigValidationError, match=r"services.slurm.nodesets\[1\].shared_with_queues"):
        _plan(config)
    config["scheduling"]["allow_overcommit"] = True
    _plan(config)


def test_filter_needs_the_plan():
    with pytest.raises(AnsibleFilterError, match="gpufleet_plan"):
        slurm_filter.slurm_values({}, "a", "j")
    assert slurm_filter.slurm_problems(_plan(_config())) == []


def test_controller_storage_off_or_on_a_class():
    off = slurm.slurm_values(_plan(_config(controller_storage={"enabled": False})), "auth", "jwt")
    assert off["controller"]["persistence"] == {"enabled": False}
    fast = slurm.slurm_values(_plan(_config(controller_storage={"storage_class": "fast", "size": "10Gi"})),
                              "auth", "jwt")
    assert fast["controller"]["persistence"] == {"enabled": True, "storageClassName": "fast",
                                                 "resources": {"requests": {"storage": "10Gi"}}}
