"""gpufleet.platform.csr_approval through AnsibleModule, against a fake CertificatesV1Api: approves a pending
request once, leaves an approved one alone, predicts in check mode, refuses denied requests and other signers."""
import copy

import pytest
from module_harness import AnsibleExitJson, AnsibleFailJson, module_harness, set_module_args

from ansible_collections.gpufleet.platform.plugins.modules import csr_approval

SIGNER = "kubernetes.io/kube-apiserver-client"


class FakeApi(object):
    def __init__(self, csr, sign=True):
        self.csr, self.sign, self.approvals = csr, sign, []

    def read_certificate_signing_request(self, name):
        assert name == self.csr["metadata"]["name"]
        return copy.deepcopy(self.csr)

    def replace_certificate_signing_request_approval(self, name, body):
        self.approvals.append(body)
        self.csr = body
        if self.sign:
            self.csr["status"]["certificate"] = "Q0VSVA=="


class FakeClient(object):
    @staticmethod
    def sanitize_for_serialization(obj):
        return obj


@pytest.fixture()
def fake(monkeypatch):
    holder = {}

    def new_client_from_config(config_file=None, context=None):
        holder["args"] = (config_file, context)
        return FakeClient()
    monkeypatch.setattr(csr_approval.k8s_config, "new_client_from_config", new_client_from_config)
    monkeypatch.setattr(csr_approval.k8s_client, "CertificatesV1Api", lambda _client: holder["api"])
    monkeypatch.setattr(csr_approval.time, "sleep", lambda _s: None)
    return holder


def csr(conditions=(), signer=SIGNER, certificate=None):
    status = {"conditions": [{"type": t, "status": "True", "reason": "R", "message": "M"} for t in conditions]}
    if certificate:
        status["certificate"] = certificate
    return {"metadata": {"name": "c-kubeconfig-1"}, "spec": {"signerName": signer}, "status": status}


def run(args):
    args = dict({"name": "c-kubeconfig-1", "kubeconfig": "/tmp/admin.conf"}, **args)
    with set_module_args(args), module_harness():
        with pytest.raises((AnsibleExitJson, AnsibleFailJson)) as exc:
            csr_approval.main()
    return exc.value


def test_approves_a_pending_request_and_returns_the_certificate(fake):
    fake["api"] = FakeApi(csr())
    res = run({"context": "lab"})
    assert isinstance(res, AnsibleExitJson), res.result
    assert res.result == {"changed": True, "approved": True, "certificate": "Q0VSVA=="}
    assert fake["args"] == ("/tmp/admin.conf", "lab")
    assert fake["api"].approvals[0]["status"]["conditions"] == [{
        "type": "Approved", "status": "True", "reason": "GpufleetTeamAccess",
        "message": "Approved by gpufleet.platform for a user of teams[].access"}]


def test_an_approved_request_is_not_changed(fake):
    fake["api"] = FakeApi(csr(["Approved"], certificate="Q0VSVA=="))
    res = run({})
    assert res.result == {"changed": False, "approved": False, "certificate": "Q0VSVA=="}
    assert fake["api"].approvals == []


def test_check_mode_predicts_and_approves_nothing(fake):
    fake["api"] = FakeApi(csr())
    res = run({"_ansible_check_mode": True})
    assert res.result == {"changed": True, "approved": True, "certificate": ""}
    assert fake["api"].approvals == []


def test_no_certificate_in_time(fake):
    fake["api"] = FakeApi(csr(), sign=False)
    res = run({"wait_timeout": 1})
    assert isinstance(res, AnsibleFailJson)
    assert res.result["msg"] == ("CertificateSigningRequest c-kubeconfig-1: approved but no certificate after 1s; is "
                                 "kube-controller-manager running with --cluster-signing-cert-file?")


@pytest.mark.parametrize("request_, message", [
    (csr(["Denied"]), "CertificateSigningRequest c-kubeconfig-1 is denied (R: M); delete it and run again"),
    (csr(signer="kubernetes.io/kubelet-serving"), "CertificateSigningRequest c-kubeconfig-1 has signer "
     "kubernetes.io/kubelet-serving; only kubernetes.io/kube-apiserver-client requests are approved here"),
])
def test_refuses(fake, request_, message):
    fake["api"] = FakeApi(request_)
    res = run({})
    assert isinstance(res, AnsibleFailJson)
    assert res.result["msg"] == message
    assert fake["api"].approvals == []
