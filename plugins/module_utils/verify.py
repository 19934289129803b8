# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
# Apache License 2.0 (see LICENSE), or at your option GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt), like every module file (see README, Licensing).
"""Post-deploy verification (playbooks/verify.yml): what the API server holds, compared with the plan.

Pure functions. The role ``cluster_verify`` reads the cluster with ``kubernetes.core.k8s_info`` /
``helm_info`` into an *observed* dict and turns it into report checks here:

* ``expected(plan)`` -- what to read: the service charts (Helm releases), the namespaces whose
  Deployments must be Available, the objects the collection creates (Kueue, Volcano, KServe), and one
  GPU smoke Job per pool;
* ``checks(plan, observed)`` -- report checks (``host`` is a node name, a service or ``cluster``):
  nodes Ready; allocatable GPU resources per node equal to the plan (full GPUs, MIG resources, shared
  replicas); MIG state ``success`` where a layout is set; the GPU Operator's ClusterPolicy ready;
  charts deployed, controllers Available, objects present and, where a controller reports a status,
  ready; the smoke Jobs complete; with the opt-in journey smoke, a team's quota holds (Kueue) and a gang
  starts whole (Volcano), see ``journeys``.

A check is module_utils/report.py's ``{"host", "check", "status", "message", "details"}`` with status ok /
warn / fail / skip; report.build() turns them into the report.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.gpufleet.platform.plugins.module_utils import report, tenancy, versions

POOL_LABEL = tenancy.POOL_LABEL
MIG_STATE_LABEL = "nvidia.com/mig.config.state"
MIG_CONFIG_LABEL = "nvidia.com/mig.config"
SMOKE_NAMESPACE = "gpufleet-verify"
SMOKE_LABEL = "gpufleet.io/verify-smoke"
# kinds the collection creates, by service: (apiVersion, kind, how readiness is read)
KINDS = {
    "ResourceFlavor": "kueue.x-k8s.io/v1beta2",
    "WorkloadPriorityClass": "kueue.x-k8s.io/v1beta2",
    "ClusterQueue": "kueue.x-k8s.io/v1beta2",
    "LocalQueue": "kueue.x-k8s.io/v1beta2",
    "Queue": "scheduling.volcano.sh/v1beta1",
    "InferenceService": "serving.kserve.io/v1beta1",
    "LLMInferenceService": "serving.kserve.io/v1alpha2",
    "ClusterServingRuntime": "serving.kserve.io/v1alpha1",
}
# the condition (or state) that says a controller accepted the object; absent = no status reported yet
READY_CONDITION = {"ClusterQueue": "Active", "LocalQueue": "Active", "InferenceService": "Ready",
                   "LLMInferenceService": "Ready"}


class VerifyError(ValueError):
    """The observed input does not have the shape the role produces."""


def check(host, name, status, message, **details):
    return report.check(host, name, status, message, details)


def _q(value):
    """A Kubernetes quantity of devices (always an integer count) as int; None when absent/odd."""
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _meta(obj):
    return obj.get("metadata") or {}


def _conditions(obj):
    return {c.get("type"): c for c in ((obj.get("status") or {}).get("conditions") or []) if isinstance(c, dict)}


def _enabled(plan, service):
    return bool((plan.get("services") or {}).get(service, {}).get("enabled"))


def _object_ref(obj):
    meta = _meta(obj)
    return {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "name": meta.get("name"),
            "namespace": meta.get("namespace")}


def expected_objects(plan, kueue=None, volcano=None, kserve=None):
    """The objects the collection creates for the enabled services, as refs.

    ``kueue`` / ``volcano``: the output of tenancy.kueue_objects / volcano_objects (the role computes them
    with the same filters the kueue and volcano roles apply); ``kserve``: serving.plan_models(service).
    """
    refs = []
    if _enabled(plan, "kueue") and kueue:
        refs += [_object_ref(o) for o in kueue.get("cluster", []) + kueue.get("namespaced", [])]
    if _enabled(plan, "volcano") and volcano:
        refs += [_object_ref(o) for o in volcano.get("cluster", [])]
    if _enabled(plan, "kserve") and kserve:
        runtime = kserve.get("runtime_name")
        if runtime:
            refs.append({"apiVersion": KINDS["ClusterServingRuntime"], "kind": "ClusterServingRuntime",
                         "name": runtime, "namespace": None})
        for model in kserve.get("models") or []:
            kind = model.get("kind") or "InferenceService"
            refs.append({"apiVersion": KINDS[kind], "kind": kind, "name": model["name"], "namespace": model.get("namespace")})
    return refs


def smoke_resource(pool):
    """The one device a pool's smoke Job asks for: a full GPU, else the pool's first (smallest) resource."""
    resources = pool.get("resources_per_node") or {}
    if "nvidia.com/gpu" in resources:
        return "nvidia.com/gpu"
    return sorted(resources)[0] if resources else None


def smoke_image(plan, image=None):
    """The smoke Job's image: ``image`` when given, else the pinned one, under ``airgap.image_registry``."""
    image = image or versions.IMAGES["gpu_smoke"]
    airgap = plan.get("airgap") or {}
    registry = airgap.get("image_registry") if airgap.get("enabled") else None
    if registry and "/" in image:
        image = "%s/%s" % (registry.rstrip("/"), image.split("/", 1)[1])
    return image


