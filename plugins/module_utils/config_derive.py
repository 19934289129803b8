# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# Apache License 2.0 (see LICENSE)
"""What the rules and the plan both need, derived once from config.yml: the cluster networks, each GPU pool's
resources per node, its MIG plan and the resources its team quotas are counted in.

Pure functions over plain data; no Ansible imports. ``derive(config, schema_paths)`` takes config.yml with
the schema defaults filled in (``apply_defaults``) and never raises on a config that failed the schema: what
cannot be derived is left out, and why (a MIG layout that does not fit) is kept for the rules to report. The
accessors below tolerate wrong types, so the rules use them too.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import ipaddress

from ansible_collections.gpufleet.platform.plugins.module_utils import config_schema, gpu_catalog, mig


def to_plain(data):
    """Turn Ansible's YAML objects (AnsibleUnicode, AnsibleMapping, ...) into plain Python types."""
    if isinstance(data, dict):
        return dict((to_plain(k), to_plain(v)) for k, v in data.items())
    if isinstance(data, list):
        return [to_plain(v) for v in data]
    if isinstance(data, str):
        return str(data)
    return data


def apply_defaults(schema, data):
    """Fill in schema defaults (objects only; lists of objects item by item)."""
    if not isinstance(data, dict) or schema.get("type") != "object":
        return data
    for key, sub in schema.get("properties", {}).items():
        if key not in data and "default" in sub:
            data[key] = copy.deepcopy(sub["default"])
        if key in data:
            if sub.get("type") == "array" and isinstance(data[key], list) and isinstance(sub.get("items"), dict):
                for item in data[key]:
                    apply_defaults(sub["items"], item)
            else:
                apply_defaults(sub, data[key])
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) and extra.get("type") == "object":
        for key in data:
            if key not in schema.get("properties", {}):
                apply_defaults(extra, data[key])
    return data


# --------------------------------------------------------------------------------------------
# Helpers over a (possibly invalid) config: every accessor tolerates wrong types.
# --------------------------------------------------------------------------------------------

def as_dict(value):
    return value if isinstance(value, dict) else {}


def as_list(value):
    return value if isinstance(value, list) else []


def indexed(config, key):
    """``(index, entry)`` for each mapping in the list at ``config[key]``."""
    return [(i, n) for i, n in enumerate(as_list(config.get(key))) if isinstance(n, dict)]


def dict_entries(config, key):
    """Each mapping in the list at ``config[key]``."""
    return [n for n in as_list(config.get(key)) if isinstance(n, dict)]


def config_pools(config):
    return {k: v for k, v in as_dict(config.get("gpu_pools")).items() if isinstance(v, dict)}


def config_services(config):
    return {k: v for k, v in as_dict(config.get("services")).items() if isinstance(v, dict)}


def service_enabled(config, name):
    service = config_services(config).get(name, {})
    default = config_schema.SCHEMA["properties"]["services"]["properties"][name]["properties"]["enabled"]["default"]
    return service.get("enabled", default) is True


def schema_clean(schema_paths, prefix):
    """True when the schema reported nothing at or under ``prefix`` (``schema_paths``: the paths it reported)."""
    return not any(p == prefix or p.startswith(prefix + ".") or p.startswith(prefix + "[")
                   for p in schema_paths)


def mig_enabled(pool):
    layout = as_dict(pool.get("mig")).get("layout")
    return layout is not None and layout != "all-disabled"


# --------------------------------------------------------------------------------------------
# Pool resources: what each pool exposes to Kubernetes, per node.
# --------------------------------------------------------------------------------------------

def pool_resources(name, pool):
    """Resources one node of the pool advertises, and the MIG plan when MIG is on.

    Raises ValueError (MigLayoutError) when the MIG layout does not fit the model.
    """
    gpus = pool["gpus_per_node"]
    mig_conf = as_dict(pool.get("mig"))
    sharing = as_dict(pool.get("sharing"))
    plan = None
    if mig_enabled(pool):
        plan = mig.plan_layout(pool.get("model"), mig_conf["layout"], gpu_count=gpus,
                               driver_version=as_dict(pool.get("driver")).get("version"))
        strategy = mig_conf.get("strategy", "none")
        resources = dict(plan["resources"]["single"] or {}) if strategy == "single" else dict(plan["resources"]["mixed"])
    else:
        resources = {"nvidia.com/gpu": gpus}
    mode = sharing.get("mode", "none")
    if mode != "none":
        replicas = sharing.get("replicas", 1)
        rename = sharing.get("rename_by_default", False)
        resources = {("%s.shared" % res if rename else res): count * replicas for res, count in resources.items()}
    return resources, plan


