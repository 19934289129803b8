# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
# Apache License 2.0 (see LICENSE), or at your option GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt), like every module file (see README, Licensing).
"""Slurm on Kubernetes (Slinky slurm-operator v1.2.1): Helm values of the three charts from the plan.

Pure functions over the validated plan (``config_rules.build_plan``); no Ansible, no cluster. The role
``slurm`` calls them through the filters in ``plugins/filter/slurm.py``.

What a node set gets from its pool:

* ``podSpec.nodeSelector`` on the pool label (``gpufleet.io/pool=<pool>``, put on the pool's nodes by the
  role) and a toleration for every pool taint;
* ``slurmd.resources.limits`` = the GPU resources its GRES names (``nvidia.com/gpu`` or
  ``nvidia.com/mig-<profile>``), so the Kubernetes scheduler hands those devices to slurmd and nothing else
  can take them;
* ``extraConfMap.Gres`` = the Slurm GRES of one node: ``gpu:<n>`` for full GPUs, ``gpu:<profile>:<n>`` per
  MIG profile (typed GRES), counted against ``pools.<pool>.resources_per_node``;
* ``extraConfMap.Features`` = the pool name (``sbatch --constraint=<pool>``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.gpufleet.platform.plugins.module_utils import tenancy

POOL_LABEL = tenancy.POOL_LABEL
GPU_RESOURCE = "nvidia.com/gpu"
MIG_PREFIX = "nvidia.com/mig-"
# The chart default (Slinky 1.2.1 helm/slurm/values.yaml) for the DCGM job-mapping directory; the GPU
# Operator's dcgmExporter.hpcJobMapping must read the same directory.
DCGM_JOB_MAPPING_DIR = "/var/lib/dcgm-exporter/job-mapping"
AUTH_KEY = "slurm.key"
JWT_KEY = "jwt.key"
DB_PASSWORD_KEY = "password"
# Upstream image repositories (chart defaults) -> path below an air-gap registry.
_IMAGES = {
    "ghcr.io/slinkyproject/": "slinkyproject/",
    "docker.io/library/": "library/",
}
# Where the slurm chart (1.2.1) takes images: key path -> upstream repository.
SLURM_IMAGES = (
    (("controller", "slurmctld", "image"), "ghcr.io/slinkyproject/slurmctld"),
    (("controller", "reconfigure", "image"), "ghcr.io/slinkyproject/slurmctld"),
    (("controller", "logfile", "image"), "docker.io/library/alpine"),
    (("restapi", "slurmrestd", "image"), "ghcr.io/slinkyproject/slurmrestd"),
    (("accounting", "slurmdbd", "image"), "ghcr.io/slinkyproject/slurmdbd"),
    (("loginsetDefaults", "login", "image"), "ghcr.io/slinkyproject/login"),
    (("loginsetDefaults", "initconf", "image"), "docker.io/library/alpine"),
    (("nodesetDefaults", "slurmd", "image"), "ghcr.io/slinkyproject/slurmd"),
    (("nodesetDefaults", "logfile", "image"), "docker.io/library/alpine"),
)
OPERATOR_IMAGES = (
    (("operator", "image"), "ghcr.io/slinkyproject/slurm-operator"),
    (("webhook", "image"), "ghcr.io/slinkyproject/slurm-operator-webhook"),
)


class SlurmError(Exception):
    """A node set that does not fit its pool (the config rules report the same before any change)."""


def gres_resource(gres):
    """The Kubernetes extended resource behind a GRES key: gpu -> nvidia.com/gpu, 3g.40gb -> nvidia.com/mig-3g.40gb."""
    return GPU_RESOURCE if gres == "gpu" else MIG_PREFIX + gres


def gres_resources(plan, nodeset, index=0):
    """{resource: count} one slurmd pod requests; raises SlurmError naming the key when the pool cannot give it."""
    base = "services.slurm.nodesets[%d]" % index
    pools = plan.get("pools") or {}
    pool_name = nodeset.get("pool")
    if pool_name not in pools:
        raise SlurmError("%s.pool: no such GPU pool '%s'; defined pools: %s"
                         % (base, pool_name, ", ".join(sorted(pools)) or "none"))
    offered = pools[pool_name].get("resources_per_node") or {}
    gres = nodeset.get("gres") or {}
    if not gres:
        # No GRES given: every full GPU of a non-MIG node, or every MIG device of the pool's layout.
        return dict((res, count) for res, count in sorted(offered.items())
                    if res == GPU_RESOURCE or res.startswith(MIG_PREFIX))
    wanted = {}
    for key, count in sorted(gres.items()):
        resource = gres_resource(key)
        if resource not in offered:
            raise SlurmError("%s.gres.%s: pool '%s' does not provide %s; it provides: %s"
                             % (base, key, pool_name, resource, ", ".join(sorted(offered)) or "nothing"))
        if count > offered[resource]:
            raise SlurmError("%s.gres.%s: %d is more than a node of pool '%s' has (%d %s)"
                             % (base, key, count, pool_name, offered[resource], resource))
        if count:
            wanted[resource] = count
    return wanted


def gres_lines(resources):
    """Slurm GRES of one node from its resources: ['gpu:8'] or ['gpu:1g.10gb:2', 'gpu:3g.40gb:1']."""
    lines = []
    for resource, count in sorted(resources.items()):
        if resource == GPU_RESOURCE:
            lines.append("gpu:%d" % count)
        elif resource.startswith(MIG_PREFIX):
            lines.append("gpu:%s:%d" % (resource[len(MIG_PREFIX):], count))
    return lines


def gres_types(plan):
    """The typed GRES (MIG profiles) any node set uses, for AccountingStorageTRES."""
    types = set()
    for i, nodeset in enumerate(_service(plan).get("nodesets") or []):
        for resource in gres_resources(plan, nodeset, i):
            if resource.startswith(MIG_PREFIX):
                types.add(resource[len(MIG_PREFIX):])
    return sorted(types)


def replicas(plan, nodeset):
    """Node set size: the configured replicas, or one slurmd per node of the pool."""
    if nodeset.get("replicas") is not None:
        return nodeset["replicas"]
    return (plan["pools"].get(nodeset["pool"]) or {}).get("node_count", 0)


def nodeset_values(plan, nodeset, index=0):
    """The slurm chart's ``nodesets.<name>`` entry for one node set."""
    pool = plan["pools"][nodeset.get("pool")] if nodeset.get("pool") in plan.get("pools", {}) else {}
    resources = gres_resources(plan, nodeset, index)
    pod_spec = {"nodeSelector": {POOL_LABEL: nodeset["pool"]}}
    pool_tolerations = tenancy.pool_tolerations(pool)
    if pool_tolerations:
        pod_spec["tolerations"] = pool_tolerations
    return {
        "enabled": True,
        "replicas": replicas(plan, nodeset),
        "slurmd": {"resources": {"limits": resources}} if resources else {},
        "extraConfMap": {"Gres": gres_lines(resources), "Features": [nodeset["pool"]]},
        "podSpec": pod_spec,
    }


