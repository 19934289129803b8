"""Post-deploy verification logic (module_utils/verify.py): observed cluster state against the plan.

The observed dicts are shaped like kubernetes.core.k8s_info resources; the role that gathers them runs against the
lab in tests/integration/lab/test_verify.py.
"""
import copy

import pytest

from ansible_collections.gpufleet.platform.plugins.module_utils import verify as v

PLAN = {
    "cluster": {"name": "c1"},
    "nodes": [
        {"name": "cp-1", "roles": ["control-plane"]},
        {"name": "a-1", "pool": "a100"},
        {"name": "h-1", "pool": "h100"},
    ],
    "pools": {
        "a100": {"nodes": ["a-1"], "resources_per_node": {"nvidia.com/gpu": 8}, "mig": {"enabled": False}, "taints": []},
        "h100": {"nodes": ["h-1"], "resources_per_node": {"nvidia.com/mig-1g.10gb": 56},
                 "mig": {"enabled": True, "config_name": "gpufleet-h100"},
                 "taints": [{"key": "gpu", "value": "h100", "effect": "NoSchedule"}]},
        "empty": {"nodes": [], "resources_per_node": {"nvidia.com/gpu": 4}, "mig": {"enabled": False}},
    },
    "services": {
        "gpu_operator": {"enabled": True, "charts": [{"name": "gpu-operator", "namespace": "gpu-operator"}]},
        "kueue": {"enabled": False, "charts": [{"name": "kueue", "namespace": "kueue-system"}]},
        "cert_manager": {"enabled": True, "install": True, "charts": [{"name": "cert-manager", "namespace": "cert-manager"}]},
        "kserve": {"enabled": False},
        "slurm": {"enabled": False},
    },
    "airgap": {"enabled": False},
}


def node(name, ready="True", labels=None, allocatable=None, unschedulable=False):
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"unschedulable": True} if unschedulable else {},
            "status": {"conditions": [{"type": "Ready", "status": ready, "reason": "KubeletNotReady" if ready != "True" else "",
                                       "message": ""}],
                       "allocatable": allocatable or {}}}


def healthy():
    return {
        "nodes": [
            node("cp-1"),
            node("a-1", allocatable={"nvidia.com/gpu": "8", "cpu": "64"}),
            node("h-1", labels={"nvidia.com/mig.config": "gpufleet-h100", "nvidia.com/mig.config.state": "success"},
                 allocatable={"nvidia.com/mig-1g.10gb": "56"}),
        ],
        "cluster_policies": [{"metadata": {"name": "cluster-policy"}, "status": {"state": "ready"}}],
        "releases": [{"item": {"name": "gpu-operator", "namespace": "gpu-operator"},
                      "status": {"status": "deployed", "chart": "gpu-operator-v26.7.0"}}],
        "deployments": [{"metadata": {"name": "gpu-operator", "namespace": "gpu-operator"}, "spec": {"replicas": 1},
                         "status": {"readyReplicas": 1, "conditions": [{"type": "Available", "status": "True"}]}}],
        "smoke_jobs": [
            {"metadata": {"labels": {v.SMOKE_LABEL: p}}, "status": {"conditions": [{"type": "Complete", "status": "True"}]}}
            for p in ("a100", "h100")],
        "smoke_pods": [{"metadata": {"name": "p-a", "labels": {v.SMOKE_LABEL: "a100"}}, "spec": {"nodeName": "a-1"},
                        "status": {"phase": "Succeeded"}}],
    }


def failures(checks):
    return sorted((c["host"], c["check"]) for c in checks if c["status"] == "fail")


def test_healthy_cluster_passes():
    checks = v.checks(PLAN, healthy())
    assert failures(checks) == []
    got = {(c["host"], c["check"]) for c in checks}
    assert {("cp-1", "node-ready"), ("a-1", "gpu-capacity"), ("h-1", "mig-state"), ("gpu_operator", "cluster-policy"),
            ("gpu_operator", "helm-release"), ("gpu_operator", "deployment"), ("pool/a100", "gpu-smoke-job"),
            ("pool/h100", "gpu-smoke-job")} <= got
    # a pool without nodes gets no smoke Job; cert-manager is not ours to check without KServe/Slurm
    assert ("pool/empty", "gpu-smoke-job") not in got
    assert not any(c["host"] == "cert_manager" for c in checks)