def smoke_jobs(plan, image=None, command=("nvidia-smi", "-L"), timeout_seconds=300, namespace=SMOKE_NAMESPACE):
    """One Job per pool with nodes: one device of the pool's resource, pinned to the pool's nodes.

    ``NVIDIA_DISABLE_REQUIRE`` lets the image run on any driver branch: the Job only lists the device.
    """
    image = smoke_image(plan, image)
    jobs = []
    for name, pool in sorted((plan.get("pools") or {}).items()):
        resource = smoke_resource(pool)
        if not pool.get("nodes") or not resource:
            continue
        jobs.append({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "gpu-smoke-" + name, "namespace": namespace,
                         "labels": {SMOKE_LABEL: name, "app.kubernetes.io/managed-by": "gpufleet",
                                    "app.kubernetes.io/part-of": "gpufleet-platform"}},
            "spec": {
                "backoffLimit": 0,
                "activeDeadlineSeconds": int(timeout_seconds),
                "ttlSecondsAfterFinished": 3600,
                "template": {
                    "metadata": {"labels": {SMOKE_LABEL: name}},
                    "spec": {
                        "restartPolicy": "Never",
                        "nodeSelector": {POOL_LABEL: name},
                        "tolerations": tenancy.pool_tolerations(pool),
                        "containers": [{
                            "name": "smoke", "image": image, "command": list(command),
                            "env": [{"name": "NVIDIA_DISABLE_REQUIRE", "value": "true"}],
                            "resources": {"limits": {resource: 1}},
                        }],
                    },
                },
            },
        })
    return jobs


JOURNEY_NAMESPACE = "gpufleet-verify-journeys"
JOURNEY_LABEL = "gpufleet.io/verify-journey"
JOURNEY_QUEUE = "gpufleet-verify-journeys"
JOURNEY_GANG = 2  # workers of the gang journey


def journey_pool(plan):
    """(pool name, resource) the journey smoke uses: the first pool with nodes and a device resource, or None."""
    for name, pool in sorted((plan.get("pools") or {}).items()):
        resource = smoke_resource(pool)
        if pool.get("nodes") and resource:
            return name, resource
    return None


def _journey_job(name, journey, resource, image, command, annotations, labels=None):
    template = {"metadata": {"labels": {JOURNEY_LABEL: journey}},
                "spec": {"restartPolicy": "Never",
                         "containers": [{"name": "journey", "image": image, "command": list(command),
                                         "env": [{"name": "NVIDIA_DISABLE_REQUIRE", "value": "true"}],
                                         "resources": {"limits": {resource: 1}}}]}}
    if annotations:
        template["metadata"]["annotations"] = dict(annotations)
    meta = {"name": name, "namespace": JOURNEY_NAMESPACE,
            "labels": dict(labels or {}, **{JOURNEY_LABEL: journey, "app.kubernetes.io/managed-by": "gpufleet",
                                            "app.kubernetes.io/part-of": "gpufleet-platform"})}
    return meta, template


