"""playbooks/verify.yml (role cluster_verify) against the lab, and what `make lab` installs.

The lab is converged with playbooks/site.yml from inventories/lab/config.yml first: every service, from the real
upstream charts, with their controllers running (docs/lab.md). What the lab shows: real node objects with
simulated GPU capacity and MIG state, the releases and controller Deployments (Ready only when the real
controller answers its probe), the collection's Kueue objects, and smoke Jobs scheduled by the real scheduler on
the pools' simulated nodes (KWOK completes Job pods). What it cannot show: a real `nvidia-smi` inside the smoke pod.
"""
import json
import os
import time

import pytest
import yaml

from lab_helpers import cert_manager_group_missing
from playbook import LAB_CONFIG, ansible_playbook

PLAYBOOK = "playbooks/verify.yml"
FORCE = "lab.gpufleet.io/force-mig-state"
MIG_STATE = "nvidia.com/mig.config.state"


def _wait(predicate, timeout=60, what="condition"):
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise AssertionError("timed out after %ds waiting for %s" % (timeout, what))
        time.sleep(0.5)


def _mig_state(lab, node):
    return (lab.core.read_node(node).metadata.labels or {}).get(MIG_STATE)


def _verify(tmp_path, *args, name="report.json", **kwargs):
    path = tmp_path / name
    result = ansible_playbook(PLAYBOOK, *args, extra_vars={"cluster_verify_report_path": str(path)}, **kwargs)
    report = json.loads(path.read_text()) if path.exists() else None
    return result, report


def _by(report, check):
    return {c["host"]: c for c in report["checks"] if c["check"] == check}


@pytest.fixture(scope="module")
def converged(lab):
    site = ansible_playbook("playbooks/site.yml")
    assert site.rc == 0, str(site)
    with open(LAB_CONFIG) as fh:
        return yaml.safe_load(fh)


@pytest.fixture(scope="module")
def mig_node(converged):
    pools = [name for name, pool in converged["gpu_pools"].items()
             if pool.get("mig", {}).get("layout") not in (None, "all-disabled")]
    assert pools, "the lab config has a MIG pool"
    return next(n["name"] for n in converged["nodes"] if n.get("pool") == pools[0])


def test_verify_passes_on_a_converged_lab(lab, converged, tmp_path):
    result, report = _verify(tmp_path)
    assert result.rc == 0, str(result)
    assert result.changed == 0, result.changed_tasks()
    assert report["schema"] == "gpufleet.platform/report/v1" and report["kind"] == "verify"
    assert report["ok"] and report["failures"] == []
    ready = _by(report, "node-ready")
    assert set(ready) == {n["name"] for n in converged["nodes"]}
    assert all(c["status"] == "ok" for c in ready.values())
    capacity = _by(report, "gpu-capacity")
    assert set(capacity) == {n["name"] for n in converged["nodes"] if n.get("pool")}
    assert all(c["status"] == "ok" for c in capacity.values())
    smoke = _by(report, "gpu-smoke-job")
    assert set(smoke) == {"pool/" + p for p in converged["gpu_pools"]}
    assert all(c["status"] == "ok" and "completed on lab-" in c["message"] for c in smoke.values()), smoke
    assert any(c["check"] == "cluster-policy" and c["status"] == "ok" for c in report["checks"])
    assert "VERIFY OK" in result.stdout.upper()
    # the smoke Jobs' namespace is gone again: a run leaves nothing behind
    names = [ns.metadata.name for ns in lab.core.list_namespace().items]
    assert "gpufleet-verify" not in names


def test_make_lab_installs_every_service_from_a_real_chart(lab, converged):
    """Every Helm release of the default lab config comes from the real upstream chart (the lab's mirror
    packaged it from ../shared/upstream/charts), except the one documented STAND-IN, kube-prometheus-stack,
    whose folder in ../shared lacks its subcharts; and every played controller is running and Ready."""
    import subprocess
    from gpufleet_lab import charts, settings
    kubeconfig = settings.KUBECONFIG
    out = subprocess.run([settings.binary("helm"), "--kubeconfig", kubeconfig, "list", "-A", "-o", "json"],
                         capture_output=True, text=True, check=True)
    releases = {r["name"]: r["chart"] for r in json.loads(out.stdout)}
    with open(os.path.join(settings.CHARTS, "charts.yml")) as fh:
        index = yaml.safe_load(fh)["charts"]
    by_chart = {"%s-%s" % (name, entry["version"]): (name, entry) for name, entry in index.items()}
    stand_ins = {}
    for release, chart in releases.items():
        name, entry = by_chart[chart]
        if entry.get("stand_in"):
            stand_ins[release] = name
        else:
            assert name in charts.REAL_CHARTS
    unbuilt = cert_manager_group_missing()
    assert set(stand_ins.values()) <= {"kube-prometheus-stack"} | (charts.NEEDS_CERT_MANAGER if unbuilt else set()), \
        stand_ins
    services = [k for k, v in converged["services"].items() if v.get("enabled")]
    assert sorted(services) == ["cert_manager", "gpu_operator", "kserve", "kueue", "monitoring", "slurm", "training",
                                "volcano"]
    with open(os.path.join(settings.RUN, "pod-host.json")) as fh:
        played = json.load(fh)["pods"]
    assert {k.split("/")[0] for k in played} >= {"gpu-operator", "kueue-system", "volcano-system", "kubeflow-system"} | (
        set() if unbuilt else {"cert-manager", "kserve", "slinky"})
    assert all(p["status"] == "running" and p["ready"] is not False for p in played.values()), played
    if unbuilt:  # everything else was checked; say what this lab could not show
        pytest.skip(unbuilt)


