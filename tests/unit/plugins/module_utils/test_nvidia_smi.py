"""nvidia-smi parsers and facts: synthetic fixtures (exact values) and every real capture in ../shared."""
import os

import pytest

from gpufleet_test_data import LOCAL, local_params, read, read_error_fixture, shared_params

from ansible_collections.gpufleet.platform.plugins.module_utils import nvidia_smi as smi
from ansible_collections.gpufleet.platform.plugins.module_utils.nvidia_smi import NvidiaSmiError


def facts_of(name, listing=None, lgip=None):
    parsed = smi.parse_xml(read(os.path.join(LOCAL, "qx", name)))
    lst = smi.parse_list(read(os.path.join(LOCAL, "list", listing))) if listing else None
    lg = smi.parse_lgip(read(os.path.join(LOCAL, "lgip", lgip))) if lgip else None
    return smi.build_facts(parsed, "nvidia-smi -q -x", lst, lg)


# ------------------------------------------------------------------------------------ scalar values


@pytest.mark.parametrize(
    "text, number",
    [("81920 MiB", 81920), ("500.00 W", 500), ("27 C", 27), ("N/A", None), ("[N/A]", None), ("Unknown Error", None),
     ("[Not Supported]", None), ("Requested functionality has been deprecated", None), ("", None), (None, None),
     ("2560 bank(s)", 2560), ("100.00 %", 100)],
)
def test_to_number(text, number):
    assert smi.to_number(text) == number


@pytest.mark.parametrize("text, value", [("Enabled", True), ("Disabled", False), ("Yes", True), ("No", False),
                                         ("N/A", None), ("[N/A]", None), ("Unknown Error", None), ("Pending", None)])
def test_to_bool(text, value):
    assert smi.to_bool(text) is value


# ------------------------------------------------------------------------------------ synthetic -q -x


@pytest.mark.parametrize("path", local_params("qx", "*.xml"))
def test_every_local_fixture_parses(path):
    parsed = smi.parse_xml(read(path))
    facts = smi.build_facts(parsed, "nvidia-smi -q -x")
    assert facts["count"] == len(parsed["gpus"]) >= 1
    text = read(path)
    assert "<!--" in text and "Shape:" in text, "fixture header must say where its shape comes from"


def test_a100_40gb_mig_enabled_with_listing():
    facts = facts_of("a100-sxm4-40gb_mig-3g-2g-1g-1g_535.129.03_v12.xml", listing="a100-sxm4-40gb_mig-3g-2g-1g-1g.txt",
                     lgip="a100-sxm4-40gb_1gpu.txt")
    assert facts["driver_version"] == "535.129.03" and facts["cuda_version"] == "12.2"
    assert facts["models"] == {"a100-sxm4-40gb": 1}
    assert facts["mig_capable_count"] == 1 and facts["mig_enabled_count"] == 1
    assert facts["health"] == [] and facts["healthy"] is True
    g = facts["gpus"][0]
    assert g["model"] == "a100-sxm4-40gb" and g["model_source"] == "pci_device_id"
    assert g["pci_device_id"] == "0x20B010DE" and g["pci_bus_id"] == "00000000:07:00.0"
    assert g["compute_capability"] == "8.0" and g["architecture"] == "Ampere"
    assert g["mig_mode_current"] == "enabled" and g["mig_mode_pending"] == "enabled"
    assert [(d["index"], d["gpu_instance_id"], d["compute_instance_id"], d["profile"], d["profile_source"])
            for d in g["mig_devices"]] == [
        (0, 2, 0, "3g.20gb", "nvidia-smi -L"), (1, 3, 0, "2g.10gb", "nvidia-smi -L"),
        (2, 9, 0, "1g.5gb", "nvidia-smi -L"), (3, 10, 0, "1g.5gb", "nvidia-smi -L"),
    ]
    assert g["mig_devices"][0]["uuid"] == "MIG-c0000000-aaaa-5bbb-8ccc-000000000000"
    assert g["mig_devices"][0]["memory_mib"] == 20096 and g["mig_devices"][0]["sm_count"] == 42
    assert g["mig_profiles_source"] == "nvidia-smi mig -lgip"
    assert [(p["name"], p["total"]) for p in g["mig_profiles"]] == [
        ("1g.5gb", 7), ("1g.5gb+me", 1), ("1g.10gb", 4), ("2g.10gb", 3), ("3g.20gb", 2), ("4g.20gb", 1), ("7g.40gb", 1)]
    assert g["power_limit_w"] == 400.0 and g["temperature_c"] == 31 and g["persistence_mode"] is True