def journeys(plan, image=None, command=("sh", "-c", "nvidia-smi -L; sleep 600"), annotations=None):
    """What the opt-in journey smoke (verify.yml -e verify_journeys=true) creates, in its own namespace:

    * ``quota-held`` (Kueue on): a ClusterQueue with no cohort and a quota of 1 device of the journey pool's
      resource, its LocalQueue, and 2 one-device Jobs: one must be admitted, the other must wait;
    * ``gang-fit`` (Volcano on): a Volcano Queue and a Volcano Job of JOURNEY_GANG one-device workers with
      minAvailable JOURNEY_GANG: all of them must be bound to nodes of the pool.

    The pods sleep after ``nvidia-smi -L`` so that they hold their devices while the run looks; the run deletes
    everything afterwards. Returns {"pool", "resource", "setup": [...], "workloads": [...], "journeys": [...]}, or
    None when no pool has nodes or neither Kueue nor Volcano is on.
    """
    found = journey_pool(plan)
    kueue, volcano = _enabled(plan, "kueue"), _enabled(plan, "volcano")
    if not found or not (kueue or volcano):
        return None
    pool_name, resource = found
    pool = plan["pools"][pool_name]
    image = smoke_image(plan, image)
    part = {"app.kubernetes.io/managed-by": "gpufleet", "app.kubernetes.io/part-of": "gpufleet-platform"}
    setup = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": JOURNEY_NAMESPACE, "labels": dict(part)}}]
    workloads, names = [], []
    if kueue:
        names.append("quota-held")
        setup.append({"apiVersion": KINDS["ClusterQueue"], "kind": "ClusterQueue",
                      "metadata": {"name": JOURNEY_QUEUE, "labels": dict(part)},
                      "spec": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": JOURNEY_NAMESPACE}},
                               "resourceGroups": [{"coveredResources": [resource], "flavors": [
                                   {"name": pool_name, "resources": [{"name": resource, "nominalQuota": "1"}]}]}]}})
        setup.append({"apiVersion": KINDS["LocalQueue"], "kind": "LocalQueue",
                      "metadata": {"name": tenancy.LOCAL_QUEUE, "namespace": JOURNEY_NAMESPACE, "labels": dict(part)},
                      "spec": {"clusterQueue": JOURNEY_QUEUE}})
        for i in range(2):
            meta, template = _journey_job("quota-held-%d" % i, "quota-held", resource, image, command, annotations,
                                          labels={tenancy.QUEUE_LABEL: tenancy.LOCAL_QUEUE})
            workloads.append({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
                              "spec": {"backoffLimit": 0, "template": template}})
    if volcano:
        names.append("gang-fit")
        setup.append({"apiVersion": KINDS["Queue"], "kind": "Queue",
                      "metadata": {"name": JOURNEY_QUEUE, "labels": dict(part)},
                      "spec": {"weight": 1, "reclaimable": False}})
        meta, template = _journey_job("gang-fit", "gang-fit", resource, image, command, annotations)
        template["spec"]["nodeSelector"] = {POOL_LABEL: pool_name}
        template["spec"]["tolerations"] = tenancy.pool_tolerations(pool)
        workloads.append({"apiVersion": "batch.volcano.sh/v1alpha1", "kind": "Job", "metadata": meta,
                          "spec": {"schedulerName": "volcano", "queue": JOURNEY_QUEUE, "minAvailable": JOURNEY_GANG,
                                   "tasks": [{"name": "worker", "replicas": JOURNEY_GANG, "template": template}]}})
    return {"pool": pool_name, "resource": resource, "setup": setup, "workloads": workloads, "journeys": names}


