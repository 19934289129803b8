"""playbooks/airgap_bundle.yml through real ansible-playbook runs, against the real charts in
../shared/upstream/charts (packaged here into a local chart mirror, as the lab does), contacting no cluster.

The manifest for config.example.yml must list every image the charts render with the values the roles compute:
the test renders each chart again itself (helm template with the values the bundle wrote) and walks every
`image:` field. kube-prometheus-stack in ../shared lacks its subcharts (docs/lab.md, STAND-IN): the bundle must
report it as not renderable and mark itself partial, not fail.
"""
import json
import os
import shutil
import subprocess
import tarfile

import pytest
import yaml
from ansible_runs import ROOT, run

SHARED = os.environ.get("GPUFLEET_SHARED") or os.path.join(ROOT, "..", "shared")
CHARTS = os.path.join(SHARED, "upstream", "charts")
LAB_BIN = os.path.join(os.environ.get("GPUFLEET_LAB_CACHE") or os.path.expanduser("~/.cache/gpufleet/lab"), "v1.35.4", "bin")
HELM = next((h for h in (os.path.join(LAB_BIN, "helm"), shutil.which("helm")) if h and os.access(h, os.X_OK)), None)

pytestmark = [
    pytest.mark.skipif(not os.path.isdir(CHARTS), reason="no upstream charts at %s (GPUFLEET_SHARED)" % CHARTS),
    pytest.mark.skipif(HELM is None, reason="no helm binary (%s or PATH): `make lab-build` builds it" % LAB_BIN),
]
PATH = os.path.dirname(HELM or "/") + os.pathsep + os.environ.get("PATH", "")


def package_charts(dest):
    """Every chart of ../shared as <name>-<version>.tgz, the layout of a local chart mirror (helm package's)."""
    os.makedirs(dest, exist_ok=True)
    for entry in sorted(os.listdir(CHARTS)):
        meta_file = os.path.join(CHARTS, entry, "Chart.yaml")
        if os.path.isfile(meta_file):
            with open(meta_file) as handle:
                meta = yaml.safe_load(handle)
            with tarfile.open(os.path.join(dest, "%s-%s.tgz" % (meta["name"], meta["version"])), "w:gz") as tgz:
                tgz.add(os.path.join(CHARTS, entry), arcname=meta["name"])
    return dest


def bundle_config(tmp, mirror_dir, **services):
    with open(os.path.join(ROOT, "config.example.yml")) as handle:
        config = yaml.safe_load(handle)
    config["airgap"] = {"enabled": True, "chart_mirror": {"type": "local", "location": mirror_dir},
                        "image_registry": "registry.example.internal:5000/mirror"}
    config["storage"] = {"backend": "local-path"}  # the chart comes from the mirror like the others
    for name, enabled in services.items():
        config["services"][name]["enabled"] = enabled
    path = os.path.join(tmp, "config.yml")
    with open(path, "w") as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
    return path


def flat(text):
    """ansible-playbook output with YAML line folding undone."""
    return " ".join(text.split())


def bundle(config, out, *extra):
    return run("ansible-playbook", "-i", config, "playbooks/airgap_bundle.yml", "-e", "airgap_bundle_dir=%s" % out,
               *extra, PATH=PATH)


@pytest.fixture(scope="module")
def example_bundle(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("airgap"))
    mirror = package_charts(os.path.join(tmp, "mirror"))
    out = os.path.join(tmp, "bundle")
    result = bundle(bundle_config(tmp, mirror), out)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr
    with open(os.path.join(out, "manifest.yml")) as handle:
        manifest = yaml.safe_load(handle)
    return {"tmp": tmp, "mirror": mirror, "out": out, "manifest": manifest, "stdout": result.stdout}


def independent_images(node, found):
    """Every `image:` value (the GPU Operator's repository/image/version triple joined), JSON strings included."""
    if isinstance(node, dict):
        image = node.get("image")
        if isinstance(image, str) and image:
            if "/" not in image and node.get("repository"):
                sep = "@" if str(node.get("version", "")).startswith("sha256:") else ":"
                image = node["repository"] + "/" + image + (sep + node["version"] if node.get("version") else "")
            found.add(image)
        for key, value in node.items():
            if key != "image":
                independent_images(value, found)
    elif isinstance(node, list):
        for item in node:
            independent_images(item, found)
    elif isinstance(node, str) and node.strip().startswith(("{", "[")):
        try:
            independent_images(json.loads(node), found)
        except ValueError:
            pass
    return found


def helm_template_images(chart, values_file):
    proc = subprocess.run([HELM, "template", chart["release"], chart["ref"], "--namespace", chart["namespace"],
                           "--include-crds", "-f", values_file], capture_output=True, text=True, check=True)
    found = set()
    for doc in yaml.safe_load_all(proc.stdout):
        if isinstance(doc, dict) and doc.get("kind") != "CustomResourceDefinition":
            independent_images(doc, found)
    return found