def test_failed_mig_state_names_the_node():
    observed = healthy()
    observed["nodes"][2]["metadata"]["labels"]["nvidia.com/mig.config.state"] = "failed"
    checks = v.checks(PLAN, observed)
    assert failures(checks) == [("h-1", "mig-state")]
    msg = next(c["message"] for c in checks if c["status"] == "fail")
    assert "'failed'" in msg and "gpufleet-h100" in msg


def test_other_mig_config_applied_fails():
    observed = healthy()
    observed["nodes"][2]["metadata"]["labels"]["nvidia.com/mig.config"] = "all-disabled"
    assert failures(v.checks(PLAN, observed)) == [("h-1", "mig-state")]


@pytest.mark.parametrize("allocatable, expected", [
    ({"nvidia.com/gpu": "7"}, "nvidia.com/gpu 7 (plan: 8)"),
    ({}, "nvidia.com/gpu absent (plan: 8)"),
])
def test_capacity_mismatch_names_node_resource_and_counts(allocatable, expected):
    observed = healthy()
    observed["nodes"][1]["status"]["allocatable"] = allocatable
    checks = v.checks(PLAN, observed)
    assert failures(checks) == [("a-1", "gpu-capacity")]
    assert expected in next(c["message"] for c in checks if c["status"] == "fail")


def test_node_missing_or_not_ready():
    observed = healthy()
    observed["nodes"] = [observed["nodes"][0], node("a-1", ready="False", allocatable={"nvidia.com/gpu": "8"})]
    assert failures(v.checks(PLAN, observed)) == [("a-1", "node-ready"), ("h-1", "node-ready")]


def test_cordoned_node_warns():
    observed = healthy()
    observed["nodes"][1]["spec"]["unschedulable"] = True
    checks = v.checks(PLAN, observed)
    assert ("a-1", "node-schedulable", "warn") in {(c["host"], c["check"], c["status"]) for c in checks}


def test_operator_release_and_deployment_failures():
    observed = healthy()
    observed["cluster_policies"][0]["status"]["state"] = "notReady"
    observed["releases"] = []
    observed["deployments"][0]["status"] = {"readyReplicas": 0, "conditions": [{"type": "Available", "status": "False"}]}
    assert failures(v.checks(PLAN, observed)) == [("gpu_operator", "cluster-policy"), ("gpu_operator", "deployment"),
                                                  ("gpu_operator", "helm-release")]
    observed["cluster_policies"] = []
    assert ("gpu_operator", "cluster-policy") in failures(v.checks(PLAN, observed))


def test_cert_manager_checked_when_serving_needs_it():
    plan = copy.deepcopy(PLAN)
    plan["services"]["kserve"]["enabled"] = True
    assert "cert_manager" in v.deployed_services(plan)
    plan["services"]["cert_manager"]["install"] = False
    assert "cert_manager" not in v.deployed_services(plan)


