"""playbooks/usage_report.yml against a real Prometheus 3.14.0 (built from its Go module: `make prometheus`).

The data: series shaped like kube-state-metrics' and the DCGM exporter's (per-pod attribution:
exported_namespace/exported_pod) at 1-minute samples, written as OpenMetrics and backfilled with
`promtool tsdb create-blocks-from openmetrics`. The collection's GPU usage recording rules (rendered by the role's
template) are then evaluated over that history by Prometheus itself, `promtool tsdb create-blocks-from rules`
against the running server, one dependency level at a time (promtool cannot backfill rules that read other rules in
the same run), restarting Prometheus on the new blocks after each level. The report's per-team GPU-hours must equal
the figures computed here from the pod intervals alone.

Two properties of the data keep the expected figures exact:
- backfilled blocks carry no staleness markers (a live Prometheus writes one when a series or a rule's output
  disappears), so a series that ended inside the window would linger for the 5-minute lookback: nothing ends inside
  the window except through values, as kube-state-metrics reports a finished pod (phase Running 0, Succeeded 1);
  each (namespace, pool, resource) keeps one running pod, and DCGM series run through the window;
- the rules see each minute's GPUs up to two minutes late (the group's evaluation offset, then the 1-minute subquery
  of the hourly records), which shifts the window a report covers by that much: each namespace and resource holds
  the same GPUs at both ends of the window, and nothing changes within 5 minutes of them, so the shift cannot change
  a total. Every level of the backfill uses the production group's name, hence its evaluation offset, as the rules
  of one live group see each other's samples at the same timestamp.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml
from ansible_runs import ROOT, run

sys.path.insert(0, os.path.join(ROOT, "tests", "unit", "monitoring"))
import render  # noqa: E402
from promql_names import metric_names  # noqa: E402

VERSION = os.environ.get("PROMTOOL_VERSION", "3.14.0")
TOOLS = os.path.join(os.environ.get("GPUFLEET_TOOLS_CACHE") or os.path.expanduser("~/.cache/gpufleet/tools"),
                     "prometheus-%s" % VERSION)
PROMETHEUS = os.environ.get("PROMETHEUS") or os.path.join(TOOLS, "prometheus")
PROMTOOL = os.environ.get("PROMTOOL") or os.path.join(TOOLS, "promtool")
HOUR, MINUTE = 3600, 60
END = (int(time.time()) // HOUR - 3) * HOUR          # the report window: 6 whole hours ending 3 hours ago
START = END - 6 * HOUR
DATA_FROM, DATA_TO = START - 2 * HOUR, END + 15 * MINUTE
NODES = {"gpu-a100-1": "a100", "gpu-a100-2": "a100", "gpu-h100-1": "h100-mig"}
# pod: namespace, node ("" = unscheduled), {resource: count}, Running from, Running until (excluded), DCGM series
# attributed to it while Running (GPU_I_PROFILE per series; None: the exporter does not attribute it)
PODS = {
    "train-0": ("research", "gpu-a100-1", {"nvidia_com_gpu": 8}, DATA_FROM, DATA_TO, [""] * 8),
    "train-1": ("research", "gpu-a100-2", {"nvidia_com_gpu": 2}, START + 90 * MINUTE, START + 180 * MINUTE, None),
    "pending-0": ("research", "", {"nvidia_com_gpu": 4}, None, None, None),
    "nb-0": ("interns", "gpu-a100-2", {"nvidia_com_gpu": 1}, DATA_FROM, DATA_TO, [""]),
    "nb-1": ("interns", "gpu-a100-2", {"nvidia_com_gpu": 1}, START - 30 * MINUTE, START + 135 * MINUTE, None),
    "nb-2": ("interns", "gpu-a100-2", {"nvidia_com_gpu": 1}, START + 200 * MINUTE, DATA_TO, None),
    "infer-0": ("serving", "gpu-h100-1", {"nvidia_com_mig_1g_10gb": 2, "cpu": 4}, DATA_FROM, DATA_TO,
                ["1g.10gb", "1g.10gb"]),
    "infer-1": ("serving", "gpu-h100-1", {"nvidia_com_mig_1g_10gb": 1}, START + 120 * MINUTE, DATA_TO, None),
    "infer-2": ("serving", "gpu-h100-1", {"nvidia_com_mig_1g_10gb": 1}, DATA_FROM, START + 60 * MINUTE, None),
}
TEAMS = {"research": "research", "interns": "interns", "serving": "inference"}  # config.example.yml


def running(pod, t):
    _, node, _, since, until, _ = PODS[pod]
    return bool(node) and since is not None and since <= t < until


def expected():
    """{(namespace, resource): [requested, in use]} GPU-hours of (START, END], from the pod intervals: the rules
    count every minute t with START < t <= END at which a pod runs (requested) or a DCGM series is attributed."""
    out = {}
    for pod, (namespace, _node, resources, _since, _until, dcgm) in PODS.items():
        minutes = sum(1 for t in range(START + MINUTE, END + 1, MINUTE) if running(pod, t))
        for resource, count in resources.items():
            if resource.startswith("nvidia_com_"):
                out.setdefault((namespace, resource), [0.0, 0.0])[0] += count * minutes / 60.0
        for profile in dcgm or []:
            resource = "nvidia_com_mig_" + profile.replace(".", "_") if profile else "nvidia_com_gpu"
            out.setdefault((namespace, resource), [0.0, 0.0])[1] += minutes / 60.0
    return out


def labels(**kv):
    return "{" + ",".join('%s="%s"' % (k, v) for k, v in kv.items()) + "}"


def openmetrics():
    """The raw series, one sample a minute from DATA_FROM to DATA_TO."""
    stamps = range(DATA_FROM, DATA_TO + 1, MINUTE)
    lines = ["# TYPE kube_node_labels gauge"]
    for node, pool in NODES.items():
        lines += ["kube_node_labels%s 1 %d" % (labels(job="kube-state-metrics", node=node, label_gpufleet_io_pool=pool),
                                              t) for t in stamps]
    lines.append("# TYPE kube_pod_container_resource_requests gauge")
    for pod, (namespace, node, resources, _s, _u, _d) in PODS.items():
        for resource, count in resources.items():
            lbl = labels(job="kube-state-metrics", namespace=namespace, pod=pod, container="main", node=node,
                         resource=resource, unit="integer" if resource != "cpu" else "core")
            lines += ["kube_pod_container_resource_requests%s %d %d" % (lbl, count, t) for t in stamps]
    lines.append("# TYPE kube_pod_status_phase gauge")
    for pod, (namespace, node, _r, since, until, _d) in PODS.items():
        for phase in ("Pending", "Running", "Succeeded"):
            lbl = labels(job="kube-state-metrics", namespace=namespace, pod=pod, phase=phase)
            values = []
            for t in stamps:
                on = running(pod, t)
                done = bool(node) and since is not None and t >= until
                values.append(int(on) if phase == "Running" else int(done) if phase == "Succeeded"
                              else int(not on and not done))
            lines += ["kube_pod_status_phase%s %d %d" % (lbl, v, t) for v, t in zip(values, stamps)]
    lines.append("# TYPE DCGM_FI_DEV_GPU_UTIL gauge")
    gpu = {}
    for pod, (namespace, node, resources, _s, _u, dcgm) in PODS.items():
        if not node:
            continue
        attributed = dcgm is not None
        for i, profile in enumerate(dcgm if attributed else [""] * resources.get("nvidia_com_gpu", 0)):
            index = gpu.setdefault(node, 0)
            gpu[node] += 1
            base = dict(job="nvidia-dcgm-exporter", namespace="gpu-operator", pod="nvidia-dcgm-exporter-" + node,
                        gpu=str(index), Hostname=node)
            if profile:
                base.update(GPU_I_PROFILE=profile, GPU_I_ID=str(i + 1))
            if attributed:
                base.update(exported_namespace=namespace, exported_pod=pod, exported_container="main")
                series = [t for t in stamps if running(pod, t)]
            else:
                series = list(stamps)
            lines += ["DCGM_FI_DEV_GPU_UTIL%s 70 %d" % (labels(**base), t) for t in series]
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def rule_levels(rules):
    """The recording rules in dependency order: [[rules reading only raw series], [rules reading those], ...]."""
    records = {r["record"] for r in rules}
    level = {}
    while len(level) < len(rules):
        for r in rules:
            deps = metric_names(r["expr"]) & records
            if r["record"] not in level and all(d in level for d in deps):
                level[r["record"]] = 1 + max([level[d] for d in deps] or [0])
    return [[r for r in rules if level[r["record"]] == n] for n in range(1, max(level.values()) + 1)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    """A Prometheus process on 127.0.0.1 over ``data`` with the collection's GPU usage rules loaded."""

    def __init__(self, workdir, rules_file):
        self.workdir, self.port, self.proc = workdir, free_port(), None
        self.url = "http://127.0.0.1:%d" % self.port
        self.config = workdir / "prometheus.yml"
        self.config.write_text(yaml.safe_dump({"global": {"evaluation_interval": "1m"},
                                               "rule_files": [str(rules_file)]}))
        self.data = workdir / "data"
        self.log = workdir / "prometheus.log"

    def start(self):
        self.proc = subprocess.Popen(
            [PROMETHEUS, "--config.file=%s" % self.config, "--storage.tsdb.path=%s" % self.data,
             "--storage.tsdb.retention.time=30d", "--web.listen-address=127.0.0.1:%d" % self.port],
            stdout=open(self.log, "ab"), stderr=subprocess.STDOUT, cwd=str(self.workdir))
        deadline = time.time() + 60
        while time.time() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise AssertionError("Prometheus not ready in 60s:\n" + self.log.read_text()[-3000:])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=30) as answer:
            return json.loads(answer.read())


