"""plugins/action/apply_prune.py: the order of the cluster calls, with kubernetes.core stubbed.

The guard refuses before the apply and before any deletion (a refused run changes nothing); check mode deletes
nothing and lists what waits for a namespace or a CRD; prune=false reads nothing in a real run.
"""
from types import SimpleNamespace

import pytest

from ansible_collections.gpufleet.platform.plugins.action import apply_prune as action

SEL = "app.kubernetes.io/managed-by=gpufleet,app.kubernetes.io/component=kueue,gpufleet.io/cluster=lab"
KINDS = [{"api_version": "v1", "kind": "Namespace", "selector": SEL},
         {"api_version": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue", "selector": SEL},
         {"api_version": "kueue.x-k8s.io/v1beta2", "kind": "LocalQueue", "selector": SEL}]


def _obj(kind, name, namespace=None, api="kueue.x-k8s.io/v1beta2", labels=None):
    meta = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = labels
    return {"apiVersion": api, "kind": kind, "metadata": meta}


NS_GONE = _obj("Namespace", "interns", api="v1", labels={"gpufleet.io/delete-namespace-on-removal": "true"})
HELD = {"Namespace": [NS_GONE], "ClusterQueue": [_obj("ClusterQueue", "research"), _obj("ClusterQueue", "interns")],
        "LocalQueue": [_obj("LocalQueue", "default", "interns")]}
WANT = [_obj("ClusterQueue", "research")]


class Cluster:
    """Stands in for the kubernetes.core modules: records each call, answers reads from ``held``."""

    def __init__(self, held=None, pods=None, namespaces=("research",), missing=()):
        self.held, self.pods, self.namespaces, self.missing = held or {}, pods or {}, namespaces, missing
        self.calls = []

    def __call__(self, task_vars, fqcn, args, what):
        self.calls.append((fqcn.split(".")[-1], args.get("kind") or args.get("state")))
        if fqcn.endswith("k8s_info"):
            if args["kind"] in self.missing:
                return {"api_found": False, "resources": []}
            if args["kind"] == "Pod":
                return {"resources": self.pods.get(args["namespace"], [])}
            if args["kind"] == "Namespace" and "label_selectors" not in args:
                return {"resources": [_obj("Namespace", n, api="v1") for n in self.namespaces]}
            return {"api_found": True, "resources": self.held.get(args["kind"], [])}
        definitions = args["definition"]
        results = [{"changed": True, "diff": {"before": {}, "after": {"spec": 1}}} for definition in definitions]
        return results[0] if len(results) == 1 else {"changed": True, "result": {"results": results}}


def _run(cluster, check=False, **args):
    module = action.ActionModule.__new__(action.ActionModule)
    module._task = SimpleNamespace(check_mode=check)
    module._k8s = cluster
    full = {"component": "kueue", "objects": WANT, "declared": [], "kinds": KINDS, "prune": True,
            "max_deletions": 10, "allow": False, "keep_hint": "services.kueue.prune: false",
            "field_manager": "gpufleet", "delete_wait": False, "delete_timeout": 120,
            "webhook_retries": 2, "webhook_retry_delay": 0}
    full.update(args)
    return module.main(full, {}, {})


def test_applies_then_deletes_what_is_no_longer_declared():
    cluster = Cluster(HELD)
    result = _run(cluster)
    assert result["pruned"] == ["LocalQueue interns/default", "ClusterQueue interns", "Namespace interns"]
    assert result["changed"] is True and not result.get("failed")
    assert result["msg"] == ("kueue: applied 1, deleted: LocalQueue interns/default; ClusterQueue interns; "
                             "Namespace interns")
    assert [c for c in cluster.calls if c[0] == "k8s"] == [("k8s", "present"), ("k8s", "absent")]
    assert [d["after_header"] for d in result["diff"]] == [
        "ClusterQueue research", "LocalQueue interns/default (deleted)", "ClusterQueue interns (deleted)",
        "Namespace interns (deleted)"]


def test_over_the_limit_refuses_before_any_change():
    cluster = Cluster(HELD)
    result = _run(cluster, max_deletions=2)
    assert result["failed"] is True and result["refused"] is True
    assert result["msg"].startswith("kueue: refusing to prune: 3 objects are no longer declared, more than "
                                    "gpufleet_prune_max (2). It would delete: LocalQueue interns/default; ")
    assert not [c for c in cluster.calls if c[0] == "k8s"]  # nothing applied, nothing deleted


def test_a_namespace_with_running_pods_refuses_and_allow_lets_it_through():
    pods = {"interns": [{"metadata": {"name": "train-0"}, "status": {"phase": "Running"}}]}
    refused = _run(Cluster(HELD, pods))
    assert refused["refused"] is True
    assert "namespace interns still has 1 pod (train-0)" in refused["msg"]
    allowed = Cluster(HELD, pods)
    result = _run(allowed, allow=True)
    assert not result.get("failed") and result["pruned"][-1] == "Namespace interns"
    assert ("k8s_info", "Pod") not in allowed.calls  # allowed: the pods are not even read


def test_finished_pods_do_not_hold_a_namespace():
    pods = {"interns": [{"metadata": {"name": "done"}, "status": {"phase": "Succeeded"}}]}
    assert not _run(Cluster(HELD, pods)).get("failed")


def test_check_mode_deletes_nothing_and_lists_pending():
    cluster = Cluster(HELD, missing=("LocalQueue",))
    want = WANT + [_obj("Namespace", "new", api="v1"), _obj("LocalQueue", "default", "new")]
    result = _run(cluster, check=True, objects=want)
    assert result["pending"] == ["LocalQueue new/default"]
    assert result["pruned"] == ["ClusterQueue interns", "Namespace interns"]  # LocalQueue API missing: none held
    assert result["msg"] == ("kueue: would apply 2, would create with their namespace or CRD: LocalQueue new/default, "
                             "would delete: ClusterQueue interns; Namespace interns")
    assert ("k8s", "absent") not in cluster.calls


def test_prune_false_keeps_everything_and_reads_nothing():
    cluster = Cluster(HELD)
    result = _run(cluster, prune=False)
    assert result["pruned"] == [] and cluster.calls == [("k8s", "present")]


def test_up_to_date():
    cluster = Cluster({"ClusterQueue": [_obj("ClusterQueue", "research")]})
    cluster.__class__ = type("Unchanged", (Cluster,), {"__call__": lambda self, *a: (
        Cluster.__call__(self, *a) if a[1].endswith("k8s_info") else {"changed": False})})
    result = _run(cluster)
    assert result["changed"] is False and result["msg"] == "kueue: up to date"


@pytest.mark.parametrize("args,msg", [
    ({"objects": [{"kind": "X"}]}, "kueue: objects[0] has no apiVersion, metadata.name"),
    ({"kinds": [{"kind": "X"}]}, "kueue: kinds[0] has no api_version, selector"),
    ({"max_deletions": -1}, "kueue: max_deletions must be 0 or more (got -1)"),
])
def test_bad_input_is_named(args, msg):
    with pytest.raises(action.AnsibleActionFail) as failed:
        _run(Cluster(), **args)
    assert failed.value.message == msg


class LaggingWebhook(Cluster):
    """The first ``refusals`` applies are refused the way Volcano's webhook refuses a child Queue whose parent
    its cache has not seen yet."""

    def __init__(self, refusals, message="admission webhook \"validatequeue.volcano.sh\" denied the request"):
        super().__init__()
        self.refusals, self.message = refusals, message

    def __call__(self, task_vars, fqcn, args, what):
        if fqcn.endswith(".k8s") and args.get("state") == "present" and self.refusals:
            self.refusals -= 1
            self.calls.append(("k8s", "refused"))
            raise action.AnsibleActionFail("%s: %s" % (what, self.message))
        return super().__call__(task_vars, fqcn, args, what)


def test_an_apply_refused_by_a_lagging_webhook_is_run_again():
    cluster = LaggingWebhook(2)
    result = _run(cluster)
    assert not result.get("failed")
    assert [c for c in cluster.calls if c[0] == "k8s"] == [("k8s", "refused"), ("k8s", "refused"), ("k8s", "present")]


def test_a_webhook_that_keeps_refusing_fails_after_the_retries():
    with pytest.raises(action.AnsibleActionFail, match="applying the objects of kueue: admission webhook"):
        _run(LaggingWebhook(3))


def test_any_other_apply_failure_is_not_retried():
    cluster = LaggingWebhook(1, message="the server could not find the requested resource")
    with pytest.raises(action.AnsibleActionFail, match="could not find"):
        _run(cluster)
    assert [c for c in cluster.calls if c[0] == "k8s"] == [("k8s", "refused")]
