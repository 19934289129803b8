# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# Apache License 2.0 (see LICENSE)
"""Teams and GPU quotas as Kubernetes objects: Kueue and Volcano, computed from the validated plan.

Pure functions over plain data (the ``gpufleet_plan`` fact), no Ansible imports. The kueue and volcano
roles call them through the ``gpufleet.platform.*`` filters in ``plugins/filter/tenancy.py``.

* Kueue (``kueue.x-k8s.io/v1beta2``, Kueue v0.19.2): one ResourceFlavor per GPU pool (a pool is one GPU
  model with one MIG layout and one sharing mode, so its flavor covers the whole GPUs, the MIG profiles or
  the time-sliced replicas it advertises) plus one CPU flavor for cpu/memory; one ClusterQueue per team in
  a shared cohort; one WorkloadPriorityClass per team that sets ``priority``; the team namespace and a
  LocalQueue named ``default`` in it (Kueue's LocalQueue defaulting picks it for jobs without a
  ``kueue.x-k8s.io/queue-name`` label).
* Volcano (``scheduling.volcano.sh/v1beta1``, Volcano v1.15.1): one Queue per team and the scheduler
  configuration (actions and plugin tiers).
* Declarative removal: every object carries ``app.kubernetes.io/managed-by: gpufleet`` and the cluster
  label; :func:`stale_objects` names what the cluster holds that the plan no longer wants.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.gpufleet.platform.plugins.module_utils.quantity import canonical

KUEUE_API = "kueue.x-k8s.io/v1beta2"
KUEUE_CONFIG_API = "config.kueue.x-k8s.io/v1beta2"
VOLCANO_API = "scheduling.volcano.sh/v1beta1"

MANAGED_BY = "app.kubernetes.io/managed-by"
PART_OF = "app.kubernetes.io/part-of"
COMPONENT = "app.kubernetes.io/component"
CLUSTER_LABEL = "gpufleet.io/cluster"
TEAM_LABEL = "gpufleet.io/team"
POOL_LABEL = "gpufleet.io/pool"
DELETE_LABEL = "gpufleet.io/delete-namespace-on-removal"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"

# The flavor cpu and memory quotas are counted in (no node labels: any node).
CPU_FLAVOR = "gpufleet-cpu"
# The LocalQueue in each team namespace; "default" is what Kueue's LocalQueue defaulting (GA in v0.17) uses
# for jobs that carry no queue-name label.
LOCAL_QUEUE = "default"
# Volcano creates these queues itself; a team cannot take their names.
VOLCANO_RESERVED_QUEUES = ("default", "root")

# Kueue's own defaults for the rest of the Configuration (config/components/manager, v0.19.2): the chart
# replaces the whole file, so they are repeated here.
_KUEUE_CONFIG_BASE = {
    "health": {"healthProbeBindAddress": ":8081"},
    "metrics": {"bindAddress": ":8443"},
    "webhook": {"port": 9443},
    "leaderElection": {"leaderElect": True, "resourceName": "c1f6bfd2.kueue.x-k8s.io"},
    "controller": {"groupKindConcurrency": {
        "Job.batch": 5, "Pod": 5, "Workload.kueue.x-k8s.io": 10, "LocalQueue.kueue.x-k8s.io": 5,
        "ClusterQueue.kueue.x-k8s.io": 5, "ResourceFlavor.kueue.x-k8s.io": 1}},
    "clientConnection": {"qps": 300, "burst": 500},
}
KUEUE_DEFAULT_INTEGRATIONS = ("batch/job",)
POD_INTEGRATIONS = ("pod", "deployment", "statefulset", "leaderworkerset.x-k8s.io/leaderworkerset")

# Volcano scheduler plugins by tier, in the order of the upstream default volcano-scheduler.conf.
_VOLCANO_TIERS = (("priority", "gang", "conformance"),
                  ("drf", "predicates", "proportion", "capacity", "nodeorder", "binpack"))
VOLCANO_DEFAULT_PLUGINS = ("gang", "drf", "proportion", "binpack", "priority", "predicates", "nodeorder")

_MIG_RESOURCE = re.compile(r"^nvidia\.com/mig-(\d+)g\.")


class TenancyError(ValueError):
    """The plan cannot be turned into scheduling objects (names the key and the fix)."""


# --------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------

def labels(plan, component, extra=None):
    """The labels every object of ``component`` carries (removal selects on them)."""
    out = {
        MANAGED_BY: "gpufleet",
        PART_OF: "gpufleet-platform",
        COMPONENT: component,
        CLUSTER_LABEL: plan["cluster"]["name"],
    }
    out.update(extra or {})
    return out


def selector(plan, component):
    """Label selector (string) matching what :func:`labels` puts on objects of ``component``."""
    return "%s=gpufleet,%s=%s,%s=%s" % (MANAGED_BY, COMPONENT, component, CLUSTER_LABEL, plan["cluster"]["name"])


def _meta(plan, component, name, namespace=None, extra=None, annotations=None):
    meta = {"name": name, "labels": labels(plan, component, extra)}
    if namespace:
        meta["namespace"] = namespace
    if annotations:
        meta["annotations"] = annotations
    return meta


# --------------------------------------------------------------------------------------------
# Quotas
# --------------------------------------------------------------------------------------------

def _teams(plan):
    return plan.get("teams") or []


def _scheduling(plan):
    sched = dict(plan.get("scheduling") or {})
    sched.setdefault("allow_overcommit", False)
    sched.setdefault("cohort", "gpufleet")
    sched.setdefault("preemption", "LowerPriority")
    sched.setdefault("queueing_strategy", "BestEffortFIFO")
    return sched


def _entry(value):
    return value if isinstance(value, dict) else {"nominal": value}


def quota_totals(plan):
    """{pool: {resource: {"nominal": sum, "capacity": n, "teams": {team: nominal}}}} over every team."""
    totals = {}
    for team in _teams(plan):
        for pool, resources in sorted((team.get("quotas") or {}).items()):
            info = plan["pools"].get(pool) or {}
            capacity = info.get("quota_capacity", info.get("capacity")) or {}
            for resource, value in sorted(resources.items()):
                slot = totals.setdefault(pool, {}).setdefault(
                    resource, {"nominal": 0, "capacity": capacity.get(resource, 0), "teams": {}})
                nominal = _entry(value)["nominal"]
                slot["nominal"] += nominal
                slot["teams"][team["name"]] = nominal
    return totals


def check_capacity(plan):
    """Raise TenancyError when quotas exceed pool capacity and over-commit is off; else return the totals.

    The same rule runs in validation (config_rules.rule_teams); this is the role's preflight guard for a
    plan that was built some other way.
    """
    totals = quota_totals(plan)
    if _scheduling(plan)["allow_overcommit"]:
        return totals
    for pool, resources in sorted(totals.items()):
        for resource, slot in sorted(resources.items()):
            if slot["nominal"] > slot["capacity"]:
                raise TenancyError(
                    "teams[].quotas.%s[\"%s\"]: team quotas add up to %d but pool '%s' provides %d; lower the quotas, "
                    "add nodes, or set scheduling.allow_overcommit: true"
                    % (pool, resource, slot["nominal"], pool, slot["capacity"]))
    return totals


# --------------------------------------------------------------------------------------------
# Namespaces (shared by Kueue and Volcano)
# --------------------------------------------------------------------------------------------

def namespaces(plan):
    """One Namespace per team. Whether a removed team's namespace is deleted is recorded on it as a label:
    the team is gone from config by then, so its setting must live on the cluster."""
    out = []
    for team in _teams(plan):
        extra = {TEAM_LABEL: team["name"],
                 DELETE_LABEL: "true" if team.get("delete_namespace_on_removal") else "false"}
        annotations = {"gpufleet.io/description": team["description"]} if team.get("description") else None
        out.append({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": _meta(plan, "tenancy", team["namespace"], extra=extra, annotations=annotations)})
    return out


# --------------------------------------------------------------------------------------------
# Kueue
# --------------------------------------------------------------------------------------------

def toleration(taint):
    """The toleration of one pool taint ({key, value?, effect}): Equal on its value, else Exists."""
    tol = {"key": taint["key"], "effect": taint["effect"]}
    if taint.get("value") not in (None, ""):
        tol.update(operator="Equal", value=str(taint["value"]))
    else:
        tol["operator"] = "Exists"
    return tol


def pool_tolerations(pool):
    """A toleration for every taint of a pool: what every workload pinned to the pool carries."""
    return [toleration(t) for t in pool.get("taints") or []]


def flavor_pools(plan):
    """Pools that become ResourceFlavors: pools with nodes, and pools a team has a quota in."""
    used = {pool for team in _teams(plan) for pool in (team.get("quotas") or {})}
    return sorted(name for name, pool in plan["pools"].items() if pool.get("node_count") or name in used)


def resource_flavors(plan):
    """ResourceFlavor per GPU pool (selects the pool label; tolerates the pool's taints) and the CPU flavor."""
    if CPU_FLAVOR in plan["pools"]:
        raise TenancyError("gpu_pools.%s: the name is reserved for the Kueue CPU flavor; rename the pool" % CPU_FLAVOR)
    out = [{"apiVersion": KUEUE_API, "kind": "ResourceFlavor",
            "metadata": _meta(plan, "kueue", CPU_FLAVOR), "spec": {}}]
    for name in flavor_pools(plan):
        pool = plan["pools"][name]
        spec = {"nodeLabels": {POOL_LABEL: name}}
        tolerations = pool_tolerations(pool)
        if tolerations:
            spec["tolerations"] = tolerations
        out.append({"apiVersion": KUEUE_API, "kind": "ResourceFlavor",
                    "metadata": _meta(plan, "kueue", name, extra={POOL_LABEL: name}), "spec": spec})
    return out


def _gpu_group(team):
    quotas = team.get("quotas") or {}
    covered = sorted({res for resources in quotas.values() for res in resources})
    flavors = []
    for pool in sorted(quotas):
        resources = []
        for res in covered:
            entry = _entry(quotas[pool].get(res, {"nominal": 0}))
            item = {"name": res, "nominalQuota": canonical(entry["nominal"])}
            if entry.get("borrowing_limit") is not None:
                item["borrowingLimit"] = canonical(entry["borrowing_limit"])
            if entry.get("lending_limit") is not None:
                item["lendingLimit"] = canonical(entry["lending_limit"])
            resources.append(item)
        flavors.append({"name": pool, "resources": resources})
    return {"coveredResources": covered, "flavors": flavors} if covered else None


def cluster_queues(plan, default_cpu, default_memory):
    """One ClusterQueue per team: cpu/memory in the CPU flavor, GPU quotas per pool flavor, one cohort."""
    sched = _scheduling(plan)
    preemption = {"withinClusterQueue": sched["preemption"],
                  "reclaimWithinCohort": "Never" if sched["preemption"] == "Never" else "Any"}
    out = []
    for team in _teams(plan):
        cpu_group = {"coveredResources": ["cpu", "memory"], "flavors": [{"name": CPU_FLAVOR, "resources": [
            {"name": "cpu", "nominalQuota": canonical(team.get("cpu") or default_cpu)},
            {"name": "memory", "nominalQuota": canonical(team.get("memory") or default_memory)}]}]}
        groups = [cpu_group]
        gpu = _gpu_group(team)
        if gpu:
            groups.append(gpu)
        out.append({
            "apiVersion": KUEUE_API, "kind": "ClusterQueue",
            "metadata": _meta(plan, "kueue", team["name"], extra={TEAM_LABEL: team["name"]}),
            "spec": {
                "cohortName": sched["cohort"],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": team["namespace"]}},
                "queueingStrategy": sched["queueing_strategy"],
                "preemption": preemption,
                "resourceGroups": groups,
            },
        })
    return out


def local_queues(plan):
    """The LocalQueue ``default`` in each team namespace, pointing at the team's ClusterQueue."""
    return [{"apiVersion": KUEUE_API, "kind": "LocalQueue",
             "metadata": _meta(plan, "kueue", LOCAL_QUEUE, team["namespace"], extra={TEAM_LABEL: team["name"]}),
             "spec": {"clusterQueue": team["name"]}} for team in _teams(plan)]


def workload_priority_classes(plan):
    """A WorkloadPriorityClass named after each team that sets ``priority`` (jobs opt in with the
    ``kueue.x-k8s.io/priority-class`` label)."""
    out = []
    for team in _teams(plan):
        if team.get("priority") is None:
            continue
        wpc = {"apiVersion": KUEUE_API, "kind": "WorkloadPriorityClass",
               "metadata": _meta(plan, "kueue", team["name"], extra={TEAM_LABEL: team["name"]}),
               "value": team["priority"]}
        wpc["description"] = "Priority of team %s (gpufleet config.yml)" % team["name"]
        out.append(wpc)
    return out


def kueue_objects(plan, default_cpu="1000", default_memory="4Ti"):
    """Every Kueue-side object, in apply order: cluster-scoped first, namespaced last."""
    check_capacity(plan)
    return {
        "namespaces": namespaces(plan),
        "cluster": resource_flavors(plan) + workload_priority_classes(plan)
        + cluster_queues(plan, default_cpu, default_memory),
        "namespaced": local_queues(plan),
    }


def mig_transformations(plan):
    """resources.transformations that charge each MIG profile as its share of a whole GPU (nvidia.com/gpu),
    e.g. 3g.40gb on a 7-slice GPU counts 428m GPUs."""
    out = {}
    for name, pool in sorted(plan["pools"].items()):
        if not (pool.get("mig") or {}).get("enabled"):
            continue
        slices = _compute_slices(pool)
        for res in sorted(pool.get("resources_per_node") or {}):
            match = _MIG_RESOURCE.match(res)
            if not match:
                continue
            milli = int(match.group(1)) * 1000 // slices
            if res in out and out[res] != milli:
                raise TenancyError("gpu_pools.%s: %s counts %dm GPUs here but %dm in another pool; one resource "
                                   "name can have one transformation" % (name, res, milli, out[res]))
            out[res] = milli
    return [{"input": res, "strategy": "Replace", "outputs": {"nvidia.com/gpu": "%dm" % milli}}
            for res, milli in sorted(out.items())]


def _compute_slices(pool):
    try:
        from ansible_collections.gpufleet.platform.plugins.module_utils import gpu_catalog
        return gpu_catalog.lookup(pool["model"]).compute_slices
    except Exception:  # unknown or auto model: the 7-slice GPUs (A100, H100, H200, B200) are the common case
        return 7


def kueue_configuration(plan, wait_timeout="5m", block_admission=False):
    """The controller Configuration (``config.kueue.x-k8s.io/v1beta2``) from services.kueue."""
    service = plan["services"]["kueue"]
    config = {"apiVersion": KUEUE_CONFIG_API, "kind": "Configuration"}
    config.update(_KUEUE_CONFIG_BASE)
    frameworks = list(service.get("integrations") or KUEUE_DEFAULT_INTEGRATIONS)
    config["integrations"] = {"frameworks": frameworks}
    # Kueue's default: never manage jobs in kube-system or its own namespace.
    config["managedJobsNamespaceSelector"] = {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", service["namespace"]]}]}
    if service.get("wait_for_pods_ready", True):
        config["waitForPodsReady"] = {"timeout": wait_timeout, "blockAdmission": bool(block_admission),
                                      "requeuingStrategy": {"timestamp": "Eviction", "backoffBaseSeconds": 60,
                                                            "backoffMaxSeconds": 3600}}
    if service.get("fair_sharing"):
        config["fairSharing"] = {"preemptionStrategies": ["LessThanOrEqualToFinalShare", "LessThanInitialShare"]}
    if service.get("count_mig_as_gpu"):
        transformations = mig_transformations(plan)
        if transformations:
            config["resources"] = {"transformations": transformations}
    if monitoring_on(plan):
        # kueue_cluster_queue_resource_{reservation,usage} per ClusterQueue, flavor and resource (the queue dashboard)
        config["metrics"] = dict(config["metrics"], enableClusterQueueResources=True)
    return config


def monitoring_on(plan):
    """Whether the platform runs Prometheus (services.monitoring): the component charts then switch their
    metrics endpoints and ServiceMonitors on."""
    return bool(((plan.get("services") or {}).get("monitoring") or {}).get("enabled"))


# --------------------------------------------------------------------------------------------
# Volcano
# --------------------------------------------------------------------------------------------

def _add(total, resource, amount):
    total[resource] = total.get(resource, 0) + amount


def _hierarchical(plan):
    return any((t.get("volcano") or {}).get("parent") for t in _teams(plan))


def volcano_plugins(plan):
    return list(plan["services"]["volcano"].get("scheduler_plugins") or VOLCANO_DEFAULT_PLUGINS)


def volcano_queue_resources(team, capacity_plugin=True):
    """(deserved, guarantee, capability) of a team's Volcano Queue, numbers and quantity strings as in config.

    Volcano has no flavors: a team's GPU quotas are summed per resource name over its pools.
    deserved = nominal (capacity plugin); guarantee = nominal - lending_limit (what is never lent);
    capability = nominal + borrowing_limit when every pool bounds borrowing for that resource."""
    deserved, guarantee, capability, unbounded = {}, {}, {}, set()
    for _pool, resources in sorted((team.get("quotas") or {}).items()):
        for res, value in sorted(resources.items()):
            entry = _entry(value)
            _add(deserved, res, entry["nominal"])
            if entry.get("lending_limit") is not None:
                _add(guarantee, res, entry["nominal"] - entry["lending_limit"])
            if entry.get("borrowing_limit") is None:
                unbounded.add(res)
            else:
                _add(capability, res, entry["nominal"] + entry["borrowing_limit"])
    capability = dict((res, n) for res, n in capability.items() if res not in unbounded)
    for key in ("cpu", "memory"):
        if team.get(key):
            deserved[key] = str(team[key])
    guarantee = dict((res, n) for res, n in guarantee.items() if n > 0)
    return (deserved if capacity_plugin else {}), guarantee, capability


def _quantities(resources):
    return dict((res, canonical(n)) for res, n in sorted(resources.items()))


def volcano_queues(plan):
    """One Volcano Queue per team (volcano_queue_resources), quantities in the API server's form."""
    plugins = volcano_plugins(plan)
    capacity_plugin = "capacity" in plugins
    hierarchy = _hierarchical(plan)
    out = []
    for team in _teams(plan):
        deserved, guarantee, capability = volcano_queue_resources(team, capacity_plugin)
        vol = team.get("volcano") or {}
        spec = {"weight": vol.get("weight", 1), "reclaimable": vol.get("reclaimable", True)}
        if capability:
            spec["capability"] = _quantities(capability)
        if guarantee:
            spec["guarantee"] = {"resource": _quantities(guarantee)}
        if deserved:
            spec["deserved"] = _quantities(deserved)
        if hierarchy and vol.get("parent"):
            spec["parent"] = vol["parent"]
        out.append({"apiVersion": VOLCANO_API, "kind": "Queue",
                    "metadata": _meta(plan, "volcano", team["name"], extra={TEAM_LABEL: team["name"]},
                                      annotations={"gpufleet.io/namespace": team["namespace"]}),
                    "spec": spec})
    # Parents before children: Volcano's admission webhook checks that a queue's parent exists.
    order = {t["name"]: _depth(plan, t["name"]) for t in _teams(plan)}
    return sorted(out, key=lambda q: (order[q["metadata"]["name"]], q["metadata"]["name"]))


def _depth(plan, name):
    parents = {t["name"]: (t.get("volcano") or {}).get("parent") for t in _teams(plan)}
    depth, seen = 0, set()
    while parents.get(name) and name not in seen:
        seen.add(name)
        name = parents[name]
        depth += 1
    return depth


def volcano_objects(plan):
    return {"namespaces": namespaces(plan), "cluster": volcano_queues(plan)}


def volcano_scheduler_config(plan):
    """volcano-scheduler.conf as a dict (the role writes it as YAML into custom.scheduler_config_override)."""
    plugins = volcano_plugins(plan)
    if "capacity" in plugins and "proportion" in plugins:
        raise TenancyError("services.volcano.scheduler_plugins: capacity and proportion conflict upstream; "
                           "keep one (capacity for hierarchical queues)")
    hierarchy = _hierarchical(plan)
    if hierarchy and "capacity" not in plugins:
        raise TenancyError("teams[].volcano.parent: hierarchical queues need the capacity plugin; put capacity "
                           "instead of proportion in services.volcano.scheduler_plugins")
    gpu_resources = sorted({res for pool in plan["pools"].values() for res in pool.get("resources_per_node") or {}})
    tiers = []
    for tier in _VOLCANO_TIERS:
        entries = []
        for name in tier:
            if name not in plugins:
                continue
            entry = {"name": name}
            if name in ("gang", "drf"):
                entry["enablePreemptable"] = False
            if name == "capacity" and hierarchy:
                entry["enableHierarchy"] = True
            if name == "binpack" and gpu_resources:
                args = {"binpack.weight": 10, "binpack.cpu": 1, "binpack.memory": 1,
                        "binpack.resources": ",".join(gpu_resources)}
                for res in gpu_resources:
                    args["binpack.resources.%s" % res] = 5
                entry["arguments"] = args
            entries.append(entry)
        if entries:
            tiers.append({"plugins": entries})
    actions = ["enqueue", "allocate", "backfill"]
    if "capacity" in plugins:
        actions.append("reclaim")
    return {"actions": ", ".join(actions), "tiers": tiers}


# --------------------------------------------------------------------------------------------
# Declarative removal
# --------------------------------------------------------------------------------------------

def _key(obj):
    meta = obj.get("metadata") or {}
    api = obj.get("apiVersion", "")
    return (api.split("/")[0] if "/" in api else "", obj.get("kind"), meta.get("namespace") or "", meta.get("name"))


def stale_objects(existing, desired):
    """Objects the cluster holds (``existing``: k8s_info resources, already selected by label) that
    ``desired`` no longer contains, as minimal definitions for ``state: absent``, namespaced first.

    A Namespace is only returned when it carries ``gpufleet.io/delete-namespace-on-removal=true``.
    """
    want = {_key(o) for o in desired}
    parents = {(o.get("metadata") or {}).get("name"): (o.get("spec") or {}).get("parent")
               for o in existing or [] if o.get("kind") == "Queue"}
    out = []
    for obj in existing or []:
        if _key(obj) in want:
            continue
        meta = obj.get("metadata") or {}
        if obj.get("kind") == "Namespace" and (meta.get("labels") or {}).get(DELETE_LABEL) != "true":
            continue
        item = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": {"name": meta["name"]}}
        if meta.get("namespace"):
            item["metadata"]["namespace"] = meta["namespace"]
        out.append(item)
    rank = {"LocalQueue": 0, "ClusterQueue": 1, "Queue": 1, "WorkloadPriorityClass": 2, "ResourceFlavor": 3,
            "Namespace": 9}

    def depth(obj):
        # Volcano refuses to delete a queue that still has children: deepest queues go first.
        name, seen, n = obj["metadata"]["name"], set(), 0
        while obj["kind"] == "Queue" and parents.get(name) and name not in seen:
            seen.add(name)
            name, n = parents[name], n + 1
        return n

    return sorted(out, key=lambda o: (rank.get(o["kind"], 5), -depth(o), o["metadata"].get("namespace", ""),
                                      o["metadata"]["name"]))