def promtool(*args, cwd=None):
    out = subprocess.run([PROMTOOL] + list(args), capture_output=True, text=True, cwd=cwd, timeout=600, check=False)
    assert out.returncode == 0, "promtool %s:\n%s%s" % (" ".join(args), out.stdout[-3000:], out.stderr[-3000:])
    return out


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    for tool in (PROMETHEUS, PROMTOOL):
        if not os.access(tool, os.X_OK):
            pytest.skip("%s not built: run `make prometheus` (make integration builds it; it needs go and the Go "
                        "module proxy)" % tool)
    work = tmp_path_factory.mktemp("usage-report")
    rules_text = render.render_usage_rules()
    rules = [r for g in yaml.safe_load(rules_text)["groups"] for r in g["rules"]]
    rules_file = work / "gpu-usage.rules.yml"
    rules_file.write_text(rules_text)
    (work / "raw.om").write_text(openmetrics())
    t0 = time.time()
    promtool("tsdb", "create-blocks-from", "openmetrics", str(work / "raw.om"), str(work / "data"))
    server = Prometheus(work, rules_file)
    server.start()
    try:
        for n, level in enumerate(rule_levels(rules), 1):
            level_file = work / ("level-%d.rules.yml" % n)
            level_file.write_text(yaml.safe_dump({"groups": [{"name": "gpufleet-gpu-usage", "rules": level}]}))
            out = work / ("level-%d" % n)
            promtool("tsdb", "create-blocks-from", "rules", "--quiet", "--url", server.url, "--start", str(DATA_FROM),
                     "--end", str(DATA_TO), "--eval-interval", "60s", "--output-dir", str(out), str(level_file))
            server.stop()
            for block in os.listdir(out):
                shutil.move(str(out / block), str(server.data / block))
            server.start()
        server.setup_seconds = time.time() - t0
        yield server
    finally:
        server.stop()


