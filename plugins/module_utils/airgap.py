# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# Apache License 2.0 (see LICENSE)
"""The air-gap bundle manifest (playbooks/airgap_bundle.yml): pure functions over plain data.

Input: what role helm_release recorded in render-only mode (per chart: the resolved chart, the release, the
``helm template`` output or the error) and the validated plan. Output: the manifest the playbook writes as
YAML and JSON: every chart (name, version, source) and every image (repository, tag, digest, who uses it),
with ``complete: false`` and the problems listed when anything could not be rendered or fetched (an image
without a tag or digest is a warning: charts reference such defaults for optional components).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.gpufleet.platform.plugins.module_utils import chart_images, verify, versions

MANIFEST_VERSION = 1
# Components whose releases the bundle renders, in install order (playbooks/site.yml), with the role task
# file that holds the role's release(s).
RELEASE_TASKS = (
    ("cert_manager", "install.yml"),
    ("storage", "install.yml"),
    ("gpu_operator", "release.yml"),
    ("kueue", "install.yml"),
    ("volcano", "install.yml"),
    ("slurm", "release.yml"),
    ("training", "install.yml"),
    ("kserve", "install.yml"),
    ("monitoring", "release.yml"),
)


def release_tasks(plan):
    """[{component, tasks_from, charts}] of the enabled components (cert-manager: when the platform installs it)."""
    services = plan.get("services") or {}
    out = []
    for component, tasks_from in RELEASE_TASKS:
        if component == "storage":  # top-level storage: (plan.storage), one chart when the platform installs it
            storage = plan.get("storage") or {}
            if storage.get("install"):
                out.append({"component": component, "tasks_from": tasks_from, "charts": [storage["chart"]]})
            continue
        service = services.get(component) or {}
        if service.get("enabled") and service.get("install", True):
            out.append({"component": component, "tasks_from": tasks_from, "charts": service.get("charts") or []})
    return out


def role_images(plan):
    """Images the roles put into objects they create (not through a chart): [{image, used_by}]."""
    services = plan.get("services") or {}
    out = [{"image": verify.smoke_image(plan), "used_by": "verify (GPU smoke Job)"}]
    if (services.get("kserve") or {}).get("enabled"):
        image = (services.get("kserve") or {}).get("vllm_image") or versions.IMAGES["vllm"]
        out.append({"image": image, "used_by": "kserve (vLLM runtime)"})
    training = services.get("training") or {}
    if training.get("enabled"):
        for name, image in sorted((training.get("runtime_images") or {}).items()):
            out.append({"image": image, "used_by": "training (ClusterTrainingRuntime %s)" % name})
    mlflow = services.get("mlflow") or {}
    if mlflow.get("enabled"):
        out.append({"image": mlflow.get("image") or versions.IMAGES["mlflow"], "used_by": "mlflow (tracking server)"})
    return out


def _parse(text):
    import yaml  # PyYAML ships with ansible-core; imported here so that the module stays importable without it

    return [d for d in yaml.safe_load_all(text or "") if isinstance(d, dict)]


def build_manifest(rendered, plan, fetched=None):
    """The bundle manifest. ``fetched``: {'charts': {name: path}, 'images': {image: path}, 'failed': [msg]}
    after a mirror run, None when not mirroring."""
    charts, images, problems, warnings = [], {}, [], []
    for entry in rendered or []:
        chart = entry.get("chart") or {}
        row = {
            "name": chart.get("name"),
            "version": chart.get("version"),
            "source": chart.get("source"),
            "ref": chart.get("ref"),
            "repo_url": chart.get("repo_url"),
            "release": entry.get("release"),
            "namespace": chart.get("namespace"),
            "rendered": "error" not in entry,
        }
        if "error" in entry:
            row["error"] = entry["error"]
            problems.append("chart %s %s (%s %s) could not be rendered, its images are not listed: %s"
                            % (row["name"], row["version"], row["source"], row["ref"], entry["error"]))
            row["images"] = []
        else:
            row["images"] = chart_images.images_in_documents(_parse(entry.get("manifests")))
            for image in row["images"]:
                images.setdefault(image, set()).add("chart %s" % row["name"])
        charts.append(row)
    for extra in role_images(plan):
        images.setdefault(extra["image"], set()).add(extra["used_by"])
    image_rows = []
    for image in sorted(images):
        row = dict(chart_images.split_image(image), image=image, used_by=sorted(images[image]))
        if not row["tag"] and not row["digest"]:
            warnings.append("image %s has no tag or digest (used by %s): the cluster pulls 'latest'"
                            % (image, ", ".join(row["used_by"])))
        image_rows.append(row)
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "cluster": (plan.get("cluster") or {}).get("name"),
        "charts": charts,
        "images": image_rows,
    }
    if fetched is not None:
        manifest["mirrored"] = {"charts": fetched.get("charts") or {}, "images": fetched.get("images") or {}}
        problems += list(fetched.get("failed") or [])
    manifest["complete"] = not problems
    manifest["problems"] = problems
    manifest["warnings"] = warnings
    return manifest
