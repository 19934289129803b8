"""Workload journeys: what a team submits, against the real Kueue and Volcano controllers in the lab.

Each test renders an example from examples/ with examples/render.py (the way a team fills it from config.yml),
submits it to the lab's real API server and asserts what the team relies on: the quota holds, borrowing stops
at the lender's lending limit, a higher-priority job preempts where the config says so, a MIG-slice job lands
on the MIG pool, a time-sliced node takes replicas x GPUs shares and not one more, a gang (Volcano's, or a
multi-pod Job admitted by Kueue) starts whole or not at all. The GPUs are the lab's simulated ones (KWOK
nodes with the capacity the GPU layer gives them); the admission, preemption and gang decisions are the real
controllers'.
"""
import copy
import os
import subprocess
import sys
import time
import uuid

import pytest
import yaml
from kubernetes import client

from lab_helpers import ensure_gpu_layer, wait_for
from playbook import LAB_CONFIG, ROOT, ansible_playbook

KUEUE = ("kueue.x-k8s.io", "v1beta2")
VCJOB = ("batch.volcano.sh", "v1alpha1", "jobs")
PODGROUP = ("scheduling.volcano.sh", "v1beta1", "podgroups")
SKIP_INSTALL = ("--skip-tags", "kueue_install,volcano_install")
RUN_FOR = "pod-complete.stage.kwok.x-k8s.io/delay"  # lab/kwok/kwok.yaml: how long a Job's pod runs


def _write(tmp, config, name="config.yml"):
    path = tmp / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def journeys(lab, tmp_path_factory):
    """Teams in a cohort of their own: one that may not borrow, a borrower and a lender, a team with a
    priority class, a MIG team, a team on the time-sliced pool and a Volcano gang team."""
    ensure_gpu_layer(lab, ansible_playbook)
    s = uuid.uuid4().hex[:4]
    with open(LAB_CONFIG) as handle:
        config = yaml.safe_load(handle)
    cluster = "jrn-%s" % s
    team = {k: "j%s-%s" % (s, k) for k in ("held", "borrower", "lender", "prio", "mig", "shared", "gang")}
    config["cluster"]["name"] = cluster
    # allow_overcommit: the gang and shared teams are given more than their pools so that the pools' GPUs, not
    # the quota, are what stops them (the point of those two journeys)
    config["scheduling"] = {"cohort": cluster, "preemption": "LowerPriority", "allow_overcommit": True}
    a100 = "nvidia.com/gpu"
    config["teams"] = [
        {"name": team["held"], "quotas": {"a100": {a100: {"nominal": 2, "borrowing_limit": 0, "lending_limit": 0}}}},
        {"name": team["borrower"], "quotas": {"a100": {a100: {"nominal": 1, "borrowing_limit": 3,
                                                                "lending_limit": 0}}}},
        {"name": team["lender"], "quotas": {"a100": {a100: {"nominal": 3, "lending_limit": 2}}}},
        {"name": team["prio"], "priority": 1000,
         "quotas": {"a100": {a100: {"nominal": 1, "borrowing_limit": 0, "lending_limit": 0}}}},
        {"name": team["mig"], "quotas": {"h100": {"nvidia.com/mig-1g.10gb": {"nominal": 2, "borrowing_limit": 0,
                                                                             "lending_limit": 0}}}},
        {"name": team["shared"], "quotas": {"l40s": {a100: {"nominal": 20, "borrowing_limit": 0,
                                                            "lending_limit": 0}}}},
        {"name": team["gang"], "volcano": {"weight": 1}, "quotas": {"a100": {a100: {"nominal": 24,
                                                                                    "lending_limit": 0}}}},
    ]
    services = config["services"]
    config["services"] = {"cert_manager": services.get("cert_manager", {"enabled": False}),
                          "gpu_operator": {"enabled": True}, "monitoring": {"enabled": False},
                          "kueue": services["kueue"], "volcano": services["volcano"]}
    tmp = tmp_path_factory.mktemp("journeys")
    state = {"config": config, "path": _write(tmp, config), "tmp": tmp, "cluster": cluster, "team": team}
    result = ansible_playbook("playbooks/scheduling.yml", config=state["path"])
    assert result.rc == 0, result
    yield state
    _cleanup(lab, state)


