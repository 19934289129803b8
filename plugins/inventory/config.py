# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
# Apache License 2.0 (see LICENSE), or at your option GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt), like every plugin with documentation (see README, Licensing).

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: config
short_description: Use a gpufleet config.yml as the Ansible inventory
version_added: 0.1.0
description:
  - Reads a gpufleet C(config.yml) (a YAML file whose C(plugin) key is C(gpufleet.platform.config)) and
    builds Kubespray's groups from its C(nodes) - C(kube_control_plane), C(etcd), C(kube_node), C(k8s_cluster) -
    plus C(gpu_nodes), one C(pool_<name>) group per GPU pool (C(-) becomes C(_)), and C(simulated) for lab nodes.
  - Sets the Kubespray variables derived from C(cluster) on C(k8s_cluster), and C(gpufleet_config_file) on C(all)
    so that C(playbooks/validate.yml) validates the same file.
  - Sets C(gpufleet_nvidia_runtime) on every node - true only for a node of a GPU pool whose driver is
    C(preinstalled) (the gpu_node role then writes the containerd NVIDIA runtime drop-in; otherwise the GPU
    Operator's toolkit configures containerd).
  - The inventory is lenient on purpose - it builds what it can from a config that has errors -
    because C(playbooks/validate.yml), the first play of C(site.yml), reports every problem with its key path
    before any host is contacted.
  - The file is read by the collection's bounded loader (at most 1 MiB, 30000 values with aliases expanded,
    32 levels, no duplicate keys, UTF-8; see C(docs/validation.md)). A file it refuses - also an empty, binary or
    non-mapping C(.yml) file without the C(plugin) line, which no other inventory plugin could read - gives a
    warning and an empty inventory, and the validate play fails with the same message naming the file.
author:
  - gpufleet.platform maintainers (@gpufleet)
options:
  plugin:
    description: Must be C(gpufleet.platform.config).
    required: true
    type: str
    choices: [gpufleet.platform.config]
