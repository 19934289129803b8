# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# Apache License 2.0 (see LICENSE)
"""Team access as Kubernetes objects, computed from the validated plan (``teams[].access``, ``cluster.admin_group``).

Pure functions over plain data, no Ansible imports; the team_access role calls them through the filters in
``plugins/filter/access.py``. Per team that declares ``access``, in its namespace:

* a Role ``gpufleet-team`` to run and inspect workloads (pods, Jobs, Deployments, the job kinds of the enabled
  Kueue integrations and Volcano) and to read the team's LocalQueue and Workloads; nothing cluster-wide;
* a RoleBinding ``gpufleet-team`` of the team's groups (``cluster.oidc.groups_prefix`` prepended) and users;
* a ResourceQuota ``gpufleet-team`` whose hard limits are what Kueue can admit for the team
  (:func:`quota_ceilings`), so pods that bypass Kueue cannot take more; a LimitRange ``gpufleet-team`` with the
  default requests and limits (a quota on ``requests.cpu`` refuses pods that set none).

``cluster.admin_group`` becomes one ClusterRoleBinding to ``cluster-admin``. Every object carries the managed-by and
cluster labels (component ``access``), so :func:`tenancy.stale_objects` prunes what config no longer declares.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import re
from fractions import Fraction

from ansible_collections.gpufleet.platform.plugins.module_utils import quantity, tenancy

COMPONENT = "access"
RBAC_API = "rbac.authorization.k8s.io/v1"
RBAC_GROUP = "rbac.authorization.k8s.io"
TEAM_OBJECT = "gpufleet-team"  # the name of the Role, RoleBinding, ResourceQuota and LimitRange in a team namespace
# What the kueue role gives a team that sets no cpu/memory (kueue_default_cpu_quota, kueue_default_memory_quota)
DEFAULT_CPU_QUOTA = "1000"
DEFAULT_MEMORY_QUOTA = "4Ti"
CSR_SIGNER = "kubernetes.io/kube-apiserver-client"
RESERVED_PREFIX = "system:"

_ALL = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
_READ = ["get", "list", "watch"]
# The Role of every team: run and inspect workloads in the namespace, read its quota and queue objects.
_BASE_RULES = (
    ([""], ["configmaps", "persistentvolumeclaims", "pods", "pods/attach", "pods/exec", "pods/log",
            "pods/portforward", "secrets", "services"], _ALL),
    ([""], ["events", "limitranges", "resourcequotas"], _READ),
    (["events.k8s.io"], ["events"], _READ),
    (["batch"], ["cronjobs", "jobs"], _ALL),
    (["apps"], ["deployments", "replicasets", "statefulsets"], _ALL),
    (["kueue.x-k8s.io"], ["localqueues", "workloads"], _READ),
)


def _teams(plan):
    return [t for t in plan.get("teams") or [] if t.get("access") is not None]


def _meta(plan, name, namespace=None, team=None):
    meta = {"name": name, "labels": tenancy.labels(plan, COMPONENT, {tenancy.TEAM_LABEL: team} if team else None)}
    if namespace:
        meta["namespace"] = namespace
    return meta


# --------------------------------------------------------------------------------------------
# Quota ceilings: what Kueue can admit for a team (shared with config_rules)
# --------------------------------------------------------------------------------------------

def _entry(value):
    return value if isinstance(value, dict) else {"nominal": value}


def _lendable(team, pool, resource):
    entry = (team.get("quotas") or {}).get(pool, {}).get(resource)
    if entry is None:
        return 0
    entry = _entry(entry)
    return entry["lending_limit"] if entry.get("lending_limit") is not None else entry["nominal"]


def quota_ceilings(teams, index, mig_milli=None):
    """{resource: (ceiling, explanation)}: the most of each resource Kueue can admit for ``teams[index]``.

    ``teams`` are config or plan teams. Per pool: the nominal quota plus what the team may borrow, which is its
    ``borrowing_limit`` or, without one, everything the other teams can lend in that pool (their ``lending_limit``
    or their whole nominal quota), never more than they can lend. Summed per resource name over the pools (a
    ResourceQuota has no flavors). cpu and memory only when the team sets them (the CPU flavor has no borrowing
    limit; a team without a value lends the kueue role's default). ``mig_milli``: {pool: {MIG resource: milli-GPUs}}
    with ``services.kueue.count_mig_as_gpu``: a whole-GPU quota in a MIG pool also bounds each MIG profile.
    """
    team = teams[index]
    others = [t for i, t in enumerate(teams) if i != index]
    totals, parts = {}, {}
    for pool, resources in sorted((team.get("quotas") or {}).items()):
        for resource, value in sorted(resources.items()):
            entry = _entry(value)
            lendable = sum(_lendable(o, pool, resource) for o in others)
            borrow = lendable if entry.get("borrowing_limit") is None else min(entry["borrowing_limit"], lendable)
            most = entry["nominal"] + borrow
            totals[resource] = totals.get(resource, 0) + most
            parts.setdefault(resource, []).append("%s: nominal %d + borrowing %d" % (pool, entry["nominal"], borrow))
            for mig_resource, milli in sorted(((mig_milli or {}).get(pool) or {}).items()):
                if resource != "nvidia.com/gpu":
                    continue
                slices = most * 1000 // milli
                totals[mig_resource] = totals.get(mig_resource, 0) + slices
                parts.setdefault(mig_resource, []).append("%s: %d GPUs as %dm each" % (pool, most, milli))
    out = dict((res, (n, "; ".join(parts[res]))) for res, n in totals.items())
    for key, default in (("cpu", DEFAULT_CPU_QUOTA), ("memory", DEFAULT_MEMORY_QUOTA)):
        if not team.get(key):
            continue
        own = quantity.parse(team[key])[0]
        lent = sum(quantity.parse(o.get(key) or default)[0] for o in others)
        out[key] = (own + lent, "nominal %s + borrowing %s from the cohort" % (team[key], as_quantity(lent, key == "memory")))
    return out


def as_quantity(value, binary=False):
    """A number (int or Fraction, as quota_ceilings gives) or quantity as the API server prints it; ``binary``
    prints a whole number of MiB in binary units (memory: 384Gi, not 412316860416)."""
    if isinstance(value, Fraction):
        if binary and value.denominator == 1 and value.numerator % 2 ** 20 == 0:
            value = "%dMi" % (value.numerator // 2 ** 20)
        elif value.denominator == 1:
            value = str(value.numerator)
        else:
            value = "%dm" % -(-value * 1000 // 1)
    return quantity.canonical(value)


def mig_milli(plan):
    """{pool: {MIG resource: milli-GPUs}} when services.kueue.count_mig_as_gpu charges MIG slices as GPUs."""
    if not (plan.get("services") or {}).get("kueue", {}).get("count_mig_as_gpu"):
        return {}
    out = {}
    for transform in tenancy.mig_transformations(plan):
        for name, pool in sorted(plan["pools"].items()):
            if transform["input"] in (pool.get("resources_per_node") or {}):
                out.setdefault(name, {})[transform["input"]] = int(transform["outputs"]["nvidia.com/gpu"][:-1])
    return out


def resource_quota_hard(plan, index):
    """The ResourceQuota's ``hard`` of ``plan['teams'][index]``: the ceilings, raised by access.resource_quota."""
    teams = plan.get("teams") or []
    hard = dict((res, n) for res, (n, _why) in quota_ceilings(teams, index, mig_milli(plan)).items())
    hard.update((teams[index].get("access") or {}).get("resource_quota") or {})
    return dict(("requests.%s" % res, as_quantity(n, res == "memory")) for res, n in sorted(hard.items()))


# --------------------------------------------------------------------------------------------
# Objects
# --------------------------------------------------------------------------------------------

def group_subject(plan, group):
    """The RBAC name of an OIDC group: ``cluster.oidc.groups_prefix`` prepended when config sets one."""
    prefix = ((plan.get("cluster") or {}).get("oidc") or {}).get("groups_prefix") or ""
    return prefix + group


def team_rules(plan):
    """The Role rules: the base set, the Kueue integrations' job kinds, Volcano Jobs, KServe InferenceServices."""
    rules = [{"apiGroups": g, "resources": r, "verbs": v} for g, r, v in _BASE_RULES]
    services = plan.get("services") or {}
    extra = {}
    if (services.get("kueue") or {}).get("enabled"):
        for framework in services["kueue"].get("integrations") or tenancy.KUEUE_DEFAULT_INTEGRATIONS:
            group, _sep, kind = framework.rpartition("/")
            if "." in group:
                extra.setdefault(group, set()).add(kind.lower() + "s")
    if (services.get("volcano") or {}).get("enabled"):
        extra.setdefault("batch.volcano.sh", set()).add("jobs")
    for group in sorted(extra):
        rules.append({"apiGroups": [group], "resources": sorted(extra[group]), "verbs": list(_ALL)})
    if (services.get("volcano") or {}).get("enabled"):
        rules.append({"apiGroups": ["scheduling.volcano.sh"], "resources": ["podgroups"], "verbs": list(_READ)})
    if (services.get("kserve") or {}).get("enabled"):
        rules.append({"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices"], "verbs": list(_READ)})
    return rules


