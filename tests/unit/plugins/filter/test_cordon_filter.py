"""Cordons the collection owns: cordon only schedulable nodes (marking them), uncordon only marked ones."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.gpufleet.platform.plugins.filter import cordon as c


def node(name, unschedulable=False, owner=None):
    meta = {"name": name}
    if owner:
        meta["annotations"] = {c.CORDONED_BY: owner, c.CORDON_REASON: "earlier run"}
    return {"metadata": meta, "spec": {"unschedulable": True} if unschedulable else {}}


NODES = [node("free"), node("ours", True, "mig"), node("theirs", True), node("removing", True, "remove_node"),
         node("uncordoned-by-hand", False, "mig")]


def test_cordon_only_schedulable_nodes_and_mark_them():
    patches = c.cordon_patches(NODES, ["theirs", "free", "ours", "absent", "free"], "mig", "MIG layout change")
    marks = {c.CORDONED_BY: "mig", c.CORDON_REASON: "MIG layout change"}
    assert patches == [{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "free", "annotations": marks},
                        "spec": {"unschedulable": True}}]


def test_cordoned_by_owner():
    assert c.cordoned_by(NODES, "mig") == ["ours", "uncordoned-by-hand"]
    assert c.cordoned_by(NODES, "remove_node") == ["removing"]
    assert c.cordoned_by([], "mig") == []


def test_uncordon_only_nodes_of_the_owner():
    patches = c.uncordon_patches(NODES, "mig")
    assert [p["metadata"]["name"] for p in patches] == ["ours", "uncordoned-by-hand"]
    assert patches[0] == {"apiVersion": "v1", "kind": "Node",
                          "metadata": {"name": "ours", "annotations": {c.CORDONED_BY: None, c.CORDON_REASON: None}},
                          "spec": {"unschedulable": None}}


@pytest.mark.parametrize("only,expected", [([], []), (["ours"], ["ours"]), (["theirs", "free"], []),
                                           (["ours", "removing"], ["ours"])])
def test_uncordon_only_where_the_target_is_reached(only, expected):
    assert [p["metadata"]["name"] for p in c.uncordon_patches(NODES, "mig", only)] == expected


def test_never_uncordons_a_node_somebody_else_cordoned():
    for owner in ("mig", "remove_node"):
        names = [p["metadata"]["name"] for p in c.uncordon_patches(NODES, owner)]
        assert "theirs" not in names and "free" not in names


@pytest.mark.parametrize("owner", ["", None, 3])
def test_owner_is_required(owner):
    with pytest.raises(AnsibleFilterError, match="the cordon owner must be a non-empty string"):
        c.cordon_patches(NODES, ["free"], owner)


def pod(name, node, owner=None, phase="Running", mirror=False):
    meta = {"name": name, "namespace": "ns"}
    if owner:
        meta["ownerReferences"] = [{"kind": owner, "name": "x"}]
    if mirror:
        meta["annotations"] = {"kubernetes.io/config.mirror": "abc"}
    return {"metadata": meta, "spec": {"nodeName": node}, "status": {"phase": phase}}


def test_drain_evictions_leave_daemonset_mirror_and_finished_pods():
    pods = [pod("ds", "a", "DaemonSet"), pod("rs", "a", "ReplicaSet"), pod("bare", "a"), pod("done", "a", phase="Succeeded"),
            pod("static", "a", mirror=True), pod("other", "b", "ReplicaSet"), pod("only-ds", "c", "DaemonSet")]
    assert c.drain_evictions(pods, ["a", "c"]) == {"a": ["ns/bare", "ns/rs"]}
    assert c.drain_evictions(pods, []) == {}


def test_undefined_owner_is_an_undefined_variable_error():
    from jinja2 import StrictUndefined
    from jinja2.exceptions import UndefinedError
    with pytest.raises(UndefinedError):
        c.cordoned_by(NODES, StrictUndefined(name="_mig_cordon_owner"))


def _upgraded(name, version="v1.35.4", ready="True", allocatable=None):
    return {"metadata": {"name": name},
            "status": {"nodeInfo": {"kubeletVersion": version}, "conditions": [{"type": "Ready", "status": ready}],
                       "allocatable": allocatable or {}}}


def test_upgrade_done_needs_ready_version_and_the_planned_resources():
    nodes = [_upgraded("a", allocatable={"nvidia.com/gpu": "8"}),
             _upgraded("b", allocatable={"nvidia.com/gpu": "4"}),            # device plugin not back in full
             _upgraded("c", version="v1.34.9", allocatable={"nvidia.com/gpu": "8"}),  # not upgraded yet
             _upgraded("d", ready="Unknown", allocatable={"nvidia.com/gpu": "8"}),
             _upgraded("e", allocatable={"nvidia.com/mig-1g.10gb": "7"}),
             _upgraded("f")]                                                 # no plan: needs no resource
    plan = {n: {"nvidia.com/gpu": 8} for n in "abcd"}
    plan["e"] = {"nvidia.com/mig-1g.10gb": 7}
    assert c.upgrade_done(nodes, list("abcdefz"), "1.35.4", plan) == ["a", "e", "f"]
    assert c.upgrade_done(nodes, ["a", "c"], "v1.34.9", plan) == ["c"]
    assert c.upgrade_done(nodes, ["b"], "1.35.4") == ["b"]


@pytest.mark.parametrize("version", ["", "  ", None, 1.35])
def test_upgrade_done_needs_a_version(version):
    with pytest.raises(AnsibleFilterError, match="target version"):
        c.upgrade_done([], [], version)


def test_upgrade_done_resources_must_be_a_mapping():
    with pytest.raises(AnsibleFilterError, match="resources must be a mapping"):
        c.upgrade_done([], [], "1.35.4", ["nvidia.com/gpu"])
