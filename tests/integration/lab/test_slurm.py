"""The Slurm layer (playbooks/slurm.yml: cert_manager, slurm) against the lab.

The three charts are the real Slinky v1.2.1 charts, and the real slurm-operator and its webhook play their pods
(cert-manager, also real, issues the webhook's certificate). What the lab shows: the releases install at the
pinned versions with the values the role computed, the chart renders the Controller, NodeSets, LoginSet and
Accounting from them and the real webhook admits them, the operator turns the Controller into slurmctld's
StatefulSet, the webhook refuses what Slinky forbids, the key Secrets are created once and keep their content,
the converge is idempotent and `--check --diff` predicts nothing, bad config stops before any change.

What it cannot show: running Slurm daemons. slurmctld, slurmd and slurmrestd (Slurm 25.11's REST API) are C
programs in the pods the operator creates, which KWOK simulates; the operator's NodeSet reconcile reaches
slurmrestd before it creates worker pods, so NodeSet workers are not created here (docs/lab.md). The test
also builds the NodeSet, Controller, LoginSet and Accounting objects the values describe and has the API server
validate them with a server-side dry run against the real CRDs (the values-file shape is covered by
tests/unit/roles/test_slurm_contract.py).
"""
import copy
import json
import os
import subprocess

import time

import pytest
import yaml

from lab_helpers import require_cert_manager_group
from playbook import LAB_CONFIG, ansible_playbook, lab_bin

PLAYBOOK = "playbooks/slurm.yml"
NS = "gpufleet-slurm-test"
RELEASES = ("slurm", "slurm-operator", "slurm-operator-crds")
GROUP, VERSION = "slinky.slurm.net", "v1beta1"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGpufleetlabtestkeylabtestkeylabtestkey0 lab@gpufleet"
PASSWORD_VAR = "vault_slurm_db_password"


def _helm(*args):
    kubeconfig = os.path.expanduser(yaml.safe_load(open(LAB_CONFIG))["cluster"]["kubeconfig"])
    return subprocess.run([os.path.join(lab_bin(), "helm"), "--kubeconfig", kubeconfig] + list(args),
                          capture_output=True, text=True, check=False, timeout=300)


def _slurm_config(config):
    """Lab config with Slurm on both GPU pools, split with the research team's Kueue quotas."""
    research = next(t for t in config["teams"] if t["name"] == "research")
    research["quotas"] = {"a100": {"nvidia.com/gpu": 8}, "h100": {"nvidia.com/mig-1g.10gb": 56}}
    config["services"]["slurm"] = {
        "enabled": True,
        "namespace": NS,
        "cluster_name": "labslurm",
        "nodesets": [
            {"name": "a100", "pool": "a100", "replicas": 1, "gres": {"gpu": 8}, "shared_with_queues": True},
            {"name": "slices", "pool": "h100", "replicas": 1, "gres": {"1g.10gb": 56}, "shared_with_queues": True},
        ],
        "partitions": [
            {"name": "gpu", "nodesets": ["a100"], "default": True, "max_time": "2-00:00:00"},
            {"name": "mig", "nodesets": ["slices"], "max_time": "04:00:00"},
        ],
        "login_ssh_keys": [KEY],
        "accounting": {"enabled": True, "database_host": "mariadb.db.svc", "database_user": "slurm"},
        "controller_storage": {"enabled": False},  # the lab has no storage provisioner
        "prolog_scripts": {"10-gpus.sh": "#!/bin/sh\nexit 0\n"},
        "epilog_scripts": {"90-clean.sh": "#!/bin/sh\nexit 0\n"},
    }
    config["secrets"]["slurm_db_password"] = {"var": PASSWORD_VAR}
    return config


def _write(tmp, mutate=None, name="config.yml"):
    with open(LAB_CONFIG) as fh:
        config = _slurm_config(copy.deepcopy(yaml.safe_load(fh)))
    if mutate:
        mutate(config)
    path = tmp / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _run(config, vault, **kwargs):
    return ansible_playbook(PLAYBOOK, "-e", "@%s" % vault, config=config, **kwargs)