def test_mig_profiles_inferred_without_listing():
    facts = facts_of("a100-sxm4-40gb_mig-3g-2g-1g-1g_535.129.03_v12.xml")
    devs = facts["gpus"][0]["mig_devices"]
    assert [(d["profile"], d["profile_source"], d["uuid"]) for d in devs] == [
        ("3g.20gb", "inferred", None), ("2g.10gb", "inferred", None), ("1g.5gb", "inferred", None), ("1g.5gb", "inferred", None)]
    # with the hardware's -lgip table the inference uses its exact GiB and SM figures
    facts = facts_of("a100-sxm4-40gb_mig-3g-2g-1g-1g_535.129.03_v12.xml", lgip="a100-sxm4-40gb_1gpu.txt")
    assert [d["profile"] for d in facts["gpus"][0]["mig_devices"]] == ["3g.20gb", "2g.10gb", "1g.5gb", "1g.5gb"]


def test_eight_gpu_mig_node():
    facts = facts_of("h100-sxm5-80gb_8gpu_mig-all-balanced_550.54.15_v13.xml", listing="h100-sxm5-80gb_8gpu_mig-all-balanced.txt")
    assert facts["count"] == 8 and facts["models"] == {"h100-sxm5-80gb": 8} and facts["mig_enabled_count"] == 8
    assert [g["index"] for g in facts["gpus"]] == list(range(8))
    for g in facts["gpus"]:
        assert [d["profile"] for d in g["mig_devices"]] == ["3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"]
        assert g["remapped_rows_pending"] is False and g["remapped_rows_failure"] is False
        assert g["ecc_errors_uncorrected_volatile"] == 0
        assert g["compute_capability"] == "9.0" and g["memory_total_mib"] == 81559
    assert facts["gpus"][7]["mig_devices"][3]["uuid"] == "MIG-b0000073-aaaa-5bbb-8ccc-000000000003"
    assert facts["health"] == []


def test_inference_on_h100_uses_catalog_sm_counts():
    facts = facts_of("h100-sxm5-80gb_8gpu_mig-all-balanced_550.54.15_v13.xml")
    assert [d["profile"] for d in facts["gpus"][0]["mig_devices"]] == ["3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"]


def test_health_problems():
    facts = facts_of("a100-sxm4-80gb_health-problems_535.54.03_v12.xml")
    assert [(h["gpu"], h["check"], h["severity"]) for h in facts["health"]] == [
        (0, "remapped_rows_pending", "warning"),
        (0, "ecc_uncorrected_volatile", "error"),
        (0, "mig_mode_change_pending", "warning"),
        (1, "remapped_rows_failure", "error"),
        (1, "retired_pages_pending", "warning"),
        (1, "ecc_mode_change_pending", "warning"),
    ]
    assert facts["healthy"] is False
    msgs = [h["message"] for h in facts["health"]]
    assert msgs[2] == (
        "GPU 0 (00000000:01:00.0): MIG mode is disabled but enabled is pending; it takes effect after a GPU reset "
        "(drain the node, then nvidia-smi -r -i 0, or reboot)."
    )
    assert msgs[0] == (
        "GPU 0 (00000000:01:00.0): row remapping is pending; drain the node and reset the GPU (nvidia-smi -r or reboot) to apply it."
    )
    g0, g1 = facts["gpus"]
    assert g0["ecc_errors_uncorrected_volatile"] == 2 and g0["remapped_rows_uncorrectable"] == 1
    assert g1["remapped_rows_uncorrectable"] == 640 and g1["ecc_mode_current"] is True and g1["ecc_mode_pending"] is False


def test_old_ecc_layout_and_power_readings():
    facts = facts_of("a100-pcie-40gb_mig-disabled_460.106.00_v11_old-ecc.xml")
    g = facts["gpus"][0]
    assert g["model"] == "a100-pcie-40gb" and g["pci_device_id"] == "0x20F110DE"
    assert g["ecc_errors_uncorrected_volatile"] == 0 and g["ecc_errors_uncorrected_aggregate"] == 1
    assert g["power_limit_w"] == 250.0 and g["persistence_mode"] is False
    assert g["remapped_rows_pending"] is None
    assert [h["check"] for h in facts["health"]] == ["ecc_uncorrected_aggregate"]