def _subjects(plan, access):
    subjects = [{"kind": "Group", "apiGroup": RBAC_GROUP, "name": group_subject(plan, g)}
                for g in access.get("groups") or []]
    subjects += [{"kind": "User", "apiGroup": RBAC_GROUP, "name": u} for u in access.get("users") or []]
    return subjects


def limit_range_spec(access):
    limit = {"type": "Container"}
    for key, field in (("default_limit", "default"), ("default_request", "defaultRequest")):
        values = access.get(key) or {}
        if values:
            limit[field] = dict((res, quantity.canonical(v)) for res, v in sorted(values.items()))
    return {"limits": [limit]}


def access_objects(plan):
    """{cluster, namespaced}: the admin ClusterRoleBinding and, per team with ``access``, its Role, RoleBinding,
    ResourceQuota and LimitRange, in apply order."""
    cluster = []
    admin = (plan.get("cluster") or {}).get("admin_group")
    if admin:
        cluster.append({"apiVersion": RBAC_API, "kind": "ClusterRoleBinding",
                        "metadata": _meta(plan, admin_binding_name(plan)),
                        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "cluster-admin"},
                        "subjects": [{"kind": "Group", "apiGroup": RBAC_GROUP, "name": group_subject(plan, admin)}]})
    namespaced = []
    rules = team_rules(plan)
    for index, team in enumerate(plan.get("teams") or []):
        access = team.get("access")
        if access is None:
            continue
        ns, name = team["namespace"], team["name"]
        subjects = _subjects(plan, access)
        if subjects:
            namespaced.append({"apiVersion": RBAC_API, "kind": "Role", "metadata": _meta(plan, TEAM_OBJECT, ns, name),
                               "rules": rules})
            namespaced.append({"apiVersion": RBAC_API, "kind": "RoleBinding",
                               "metadata": _meta(plan, TEAM_OBJECT, ns, name),
                               "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": TEAM_OBJECT},
                               "subjects": subjects})
        hard = resource_quota_hard(plan, index)
        if hard:
            namespaced.append({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": _meta(plan, TEAM_OBJECT, ns, name),
                               "spec": {"hard": hard}})
        if access.get("default_request") or access.get("default_limit"):
            namespaced.append({"apiVersion": "v1", "kind": "LimitRange", "metadata": _meta(plan, TEAM_OBJECT, ns, name),
                               "spec": limit_range_spec(access)})
    return {"namespaces": [n for n in tenancy.namespaces(plan)
                           if n["metadata"]["name"] in {t["namespace"] for t in _teams(plan)}],
            "cluster": cluster, "namespaced": namespaced}


