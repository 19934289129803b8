"""Team access (module_utils/access.py): RBAC, ResourceQuota and LimitRange per team, the platform admin binding,
the kubeconfig plan, CSR approval decisions, and every bad input of teams[].access / cluster.admin_group with its
exact message."""
import base64
import copy
import os
from fractions import Fraction

import pytest
import yaml

from ansible_collections.gpufleet.platform.plugins.module_utils import access, config_plan, config_rules, tenancy

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


@pytest.fixture()
def example():
    with open(os.path.join(ROOT, "config.example.yml")) as handle:
        return yaml.safe_load(handle)


def objects(config):
    return access.access_objects(config_plan.validate(config))


def by_kind(objs):
    return {(o["kind"], o["metadata"].get("namespace")): o for o in objs}


def messages(config):
    return [str(i) for i in config_rules.check(config)]


# --------------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------------

def test_example_team_gets_role_binding_quota_and_limit_range(example):
    objs = objects(example)
    namespaced = by_kind(objs["namespaced"])
    assert sorted(namespaced) == [("LimitRange", "research"), ("ResourceQuota", "research"), ("Role", "research"),
                                  ("RoleBinding", "research")]
    binding = namespaced[("RoleBinding", "research")]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "gpufleet-team"}
    assert binding["subjects"] == [
        {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "ml-research"},
        {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"}]
    labels = binding["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "access" and labels["gpufleet.io/team"] == "research"
    assert labels["gpufleet.io/cluster"] == example["cluster"]["name"]
    # research: a100 12 + borrowing 4; h100-mig 1g.10gb 8 + 8 the interns lend; 3g.40gb 6 (nobody else has it);
    # cpu 256 + the two other teams' default 1000 each; memory 2Ti + 4Ti + 4Ti
    assert namespaced[("ResourceQuota", "research")]["spec"] == {"hard": {
        "requests.cpu": "2256", "requests.memory": "10Ti", "requests.nvidia.com/gpu": "16",
        "requests.nvidia.com/mig-1g.10gb": "16", "requests.nvidia.com/mig-3g.40gb": "6"}}
    assert namespaced[("LimitRange", "research")]["spec"] == {
        "limits": [{"type": "Container", "defaultRequest": {"cpu": "500m", "memory": "1Gi"}}]}
    # the namespaces of teams with access only (same definition as the kueue role's)
    assert [n["metadata"]["name"] for n in objs["namespaces"]] == ["research"]
    assert objs["namespaces"][0] == tenancy.namespaces(config_plan.validate(example))[0]


def test_role_is_namespaced_and_reads_queues_only(example):
    example["services"]["volcano"] = {"enabled": True}
    del example["teams"][1]["volcano"]["parent"]
    example["services"]["kserve"]["enabled"] = True
    role = by_kind(objects(example)["namespaced"])[("Role", "research")]
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): r["verbs"] for r in role["rules"]}
    assert rules[(("kueue.x-k8s.io",), ("localqueues", "workloads"))] == ["get", "list", "watch"]
    assert "create" in rules[(("batch",), ("cronjobs", "jobs"))]
    # the example's Kueue integrations and Volcano add their job kinds; KServe and Volcano PodGroups are read-only
    assert "create" in rules[(("jobset.x-k8s.io",), ("jobsets",))]
    assert "create" in rules[(("trainer.kubeflow.org",), ("trainjobs",))]  # services.training's integration
    assert "create" in rules[(("batch.volcano.sh",), ("jobs",))]
    assert rules[(("serving.kserve.io",), ("inferenceservices",))] == ["get", "list", "watch"]
    every = {(g, r) for (groups, resources) in rules for g in groups for r in resources}
    for forbidden in [("kueue.x-k8s.io", "clusterqueues"), ("kueue.x-k8s.io", "resourceflavors"),
                      ("rbac.authorization.k8s.io", "roles"), ("rbac.authorization.k8s.io", "rolebindings"),
                      ("", "serviceaccounts"), ("", "namespaces"), ("", "nodes"), ("", "resourcequotas")]:
        assert forbidden not in every or rules_for(rules, forbidden) == ["get", "list", "watch"], forbidden
    assert all("*" not in r["verbs"] and "*" not in r["resources"] for r in role["rules"])


def rules_for(rules, pair):
    return next(v for (groups, resources), v in rules.items() if pair[0] in groups and pair[1] in resources)


def test_admin_group_binds_cluster_admin_with_the_oidc_prefix(example):
    example["cluster"]["oidc"] = {"issuer_url": "https://idp.example.com", "client_id": "k8s",
                                  "groups_prefix": "oidc:"}
    objs = objects(example)
    assert objs["cluster"] == [{
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "%s-platform-admins" % example["cluster"]["name"],
                     "labels": tenancy.labels(config_plan.validate(example), "access")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "oidc:platform-admins"}]}]
    binding = by_kind(objs["namespaced"])[("RoleBinding", "research")]
    assert binding["subjects"][0]["name"] == "oidc:ml-research"
    assert binding["subjects"][1]["name"] == "alice"  # users are written as the API server names them