def test_mixed_node():
    facts = facts_of("mixed-node_2x-a100-sxm4-80gb_1x-a30_535.54.03_v12.xml")
    assert facts["models"] == {"a100-sxm4-80gb": 2, "a30": 1}
    assert [g["model"] for g in facts["gpus"]] == ["a100-sxm4-80gb", "a100-sxm4-80gb", "a30"]


def test_unknown_error_and_missing_gpu():
    facts = facts_of("h100-sxm5-80gb_unknown-error_gpu-missing_535.104.05_v12.xml")
    g = facts["gpus"][0]
    assert g["name"] is None and g["model"] == "h100-sxm5-80gb"  # identified by PCI ID despite the broken name
    assert g["temperature_c"] is None and g["power_limit_w"] is None
    assert g["unknown_error_fields"] == ["power_limit", "product_name", "temperature"]
    assert [(h["gpu"], h["check"]) for h in facts["health"]] == [(0, "unknown_error"), (None, "gpu_count_mismatch")]
    assert facts["health"][1]["message"] == "nvidia-smi reports 2 attached GPU(s) but describes 1; a GPU may be lost or hidden."


@pytest.mark.parametrize("text, msg", [
    ("", "nvidia-smi -q -x printed nothing."),
    ("<html></html>", "nvidia-smi -q -x printed XML whose root is <html>, not <nvidia_smi_log>."),
])
def test_bad_xml(text, msg):
    with pytest.raises(NvidiaSmiError) as exc:
        smi.parse_xml(text)
    assert str(exc.value) == msg and exc.value.kind == "parse"


def test_not_xml():
    with pytest.raises(NvidiaSmiError) as exc:
        smi.parse_xml("Failed to initialize NVML: Unknown Error")
    assert str(exc.value).startswith("nvidia-smi -q -x printed output that is not XML (")


# ------------------------------------------------------------------------------------ error outputs


@pytest.mark.parametrize("path", local_params("errors", "*.txt"))
def test_error_fixtures_classify(path):
    meta, text = read_error_fixture(path)
    assert "Shape" in meta
    kind, message = smi.classify_failure(int(meta["rc"]), "", text)
    assert kind == meta["kind"]
    assert message.endswith(".")


def test_classification_messages_exact():
    assert smi.classify_failure(18, "", "Failed to initialize NVML: Driver/library version mismatch\n") == (
        "version_mismatch",
        "nvidia-smi: NVML driver/library version mismatch: the loaded nvidia kernel module is not the version of the "
        "installed user-space driver (usually after a driver upgrade without reboot). Reboot the host, or unload and "
        "reload the nvidia kernel modules (rmmod nvidia_uvm nvidia_drm nvidia_modeset nvidia; modprobe nvidia).",
    )
    assert smi.classify_failure(9, "", "") == (
        "no_driver", "nvidia-smi could not communicate with the NVIDIA driver: no NVIDIA kernel driver is loaded on this host.")
    assert smi.classify_failure(139, "", "Segmentation fault") == (
        "error", "nvidia-smi failed with exit code 139: Segmentation fault. Run 'nvidia-smi' on the host to see the problem.")


# ------------------------------------------------------------------------------------ collect()


class FakeSmi:
    """run() stand-in: maps an argument tuple (without the binary) to (rc, out, err)."""

    def __init__(self, table):
        self.table = table
        self.calls = []

    def __call__(self, args):
        key = tuple(args[1:])
        self.calls.append(key)
        for k, v in self.table.items():
            if key == k or (k and key[0].startswith(k[0]) and k[0].endswith("=")):
                return v
        return 2, "", "Invalid combination of input arguments."


def _local(kind, name):
    return read(os.path.join(LOCAL, kind, name))


def test_collect_full_path():
    run = FakeSmi({
        ("-q", "-x"): (0, _local("qx", "a100-sxm4-40gb_mig-3g-2g-1g-1g_535.129.03_v12.xml"), ""),
        ("--query-gpu=index,uuid,compute_cap", "--format=csv,noheader,nounits"): (
            0, "0, GPU-a0000001-1111-2222-3333-000000000001, 8.0\n", ""),
        ("-L",): (0, _local("list", "a100-sxm4-40gb_mig-3g-2g-1g-1g.txt"), ""),
        ("mig", "-lgip"): (0, _local("lgip", "a100-sxm4-40gb_1gpu.txt"), ""),
    })
    facts = smi.collect(run, "/usr/bin/nvidia-smi")
    assert run.calls == [("-q", "-x"), ("--query-gpu=index,uuid,compute_cap", "--format=csv,noheader,nounits"), ("-L",), ("mig", "-lgip")]
    assert facts["source"] == "nvidia-smi -q -x" and facts["gpus"][0]["mig_devices"][0]["profile_source"] == "nvidia-smi -L"