def _journey_checks(plan, observed):
    """Checks of the journey smoke: ``journey_workloads`` (Kueue Workloads) and ``journey_pods`` of its namespace;
    ``journey_skipped``: why it did not run. Nothing when the journeys were not asked for."""
    if not observed.get("journeys_requested"):
        return []
    spec = journeys(plan)
    if spec is None:
        return [check("cluster", "journey", "skip", "no pool with nodes, or neither Kueue nor Volcano is on")]
    skipped = observed.get("journey_skipped")
    what = "%s in pool %s" % (spec["resource"], spec["pool"])
    out = []
    if "quota-held" in spec["journeys"]:
        if skipped:
            out.append(check("cluster", "journey-quota-held", "skip", skipped))
        else:
            wls = observed.get("journey_workloads") or []
            admitted = [w for w in wls if (_conditions(w).get("Admitted") or {}).get("status") == "True"]
            waiting = [w for w in wls if (_conditions(w).get("QuotaReserved") or {}).get("status") == "False"]
            msg = "2 one-device Jobs on a quota of 1 x %s: %d admitted, %d waiting" % (what, len(admitted), len(waiting))
            if len(admitted) == 1 and len(waiting) == 1:
                reason = (_conditions(waiting[0]).get("QuotaReserved") or {}).get("message") or ""
                out.append(check("cluster", "journey-quota-held", "ok", msg + (" (%s)" % reason if reason else "")))
            else:
                out.append(check("cluster", "journey-quota-held", "fail", msg + " (expected 1 and 1)"))
    if "gang-fit" in spec["journeys"]:
        if skipped:
            out.append(check("cluster", "journey-gang-fit", "skip", skipped))
        else:
            pods = [p for p in observed.get("journey_pods") or []
                    if (_meta(p).get("labels") or {}).get(JOURNEY_LABEL) == "gang-fit"]
            bound = sorted({(p.get("spec") or {}).get("nodeName") for p in pods if (p.get("spec") or {}).get("nodeName")})
            count = sum(1 for p in pods if (p.get("spec") or {}).get("nodeName"))
            msg = "Volcano gang of %d x 1 %s (minAvailable %d): %d bound" % (JOURNEY_GANG, what, JOURNEY_GANG, count)
            if count == JOURNEY_GANG:
                out.append(check("cluster", "journey-gang-fit", "ok", msg + " (on %s)" % ", ".join(bound)))
            else:
                out.append(check("cluster", "journey-gang-fit", "fail", msg + " (expected all %d)" % JOURNEY_GANG))
    return out


def journeys_settled(plan, observed, journey=None):
    """True when the journey checks (only ``journey``'s: quota-held or gang-fit, when given) would all pass: the
    wait loops' condition."""
    checks_ = [c for c in _journey_checks(plan, dict(observed, journeys_requested=True))
               if journey is None or c["check"] == "journey-" + journey]
    return bool(checks_) and all(c["status"] == "ok" for c in checks_)


def _node_checks(plan, nodes):
    out = []
    by_name = {_meta(n).get("name"): n for n in nodes}
    pools = plan.get("pools") or {}
    for node in plan.get("nodes") or []:
        name = node["name"]
        obj = by_name.get(name)
        if obj is None:
            out.append(check(name, "node-ready", "fail", "node is not registered with the API server"))
            continue
        ready = _conditions(obj).get("Ready", {})
        if ready.get("status") == "True":
            out.append(check(name, "node-ready", "ok", "Ready"))
        else:
            out.append(check(name, "node-ready", "fail", "not Ready (%s: %s)" % (
                ready.get("reason") or "no Ready condition", ready.get("message") or "")))
        if (obj.get("spec") or {}).get("unschedulable"):
            out.append(check(name, "node-schedulable", "warn", "cordoned (spec.unschedulable)"))
        pool = pools.get(node.get("pool")) if node.get("pool") else None
        if pool is None:
            continue
        out += _capacity_checks(name, node["pool"], pool, obj)
    return out