def test_verify_check_mode_creates_nothing(lab, converged, tmp_path):
    result, report = _verify(tmp_path, check=True, diff=True)
    assert result.rc == 0, str(result)
    assert result.changed == 0, result.changed_tasks()
    smoke = _by(report, "gpu-smoke-job")
    assert smoke and all(c["status"] == "skip" for c in smoke.values())


# KWOK's Job pods "run" for 1 s; the journey pods must hold their device while verify looks (on a real cluster
# they sleep after nvidia-smi): the role's pod annotations carry KWOK's run-time annotation (docs/lab.md)
JOURNEY_PODS = json.dumps({"cluster_verify_journey_pod_annotations": {"pod-complete.stage.kwok.x-k8s.io/delay": "1h"}})


def _journey_leftovers(lab):
    names = [ns.metadata.name for ns in lab.core.list_namespace().items]
    cqs = [o["metadata"]["name"] for o in lab.custom.list_cluster_custom_object(
        "kueue.x-k8s.io", "v1beta2", "clusterqueues")["items"]]
    queues = [o["metadata"]["name"] for o in lab.custom.list_cluster_custom_object(
        "scheduling.volcano.sh", "v1beta1", "queues")["items"]]
    return [n for n in names + cqs + queues if n == "gpufleet-verify-journeys"]


def test_journey_smoke_a_quota_holds_and_a_gang_starts_whole(lab, converged, tmp_path):
    """-e verify_journeys=true on the converged lab: of 2 one-GPU Jobs on a Kueue quota of 1, the real Kueue admits
    one and holds the other; the real Volcano binds both workers of a 2-worker gang. Reported in the verify report,
    changed=0, and nothing is left behind."""
    result, report = _verify(tmp_path, "-e", "verify_journeys=true", "-e", JOURNEY_PODS, name="journeys.json")
    assert result.rc == 0, str(result)
    assert result.changed == 0, result.changed_tasks()
    quota = _by(report, "journey-quota-held")["cluster"]
    assert quota["status"] == "ok", quota
    assert "quota of 1 x nvidia.com/gpu in pool a100: 1 admitted, 1 waiting" in quota["message"]
    gang = _by(report, "journey-gang-fit")["cluster"]
    assert gang["status"] == "ok" and "2 bound" in gang["message"], gang
    assert _journey_leftovers(lab) == []


def test_journey_smoke_check_mode_creates_nothing(lab, converged, tmp_path):
    result, report = _verify(tmp_path, "-e", "verify_journeys=true", check=True, diff=True, name="journeys-check.json")
    assert result.rc == 0, str(result)
    assert result.changed == 0, result.changed_tasks()
    assert {c["status"] for c in report["checks"] if c["check"].startswith("journey-")} == {"skip"}
    assert _journey_leftovers(lab) == []


def test_verify_fails_naming_the_node_whose_mig_state_failed(lab, converged, mig_node, tmp_path):
    lab.core.patch_node(mig_node, {"metadata": {"annotations": {FORCE: "failed"}}})
    try:
        _wait(lambda: _mig_state(lab, mig_node) == "failed", what="%s MIG state failed" % mig_node)
        result, report = _verify(tmp_path)
        assert result.rc != 0, str(result)
        assert "%s: mig-state: MIG state 'failed'" % mig_node in result.stdout, result.stdout[-3000:]
        assert not report["ok"]
        failed = {(c["host"], c["check"]) for c in report["failures"]}
        assert (mig_node, "mig-state") in failed
        assert {host for host, _ in failed} == {mig_node}, report["failures"]
    finally:
        lab.core.patch_node(mig_node, {"metadata": {"annotations": {FORCE: None}}})
        _wait(lambda: _mig_state(lab, mig_node) == "success", what="%s MIG state success again" % mig_node)