def _cleanup(lab, state):
    for ns in state["team"].values():
        _drain(lab, ns, wait=False)
    selector = "app.kubernetes.io/managed-by=gpufleet,gpufleet.io/cluster=%s" % state["cluster"]
    for obj in lab.custom.list_cluster_custom_object(*KUEUE, "localqueues", label_selector=selector)["items"]:
        lab.custom.delete_namespaced_custom_object(*KUEUE, obj["metadata"]["namespace"], "localqueues",
                                                   obj["metadata"]["name"])
    for group, version, plural in (KUEUE + ("clusterqueues",), KUEUE + ("workloadpriorityclasses",),
                                   KUEUE + ("resourceflavors",), ("scheduling.volcano.sh", "v1beta1", "queues")):
        for obj in lab.custom.list_cluster_custom_object(group, version, plural, label_selector=selector)["items"]:
            lab.custom.delete_cluster_custom_object(group, version, plural, obj["metadata"]["name"])
    for ns in lab.core.list_namespace(label_selector=selector).items:
        lab.core.delete_namespace(ns.metadata.name)


def _render(state, example, team, *args):
    """examples/render.py, as a team runs it: the manifest text (or the failed process)."""
    res = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "render.py"), example,
                          "--config", str(state["path"]), "--team", team] + list(args),
                         check=False, capture_output=True, text=True, timeout=120)
    return res


def _manifest(state, example, team, *args):
    res = _render(state, example, team, *args)
    assert res.returncode == 0, res.stderr
    return yaml.safe_load(res.stdout)


def _submit(lab, manifest, name=None, mutate=None):
    body = copy.deepcopy(manifest)
    if name:
        body["metadata"].pop("generateName", None)
        body["metadata"]["name"] = name
    if mutate:
        mutate(body)
    # KWOK's pods of a Job "run" for 1 s; these hold their GPUs until the test deletes them (an hour at most)
    templates = ([t["template"] for t in body["spec"]["tasks"]] if body["kind"] != "Job" or "tasks" in body["spec"]
                 else [body["spec"]["template"]])
    for template in templates:
        template.setdefault("metadata", {}).setdefault("annotations", {})[RUN_FOR] = "1h"
    ns = body["metadata"]["namespace"]
    if body["apiVersion"] == "batch/v1":
        return client.BatchV1Api(lab.api_client).create_namespaced_job(ns, body).metadata.name
    return lab.custom.create_namespaced_custom_object(VCJOB[0], VCJOB[1], ns, VCJOB[2], body)["metadata"]["name"]


def _drain(lab, ns, wait=True):
    """Delete every Job and Volcano Job of a namespace and wait until their pods are gone (the GPUs free)."""
    batch = client.BatchV1Api(lab.api_client)
    for job in batch.list_namespaced_job(ns).items:
        batch.delete_namespaced_job(job.metadata.name, ns, propagation_policy="Background")
    for job in lab.custom.list_namespaced_custom_object(VCJOB[0], VCJOB[1], ns, VCJOB[2])["items"]:
        lab.custom.delete_namespaced_custom_object(VCJOB[0], VCJOB[1], ns, VCJOB[2], job["metadata"]["name"])
    if wait:
        wait_for(lambda: not lab.core.list_namespaced_pod(ns).items and not lab.custom.list_namespaced_custom_object(
            *KUEUE, ns, "workloads")["items"], timeout=120, what="the jobs of %s gone" % ns)


def _workloads(lab, ns):
    """{job name: workload} of a namespace."""
    out = {}
    for wl in lab.custom.list_namespaced_custom_object(*KUEUE, ns, "workloads")["items"]:
        owner = next((o["name"] for o in wl["metadata"].get("ownerReferences") or []), wl["metadata"]["name"])
        out[owner] = wl
    return out


