"""Team access (role team_access) against the lab's real API server: its RBAC authorizer decides every request
below, its ResourceQuota admission refuses pods, and its kube-controller-manager signs the CertificateSigningRequests
the role approves.

Two teams with access: ``a`` (group and a user with an issued kubeconfig) and ``b`` (a user, impersonated through
the admin client). Kueue on (the LocalQueues and ClusterQueues the Roles refer to), Volcano off.
"""
import base64
import json
import os
import stat
import uuid

import pytest
import yaml
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.rest import ApiException

from playbook import LAB_CONFIG, ansible_playbook

KUEUE = ("kueue.x-k8s.io", "v1beta2")


def _write(path, config):
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def acc(lab, tmp_path_factory):
    suffix = uuid.uuid4().hex[:4]
    with open(LAB_CONFIG) as handle:
        config = yaml.safe_load(handle)
    cluster = "acc-%s" % suffix
    team_a, team_b = "a%s-research" % suffix, "a%s-inference" % suffix
    config["cluster"]["name"] = cluster
    config["cluster"]["admin_group"] = "%s-admins" % cluster
    config["scheduling"] = {"cohort": cluster}
    config["teams"] = [
        {"name": team_a, "cpu": "64", "memory": "256Gi",
         "quotas": {"a100": {"nvidia.com/gpu": {"nominal": 4, "borrowing_limit": 2}}},
         "access": {"groups": ["%s-ml" % suffix], "users": ["alice-%s" % suffix], "kubeconfigs": True,
                    "default_request": {"cpu": "250m", "memory": "512Mi"}, "default_limit": {"memory": "2Gi"}}},
        {"name": team_b, "cpu": "32", "memory": "128Gi",
         "quotas": {"a100": {"nvidia.com/gpu": 4}, "l40s": {"nvidia.com/gpu": 8}},
         "access": {"users": ["bob-%s" % suffix], "resource_quota": {"nvidia.com/gpu": 20}}},
    ]
    config["services"] = {
        "cert_manager": {"enabled": False}, "gpu_operator": {"enabled": True}, "monitoring": {"enabled": False},
        "kueue": {"enabled": True}, "volcano": {"enabled": False}, "slurm": {"enabled": False},
        "kserve": {"enabled": False}}
    tmp = tmp_path_factory.mktemp("access")
    kubeconfigs = tmp / "kubeconfigs"
    state = {"config": config, "path": _write(tmp / "config.yml", config), "tmp": tmp, "cluster": cluster,
             "teams": (team_a, team_b), "suffix": suffix, "kubeconfigs": kubeconfigs,
             "vars": {"team_access_kubeconfig_dir": str(kubeconfigs)},
             "alice": "alice-%s" % suffix, "bob": "bob-%s" % suffix}
    yield state
    _cleanup(lab, cluster)


def _cleanup(lab, cluster):
    selector = "app.kubernetes.io/managed-by=gpufleet,gpufleet.io/cluster=%s" % cluster
    for obj in lab.custom.list_cluster_custom_object(*KUEUE, "localqueues", label_selector=selector)["items"]:
        lab.custom.delete_namespaced_custom_object(*KUEUE, obj["metadata"]["namespace"], "localqueues",
                                                   obj["metadata"]["name"])
    for plural in ("clusterqueues", "workloadpriorityclasses"):
        for obj in lab.custom.list_cluster_custom_object(*KUEUE, plural, label_selector=selector)["items"]:
            lab.custom.delete_cluster_custom_object(*KUEUE, plural, obj["metadata"]["name"])
    rbac = client.RbacAuthorizationV1Api(lab.api_client)
    for crb in rbac.list_cluster_role_binding(label_selector=selector).items:
        rbac.delete_cluster_role_binding(crb.metadata.name)
    for ns in lab.core.list_namespace(label_selector=selector).items:
        lab.core.delete_namespace(ns.metadata.name)


def _run(acc, *args, config=None, **kwargs):
    return ansible_playbook("playbooks/scheduling.yml", *args, config=config or acc["path"],
                            extra_vars=acc["vars"], **kwargs)


