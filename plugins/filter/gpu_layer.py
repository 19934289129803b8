# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
# Apache License 2.0 (see LICENSE), or at your option GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt), like every module file (see README, Licensing).
"""Filters of the GPU layer (roles gpu_operator, mig, gpu_sharing): pure functions over the plan and
what k8s_info read, so that the roles apply node labels in one bulk call and only where they differ.

Documentation: the <filter name>.yml files next to this one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json

from ansible.errors import AnsibleFilterError
from jinja2 import Undefined

from ansible_collections.gpufleet.platform.plugins.module_utils import mig, prune

MIG_CONFIG_LABEL = "nvidia.com/mig.config"
MIG_STATE_LABEL = "nvidia.com/mig.config.state"
DEVICE_PLUGIN_LABEL = "nvidia.com/device-plugin.config"
SHARING_STRATEGY_LABEL = "nvidia.com/gpu.sharing-strategy"
DRIVER_DEPLOY_LABEL = "nvidia.com/gpu.deploy.driver"
ALL_DISABLED = mig.ALL_DISABLED
GPU_RESOURCE_PREFIXES = ("nvidia.com/gpu", "nvidia.com/mig-")
TERMINAL_PHASES = prune.DONE_PHASES  # a pod in these phases holds nothing


def _pools(pools):
    if isinstance(pools, Undefined):
        pools._fail_with_undefined_error()  # an undefined plan is an undefined-variable error, not a type error
    if not isinstance(pools, dict):
        raise AnsibleFilterError("expected gpufleet_plan.pools (a mapping of pool name to pool), got %r" % (pools,))
    return sorted(pools.items())


def _labels(node):
    return ((node or {}).get("metadata") or {}).get("labels") or {}


def _by_name(nodes):
    return dict((((n or {}).get("metadata") or {}).get("name"), n) for n in (nodes or []))


def node_label_patches(nodes, desired):
    """Node patch definitions (kind Node, metadata.name, metadata.labels) for the nodes whose labels differ.

    ``nodes``: Node objects as k8s_info returns them. ``desired``: {node: {label: value}}; a value of None
    removes the label. Nodes already as desired are left out, so a converged cluster gets no patch at all.
    Nodes that are not in ``nodes`` are left out too (the roles report them before patching).
    """
    current = _by_name(nodes)
    patches = []
    for name in sorted(desired or {}):
        node = current.get(name)
        if node is None:
            continue
        have = _labels(node)
        change = {}
        for key, value in sorted((desired[name] or {}).items()):
            value = None if value is None else str(value)
            if value is None:
                if key in have:
                    change[key] = None
            elif have.get(key) != value:
                change[key] = value
        if change:
            patches.append({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": change}})
    return patches


def gpu_operator_settings(pools, labelled_nodes=None, driver_patches=False):
    """What the GPU Operator values need from the pools.

    Returns driver_enabled (some pool lets the Operator install the driver), driver_version (the one
    version operator-mode pools ask for, else None), driver_versions (all of them), mig_strategies
    (distinct strategies of pools that set one), mig_strategy (the one to set; upstream's default
    ``single`` when none), mig_capable (some pool's model is MIG-capable).

    With ``driver_patches=True`` it returns instead the Node patches for the driver opt-out label
    nvidia.com/gpu.deploy.driver: "false" on the nodes of preinstalled-driver pools that lack it (when the
    Operator deploys the driver elsewhere), and removal on operator-mode nodes that still carry "false".
    ``labelled_nodes`` are the Node objects that carry nvidia.com/gpu.deploy.driver=false now.
    """
    operator_pools, preinstalled_pools = [], []
    versions, strategies = set(), set()
    mig_capable = False
    for name, pool in _pools(pools):
        driver = pool.get("driver") or {}
        if driver.get("mode", "operator") == "preinstalled":
            preinstalled_pools.append(name)
        else:
            operator_pools.append(name)
            if driver.get("version"):
                versions.add(str(driver["version"]))
        mig = pool.get("mig") or {}
        if mig.get("strategy", "none") != "none":
            strategies.add(mig["strategy"])
        mig_capable = mig_capable or bool((pool.get("catalog") or {}).get("mig_capable"))
    driver_enabled = bool(operator_pools)
    if driver_patches:
        labelled = set(_by_name(labelled_nodes))
        patches = []
        for name, pool in _pools(pools):
            preinstalled = name in preinstalled_pools
            for node in sorted(pool.get("nodes") or []):
                if preinstalled and driver_enabled and node not in labelled:
                    value = "false"
                elif not preinstalled and node in labelled:
                    value = None
                else:
                    continue
                patches.append({"apiVersion": "v1", "kind": "Node",
                                "metadata": {"name": node, "labels": {DRIVER_DEPLOY_LABEL: value}}})
        return patches
    return {
        "driver_enabled": driver_enabled,
        "driver_version": sorted(versions)[0] if len(versions) == 1 else None,
        "driver_versions": sorted(versions),
        "operator_pools": operator_pools,
        "preinstalled_pools": preinstalled_pools,
        "mig_strategies": sorted(strategies),
        "mig_strategy": sorted(strategies)[0] if len(strategies) == 1 else "single",
        "mig_capable": mig_capable,
    }


def _mixed_model_pools(pools, hostvars):
    """Pools with a node whose discovered GPU facts (gpu_facts, nodes.yml) list more than one GPU model."""
    out = []
    if not hostvars:
        return out
    for name, pool in sorted(pools.items()):
        for node in pool.get("nodes") or []:
            if node not in hostvars:
                continue
            facts = (hostvars[node].get("ansible_facts") or {}).get("gpufleet_gpu_facts") or {}
            if len(facts.get("models") or {}) > 1:
                out.append(name)
                break
    return out


def mig_parted_document(pools, hostvars=None, device_filter=False):
    """The mig-parted document of the plan's MIG pools (their validated layouts), plus the all-disabled config."""
    pools = dict(_pools(pools))
    try:
        return mig.parted_document(pools, _mixed_model_pools(pools, hostvars), bool(device_filter))
    except mig.MigLayoutError as exc:
        raise AnsibleFilterError(str(exc))


def _gpu_requests(pod):
    wanted = {}
    spec = (pod or {}).get("spec") or {}
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        res = container.get("resources") or {}
        for section in ("limits", "requests"):
            for key, value in (res.get(section) or {}).items():
                if key.startswith(GPU_RESOURCE_PREFIXES) and str(value) not in ("0", ""):
                    wanted[key] = str(value)
    return wanted


def gpu_pods_by_node(pods, node_names=None):
    """{node: ["namespace/name (resource=count, ...)"]} for pods that hold NVIDIA GPU resources and are not finished."""
    names = set(node_names) if node_names is not None else None
    found = {}
    for pod in pods or []:
        node = ((pod or {}).get("spec") or {}).get("nodeName")
        if not node or (names is not None and node not in names):
            continue
        if ((pod.get("status") or {}).get("phase")) in TERMINAL_PHASES:
            continue
        wanted = _gpu_requests(pod)
        if not wanted:
            continue
        meta = pod.get("metadata") or {}
        found.setdefault(node, []).append("%s/%s (%s)" % (
            meta.get("namespace"), meta.get("name"), ", ".join("%s=%s" % kv for kv in sorted(wanted.items()))))
    return dict((node, sorted(items)) for node, items in sorted(found.items()))


def mig_selection(pools, nodes, current_document=None, new_document=None):
    """Which nodes get which nvidia.com/mig.config, and which nodes change layout.

    Nodes of pools whose model is MIG-capable are labelled with the pool's config name (all-disabled
    when MIG is off). A node changes layout when its label changes, or when the content of the config it
    keeps differs between ``current_document`` (the ConfigMap in the cluster) and ``new_document``. A label that
    changes to a config whose content equals that of the config the node is labelled with now (a rename) is no
    layout change.
    Returns {labels: {node: {label: value}}, changing: [nodes], missing: [nodes not in the cluster],
    configs: {node: config name}}.
    """
    current = _by_name(nodes)
    old_configs = ((current_document or {}).get("mig-configs") or {})
    new_configs = ((new_document or {}).get("mig-configs") or {})
    labels, changing, missing, configs = {}, [], [], {}
    for _name, pool in _pools(pools):
        if not (pool.get("catalog") or {}).get("mig_capable"):
            continue
        config = (pool.get("mig") or {}).get("config_name") or ALL_DISABLED
        for node in pool.get("nodes") or []:
            configs[node] = config
            labels[node] = {MIG_CONFIG_LABEL: config}
            if node not in current:
                missing.append(node)
                continue
            have = _labels(current[node]).get(MIG_CONFIG_LABEL)
            same_content = old_configs.get(config) == new_configs.get(config)
            default_equal = have is None and config == ALL_DISABLED
            # a new name for the layout the node has (a config renamed, e.g. by the content hash in its name): the
            # label changes, the MIG manager finds the layout applied already, nothing is disrupted
            renamed = have is not None and have != config and have in old_configs and \
                old_configs.get(have) == new_configs.get(config)
            if (have != config and not default_equal and not renamed) or (
                    have == config and not same_content and config in old_configs):
                changing.append(node)
    return {"labels": labels, "changing": sorted(changing), "missing": sorted(missing), "configs": configs}


def mig_state_report(nodes, wanted):
    """Per-node MIG manager state for the nodes in ``wanted`` ({node: config name}).

    Returns {done: bool, success: [...], pending: {node: state}, failed: {node: "state (error)"}}. A node
    counts as success only when its nvidia.com/mig.config label already names the wanted config.
    """
    current = _by_name(nodes)
    success, pending, failed = [], {}, {}
    for node, config in sorted((wanted or {}).items()):
        obj = current.get(node)
        labels = _labels(obj)
        state = labels.get(MIG_STATE_LABEL)
        if obj is None:
            pending[node] = "not in the cluster"
        elif labels.get(MIG_CONFIG_LABEL) != config:
            pending[node] = "label %s=%s, want %s" % (MIG_CONFIG_LABEL, labels.get(MIG_CONFIG_LABEL), config)
        elif state == "success":
            success.append(node)
        elif state == "failed":
            ann = ((obj.get("metadata") or {}).get("annotations") or {})
            detail = ann.get("lab.gpufleet.io/mig-error") or ann.get("nvidia.com/mig.config.error") or ""
            failed[node] = "failed" + (" (%s)" % detail if detail else "")
        else:
            pending[node] = state or "no %s label yet" % MIG_STATE_LABEL
    return {"done": not pending and not failed, "success": success, "pending": pending, "failed": failed}


def _to_yaml(doc):
    # JSON is YAML: a stable, dependency-free rendering (the device plugin reads it with a YAML parser).
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def device_plugin_config(pools, default_key="default"):
    """Named device-plugin configs (one per sharing pool, plus ``default_key`` with no sharing) and node labels.

    Returns {data: {key: config text}, node_configs: {node: {nvidia.com/device-plugin.config: key}},
    hash: sha256 of data, keys: [...]}. Time-slicing and MPS replicate nvidia.com/gpu, or under the mixed
    MIG strategy each nvidia.com/mig-* resource the pool's layout yields (MPS on MIG is refused upstream).
    """
    data = {default_key: _to_yaml({"version": "v1"})}
    node_configs = {}
    for name, pool in _pools(pools):
        if name == default_key:
            raise AnsibleFilterError("gpu_pools.%s: the pool name collides with the device-plugin default config "
                                     "key %r; rename the pool" % (name, default_key))
        sharing = pool.get("sharing") or {}
        mode = sharing.get("mode", "none")
        key = default_key
        if mode != "none":
            mig = pool.get("mig") or {}
            if mode == "mps" and mig.get("enabled"):
                raise AnsibleFilterError("gpu_pools.%s.sharing.mode: MPS is not supported on MIG-enabled GPUs" % name)
            per_node = pool.get("resources_per_node") or {}
            if mig.get("enabled") and mig.get("strategy") == "mixed":
                names = sorted(r.rsplit(".shared", 1)[0] if r.endswith(".shared") else r for r in per_node
                               if r.startswith(GPU_RESOURCE_PREFIXES))
            else:
                names = ["nvidia.com/gpu"]
            replicated = {
                "renameByDefault": bool(sharing.get("rename_by_default", False)),
                "failRequestsGreaterThanOne": bool(sharing.get("fail_requests_greater_than_one", True)),
                "resources": [{"name": res, "replicas": int(sharing["replicas"])} for res in names],
            }
            field = "timeSlicing" if mode == "time-slicing" else "mps"
            data[name] = _to_yaml({"version": "v1", "sharing": {field: replicated}})
            key = name
        for node in pool.get("nodes") or []:
            node_configs[node] = {DEVICE_PLUGIN_LABEL: key}
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode("utf-8")).hexdigest()
    return {"data": data, "node_configs": node_configs, "hash": digest, "keys": sorted(data)}


def sharing_mismatches(nodes, wanted):
    """["node: nvidia.com/gpu.sharing-strategy=<have>, want <mode>"] for nodes of ``wanted`` ({node: mode}) that differ."""
    out = []
    for node in sorted(_by_name(nodes).items(), key=lambda kv: str(kv[0])):
        name, obj = node
        if name not in (wanted or {}):
            continue
        have = _labels(obj).get(SHARING_STRATEGY_LABEL)
        if have != wanted[name]:
            out.append("%s: %s=%s, want %s" % (name, SHARING_STRATEGY_LABEL, have, wanted[name]))
    return out


class FilterModule(object):
    def filters(self):
        return {
            "node_label_patches": node_label_patches,
            "gpu_operator_settings": gpu_operator_settings,
            "mig_parted_document": mig_parted_document,
            "mig_selection": mig_selection,
            "mig_state_report": mig_state_report,
            "gpu_pods_by_node": gpu_pods_by_node,
            "device_plugin_config": device_plugin_config,
            "sharing_mismatches": sharing_mismatches,
        }