def _cond(wl, kind):
    return next((c for c in (wl.get("status") or {}).get("conditions") or [] if c["type"] == kind), None)


def _admitted(wl):
    cond = _cond(wl, "Admitted")
    return bool(cond and cond["status"] == "True")


def _settled(lab, ns, count, admitted):
    """Wait until ``count`` workloads exist in ns and ``admitted`` of them are admitted; then hold on a few
    seconds to show that no more get admitted; return them."""
    wait_for(lambda: len(_workloads(lab, ns)) == count and
             sum(_admitted(w) for w in _workloads(lab, ns).values()) >= admitted,
             timeout=120, what="%d of %d workloads admitted in %s" % (admitted, count, ns))
    time.sleep(5)  # Kueue admits within a second of free quota; a wrongly admitted one would show by now
    return _workloads(lab, ns)


def test_quota_held(lab, journeys):
    """A team whose nominal quota on the A100 pool is 2 and that may not borrow submits 3 one-GPU Jobs of the
    gpu-job example: exactly 2 are admitted, the third waits with Kueue's reason (insufficient quota), although
    the lender team's quota in the same cohort is idle."""
    ns = journeys["team"]["held"]
    manifest = _manifest(journeys, "gpu-job", ns, "--pool", "a100")
    try:
        for i in range(3):
            _submit(lab, manifest, name="held-%d" % i)
        wls = _settled(lab, ns, 3, 2)
        assert sorted(name for name, wl in wls.items() if _admitted(wl)) in (
            ["held-0", "held-1"], ["held-0", "held-2"], ["held-1", "held-2"])
        pending = [wl for wl in wls.values() if not _admitted(wl)]
        assert len(pending) == 1
        reserved = _cond(pending[0], "QuotaReserved")
        assert reserved and reserved["status"] == "False", pending[0].get("status")
        assert "insufficient" in reserved["message"] and "nvidia.com/gpu" in reserved["message"], reserved
        # the admitted ones run on the pool's nodes (the flavor's node labels)
        pods = wait_for(lambda: [p for p in lab.core.list_namespaced_pod(ns).items if p.spec.node_name],
                        timeout=60, what="pods of the admitted jobs bound")
        assert {p.spec.node_name for p in pods} <= {"lab-a100-1", "lab-a100-2"}
    finally:
        _drain(lab, ns)


def _job_pods(lab, ns, job):
    return lab.core.list_namespaced_pod(ns, label_selector="batch.kubernetes.io/job-name=%s" % job).items


def test_kueue_gang_starts_whole_or_waits_whole(lab, journeys):
    """The kueue-gang example (an Indexed Job of 2 pods x 1 GPU) in the team whose quota is 2 and that may not
    borrow, while one GPU of that quota is taken by another job: Kueue admits the Job as one workload, so it
    waits whole -- suspended, not one pod created on the free GPU -- and once the other job is gone it is
    admitted and both pods start together on the A100 pool."""
    ns = journeys["team"]["held"]
    try:
        _submit(lab, _manifest(journeys, "gpu-job", ns, "--pool", "a100"), name="holder")
        _settled(lab, ns, 1, 1)
        _submit(lab, _manifest(journeys, "kueue-gang", ns, "--pool", "a100", "--replicas", "2", "--gpus", "1"),
                name="gang")
        wls = _settled(lab, ns, 2, 1)
        assert not _admitted(wls["gang"]), wls["gang"].get("status")
        reserved = _cond(wls["gang"], "QuotaReserved")
        assert reserved and reserved["status"] == "False" and "insufficient" in reserved["message"], reserved
        assert client.BatchV1Api(lab.api_client).read_namespaced_job("gang", ns).spec.suspend is True
        assert _job_pods(lab, ns, "gang") == []  # not one pod on the one free GPU
        client.BatchV1Api(lab.api_client).delete_namespaced_job("holder", ns, propagation_policy="Background")
        wait_for(lambda: _admitted(_workloads(lab, ns).get("gang") or {}), timeout=120, what="the gang admitted")

        def both_bound():
            bound = [p for p in _job_pods(lab, ns, "gang") if p.spec.node_name]
            return bound if len(bound) == 2 else None
        pods = wait_for(both_bound, timeout=120, what="both pods of the gang bound")
        assert {p.spec.node_name for p in pods} <= {"lab-a100-1", "lab-a100-2"}
    finally:
        _drain(lab, ns)