def playbook(tmp_path, *extra, check=False):
    args = ["ansible-playbook", "-i", "config.example.yml", "playbooks/usage_report.yml"]
    args += ["--check"] if check else []
    for item in extra:
        args += ["-e", item]
    return run(*args)


def output(result):
    """The run's output with the yaml callback's line folding and quote doubling undone."""
    return re.sub(r"\s+", " ", result.stdout).replace("''", "'")


def report_files(directory):
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


def test_the_rules_are_loaded_and_the_history_recorded(prometheus):
    groups = prometheus.get("/api/v1/rules")["data"]["groups"]
    assert [g["name"] for g in groups] == ["gpufleet-gpu-usage"]
    assert all(r["health"] != "err" for g in groups for r in g["rules"])
    answer = prometheus.get("/api/v1/query?query=count(namespace_resource:gpufleet_gpu_hours_requested:sum_1h)"
                            "&time=%d" % END)
    assert answer["data"]["result"][0]["value"][1] == "3"  # research, interns (GPUs), serving (MIG)
    print("backfill (raw blocks + 3 rule levels, 4 Prometheus starts): %.1fs" % prometheus.setup_seconds)


def test_report_equals_the_independent_figures(prometheus, tmp_path):
    out_dir = tmp_path / "reports"
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(START))
    result = playbook(tmp_path, "usage_report_prometheus_url=" + prometheus.url, "usage_report_start=" + start,
                      "usage_report_end=%d" % END, "usage_report_output_dir=%s" % out_dir)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "changed=1" in result.stdout
    files = report_files(out_dir)
    stem = "gpu-hours-%s-%s" % (time.strftime("%Y%m%dT%HZ", time.gmtime(START)),
                                time.strftime("%Y%m%dT%HZ", time.gmtime(END)))
    assert files == [stem + ".json", stem + ".md", stem + ".png"]
    report = json.loads((out_dir / (stem + ".json")).read_text())
    assert report["schema"] == "gpufleet.platform/usage_report/v1" and report["hours"] == 6
    got = {(r["namespace"], r["resource"]): [r["gpu_hours_requested"], r["gpu_hours_in_use"]] for r in report["rows"]}
    want = expected()
    assert sorted(got) == sorted(want)
    for key, (requested, in_use) in want.items():
        assert got[key][0] == pytest.approx(requested, abs=1e-5), key
        assert got[key][1] == pytest.approx(in_use, abs=1e-5), key
    # the figures themselves, so that a wrong independent computation cannot hide a wrong report
    assert want[("research", "nvidia_com_gpu")] == [51.0, 48.0]
    assert want[("interns", "nvidia_com_gpu")] == pytest.approx([6 + (134 + 161) / 60.0, 6.0])
    assert want[("serving", "nvidia_com_mig_1g_10gb")] == pytest.approx([17.0, 12.0])
    assert {r["namespace"]: r["team"] for r in report["rows"]} == TEAMS
    table = (out_dir / (stem + ".md")).read_text()
    assert "| research | research | nvidia_com_gpu | 51.00 | 48.00 |" in table
    assert "| interns | interns | nvidia_com_gpu | 10.92 | 6.00 |" in table
    assert "| inference | serving | nvidia_com_mig_1g_10gb | 17.00 | 12.00 |" in table
    png = (out_dir / (stem + ".png")).read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    # a second run writes the same files: nothing changed
    again = playbook(tmp_path, "usage_report_prometheus_url=" + prometheus.url, "usage_report_start=%d" % START,
                     "usage_report_period=6h", "usage_report_output_dir=%s" % out_dir)
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout[-3000:]


