"""Contract: every Helm value the slurm role sets exists in the upstream Slinky 1.2.1 charts' values files.

The role computes the values with the slurm_values / slurm_operator_values filters (module_utils/slurm.py);
this test computes them the same way for the shipped configs with Slurm on (and a variant with every
option: accounting, prolog/epilog, login keys, air gap) and walks every key path against the upstream
``helm/slurm/values.yaml`` and ``helm/slurm-operator/values.yaml`` ($GPUFLEET_SHARED/upstream). Entries of
the chart's maps of named objects are checked against their defaults object (``nodesets.<name>`` against
``nodesetDefaults``, ``loginsets.<name>`` against ``loginsetDefaults``, ``partitions.<name>`` against the
chart's example partition ``partitions.all``). Below a key the upstream file documents as a free-form map
(``map[string]string``, ``corev1.PodSpec`` fields, resource limits) only the key itself is checked. Skipped
when that directory is absent.
"""
import copy
import os

import pytest
import yaml

from ansible_collections.gpufleet.platform.plugins.module_utils import config_plan, slurm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SHARED = os.environ.get("GPUFLEET_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
VALUES = os.path.join(SHARED, "upstream", "slurm-operator", "v1.2.1", "values")
ROLE = os.path.join(ROOT, "roles", "slurm")
# Maps of named objects -> the upstream object their entries follow.
NAMED = {"nodesets": ("nodesetDefaults",), "loginsets": ("loginsetDefaults",), "partitions": ("partitions", "all")}
# Documented free-form maps (upstream comments: "(map[string]string)", "(map[string]string | map[string][]string)",
# "(corev1.PodSpec)" fields, container resources): their keys are the user's.
FREE_FORM = {
    "configFiles", "prologScripts", "epilogScripts", "controller.extraConfMap", "nodesetDefaults.extraConfMap",
    "nodesetDefaults.podSpec.nodeSelector", "nodesetDefaults.podSpec.tolerations", "nodesetDefaults.slurmd.resources",
    "partitions.all.configMap", "partitions.all.nodesets",
}
# Keys the upstream file types in a comment as a Kubernetes reference with an empty default
# ("(secretKeyRef) Reference to the secret." with `secretRef: {}`): the reference's fields.
TYPED = {"slurmKey.secretRef": {"name", "key"}, "jwtKey.secretRef": {"name", "key"}}


def _load(path):
    with open(path) as fh:
        return yaml.safe_load(fh)


def _defaults():
    return _load(os.path.join(ROLE, "defaults", "main.yml"))


def upstream_path(path):
    if path and path[0] in NAMED and len(path) > 1:
        return NAMED[path[0]] + tuple(path[2:])
    return tuple(path)


def paths(tree, prefix=()):
    for key, value in tree.items():
        path = prefix + (key,)
        if isinstance(value, dict) and value and ".".join(upstream_path(path)) not in FREE_FORM | set(TYPED):
            yield from paths(value, path)
        else:
            yield path


def missing_keys(values, upstream):
    missing = []
    for key_path in paths(values):
        typed = TYPED.get(".".join(upstream_path(key_path)))
        if typed is not None:
            value = values
            for part in key_path:
                value = value[part]
            if not isinstance(value, dict) or set(value) - typed:
                missing.append(".".join(key_path))
            continue
        node = upstream
        for part in upstream_path(key_path):
            if not isinstance(node, dict) or part not in node:
                missing.append(".".join(key_path))
                break
            node = node[part]
    return missing


def _config(path, everything=False):
    config = _load(os.path.join(ROOT, path))
    config["services"].setdefault("cert_manager", {})["enabled"] = True
    slurm_conf = config["services"].setdefault("slurm", {})
    slurm_conf["enabled"] = True
    mig_pool = next(n for n, p in config["gpu_pools"].items() if p.get("mig", {}).get("layout") not in
                    (None, "all-disabled"))
    # the node sets in the shipped configs share pools with team quotas: use whole pools, no team quotas
    for team in config.get("teams", []):
        team["quotas"] = {}
    slurm_conf["nodesets"] = [{"name": "full", "pool": "a100", "replicas": 1, "gres": {"gpu": 8}},
                              {"name": "slices", "pool": mig_pool, "replicas": 1}]
    slurm_conf["partitions"] = [{"name": "gpu", "nodesets": ["full"], "default": True, "max_time": "1-00:00:00"},
                                {"name": "mig", "nodesets": ["slices"]}]
    if everything:
        slurm_conf["login_ssh_keys"] = ["ssh-ed25519 AAAAexample alice@example"]
        slurm_conf["accounting"] = {"enabled": True, "database_host": "db.example", "database_port": 3306,
                                    "database_name": "slurm_acct"}
        slurm_conf["prolog_scripts"] = {"10-a.sh": "#!/bin/sh\nexit 0\n"}
        slurm_conf["epilog_scripts"] = {"90-b.sh": "#!/bin/sh\nexit 0\n"}
        config["secrets"]["slurm_db_password"] = {"var": "vault_slurm_db_password"}
        config["services"]["monitoring"]["enabled"] = True
        config["airgap"] = {"enabled": True, "chart_mirror": {"type": "local", "location": "/srv/charts"},
                            "image_registry": "registry.example/mirror"}
    return config


def render(config):
    plan = config_plan.validate(copy.deepcopy(config))
    defaults = _defaults()
    values = slurm.slurm_values(plan, defaults["slurm_auth_secret"], defaults["slurm_jwt_secret"],
                                defaults["slurm_db_secret"], defaults["slurm_gres_conf"],
                                defaults["slurm_login_replicas"], defaults["slurm_dcgm_job_mapping"])
    return values, slurm.operator_values(plan)


CASES = [("config.example.yml", False), ("inventories/lab/config.yml", False), ("config.example.yml", True)]


@pytest.fixture(scope="module")
def upstream():
    if not os.path.isdir(VALUES):
        pytest.skip("upstream values files not found (%s): ../shared is absent" % VALUES)
    return {name: _load(os.path.join(VALUES, "%s.values.yaml" % name)) for name in ("slurm", "slurm-operator")}


@pytest.mark.parametrize("path,everything", CASES, ids=["example", "lab", "example-every-option"])
def test_every_value_key_exists_upstream(upstream, path, everything):
    values, operator = render(_config(path, everything))
    missing = missing_keys(values, upstream["slurm"])
    assert not missing, "slurm chart values the role sets that upstream 1.2.1 does not have: %s" % missing
    missing = missing_keys(operator, upstream["slurm-operator"])
    assert not missing, "slurm-operator values the role sets that upstream 1.2.1 does not have: %s" % missing


def test_every_option_reaches_the_values(upstream):
    values, operator = render(_config("config.example.yml", True))
    for key in ("accounting", "loginsets", "vendor", "prologScripts", "epilogScripts", "configFiles"):
        assert values[key], key
    assert values["nodesetDefaults"]["slurmd"]["image"]["repository"].startswith("registry.example/mirror/")
    assert operator["crds"] == {"enabled": False}  # CRDs come from the slurm-operator-crds release


def test_the_walk_catches_a_typo(upstream):
    values, _unused = render(_config("config.example.yml"))
    values["nodesets"]["full"]["podspec"] = {}
    values["partitions"]["gpu"]["configmap"] = {}
    assert missing_keys(values, upstream["slurm"]) == ["nodesets.full.podspec", "partitions.gpu.configmap"]


def test_auth_and_jwt_keys_point_at_existing_secrets(upstream):
    values, _unused = render(_config("config.example.yml"))
    # upstream defaults create the keys in the chart (regenerated by a reinstall): the role turns that off
    assert upstream["slurm"]["slurmKey"]["create"] is True and upstream["slurm"]["jwtKey"]["create"] is True
    assert values["slurmKey"] == {"create": False, "secretRef": {"name": "slurm-auth-slurm", "key": "slurm.key"}}
    assert values["jwtKey"] == {"create": False, "secretRef": {"name": "slurm-auth-jwt", "key": "jwt.key"}}