def _capacity_checks(name, pool_name, pool, obj):
    out = []
    allocatable = (obj.get("status") or {}).get("allocatable") or {}
    want = pool.get("resources_per_node") or {}
    wrong = []
    for resource, count in sorted(want.items()):
        have = _q(allocatable.get(resource))
        if have != count:
            wrong.append("%s %s (plan: %d)" % (resource, "absent" if have is None else have, count))
    if wrong:
        out.append(check(name, "gpu-capacity", "fail", "pool %s: allocatable %s" % (pool_name, ", ".join(wrong)),
                         expected=want, allocatable={k: v for k, v in allocatable.items() if k.startswith("nvidia.com/")}))
    else:
        out.append(check(name, "gpu-capacity", "ok", ", ".join("%s=%d" % kv for kv in sorted(want.items()))
                         or "no GPU resources planned"))
    mig = pool.get("mig") or {}
    if mig.get("enabled"):
        labels = _meta(obj).get("labels") or {}
        state = labels.get(MIG_STATE_LABEL)
        config = labels.get(MIG_CONFIG_LABEL)
        if state == "success" and config == mig.get("config_name"):
            out.append(check(name, "mig-state", "ok", "%s applied" % config))
        elif state == "success":
            out.append(check(name, "mig-state", "fail", "MIG config %r applied, the plan says %r"
                             % (config, mig.get("config_name"))))
        else:
            out.append(check(name, "mig-state", "fail", "MIG state %r for config %r (%s); read the MIG "
                             "manager's log on this node" % (state, config, MIG_STATE_LABEL), state=state))
    return out


def _operator_checks(plan, cluster_policies):
    if not _enabled(plan, "gpu_operator"):
        return []
    if not cluster_policies:
        return [check("gpu_operator", "cluster-policy", "fail", "no ClusterPolicy (nvidia.com/v1) found")]
    out = []
    for cp in cluster_policies:
        state = (cp.get("status") or {}).get("state")
        status = "ok" if state == "ready" else "fail"
        out.append(check("gpu_operator", "cluster-policy", status, "ClusterPolicy %s state %s"
                         % (_meta(cp).get("name"), state or "(not reported)")))
    return out


def deployed_services(plan):
    """The services whose charts the collection installs: enabled ones; cert-manager only when KServe or Slurm
    is on (they need it) and ``install`` is true (else an existing cert-manager is asserted, not ours to check)."""
    services = plan.get("services") or {}
    out = []
    for svc, conf in sorted(services.items()):
        if not conf.get("enabled"):
            continue
        if svc == "cert_manager" and (not conf.get("install", True) or not (
                _enabled(plan, "kserve") or _enabled(plan, "slurm"))):
            continue
        out.append(svc)
    return out


def _releases(results):
    """{"<namespace>/<chart>": helm_info status} from the role's helm_info loop results (item = the chart)."""
    return {"%s/%s" % (r["item"]["namespace"], r["item"]["name"]): r.get("status") or {} for r in results or []}


def _service_checks(plan, releases, deployments):
    releases = _releases(releases)
    out = []
    for svc in deployed_services(plan):
        conf = plan["services"][svc]
        for chart in conf.get("charts") or []:
            key = "%s/%s" % (chart["namespace"], chart["name"])
            rel = releases.get(key) or {}
            if rel.get("status") == "deployed":
                out.append(check(svc, "helm-release", "ok", "%s %s deployed" % (key, rel.get("chart", ""))))
            else:
                out.append(check(svc, "helm-release", "fail", "release %s is %s" % (key, rel.get("status") or "not installed")))
        namespaces = sorted({c["namespace"] for c in conf.get("charts") or []})
        for dep in deployments:
            meta = _meta(dep)
            if meta.get("namespace") not in namespaces:
                continue
            avail = _conditions(dep).get("Available", {})
            desired = (dep.get("spec") or {}).get("replicas", 1)
            ready = (dep.get("status") or {}).get("readyReplicas", 0)
            if avail.get("status") == "True" or desired == 0:
                out.append(check(svc, "deployment", "ok", "%s/%s Available (%s/%s ready)"
                                 % (meta["namespace"], meta["name"], ready, desired)))
            else:
                out.append(check(svc, "deployment", "fail", "%s/%s not Available (%s/%s ready): %s"
                                 % (meta["namespace"], meta["name"], ready, desired, avail.get("message", ""))))
    return out


def _service_of(kind):
    if kind in ("Queue",):
        return "volcano"
    if kind in ("InferenceService", "LLMInferenceService", "ClusterServingRuntime"):
        return "kserve"
    return "kueue"