def _elsewhere():
    """Namespaces other than NS holding a Slinky release (a lab converged with site.yml has them in `slinky`).

    The Slinky CRDs are cluster-wide templates of slurm-operator-crds, so Helm lets one release own them: the
    test's install in NS needs the lab's own Slurm releases gone first."""
    listed = _helm("list", "--all-namespaces", "--filter", "^(%s)$" % "|".join(RELEASES), "--output", "json")
    return sorted({r["namespace"] for r in json.loads(listed.stdout or "[]")} - {NS})


def _cleanup(lab):
    from kubernetes.client.rest import ApiException
    for namespace in _elsewhere() + [NS]:
        for release in RELEASES:
            _helm("uninstall", release, "--namespace", namespace, "--wait")
    try:
        lab.core.delete_namespace(NS, grace_period_seconds=0)
    except ApiException as exc:
        if exc.status != 404:
            raise
    for _ in range(120):
        try:
            lab.core.read_namespace(NS)
        except ApiException as exc:
            if exc.status == 404:
                return
        import time
        time.sleep(1)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("slurm")
    vault = tmp / "vault.yml"  # stands for an Ansible Vault file: the password never goes on a command line
    vault.write_text(yaml.safe_dump({PASSWORD_VAR: "lab-only-Slurm-db-pass-7f3c"}))
    return tmp, _write(tmp), vault


@pytest.fixture(scope="module")
def converged(lab, files):
    _cleanup(lab)
    _, config, vault = files
    first = _run(config, vault)
    assert first.rc == 0, str(first)
    keys = {name: lab.core.read_namespaced_secret(name, NS).data for name in ("slurm-auth-slurm", "slurm-auth-jwt")}
    yield first, keys
    if not os.environ.get("GPUFLEET_SLURM_TEST_KEEP"):  # keep the releases to look at them
        _cleanup(lab)


