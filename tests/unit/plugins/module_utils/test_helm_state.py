"""module_utils/helm_state.py: reading a Helm 3 release Secret and the up-to-date decision of helm_converge.

The Secrets are built the way Helm 3's storage driver writes them (release JSON, gzip, base64, then the API's
own base64 of Secret data); the lab test tests/integration/lab/test_helm_converge.py reads real ones.
"""
import base64
import gzip
import json

import pytest

from ansible_collections.gpufleet.platform.plugins.module_utils import helm_state


def _secret(name, revision, status="deployed", chart=("kueue", "0.19.2"), config=None, namespace="kueue-system",
            gzipped=True, kind=helm_state.SECRET_TYPE):
    release = {"name": name, "namespace": namespace, "version": revision, "info": {"status": status},
               "chart": {"metadata": {"name": chart[0], "version": chart[1], "appVersion": "v" + chart[1]}},
               "config": config if config is not None else {"replicas": 2}}
    raw = json.dumps(release).encode()
    if gzipped:
        raw = gzip.compress(raw)
    helm_text = base64.b64encode(raw)
    return {"type": kind, "data": {"release": base64.b64encode(helm_text).decode()},
            "metadata": {"name": "sh.helm.release.v1.%s.v%d" % (name, revision), "namespace": namespace,
                         "labels": {"owner": "helm", "name": name, "status": status, "version": str(revision)}}}


def test_selector_names_the_release_and_deployed_status():
    assert helm_state.selector("kueue") == ["owner=helm", "name=kueue", "status=deployed"]


@pytest.mark.parametrize("gzipped", [True, False])
def test_deployed_summary(gzipped):
    got = helm_state.deployed([_secret("kueue", 3, gzipped=gzipped)], "kueue")
    assert got == {"name": "kueue", "namespace": "kueue-system", "revision": 3, "status": "deployed",
                   "chart": "kueue-0.19.2", "app_version": "v0.19.2", "values": {"replicas": 2}}


def test_no_secret_means_not_installed():
    assert helm_state.deployed([], "kueue") is None
    assert helm_state.deployed(None, "kueue") is None


def test_other_releases_and_types_are_ignored():
    other = _secret("volcano", 9)
    opaque = _secret("kueue", 8, kind="Opaque")
    assert helm_state.deployed([other, opaque, _secret("kueue", 2)], "kueue")["revision"] == 2


def test_highest_deployed_revision_wins():
    # an interrupted upgrade can leave two revisions labelled deployed
    secrets = [_secret("kueue", 4, config={"replicas": 4}), _secret("kueue", 10, config={"replicas": 10}),
               _secret("kueue", 9, config={"replicas": 9})]
    assert helm_state.deployed(secrets, "kueue")["values"] == {"replicas": 10}


@pytest.mark.parametrize("data, message", [
    (None, "no data.release"),
    ("", "no data.release"),
    ("not base64!", "not base64"),
    (base64.b64encode(base64.b64encode(b"\x1f\x8b\x08garbage")).decode(), "not valid gzip"),
    (base64.b64encode(base64.b64encode(b"{not json")).decode(), "not release JSON"),
    (base64.b64encode(base64.b64encode(b"[1, 2]")).decode(), "not a JSON object"),
    (base64.b64encode(base64.b64encode(b"\xff\xfe")).decode(), "not release JSON"),
])
def test_unreadable_secrets_are_named(data, message):
    secret = _secret("kueue", 1)
    secret["data"]["release"] = data
    with pytest.raises(helm_state.ReleaseDecodeError, match=message):
        helm_state.deployed([secret], "kueue")


def _summary(**kw):
    return helm_state.deployed([_secret("kueue", 1, **kw)], "kueue")


def test_same_chart_and_values_is_up_to_date():
    assert helm_state.decide(_summary(), "kueue", "0.19.2", {"replicas": 2}) == {
        "up_to_date": True, "chart_changed": False, "reasons": []}


def test_not_installed():
    assert helm_state.decide(None, "kueue", "0.19.2", {}) == {
        "up_to_date": False, "chart_changed": True, "reasons": ["not installed"]}


def test_chart_version_change_applies_crds():
    got = helm_state.decide(_summary(), "kueue", "0.20.0", {"replicas": 2})
    assert got == {"up_to_date": False, "chart_changed": True,
                   "reasons": ["chart kueue-0.19.2 deployed, kueue-0.20.0 wanted"]}


def test_values_change_upgrades_without_crds():
    got = helm_state.decide(_summary(), "kueue", "0.19.2", {"replicas": 3})
    assert got == {"up_to_date": False, "chart_changed": False, "reasons": ["values differ"]}


def test_a_removed_value_is_a_change():
    got = helm_state.decide(_summary(config={"replicas": 2, "extra": {"a": 1}}), "kueue", "0.19.2", {"replicas": 2})
    assert got["reasons"] == ["values differ"]


def test_status_other_than_deployed_is_not_up_to_date():
    got = helm_state.decide(dict(_summary(), status="failed"), "kueue", "0.19.2", {"replicas": 2})
    assert got["reasons"] == ["status failed"]


@pytest.mark.parametrize("deployed, wanted", [
    ({"a": 1}, {"a": 1.0}),                      # Helm keeps numbers as JSON numbers
    ({"a": {"b": [1, "x"]}}, {"a": {"b": [1, "x"]}}),
    ({"a": None}, {"a": None}),
    ({}, None),
])
def test_equal_values_in_helms_form(deployed, wanted):
    assert helm_state.decide(_summary(config=deployed), "kueue", "0.19.2", wanted)["up_to_date"]


def test_strings_are_not_numbers():
    assert not helm_state.decide(_summary(config={"a": "1"}), "kueue", "0.19.2", {"a": 1})["up_to_date"]


def test_chart_id():
    assert helm_state.chart_id("cert-manager", "v1.21.1") == "cert-manager-v1.21.1"
