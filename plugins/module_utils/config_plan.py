# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# Apache License 2.0 (see LICENSE)
"""The normalized plan every role reads (``gpufleet_plan``), and the Kubespray variables, built from a valid
config.yml.

Pure functions over plain data; no Ansible imports. ``validate(config)`` runs the schema and every rule
(``config_rules.findings``) and raises ``ConfigValidationError`` listing each problem; on success it returns
``build_plan``'s plan (defaults filled in, pool capacities and GPU resources from ``config_derive``, chart
sources resolved from the version matrix).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import hashlib
import json
import os

from ansible_collections.gpufleet.platform.plugins.module_utils import config_rules, config_schema, gpu_catalog, mlflow_registry
from ansible_collections.gpufleet.platform.plugins.module_utils import serving, storage, training, versions
from ansible_collections.gpufleet.platform.plugins.module_utils.config_derive import apply_defaults, derive, mig_enabled
from ansible_collections.gpufleet.platform.plugins.module_utils.config_issues import ConfigValidationError

# containerd drop-ins: Kubespray's config.toml imports this directory (containerd_extra_args) and the
# gpu_node role writes the NVIDIA runtime there (gpu_node_containerd_dropin_dir, same default), so the
# runtime survives a Kubespray re-render of config.toml (kubespray#12277).
CONTAINERD_DROPIN_DIR = "/etc/containerd/conf.d"
CONTAINERD_IMPORTS_LINE = 'imports = ["%s/*.toml"]' % CONTAINERD_DROPIN_DIR


def mig_config_name(pool_name, model, mig_plan):
    """The mig-parted config name of a MIG pool: ``gpufleet-<pool>-<hash>``, the hash over the pool's layout.

    The NVIDIA MIG manager applies a config only when a node's nvidia.com/mig.config label changes (its informer
    compares the label values; the ConfigMap's content is read then, not watched), so a changed layout must get a
    new name: the label change is what makes the MIG manager apply it."""
    digest = hashlib.sha256(json.dumps({"model": model, "layout": (mig_plan or {}).get("layout"),
                                        "placements": (mig_plan or {}).get("placements")},
                                       sort_keys=True, default=str).encode("utf-8")).hexdigest()
    return "gpufleet-%s-%s" % (pool_name, digest[:8])


def kubespray_vars(cluster):
    """Kubespray v2.31.0 inventory variables derived from ``cluster`` (defaults applied).

    Names are Kubespray's own (roles/kubespray_defaults/defaults/main/main.yml,
    roles/container-engine/containerd/defaults/main.yml, roles/kubernetes-apps/metrics_server/defaults/main.yml,
    roles/kubernetes/control-plane/defaults/main/main.yml for kube_oidc_*). ``containerd_extra_args`` is rendered
    literally at the top level of config.toml, before any table: the place for ``imports``; the
    line is exactly what the gpu_node role writes, so gpu_node after Kubespray changes nothing.
    ``kubeconfig_localhost`` stays off: playbooks/cluster.yml fetches admin.conf to
    ``cluster.kubeconfig`` (mode 0600) instead of Kubespray's artifacts/ next to the inventory.
    Addons the collection installs itself stay off (Helm runs on the controller, cert-manager is the
    cert_manager role's). OIDC: ``kube_oidc_auth`` always, the other kube_oidc_* only when given.
    """
    metrics = cluster.get("addons", {}).get("metrics_server", {})
    out = {
        "kube_version": cluster["kubernetes_version"],
        "container_manager": cluster["container_runtime"],
        "kube_network_plugin": cluster["network_plugin"],
        "kube_proxy_mode": cluster["kube_proxy_mode"],
        "kube_pods_subnet": cluster["pod_cidr"],
        "kube_service_addresses": cluster["service_cidr"],
        "cluster_name": cluster["dns_domain"],
        "dns_mode": "coredns",
        # legacy in-tree device plugin and driver installer; the GPU Operator does both
        "nvidia_accelerator_enabled": False,
        "containerd_extra_args": CONTAINERD_IMPORTS_LINE,
        "kubeconfig_localhost": False,
        "helm_enabled": False,
        "cert_manager_enabled": False,
        "metrics_server_enabled": metrics["enabled"],
        "metrics_server_replicas": metrics["replicas"],
        "metrics_server_metric_resolution": metrics["metric_resolution"],
        "metrics_server_host_network": metrics["host_network"],
        "kube_oidc_auth": "oidc" in cluster,
    }
    for key, name in OIDC_VARS:
        if key in cluster.get("oidc", {}):
            out[name] = cluster["oidc"][key]
    return out


# cluster.oidc key -> Kubespray v2.31.0 variable (roles/kubernetes/control-plane/defaults/main/main.yml documents
# them, templates/kubeadm-config.v1beta4.yaml.j2 renders each into an --oidc-* flag when it is defined)
OIDC_VARS = (
    ("issuer_url", "kube_oidc_url"),
    ("client_id", "kube_oidc_client_id"),
    ("ca_file", "kube_oidc_ca_file"),
    ("username_claim", "kube_oidc_username_claim"),
    ("username_prefix", "kube_oidc_username_prefix"),
    ("groups_claim", "kube_oidc_groups_claim"),
    ("groups_prefix", "kube_oidc_groups_prefix"),
)


def nvidia_runtime(pool):
    """Whether hosts of ``pool`` get the containerd NVIDIA runtime from gpufleet (host variable
    ``gpufleet_nvidia_runtime``): only with a preinstalled driver; otherwise the GPU Operator's
    toolkit configures containerd itself."""
    driver = pool.get("driver") if isinstance(pool, dict) else None
    return isinstance(driver, dict) and driver.get("mode") == "preinstalled"


def build_plan(config, derived=None, warnings=()):
    """The normalized plan of a valid ``config`` (call only on a valid config).

    ``derived``: ``config_derive.derive`` of it (defaults filled in), computed here when not given;
    ``warnings``: the rules' warnings, listed in the plan.
    """
    config = apply_defaults(config_schema.SCHEMA, copy.deepcopy(config))
    if derived is None:
        derived = derive(config)
    cluster = config["cluster"]
    cluster["kubeconfig"] = os.path.expanduser(cluster["kubeconfig"])
    nodes = config["nodes"]
    plan_pools = {}
    for name, pool in sorted(config.get("gpu_pools", {}).items()):
        members = [n["name"] for n in nodes if n.get("pool") == name]
        per_node = derived["pool_resources"].get(name, {})
        mig_plan = derived["pool_mig"].get(name)
        model = None
        if pool["model"] != "auto":
            entry = gpu_catalog.lookup(pool["model"])
            model = {"key": entry.key, "name": entry.name, "gfd_product": entry.gfd_product,
                     "memory_mib": entry.memory_mib, "mig_capable": entry.mig_capable}
        plan_pools[name] = {
            "name": name,
            "model": pool["model"],
            "catalog": model,
            "gpus_per_node": pool["gpus_per_node"],
            "driver": pool.get("driver", {"mode": "operator"}),
            "mig": dict(pool.get("mig", {"strategy": "none"}), enabled=mig_enabled(pool),
                        config_name=mig_config_name(name, pool["model"], mig_plan) if mig_enabled(pool) else "all-disabled",
                        placements=mig_plan["placements"] if mig_plan else None,
                        layout_per_gpu=mig_plan["layout"] if mig_plan else None),
            "sharing": pool.get("sharing", {"mode": "none"}),
            "labels": pool.get("labels", {}),
            "taints": pool.get("taints", []),
            "nodes": members,
            "node_count": len(members),
            "resources_per_node": per_node,
            "capacity": {res: count * len(members) for res, count in per_node.items()},
            # what team quotas in this pool are counted in (differs from capacity only with
            # services.kueue.count_mig_as_gpu on a MIG pool: whole GPUs)
            "quota_capacity": {res: count * len(members) for res, count in
                               derived["pool_quota_resources"].get(name, per_node).items()},
        }
    teams = []
    for team in config.get("teams", []):
        quotas = {}
        for pool_name, resources in team.get("quotas", {}).items():
            quotas[pool_name] = {}
            for res, value in resources.items():
                entry = value if isinstance(value, dict) else {"nominal": value}
                quotas[pool_name][res] = entry
        teams.append(dict(team, namespace=team.get("namespace", team["name"]), quotas=quotas))
    services = {}
    for name, service in config.get("services", {}).items():
        if name not in versions.CHARTS:  # rendered by its role, no chart (mlflow)
            continue
        services[name] = dict(service, charts=versions.resolve_component(name, service, config.get("airgap")))
        services[name].setdefault("namespace", services[name]["charts"][-1]["namespace"])
    services["mlflow"] = mlflow_registry.plan_service(
        apply_defaults(config_schema.SCHEMA["properties"]["services"]["properties"]["mlflow"],
                       copy.deepcopy(config.get("services", {}).get("mlflow", {}))))
    for name in versions.CHARTS:
        if name not in services:
            service = apply_defaults(config_schema.SCHEMA["properties"]["services"]["properties"][name], {})
            services[name] = dict(service, charts=versions.resolve_component(name, service, config.get("airgap")))
            services[name].setdefault("namespace", services[name]["charts"][-1]["namespace"])
    services["training"] = training.plan_service(services["training"], teams)
    # Kueue manages what is installed: TrainJobs and JobSets when services.training is on
    services["kueue"]["integrations"] = training.kueue_integrations(services)
    services["kserve"] = serving.plan_models(services["kserve"], services["mlflow"])
    if not services["kserve"].get("llmisvc"):
        services["kserve"]["charts"] = [c for c in services["kserve"]["charts"]
                                        if c["name"] not in versions.LLMISVC_CHARTS]
    return {
        "cluster": cluster,
        "nodes": nodes,
        "pools": plan_pools,
        "teams": teams,
        "scheduling": config.get("scheduling", apply_defaults(config_schema.SCHEMA["properties"]["scheduling"], {})),
        "services": services,
        "airgap": config.get("airgap", {"enabled": False}),
        "secrets": config.get("secrets", {}),
        "storage": storage.plan(config),
        "kubespray": kubespray_vars(cluster),
        "versions": {"kubespray": versions.KUBESPRAY_VERSION, "kubernetes": cluster["kubernetes_version"],
                     "helm": versions.HELM_VERSION},
        "warnings": sorted(set(warnings)),
    }


def validate(config, secret_values=None):
    """Validate ``config`` and return the plan; raise ConfigValidationError listing every problem.

    ``secret_values`` maps variable names to values (the controller's vaulted variables) so that
    secret references can be checked; pass None to skip that check.
    """
    issues, warnings, derived = config_rules.findings(config, secret_values)
    if issues:
        raise ConfigValidationError(issues)
    return build_plan(config, derived, warnings)