def test_period_and_end_give_the_same_window(prometheus, tmp_path):
    result = playbook(tmp_path, "usage_report_prometheus_url=" + prometheus.url, "usage_report_period=6h",
                      "usage_report_end=%d" % END, "usage_report_output_dir=%s" % (tmp_path / "r"))
    assert result.returncode == 0, result.stdout[-3000:]
    (name,) = [f for f in report_files(tmp_path / "r") if f.endswith(".json")]
    report = json.loads((tmp_path / "r" / name).read_text())
    assert (report["start"], report["end"]) == (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(START)),
                                                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(END)))


def test_check_mode_writes_nothing(prometheus, tmp_path):
    out_dir = tmp_path / "not-yet"
    result = playbook(tmp_path, "usage_report_prometheus_url=" + prometheus.url, "usage_report_period=6h",
                      "usage_report_end=%d" % END, "usage_report_output_dir=%s" % out_dir, check=True)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "would write: %s/gpu-hours-" % out_dir in result.stdout
    assert "| research | research | nvidia_com_gpu | 51.00 | 48.00 |" in result.stdout
    assert not out_dir.exists()


@pytest.mark.parametrize("extra, message", [
    (["usage_report_period=7x"], "usage_report_period: '7x' is not a period; give a whole number of hours, days or "
                                 "weeks: <n>h, <n>d or <n>w (e.g. 24h, 7d, 4w), at most 366d"),
    (["usage_report_start=%d" % END, "usage_report_end=%d" % START],
     "usage_report_end: %s is not after usage_report_start %s; give an end later than the start"
     % (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(START)), time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                               time.gmtime(END)))),
    (["usage_report_start=2026-12-01T10:30:00Z", "usage_report_period=1d"],
     "usage_report_start: '2026-12-01T10:30:00Z' (2026-12-01T10:30:00Z) is not on a whole hour"),
    (["usage_report_period=7d", "usage_report_prometheus_url=http://127.0.0.1:9"],
     "usage_report_prometheus_url: http://127.0.0.1:9 is not reachable ("),
    (["usage_report_period=7d", "usage_report_prometheus_url=127.0.0.1:9090"],
     "usage_report_prometheus_url: '127.0.0.1:9090' is not an http(s) URL"),
])
def test_bad_inputs_are_refused_naming_the_variable(prometheus, tmp_path, extra, message):
    values = {"usage_report_prometheus_url": prometheus.url, "usage_report_output_dir": str(tmp_path / "out")}
    values.update(item.split("=", 1) for item in extra)
    result = playbook(tmp_path, *("%s=%s" % kv for kv in values.items()))
    assert result.returncode != 0
    assert message in output(result), result.stdout[-3000:]
    assert not (tmp_path / "out").exists()


