#!/usr/bin/env python3
# Copyright: gpufleet.platform contributors
# Apache License 2.0 (see LICENSE)
"""make versions-check: the version matrix (plugins/module_utils/versions.py) against the upstream charts.

For every chart of versions.CHARTS it reads <charts>/<name>-<version>/Chart.yaml (name, version,
appVersion) and renders the chart with its default values (helm template), then compares the images it
renders with versions.CHART_IMAGES; it also checks that the vLLM image of versions.IMAGES is the image
KServe's kserve-vllmserver runtime uses. Any drift is named and the exit status is 1. A chart that cannot be
rendered here (kube-prometheus-stack in ../shared lacks its subcharts) is reported, not failed.
Skips (exit 0) with a message when the charts directory is absent.

  tools/versions_check.py [--charts DIR] [--helm PATH] [--print-images]
"""

import argparse
import os
import shutil
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".build", "collections"))

from ansible_collections.gpufleet.platform.plugins.module_utils import chart_images, versions  # noqa: E402

DEFAULT_CHARTS = os.path.join(os.environ.get("GPUFLEET_SHARED") or os.path.join(ROOT, "..", "shared"), "upstream", "charts")
LAB_HELM = os.path.join(os.environ.get("GPUFLEET_LAB_CACHE") or os.path.expanduser("~/.cache/gpufleet/lab"),
                        "v" + versions.KUBERNETES_VERSION, "bin", "helm")


def find_helm(explicit=None):
    for candidate in (explicit, os.environ.get("HELM"), LAB_HELM, shutil.which("helm")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def render(helm, chart_dir, namespace):
    """(images, None) or (None, reason) for a chart rendered with its default values."""
    proc = subprocess.run([helm, "template", "versions-check", chart_dir, "--namespace", namespace],
                          capture_output=True, text=True, check=False)
    if proc.returncode:
        return None, (proc.stderr.strip().splitlines() or ["helm template exited %d" % proc.returncode])[-1]
    return chart_images.images_in_documents(list(yaml.safe_load_all(proc.stdout))), None


def _repository(image):
    repo = chart_images.split_image(image)["repository"]
    return repo[len("docker.io/"):] if repo.startswith("docker.io/") else repo


def check(charts_dir, helm):
    drift, notes, rendered = [], [], {}
    for component, charts in versions.all_charts().items():
        for chart in charts:
            label = "%s chart %s %s" % (component, chart["name"], chart["version"])
            chart_dir = os.path.join(charts_dir, "%s-%s" % (chart["name"], chart["version"]))
            meta_file = os.path.join(chart_dir, "Chart.yaml")
            if not os.path.isfile(meta_file):
                drift.append("%s: no %s (the matrix pins a version that is not in the charts directory)" % (label, meta_file))
                continue
            with open(meta_file) as handle:
                meta = yaml.safe_load(handle)
            for key, want in (("name", chart["name"]), ("version", chart["version"]), ("appVersion", chart.get("app_version"))):
                if str(meta.get(key)) != str(want):
                    drift.append("%s: Chart.yaml %s is %r, the matrix says %r" % (label, key, meta.get(key), want))
            if not helm:
                continue
            images, reason = render(helm, chart_dir, chart["namespace"])
            if images is None:
                notes.append("%s: not renderable here, images not compared (%s)" % (label, reason))
                continue
            rendered[chart["name"]] = images
            pinned = versions.CHART_IMAGES.get(chart["name"])
            if pinned is None:
                drift.append("%s: no versions.CHART_IMAGES entry; it renders %s" % (label, images))
                continue
            for image in sorted(set(images) - set(pinned)):
                drift.append("%s: renders image %s, not in versions.CHART_IMAGES" % (label, image))
            for image in sorted(set(pinned) - set(images)):
                drift.append("%s: versions.CHART_IMAGES lists %s, the chart no longer renders it" % (label, image))
    runtime_values = os.path.join(charts_dir, "kserve-runtime-configs-%s" % versions.CHARTS["kserve"][0]["version"], "values.yaml")
    if os.path.isfile(runtime_values):
        with open(runtime_values) as handle:
            vllm = ((yaml.safe_load(handle) or {}).get("kserve", {}).get("servingruntime", {}).get("vllmserver") or {})
        if vllm.get("image") and _repository(versions.IMAGES["vllm"]) != _repository(vllm["image"]):
            drift.append("IMAGES['vllm'] is %s; KServe's kserve-vllmserver runtime uses %s"
                         % (versions.IMAGES["vllm"], vllm["image"]))
    return drift, notes, rendered


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charts", default=DEFAULT_CHARTS)
    parser.add_argument("--helm")
    parser.add_argument("--print-images", action="store_true", help="print CHART_IMAGES as rendered now (to update the matrix)")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.charts):
        print("versions-check: SKIPPED: no upstream charts at %s (set GPUFLEET_SHARED to the shared/ folder)" % args.charts)
        return 0
    helm = find_helm(args.helm)
    if not helm:
        print("versions-check: helm not found (tried --helm, $HELM, %s, PATH; `make lab-build` builds it): "
              "chart metadata compared, images NOT compared" % LAB_HELM)
    drift, notes, rendered = check(args.charts, helm)
    if args.print_images:
        for name, images in rendered.items():
            print("    %r: %r," % (name, images))
        return 0
    for note in notes:
        print("versions-check: NOTE: " + note)
    for item in drift:
        print("versions-check: DRIFT: " + item, file=sys.stderr)
    if drift:
        print("versions-check: %d drift(s) between plugins/module_utils/versions.py and %s" % (len(drift), args.charts), file=sys.stderr)
        return 1
    print("versions-check: OK: %d charts match the matrix (%s)" % (sum(len(c) for c in versions.all_charts().values()), args.charts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
