"""gpufleet.platform.mig_layout through AnsibleModule: set_module_args, exact results and messages."""
import os

import pytest
from gpufleet_test_data import LOCAL, read
from module_harness import AnsibleExitJson, AnsibleFailJson, module_harness, set_module_args

from ansible_collections.gpufleet.platform.plugins.module_utils import gpu_catalog, nvidia_smi
from ansible_collections.gpufleet.platform.plugins.modules import mig_layout


def run(args):
    with set_module_args(args), module_harness():
        with pytest.raises((AnsibleExitJson, AnsibleFailJson)) as exc:
            mig_layout.main()
    return exc.value


def facts(name, lgip=None):
    parsed = nvidia_smi.parse_xml(read(os.path.join(LOCAL, "qx", name)))
    lg = nvidia_smi.parse_lgip(read(os.path.join(LOCAL, "lgip", lgip))) if lgip else None
    return nvidia_smi.build_facts(parsed, "nvidia-smi -q -x", None, lg)


def test_plan_from_model():
    res = run({"model": "a100-sxm4-80gb", "layout": "all-1g.10gb", "gpu_count": 2, "driver_version": "535.54.03"})
    assert isinstance(res, AnsibleExitJson)
    r = res.result
    assert r["changed"] is False and "warnings" not in r
    assert r["model"] == "a100-sxm4-80gb" and r["config_name"] == "all-1g.10gb"
    assert r["resources"] == {"mixed": {"nvidia.com/mig-1g.10gb": 14}, "single": {"nvidia.com/gpu": 14}}
    assert r["mig_parted"] == {"version": "v1", "mig-configs": {"all-1g.10gb": [
        {"devices": "all", "mig-enabled": True, "mig-devices": {"1g.10gb": 7}}]}}
    assert r["profiles_source"] == "catalog"


def test_warns_without_driver_version():
    r = run({"model": "0x20B2", "layout": {"3g.40gb": 2}}).result
    assert r["warnings"] == [
        "driver_version not given: driver-version gates (R470 +me, R510 4g+3g, R525 1g.10gb on A100-40GB) not checked"
    ]
    assert r["placements"] == [["3g.40gb@0", "3g.40gb@4"]]


def test_check_mode():
    r = run({"model": "b200", "layout": "all-balanced", "_ansible_check_mode": True, "driver_version": "580.105.08"}).result
    assert r["changed"] is False and r["placements"] == [["2g.45gb@0", "1g.23gb@2", "1g.23gb@3", "3g.90gb@4"]]


def test_not_mig_capable_message():
    r = run({"model": "NVIDIA L40S", "layout": {"1g.10gb": 1}})
    assert isinstance(r, AnsibleFailJson)
    assert r.result["msg"] == "GPU model l40s (NVIDIA L40S) does not support MIG. MIG layouts apply only to: %s." % (
        ", ".join(gpu_catalog.mig_capable_keys()))
    assert r.result["suggestions"] == []


def test_impossible_count_message_and_suggestions():
    r = run({"model": "a100-sxm4-80gb", "layout": {"7g.80gb": 2}, "driver_version": "535.54.03"})
    assert r.result["msg"] == (
        "{7g.80gb: 2} asks for 2 x 7g.80gb, but at most 1 7g.80gb instance fits on one a100-sxm4-80gb "
        "(NVIDIA A100-SXM4-80GB) GPU. Nearest layouts that fit: {7g.80gb: 1}; {4g.40gb: 1, 3g.40gb: 1}; {3g.40gb: 2}."
    )
    assert r.result["suggestions"] == [{"7g.80gb": 1}, {"4g.40gb": 1, "3g.40gb": 1}, {"3g.40gb": 2}]


def test_requires_model_or_facts():
    r = run({"layout": "all-balanced"})
    assert r.result["msg"] == "one of the following is required: model, gpu_facts"


def test_from_gpu_facts_with_hardware_profiles():
    f = facts("a100-sxm4-40gb_mig-3g-2g-1g-1g_535.129.03_v12.xml", lgip="a100-sxm4-40gb_1gpu.txt")
    r = run({"gpu_facts": f, "layout": "all-balanced"}).result
    assert r["model"] == "a100-sxm4-40gb" and r["gpu_count"] == 1 and r["profiles_source"] == "nvidia-smi mig -lgip"
    assert r["placements"] == [["2g.10gb@0", "1g.5gb@2", "1g.5gb@3", "3g.20gb@4"]]
    assert "warnings" not in r  # the driver version came from the facts


def test_from_gpu_facts_mixed_node_needs_model():
    f = facts("mixed-node_2x-a100-sxm4-80gb_1x-a30_535.54.03_v12.xml")
    r = run({"gpu_facts": f, "layout": "all-balanced"})
    assert r.result["msg"] == (
        "The host mixes GPU models (a100-sxm4-80gb x2, a30 x1); set model to plan one of them and merge the plans with "
        "the gpufleet.platform.mig_parted_config filter."
    )
    r = run({"gpu_facts": f, "model": "a30", "layout": "all-balanced", "device_filter": True}).result
    assert r["gpu_count"] == 1
    assert r["mig_parted"]["mig-configs"]["all-balanced"][0]["device-filter"] == ["0x20B710DE"]


def test_from_gpu_facts_driver_gate():
    f = facts("a100-pcie-40gb_mig-disabled_460.106.00_v11_old-ecc.xml")
    r = run({"gpu_facts": f, "layout": {"4g.20gb": 1, "3g.20gb": 1}})
    assert r.result["msg"].startswith(
        "4g.20gb together with 3g.20gb on a100-pcie-40gb (NVIDIA A100-PCIE-40GB) needs NVIDIA driver R510 or later; "
        "the driver is R460."
    )


def test_from_empty_facts():
    f = nvidia_smi.empty_facts("nvidia-smi found no NVIDIA GPU on this host.")
    r = run({"gpu_facts": f, "layout": "all-balanced"})
    assert r.result["msg"] == (
        "gpu_facts lists no GPU (nvidia-smi found no NVIDIA GPU on this host.); there is nothing to plan a MIG layout for."
    )