def test_borrowing_stops_at_the_lenders_lending_limit(lab, journeys):
    """The borrower (nominal 1, borrowing_limit 3) submits 5 one-GPU Jobs while the lender (nominal 3,
    lending_limit 2) is idle: 3 are admitted (its own 1 and the 2 the lender may lend; its borrowing limit
    would allow 1 more, which nobody lends); the others wait."""
    ns = journeys["team"]["borrower"]
    manifest = _manifest(journeys, "gpu-job", ns, "--pool", "a100")
    try:
        for i in range(5):
            _submit(lab, manifest, name="borrow-%d" % i)
        wls = _settled(lab, ns, 5, 3)
        assert sum(_admitted(w) for w in wls.values()) == 3
        borrowed = [w for w in wls.values() if _admitted(w)]
        assert {w["status"]["admission"]["clusterQueue"] for w in borrowed} == {ns}
        cq = lab.custom.get_cluster_custom_object(*KUEUE, "clusterqueues", ns)
        usage = {(f["name"], r["name"]): r for f in cq["status"]["flavorsUsage"] for r in f["resources"]}
        assert usage[("a100", "nvidia.com/gpu")]["total"] == "3"
        assert usage[("a100", "nvidia.com/gpu")]["borrowed"] == "2"
    finally:
        _drain(lab, ns)


def _preemption_round(lab, state, ns):
    """A low-priority Job holds the team's single GPU; a Job of the team's priority class (1000) arrives.
    Returns (low workload, high workload) once the high one is decided."""
    manifest = _manifest(state, "gpu-job", ns, "--pool", "a100")
    _submit(lab, manifest, name="low")
    _settled(lab, ns, 1, 1)

    def urgent(body):
        body["metadata"]["labels"]["kueue.x-k8s.io/priority-class"] = ns
    _submit(lab, manifest, name="high", mutate=urgent)
    wait_for(lambda: "high" in _workloads(lab, ns), timeout=60, what="the high-priority workload")
    return _settled(lab, ns, 2, 1)


def test_priority_preempts_where_the_config_enables_it(lab, journeys):
    """scheduling.preemption: LowerPriority: the team's priority-class Job preempts its running low-priority Job
    (Kueue evicts it, reason Preempted) and takes the GPU."""
    ns = journeys["team"]["prio"]
    try:
        wls = _preemption_round(lab, journeys, ns)
        wait_for(lambda: _admitted(_workloads(lab, ns)["high"]), timeout=60, what="the high job admitted")
        wls = _workloads(lab, ns)
        assert _admitted(wls["high"]) and not _admitted(wls["low"])
        evicted = _cond(wls["low"], "Evicted") or _cond(wls["low"], "Preempted")
        assert evicted and evicted["reason"] in ("Preempted", "InClusterQueue"), wls["low"].get("status")
        assert client.BatchV1Api(lab.api_client).read_namespaced_job("low", ns).spec.suspend is True
    finally:
        _drain(lab, ns)


def test_mig_slice_job_lands_on_the_mig_pool(lab, journeys):
    """The mig-job example with --profile 1g.10gb is admitted against the team's quota for that profile and
    its pod runs on an H100 node partitioned 7 x 1g.10gb."""
    ns = journeys["team"]["mig"]
    try:
        _submit(lab, _manifest(journeys, "mig-job", ns, "--profile", "1g.10gb"), name="slice")
        _settled(lab, ns, 1, 1)
        pod = wait_for(lambda: next((p for p in lab.core.list_namespaced_pod(ns).items if p.spec.node_name), None),
                       timeout=60, what="the MIG job's pod bound")
        assert pod.spec.node_name.startswith("lab-h100-")
        assert pod.spec.node_selector == {"gpufleet.io/pool": "h100"}
        assert pod.spec.containers[0].resources.limits == {"nvidia.com/mig-1g.10gb": "1"}
    finally:
        _drain(lab, ns)


