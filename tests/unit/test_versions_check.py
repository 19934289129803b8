"""tools/versions_check.py (make versions-check) and module_utils/chart_images.py, without helm."""
import importlib.util
import os

import yaml

from ansible_collections.gpufleet.platform.plugins.module_utils import chart_images, versions

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_SPEC = importlib.util.spec_from_file_location("versions_check", os.path.join(ROOT, "tools", "versions_check.py"))
versions_check = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(versions_check)


def _charts(tmp_path, bump=None):
    for charts in versions.all_charts().values():
        for chart in charts:
            meta = {"name": chart["name"], "version": chart["version"], "appVersion": chart["app_version"]}
            if chart["name"] == bump:
                meta["appVersion"] = "v9.9.9"
            folder = tmp_path / ("%s-%s" % (chart["name"], chart["version"]))
            folder.mkdir()
            (folder / "Chart.yaml").write_text(yaml.safe_dump(meta))
    return str(tmp_path)


def test_matching_metadata_is_no_drift(tmp_path):
    drift, notes, rendered = versions_check.check(_charts(tmp_path), helm=None)
    assert (drift, notes, rendered) == ([], [], {})


def test_drift_names_chart_key_and_both_values(tmp_path):
    drift = versions_check.check(_charts(tmp_path, bump="kueue"), helm=None)[0]
    assert drift == ["kueue chart kueue 0.19.2: Chart.yaml appVersion is 'v9.9.9', the matrix says 'v0.19.2'"]


def test_missing_chart_is_drift(tmp_path):
    charts = _charts(tmp_path)
    os.remove(os.path.join(charts, "volcano-1.15.1", "Chart.yaml"))
    drift = versions_check.check(charts, helm=None)[0]
    assert len(drift) == 1 and drift[0].startswith("volcano chart volcano 1.15.1: no ")


def test_absent_charts_directory_skips(tmp_path, capsys):
    assert versions_check.main(["--charts", str(tmp_path / "absent")]) == 0
    assert "SKIPPED: no upstream charts at" in capsys.readouterr().out


def test_vllm_pin_is_at_least_kserve_supported():
    tag = chart_images.split_image(versions.IMAGES["vllm"])["tag"]
    assert tuple(int(p) for p in tag.lstrip("v").split(".")[:2]) >= (0, 24)


def test_images_in_documents():
    docs = [
        {"kind": "Deployment", "spec": {"template": {"spec": {"containers": [{"image": "a/b:1"}, {"image": "c:2"}]}}}},
        {"kind": "CustomResourceDefinition", "spec": {"image": "schema-not-image"}},
        {"kind": "ConfigMap", "data": {"agent": '{"image": "kserve/agent:v1", "memory": "1Gi"}', "x": "{not json"}},
        {"kind": "ClusterPolicy", "spec": {"driver": {"repository": "nvcr.io/nvidia", "image": "driver", "version": "595"},
                                           "dcgm": {"repository": "nvcr.io/n", "image": "dcgm", "version": "sha256:ab"}}},
        None,
    ]
    assert chart_images.images_in_documents(docs) == ["a/b:1", "c:2", "kserve/agent:v1", "nvcr.io/n/dcgm@sha256:ab",
                                                      "nvcr.io/nvidia/driver:595"]


def test_split_image():
    assert chart_images.split_image("localhost:5000/a/b:1@sha256:ff") == {
        "repository": "localhost:5000/a/b", "tag": "1", "digest": "sha256:ff"}
    assert chart_images.split_image("localhost:5000/a/b") == {"repository": "localhost:5000/a/b", "tag": None, "digest": None}