def _object_checks(expected, existing):
    have = {}
    for obj in existing:
        meta = _meta(obj)
        have[(obj.get("kind"), meta.get("namespace"), meta.get("name"))] = obj
    out = []
    for ref in expected:
        key = (ref["kind"], ref.get("namespace"), ref["name"])
        label = "%s %s" % (ref["kind"], ("%s/%s" % (ref["namespace"], ref["name"])) if ref.get("namespace") else ref["name"])
        obj = have.get(key)
        svc = _service_of(ref["kind"])
        if obj is None:
            out.append(check(svc, "object", "fail", "%s is missing" % label))
            continue
        cond_type = READY_CONDITION.get(ref["kind"])
        if ref["kind"] == "Queue":
            state = (obj.get("status") or {}).get("state")
            if state is None:
                out.append(check(svc, "object", "warn", "%s present; no state reported (is the controller running?)" % label))
            else:
                out.append(check(svc, "object", "ok" if state == "Open" else "fail", "%s state %s" % (label, state)))
            continue
        if cond_type is None:
            out.append(check(svc, "object", "ok", "%s present" % label))
            continue
        cond = _conditions(obj).get(cond_type)
        if cond is None:
            out.append(check(svc, "object", "warn", "%s present; no %s condition reported yet (is the controller running?)"
                             % (label, cond_type)))
        elif cond.get("status") == "True":
            out.append(check(svc, "object", "ok", "%s %s" % (label, cond_type)))
        else:
            detail = "%s %s" % (cond.get("reason", ""), cond.get("message", ""))
            out.append(check(svc, "object", "fail", "%s not %s: %s" % (label, cond_type, detail.strip())))
    return out


def _smoke_checks(plan, jobs, pods, skipped):
    """``jobs`` / ``pods``: the smoke Jobs and their pods (label SMOKE_LABEL=<pool>); ``skipped``: why none ran."""
    out = []
    jobs_by_pool = {(_meta(j).get("labels") or {}).get(SMOKE_LABEL): j for j in jobs or []}
    pods_by_pool = {}
    for pod in pods or []:
        pods_by_pool.setdefault((_meta(pod).get("labels") or {}).get(SMOKE_LABEL), []).append(pod)
    for name, pool in sorted((plan.get("pools") or {}).items()):
        resource = smoke_resource(pool)
        if not pool.get("nodes") or not resource:
            continue
        host = "pool/" + name
        if skipped:
            out.append(check(host, "gpu-smoke-job", "skip", skipped))
            continue
        job = jobs_by_pool.get(name)
        if job is None:
            out.append(check(host, "gpu-smoke-job", "fail", "no smoke Job found for the pool"))
            continue
        conds = _conditions(job)
        pool_pods = pods_by_pool.get(name, [])
        where = ", ".join(sorted({(p.get("spec") or {}).get("nodeName") or "unscheduled" for p in pool_pods})) or "no pod"
        if (conds.get("Complete") or {}).get("status") == "True":
            out.append(check(host, "gpu-smoke-job", "ok", "1 x %s: completed on %s" % (resource, where)))
            continue
        failed = conds.get("Failed") or {}
        reason = failed.get("message") or failed.get("reason") or "not complete within the timeout"
        phases = ", ".join("%s %s on %s" % (_meta(p).get("name"), (p.get("status") or {}).get("phase"),
                                            (p.get("spec") or {}).get("nodeName") or "no node") for p in pool_pods)
        out.append(check(host, "gpu-smoke-job", "fail", "1 x %s: %s (pods: %s)" % (resource, reason, phases or "none")))
    return out


def checks(plan, observed):
    """Every verification check for ``observed`` (see the module docstring for its keys)."""
    if not isinstance(observed, dict):
        raise VerifyError("observed must be a dict, got %s" % type(observed).__name__)
    out = []
    out += _node_checks(plan, observed.get("nodes") or [])
    out += _operator_checks(plan, observed.get("cluster_policies") or [])
    out += _service_checks(plan, observed.get("releases") or [], observed.get("deployments") or [])
    out += _object_checks(observed.get("expected_objects") or [], observed.get("objects") or [])
    out += _smoke_checks(plan, observed.get("smoke_jobs"), observed.get("smoke_pods"), observed.get("smoke_skipped"))
    out += _journey_checks(plan, observed)
    return out
