"""Contract: the training role's Helm values exist in the upstream kubeflow-trainer 2.3.0 values file; the chart,
rendered with them (helm template, when the lab's helm is built), deploys the trainer and JobSet from the air-gap
registry and no runtime installer Job; the ClusterTrainingRuntimes the role applies are the ones Trainer v2.3.0 ships
(its chart's runtime ConfigMap, rendered), with the matrix's images; the matrix's subcharts are the chart's."""
import os
import shutil
import subprocess

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

from ansible_collections.gpufleet.platform.plugins.module_utils import config_plan, versions
from ansible_collections.gpufleet.platform.tests.unit.roles.role_contract import (
    ROOT, SHARED, load_yaml, render_role_template, role_variables, value_paths)

CHART = os.path.join(SHARED, "upstream", "charts", "kubeflow-trainer-2.3.0")
HELM = shutil.which("helm") or os.path.expanduser("~/.cache/gpufleet/lab/v1.35.4/bin/helm")
REGISTRY = "registry.example.internal:5000"
# the chart's values key that enables each runtime in its installer ConfigMap
CHART_KEYS = {"torch-distributed": "torchDistributed", "jax-distributed": "jaxDistributed",
              "deepspeed-distributed": "deepspeedDistributed"}


def _config(airgap=True, runtimes=None):
    config = load_yaml(os.path.join(ROOT, "config.example.yml"))
    config["services"]["training"]["runtimes"] = list(runtimes or versions.TRAINING_RUNTIME_IMAGES)
    if airgap:
        config["airgap"] = {"enabled": True, "chart_mirror": {"type": "local", "location": "/srv/charts"},
                            "image_registry": REGISTRY}
    return config


def _need_chart():
    if not os.path.isdir(CHART):
        pytest.skip("no %s (the upstream charts of ../shared)" % CHART)


def _need_helm():
    _need_chart()
    if not os.access(HELM, os.X_OK):
        pytest.skip("no helm (make lab-build builds it)")


def _template(tmp_path, values, *args):
    path = tmp_path / "values.yml"
    path.write_text(yaml.safe_dump(values))
    out = subprocess.run([HELM, "template", "kubeflow-trainer", CHART, "-n", "kubeflow-system", "-f", str(path)]
                         + list(args), capture_output=True, text=True, check=True)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def _has(tree, path):
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return False
        tree = tree[key]
    return True


def test_every_value_is_a_chart_value():
    """Each key is the trainer chart's, or (under jobset:) its JobSet subchart's."""
    _need_chart()
    upstream = load_yaml(os.path.join(CHART, "values.yaml"))
    jobset = load_yaml(os.path.join(CHART, "charts", "jobset", "values.yaml"))
    for path in value_paths(render_role_template("training", "values.yml.j2", _config())):
        assert _has(upstream, path) or (path[0] == "jobset" and _has(jobset, path[1:])), path


def test_subcharts_are_the_matrixs():
    _need_chart()
    deps = {d["name"]: d["version"] for d in load_yaml(os.path.join(CHART, "Chart.yaml"))["dependencies"]}
    assert deps == versions.SUBCHARTS["kubeflow-trainer"]
    assert load_yaml(os.path.join(CHART, "charts", "jobset", "Chart.yaml"))["version"] == "0.12.0"


def test_rendered_chart_runs_from_the_mirror_and_installs_no_runtime_job(tmp_path):
    _need_helm()
    docs = _template(tmp_path, render_role_template("training", "values.yml.j2", _config()))
    images = {c["image"] for d in docs if d["kind"] == "Deployment" for c in d["spec"]["template"]["spec"]["containers"]}
    assert images == {REGISTRY + "/kubeflow/trainer/trainer-controller-manager:v2.3.0",
                      REGISTRY + "/jobset/jobset:v0.12.0"}
    assert not [d for d in docs if d["kind"] == "Job"]  # the apk-add-kubectl installer is off
    assert sorted(d["metadata"]["name"] for d in docs if d["kind"] == "Deployment") == [
        "jobset-controller", "kubeflow-trainer-controller-manager"]
    no_mirror = _template(tmp_path, render_role_template("training", "values.yml.j2", _config(airgap=False)))
    assert {c["image"] for d in no_mirror if d["kind"] == "Deployment"
            for c in d["spec"]["template"]["spec"]["containers"]} == set(
        i for i in versions.CHART_IMAGES["kubeflow-trainer"])