def partition_values(partition):
    """The slurm chart's ``partitions.<name>`` entry."""
    return {
        "enabled": True,
        "nodesets": list(partition["nodesets"]),
        "configMap": {
            "Default": "YES" if partition.get("default") else "NO",
            "MaxTime": partition.get("max_time") or "UNLIMITED",
            "State": "UP",
        },
    }


def dcgm_job_mapping(plan):
    """GPU-to-job mapping for dcgm-exporter: on when monitoring and the Operator's DCGM exporter are on."""
    services = plan.get("services") or {}
    gpu_operator = services.get("gpu_operator") or {}
    return bool((services.get("monitoring") or {}).get("enabled") and gpu_operator.get("enabled")
                and gpu_operator.get("dcgm_exporter", True))


def _service(plan):
    return (plan.get("services") or {}).get("slurm") or {}


def _image_registry(plan):
    airgap = plan.get("airgap") or {}
    return airgap.get("image_registry") if airgap.get("enabled") else None


def _set(tree, path, value):
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def _mirror(values, images, registry):
    for path, upstream in images:
        for prefix, below in _IMAGES.items():
            if upstream.startswith(prefix):
                _set(values, path + ("repository",), "%s/%s%s" % (registry.rstrip("/"), below, upstream[len(prefix):]))


def operator_values(plan):
    """Values of the slurm-operator chart: CRDs come from the slurm-operator-crds release; cert-manager on."""
    values = {"crds": {"enabled": False}, "certManager": {"enabled": True}}
    registry = _image_registry(plan)
    if registry:
        _mirror(values, OPERATOR_IMAGES, registry)
    return values


def default_gres_conf(resources):
    """gres.conf: NVML autodetection when a node set uses MIG devices (AutoDetect=nvidia does not see them)."""
    mig = any(r.startswith(MIG_PREFIX) for res in resources for r in res)
    return "AutoDetect=nvml" if mig else "AutoDetect=nvidia"