def test_no_access_no_objects(example):
    del example["cluster"]["admin_group"]
    del example["teams"][0]["access"]
    assert objects(example) == {"namespaces": [], "cluster": [], "namespaced": []}


def test_access_without_subjects_still_bounds_the_namespace(example):
    example["teams"][1]["access"] = {"default_limit": {"memory": "8Gi"}}
    namespaced = by_kind(objects(example)["namespaced"])
    assert ("Role", "serving") not in namespaced and ("RoleBinding", "serving") not in namespaced
    # inference sets no cpu/memory: GPU limits only; l40s 16 (nobody lends l40s) + h100-mig 2g.20gb 8
    assert namespaced[("ResourceQuota", "serving")]["spec"]["hard"] == {
        "requests.nvidia.com/gpu": "16", "requests.nvidia.com/mig-2g.20gb": "8"}
    assert namespaced[("LimitRange", "serving")]["spec"]["limits"] == [
        {"type": "Container", "default": {"memory": "8Gi"}, "defaultRequest": {"cpu": "500m", "memory": "1Gi"}}]


def test_resource_quota_override_raises_a_limit(example):
    example["teams"][0]["access"]["resource_quota"] = {"nvidia.com/gpu": 24, "memory": "12Ti"}
    hard = by_kind(objects(example)["namespaced"])[("ResourceQuota", "research")]["spec"]["hard"]
    assert hard["requests.nvidia.com/gpu"] == "24" and hard["requests.memory"] == "12Ti"


@pytest.mark.parametrize("others, borrowing, expected", [
    ([8], None, 12),          # no borrowing limit: all that the others can lend
    ([8], 2, 6),              # bounded borrowing
    ([8], 20, 12),            # never more than the others can lend
    ([{"nominal": 8, "lending_limit": 3}], None, 7),
    ([], None, 4),            # alone in the pool
    ([8, 8], None, 20),
])
def test_quota_ceilings_nominal_plus_borrowing(others, borrowing, expected):
    mine = {"nominal": 4} if borrowing is None else {"nominal": 4, "borrowing_limit": borrowing}
    teams = [{"name": "me", "quotas": {"a100": {"nvidia.com/gpu": mine}}}]
    teams += [{"name": "o%d" % i, "quotas": {"a100": {"nvidia.com/gpu": q}}} for i, q in enumerate(others)]
    assert access.quota_ceilings(teams, 0)["nvidia.com/gpu"][0] == expected


def test_quota_ceilings_sum_pools_and_explain():
    teams = [{"name": "me", "quotas": {"a100": {"nvidia.com/gpu": {"nominal": 4, "borrowing_limit": 1}},
                                       "l40s": {"nvidia.com/gpu": 2}}},
             {"name": "other", "quotas": {"a100": {"nvidia.com/gpu": 8}}}]
    assert access.quota_ceilings(teams, 0) == {
        "nvidia.com/gpu": (7, "a100: nominal 4 + borrowing 1; l40s: nominal 2 + borrowing 0")}