def test_collect_skips_mig_queries_when_mig_off():
    run = FakeSmi({("-q", "-x"): (0, _local("qx", "mixed-node_2x-a100-sxm4-80gb_1x-a30_535.54.03_v12.xml"), "")})
    facts = smi.collect(run, "nvidia-smi")
    assert ("-L",) not in run.calls and facts["count"] == 3
    assert [g["compute_capability"] for g in facts["gpus"]] == ["8.0", "8.0", "8.0"]  # catalog, query failed


@pytest.mark.parametrize("fixture, reason", [
    ("no-driver.txt", "nvidia-smi could not communicate with the NVIDIA driver: no NVIDIA kernel driver is loaded on this host."),
    ("no-devices.txt", "nvidia-smi found no NVIDIA GPU on this host."),
])
def test_collect_no_gpu_is_not_an_error(fixture, reason):
    meta, text = read_error_fixture(os.path.join(LOCAL, "errors", fixture))
    facts = smi.collect(FakeSmi({("-q", "-x"): (int(meta["rc"]), "", text)}), "nvidia-smi")
    assert facts["gpus"] == [] and facts["count"] == 0 and facts["reason"] == reason


@pytest.mark.parametrize("fixture", ["driver-library-mismatch.txt", "gpu-lost.txt", "insufficient-permissions.txt",
                                     "nvml-unknown-error.txt"])
def test_collect_operator_errors_raise(fixture):
    meta, text = read_error_fixture(os.path.join(LOCAL, "errors", fixture))
    run = FakeSmi({("-q", "-x"): (int(meta["rc"]), text, "")})
    with pytest.raises(NvidiaSmiError) as exc:
        smi.collect(run, "nvidia-smi")
    assert exc.value.kind == meta["kind"] and run.calls == [("-q", "-x")]


def test_collect_falls_back_to_csv():
    row = ("0, GPU-x, NVIDIA H100 80GB HBM3, 00000000:18:00.0, 0x233010DE, 81559, 9.0, 550.54.15, Enabled, Enabled, "
           "Enabled, Enabled, Enabled, 0, 0, No, No, No, 700.00, 33\n")
    run = FakeSmi({
        ("-q", "-x"): (0, "garbage", ""),
        ("--query-gpu=",): (0, row, ""),
    })
    facts = smi.collect(run, "nvidia-smi", mig_details=False)
    assert facts["source"] == "nvidia-smi --query-gpu"
    g = facts["gpus"][0]
    assert (g["model"], g["memory_total_mib"], g["mig_mode_current"], g["power_limit_w"], g["temperature_c"]) == (
        "h100-sxm5-80gb", 81559, "enabled", 700.0, 33)
    assert facts["health"][-1]["check"] == "xml_query_failed"


def test_collect_csv_retries_minimal_fields():
    calls = []

    def run(args):
        calls.append(args[1])
        if args[1] == "-q":
            return 255, "", "Segmentation fault"
        if "compute_cap" in args[1]:
            return 2, 'Field "compute_cap" is not a valid field to query.', ""
        return 0, "0, GPU-y, Tesla T4, 00000000:00:04.0, 0x1EB810DE, 15360 MiB, 470.82.01\n", ""

    facts = smi.collect(run, "nvidia-smi")
    assert len(calls) == 3 and facts["gpus"][0]["model"] == "t4" and facts["driver_version"] == "470.82.01"


def test_collect_both_queries_fail():
    with pytest.raises(NvidiaSmiError) as exc:
        smi.collect(lambda args: (255, "", "Segmentation fault"), "nvidia-smi")
    assert str(exc.value) == (
        "nvidia-smi failed for both -q -x (nvidia-smi failed with exit code 255: Segmentation fault. Run 'nvidia-smi' "
        "on the host to see the problem.) and --query-gpu (nvidia-smi failed with exit code 255: Segmentation fault. "
        "Run 'nvidia-smi' on the host to see the problem.)."
    )


# ------------------------------------------------------------------------------------ real captures (../shared)


