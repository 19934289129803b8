"""helm_converge (the helm_release role's one task) against the lab's real Helm releases and controllers.

An up-to-date release costs one API read and no helm run: the re-run passes with a `helm` on PATH that fails
whenever it is called. A real values change is still a change: --check --diff reports it and leaves the
release alone; the run upgrades the release (a new revision, the real Volcano scheduler Deployment rolled out
with the new argument); the next run reports changed=0; the original values come back the same way.
"""
import os
import stat

import pytest
import yaml

from ansible_collections.gpufleet.platform.plugins.module_utils import helm_state
from playbook import LAB_CONFIG, ansible_playbook

NAMESPACE = "volcano-system"
RELEASE = "volcano"
SKIP = ("--skip-tags", "kueue")  # the Volcano release is the subject; Kueue's objects are other tests' business


def _deployed(lab):
    secrets = lab.core.list_namespaced_secret(NAMESPACE, label_selector=",".join(helm_state.selector(RELEASE)))
    items = [lab.api_client.sanitize_for_serialization(s) for s in secrets.items]
    return helm_state.deployed(items, RELEASE)


def _scheduler_args(lab):
    deployment = lab.apps.read_namespaced_deployment("%s-scheduler" % RELEASE, NAMESPACE)
    return [a for c in deployment.spec.template.spec.containers for a in (c.args or [])]


def _helm_task_changed(result):
    return [t for t in result.changed_tasks() if "Install or upgrade the Helm release | volcano" in t]


@pytest.fixture(scope="module")
def converged(lab):
    result = ansible_playbook("playbooks/scheduling.yml", *SKIP)
    assert result.rc == 0, result
    return _deployed(lab)


@pytest.fixture
def failing_helm(tmp_path):
    """A `helm` first on PATH that fails (and leaves a mark) whenever it is run."""
    marker = tmp_path / "helm-was-called"
    shim = tmp_path / "bin" / "helm"
    shim.parent.mkdir()
    shim.write_text("#!/bin/sh\necho \"$@\" >> %s\necho 'helm must not run for an up-to-date release' >&2\nexit 1\n"
                    % marker)
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    return shim.parent, marker


def test_up_to_date_release_runs_no_helm(lab, converged, failing_helm):
    bindir, marker = failing_helm
    result = ansible_playbook("playbooks/scheduling.yml", *SKIP, path_prepend=str(bindir))
    assert result.rc == 0, result
    assert result.changed == 0, result.changed_tasks()
    assert not marker.exists(), "helm was run: %s" % marker.read_text()
    assert _deployed(lab)["revision"] == converged["revision"]


def test_values_change_is_checked_applied_and_then_idempotent(lab, converged, tmp_path):
    with open(LAB_CONFIG) as handle:
        config = yaml.safe_load(handle)
    config["services"]["volcano"]["values"] = {"custom": {"scheduler_log_level": 5}}
    changed_config = tmp_path / "config.yml"
    changed_config.write_text(yaml.safe_dump(config, sort_keys=False))
    before = converged["revision"]
    assert "-v=5" not in _scheduler_args(lab)

    check = ansible_playbook("playbooks/scheduling.yml", *SKIP, config=changed_config, check=True, diff=True)
    assert check.rc == 0, check
    assert _helm_task_changed(check), check.changed_tasks()
    assert _deployed(lab)["revision"] == before, "check mode upgraded the release"

    try:
        run = ansible_playbook("playbooks/scheduling.yml", *SKIP, config=changed_config)
        assert run.rc == 0, run
        assert _helm_task_changed(run), run.changed_tasks()
        after = _deployed(lab)
        assert after["revision"] == before + 1
        assert after["values"]["custom"]["scheduler_log_level"] == 5
        assert "-v=5" in _scheduler_args(lab)

        again = ansible_playbook("playbooks/scheduling.yml", *SKIP, config=changed_config)
        assert again.rc == 0, again
        assert again.changed == 0, again.changed_tasks()
        assert _deployed(lab)["revision"] == before + 1
    finally:
        restore = ansible_playbook("playbooks/scheduling.yml", *SKIP)
    assert restore.rc == 0, restore
    assert _helm_task_changed(restore), restore.changed_tasks()
    assert "-v=5" not in _scheduler_args(lab)
    assert "scheduler_log_level" not in (_deployed(lab)["values"].get("custom") or {})


def test_helm_is_not_needed_on_path_for_the_check_of_an_up_to_date_lab(lab, converged, failing_helm):
    bindir, marker = failing_helm
    result = ansible_playbook("playbooks/scheduling.yml", *SKIP, check=True, diff=True, path_prepend=str(bindir))
    assert result.rc == 0, result
    assert result.changed == 0, result.changed_tasks()
    assert not marker.exists(), "helm was run: %s" % (marker.read_text() if os.path.exists(marker) else "")