def test_quota_ceilings_mig_as_gpu():
    teams = [{"name": "me", "quotas": {"h100": {"nvidia.com/gpu": 2}}}]
    ceilings = access.quota_ceilings(teams, 0, {"h100": {"nvidia.com/mig-3g.40gb": 428, "nvidia.com/mig-1g.10gb": 142}})
    assert ceilings["nvidia.com/gpu"][0] == 2
    assert ceilings["nvidia.com/mig-3g.40gb"][0] == 4 and ceilings["nvidia.com/mig-1g.10gb"][0] == 14


def test_mig_as_gpu_bounds_the_profiles_in_the_resource_quota(example):
    example["services"]["kueue"]["count_mig_as_gpu"] = True
    example["teams"][0]["quotas"]["h100-mig"] = {"nvidia.com/gpu": 2}
    example["teams"][1]["quotas"]["h100-mig"] = {"nvidia.com/gpu": 0}
    example["teams"][2]["quotas"]["h100-mig"] = {"nvidia.com/gpu": 1}
    plan = config_plan.validate(example)
    assert access.mig_milli(plan)["h100-mig"]["nvidia.com/mig-3g.40gb"] == 428
    hard = by_kind(access.access_objects(plan)["namespaced"])[("ResourceQuota", "research")]["spec"]["hard"]
    # 2 GPUs + the 1 the interns lend = 3 GPUs: 7 3g.40gb at 428m each, 21 1g.10gb at 142m
    assert hard["requests.nvidia.com/mig-3g.40gb"] == "7" and hard["requests.nvidia.com/mig-1g.10gb"] == "21"


@pytest.mark.parametrize("value, binary, expected", [
    (Fraction(384 * 2 ** 30), True, "384Gi"), (Fraction(10 ** 12), True, "1T"), (Fraction(3, 2), False, "1500m"),
    (Fraction(96), False, "96"), ("2Ti", True, "2Ti"), (12, False, "12")])
def test_as_quantity(value, binary, expected):
    assert access.as_quantity(value, binary) == expected


# --------------------------------------------------------------------------------------------
# Kubeconfigs
# --------------------------------------------------------------------------------------------

def test_kubeconfig_users_once_each_with_the_first_team(example):
    example["teams"][0]["access"].update(kubeconfigs=True, users=["alice", "bob@example.com"])
    example["teams"][2]["access"] = {"users": ["alice", "carol"], "kubeconfigs": True}
    example["teams"][1]["access"] = {"users": ["dave"]}  # no kubeconfigs for this team
    users = access.kubeconfig_users(config_plan.validate(example))
    assert [(u["user"], u["namespace"]) for u in users] == [("alice", "research"), ("bob@example.com", "research"),
                                                            ("carol", "interns")]
    cluster = example["cluster"]["name"]
    assert users[1]["file"] == "%s-bob@example.com.conf" % cluster
    for user in users:
        assert user["csr"].startswith("%s-kubeconfig-" % cluster) and len(user["csr"]) < 64
    assert len({u["csr"] for u in users}) == 3


def test_kubeconfig_file_names_are_safe():
    plan = {"cluster": {"name": "c"}, "teams": [{"name": "t", "namespace": "t", "access": {
        "kubeconfigs": True, "users": ["oidc:../../etc/passwd"]}}]}
    assert access.kubeconfig_users(plan)[0]["file"] == "c-oidc_.._.._etc_passwd.conf"


ADMIN = {"apiVersion": "v1", "kind": "Config", "current-context": "lab",
         "clusters": [{"name": "lab", "cluster": {"server": "https://127.0.0.1:6443",
                                                  "certificate-authority-data": "Q0E="}}],
         "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "admin"}}],
         "users": [{"name": "admin", "user": {"client-key-data": "U0VDUkVU"}}]}