def _as(lab, user, group=None):
    """An API client that impersonates ``user`` (and ``group``): the admin's credentials, the user's rights."""
    api = client.ApiClient(lab.api_client.configuration)
    api.set_default_header("Impersonate-User", user)
    if group:
        api.set_default_header("Impersonate-Group", group)
    return api


def _job(name):
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "labels": {"kueue.x-k8s.io/queue-name": "default"}},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "main", "image": "registry.invalid/train:0",
                 "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}}}


def _pod(name, gpus):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"restartPolicy": "Never", "containers": [
                {"name": "main", "image": "registry.invalid/train:0",
                 "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}]}}


def _forbidden(call):
    with pytest.raises(ApiException) as err:
        call()
    assert err.value.status == 403, (err.value.status, err.value.body)
    return json.loads(err.value.body)["message"]


def _kubeconfig(acc):
    return acc["kubeconfigs"] / ("%s-%s.conf" % (acc["cluster"], acc["alice"]))


def test_converge_idempotent_check(lab, acc):
    first = _run(acc, "-v")
    assert first.rc == 0, first
    assert first.changed > 0, first
    path = _kubeconfig(acc)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(acc["kubeconfigs"]).st_mode) == 0o700
    issued = yaml.safe_load(path.read_text())
    key = issued["users"][0]["user"]["client-key-data"]
    assert key not in first.stdout + first.stderr  # never logged, even at -v
    pem = base64.b64decode(key).decode()
    body = "".join(pem.strip().splitlines()[1:-1])
    assert "BEGIN EC PRIVATE KEY" in pem and body[:40] not in first.stdout + first.stderr
    assert "-----BEGIN EC PRIVATE KEY" not in first.stdout + first.stderr
    # the request is gone once the certificate is in the file
    csrs = client.CertificatesV1Api(lab.api_client).list_certificate_signing_request(
        label_selector="gpufleet.io/cluster=%s" % acc["cluster"]).items
    assert csrs == []
    second = _run(acc)
    assert second.rc == 0, second
    assert second.changed == 0, second.changed_tasks()
    assert yaml.safe_load(path.read_text()) == issued  # kept, not re-issued
    check = _run(acc, check=True, diff=True)
    assert check.rc == 0, check
    assert check.changed == 0, check.changed_tasks()
    assert key not in check.stdout


def test_a_missing_kubeconfig_is_issued_again_and_the_key_never_logged(lab, acc):
    """Even at -vvv (module arguments and results printed) no private key reaches the output."""
    path = _kubeconfig(acc)
    old = yaml.safe_load(path.read_text())
    path.unlink()
    check = _run(acc, "--tags", "team_access", check=True)
    assert check.rc == 0, check
    assert "would issue a client certificate and write %s" % path in check.stdout
    assert not path.exists()
    again = _run(acc, "--tags", "team_access", "-vvv")
    assert again.rc == 0, again
    new = yaml.safe_load(path.read_text())
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    out = again.stdout + again.stderr
    for config in (old, new):
        pem = base64.b64decode(config["users"][0]["user"]["client-key-data"]).decode()
        for line in pem.strip().splitlines()[1:-1]:
            assert line not in out
        assert config["users"][0]["user"]["client-key-data"] not in out
    assert "BEGIN EC PRIVATE KEY" not in out
    assert new["users"][0]["user"]["client-key-data"] != old["users"][0]["user"]["client-key-data"]
    assert new["clusters"] == old["clusters"] and new["contexts"] == old["contexts"]


def test_issued_kubeconfig_runs_jobs_in_its_namespace_only(lab, acc):
    team_a, team_b = acc["teams"]
    api = kube_config.new_client_from_config(config_file=str(_kubeconfig(acc)))
    whoami = client.AuthenticationV1Api(api).create_self_subject_review({"apiVersion": "authentication.k8s.io/v1",
                                                                         "kind": "SelfSubjectReview"})
    assert whoami.status.user_info.username == acc["alice"]
    batch = client.BatchV1Api(api)
    created = batch.create_namespaced_job(team_a, _job("alice-train"))
    try:
        assert created.metadata.namespace == team_a
        # the team reads its LocalQueue and its Workloads, and cannot change the queue
        custom = client.CustomObjectsApi(api)
        queue = custom.get_namespaced_custom_object(*KUEUE, team_a, "localqueues", "default")
        assert queue["spec"]["clusterQueue"] == team_a
        custom.list_namespaced_custom_object(*KUEUE, team_a, "workloads")
        _forbidden(lambda: custom.patch_namespaced_custom_object(*KUEUE, team_a, "localqueues", "default",
                                                                 {"spec": {"clusterQueue": team_b}}))
        message = _forbidden(lambda: batch.create_namespaced_job(team_b, _job("alice-train")))
        assert 'User "%s" cannot create resource "jobs"' % acc["alice"] in message
        _forbidden(lambda: custom.patch_cluster_custom_object(*KUEUE, "clusterqueues", team_a,
                                                              {"spec": {"cohortName": "mine"}}))
        _forbidden(lambda: custom.create_cluster_custom_object(*KUEUE, "resourceflavors", {
            "apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor", "metadata": {"name": "alice-%s" % acc[
                "suffix"]}, "spec": {}}))
        _forbidden(lambda: custom.patch_cluster_custom_object(*KUEUE, "resourceflavors", "a100",
                                                              {"metadata": {"labels": {"x": "y"}}}))
        # nor widen its own access
        rbac = client.RbacAuthorizationV1Api(api)
        _forbidden(lambda: rbac.patch_namespaced_role("gpufleet-team", team_a, {"rules": []}))
        _forbidden(lambda: client.CoreV1Api(api).patch_namespaced_resource_quota(
            "gpufleet-team", team_a, {"spec": {"hard": {"requests.nvidia.com/gpu": "100"}}}))
    finally:
        batch.delete_namespaced_job("alice-train", team_a, propagation_policy="Background")


def test_impersonated_users_and_groups(lab, acc):
    team_a, team_b = acc["teams"]
    bob = client.BatchV1Api(_as(lab, acc["bob"]))
    bob.create_namespaced_job(team_b, _job("bob-train"))
    try:
        _forbidden(lambda: bob.create_namespaced_job(team_a, _job("bob-train")))
        _forbidden(lambda: client.CustomObjectsApi(_as(lab, acc["bob"])).patch_cluster_custom_object(
            *KUEUE, "clusterqueues", team_b, {"spec": {"cohortName": "mine"}}))
    finally:
        client.BatchV1Api(lab.api_client).delete_namespaced_job("bob-train", team_b,
                                                                propagation_policy="Background")
    # a member of team a's group: team a's rights, not team b's
    member = client.BatchV1Api(_as(lab, "carol-%s" % acc["suffix"], "%s-ml" % acc["suffix"]))
    member.create_namespaced_job(team_a, _job("carol-train"))
    client.BatchV1Api(lab.api_client).delete_namespaced_job("carol-train", team_a, propagation_policy="Background")
    _forbidden(lambda: member.create_namespaced_job(team_b, _job("carol-train")))
    # nobody else gets in
    _forbidden(lambda: client.BatchV1Api(_as(lab, "mallory")).create_namespaced_job(team_a, _job("m")))
    # the platform admin group may edit ClusterQueues
    admin = client.CustomObjectsApi(_as(lab, "dana-%s" % acc["suffix"], acc["config"]["cluster"]["admin_group"]))
    admin.patch_cluster_custom_object(*KUEUE, "clusterqueues", team_a, {"metadata": {"labels": {"checked": "yes"}}})
    client.CustomObjectsApi(lab.api_client).patch_cluster_custom_object(
        *KUEUE, "clusterqueues", team_a, {"metadata": {"labels": {"checked": None}}})


def test_pod_that_bypasses_kueue_cannot_exceed_the_resource_quota(lab, acc):
    team_a = acc["teams"][0]
    quota = lab.core.read_namespaced_resource_quota("gpufleet-team", team_a)
    # a100 nominal 4 + borrowing_limit 2; cpu 64 + the other team's 32; memory 256Gi + 128Gi
    assert quota.spec.hard == {"requests.cpu": "96", "requests.memory": "384Gi", "requests.nvidia.com/gpu": "6"}
    core = client.CoreV1Api(_as(lab, acc["bob"]))  # bob cannot even try in team a's namespace
    _forbidden(lambda: core.create_namespaced_pod(team_a, _pod("bob-pod", 1)))
    alice = client.CoreV1Api(kube_config.new_client_from_config(config_file=str(_kubeconfig(acc))))
    message = _forbidden(lambda: alice.create_namespaced_pod(team_a, _pod("too-big", 7)))
    assert "exceeded quota: gpufleet-team" in message and "requests.nvidia.com/gpu=7" in message, message
    fits = alice.create_namespaced_pod(team_a, _pod("fits", 6))
    try:
        # the LimitRange filled in what the pod did not say
        resources = fits.spec.containers[0].resources
        assert resources.requests["cpu"] == "250m" and resources.requests["memory"] == "512Mi"
        assert resources.limits["memory"] == "2Gi"
        message = _forbidden(lambda: alice.create_namespaced_pod(team_a, _pod("one-more", 1)))
        assert "exceeded quota: gpufleet-team" in message
    finally:
        lab.core.delete_namespaced_pod("fits", team_a, grace_period_seconds=0)
    # team b's limit was raised in config (20), above what Kueue admits for it (8 l40s + 4 a100 + 4 borrowed)
    assert lab.core.read_namespaced_resource_quota("gpufleet-team", acc["teams"][1]).spec.hard[
        "requests.nvidia.com/gpu"] == "20"


def test_bad_input_stops_before_any_change(lab, acc, tmp_path):
    config = json.loads(json.dumps(acc["config"]))
    config["teams"][0]["access"]["resource_quota"] = {"nvidia.com/gpu": 4}
    config["teams"][1]["access"]["groups"] = [config["cluster"]["admin_group"]]
    result = _run(acc, config=_write(tmp_path / "bad.yml", config))
    assert result.rc != 0
    out = result.stdout + result.stderr
    assert ('teams[0].access.resource_quota["nvidia.com/gpu"]: is lower than what Kueue can admit for the team, 6 '
            '(a100: nominal 4 + borrowing 2)') in out
    assert "teams[1].access.groups[0]: is the platform admin group (cluster.admin_group)" in out
    assert result.changed == 0
    assert lab.core.read_namespaced_resource_quota("gpufleet-team", acc["teams"][0]).spec.hard[
        "requests.nvidia.com/gpu"] == "6"


def test_removed_access_is_pruned(lab, acc):
    team_a, team_b = acc["teams"]
    config = json.loads(json.dumps(acc["config"]))
    del config["cluster"]["admin_group"]
    del config["teams"][1]["access"]
    smaller = _write(acc["tmp"] / "smaller.yml", config)
    rbac = client.RbacAuthorizationV1Api(lab.api_client)
    check = _run(acc, config=smaller, check=True, diff=True)
    assert check.rc == 0, check
    assert check.changed > 0
    assert rbac.read_namespaced_role_binding("gpufleet-team", team_b)  # check mode deleted nothing
    removed = _run(acc, config=smaller)
    assert removed.rc == 0, removed
    selector = "gpufleet.io/cluster=%s,app.kubernetes.io/component=access" % acc["cluster"]
    assert rbac.list_namespaced_role_binding(team_b, label_selector=selector).items == []
    assert lab.core.list_namespaced_resource_quota(team_b, label_selector=selector).items == []
    assert rbac.list_cluster_role_binding(label_selector=selector).items == []
    assert rbac.read_namespaced_role_binding("gpufleet-team", team_a).subjects[1].name == acc["alice"]
    _forbidden(lambda: client.BatchV1Api(_as(lab, acc["bob"])).create_namespaced_job(team_b, _job("late")))
    again = _run(acc, config=smaller)
    assert again.rc == 0 and again.changed == 0, again.changed_tasks()
