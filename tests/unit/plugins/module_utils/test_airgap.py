"""module_utils/airgap.py: the air-gap bundle manifest from rendered charts and the plan."""
from ansible_collections.gpufleet.platform.plugins.module_utils import airgap, versions

CHART = {"name": "kueue", "version": "0.19.2", "source": "local", "ref": "/m/kueue-0.19.2.tgz", "repo_url": None,
         "namespace": "kueue-system"}
DEPLOYMENT = """---
# Source: kueue/templates/manager.yaml
kind: Deployment
spec: {template: {spec: {containers: [{image: "registry.k8s.io/kueue/kueue:v0.19.2"}]}}}
"""


def plan(**services):
    base = {name: {"enabled": False} for name, _tasks_from in airgap.RELEASE_TASKS}
    base.update(services)
    return {"cluster": {"name": "c"}, "services": base, "airgap": {"enabled": False}}


def test_release_tasks_only_enabled_components_in_install_order():
    p = plan(kueue={"enabled": True, "charts": [CHART]}, cert_manager={"enabled": True, "install": False},
             monitoring={"enabled": True})
    assert airgap.release_tasks(p) == [
        {"component": "kueue", "tasks_from": "install.yml", "charts": [CHART]},
        {"component": "monitoring", "tasks_from": "release.yml", "charts": []},
    ]


def test_manifest_complete_lists_chart_and_role_images():
    manifest = airgap.build_manifest([{"chart": CHART, "release": "kueue", "manifests": DEPLOYMENT}], plan())
    assert manifest["complete"] is True and manifest["problems"] == []
    assert manifest["charts"][0]["images"] == ["registry.k8s.io/kueue/kueue:v0.19.2"]
    assert [(i["image"], i["used_by"]) for i in manifest["images"]] == [
        (versions.IMAGES["gpu_smoke"], ["verify (GPU smoke Job)"]),
        ("registry.k8s.io/kueue/kueue:v0.19.2", ["chart kueue"]),
    ]
    assert "mirrored" not in manifest


def test_vllm_image_with_kserve():
    p = plan(kserve={"enabled": True, "vllm_image": versions.IMAGES["vllm"]})
    images = [i["image"] for i in airgap.build_manifest([], p)["images"]]
    assert versions.IMAGES["vllm"] in images


def test_unrenderable_chart_and_untagged_image_make_it_partial():
    rendered = [{"chart": CHART, "release": "kueue", "error": "missing in charts/ directory: grafana"},
                {"chart": dict(CHART, name="x"), "release": "x", "manifests": "kind: Pod\nspec: {image: busybox}\n"}]
    manifest = airgap.build_manifest(rendered, plan())
    assert manifest["complete"] is False
    assert manifest["problems"] == [
        "chart kueue 0.19.2 (local /m/kueue-0.19.2.tgz) could not be rendered, its images are not listed: "
        "missing in charts/ directory: grafana",
    ]
    assert manifest["warnings"] == ["image busybox has no tag or digest (used by chart x): the cluster pulls 'latest'"]
    assert manifest["charts"][0]["rendered"] is False and manifest["charts"][0]["images"] == []


def test_fetch_failures_are_problems():
    fetched = {"charts": {"kueue-0.19.2": "charts/"}, "images": {}, "failed": ["image a:1 not fetched: refused"]}
    manifest = airgap.build_manifest([], plan(), fetched)
    assert manifest["mirrored"] == {"charts": {"kueue-0.19.2": "charts/"}, "images": {}}
    assert manifest["complete"] is False and manifest["problems"] == ["image a:1 not fetched: refused"]


def test_storage_chart_when_the_platform_installs_it():
    storage_chart = dict(CHART, name="local-path-provisioner", version="0.0.37", namespace="local-path-storage")
    p = plan(kueue={"enabled": True, "charts": [CHART]})
    p["storage"] = {"enabled": True, "install": True, "chart": storage_chart}
    assert [(t["component"], t["charts"]) for t in airgap.release_tasks(p)] == [
        ("storage", [storage_chart]), ("kueue", [CHART])]
    p["storage"] = {"enabled": True, "install": False, "existing": "site-ssd"}  # adopted class: nothing to render
    assert [t["component"] for t in airgap.release_tasks(p)] == ["kueue"]


def test_mlflow_image_with_mlflow():
    p = plan(mlflow={"enabled": True, "image": versions.IMAGES["mlflow"]})
    manifest = airgap.build_manifest([], p)
    assert (versions.IMAGES["mlflow"], ["mlflow (tracking server)"]) in [(i["image"], i["used_by"]) for i in manifest["images"]]


def test_training_runtime_images_with_training():
    p = plan(training={"enabled": True, "runtime_images": {"torch-distributed": versions.TRAINING_RUNTIME_IMAGES[
        "torch-distributed"]}})
    rows = [(i["image"], i["used_by"]) for i in airgap.build_manifest([], p)["images"]]
    assert (versions.TRAINING_RUNTIME_IMAGES["torch-distributed"],
            ["training (ClusterTrainingRuntime torch-distributed)"]) in rows