def _values(release="slurm"):
    out = _helm("get", "values", release, "--namespace", NS, "--output", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_first_converge_changes(converged):
    first, _ = converged
    assert first.changed > 0, str(first)
    tasks = "\n".join(first.changed_tasks())
    assert "auth/slurm and JWT key Secrets" in tasks and "accounting database password Secret" in tasks, tasks
    for release in ("slurm-operator-crds 1.2.1", "slurm-operator 1.2.1", "slurm 1.2.1"):
        assert "Install or upgrade the Helm release | " + release in tasks, tasks


def test_second_converge_and_check_mode_change_nothing_and_keys_stay(lab, converged, files):
    _, keys = converged
    _, config, vault = files
    second = _run(config, vault)
    assert second.rc == 0, str(second)
    assert second.changed == 0, "\n".join(second.changed_tasks())
    check = _run(config, vault, check=True, diff=True)
    assert check.rc == 0, str(check)
    assert check.changed == 0, "\n".join(check.changed_tasks())
    for name, data in keys.items():
        assert lab.core.read_namespaced_secret(name, NS).data == data, "%s was regenerated" % name
    # the keys and the password never reach the output
    for result in (second, check):
        for data in keys.values():
            assert list(data.values())[0] not in result.stdout
        assert "lab-only-Slurm-db-pass-7f3c" not in result.stdout


def test_releases_pinned_and_secrets_written(lab, converged):
    out = _helm("list", "--namespace", NS, "--output", "json")
    releases = {r["name"]: r for r in json.loads(out.stdout)}
    assert {r: releases[r]["chart"] for r in RELEASES} == {
        "slurm": "slurm-1.2.1", "slurm-operator": "slurm-operator-1.2.1",
        "slurm-operator-crds": "slurm-operator-crds-1.2.1"}
    assert all(releases[r]["status"] == "deployed" for r in RELEASES)
    # the lab is an air-gapped site: images come from its (never contacted) registry
    assert _values("slurm-operator") == {
        "crds": {"enabled": False}, "certManager": {"enabled": True},
        "operator": {"image": {"repository": "registry.invalid/gpufleet-lab/slinkyproject/slurm-operator"}},
        "webhook": {"image": {"repository": "registry.invalid/gpufleet-lab/slinkyproject/slurm-operator-webhook"}}}
    import base64
    auth = lab.core.read_namespaced_secret("slurm-auth-slurm", NS)
    assert len(base64.b64decode(auth.data["slurm.key"])) == 1024
    assert auth.metadata.labels["app.kubernetes.io/managed-by"] == "gpufleet"
    db = lab.core.read_namespaced_secret("slurm-accounting-db", NS)
    assert base64.b64decode(db.data["password"]).decode() == "lab-only-Slurm-db-pass-7f3c"


def test_values_carry_the_config(converged):
    values = _values()
    assert values["clusterName"] == "labslurm"
    assert values["slurmKey"] == {"create": False, "secretRef": {"name": "slurm-auth-slurm", "key": "slurm.key"}}
    assert values["jwtKey"] == {"create": False, "secretRef": {"name": "slurm-auth-jwt", "key": "jwt.key"}}
    assert values["partitions"]["gpu"] == {"enabled": True, "nodesets": ["a100"],
                                           "configMap": {"Default": "YES", "MaxTime": "2-00:00:00", "State": "UP"}}
    assert values["partitions"]["mig"]["configMap"]["Default"] == "NO"
    assert values["loginsets"]["login"]["rootSshAuthorizedKeys"] == KEY + "\n"
    assert values["accounting"]["storageConfig"] == {
        "host": "mariadb.db.svc", "username": "slurm",
        "passwordKeyRef": {"name": "slurm-accounting-db", "key": "password"}}
    assert values["controller"]["extraConfMap"]["AccountingStorageTRES"] == ["gres/gpu", "gres/gpu:1g.10gb"]
    assert values["prologScripts"] == {"10-gpus.sh": "#!/bin/sh\nexit 0\n"}
    assert values["vendor"]["nvidia"]["dcgm"]["enabled"] is True  # monitoring is on in the lab
    assert values["configFiles"]["gres.conf"] == "AutoDetect=nvml\n"


@pytest.mark.parametrize("nodeset,pool,resource,count,gres", [
    ("a100", "a100", "nvidia.com/gpu", 8, ["gpu:8"]),
    ("slices", "h100", "nvidia.com/mig-1g.10gb", 56, ["gpu:1g.10gb:56"]),
])
def test_nodesets_select_their_pool_and_gres_match_the_nodes(lab, converged, nodeset, pool, resource, count, gres):
    entry = _values()["nodesets"][nodeset]
    assert entry["extraConfMap"]["Gres"] == gres
    assert entry["slurmd"]["resources"]["limits"] == {resource: count}
    selector = entry["podSpec"]["nodeSelector"]
    matched = [n for n in lab.core.list_node().items
               if all((n.metadata.labels or {}).get(k) == v for k, v in selector.items())]
    assert sorted(n.metadata.name for n in matched) == sorted(
        n["name"] for n in lab.gpu_nodes() if n["pool"] == pool)
    if resource.startswith("nvidia.com/mig-"):
        # MIG devices exist once the GPU layer has labelled the nodes (the mig role; the GPU simulator stands in
        # for the MIG manager). This test does not depend on the GPU layer test having run first: it selects the
        # lab config's layout (all-1g.10gb on the h100 pool) itself, as the mig role would.
        for node in matched:
            if (node.metadata.labels or {}).get("nvidia.com/mig.config") != "all-1g.10gb":
                lab.core.patch_node(node.metadata.name, {"metadata": {"labels": {"nvidia.com/mig.config": "all-1g.10gb"}}})
    deadline = time.time() + 90
    while True:
        matched = [lab.core.read_node(n.metadata.name) for n in matched]
        short = [n.metadata.name for n in matched if int(n.status.allocatable.get(resource, "0")) < count]
        if not short or time.time() > deadline:
            break
        time.sleep(1)
    # what the GPU simulator publishes for the pool (full GPUs, or the MIG layout's devices)
    assert not short, "nodes without %d %s: %s" % (count, resource, short)


def _objects(values):
    """The Slinky objects the values describe (our reading of the chart; see the module docstring)."""
    def conf(conf_map):
        return " ".join("%s=%s" % (k, ",".join(v) if isinstance(v, list) else v) for k, v in conf_map.items())
    meta = {"namespace": NS, "labels": {"app.kubernetes.io/managed-by": "gpufleet-test"}}
    controller = "slurm"
    objects = [{"kind": "Controller", "metadata": dict(meta, name=controller), "spec": {
        "clusterName": values["clusterName"],
        "slurmKeyRef": values["slurmKey"]["secretRef"], "jwtHs256KeyRef": values["jwtKey"]["secretRef"],
        "extraConf": conf(values["controller"]["extraConfMap"]) + "\n" + "\n".join(
            "PartitionName=%s Nodes=%s %s" % (name, ",".join(p["nodesets"]), conf(p["configMap"]))
            for name, p in values["partitions"].items()),
        "accountingRef": {"name": "slurm"},
        "persistence": {"enabled": True},
    }}]
    for name, entry in values["nodesets"].items():
        objects.append({"kind": "NodeSet", "metadata": dict(meta, name="slurm-worker-" + name), "spec": {
            "controllerRef": {"name": controller}, "replicas": entry["replicas"],
            "extraConf": conf(entry["extraConfMap"]), "slurmd": entry["slurmd"],
            "partition": {"enabled": False},
            "template": {"spec": entry["podSpec"]}}})
    for name, entry in values["loginsets"].items():
        objects.append({"kind": "LoginSet", "metadata": dict(meta, name="slurm-login-" + name), "spec": {
            "controllerRef": {"name": controller}, "replicas": entry["replicas"],
            "rootSshAuthorizedKeys": entry["rootSshAuthorizedKeys"],
            "sssdConfRef": {"name": "slurm-sssd-conf", "key": "sssd.conf"}}})
    storage = values["accounting"]["storageConfig"]
    objects.append({"kind": "Accounting", "metadata": dict(meta, name="slurm"), "spec": {
        "slurmKeyRef": values["slurmKey"]["secretRef"], "jwtHs256KeyRef": values["jwtKey"]["secretRef"],
        "storageConfig": storage}})
    return objects


def _pruned(sent, got, path="spec"):
    """Paths of what we sent that the API server did not keep."""
    if isinstance(sent, dict):
        if not isinstance(got, dict):
            return [path]
        return [p for k, v in sent.items() for p in (_pruned(v, got[k], path + "." + k) if k in got
                                                      else [path + "." + k])]
    return [] if sent == got else [path]


def test_slinky_objects_from_the_values_pass_the_real_crds(lab, converged):
    plural = {"Controller": "controllers", "NodeSet": "nodesets", "LoginSet": "loginsets",
              "Accounting": "accountings"}
    for obj in _objects(_values()):
        # the real slurm chart has created these objects already: the dry run creates a same-spec twin
        body = dict(obj, apiVersion="%s/%s" % (GROUP, VERSION),
                    metadata=dict(obj["metadata"], name=obj["metadata"]["name"] + "-crd-check"))
        created = lab.custom.create_namespaced_custom_object(GROUP, VERSION, NS, plural[obj["kind"]], body,
                                                             dry_run="All")
        # nothing pruned (a field the CRD does not know would be dropped silently); defaults may be added
        assert _pruned(obj["spec"], created["spec"]) == [], obj["kind"]
        if obj["kind"] == "NodeSet":
            assert "Gres=gpu:" in created["spec"]["extraConf"]
    # and a typo in a typed field is refused by the same CRDs (the dry run is not a no-op)
    from kubernetes.client.rest import ApiException
    nodeset = _objects(_values())[1]
    bad = dict(nodeset, apiVersion="%s/%s" % (GROUP, VERSION),
               metadata=dict(nodeset["metadata"], name=nodeset["metadata"]["name"] + "-crd-check"))
    bad["spec"] = dict(bad["spec"], replicas="two")
    with pytest.raises(ApiException) as info:
        lab.custom.create_namespaced_custom_object(GROUP, VERSION, NS, "nodesets", bad, dry_run="All")
    assert info.value.status == 422


def _bad_pool(config):
    config["services"]["slurm"]["nodesets"][0]["pool"] = "v100"


def _bad_gres(config):
    config["services"]["slurm"]["nodesets"][0]["gres"] = {"gpu": 9}


def _bad_profile(config):
    config["services"]["slurm"]["nodesets"][1]["gres"] = {"3g.40gb": 1}


def _no_password(config):
    del config["secrets"]["slurm_db_password"]


def _shared_not_split(config):
    del config["services"]["slurm"]["nodesets"][0]["shared_with_queues"]


@pytest.mark.parametrize("mutate,path,fragment", [
    (_bad_pool, "services.slurm.nodesets[0].pool", "no such GPU pool"),
    (_bad_gres, "services.slurm.nodesets[0].gres.gpu", "has only 8"),
    (_bad_profile, 'services.slurm.nodesets[1].gres["3g.40gb"]', "has no MIG profile '3g.40gb'"),
    (_no_password, "secrets.slurm_db_password", "is required when services.slurm.accounting"),
    (_shared_not_split, "services.slurm.nodesets[0].pool", "also in team quotas"),
], ids=["unknown-pool", "gres-over-capacity", "mig-profile-not-in-layout", "no-db-password", "shared-not-split"])
def test_bad_config_stops_in_validation(lab, converged, files, mutate, path, fragment):
    tmp, _, vault = files
    config = _write(tmp, mutate, name="bad-%s.yml" % mutate.__name__)
    before = _values()
    result = _run(config, vault)
    assert result.rc != 0
    assert path in result.stdout and fragment in result.stdout, str(result)
    assert result.changed == 0 and "TASK [gpufleet.platform.slurm" not in result.stdout
    assert _values() == before


def test_the_real_operator_and_webhook_handle_the_charts_objects(lab, converged):
    """The slurm chart's own NodeSets and Controller exist; the real slurm-operator turns the Controller into
    slurmctld's StatefulSet (owned by it); the real Slinky webhook refuses moving a NodeSet to another Controller."""
    require_cert_manager_group()
    from kubernetes.client.rest import ApiException
    nodesets = lab.custom.list_namespaced_custom_object(GROUP, VERSION, NS, "nodesets")["items"]
    assert sorted(n["metadata"]["name"] for n in nodesets) == ["slurm-worker-a100", "slurm-worker-slices"]
    controller = lab.custom.list_namespaced_custom_object(GROUP, VERSION, NS, "controllers")["items"]
    assert [c["metadata"]["name"] for c in controller] == ["slurm"]
    deadline, sts = time.time() + 120, []
    while time.time() < deadline:
        sts = [s for s in lab.apps.list_namespaced_stateful_set(NS).items
               if any(o.kind == "Controller" for o in s.metadata.owner_references or [])]
        if sts:
            break
        time.sleep(2)
    assert sts and sts[0].metadata.owner_references[0].name == "slurm", [s.metadata.name for s in sts]
    moved = {"spec": {"controllerRef": {"name": "another-cluster", "namespace": NS}}}
    with pytest.raises(ApiException) as info:
        lab.custom.patch_namespaced_custom_object(GROUP, VERSION, NS, "nodesets", "slurm-worker-a100", moved)
    assert "cannot change controllerRef" in info.value.body, info.value.body


def test_the_real_operator_creates_the_slurmctld_servicemonitor(lab, converged):
    """Monitoring is on in the lab config, so the Controller asks for slurmctld's metrics with a ServiceMonitor;
    the real slurm-operator creates it, owned by the Controller, for the endpoints the Slurm dashboard reads.
    Not shown here: a scrape (slurmctld's pod is KWOK's, no Slurm daemon runs in the lab, docs/lab.md)."""
    require_cert_manager_group()
    def monitor():
        items = lab.custom.list_namespaced_custom_object("monitoring.coreos.com", "v1", NS, "servicemonitors")["items"]
        return [m for m in items if any(o["kind"] == "Controller" for o in m["metadata"].get("ownerReferences", []))]

    deadline, found = time.time() + 120, []
    while time.time() < deadline and not found:
        found = monitor()
        time.sleep(0 if found else 2)
    assert len(found) == 1, found
    spec = found[0]["spec"]
    assert found[0]["metadata"]["ownerReferences"][0]["name"] == "slurm"
    assert sorted(e["path"] for e in spec["endpoints"]) == [
        "/metrics/jobs", "/metrics/nodes", "/metrics/partitions", "/metrics/scheduler"]
    assert spec["namespaceSelector"] == {"matchNames": [NS]}