def test_objects_missing_not_ready_and_without_status():
    expected = [
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue", "name": "research", "namespace": None},
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue", "name": "inference", "namespace": None},
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor", "name": "a100", "namespace": None},
        {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "name": "llama", "namespace": "team-a"},
        {"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue", "name": "q", "namespace": None},
    ]
    objects = [
        {"kind": "ClusterQueue", "metadata": {"name": "research"},
         "status": {"conditions": [{"type": "Active", "status": "False", "reason": "FlavorNotFound"}]}},
        {"kind": "ClusterQueue", "metadata": {"name": "inference"}},
        {"kind": "InferenceService", "metadata": {"name": "llama", "namespace": "team-a"},
         "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        {"kind": "Queue", "metadata": {"name": "q"}, "status": {"state": "Open"}},
    ]
    observed = dict(healthy(), expected_objects=expected, objects=objects)
    checks = [c for c in v.checks(PLAN, observed) if c["check"] == "object"]
    status = {c["message"].split(" ")[1]: c["status"] for c in checks}
    assert status == {"research": "fail", "inference": "warn", "a100": "fail", "team-a/llama": "ok", "q": "ok"}
    assert "FlavorNotFound" in next(c["message"] for c in checks if "research" in c["message"])


def test_smoke_job_failure_and_skip():
    observed = healthy()
    observed["smoke_jobs"][1]["status"] = {"conditions": [{"type": "Failed", "status": "True", "message": "deadline exceeded"}]}
    observed["smoke_pods"].append({"metadata": {"name": "p-h", "labels": {v.SMOKE_LABEL: "h100"}}, "spec": {},
                                   "status": {"phase": "Pending"}})
    checks = v.checks(PLAN, observed)
    assert failures(checks) == [("pool/h100", "gpu-smoke-job")]
    msg = next(c["message"] for c in checks if c["status"] == "fail")
    assert "deadline exceeded" in msg and "p-h Pending on no node" in msg
    observed["smoke_skipped"] = "check mode: no Job is created"
    assert {c["status"] for c in v.checks(PLAN, observed) if c["check"] == "gpu-smoke-job"} == {"skip"}


def test_smoke_jobs_one_per_pool_pinned_and_tolerating():
    jobs = {j["metadata"]["name"]: j for j in v.smoke_jobs(PLAN, timeout_seconds=120, namespace="ns")}
    assert sorted(jobs) == ["gpu-smoke-a100", "gpu-smoke-h100"]
    h = jobs["gpu-smoke-h100"]
    spec = h["spec"]["template"]["spec"]
    assert h["metadata"]["namespace"] == "ns" and h["spec"]["activeDeadlineSeconds"] == 120
    assert spec["nodeSelector"] == {"gpufleet.io/pool": "h100"}
    assert spec["tolerations"] == [{"key": "gpu", "effect": "NoSchedule", "operator": "Equal", "value": "h100"}]
    assert spec["containers"][0]["resources"]["limits"] == {"nvidia.com/mig-1g.10gb": 1}
    assert jobs["gpu-smoke-a100"]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": 1}


def test_smoke_image_pinned_and_mirrored():
    assert v.smoke_image(PLAN) == v.versions.IMAGES["gpu_smoke"]
    plan = dict(PLAN, airgap={"enabled": True, "image_registry": "mirror.local:5000/ml/"})
    assert v.smoke_image(plan).startswith("mirror.local:5000/ml/nvidia/cuda:")
    assert v.smoke_image(plan, "example.com/x/y:1") == "mirror.local:5000/ml/x/y:1"


def test_observed_must_be_a_dict():
    with pytest.raises(v.VerifyError, match="observed must be a dict"):
        v.checks(PLAN, [])


def test_expected_objects_follow_each_model_kind():
    plan = copy.deepcopy(PLAN)
    plan["services"]["kserve"]["enabled"] = True
    kserve = {"runtime_name": "rt", "models": [
        {"name": "m1", "namespace": "team-a"},
        {"name": "m2", "namespace": "team-a", "kind": "LLMInferenceService"}]}
    refs = v.expected_objects(plan, kserve=kserve)
    assert [(r["kind"], r["apiVersion"], r["name"]) for r in refs] == [
        ("ClusterServingRuntime", "serving.kserve.io/v1alpha1", "rt"),
        ("InferenceService", "serving.kserve.io/v1beta1", "m1"),
        ("LLMInferenceService", "serving.kserve.io/v1alpha2", "m2")]


def _journey_plan(kueue=True, volcano=True):
    plan = copy.deepcopy(PLAN)
    plan["services"]["kueue"]["enabled"] = kueue
    plan["services"]["volcano"] = {"enabled": volcano}
    return plan


def _wl(admitted, message=""):
    conds = [{"type": "QuotaReserved", "status": "True" if admitted else "False", "message": message}]
    if admitted:
        conds.append({"type": "Admitted", "status": "True"})
    return {"metadata": {"name": "w"}, "status": {"conditions": conds}}


def _pod(node_name):
    return {"metadata": {"labels": {v.JOURNEY_LABEL: "gang-fit"}}, "spec": {"nodeName": node_name} if node_name else {}}


def test_journeys_objects_on_the_first_pool_with_nodes():
    spec = v.journeys(_journey_plan(), annotations={"sidecar.istio.io/inject": "false"})
    assert (spec["pool"], spec["resource"], spec["journeys"]) == ("a100", "nvidia.com/gpu", ["quota-held", "gang-fit"])
    kinds = [(o["kind"], o["metadata"]["name"]) for o in spec["setup"]]
    assert kinds == [("Namespace", v.JOURNEY_NAMESPACE), ("ClusterQueue", v.JOURNEY_QUEUE), ("LocalQueue", "default"),
                     ("Queue", v.JOURNEY_QUEUE)]
    cq = spec["setup"][1]["spec"]
    assert "cohortName" not in cq  # it cannot borrow: the quota of 1 is all it has
    assert cq["resourceGroups"] == [{"coveredResources": ["nvidia.com/gpu"], "flavors": [
        {"name": "a100", "resources": [{"name": "nvidia.com/gpu", "nominalQuota": "1"}]}]}]
    jobs = [w for w in spec["workloads"] if w["apiVersion"] == "batch/v1"]
    assert [j["metadata"]["name"] for j in jobs] == ["quota-held-0", "quota-held-1"]
    assert all(j["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "default" for j in jobs)
    gang = spec["workloads"][-1]
    assert gang["spec"]["minAvailable"] == 2 and gang["spec"]["tasks"][0]["replicas"] == 2
    template = gang["spec"]["tasks"][0]["template"]
    assert template["spec"]["nodeSelector"] == {"gpufleet.io/pool": "a100"}
    assert template["metadata"]["annotations"] == {"sidecar.istio.io/inject": "false"}
    assert template["spec"]["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": 1}


def test_journeys_only_for_what_is_on():
    assert v.journeys(_journey_plan(kueue=True, volcano=False))["journeys"] == ["quota-held"]
    assert v.journeys(_journey_plan(kueue=False, volcano=True))["journeys"] == ["gang-fit"]
    assert v.journeys(_journey_plan(kueue=False, volcano=False)) is None
    observed = {"journeys_requested": True}
    assert [c["status"] for c in v.checks(_journey_plan(False, False), dict(healthy(), **observed))
            if c["check"] == "journey"] == ["skip"]


def test_journey_checks_pass_fail_and_skip():
    plan = _journey_plan()
    base = healthy()
    assert not [c for c in v.checks(plan, base) if c["check"].startswith("journey")]  # not asked for: no checks
    good = dict(base, journeys_requested=True, journey_workloads=[_wl(True), _wl(False, "insufficient unused quota")],
                journey_pods=[_pod("a-1"), _pod("a-1")])
    got = {c["check"]: c for c in v.checks(plan, good) if c["check"].startswith("journey")}
    assert got["journey-quota-held"]["status"] == "ok" and "insufficient unused quota" in got["journey-quota-held"]["message"]
    assert got["journey-gang-fit"]["status"] == "ok" and "2 bound (on a-1)" in got["journey-gang-fit"]["message"]
    assert v.journeys_settled(plan, good)
    bad = dict(good, journey_workloads=[_wl(True), _wl(True)], journey_pods=[_pod("a-1"), _pod(None)])
    got = {c["check"]: c for c in v.checks(plan, bad) if c["check"].startswith("journey")}
    assert got["journey-quota-held"]["status"] == "fail" and "2 admitted, 0 waiting" in got["journey-quota-held"]["message"]
    assert got["journey-gang-fit"]["status"] == "fail" and "1 bound" in got["journey-gang-fit"]["message"]
    assert not v.journeys_settled(plan, bad)
    skipped = dict(base, journeys_requested=True, journey_skipped="check mode: nothing is created")
    assert {c["status"] for c in v.checks(plan, skipped) if c["check"].startswith("journey")} == {"skip"}


def test_journeys_settled_per_journey():
    plan = _journey_plan()
    assert v.journeys_settled(plan, {"journey_workloads": [_wl(True), _wl(False)]}, "quota-held")
    assert not v.journeys_settled(plan, {"journey_workloads": [_wl(True), _wl(False)]})  # the gang is not bound
    assert v.journeys_settled(plan, {"journey_pods": [_pod("a-1"), _pod("a-1")]}, "gang-fit")
    assert not v.journeys_settled(plan, {"journey_pods": [_pod("a-1")]}, "gang-fit")
