"""The team_access filters: the plan in, definitions out; bad arguments become AnsibleFilterError naming the fix."""
import os

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.gpufleet.platform.plugins.filter import access as f
from ansible_collections.gpufleet.platform.plugins.module_utils import config_plan

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


@pytest.fixture()
def plan():
    with open(os.path.join(ROOT, "config.example.yml")) as handle:
        config = yaml.safe_load(handle)
    config["teams"][0]["access"]["kubeconfigs"] = True
    return config_plan.validate(config)


def test_filters_are_registered():
    assert set(f.FilterModule().filters()) == {"access_objects", "access_kubeconfig_users", "access_csr",
                                               "access_kubeconfig"}


def test_objects_users_csr_kubeconfig(plan):
    assert [o["kind"] for o in f.access_objects(plan)["namespaced"]] == ["Role", "RoleBinding", "ResourceQuota",
                                                                         "LimitRange"]
    entry = f.access_kubeconfig_users(plan)[0]
    assert entry["user"] == "alice" and entry["namespace"] == "research"
    csr = f.access_csr(entry, plan, "PEM", "30")
    assert csr["spec"]["expirationSeconds"] == 30 * 86400
    admin = {"current-context": "c", "contexts": [{"name": "c", "context": {"cluster": "k"}}],
             "clusters": [{"name": "k", "cluster": {"server": "https://k"}}]}
    assert f.access_kubeconfig(entry, admin, "", "Q0VSVA==", "KEY")["contexts"][0]["context"]["namespace"] == "research"


def test_errors(plan):
    with pytest.raises(AnsibleFilterError) as err:
        f.access_objects({"teams": []})
    assert "gpufleet_plan" in str(err.value)
    with pytest.raises(AnsibleFilterError) as err:
        f.access_csr({"user": "x"}, plan, "PEM")
    assert str(err.value) == "access_csr expects an entry of access_kubeconfig_users"
    with pytest.raises(AnsibleFilterError) as err:
        f.access_kubeconfig({"user": "x", "namespace": "n"}, "not a mapping", "", "", "")
    assert str(err.value) == "access_kubeconfig expects the admin kubeconfig as a mapping"
    with pytest.raises(AnsibleFilterError) as err:
        f.access_kubeconfig({"user": "x", "namespace": "n"}, {"contexts": []}, "lab", "", "")
    assert str(err.value) == ("cluster.kubeconfig: cannot build a user kubeconfig from it: cluster.context: context "
                              "'lab' is not in the admin kubeconfig (contexts: none)")
