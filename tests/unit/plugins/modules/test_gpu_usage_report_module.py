"""gpufleet.platform.gpu_usage_report through AnsibleModule, Prometheus answered by a stand-in for open_url (the
real Prometheus: tests/integration/test_usage_report.py)."""
import io
import json
import os
from unittest.mock import patch
from urllib.error import HTTPError, URLError
from urllib.parse import parse_qs, urlparse

import pytest
from module_harness import AnsibleExitJson, AnsibleFailJson, module_harness, set_module_args

from ansible_collections.gpufleet.platform.plugins.modules import gpu_usage_report

END = 1796083200 + 24 * 3600  # 2026-12-02T00:00:00Z
ANSWERS = {
    "requested": {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"namespace": "research", "resource": "nvidia_com_gpu"}, "value": [END, "51"]}]}},
    "in_use": {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"namespace": "research"}, "value": [END, "48"]}]}},
}


def prometheus(url, **kwargs):
    query = parse_qs(urlparse(url).query)
    assert urlparse(url).path == "/api/v1/query" and query["time"] == [str(END)]
    kind = "requested" if "requested" in query["query"][0] else "in_use"
    return io.BytesIO(json.dumps(ANSWERS[kind]).encode())


def run(args, check=False, answer=prometheus):
    args = dict({"prometheus_url": "http://127.0.0.1:9090", "start": "2026-12-01", "end": str(END),
                 "teams": [{"name": "research", "namespace": "research"}], "variable_prefix": "usage_report_"},
                **args)
    if check:
        args["_ansible_check_mode"] = True
    with set_module_args(args), module_harness(), patch.object(gpu_usage_report, "open_url", side_effect=answer):
        with pytest.raises((AnsibleExitJson, AnsibleFailJson)) as exc:
            gpu_usage_report.main()
    return exc.value


def test_writes_three_files_once(tmp_path):
    out = tmp_path / "reports"
    res = run({"output_dir": str(out)}, check=True)
    assert isinstance(res, AnsibleExitJson) and res.result["changed"] is True and not out.exists()
    stem = str(out / "gpu-hours-20261201T00Z-20261202T00Z")
    assert res.result["files"] == [stem + ".md", stem + ".json", stem + ".png"]
    res = run({"output_dir": str(out)})
    assert res.result["changed"] is True
    assert sorted(os.listdir(out)) == sorted(os.path.basename(f) for f in res.result["files"])
    assert json.loads(open(stem + ".json").read()) == res.result["report"]
    assert res.result["report"]["rows"] == [{"team": "research", "namespace": "research", "resource": "nvidia_com_gpu",
                                             "gpu_hours_requested": 51.0, "gpu_hours_in_use": 48.0}]
    assert oct(os.stat(stem + ".png").st_mode & 0o777) == "0o644"
    assert run({"output_dir": str(out)}).result["changed"] is False
    assert run({"output_dir": str(out)}, check=True).result["changed"] is False


def test_every_bad_input_at_once(tmp_path):
    (tmp_path / "f").write_text("x")
    res = run({"prometheus_url": "localhost:9090", "start": "", "end": "", "period": "7x",
               "output_dir": str(tmp_path / "f")})
    assert isinstance(res, AnsibleFailJson)
    assert res.result["problems"] == [
        "usage_report_prometheus_url: 'localhost:9090' is not an http(s) URL; give the Prometheus base URL, e.g. "
        "http://127.0.0.1:9090",
        "usage_report_period: '7x' is not a period; give a whole number of hours, days or weeks: <n>h, <n>d or <n>w "
        "(e.g. 24h, 7d, 4w), at most 366d",
        "usage_report_output_dir: %r is not a directory (%s is a file); give a directory you can write to"
        % (str(tmp_path / "f"), tmp_path / "f")]
    assert res.result["msg"].startswith("usage report: 3 problem(s): usage_report_prometheus_url: ")


def test_unreachable_prometheus(tmp_path):
    res = run({"output_dir": str(tmp_path)}, answer=URLError(ConnectionRefusedError(111, "Connection refused")))
    assert isinstance(res, AnsibleFailJson)
    assert res.result["msg"] == (
        "usage_report_prometheus_url: http://127.0.0.1:9090 is not reachable ([Errno 111] Connection refused); give "
        "the URL of a Prometheus this controller reaches, e.g. after `kubectl -n monitoring port-forward "
        "svc/kube-prometheus-stack-prometheus 9090` -e usage_report_prometheus_url=http://127.0.0.1:9090")
    assert os.listdir(tmp_path) == []


def test_prometheus_refuses(tmp_path):
    body = io.BytesIO(json.dumps({"status": "error", "error": "unknown function"}).encode())
    res = run({"output_dir": str(tmp_path)}, answer=HTTPError("http://x", 400, "Bad Request", {}, body))
    assert isinstance(res, AnsibleFailJson)
    assert res.result["msg"].startswith("usage_report_prometheus_url: http://127.0.0.1:9090 answered HTTP 400 to "
                                        "sum by (namespace, resource)")
    assert res.result["msg"].endswith(": unknown function")
