"""gpufleet.platform.gpu_facts through AnsibleModule: set_module_args, exact results and messages."""
import os
from unittest.mock import patch

import pytest
from gpufleet_test_data import LOCAL, read, read_error_fixture
from module_harness import AnsibleExitJson, AnsibleFailJson, module_harness, set_module_args

from ansible.module_utils import basic

from ansible_collections.gpufleet.platform.plugins.modules import gpu_facts

QX = os.path.join(LOCAL, "qx")


def run_module(args, outputs, binary="/usr/bin/nvidia-smi", check_mode=False):
    """Run gpu_facts with run_command answering from ``outputs`` {args tuple: (rc, out, err)}."""
    calls = []

    def fake_run(self, args, **kwargs):
        calls.append(tuple(args))
        return outputs.get(tuple(args[1:]), (2, "", "Invalid combination of input arguments."))

    if check_mode:
        args = dict(args, _ansible_check_mode=True)
    with set_module_args(args), module_harness(), \
            patch.object(basic.AnsibleModule, "run_command", fake_run), \
            patch.object(basic.AnsibleModule, "get_bin_path", lambda self, *a, **k: binary), \
            patch.object(gpu_facts.os, "access", lambda path, mode: path is not None):
        with pytest.raises((AnsibleExitJson, AnsibleFailJson)) as exc:
            gpu_facts.main()
    return exc.value, calls


def test_facts_from_xml():
    xml = read(os.path.join(QX, "mixed-node_2x-a100-sxm4-80gb_1x-a30_535.54.03_v12.xml"))
    res, calls = run_module({}, {("-q", "-x"): (0, xml, "")})
    assert isinstance(res, AnsibleExitJson)
    assert res.result["changed"] is False
    facts = res.result["ansible_facts"]["gpufleet_gpu_facts"]
    assert facts["models"] == {"a100-sxm4-80gb": 2, "a30": 1}
    assert facts["driver_version"] == "535.54.03" and facts["reason"] is None
    assert calls[0] == ("/usr/bin/nvidia-smi", "-q", "-x")


def test_check_mode_same_result():
    xml = read(os.path.join(QX, "a100-sxm4-80gb_health-problems_535.54.03_v12.xml"))
    normal, _c1 = run_module({}, {("-q", "-x"): (0, xml, "")})
    check, _c2 = run_module({}, {("-q", "-x"): (0, xml, "")}, check_mode=True)
    assert normal.result["ansible_facts"] == check.result["ansible_facts"]
    assert check.result["changed"] is False


def test_no_nvidia_smi():
    res, calls = run_module({}, {}, binary=None)
    assert isinstance(res, AnsibleExitJson) and calls == []
    facts = res.result["ansible_facts"]["gpufleet_gpu_facts"]
    assert facts["gpus"] == [] and facts["count"] == 0
    assert facts["reason"] == (
        "nvidia-smi not found (PATH or /usr/local/nvidia/bin, /run/nvidia/driver/usr/bin, /usr/bin): "
        "no NVIDIA driver is installed on this host."
    )


def test_explicit_missing_path():
    with set_module_args({"nvidia_smi_path": "/nonexistent/nvidia-smi"}), module_harness():
        with pytest.raises(AnsibleExitJson) as exc:
            gpu_facts.main()
    assert exc.value.result["ansible_facts"]["gpufleet_gpu_facts"]["reason"] == (
        "nvidia-smi not found (/nonexistent/nvidia-smi): no NVIDIA driver is installed on this host."
    )


@pytest.mark.parametrize("fixture, reason", [
    ("no-driver.txt", "nvidia-smi could not communicate with the NVIDIA driver: no NVIDIA kernel driver is loaded on this host."),
    ("no-devices.txt", "nvidia-smi found no NVIDIA GPU on this host."),
])
def test_no_driver_or_gpu_succeeds(fixture, reason):
    meta, text = read_error_fixture(os.path.join(LOCAL, "errors", fixture))
    res, _calls = run_module({}, {("-q", "-x"): (int(meta["rc"]), text, "")})
    assert isinstance(res, AnsibleExitJson)
    facts = res.result["ansible_facts"]["gpufleet_gpu_facts"]
    assert facts["gpus"] == [] and facts["reason"] == reason and res.result["changed"] is False


def test_driver_mismatch_fails_with_fix():
    meta, text = read_error_fixture(os.path.join(LOCAL, "errors", "driver-library-mismatch.txt"))
    res, _calls = run_module({}, {("-q", "-x"): (int(meta["rc"]), text, "")})
    assert isinstance(res, AnsibleFailJson)
    assert res.result["msg"] == (
        "nvidia-smi: NVML driver/library version mismatch: the loaded nvidia kernel module is not the version of the "
        "installed user-space driver (usually after a driver upgrade without reboot). Reboot the host, or unload and "
        "reload the nvidia kernel modules (rmmod nvidia_uvm nvidia_drm nvidia_modeset nvidia; modprobe nvidia)."
    )
    assert res.result["kind"] == "version_mismatch" and res.result["rc"] == 18


def test_gpu_lost_and_permission_fail():
    meta, text = read_error_fixture(os.path.join(LOCAL, "errors", "gpu-lost.txt"))
    res, _c = run_module({}, {("-q", "-x"): (int(meta["rc"]), "", text)})
    assert res.result["msg"] == (
        "nvidia-smi lost a GPU (it fell off the bus or NVML cannot get its handle): check 'dmesg' for Xid 79/48/119 errors, "
        "drain the node and reboot it; if it recurs, reseat or replace the GPU."
    )
    meta, text = read_error_fixture(os.path.join(LOCAL, "errors", "insufficient-permissions.txt"))
    res, _c = run_module({}, {("-q", "-x"): (int(meta["rc"]), "", text)})
    assert res.result["msg"] == (
        "nvidia-smi lacks permission to query the GPUs: run the task with become: true, or give the user access to "
        "/dev/nvidia* (e.g. the video group)."
    )


def test_mig_details_runs_list_and_lgip():
    xml = read(os.path.join(QX, "a100-sxm4-40gb_mig-3g-2g-1g-1g_535.129.03_v12.xml"))
    outputs = {
        ("-q", "-x"): (0, xml, ""),
        ("-L",): (0, read(os.path.join(LOCAL, "list", "a100-sxm4-40gb_mig-3g-2g-1g-1g.txt")), ""),
        ("mig", "-lgip"): (0, read(os.path.join(LOCAL, "lgip", "a100-sxm4-40gb_1gpu.txt")), ""),
    }
    res, calls = run_module({}, outputs)
    gpu = res.result["ansible_facts"]["gpufleet_gpu_facts"]["gpus"][0]
    assert [d["profile"] for d in gpu["mig_devices"]] == ["3g.20gb", "2g.10gb", "1g.5gb", "1g.5gb"]
    assert gpu["mig_profiles_source"] == "nvidia-smi mig -lgip"
    res, calls = run_module({"mig_details": False}, outputs)
    assert [c[1:] for c in calls] == [("-q", "-x"), ("--query-gpu=index,uuid,compute_cap", "--format=csv,noheader,nounits")]
