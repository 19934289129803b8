"""Pruning safely (roles/apply_prune, issue 15 item 5) against the lab's real API server, Kueue and Volcano.

A team removed from config: check mode lists its deletions and deletes nothing; `services.<name>.prune: false`
keeps its objects; the guard refuses more than gpufleet_prune_max deletions and a namespace that still has pods,
changing nothing, and `-e gpufleet_allow_prune=true` lets it through; the next run reports changed=0.
"""
import copy
import uuid

import pytest
import yaml

from playbook import LAB_CONFIG, ansible_playbook

KUEUE = ("kueue.x-k8s.io", "v1beta2")
VOLCANO = ("scheduling.volcano.sh", "v1beta1")
CONFIGURE = ("--tags", "kueue_preflight,kueue_configure,volcano_preflight,volcano_configure")


def _write(tmp, config, name):
    path = tmp / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def pruning(lab, tmp_path_factory):
    suffix = uuid.uuid4().hex[:4]
    with open(LAB_CONFIG) as handle:
        config = yaml.safe_load(handle)
    cluster = "prune-%s" % suffix
    config["cluster"]["name"] = cluster
    keep, gone = "p%s-keep" % suffix, "p%s-gone" % suffix
    config["scheduling"] = {"cohort": cluster}
    config["teams"] = [
        {"name": keep, "quotas": {"a100": {"nvidia.com/gpu": 4}}},
        {"name": gone, "priority": 10, "delete_namespace_on_removal": True,
         "quotas": {"a100": {"nvidia.com/gpu": 4}}},
    ]
    config["services"] = {
        "cert_manager": {"enabled": False}, "gpu_operator": {"enabled": True}, "monitoring": {"enabled": False},
        "kueue": {"enabled": True}, "volcano": {"enabled": True},
    }
    tmp = tmp_path_factory.mktemp("prune")
    full = _write(tmp, config, "two-teams.yml")
    one = copy.deepcopy(config)
    one["teams"] = one["teams"][:1]
    kept = copy.deepcopy(one)
    kept["services"]["kueue"]["prune"] = False
    kept["services"]["volcano"]["prune"] = False
    state = {"cluster": cluster, "keep": keep, "gone": gone, "full": full, "one": _write(tmp, one, "one-team.yml"),
             "kept": _write(tmp, kept, "one-team-kept.yml")}
    converged = ansible_playbook("playbooks/scheduling.yml", config=full)
    assert converged.rc == 0, converged
    yield state
    _cleanup(lab, cluster, gone)


def _cleanup(lab, cluster, gone):
    selector = "app.kubernetes.io/managed-by=gpufleet,gpufleet.io/cluster=%s" % cluster
    for obj in lab.custom.list_cluster_custom_object(*KUEUE, "localqueues", label_selector=selector)["items"]:
        lab.custom.delete_namespaced_custom_object(*KUEUE, obj["metadata"]["namespace"], "localqueues",
                                                   obj["metadata"]["name"])
    for group, version, plural in ((*KUEUE, "clusterqueues"), (*KUEUE, "workloadpriorityclasses"),
                                   (*KUEUE, "resourceflavors"), (*VOLCANO, "queues")):
        for obj in lab.custom.list_cluster_custom_object(group, version, plural, label_selector=selector)["items"]:
            lab.custom.delete_cluster_custom_object(group, version, plural, obj["metadata"]["name"])
    for ns in lab.core.list_namespace(label_selector=selector).items:
        lab.core.delete_namespace(ns.metadata.name)


def _held(lab, pruning):
    """What the lab holds of the removed team: its ClusterQueue, LocalQueue, priority class, Volcano Queue and
    namespace (not Terminating)."""
    gone, selector = pruning["gone"], "gpufleet.io/cluster=%s" % pruning["cluster"]

    def names(group, version, plural):
        return {o["metadata"]["name"] for o in lab.custom.list_cluster_custom_object(
            group, version, plural, label_selector=selector)["items"]}
    held = set()
    if gone in names(*KUEUE, "clusterqueues"):
        held.add("ClusterQueue")
    if gone in names(*KUEUE, "workloadpriorityclasses"):
        held.add("WorkloadPriorityClass")
    if gone in names(*VOLCANO, "queues"):
        held.add("Queue")
    if any(o["metadata"]["namespace"] == gone for o in lab.custom.list_cluster_custom_object(
            *KUEUE, "localqueues", label_selector=selector)["items"]):
        held.add("LocalQueue")
    ns = lab.core.list_namespace(field_selector="metadata.name=%s" % gone).items
    if ns and ns[0].status.phase != "Terminating":
        held.add("Namespace")
    return held