def admin_binding_name(plan):
    return "%s-platform-admins" % plan["cluster"]["name"]


# --------------------------------------------------------------------------------------------
# Kubeconfigs
# --------------------------------------------------------------------------------------------

def _file_name(user):
    return re.sub(r"[^A-Za-z0-9._@-]", "_", user)


def kubeconfig_users(plan):
    """One entry per user of a team with ``access.kubeconfigs: true`` (a user in several teams once, with the
    first team's namespace): {user, team, namespace, file, csr}. ``csr`` is the CertificateSigningRequest's name
    (a DNS name whatever the user name is)."""
    out, seen = [], set()
    cluster = plan["cluster"]["name"]
    for team in _teams(plan):
        if not team["access"].get("kubeconfigs"):
            continue
        for user in team["access"].get("users") or []:
            if user in seen:
                continue
            seen.add(user)
            digest = hashlib.sha256(("%s/%s" % (cluster, user)).encode("utf-8")).hexdigest()[:12]
            out.append({"user": user, "team": team["name"], "namespace": team["namespace"],
                        "file": "%s-%s.conf" % (cluster, _file_name(user)),
                        "csr": "%s-kubeconfig-%s" % (cluster, digest)})
    return out


def kubeconfig(admin, context, entry, certificate, key):
    """A kubeconfig for ``entry`` (kubeconfig_users) from the admin kubeconfig ``admin`` (parsed): the same server
    and CA, the user's client certificate (the CSR's ``status.certificate``, base64 PEM) and private key (PEM), its
    team namespace as the default."""
    contexts = dict((c["name"], c["context"]) for c in admin.get("contexts") or [])
    name = context or admin.get("current-context")
    if name not in contexts:
        raise tenancy.TenancyError("cluster.context: context '%s' is not in the admin kubeconfig (contexts: %s)"
                                   % (name, ", ".join(sorted(contexts)) or "none"))
    clusters = dict((c["name"], c["cluster"]) for c in admin.get("clusters") or [])
    cluster = dict(clusters[contexts[name]["cluster"]])
    if "certificate-authority" in cluster and "certificate-authority-data" not in cluster:
        with open(cluster.pop("certificate-authority"), "rb") as handle:
            cluster["certificate-authority-data"] = base64.b64encode(handle.read()).decode("ascii")

    user_name = entry["user"]
    ctx = "%s@%s" % (user_name, name)
    return {"apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": name, "cluster": cluster}],
            "users": [{"name": user_name, "user": {"client-certificate-data": certificate,
                                                   "client-key-data": _b64(key)}}],
            "contexts": [{"name": ctx, "context": {"cluster": name, "user": user_name,
                                                   "namespace": entry["namespace"]}}],
            "current-context": ctx}