def _upstream_runtimes(tmp_path):
    """The ClusterTrainingRuntimes the chart's installer would apply (its ConfigMap), every runtime enabled."""
    values = {"runtimes": {key: {"enabled": True} for key in CHART_KEYS.values()}}
    cms = [d for d in _template(tmp_path, values) if d["kind"] == "ConfigMap" and "runtimes" in d["metadata"]["name"]]
    assert len(cms) == 1, [d["metadata"]["name"] for d in cms]
    return {r["metadata"]["name"]: r for text in cms[0]["data"].values() for r in yaml.safe_load_all(text) if r}


def test_runtimes_are_trainers_own_with_the_matrix_images(tmp_path):
    _need_helm()
    upstream = _upstream_runtimes(tmp_path)
    objects = render_role_template("training", "runtimes.yml.j2", _config(airgap=False))
    mine = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ClusterTrainingRuntime"}
    assert sorted(mine) == sorted(versions.TRAINING_RUNTIME_IMAGES)
    for name, obj in mine.items():
        theirs = upstream[name]
        assert obj["metadata"]["labels"]["trainer.kubeflow.org/framework"] == \
            theirs["metadata"]["labels"]["trainer.kubeflow.org/framework"]
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "gpufleet"
        # upstream's images carry no registry for Docker Hub (pytorch/pytorch:...); the matrix names docker.io
        spec = yaml.safe_dump(obj["spec"]).replace("docker.io/pytorch/", "pytorch/")
        assert yaml.safe_load(spec) == theirs["spec"], name
        for job in obj["spec"]["template"]["spec"]["replicatedJobs"]:
            for c in job["template"]["spec"]["template"]["spec"]["containers"]:
                assert c["image"] == versions.TRAINING_RUNTIME_IMAGES[name]


def test_runtimes_and_team_defaults_from_the_mirror():
    objects = render_role_template("training", "runtimes.yml.j2", _config(runtimes=["torch-distributed"]))
    runtime, cm = objects
    assert runtime["metadata"]["name"] == "torch-distributed"
    image = runtime["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"][
        "containers"][0]["image"]
    assert image == REGISTRY + "/pytorch/pytorch:2.13.0-cuda13.0-cudnn9-runtime"
    assert cm["kind"] == "ConfigMap" and cm["metadata"] == {
        "name": "gpufleet-training", "namespace": "interns",
        "labels": {"app.kubernetes.io/managed-by": "gpufleet", "app.kubernetes.io/part-of": "gpufleet-platform",
                   "app.kubernetes.io/component": "training", "gpufleet.io/cluster": cm["metadata"]["labels"][
                       "gpufleet.io/cluster"]}}
    assert cm["data"] == {"default_runtime": "torch-distributed", "runtimes": "torch-distributed",
                          "local_queue": "default"}


def _role_var(config, expression):
    templar = Templar(loader=DataLoader(), variables=role_variables("training", config_plan.validate(config)))
    return templar.template(expression)


def test_verify_leaves_out_jobset_when_its_subchart_is_off():
    config = _config()
    assert _role_var(config, "{{ _training_deployments }}") == ["kubeflow-trainer-controller-manager",
                                                                "jobset-controller"]
    config["services"]["training"]["values"] = {"jobset": {"install": False}}
    assert _role_var(config, "{{ _training_deployments }}") == ["kubeflow-trainer-controller-manager"]