def test_manifest_lists_every_rendered_image(example_bundle):
    manifest, out = example_bundle["manifest"], example_bundle["out"]
    rendered = [c for c in manifest["charts"] if c["rendered"]]
    # config.example.yml's services, and the storage: the test adds
    assert [c["name"] for c in rendered] == ["cert-manager", "local-path-provisioner", "gpu-operator", "kueue",
                                             "kubeflow-trainer"]
    listed = {i["image"] for i in manifest["images"]}
    for chart in rendered:
        expected = helm_template_images(chart, os.path.join(out, "values", chart["release"] + ".yml"))
        assert expected, chart["name"]
        assert set(chart["images"]) == expected, chart["name"]
        assert expected <= listed, (chart["name"], sorted(expected - listed))
    # the roles' values, not the chart defaults: Kueue's image is the release's, not the staging default
    assert "registry.k8s.io/kueue/kueue:v0.19.2" in listed
    # images the roles add; names as upstream publishes them (airgap.image_registry is where they go)
    assert "nvcr.io/nvidia/cuda:12.8.1-base-ubuntu24.04" in listed
    assert "docker.io/pytorch/pytorch:2.13.0-cuda13.0-cudnn9-runtime" in listed  # the torch-distributed runtime
    assert not any(i.startswith("registry.example.internal") for i in listed)
    for row in manifest["images"]:
        assert row["image"].startswith(row["repository"]) and row["used_by"]


def test_unrenderable_chart_is_reported_and_bundle_marked_partial(example_bundle):
    manifest = example_bundle["manifest"]
    kps = next(c for c in manifest["charts"] if c["name"] == "kube-prometheus-stack")
    assert kps["rendered"] is False and kps["images"] == []
    assert "missing in charts/ directory" in kps["error"]
    assert manifest["complete"] is False
    assert any(p.startswith("chart kube-prometheus-stack 88.5.3 (local ") for p in manifest["problems"])
    assert "PARTIAL: chart kube-prometheus-stack" in flat(example_bundle["stdout"])


def test_json_and_yaml_manifests_agree(example_bundle):
    with open(os.path.join(example_bundle["out"], "manifest.json")) as handle:
        assert json.load(handle) == example_bundle["manifest"]
    assert example_bundle["manifest"]["charts"][0] == {
        "name": "cert-manager", "version": "v1.21.1", "source": "local",
        "ref": os.path.join(example_bundle["mirror"], "cert-manager-v1.21.1.tgz"), "repo_url": None,
        "release": "cert-manager", "namespace": "cert-manager", "rendered": True,
        "images": ["quay.io/jetstack/cert-manager-cainjector:v1.21.1", "quay.io/jetstack/cert-manager-controller:v1.21.1",
                   "quay.io/jetstack/cert-manager-startupapicheck:v1.21.1", "quay.io/jetstack/cert-manager-webhook:v1.21.1"]}


def test_unwritable_bundle_directory_is_named(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    config = bundle_config(str(tmp_path), str(tmp_path / "mirror"))
    result = bundle(config, str(blocker / "bundle"))
    assert result.returncode != 0
    assert "airgap_bundle_dir=%s is not a writable directory" % (blocker / "bundle") in flat(result.stdout)


def test_missing_chart_source_is_named(tmp_path):
    missing = str(tmp_path / "no-such-mirror")
    result = bundle(bundle_config(str(tmp_path), missing), str(tmp_path / "bundle"))
    assert result.returncode != 0
    assert "chart source(s) not found: {0}/cert-manager-v1.21.1.tgz, {0}/local-path-provisioner-0.0.37.tgz, " \
        "{0}/gpu-operator-v26.7.0.tgz".format(missing) in flat(result.stdout)
    assert not (tmp_path / "bundle" / "manifest.yml").exists()


def test_mirror_fetches_charts_and_fails_naming_what_it_could_not_fetch(tmp_path):
    """Mirroring with cert-manager, local-path storage, the GPU Operator and training enabled: the local charts are copied; the images cannot be fetched here
    (no skopeo, or no registry reachable), so the run fails and the manifest names each one."""
    mirror = package_charts(str(tmp_path / "mirror"))
    config = bundle_config(str(tmp_path), mirror, kueue=False, monitoring=False)
    out = tmp_path / "bundle"
    result = bundle(config, str(out), "-e", "airgap_bundle_mirror=true")
    assert result.returncode != 0, result.stdout[-3000:]
    manifest = yaml.safe_load((out / "manifest.yml").read_text())
    assert (out / "charts" / "cert-manager-v1.21.1.tgz").is_file()
    assert manifest["mirrored"]["charts"] == {"cert-manager-v1.21.1": "charts/", "gpu-operator-v26.7.0": "charts/",
                                              "local-path-provisioner-0.0.37": "charts/", "kubeflow-trainer-2.3.0": "charts/"}
    assert manifest["complete"] is False
    not_fetched = [p for p in manifest["problems"] if " not fetched: " in p]
    assert {p.split(" not fetched: ")[0] for p in not_fetched} == {
        "image " + i["image"] for i in manifest["images"]} - {"image " + i for i in manifest["mirrored"]["images"]}
    assert "could not be fetched" in flat(result.stdout)