def quota_resources(config, pool, resources):
    """What team quotas in the pool are counted in: the resources the pool advertises, or whole GPUs on a
    MIG pool when services.kueue.count_mig_as_gpu charges MIG devices as GPU shares."""
    kueue = config_services(config).get("kueue", {})
    if mig_enabled(pool) and kueue.get("count_mig_as_gpu") is True:
        return {"nvidia.com/gpu": pool["gpus_per_node"]}
    return dict(resources)


# --------------------------------------------------------------------------------------------
# derive(): computed once, read by the rules and by the plan.
# --------------------------------------------------------------------------------------------

CIDR_KEYS = ("pod_cidr", "service_cidr")


def derive(config, schema_paths=()):
    """What the rules and the plan share, from ``config`` (schema defaults filled in).

    ``schema_paths``: the key paths the schema reported; a pool with a problem at or under its path is not
    planned (planning needs sizes in range). Returns a dict:

    - ``networks``: ``{"pod_cidr": ip_network, "service_cidr": ip_network}``, those that parse;
      ``network_errors``: ``{key: (value, reason)}`` for those that do not;
    - ``model_errors``: ``{pool: reason}`` for a GPU model the catalog does not know;
    - ``pool_resources``: ``{pool: {resource: count per node}}``, ``pool_mig``: ``{pool: MIG plan or None}``
      and ``pool_quota_resources``: ``{pool: what team quotas are counted in}``, for each pool that can be
      planned;
    - ``pool_errors``: ``{pool: (key, reason)}`` for a pool that cannot: ``("mig.layout", the planner's
      message)``, ``("mig.strategy", None)`` for a 'single' strategy over mixed profiles, or
      ``("stopped", None)`` where planning met data it cannot read (nothing after it is planned);
    - ``schema_paths``: ``schema_paths``, as a tuple.
    """
    derived = {"networks": {}, "network_errors": {}, "model_errors": {}, "pool_resources": {}, "pool_mig": {},
               "pool_quota_resources": {}, "pool_errors": {}, "schema_paths": tuple(schema_paths)}
    cluster = as_dict(config.get("cluster"))
    for key in CIDR_KEYS:
        value = cluster.get(key, config_schema.SCHEMA["properties"]["cluster"]["properties"][key]["default"])
        try:
            derived["networks"][key] = ipaddress.ip_network(str(value), strict=True)
        except ValueError as exc:
            derived["network_errors"][key] = (value, str(exc))
    try:
        pools = sorted(config_pools(config).items())
    except TypeError:
        return derived  # pool names of mixed types: the schema reports them
    for name, pool in pools:
        model = pool.get("model", "auto")
        if isinstance(model, str) and model != "auto":
            try:
                gpu_catalog.lookup(model)
            except ValueError as exc:
                derived["model_errors"][name] = str(exc)
        if mig_enabled(pool) and model == "auto":
            continue  # MIG profiles differ per model; 'auto' is only resolved after discovery
        if name in derived["model_errors"] or not schema_clean(schema_paths, "gpu_pools.%s" % name):
            continue
        try:
            resources, plan = pool_resources(name, pool)
        except (ValueError, TypeError, KeyError) as exc:
            derived["pool_errors"][name] = ("mig.layout", str(exc))
            continue
        except (AttributeError, IndexError):
            derived["pool_errors"][name] = ("stopped", None)
            break
        if as_dict(pool.get("mig")).get("strategy", "none") == "single" and mig_enabled(pool) and not resources:
            derived["pool_errors"][name] = ("mig.strategy", None)
            continue
        derived["pool_resources"][name] = resources
        derived["pool_mig"][name] = plan
        derived["pool_quota_resources"][name] = quota_resources(config, pool, resources)
    return derived
