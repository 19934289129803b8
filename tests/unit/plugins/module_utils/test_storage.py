"""The storage section (module_utils/storage.py): every refused input with its exact message, the plan, the schema."""
import copy
import os

import jsonschema
import pytest
import yaml

from ansible_collections.gpufleet.platform.plugins.module_utils import config_schema, storage, versions

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
MIRROR = {"enabled": True, "chart_mirror": {"type": "local", "location": "/srv/charts"}}
NFS = {"server": "nfs.example.com", "path": "/exports/gpufleet"}


def config(storage_section, airgap="mirror"):
    with open(os.path.join(ROOT, "config.example.yml")) as handle:
        cfg = yaml.safe_load(handle)
    cfg["storage"] = copy.deepcopy(storage_section)
    if airgap is not None:
        cfg["airgap"] = copy.deepcopy(MIRROR if airgap == "mirror" else airgap)
    return cfg


def messages(section, airgap="mirror"):
    return [str(issue) for issue in storage.issues(config(section, airgap))]


@pytest.mark.parametrize("section,expected", [
    ({"backend": "ceph"},
     "storage.backend: unknown storage backend; allowed: local-path, nfs (or omit it and set storage.existing: NAME "
     "to adopt a class the site has) (got 'ceph')"),
    ({}, "storage: set storage.backend (local-path, nfs) to install a StorageClass, or storage.existing: NAME to "
         "adopt one"),
    ({"backend": "nfs"}, "storage.nfs: is required with storage.backend nfs: {server: ADDRESS or HOSTNAME, path: "
                         "/EXPORT}"),
    ({"backend": "nfs", "nfs": {"path": "/x"}},
     "storage.nfs.server: is required with storage.backend nfs (an IP address or a DNS hostname)"),
    ({"backend": "nfs", "nfs": {"server": "nfs_server!", "path": "/x"}},
     "storage.nfs.server: is not an IP address or a DNS hostname (letters, digits and '-', labels separated by '.', "
     "e.g. nfs.example.com or 10.0.0.5) (got 'nfs_server!')"),
    ({"backend": "nfs", "nfs": {"server": "300.1.2.3", "path": "/x"}},
     "storage.nfs.server: is not an IP address or a DNS hostname (letters, digits and '-', labels separated by '.', "
     "e.g. nfs.example.com or 10.0.0.5) (got '300.1.2.3')"),
    ({"backend": "nfs", "nfs": {"server": "10.0.0.5", "path": ""}},
     "storage.nfs.path: is empty: the exported directory on the NFS server is required (got '')"),
    ({"backend": "nfs", "nfs": {"server": "10.0.0.5"}},
     "storage.nfs.path: is empty: the exported directory on the NFS server is required"),
    ({"backend": "nfs", "nfs": {"server": "10.0.0.5", "path": "exports/x"}},
     "storage.nfs.path: is a relative path: the export must be absolute, e.g. /exports/gpufleet (got 'exports/x')"),
    ({"backend": "nfs", "nfs": {"server": "10.0.0.5", "path": "/exports/../etc"}},
     "storage.nfs.path: must be an absolute path without '..' components (got '/exports/../etc')"),
    ({"backend": "local-path", "existing": "site-ssd"},
     "storage.default: two default StorageClasses: storage.existing 'site-ssd' is the class the platform uses and "
     "storage.backend local-path would install 'local-path' as the cluster default too; set storage.default: false "
     "(install it as a second, non-default class) or drop storage.existing (got True)"),
    ({"backend": "local-path", "existing": "local-path", "default": False},
     "storage.existing: names the class storage.backend local-path installs; adopt another class or drop "
     "storage.existing (got 'local-path')"),
    ({"backend": "local-path", "nfs": NFS},
     "storage.nfs: applies to storage.backend nfs only (storage.backend is local-path)"),
])
def test_refused(section, expected):
    assert messages(section) == [expected]


