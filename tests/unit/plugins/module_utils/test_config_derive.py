"""config_derive.derive: what the rules and the plan share, computed once from config.yml, and the plan built
from it alone (no rule run)."""
import copy
import ipaddress
import os

import pytest
import yaml

from ansible_collections.gpufleet.platform.plugins.module_utils import config_derive, config_plan, config_rules, config_schema

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


@pytest.fixture(scope="module")
def example():
    with open(os.path.join(ROOT, "config.example.yml")) as handle:
        return yaml.safe_load(handle)


def filled(config):
    return config_derive.apply_defaults(config_schema.SCHEMA, copy.deepcopy(config))


def test_derive_feeds_the_plan(example):
    derived = config_derive.derive(filled(example))
    plan = config_plan.validate(copy.deepcopy(example))
    for name, pool in plan["pools"].items():
        assert derived["pool_resources"][name] == pool["resources_per_node"]
        assert (derived["pool_mig"][name] or {}).get("placements") == pool["mig"]["placements"]
    assert derived["networks"]["pod_cidr"] == ipaddress.ip_network(plan["cluster"]["pod_cidr"])
    assert not derived["network_errors"] and not derived["pool_errors"] and not derived["model_errors"]


def test_plan_needs_no_rule_run(example):
    """build_plan derives on its own: the plan of a valid config is the same, but for the rules' warnings."""
    issues, warnings, _derived = config_rules.findings(copy.deepcopy(example))
    assert not issues
    assert config_plan.build_plan(copy.deepcopy(example), warnings=warnings) == config_plan.validate(example)


def test_what_cannot_be_derived_is_kept_for_the_rules(example):
    config = filled(example)
    config["cluster"]["pod_cidr"] = "10.0.0.1/8"
    pools = config["gpu_pools"]
    mig_pool = next(name for name, pool in pools.items() if config_derive.mig_enabled(pool))
    pools[mig_pool]["mig"]["layout"] = {"7g.80gb": 2}
    other = next(name for name in pools if name != mig_pool)
    pools[other]["model"] = "no-such-gpu"
    derived = config_derive.derive(config, schema_paths=["gpu_pools.%s.gpus_per_node" % other])
    assert "pod_cidr" not in derived["networks"] and derived["network_errors"]["pod_cidr"][0] == "10.0.0.1/8"
    assert derived["pool_errors"][mig_pool][0] == "mig.layout" and mig_pool not in derived["pool_resources"]
    assert other in derived["model_errors"] and other not in derived["pool_resources"]
    issues = [str(i) for i in config_rules.run_rules(config, derived)[0]]
    assert any(i.startswith("gpu_pools.%s.mig.layout: " % mig_pool) for i in issues)
    assert any(i.startswith("cluster.pod_cidr: must be a network in CIDR notation") for i in issues)