def test_a_profile_no_pool_offers_stays_pending_with_a_reason(lab, journeys):
    """render.py refuses a MIG profile the team has no quota for (naming the key to add, printing nothing);
    a Job that asks it anyway waits in Kueue with the reason."""
    ns = journeys["team"]["mig"]
    res = _render(journeys, "mig-job", ns, "--profile", "7g.80gb")
    assert res.returncode == 2 and res.stdout == ""
    assert 'add teams[4].quotas.<pool>["nvidia.com/mig-7g.80gb"]' in res.stderr, res.stderr

    def whole_h100(body):
        body["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] = {"nvidia.com/mig-7g.80gb": "1"}
    try:
        _submit(lab, _manifest(journeys, "mig-job", ns, "--profile", "1g.10gb"), name="big", mutate=whole_h100)
        wls = _settled(lab, ns, 1, 0)
        reserved = _cond(wls["big"], "QuotaReserved")
        assert not _admitted(wls["big"]) and reserved and reserved["status"] == "False", wls["big"].get("status")
        assert "nvidia.com/mig-7g.80gb" in reserved["message"], reserved
    finally:
        _drain(lab, ns)


def test_time_sliced_node_takes_replicas_times_gpus_shares_and_not_one_more(lab, journeys):
    """An L40S node (4 GPUs, time-slicing replicas 4) advertises 16 nvidia.com/gpu shares. One-share Jobs of the
    shared-gpu-job example pinned to that node: every free share runs one, and the next one stays Pending
    (Unschedulable: Insufficient nvidia.com/gpu), although Kueue admitted it within the team's quota."""
    ns = journeys["team"]["shared"]
    node = "lab-l40s-2"
    allocatable = int(lab.core.read_node(node).status.allocatable["nvidia.com/gpu"])
    assert allocatable == 4 * 4  # gpus_per_node x sharing.replicas of the lab config

    def used():
        pods = lab.core.list_pod_for_all_namespaces(field_selector="spec.nodeName=%s" % node).items
        return sum(int((c.resources.limits or {}).get("nvidia.com/gpu", 0)) for p in pods
                   if p.status.phase not in ("Succeeded", "Failed") for c in p.spec.containers)
    free = allocatable - used()
    assert free > 0, "nothing free on %s" % node
    manifest = _manifest(journeys, "shared-gpu-job", ns, "--pool", "l40s")

    def pin(body):
        body["spec"]["template"]["spec"]["nodeSelector"] = {"kubernetes.io/hostname": node}
    try:
        for i in range(free + 1):
            _submit(lab, manifest, name="share-%d" % i, mutate=pin)
        _settled(lab, ns, free + 1, free + 1)

        def placed():
            pods = lab.core.list_namespaced_pod(ns).items
            bound = [p for p in pods if p.spec.node_name]
            unschedulable = [p for p in pods if not p.spec.node_name and any(
                c.reason == "Unschedulable" for c in p.status.conditions or [])]
            return (bound, unschedulable) if len(bound) + len(unschedulable) == free + 1 and unschedulable else None
        bound, unschedulable = wait_for(placed, timeout=120, what="%d shares bound and one unschedulable" % free)
        assert len(bound) == free and len(unschedulable) == 1
        assert {p.spec.node_name for p in bound} == {node}
        message = next(c.message for c in unschedulable[0].status.conditions if c.reason == "Unschedulable")
        assert "nvidia.com/gpu" in message, message
        assert used() == allocatable
    finally:
        _drain(lab, ns)


def _vc_pods(lab, ns, job):
    return lab.core.list_namespaced_pod(ns, label_selector="volcano.sh/job-name=%s" % job).items


def test_volcano_gang_that_fits_runs_all_its_pods(lab, journeys):
    """The volcano-gang example, 2 workers x 6 GPUs on the A100 pool (2 nodes x 8): Volcano binds both workers
    (one per node) and the PodGroup runs."""
    ns = journeys["team"]["gang"]
    try:
        name = _submit(lab, _manifest(journeys, "volcano-gang", ns, "--pool", "a100", "--replicas", "2",
                                      "--gpus", "6"), name="fits")

        def bound():
            pods = _vc_pods(lab, ns, name)
            return pods if len(pods) == 2 and all(p.spec.node_name for p in pods) else None
        pods = wait_for(bound, timeout=120, what="both gang workers bound")
        assert {p.spec.node_name for p in pods} == {"lab-a100-1", "lab-a100-2"}
        assert {p.spec.scheduler_name for p in pods} == {"volcano"}
    finally:
        _drain(lab, ns)


def test_volcano_gang_that_cannot_fit_starts_none(lab, journeys):
    """3 workers x 6 GPUs (minAvailable 3) on the A100 pool: two would fit, the third cannot, so Volcano binds
    none of them and the PodGroup does not run (all or nothing), though the queue's quota would allow it."""
    ns = journeys["team"]["gang"]
    try:
        name = _submit(lab, _manifest(journeys, "volcano-gang", ns, "--pool", "a100", "--replicas", "3",
                                      "--gpus", "6"), name="toobig")
        wait_for(lambda: lab.custom.list_namespaced_custom_object(*PODGROUP[:2], ns, PODGROUP[2])["items"],
                 timeout=60, what="the gang's PodGroup")
        time.sleep(20)  # several Volcano scheduling cycles (1 s each)
        assert [p.metadata.name for p in _vc_pods(lab, ns, name) if p.spec.node_name] == []
        group = lab.custom.list_namespaced_custom_object(*PODGROUP[:2], ns, PODGROUP[2])["items"][0]
        assert group["spec"]["minMember"] == 3
        assert (group.get("status") or {}).get("phase") != "Running", group.get("status")
    finally:
        _drain(lab, ns)


def test_render_refuses_what_the_team_cannot_run(journeys):
    """Bad inputs of the helper: it names the config.yml key to add or fix and prints no manifest."""
    held = journeys["team"]["held"]
    cases = [
        (("gpu-job", held, "--pool", "l40s"), 'teams[0].quotas.l40s["nvidia.com/gpu"]: team %s has no quota' % held),
        (("gpu-job", held, "--pool", "v100"), "gpu_pools.v100: no such pool"),
        (("gpu-job", "nobody"), "teams: no team 'nobody'"),
        (("gpu-job", held, "--pool", "a100", "--gpus", "3"), "the job asks 3 but the team may use at most 2"),
        (("shared-gpu-job", held, "--pool", "a100"), "gpu_pools.a100.sharing.mode: the pool is not shared"),
    ]
    for args, expected in cases:
        res = _render(journeys, *args)
        assert res.returncode == 2 and res.stdout == "", (args, res.stdout)
        assert expected in res.stderr, (args, res.stderr)


def test_without_preemption_the_high_priority_job_waits(lab, journeys):
    """scheduling.preemption: Never (re-converged): the priority-class Job waits for quota instead of evicting the
    running one. Last in the module: it changes the teams' ClusterQueues."""
    config = copy.deepcopy(journeys["config"])
    config["scheduling"]["preemption"] = "Never"
    result = ansible_playbook("playbooks/scheduling.yml", *SKIP_INSTALL,
                              config=_write(journeys["tmp"], config, "no-preemption.yml"))
    assert result.rc == 0, result
    ns = journeys["team"]["prio"]
    cq = lab.custom.get_cluster_custom_object(*KUEUE, "clusterqueues", ns)
    assert cq["spec"]["preemption"]["withinClusterQueue"] == "Never"
    try:
        wls = _preemption_round(lab, journeys, ns)
        time.sleep(5)
        wls = _workloads(lab, ns)
        assert _admitted(wls["low"]) and not _admitted(wls["high"])
        assert _cond(wls["low"], "Evicted") is None or _cond(wls["low"], "Evicted")["status"] == "False"
    finally:
        _drain(lab, ns)