def _flat(result):
    """The output with YAML's line folding undone (a long message is wrapped at 80 columns)."""
    return " ".join(result.stdout.replace("'", " ").split())


EVERYTHING = {"ClusterQueue", "WorkloadPriorityClass", "Queue", "LocalQueue", "Namespace"}


def test_check_mode_lists_the_deletions_and_deletes_nothing(lab, pruning):
    gone = pruning["gone"]
    check = ansible_playbook("playbooks/scheduling.yml", *CONFIGURE, config=pruning["one"], check=True, diff=True)
    assert check.rc == 0, check
    assert check.changed > 0
    for line in ("LocalQueue %s/default" % gone, "ClusterQueue %s" % gone, "WorkloadPriorityClass %s" % gone,
                 "Namespace %s" % gone, "Queue %s" % gone):
        assert "- would delete %s\n" % line in check.stdout, check
    assert "ClusterQueue %s (deleted)" % gone in check.stdout  # --diff shows each deletion
    assert _held(lab, pruning) == EVERYTHING


def test_prune_false_keeps_the_objects(lab, pruning):
    kept = ansible_playbook("playbooks/scheduling.yml", *CONFIGURE, config=pruning["kept"])
    assert kept.rc == 0, kept
    assert kept.changed == 0, kept.changed_tasks()
    assert "would delete" not in kept.stdout and "- deleted" not in kept.stdout
    assert _held(lab, pruning) == EVERYTHING


def test_the_guard_refuses_over_the_limit_and_changes_nothing(lab, pruning):
    gone = pruning["gone"]
    refused = ansible_playbook("playbooks/scheduling.yml", *CONFIGURE, config=pruning["one"],
                               extra_vars={"gpufleet_prune_max": 2})
    assert refused.rc != 0
    assert ("kueue: refusing to prune: 4 objects are no longer declared, more than gpufleet_prune_max (2). It would "
            "delete: LocalQueue %s/default; ClusterQueue %s; WorkloadPriorityClass %s; Namespace %s. Nothing was "
            "changed. To delete them, run again with -e gpufleet_allow_prune=true; to keep them, set "
            "services.kueue.prune: false." % (gone, gone, gone, gone)) in _flat(refused), refused
    assert refused.changed == 0, refused.changed_tasks()
    assert _held(lab, pruning) == EVERYTHING
    # and check mode predicts the refusal
    check = ansible_playbook("playbooks/scheduling.yml", *CONFIGURE, config=pruning["one"], check=True,
                             extra_vars={"gpufleet_prune_max": 2})
    assert check.rc != 0 and "refusing to prune" in check.stdout


def test_the_guard_refuses_a_namespace_with_pods_until_allowed(lab, pruning):
    gone = pruning["gone"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "still-running"},
           "spec": {"containers": [{"name": "main", "image": "registry.invalid/sleep:0"}]}}
    lab.core.create_namespaced_pod(gone, pod)
    refused = ansible_playbook("playbooks/scheduling.yml", *CONFIGURE, config=pruning["one"])
    assert refused.rc != 0
    assert "kueue: refusing to prune: namespace %s still has 1 pod (still-running). It would delete: " % gone \
        in _flat(refused), refused
    assert refused.changed == 0, refused.changed_tasks()
    assert _held(lab, pruning) == EVERYTHING

    allowed = ansible_playbook("playbooks/scheduling.yml", *CONFIGURE, config=pruning["one"],
                               extra_vars={"gpufleet_allow_prune": "true"})
    assert allowed.rc == 0, allowed
    for line in ("LocalQueue %s/default" % gone, "ClusterQueue %s" % gone, "WorkloadPriorityClass %s" % gone,
                 "Namespace %s" % gone, "Queue %s" % gone):
        assert "- deleted %s\n" % line in allowed.stdout, allowed
    assert _held(lab, pruning) == set()
    keep = pruning["keep"]
    assert keep in {o["metadata"]["name"] for o in lab.custom.list_cluster_custom_object(
        *KUEUE, "clusterqueues", label_selector="gpufleet.io/cluster=%s" % pruning["cluster"])["items"]}


def test_the_next_run_changes_nothing(lab, pruning):
    again = ansible_playbook("playbooks/scheduling.yml", *CONFIGURE, config=pruning["one"])
    assert again.rc == 0, again
    assert again.changed == 0, again.changed_tasks()
    check = ansible_playbook("playbooks/scheduling.yml", *CONFIGURE, config=pruning["one"], check=True, diff=True)
    assert check.rc == 0 and check.changed == 0, check.changed_tasks()