def test_kubeconfig_has_the_admin_server_and_ca_and_never_the_admin_key():
    entry = {"user": "alice", "namespace": "research"}
    config = access.kubeconfig(ADMIN, None, entry, "Q0VSVA==", "-----BEGIN EC PRIVATE KEY-----\nx\n")
    assert config["clusters"] == [{"name": "lab", "cluster": ADMIN["clusters"][0]["cluster"]}]
    assert config["users"] == [{"name": "alice", "user": {
        "client-certificate-data": "Q0VSVA==",
        "client-key-data": base64.b64encode(b"-----BEGIN EC PRIVATE KEY-----\nx\n").decode()}}]
    assert config["contexts"] == [{"name": "alice@lab", "context": {"cluster": "lab", "user": "alice",
                                                                    "namespace": "research"}}]
    assert config["current-context"] == "alice@lab"
    assert "U0VDUkVU" not in repr(config)


def test_kubeconfig_inlines_a_ca_file(tmp_path):
    ca = tmp_path / "ca.crt"
    ca.write_bytes(b"PEM")
    admin = copy.deepcopy(ADMIN)
    admin["clusters"][0]["cluster"] = {"server": "https://x", "certificate-authority": str(ca)}
    config = access.kubeconfig(admin, "lab", {"user": "u", "namespace": "n"}, "", "")
    assert config["clusters"][0]["cluster"] == {"server": "https://x", "certificate-authority-data": "UEVN"}


def test_kubeconfig_unknown_context():
    with pytest.raises(tenancy.TenancyError) as err:
        access.kubeconfig(ADMIN, "nope", {"user": "u", "namespace": "n"}, "", "")
    assert str(err.value) == "cluster.context: context 'nope' is not in the admin kubeconfig (contexts: lab)"


def test_csr_object():
    plan = {"cluster": {"name": "c"}}
    csr = access.csr_object(plan, {"csr": "c-kubeconfig-1", "team": "t"}, "-----BEGIN CERTIFICATE REQUEST-----", 30)
    assert csr["spec"] == {"request": base64.b64encode(b"-----BEGIN CERTIFICATE REQUEST-----").decode(),
                           "signerName": "kubernetes.io/kube-apiserver-client", "usages": ["client auth"],
                           "expirationSeconds": 30 * 86400}
    assert csr["metadata"]["name"] == "c-kubeconfig-1" and csr["metadata"]["labels"]["gpufleet.io/team"] == "t"


def _csr(conditions=(), signer=access.CSR_SIGNER):
    return {"metadata": {"name": "x"}, "spec": {"signerName": signer},
            "status": {"conditions": [dict(type=t, status="True", reason="R", message="M") for t in conditions]}}


def test_approval_state_and_body():
    assert access.approval_state(_csr()) == "pending"
    assert access.approval_state(_csr(["Approved"])) == "approved"
    body = access.approval_body(_csr(), "Why", "Said")
    assert body["status"]["conditions"] == [{"type": "Approved", "status": "True", "reason": "Why", "message": "Said"}]


@pytest.mark.parametrize("csr, message", [
    (_csr(["Denied"]), "CertificateSigningRequest x is denied (R: M); delete it and run again"),
    (_csr(["Approved", "Failed"]), "CertificateSigningRequest x is failed (R: M); delete it and run again"),
    (_csr(signer="kubernetes.io/kubelet-serving"), "CertificateSigningRequest x has signer kubernetes.io/kubelet-serving; "
     "only kubernetes.io/kube-apiserver-client requests are approved here"),
])
def test_approval_refuses(csr, message):
    with pytest.raises(access.CsrError) as err:
        access.approval_state(csr)
    assert str(err.value) == message


# --------------------------------------------------------------------------------------------
# Bad inputs, each with its exact message
# --------------------------------------------------------------------------------------------

def _research(config, **access_keys):
    config["teams"][0]["access"].update(access_keys)
    return config


