# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# Apache License 2.0 (see LICENSE)
"""The ``storage:`` section of config.yml: its cross-field rules and its part of the plan.

Pure functions over plain data; no Ansible imports. The JSON Schema (config_schema) checks the shape; ``issues``
checks what it cannot say (the backend's name and required keys, the NFS server and export, one default
StorageClass) and ``plan`` gives the ``gpufleet_plan.storage`` the storage role, monitoring and KServe read: the
StorageClass name the platform's PVCs use, and what to install.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from ansible_collections.gpufleet.platform.plugins.module_utils import versions
from ansible_collections.gpufleet.platform.plugins.module_utils.config_issues import ConfigIssue

BACKENDS = ("local-path", "nfs")
CLASS_NAMES = {"local-path": "local-path", "nfs": "nfs-csi"}
PROVISIONERS = {"local-path": "rancher.io/local-path", "nfs": "nfs.csi.k8s.io"}
LOCAL_PATH_DEFAULT = "/opt/local-path-provisioner"
NFS_MOUNT_OPTIONS = ["nfsvers=4.1"]
HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*$")


def _issue(path, message, value=None, has_value=True):
    """One problem in ``storage:``: config_issues.ConfigIssue, which every rule reports with."""
    return ConfigIssue(path, message, value, has_value)


def _server_ok(server):
    if not isinstance(server, str) or not server:
        return False
    try:
        ipaddress.ip_address(server.strip("[]"))
        return True
    except ValueError:
        pass
    labels = server.rstrip(".").split(".")
    return bool(HOSTNAME.match(server.rstrip("."))) and not labels[-1].isdigit()


def _export_problem(path):
    if not isinstance(path, str) or not path.strip():
        return "is empty: the exported directory on the NFS server is required"
    if not path.startswith("/"):
        return "is a relative path: the export must be absolute, e.g. /exports/gpufleet"
    if "\x00" in path or any(part == ".." for part in path.split("/")):
        return "must be an absolute path without '..' components"
    return None


def issues(config):
    """Every problem of ``config['storage']`` (a list of ConfigIssue; empty when valid or absent).

    Values of a wrong type are left to the schema, which reports them with their key path.
    """
    storage = config.get("storage") if isinstance(config, dict) else None
    if not isinstance(storage, dict):
        return []
    out = []
    backend = storage.get("backend")
    existing = storage.get("existing")
    if backend is None and existing is None:
        out.append(_issue(
            "storage", "set storage.backend (%s) to install a StorageClass, or storage.existing: NAME to adopt one"
            % ", ".join(BACKENDS), has_value=False))
    if backend is not None and backend not in BACKENDS:
        out.append(_issue(
            "storage.backend", "unknown storage backend; allowed: %s (or omit it and set storage.existing: NAME to "
            "adopt a class the site has)" % ", ".join(BACKENDS), backend))
        return out
    for key, needs in (("local_path", "local-path"), ("nfs", "nfs")):
        if key in storage and backend != needs:
            out.append(_issue(
                "storage.%s" % key, "applies to storage.backend %s only (storage.backend is %s)"
                % (needs, backend or "not set"), has_value=False))
    if backend == "nfs":
        nfs = storage.get("nfs")
        if not isinstance(nfs, dict):
            out.append(_issue(
                "storage.nfs", "is required with storage.backend nfs: {server: ADDRESS or HOSTNAME, path: /EXPORT}",
                has_value=False))
        else:
            if "server" not in nfs:
                out.append(_issue(
                    "storage.nfs.server", "is required with storage.backend nfs (an IP address or a DNS hostname)",
                    has_value=False))
            elif isinstance(nfs["server"], str) and not _server_ok(nfs["server"]):
                out.append(_issue(
                    "storage.nfs.server", "is not an IP address or a DNS hostname (letters, digits and '-', labels "
                    "separated by '.', e.g. nfs.example.com or 10.0.0.5)", nfs["server"]))
            path = nfs.get("path")
            if path is None or isinstance(path, str):
                problem = _export_problem(path)
                if problem:
                    out.append(_issue("storage.nfs.path", problem, path, has_value=path is not None))
    if backend in BACKENDS and existing is not None and storage.get("default", True) is True:
        out.append(_issue(
            "storage.default", "two default StorageClasses: storage.existing %r is the class the platform uses and "
            "storage.backend %s would install %r as the cluster default too; set storage.default: false (install it "
            "as a second, non-default class) or drop storage.existing"
            % (existing, backend, storage.get("class_name") or CLASS_NAMES[backend]), True))
    if backend in BACKENDS and existing is not None and existing == (storage.get("class_name") or CLASS_NAMES[backend]):
        out.append(_issue(
            "storage.existing", "names the class storage.backend %s installs; adopt another class or drop "
            "storage.existing" % backend, existing))
    if backend == "local-path" and versions.resolve_storage_chart(backend, storage, config.get("airgap")) is None:
        chart = versions.STORAGE_CHARTS[backend]
        out.append(_issue(
            "storage.chart", "is required for local-path without an air-gap mirror: upstream publishes %s %s in no "
            "Helm repository or OCI registry, only as a folder of %s at tag v%s; set storage.chart {source: local, "
            "path: that folder or its .tgz} (or a repository of your own), or airgap.chart_mirror"
            % (chart["name"], chart["version"], chart["git"], chart["version"]), has_value=False))
    return out


def plan(config):
    """``gpufleet_plan.storage``: call on a valid config.

    ``class_name`` is what the platform's PVCs use (None: no ``storage`` section, the cluster's default);
    ``install`` with ``backend``, ``chart``, ``installed_class``, ``provisioner`` says what the storage role installs.
    """
    storage = config.get("storage")
    if not isinstance(storage, dict):
        return {"enabled": False, "install": False, "backend": None, "class_name": None, "existing": None}
    backend = storage.get("backend")
    existing = storage.get("existing")
    out = {
        "enabled": True,
        "install": backend is not None,
        "backend": backend,
        "existing": existing,
        "default": bool(storage.get("default", True)) and backend is not None,
        "reclaim_policy": storage.get("reclaim_policy", "Delete"),
        "values": storage.get("values") or {},
    }
    if backend is not None:
        installed = storage.get("class_name") or CLASS_NAMES[backend]
        chart = versions.resolve_storage_chart(backend, storage, config.get("airgap"))
        out.update(installed_class=installed, provisioner=PROVISIONERS[backend], chart=chart,
                   namespace=chart["namespace"])
        if backend == "local-path":
            out["local_path"] = {"path": (storage.get("local_path") or {}).get("path", LOCAL_PATH_DEFAULT)}
        else:
            nfs = storage["nfs"]
            out["nfs"] = {"server": nfs["server"], "path": nfs["path"],
                          "mount_options": list(nfs.get("mount_options", NFS_MOUNT_OPTIONS))}
    out["class_name"] = existing or out.get("installed_class")
    return out