def unwritable_dir(tmp_path):
    """A directory this user cannot write to: a read-only one in tmp_path, or for root (who writes anywhere) a
    directory the kernel keeps read-only."""
    path = tmp_path / "read-only"
    path.mkdir()
    path.chmod(0o555)
    for candidate in (str(path), "/proc/sys", "/proc/1"):
        if os.path.isdir(candidate) and not os.access(candidate, os.W_OK | os.X_OK):
            return candidate
    pytest.skip("no directory is read-only for this user")


def test_an_unwritable_output_dir_is_refused(prometheus, tmp_path):
    parent = unwritable_dir(tmp_path)
    target = os.path.join(parent, "reports")
    result = playbook(tmp_path, "usage_report_prometheus_url=" + prometheus.url, "usage_report_period=1h",
                      "usage_report_output_dir=" + target)
    assert result.returncode != 0
    assert "usage_report_output_dir: '%s' cannot be created: %s is not writable by this user; give a directory you " \
        "can write to" % (target, parent) in output(result), result.stdout[-3000:]
    assert not os.path.exists(target)


def test_every_bad_input_at_once(prometheus, tmp_path):
    (tmp_path / "file").write_text("x")
    result = playbook(tmp_path, "usage_report_prometheus_url=ftp://x", "usage_report_period=0d",
                      "usage_report_output_dir=%s" % (tmp_path / "file"))
    assert result.returncode != 0
    assert "usage report: 3 problem(s): usage_report_prometheus_url: 'ftp://x' is not an http(s) URL" in output(result)
    assert "usage_report_period: '0d' is not a period" in output(result)
    assert "usage_report_output_dir: '%s' is not a directory" % (tmp_path / "file") in output(result)


def test_a_file_as_output_dir_is_refused(prometheus, tmp_path):
    (tmp_path / "file").write_text("x")
    result = playbook(tmp_path, "usage_report_prometheus_url=" + prometheus.url, "usage_report_period=1h",
                      "usage_report_output_dir=%s" % (tmp_path / "file"))
    assert result.returncode != 0
    assert "usage_report_output_dir: '%s' is not a directory (%s is a file)" % (tmp_path / "file", tmp_path / "file") \
        in output(result), result.stdout[-3000:]


def test_dashboard_metric_names_match_the_prometheus_parser(prometheus):
    """The dashboards' metric-name extraction (tests/unit/monitoring/promql_names.py) agrees with Prometheus' own
    parser (/api/v1/parse_query) on every dashboard expression."""
    from test_dashboards import FILES, expressions, load, substitute
    import urllib.parse

    def selectors(node, out):
        if isinstance(node, dict):
            if node.get("type") in ("vectorSelector", "matrixSelector"):
                names = [m["value"] for m in node["matchers"] if m["name"] == "__name__"]
                out.update(v for n in names for v in n.split("|"))
            for value in node.values():
                selectors(value, out)
        elif isinstance(node, list):
            for value in node:
                selectors(value, out)
        return out

    count = 0
    for path in FILES:
        for what, expr in expressions(load(path)):
            text = substitute(expr)
            tree = prometheus.get("/api/v1/parse_query?query=" + urllib.parse.quote(text))["data"]
            assert selectors(tree, set()) == metric_names(text), "%s %s: %s" % (os.path.basename(path), what, text)
            count += 1
    assert count > 60