def test_local_path_needs_a_chart_source_without_a_mirror():
    chart = versions.STORAGE_CHARTS["local-path"]
    assert messages({"backend": "local-path"}, airgap={"enabled": False}) == [
        "storage.chart: is required for local-path without an air-gap mirror: upstream publishes "
        "local-path-provisioner 0.0.37 in no Helm repository or OCI registry, only as a folder of %s at tag v0.0.37; "
        "set storage.chart {source: local, path: that folder or its .tgz} (or a repository of your own), or "
        "airgap.chart_mirror" % chart["git"]]
    assert messages({"backend": "local-path", "chart": {"source": "local", "path": "/srv/lpp"}},
                    airgap={"enabled": False}) == []
    assert messages({"backend": "nfs", "nfs": NFS}, airgap={"enabled": False}) == []  # its Helm repository


@pytest.mark.parametrize("server", ["nfs.example.com", "nfs-1", "10.0.0.5", "fd00::5", "NAS01.corp.example."])
def test_nfs_servers_accepted(server):
    assert messages({"backend": "nfs", "nfs": {"server": server, "path": "/exports"}}) == []


def test_absent_section_is_no_storage():
    cfg = config({})
    del cfg["storage"]
    assert storage.issues(cfg) == []
    assert storage.plan(cfg) == {"enabled": False, "install": False, "backend": None, "class_name": None,
                                 "existing": None}


def test_plan_local_path():
    plan = storage.plan(config({"backend": "local-path", "local_path": {"path": "/data/volumes"}}))
    assert plan == {
        "enabled": True, "install": True, "backend": "local-path", "existing": None, "default": True,
        "reclaim_policy": "Delete", "values": {}, "installed_class": "local-path", "class_name": "local-path",
        "provisioner": "rancher.io/local-path", "namespace": "local-path-storage",
        "chart": {"name": "local-path-provisioner", "version": "0.0.37", "namespace": "local-path-storage",
                  "repo_url": None, "source": "local", "ref": "/srv/charts/local-path-provisioner-0.0.37.tgz"},
        "local_path": {"path": "/data/volumes"}}


def test_plan_nfs_beside_an_adopted_class():
    plan = storage.plan(config({"backend": "nfs", "nfs": NFS, "default": False, "existing": "site-ssd",
                                "class_name": "shared"}, airgap=None))
    assert plan["class_name"] == "site-ssd" and plan["installed_class"] == "shared" and plan["default"] is False
    assert plan["nfs"] == dict(NFS, mount_options=["nfsvers=4.1"])
    assert plan["chart"] == {"name": "csi-driver-nfs", "version": "4.13.4", "namespace": "kube-system",
                             "source": "repo", "ref": "csi-driver-nfs",
                             "repo_url": versions.STORAGE_CHARTS["nfs"]["repo_url"]}


def test_plan_existing_only():
    plan = storage.plan(config({"existing": "site-ssd"}))
    assert plan["class_name"] == "site-ssd" and plan["install"] is False and plan["default"] is False


def test_chart_override_and_version():
    plan = storage.plan(config({"backend": "nfs", "nfs": NFS, "version": "4.13.5", "namespace": "storage",
                                "chart": {"source": "oci", "oci_ref": "oci://registry.example/charts/csi-driver-nfs"}},
                               airgap=None))
    assert plan["chart"] == {"name": "csi-driver-nfs", "version": "4.13.5", "namespace": "storage", "repo_url": None,
                             "source": "oci", "ref": "oci://registry.example/charts/csi-driver-nfs"}


@pytest.mark.parametrize("section,path", [
    ({"backend": "local-path", "size": "1Gi"}, "storage"),
    ({"backend": "local-path", "default": "yes"}, "storage.default"),
    ({"backend": "nfs", "nfs": {"server": "a", "path": "/b", "share": "/c"}}, "storage.nfs"),
    ({"backend": "local-path", "local_path": {"path": "relative"}}, "storage.local_path.path"),
    ({"existing": "Not_A_Name"}, "storage.existing"),
])
def test_schema_refuses(section, path):
    errors = list(jsonschema.Draft202012Validator(config_schema.SCHEMA).iter_errors(config(section)))
    assert [".".join(str(p) for p in e.absolute_path) for e in errors] == [path]


def test_matrix_has_the_storage_charts():
    charts = versions.all_charts()["storage"]
    assert [(c["name"], c["version"]) for c in charts] == [
        ("local-path-provisioner", "0.0.37"), ("csi-driver-nfs", "4.13.4")]
    assert "storage" not in versions.CHARTS  # not a service: the plan's services loop over CHARTS
