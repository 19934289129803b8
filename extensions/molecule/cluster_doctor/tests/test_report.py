"""The doctor's JSON report of the converge: every node checked, exactly one failure, the worker whose pool
declares another GPU model than its nvidia-smi shows."""
import pytest

from conftest import NODES, REAL_CAPTURES, load_report

FOUND_GPU1 = "l40s" if REAL_CAPTURES else "a100-pcie-40gb"


@pytest.fixture(scope="module")
def report():
    return load_report()


def by_key(report):
    return {(c["host"], c["check"]): c for c in report["checks"]}


def test_report_schema_and_hosts(report):
    assert report["schema"] == "gpufleet.platform/report/v1"
    assert report["kind"] == "preflight"
    assert report["hosts"] == sorted(NODES + ("controller",))
    assert report["meta"]["cluster"] == "molecule" and report["meta"]["generated_at"].endswith("Z")
    assert set(report["summary"]) == {"ok", "warn", "fail", "skip"}
    assert sum(report["summary"].values()) == len(report["checks"])


def test_report_names_the_mismatched_worker(report):
    assert report["ok"] is False
    failures = [(c["host"], c["check"]) for c in report["failures"]]
    assert failures == [("doctor-gpu-2", "gpu_model")], report["failures"]
    failure = report["failures"][0]
    assert failure["message"].startswith("pool a100 declares GPU model a100-sxm4-80gb but nvidia-smi found h100-sxm5-80gb x8"), failure
    assert failure["details"] == {"declared": "a100-sxm4-80gb", "found": {"h100-sxm5-80gb": 8}}


def test_every_node_was_checked(report):
    checks = by_key(report)
    for name in NODES:
        for check in ("ssh", "become", "os", "kernel", "time_sync", "swap", "memory", "disk_root", "disk_var", "kernel_modules"):
            assert (name, check) in checks, "%s: no %s check" % (name, check)
        assert checks[(name, "ssh")]["status"] == "ok"
        assert checks[(name, "become")]["message"] == "connects as root (no become)"
        assert checks[(name, "os")]["status"] == "ok"
        # the containers run on the CI machine's kernel and clock
        assert checks[(name, "time_sync")]["status"] == "skip"
        assert checks[(name, "time_sync")]["message"].startswith("in a container (docker)")
    assert checks[("controller", "ansible_core")]["status"] == "ok"


def test_gpu_checks_per_pool(report):
    checks = by_key(report)
    assert not [c for c in report["checks"] if c["host"] == "doctor-cp-1" and c["check"].startswith("gpu_")]
    gpu1 = {k[1]: v for k, v in checks.items() if k[0] == "doctor-gpu-1" and k[1].startswith("gpu_")}
    assert {k: v["status"] for k, v in gpu1.items()} == {
        "gpu_driver": "ok", "gpu_model": "ok", "gpu_count": "ok", "gpu_mig": "ok", "gpu_health": "ok"}, gpu1
    assert "installed, as pool l40s declares (driver.mode preinstalled)" in gpu1["gpu_driver"]["message"]
    assert gpu1["gpu_model"]["message"] == "pool l40s declares %s and nvidia-smi found %s x1" % (FOUND_GPU1, FOUND_GPU1)
    gpu2 = {k[1]: v for k, v in checks.items() if k[0] == "doctor-gpu-2" and k[1].startswith("gpu_")}
    assert gpu2["gpu_driver"]["status"] == "ok", gpu2
    assert gpu2["gpu_driver"]["message"].endswith("from the GPU Operator (driver.mode operator)")
    assert gpu2["gpu_count"]["status"] == "ok" and gpu2["gpu_count"]["message"] == "8 GPU(s), as pool a100 declares"


def test_memory_and_disk_name_their_thresholds(report):
    checks = by_key(report)
    assert "of a control plane node (preflight_min_memory_mib.control_plane)" in checks[("doctor-cp-1", "memory")]["message"]
    assert "of a worker node (preflight_min_memory_mib.worker)" in checks[("doctor-gpu-1", "memory")]["message"]
    disk = checks[("doctor-gpu-1", "disk_var")]
    assert disk["status"] == "ok" and disk["details"]["path"] == "/var" and disk["details"]["mount"] == "/"
