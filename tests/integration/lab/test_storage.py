"""Storage (role storage, playbooks/storage.yml) against the lab: the real local-path-provisioner 0.0.37 chart and
its real controller (built from the Go module proxy, played by pod_host as the chart's pod).

What is real: the chart, the StorageClass, the API server's DefaultStorageClass admission (a PVC without a class
gets the default), kube-scheduler's volume binding (WaitForFirstConsumer: it picks the node and annotates the PVC),
the provisioner's controller (it creates the helper pod, then the PersistentVolume with the node's affinity) and
kube-controller-manager's PV controller (it binds the claim). What is simulated: the helper pod that would run the
chart's setup script (mkdir of the volume directory on the node) is KWOK's, which makes it Succeed (stage
pod-helper-complete, lab/kwok/kwok.yaml); no directory is created anywhere, and the consumer pod is a KWOK pod.

csi-driver-nfs: its chart installs for real (CSIDriver, StorageClass with the server and export, its Deployment and
DaemonSet), but its pods are KWOK's: nothing mounts NFS here, so its PVCs are not provisioned (not asserted).
"""
import copy
import subprocess
import sys
import uuid

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from lab_helpers import wait_for
from playbook import LAB_CONFIG, ROOT, ansible_playbook

sys.path.insert(0, ROOT + "/lab")
from gpufleet_lab import settings  # noqa: E402

PLAYBOOK = "playbooks/storage.yml"
DEFAULT = "storageclass.kubernetes.io/is-default-class"
LOCAL_PATH = {"backend": "local-path"}


def _config(tmp_path, storage, name="config.yml"):
    with open(LAB_CONFIG) as handle:
        config = yaml.safe_load(handle)
    if storage is None:
        config.pop("storage", None)
    else:
        config["storage"] = copy.deepcopy(storage)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _text(res):
    """The run's output with the callback's line wrapping undone (messages are matched whole)."""
    return " ".join(res.stdout.split())


def _helm(*args):
    return subprocess.run([settings.binary("helm"), "--kubeconfig", settings.KUBECONFIG] + list(args),
                          capture_output=True, text=True, check=False)


def _releases(namespace):
    res = _helm("list", "-n", namespace, "-a", "-q")
    return res.stdout.split()


def _classes(lab):
    return {sc.metadata.name: sc for sc in client.StorageV1Api(lab.api_client).list_storage_class().items}


def _delete_class(lab, name):
    try:
        client.StorageV1Api(lab.api_client).delete_storage_class(name)
    except ApiException as exc:
        if exc.status != 404:
            raise


