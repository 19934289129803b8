"""Every metric a dashboard names is defined by a pinned source (tests/unit/monitoring/metric_sources.yml) or
recorded by the collection's rules; the catalog's names are checked against those sources where they are on this
machine (../shared/upstream, the Go module cache or proxy)."""
import glob
import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

import render
from promql_names import metric_names
from test_dashboards import expressions, substitute

from ansible_collections.gpufleet.platform.plugins.module_utils import versions

CATALOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "metric_sources.yml")
SHARED = os.environ.get("GPUFLEET_SHARED") or os.path.join(os.path.dirname(render.ROOT), "shared")
FILES = sorted(glob.glob(os.path.join(render.DASHBOARDS, "*.json")))
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def catalog():
    with open(CATALOG) as fh:
        return yaml.safe_load(fh)["sources"]


def catalog_names():
    """{metric name a dashboard may select: source}; a histogram family gives its _bucket, _sum and _count."""
    out = {}
    for source, spec in catalog().items():
        for kind, names in spec["metrics"].items():
            for name in names:
                for series in ([name + s for s in HISTOGRAM_SUFFIXES] if kind == "histogram" else [name]):
                    assert series not in out, "%s listed twice" % series
                    out[series] = source
    return out


def recorded_names():
    out = set()
    for text in (render.render_rules(), render.render_usage_rules()):
        out.update(r["record"] for g in yaml.safe_load(text)["groups"] for r in g["rules"] if "record" in r)
    return out


def dashboard_metrics(files=FILES):
    """{(dashboard file, metric): [where]} for every metric every dashboard expression selects."""
    out = {}
    for path in files:
        with open(path) as fh:
            dashboard = json.load(fh)
        for what, expr in expressions(dashboard):
            for name in metric_names(substitute(expr)):
                out.setdefault((os.path.basename(path), name), []).append(what)
    return out


@pytest.mark.parametrize("expr, names", [
    ('histogram_quantile(0.9, sum by (cluster_queue, le) (rate(kueue_admission_wait_time_seconds_bucket'
     '{cluster_queue=~".*"}[5m])))', {"kueue_admission_wait_time_seconds_bucket"}),
    ('max by (pod) ({__name__=~"vllm:kv_cache_usage_perc|vllm:gpu_cache_usage_perc", model_name=~".*"})',
     {"vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"}),
    ('sum(a{x="b c"} * on (namespace, pod) group_left (pool) (b == 1)) or vector(0)', {"a", "b"}),
    ('label_replace(max by (node) (kube_node_labels), "pool", "$1", "label_x", "(.*)") / 1000', {"kube_node_labels"}),
    ("sum_over_time(ns:gpufleet_gpu_hours:sum_1h[30d:1h] offset 1d) and bool up", {"ns:gpufleet_gpu_hours:sum_1h",
                                                                                   "up"}),
])
def test_metric_names_of_an_expression(expr, names):
    assert metric_names(expr) == names


def unknown_metrics(files=FILES):
    known, recorded = catalog_names(), recorded_names()
    return sorted("%s: %s (%s)" % (f, name, "; ".join(where)) for (f, name), where in dashboard_metrics(files).items()
                  if name not in known and name not in recorded)


def test_every_dashboard_names_only_known_metrics():
    unknown = unknown_metrics()
    assert not unknown, "metrics defined by no pinned source (tests/unit/monitoring/metric_sources.yml) and " \
        "recorded by no rule:\n" + "\n".join(unknown)


def test_every_catalog_metric_is_used():
    """The catalog lists what the dashboards use, not a source's whole list."""
    used = {key[1] for key in dashboard_metrics()}
    families = {}
    for series, source in catalog_names().items():
        family = re.sub(r"_(bucket|sum|count)$", "", series) if series.endswith(HISTOGRAM_SUFFIXES) else series
        families.setdefault((source, family), set()).add(series)
    unused = sorted("%s: %s" % key for key, series in families.items() if not series & used)
    assert not unused, unused


def test_the_new_dashboards_read_their_sources():
    names = dashboard_metrics()
    by_file = {}
    for (f, name) in names:
        by_file.setdefault(f, set()).add(name)
    sources = catalog_names()
    assert {sources.get(n) for n in by_file["slurm.json"]} == {"slurm"}
    assert {sources.get(n) for n in by_file["queues.json"]} == {"kueue", "volcano"}


def test_catalog_versions_are_the_pins():
    spec = catalog()
    assert spec["kueue"]["verify"]["go_module"] == "sigs.k8s.io/kueue@" + versions.CHARTS["kueue"][0]["app_version"]
    assert spec["volcano"]["verify"]["shared"].startswith("upstream/src/volcano-v%s/"
                                                          % versions.CHARTS["volcano"][0]["app_version"])
    assert spec["dcgm-exporter"]["verify"]["shared"].startswith("upstream/charts/dcgm-exporter-")


def _go_module_dir(module):
    path, version = module.split("@")
    cache = os.environ.get("GOMODCACHE") or os.path.join(os.path.expanduser("~"), "go", "pkg", "mod")
    if shutil.which("go"):
        out = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=False)
        cache = out.stdout.strip() or cache
    directory = os.path.join(cache, re.sub(r"[A-Z]", lambda m: "!" + m.group(0).lower(), path) + "@" + version)
    if not os.path.isdir(directory) and shutil.which("go"):
        out = subprocess.run(["go", "mod", "download", "-json", module], capture_output=True, text=True, check=False,
                             timeout=300, env=dict(os.environ, GOFLAGS="-mod=mod"))
        if out.returncode == 0:
            directory = json.loads(out.stdout).get("Dir") or directory
    return directory


def _source_text(verify):
    if "shared" in verify:
        root = os.path.join(SHARED, verify["shared"])
    else:
        root = os.path.join(_go_module_dir(verify["go_module"]), verify["path"])
    if not os.path.exists(root):
        pytest.skip("pinned source not on this machine: %s" % root)
    files = [root] if os.path.isfile(root) else sorted(glob.glob(os.path.join(root, "**", "*.go"), recursive=True))
    text = []
    for name in files:
        with open(name, errors="replace") as fh:
            text.append(fh.read())
    return "\n".join(text)


@pytest.mark.parametrize("source", [s for s, spec in sorted(catalog().items()) if "verify" in spec])
def test_catalog_names_are_defined_by_the_pinned_source(source):
    spec = catalog()[source]
    verify = spec["verify"]
    text = _source_text(verify)
    missing = []
    for names in spec["metrics"].values():
        for name in names:
            assert name.startswith(verify.get("strip_prefix", "")), name
            needle = re.escape(name[len(verify.get("strip_prefix", "")):])
            if not re.search(verify["pattern"].replace("{name}", needle), text):
                missing.append(name)
    assert not missing, "%s: not defined by %s: %s" % (source, verify, missing)


def test_a_made_up_metric_is_caught(tmp_path):
    """The check is real: a panel or variable naming a metric no source defines fails it."""
    with open(os.path.join(render.DASHBOARDS, "slurm.json")) as fh:
        d = json.load(fh)
    d["panels"][0]["targets"][0]["expr"] = "sum(slurm_jobs_waiting)"
    d["templating"]["list"][1]["query"]["query"] = "label_values(kueue_pending_workload, cluster_queue)"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(d))
    found = [u.split(" (")[0] for u in unknown_metrics([str(path)])]
    assert found == ["bad.json: kueue_pending_workload", "bad.json: slurm_jobs_waiting"]