def csr_object(plan, entry, csr_pem, days):
    return {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": _meta(plan, entry["csr"], team=entry["team"]),
            "spec": {"request": _b64(csr_pem), "signerName": CSR_SIGNER, "usages": ["client auth"],
                     "expirationSeconds": int(days) * 86400}}


def _b64(text):
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


# --------------------------------------------------------------------------------------------
# CertificateSigningRequest approval (module csr_approval)
# --------------------------------------------------------------------------------------------

class CsrError(ValueError):
    """The CertificateSigningRequest cannot be approved (denied, failed, or another signer's)."""


def approval_state(csr):
    """'approved', 'pending', or raise CsrError for a denied or failed request or another signer's."""
    spec = csr.get("spec") or {}
    name = (csr.get("metadata") or {}).get("name")
    if spec.get("signerName") != CSR_SIGNER:
        raise CsrError("CertificateSigningRequest %s has signer %s; only %s requests are approved here"
                       % (name, spec.get("signerName"), CSR_SIGNER))
    conditions = dict((c.get("type"), c) for c in (csr.get("status") or {}).get("conditions") or []
                      if c.get("status") == "True")
    for bad in ("Denied", "Failed"):
        if bad in conditions:
            raise CsrError("CertificateSigningRequest %s is %s (%s: %s); delete it and run again"
                           % (name, bad.lower(), conditions[bad].get("reason"), conditions[bad].get("message")))
    return "approved" if "Approved" in conditions else "pending"


def approval_body(csr, reason, message):
    """``csr`` with an Approved condition added: the body of a PUT on its approval subresource."""
    body = dict(csr)
    status = dict(body.get("status") or {})
    status["conditions"] = list(status.get("conditions") or []) + [
        {"type": "Approved", "status": "True", "reason": reason, "message": message}]
    body["status"] = status
    return body