BAD = [
    ("quota-below-kueue", lambda c: _research(c, resource_quota={"nvidia.com/gpu": 12}),
     'teams[0].access.resource_quota["nvidia.com/gpu"]: is lower than what Kueue can admit for the team, 16 (a100: '
     'nominal 12 + borrowing 4): the pods of admitted workloads would be refused; set at least 16, or lower the '
     'quota or its borrowing_limit (got 12)'),
    ("memory-below-kueue", lambda c: _research(c, resource_quota={"memory": "4Ti"}),
     "teams[0].access.resource_quota.memory: is lower than what Kueue can admit for the team, 10Ti (nominal 2Ti + "
     "borrowing 8Ti from the cohort): the pods of admitted workloads would be refused; set at least 10Ti, or lower "
     "the quota or its borrowing_limit (got '4Ti')"),
    ("cpu-without-team-cpu", lambda c: dict(c, teams=[c["teams"][0], dict(c["teams"][1], access={
        "resource_quota": {"cpu": "64"}}), c["teams"][2]]),
     "teams[1].access.resource_quota.cpu: teams[1] sets no cpu quota, so Kueue admits up to the kueue role's "
     "default for it; set teams[1].cpu (the ResourceQuota then defaults to what Kueue admits) (got '64')"),
    ("team-group-is-admin-group", lambda c: _research(c, groups=["ml-research", "platform-admins"]),
     "teams[0].access.groups[1]: is the platform admin group (cluster.admin_group), which is cluster-admin "
     "everywhere; a team gets a group of its own (got 'platform-admins')"),
    ("system-group", lambda c: _research(c, groups=["system:masters"]),
     "teams[0].access.groups[0]: names starting with 'system:' belong to Kubernetes itself (system:masters is "
     "cluster-admin); name the team's own group (got 'system:masters')"),
    ("system-user", lambda c: _research(c, users=["system:kube-controller-manager"]),
     "teams[0].access.users[0]: names starting with 'system:' belong to Kubernetes itself (system:masters is "
     "cluster-admin); name the team's own user (got 'system:kube-controller-manager')"),
    ("system-admin-group", lambda c: dict(c, cluster=dict(c["cluster"], admin_group="system:masters")),
     "cluster.admin_group: names starting with 'system:' belong to Kubernetes itself; name the platform admins' "
     "own group (got 'system:masters')"),
    ("kubeconfigs-without-users", lambda c: _research(c, users=[], kubeconfigs=True),
     "teams[0].access.kubeconfigs: issues one kubeconfig per user, but teams[0].access.users is empty; list the "
     "users or set kubeconfigs: false (got True)"),
    ("request-above-limit", lambda c: _research(c, default_request={"cpu": "2"}, default_limit={"cpu": "1"}),
     "teams[0].access.default_request.cpu: is above teams[0].access.default_limit.cpu (1); the API server refuses "
     "a LimitRange whose default request exceeds its default limit (got '2')"),
    ("bad-group-name", lambda c: _research(c, groups=["-x"]),
     "teams[0].access.groups[0]: must be a user or group name: letters, digits and . _ @ : / + = -, starting with "
     "a letter or digit (got '-x')"),
    ("unknown-access-key", lambda c: _research(c, role="admin"),
     "teams[0].access.role: unknown key 'role'"),
    ("quota-not-a-quantity", lambda c: _research(c, resource_quota={"nvidia.com/gpu": "lots"}),
     'teams[0].access.resource_quota["nvidia.com/gpu"]'),
    ("duplicate-user", lambda c: _research(c, users=["alice", "alice"]),
     "teams[0].access.users: "),
]


@pytest.mark.parametrize("case, mutate, message", BAD, ids=[b[0] for b in BAD])
def test_bad_inputs(example, case, mutate, message):
    got = messages(mutate(example))
    assert any(m == message or (m.startswith(message) and not message.endswith(")")) for m in got), got
    if message.endswith(")"):
        assert got == [message], got  # exactly one problem, exactly this message


def test_a_higher_resource_quota_and_the_example_are_valid(example):
    assert messages(example) == []
    assert messages(_research(example, resource_quota={"nvidia.com/gpu": 16, "cpu": "3000"})) == []