@pytest.fixture(scope="module")
def st(lab, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("storage")
    state = {"tmp": tmp, "config": _config(tmp, LOCAL_PATH), "suffix": uuid.uuid4().hex[:5]}
    yield state
    for release, ns in (("local-path-provisioner", "local-path-storage"), ("csi-driver-nfs", "kube-system")):
        _helm("uninstall", release, "-n", ns, "--wait")
    for name in ("local-path", "nfs-csi", "st-other-default"):
        _delete_class(lab, name)


@pytest.mark.parametrize("storage,needle", [
    ({"backend": "nfs", "nfs": {"server": "nfs_server!", "path": "/exports"}},
     "storage.nfs.server: is not an IP address or a DNS hostname"),
    ({"backend": "nfs", "nfs": {"server": "10.0.0.5", "path": ""}}, "storage.nfs.path: is empty"),
    ({"backend": "nfs", "nfs": {"server": "10.0.0.5", "path": "exports"}}, "storage.nfs.path: is a relative path"),
    ({"backend": "local-path", "existing": "site-ssd"}, "storage.default: two default StorageClasses"),
    ({"backend": "ceph"}, "storage.backend: unknown storage backend; allowed: local-path, nfs"),
])
def test_bad_inputs_stop_before_any_change(lab, st, storage, needle):
    before = set(_classes(lab))
    res = ansible_playbook(PLAYBOOK, config=_config(st["tmp"], storage, "bad.yml"))
    assert res.rc != 0, res
    assert needle in _text(res), res
    assert "Validate config.yml" in res.stdout and "Storage layer" not in res.stdout.split("config.yml is invalid")[1]
    assert set(_classes(lab)) == before
    assert _releases("local-path-storage") == [] and "csi-driver-nfs" not in _releases("kube-system")


def test_check_mode_first_changes_nothing(lab, st):
    res = ansible_playbook(PLAYBOOK, config=st["config"], check=True, diff=True)
    assert res.rc == 0, res
    assert "local-path" not in _classes(lab)
    assert _releases("local-path-storage") == []


def test_converge_installs_the_default_class(lab, st):
    res = ansible_playbook(PLAYBOOK, config=st["config"])
    assert res.rc == 0, res
    assert res.changed > 0, res
    sc = _classes(lab)["local-path"]
    assert sc.provisioner == "rancher.io/local-path"
    assert sc.metadata.annotations[DEFAULT] == "true"
    assert sc.volume_binding_mode == "WaitForFirstConsumer" and sc.reclaim_policy == "Delete"
    deploy = lab.apps.read_namespaced_deployment("local-path-provisioner", "local-path-storage")
    assert deploy.status.ready_replicas == 1  # Ready from the real process's /ready probe (pod_host)


def test_second_run_and_check_mode_change_nothing(lab, st):
    res = ansible_playbook(PLAYBOOK, config=st["config"])
    assert res.rc == 0 and res.changed == 0, "%s\n%s" % (res.changed_tasks(), res)
    res = ansible_playbook(PLAYBOOK, config=st["config"], check=True, diff=True)
    assert res.rc == 0 and res.changed == 0, "%s\n%s" % (res.changed_tasks(), res)


def test_team_pvc_is_bound_by_the_real_provisioner(lab, st):
    ns = "st-team-%s" % st["suffix"]
    lab.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    try:
        lab.core.create_namespaced_persistent_volume_claim(ns, {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "model-cache"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}}})
        pvc = lab.core.read_namespaced_persistent_volume_claim("model-cache", ns)
        assert pvc.spec.storage_class_name == "local-path"  # the API server's DefaultStorageClass admission
        lab.core.create_namespaced_pod(ns, {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "reader"},
            "spec": {"tolerations": [{"operator": "Exists"}],
                     "nodeSelector": {"lab.gpufleet.io/simulated": "true"},
                     "containers": [{"name": "c", "image": "busybox", "volumeMounts": [
                         {"name": "cache", "mountPath": "/cache"}]}],
                     "volumes": [{"name": "cache", "persistentVolumeClaim": {"claimName": "model-cache"}}]}})

        def bound():
            claim = lab.core.read_namespaced_persistent_volume_claim("model-cache", ns)
            return claim if claim.status.phase == "Bound" else None
        claim = wait_for(bound, timeout=120, what="PVC model-cache Bound")
        pv = lab.core.read_persistent_volume(claim.spec.volume_name)
        assert pv.metadata.annotations["pv.kubernetes.io/provisioned-by"] == "rancher.io/local-path"
        assert pv.spec.host_path.path.startswith("/opt/local-path-provisioner/%s_%s_model-cache"
                                                 % (claim.spec.volume_name, ns))
        node = claim.metadata.annotations["volume.kubernetes.io/selected-node"]  # kube-scheduler's choice
        term = pv.spec.node_affinity.required.node_selector_terms[0].match_expressions[0]
        assert term.values == [node]

        def running():
            pod = lab.core.read_namespaced_pod("reader", ns)
            return pod if pod.status.phase == "Running" else None
        pod = wait_for(running, timeout=60, what="pod reader Running")
        assert pod.spec.node_name == node
        volume = claim.spec.volume_name
        lab.core.delete_namespaced_pod("reader", ns, grace_period_seconds=0)
        lab.core.delete_namespaced_persistent_volume_claim("model-cache", ns)

        def gone():  # reclaimPolicy Delete: the provisioner's teardown helper pod, then the PV deleted
            try:
                lab.core.read_persistent_volume(volume)
            except ApiException as exc:
                return exc.status == 404
            return False
        wait_for(gone, timeout=120, what="PV %s deleted by the provisioner" % volume)
    finally:
        lab.core.delete_namespace(ns)


def test_existing_class_is_adopted(lab, st):
    res = ansible_playbook(PLAYBOOK, config=_config(st["tmp"], {"existing": "local-path"}, "existing.yml"))
    assert res.rc == 0 and res.changed == 0, res
    res = ansible_playbook(PLAYBOOK, config=_config(st["tmp"], {"existing": "no-such-class"}, "missing.yml"))
    assert res.rc != 0, res
    assert "storage.existing: StorageClass no-such-class is not in the cluster" in _text(res), res


def test_a_second_default_in_the_cluster_is_refused(lab, st):
    client.StorageV1Api(lab.api_client).create_storage_class({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": "st-other-default", "annotations": {DEFAULT: "true"}},
        "provisioner": "example.com/none"})
    try:
        res = ansible_playbook(PLAYBOOK, config=st["config"])
        assert res.rc != 0, res
        assert ("storage.default: the cluster already has a default StorageClass (st-other-default) and local-path "
                "would be a second one") in _text(res), res
    finally:
        _delete_class(lab, "st-other-default")


def test_nfs_chart_installs_its_objects(lab, st):
    nfs = {"backend": "nfs", "default": False,
           "nfs": {"server": "nfs.lab.invalid", "path": "/exports/gpufleet"}}
    path = _config(st["tmp"], nfs, "nfs.yml")
    res = ansible_playbook(PLAYBOOK, config=path)
    assert res.rc == 0 and res.changed > 0, res
    sc = _classes(lab)["nfs-csi"]
    assert sc.provisioner == "nfs.csi.k8s.io"
    assert sc.parameters == {"server": "nfs.lab.invalid", "share": "/exports/gpufleet"}
    assert sc.mount_options == ["nfsvers=4.1"] and sc.metadata.annotations[DEFAULT] == "false"
    client.StorageV1Api(lab.api_client).read_csi_driver("nfs.csi.k8s.io")
    res = ansible_playbook(PLAYBOOK, config=path)
    assert res.rc == 0 and res.changed == 0, "%s\n%s" % (res.changed_tasks(), res)
