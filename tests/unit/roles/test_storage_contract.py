"""Contract: the storage role's Helm values exist in the upstream charts' values files, and the charts rendered
with them (helm template, when the lab's helm is built) give the StorageClass the plan says."""
import os
import shutil
import subprocess

import pytest
import yaml

from ansible_collections.gpufleet.platform.plugins.module_utils import storage
from ansible_collections.gpufleet.platform.tests.unit.roles.role_contract import (
    ROOT, SHARED, load_yaml, render_role_template, value_paths)

CHARTS = os.path.join(SHARED, "upstream", "charts")
HELM = shutil.which("helm") or os.path.expanduser("~/.cache/gpufleet/lab/v1.35.4/bin/helm")
CASES = {
    "local-path": ({"backend": "local-path"}, "local-path-provisioner-0.0.37"),
    "nfs": ({"backend": "nfs", "nfs": {"server": "nfs.example.com", "path": "/exports/gpufleet"}, "default": False},
            "csi-driver-nfs-4.13.4"),
}


def _config(section):
    config = load_yaml(os.path.join(ROOT, "config.example.yml"))
    config["storage"] = section
    config["airgap"] = {"enabled": True, "chart_mirror": {"type": "local", "location": "/srv/charts"},
                        "image_registry": "registry.example.internal:5000"}
    return config


def _values(backend):
    config = _config(CASES[backend][0])
    return render_role_template("storage", "values-%s.yml.j2" % backend, config,
                                extra=lambda plan: {"gpufleet_plan": dict(plan, storage=storage.plan(config))})


@pytest.mark.parametrize("backend", sorted(CASES))
def test_every_value_is_a_chart_value(backend):
    chart = os.path.join(CHARTS, CASES[backend][1])
    if not os.path.isdir(chart):
        pytest.skip("no %s" % chart)
    upstream = load_yaml(os.path.join(chart, "values.yaml"))
    with open(os.path.join(chart, "values.yaml")) as handle:
        text = handle.read()
    for path in value_paths(_values(backend), free_form=("storageClass.parameters", "storageClass.annotations")):
        node = upstream
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        # csi-driver-nfs documents storageClass.* only as comments (`#   name: nfs-csi`)
        assert node is not None or "#   %s:" % path[-1] in text or path[-1] == "provisionerName", path


@pytest.mark.parametrize("backend", sorted(CASES))
def test_rendered_storage_class(backend, tmp_path):
    chart = os.path.join(CHARTS, CASES[backend][1])
    if not (os.path.isdir(chart) and os.access(HELM, os.X_OK)):
        pytest.skip("no chart or helm")
    values = tmp_path / "values.yml"
    values.write_text(yaml.safe_dump(_values(backend)))
    out = subprocess.run([HELM, "template", "t", chart, "-f", str(values)], capture_output=True, text=True, check=True)
    classes = [d for d in yaml.safe_load_all(out.stdout) if d and d["kind"] == "StorageClass"]
    assert len(classes) == 1
    sc = classes[0]
    plan = storage.plan(_config(CASES[backend][0]))
    assert sc["metadata"]["name"] == plan["installed_class"] and sc["provisioner"] == plan["provisioner"]
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == str(plan["default"]).lower()
    if backend == "nfs":
        assert sc["parameters"] == {"server": "nfs.example.com", "share": "/exports/gpufleet"}
        assert sc["mountOptions"] == ["nfsvers=4.1"]
    else:
        images = {c["image"] for d in yaml.safe_load_all(out.stdout) if d and d["kind"] == "Deployment"
                  for c in d["spec"]["template"]["spec"]["containers"]}
        assert images == {"registry.example.internal:5000/rancher/local-path-provisioner:v0.0.37"}