"""

EXAMPLES = r"""
# config.yml (see config.example.yml for every option)
# plugin: gpufleet.platform.config
# cluster: {name: gpufleet}
# nodes:
#   - {name: cp-1, address: 192.0.2.11, roles: [control-plane, etcd]}
#   - {name: gpu-1, address: 192.0.2.21, roles: [worker], pool: a100}
#
# ansible-inventory -i config.yml --graph
# ansible-playbook -i config.yml gpufleet.platform.site
"""

import os

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin
from ansible.utils.display import Display

from ansible_collections.gpufleet.platform.plugins.module_utils import config_derive, config_file, config_plan, config_schema
from ansible_collections.gpufleet.platform.plugins.plugin_utils import config_loader

display = Display()

ROLE_GROUPS = {"control-plane": "kube_control_plane", "etcd": "etcd", "worker": "kube_node"}


class InventoryModule(BaseInventoryPlugin):
    """config.yml as inventory."""

    NAME = "gpufleet.platform.config"

    def verify_file(self, path):
        """A .yml/.yaml file that names this plugin, or one no other inventory plugin can read either (empty,
        binary, not UTF-8, too large, or a top level that is not a mapping): it is refused with a clear
        message (the validate play reports it) rather than by every other plugin in turn."""
        if not super(InventoryModule, self).verify_file(path):
            return False
        if not path.endswith((".yml", ".yaml")):
            return False
        try:
            with open(path, "rb") as handle:
                head = handle.read(65536)
            size = os.path.getsize(path)
        except (IOError, OSError):
            return False
        if size > config_file.MAX_BYTES or b"\x00" in head:
            return True
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 4:
                return True  # not a multi-byte character cut at the end of the head
            text = head[:exc.start].decode("utf-8")
        lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
        lines = [line for line in lines if line and not line.startswith(("%", "---"))]
        if not lines or lines[0].startswith(("-", "[", "\"", "'")) or ":" not in lines[0]:
            return True
        marker = "plugin: " + self.NAME
        return any(marker in line.replace('"', "").replace("'", "") for line in lines)

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache)
        self.inventory.set_variable("all", "gpufleet_config_file", os.path.abspath(path))
        try:
            data = config_loader.load(os.path.abspath(path), self.loader)
        except config_loader.ConfigFileError as exc:
            # Refused here with no hosts, and again (the same message) by the validate play, the first play of
            # every playbook; raising would let the other inventory plugins read the hostile file in turn.
            display.warning(str(exc))
            return
        if data.get("plugin") != self.NAME:
            raise AnsibleParserError("%s: not a gpufleet config.yml (expected 'plugin: %s')" % (path, self.NAME))
        config = config_derive.apply_defaults(config_schema.SCHEMA, config_derive.to_plain(data))
        for group in ("k8s_cluster", "kube_control_plane", "etcd", "kube_node", "calico_rr", "gpu_nodes", "simulated"):
            self.inventory.add_group(group)
        self.inventory.add_child("k8s_cluster", "kube_control_plane")
        self.inventory.add_child("k8s_cluster", "kube_node")
        self.inventory.add_child("k8s_cluster", "calico_rr")
        cluster = config.get("cluster") if isinstance(config.get("cluster"), dict) else {}
        try:
            for key, value in config_plan.kubespray_vars(cluster).items():
                self.inventory.set_variable("k8s_cluster", key, value)
        except (KeyError, TypeError, AttributeError):
            pass  # reported by validation
        ssh = cluster.get("ssh") if isinstance(cluster.get("ssh"), dict) else {}
        pools = config.get("gpu_pools") if isinstance(config.get("gpu_pools"), dict) else {}
        for pool in pools:
            self.inventory.add_group(pool_group(pool))
            self.inventory.add_child("gpu_nodes", pool_group(pool))
        nodes = config.get("nodes") if isinstance(config.get("nodes"), list) else []
        for node in nodes:
            if not isinstance(node, dict) or not isinstance(node.get("name"), str):
                continue
            self._add_node(node, ssh, pools)

    def _add_node(self, node, ssh, pools):
        name = node["name"]
        self.inventory.add_host(name)
        address = node.get("address")
        if isinstance(address, str):
            for var in ("ansible_host", "ip", "access_ip"):
                self.inventory.set_variable(name, var, address)
        for var, key in (("ansible_user", "user"), ("ansible_ssh_private_key_file", "private_key_file"),
                         ("ansible_port", "port"), ("ansible_become", "become")):
            if key in ssh:
                self.inventory.set_variable(name, var, ssh[key])
        roles = node.get("roles") if isinstance(node.get("roles"), list) else []
        for role in roles:
            if role in ROLE_GROUPS:
                self.inventory.add_host(name, group=ROLE_GROUPS[role])
        pool = node.get("pool")
        if isinstance(pool, str) and pool in pools:
            self.inventory.add_host(name, group=pool_group(pool))
            self.inventory.set_variable(name, "gpufleet_pool", pool)
        self.inventory.set_variable(name, "gpufleet_nvidia_runtime",
                                    isinstance(pool, str) and config_plan.nvidia_runtime(pools.get(pool)))
        if node.get("simulated") is True:
            self.inventory.add_host(name, group="simulated")
        self.inventory.set_variable(name, "gpufleet_node", {
            "name": name,
            "pool": pool if isinstance(pool, str) else None,
            "labels": node.get("labels") or {},
            "taints": node.get("taints") or [],
            "simulated": node.get("simulated") is True,
        })
        extra = node.get("host_vars")
        if isinstance(extra, dict):
            for var, value in extra.items():
                self.inventory.set_variable(name, var, value)


def pool_group(pool):
    """Inventory group of a GPU pool: ``pool_<name>`` with ``-`` turned into ``_``."""
    return "pool_" + str(pool).replace("-", "_")