def _persistence(service):
    """slurmctld's save-state claim (chart controller.persistence) from services.slurm.controller_storage."""
    storage = service.get("controller_storage") or {}
    if not storage.get("enabled", True):
        return {"enabled": False}
    out = {"enabled": True, "resources": {"requests": {"storage": storage.get("size") or "4Gi"}}}
    if storage.get("storage_class"):
        out["storageClassName"] = storage["storage_class"]
    return out


def slurm_values(plan, auth_secret, jwt_secret, db_secret=None, gres_conf=None,
                 login_replicas=1, dcgm=True):
    """Values of the slurm chart (the Slurm cluster) from the plan.

    ``auth_secret``/``jwt_secret``: names of the Secrets (keys ``slurm.key``/``jwt.key``) the role created
    once; ``db_secret``: the Secret holding the accounting database password (key ``password``).
    """
    service = _service(plan)
    nodesets = service.get("nodesets") or []
    resources = [gres_resources(plan, n, i) for i, n in enumerate(nodesets)]
    uses_gpus = any(resources)
    controller_conf = {}
    if uses_gpus:
        controller_conf["GresTypes"] = ["gpu"]
    values = {
        "clusterName": service.get("cluster_name") or "slurm",
        "slurmKey": {"create": False, "secretRef": {"name": auth_secret, "key": AUTH_KEY}},
        "jwtKey": {"create": False, "secretRef": {"name": jwt_secret, "key": JWT_KEY}},
        "controller": {"extraConfMap": controller_conf, "persistence": _persistence(service)},
        "nodesets": dict((n["name"], nodeset_values(plan, n, i)) for i, n in enumerate(nodesets)),
        "partitions": dict((p["name"], partition_values(p)) for p in service.get("partitions") or []),
        "prologScripts": dict(service.get("prolog_scripts") or {}),
        "epilogScripts": dict(service.get("epilog_scripts") or {}),
    }
    if uses_gpus:
        values["configFiles"] = {"gres.conf": (gres_conf or default_gres_conf(resources)).rstrip("\n") + "\n"}
    keys = service.get("login_ssh_keys") or []
    if keys:
        values["loginsets"] = {"login": {"enabled": True, "replicas": login_replicas,
                                         "rootSshAuthorizedKeys": "\n".join(keys) + "\n"}}
    accounting = service.get("accounting") or {}
    if accounting.get("enabled"):
        if not db_secret:
            raise SlurmError("services.slurm.accounting.enabled: accounting needs the database password Secret "
                             "(secrets.slurm_db_password)")
        storage = {"host": accounting["database_host"], "username": accounting.get("database_user") or "slurm",
                   "passwordKeyRef": {"name": db_secret, "key": DB_PASSWORD_KEY}}
        for key, chart_key in (("database_port", "port"), ("database_name", "database")):
            if accounting.get(key) is not None:
                storage[chart_key] = accounting[key]
        values["accounting"] = {"enabled": True, "storageConfig": storage}
        if uses_gpus:
            controller_conf["AccountingStorageTRES"] = ["gres/gpu"] + ["gres/gpu:%s" % t for t in gres_types(plan)]
    if tenancy.monitoring_on(plan):
        # slurmctld's /metrics/{jobs,nodes,partitions,scheduler}; slurm-operator creates the ServiceMonitor
        # (the Slurm dashboard reads slurm_jobs_*, slurm_nodes_*, slurm_node_gpus_*)
        values["controller"]["metrics"] = {"enabled": True, "serviceMonitor": {"enabled": True}}
    if dcgm and dcgm_job_mapping(plan):
        values["vendor"] = {"nvidia": {"dcgm": {"enabled": True, "jobMappingDir": DCGM_JOB_MAPPING_DIR}}}
    registry = _image_registry(plan)
    if registry:
        _mirror(values, SLURM_IMAGES, registry)
    return values


def problems(plan):
    """Messages for node sets that do not fit their pools (empty when all fit)."""
    out = []
    for i, nodeset in enumerate(_service(plan).get("nodesets") or []):
        try:
            gres_resources(plan, nodeset, i)
        except SlurmError as exc:
            out.append(str(exc))
    return out


def gpu_share(plan):
    """{pool: {resource: count}}: what Slurm's worker pods hold of each pool (replicas x GRES)."""
    share = {}
    for i, nodeset in enumerate(_service(plan).get("nodesets") or []):
        count = replicas(plan, nodeset)
        for resource, per_pod in gres_resources(plan, nodeset, i).items():
            pool = share.setdefault(nodeset["pool"], {})
            pool[resource] = pool.get(resource, 0) + per_pod * count
    return share
