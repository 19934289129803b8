"""module_utils/prune.py: what is stale, the guard's refusal (exact messages), check mode's pending objects."""
import pytest

from ansible_collections.gpufleet.platform.plugins.module_utils import prune

SEL = "app.kubernetes.io/managed-by=gpufleet"


def _obj(kind, name, namespace=None, api="kueue.x-k8s.io/v1beta2", labels=None, **extra):
    meta = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = labels
    return dict({"apiVersion": api, "kind": kind, "metadata": meta}, **extra)


def _ns(name, delete=False):
    labels = {"gpufleet.io/delete-namespace-on-removal": "true"} if delete else {}
    return _obj("Namespace", name, api="v1", labels=labels)


@pytest.mark.parametrize("obj,text", [
    (_obj("ClusterQueue", "research"), "ClusterQueue research"),
    (_obj("LocalQueue", "default", "interns"), "LocalQueue interns/default"),
    (_ns("interns"), "Namespace interns"),
])
def test_describe(obj, text):
    assert prune.describe(obj) == text


def test_stale_is_what_is_held_and_not_declared_namespaced_first_namespaces_last():
    existing = [_obj("ClusterQueue", "interns"), _obj("ClusterQueue", "research"),
                _obj("LocalQueue", "default", "interns"), _ns("interns", delete=True), _ns("kept")]
    declared = [_obj("ClusterQueue", "research")]
    assert [prune.describe(o) for o in prune.stale(existing, declared)] == [
        "LocalQueue interns/default", "ClusterQueue interns", "Namespace interns"]


def test_stale_keeps_declared_objects_applied_elsewhere_and_unlabelled_namespaces():
    existing = [_obj("Secret", "qwen-small-storage", "research", api="v1"), _ns("research")]
    declared = [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "qwen-small-storage",
                                                                    "namespace": "research"}}]
    assert prune.stale(existing, declared) == []
    assert prune.stale(existing, []) == [{"apiVersion": "v1", "kind": "Secret",
                                          "metadata": {"name": "qwen-small-storage", "namespace": "research"}}]


def test_stale_minimal_definitions_drop_spec_and_status():
    held = _obj("ClusterQueue", "interns", spec={"cohort": "x"}, status={"pendingWorkloads": 0})
    assert prune.stale([held], []) == [{"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue",
                                        "metadata": {"name": "interns"}}]


def test_stale_skips_what_is_already_being_deleted():
    terminating = _ns("interns", delete=True)
    terminating["metadata"]["deletionTimestamp"] = "2026-12-07T12:00:00Z"
    assert prune.stale([terminating, _obj("ClusterQueue", "interns")], []) == [
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue", "metadata": {"name": "interns"}}]


def test_live_pods_ignores_finished_ones():
    pods = [{"metadata": {"name": "b"}, "status": {"phase": "Running"}},
            {"metadata": {"name": "a"}, "status": {"phase": "Pending"}},
            {"metadata": {"name": "done"}, "status": {"phase": "Succeeded"}},
            {"metadata": {"name": "crashed"}, "status": {"phase": "Failed"}}]
    assert prune.live_pods(pods) == ["a", "b"]
    assert prune.live_pods(None) == []


def test_within_the_limit_and_no_busy_namespace_is_not_refused():
    stale = [_obj("ClusterQueue", "q%d" % i) for i in range(10)]
    assert prune.refusal("kueue", stale, {}, 10) is None
    assert prune.refusal("kueue", [], {}, 0) is None


def test_over_the_limit_is_refused_naming_every_object_and_how_to_allow():
    stale = [_obj("LocalQueue", "default", "interns"), _obj("ClusterQueue", "interns"),
             _obj("WorkloadPriorityClass", "interns")]
    assert prune.refusal("kueue", stale, {}, 2, "services.kueue.prune: false") == (
        "kueue: refusing to prune: 3 objects are no longer declared, more than gpufleet_prune_max (2). "
        "It would delete: LocalQueue interns/default; ClusterQueue interns; WorkloadPriorityClass interns. "
        "Nothing was changed. To delete them, run again with -e gpufleet_allow_prune=true; to keep them, set "
        "services.kueue.prune: false.")


def test_a_namespace_with_pods_is_refused_with_its_pods():
    stale = [_obj("Queue", "interns", api="scheduling.volcano.sh/v1beta1"), _ns("interns", delete=True)]
    busy = {"interns": ["train-0", "train-1", "train-2", "train-3"]}
    assert prune.refusal("volcano", stale, busy, 10) == (
        "volcano: refusing to prune: namespace interns still has 4 pods (train-0, train-1, train-2, ...). "
        "It would delete: Queue interns; Namespace interns. Nothing was changed. To delete them, run again with "
        "-e gpufleet_allow_prune=true.")


def test_both_reasons_are_named():
    stale = [_ns("a", delete=True), _ns("b", delete=True)]
    msg = prune.refusal("kueue", stale, {"b": ["p"], "a": ["q"]}, 1)
    assert msg.startswith("kueue: refusing to prune: 2 objects are no longer declared, more than gpufleet_prune_max "
                          "(1); namespace a still has 1 pod (q); namespace b still has 1 pod (p). It would delete: "
                          "Namespace a; Namespace b.")


def test_split_pending_waits_for_missing_namespaces_and_kinds():
    ns = _ns("interns")
    lq = _obj("LocalQueue", "default", "interns")
    lq_old = _obj("LocalQueue", "default", "research")
    cq = _obj("ClusterQueue", "interns")
    isvc = _obj("InferenceService", "qwen", "research", api="serving.kserve.io/v1beta1")
    applicable, pending = prune.split_pending(
        [ns, cq, lq, lq_old, isvc], ["research", "default"], [("serving.kserve.io/v1beta1", "InferenceService")])
    assert applicable == [ns, cq, lq_old]
    assert pending == [lq, isvc]


@pytest.mark.parametrize("objects,expected", [
    ([_obj("ClusterQueue", "a")], []),
    (["text"], ["objects[0] is a str, not an object"]),
    ([{"kind": "ClusterQueue", "metadata": {}}], ["objects[0] has no apiVersion, metadata.name"]),
    ([_obj("ClusterQueue", "a"), {"apiVersion": "v1", "metadata": {"name": "x"}}], ["objects[1] has no kind"]),
])
def test_bad_objects(objects, expected):
    assert prune.bad_objects(objects) == expected


def test_bad_kinds():
    assert prune.bad_kinds([{"api_version": "v1", "kind": "Secret", "selector": SEL}]) == []
    assert prune.bad_kinds([{"api_version": "v1", "kind": "Secret"}, "x"]) == [
        "kinds[0] has no selector", "kinds[1] has no api_version, kind, selector"]
