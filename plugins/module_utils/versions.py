# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# Apache License 2.0 (see LICENSE)
"""The version matrix: every pinned version and upstream chart source, in one place.

Roles never hard-code a version or a chart URL: the validated plan carries, per component, the
chart reference resolved from this matrix, the service's ``version``/``chart`` overrides in
config.yml, and the air-gap mirror. docs/versions.md is generated from this table.
Facts: ../shared/research/upstream.md section 0 (release tags read 2026-08).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

KUBESPRAY_VERSION = "v2.31.0"
KUBERNETES_VERSION = "1.35.4"
KUBERNETES_MIN_VERSION = "1.30.0"
HELM_VERSION = "3.18.4"
ETCD_VERSION = "3.6.10"
ANSIBLE_CORE_RANGE = ">=2.18.0,<2.19.0"

# component -> charts it installs, in install order. Each chart: name, version, repo_url or oci_ref.
CHARTS = {
    "cert_manager": [
        {"name": "cert-manager", "version": "v1.21.1", "app_version": "v1.21.1", "oci_ref": "oci://quay.io/jetstack/charts/cert-manager",
         "repo_url": "https://charts.jetstack.io", "namespace": "cert-manager"},
    ],
    "gpu_operator": [
        {"name": "gpu-operator", "version": "v26.7.0", "app_version": "v26.7.0", "repo_url": "https://helm.ngc.nvidia.com/nvidia",
         "namespace": "gpu-operator"},
    ],
    "kueue": [
        {"name": "kueue", "version": "0.19.2", "app_version": "v0.19.2", "oci_ref": "oci://registry.k8s.io/kueue/charts/kueue",
         "namespace": "kueue-system"},
    ],
    "volcano": [
        {"name": "volcano", "version": "1.15.1", "app_version": "1.15.1", "repo_url": "https://volcano-sh.github.io/helm-charts",
         "namespace": "volcano-system"},
    ],
    "slurm": [
        {"name": "slurm-operator-crds", "version": "1.2.1", "app_version": None,
         "oci_ref": "oci://ghcr.io/slinkyproject/charts/slurm-operator-crds", "namespace": "slinky"},
        {"name": "slurm-operator", "version": "1.2.1", "app_version": "1.2.1",
         "oci_ref": "oci://ghcr.io/slinkyproject/charts/slurm-operator", "namespace": "slinky"},
        {"name": "slurm", "version": "1.2.1", "app_version": "26.05", "main": True, "oci_ref": "oci://ghcr.io/slinkyproject/charts/slurm",
         "namespace": "slurm"},
    ],
    "kserve": [
        {"name": "kserve-crd", "version": "v0.20.0", "app_version": "v0.20.0", "oci_ref": "oci://ghcr.io/kserve/charts/kserve-crd",
         "namespace": "kserve"},
        # LLMInferenceService stack, installed only with services.kserve.llmisvc (LLMISVC_CHARTS); upstream's
        # order: the CRD charts, then the resource charts, then kserve-runtime-configs (its llmisvc presets).
        {"name": "kserve-llmisvc-crd", "version": "v0.20.0", "app_version": "v0.20.0", "oci_ref": "oci://ghcr.io/kserve/charts/kserve-llmisvc-crd",
         "namespace": "kserve"},
        {"name": "kserve-resources", "version": "v0.20.0", "app_version": "v0.20.0", "main": True, "oci_ref": "oci://ghcr.io/kserve/charts/kserve-resources",
         "namespace": "kserve"},
        {"name": "kserve-llmisvc-resources", "version": "v0.20.0", "app_version": "v0.20.0",
         "oci_ref": "oci://ghcr.io/kserve/charts/kserve-llmisvc-resources", "namespace": "kserve"},
        {"name": "kserve-runtime-configs", "version": "v0.20.0", "app_version": "v0.20.0",
         "oci_ref": "oci://ghcr.io/kserve/charts/kserve-runtime-configs", "namespace": "kserve"},
    ],
    # Kubeflow Trainer v2 (TrainJob, ClusterTrainingRuntime); the chart carries JobSet 0.12.0 (jobset.install) and
    # LWS 0.8.0 (only with dataCache.enabled, which the training role leaves off) as subcharts.
    "training": [
        {"name": "kubeflow-trainer", "version": "2.3.0", "app_version": None,  # no appVersion: images are v<version>
         "oci_ref": "oci://ghcr.io/kubeflow/charts/kubeflow-trainer", "namespace": "kubeflow-system"},
    ],
    "monitoring": [
        {"name": "kube-prometheus-stack", "version": "88.5.3", "app_version": "v0.93.1",
         "oci_ref": "oci://ghcr.io/prometheus-community/charts/kube-prometheus-stack",
         "repo_url": "https://prometheus-community.github.io/helm-charts", "namespace": "monitoring"},
    ],
}

# The default StorageClass the collection installs (storage.backend in config.yml; plugins/module_utils/storage.py
# resolves it). Not a service: one chart per backend, under the component "storage" in docs and checks (all_charts).
# local-path-provisioner publishes no Helm repository or OCI chart: its chart is the folder
# deploy/chart/local-path-provisioner of the git tag v0.0.37, so it is installed from storage.chart (a local copy or
# the site's own repository) or the air-gap mirror.
STORAGE_CHARTS = {
    "local-path": {"name": "local-path-provisioner", "version": "0.0.37", "app_version": "v0.0.37",
                   "git": "https://github.com/rancher/local-path-provisioner (deploy/chart/local-path-provisioner)",
                   "namespace": "local-path-storage"},
    "nfs": {"name": "csi-driver-nfs", "version": "4.13.4", "app_version": "4.13.4",
            "repo_url": "https://raw.githubusercontent.com/kubernetes-csi/csi-driver-nfs/master/charts",
            "namespace": "kube-system"},
}


def all_charts():
    """component -> charts, the services' CHARTS and the storage backends' (component "storage")."""
    out = dict(CHARTS)
    out["storage"] = list(STORAGE_CHARTS.values())
    return out


# KServe charts installed only when services.kserve.llmisvc is true (LLMInferenceService).
LLMISVC_CHARTS = ("kserve-llmisvc-crd", "kserve-llmisvc-resources")

# The subcharts a chart brings (name -> version), as its Chart.yaml dependencies pin them (docs/versions.md).
SUBCHARTS = {
    "kubeflow-trainer": {"jobset": "0.12.0", "lws": "0.8.0"},
}

# The ClusterTrainingRuntimes the training role applies (services.training.runtimes): runtime -> image of its
# trainer container, the image Kubeflow Trainer v2.3.0's own manifests give it (charts/kubeflow-trainer/files/runtimes
# at the tag; the chart's installer Job, which applies them with `apk add kubectl`, is not used).
TRAINING_RUNTIME_IMAGES = {
    "torch-distributed": "docker.io/pytorch/pytorch:2.13.0-cuda13.0-cudnn9-runtime",
    "jax-distributed": "nvcr.io/nvidia/jax:25.10-py3",
    "deepspeed-distributed": "ghcr.io/kubeflow/trainer/deepspeed-runtime:v2.3.0",
}

# Images that are not set through a chart default (pinned here too).
IMAGES = {
    # KServe v0.20.0's kserve-vllmserver runtime and huggingfaceserver are built against vLLM 0.24 (issue 20); the
    # chart itself defaults to the floating tag `latest`, which an air-gapped site cannot pin.
    "vllm": "docker.io/vllm/vllm-openai:v0.24.0",
    # playbooks/verify.yml's GPU smoke Job (runs `nvidia-smi -L`; the driver comes from the node)
    "gpu_smoke": "nvcr.io/nvidia/cuda:12.8.1-base-ubuntu24.04",
    # The mlflow role's tracking server (services.mlflow.image overrides it): the image the community chart
    # mlflow-1.11.5 renders (appVersion 3.15.1, the release the registry test starts from PyPI,
    # tests/integration/mlflow/requirements.txt). It carries what the role needs: psycopg2 (PostgreSQL backend
    # store), boto3 (S3 artifacts) and Flask-WTF (MLflow's basic-auth app). MLflow's official images do not: the plain
    # one has none of them, and the -full one is mlflow[extras,db,gateway,genai], without the auth extra, so the
    # basic-auth app refuses to start on it (docker/Dockerfile.full upstream).
    "mlflow": "docker.io/burakince/mlflow:3.15.1",
}

# Images each chart renders with its default values (checked by `make versions-check`, tools/versions_check.py;
# `tools/versions_check.py --print-images` prints them after a chart bump). kube-prometheus-stack is absent: the
# chart in ../shared lacks its subcharts, so it cannot be rendered there.
CHART_IMAGES = {
    "cert-manager": [
        "quay.io/jetstack/cert-manager-cainjector:v1.21.1",
        "quay.io/jetstack/cert-manager-controller:v1.21.1",
        "quay.io/jetstack/cert-manager-startupapicheck:v1.21.1",
        "quay.io/jetstack/cert-manager-webhook:v1.21.1",
    ],
    "gpu-operator": [
        "nvcr.io/nvidia/cloud-native/dcgm:4.6.0-1-ubuntu24.04",
        "nvcr.io/nvidia/cloud-native/gdrdrv:v2.6",
        "nvcr.io/nvidia/cloud-native/k8s-cc-manager:v0.4.3",
        "nvcr.io/nvidia/cloud-native/k8s-driver-manager:v0.12.0",
        "nvcr.io/nvidia/cloud-native/k8s-mig-manager:v0.15.0",
        "nvcr.io/nvidia/cloud-native/nvidia-fs:2.29.4",
        "nvcr.io/nvidia/cloud-native/nvidia-sandbox-device-plugin:v0.0.5",
        "nvcr.io/nvidia/cloud-native/vgpu-device-manager:v0.5.0",
        "nvcr.io/nvidia/driver:595.91.07",
        "nvcr.io/nvidia/gpu-operator:v26.7.0",
        "nvcr.io/nvidia/k8s-device-plugin:v0.20.0",
        "nvcr.io/nvidia/k8s/container-toolkit:v1.20.0",
        "nvcr.io/nvidia/k8s/dcgm-exporter:4.6.0-4.8.3-distroless",
        "nvcr.io/nvidia/kubevirt-gpu-device-plugin:v1.6.0",
        "registry.k8s.io/nfd/node-feature-discovery:v0.19.0",
        "vgpu-manager",
    ],
    "kueue": [
        "us-central1-docker.pkg.dev/k8s-staging-images/kueue/kueue:release-0.19",
    ],
    "volcano": [
        "docker.io/volcanosh/vc-controller-manager:v1.15.1",
        "docker.io/volcanosh/vc-scheduler:v1.15.1",
        "docker.io/volcanosh/vc-webhook-manager:v1.15.1",
    ],
    "slurm-operator-crds": [],
    "slurm-operator": [
        "ghcr.io/slinkyproject/slurm-operator-webhook:1.2.1",
        "ghcr.io/slinkyproject/slurm-operator:1.2.1",
    ],
    "slurm": [
        "docker.io/library/alpine:latest",
        "ghcr.io/slinkyproject/slurmctld:26.05-ubuntu26.04",
        "ghcr.io/slinkyproject/slurmrestd:26.05-ubuntu26.04",
    ],
    "kserve-crd": [],
    "kserve-llmisvc-crd": [],
    "kserve-resources": [
        "kserve/agent:v0.20.0",
        "kserve/art-explainer",
        "kserve/kserve-controller:v0.20.0",
        "kserve/router:v0.20.0",
        "kserve/storage-initializer:v0.20.0",
        "quay.io/brancz/kube-rbac-proxy:v0.18.0",
    ],
    "kserve-llmisvc-resources": [
        "kserve/agent:v0.20.0",
        "kserve/art-explainer",
        "kserve/llmisvc-controller:v0.20.0",
        "kserve/router:v0.20.0",
        "kserve/storage-initializer:v0.20.0",
    ],
    "kserve-runtime-configs": [],
    "kubeflow-trainer": [
        "ghcr.io/kubeflow/trainer/trainer-controller-manager:v2.3.0",
        "registry.k8s.io/jobset/jobset:v0.12.0",
    ],
    # its helper pods' image (docker.io/library/busybox:latest) is a flag (--helper-image) and a ConfigMap, not an
    # image field; the storage role points both at the air-gap registry with the provisioner image.
    "local-path-provisioner": [
        "docker.io/rancher/local-path-provisioner:v0.0.37",
    ],
    "csi-driver-nfs": [
        "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.17.0",
        "registry.k8s.io/sig-storage/csi-provisioner:v6.3.0",
        "registry.k8s.io/sig-storage/csi-resizer:v2.2.0",
        "registry.k8s.io/sig-storage/csi-snapshotter:v8.6.0",
        "registry.k8s.io/sig-storage/livenessprobe:v2.19.0",
        "registry.k8s.io/sig-storage/nfsplugin:v4.13.4",
    ],
}


def _source_of(chart):
    """Default source kind for a chart entry: OCI when upstream publishes one, else the Helm repo."""
    return "oci" if chart.get("oci_ref") else "repo"


def resolve_storage_chart(backend, storage=None, airgap=None):
    """The chart of a storage backend resolved like a service's main chart (``storage.chart``/``version``
    overrides, then the air-gap mirror, then the matrix); None when the matrix has no published source for it
    and neither override nor mirror gives one (local-path: the caller reports it)."""
    storage = storage or {}
    chart = STORAGE_CHARTS[backend]
    if not (storage.get("chart") or (airgap or {}).get("enabled") and (airgap or {}).get("chart_mirror")
            or chart.get("repo_url") or chart.get("oci_ref")):
        return None
    version = storage.get("version") or chart["version"]
    entry = dict(chart, version=version)
    service = {"chart": storage.get("chart"), "namespace": storage.get("namespace")}
    return resolve_chart("storage", entry, service, airgap, main=True)


def resolve_chart(component, chart, service=None, airgap=None, main=None):
    """Resolve one chart of a component to {name, version, source, ref, repo_url, namespace}.

    ``ref`` is what ``kubernetes.core.helm``'s ``chart_ref`` takes: an ``oci://`` reference, a
    local path, or the chart name (with ``repo_url`` given separately as ``chart_repo_url``).
    Precedence: the service's own ``chart``/``version`` in config.yml, then the air-gap mirror,
    then the matrix. A service-level ``chart`` override applies to its first (main) chart only
    when the component installs several charts, unless it is a local directory of charts. ``main`` says
    whether ``chart`` is that main chart (default: looked up in CHARTS).
    """
    service = service or {}
    airgap = airgap or {}
    main = (chart is _main_chart(component)) if main is None else main
    version = service.get("version") if main else None
    version = version or chart["version"]
    override = service.get("chart") or {}
    resolved = {
        "name": chart["name"],
        "version": version,
        "namespace": service.get("namespace") or chart["namespace"],
        "repo_url": None,
    }
    if override and main:
        source = override.get("source") or ("local" if override.get("path") else
                                            "oci" if override.get("oci_ref") else "repo")
        if source == "local":
            resolved.update(source="local", ref=os.path.expanduser(override["path"]))
        elif source == "oci":
            resolved.update(source="oci", ref=override.get("oci_ref") or chart.get("oci_ref"))
        else:
            resolved.update(source="repo", ref=override.get("name") or chart["name"],
                            repo_url=override.get("repo_url") or chart.get("repo_url"))
        return resolved
    mirror = airgap.get("chart_mirror") if airgap.get("enabled") else None
    if mirror:
        location = mirror["location"].rstrip("/")
        if mirror["type"] == "local":
            location = os.path.expanduser(location)
            resolved.update(source="local", ref="%s/%s-%s.tgz" % (location, chart["name"], version))
        elif mirror["type"] == "oci":
            resolved.update(source="oci", ref="%s/%s" % (location, chart["name"]))
        else:
            resolved.update(source="repo", ref=chart["name"], repo_url=location)
        return resolved
    source = _source_of(chart)
    if source == "oci":
        resolved.update(source="oci", ref=chart["oci_ref"])
    else:
        resolved.update(source="repo", ref=chart["name"], repo_url=chart["repo_url"])
    return resolved


def _main_chart(component):
    """The chart a service-level ``version``/``chart`` override applies to."""
    charts = CHARTS[component]
    return next((c for c in charts if c.get("main")), charts[0])


def resolve_component(component, service=None, airgap=None):
    """All charts of a component, resolved."""
    return [resolve_chart(component, chart, service, airgap) for chart in CHARTS[component]]