@pytest.mark.parametrize("path", shared_params("qx"))
def test_real_qx_capture(path):
    text = read(path)
    parsed = smi.parse_xml(text)
    facts = smi.build_facts(parsed, "nvidia-smi -q -x")
    assert facts["count"] == len(parsed["gpus"]) >= 1
    assert facts["driver_version"] and facts["driver_version"][0].isdigit()
    name = os.path.basename(path)
    for g in facts["gpus"]:
        assert g["uuid"].startswith("GPU-")
        assert g["pci_device_id"].startswith("0x") and g["pci_device_id"].endswith("10DE")
        assert g["memory_total_mib"] > 1000
        assert g["temperature_c"] is None or 0 < g["temperature_c"] < 120
        assert g["power_limit_w"] is None or 10 < g["power_limit_w"] < 2000
        if g["model"]:
            assert facts["gpus"][0]["compute_capability"]
        if "mig_mode" not in text:
            assert g["mig_mode_current"] is None
    if name.startswith("geforce"):
        assert facts["models"] == {"unknown": 1} and [h["check"] for h in facts["health"]] == ["unknown_model"]
    else:
        assert "unknown" not in facts["models"]
    if "TRIMMED" in name:
        assert any(h["check"] == "gpu_count_mismatch" for h in facts["health"])
    else:
        assert parsed["attached_gpus"] == facts["count"]
    if "mig-on" in name:
        g = facts["gpus"][0]
        assert g["mig_mode_current"] == "enabled" and g["mig_devices"]
        assert all(d["profile"] and d["profile_source"] == "inferred" for d in g["mig_devices"])
        assert all(d["gpu_instance_id"] is not None for d in g["mig_devices"])


@pytest.mark.parametrize("path", shared_params("csv"))
def test_real_csv_capture(path):
    rows = smi.parse_query_gpu_csv(read(path))
    assert rows
    gpus, driver = smi.gpus_from_csv(rows)
    assert driver and driver[0].isdigit()
    for g in gpus:
        assert g["model"] if "model" in g else True
        assert g["pci_device_id"].startswith("0x")
        assert g["memory_total_mib"] > 1000 and g["compute_capability"]
        assert g["mig_mode_current"] in ("enabled", "disabled", None)
    facts = smi.build_facts({"driver_version": driver, "cuda_version": None, "attached_gpus": None, "gpus": gpus},
                            "nvidia-smi --query-gpu")
    assert "unknown" not in facts["models"]
    if "_mig_" in os.path.basename(path):
        assert facts["gpus"][0]["mig_mode_current"] == "enabled"


@pytest.mark.parametrize("path", shared_params("lgip"))
def test_real_lgip_capture(path):
    per_gpu = smi.parse_lgip(read(path))
    assert per_gpu
    from ansible_collections.gpufleet.platform.plugins.module_utils import gpu_catalog, mig
    for rows in per_gpu.values():
        names = [r["name"] for r in rows]
        assert len(names) == len(set(names)) and all(r["ce"] is not None for r in rows)
        # the hardware's table agrees with the catalog entry that has exactly these profile names
        matches = [m for m in gpu_catalog.models() if m.mig_capable and set(m.profile_names) == set(names)]
        assert matches, names
        for m in matches:
            hw = gpu_catalog.with_hardware_profiles(m, rows)
            assert [(p.name, p.max_count) for p in hw.profiles] == [(r["name"], r["total"]) for r in rows]
            for r in rows:
                assert m.profile(r["name"]).max_count == r["total"]
                if m.profile(r["name"]).profile_id is not None:
                    assert m.profile(r["name"]).profile_id == r["profile_id"]
            assert mig.plan_layout(hw, "all-balanced")["placements"]


@pytest.mark.parametrize("path", shared_params("list"))
def test_real_list_capture(path):
    gpus = smi.parse_list(read(path))
    assert gpus and all(g["uuid"].startswith("GPU-") for g in gpus)
    from ansible_collections.gpufleet.platform.plugins.module_utils import gpu_catalog, mig
    for g in gpus:
        assert g["mig_devices"]
        model = gpu_catalog.lookup(g["name"])
        counts = {}
        for d in g["mig_devices"]:
            assert d["uuid"].startswith("MIG-") and model.profile(d["profile"]) is not None
            counts[d["profile"]] = counts.get(d["profile"], 0) + 1
            if d["uuid"].startswith("MIG-GPU-"):
                assert d["gpu_instance_id"] is not None and d["compute_instance_id"] == 0
        # what the host runs is a layout our planner accepts
        assert mig.plan_layout(model, counts)["placements"][0]
