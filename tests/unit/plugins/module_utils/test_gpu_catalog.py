"""The GPU catalog: identity lookups, MIG tables matching the research notes, source/assumed flags."""
import pytest

from ansible_collections.gpufleet.platform.plugins.module_utils import gpu_catalog
from ansible_collections.gpufleet.platform.plugins.module_utils.gpu_catalog import UnknownGpuModelError, lookup

MIG_MODELS_FROM_RESEARCH = [
    "a30", "a100-sxm4-40gb", "a100-pcie-40gb", "a100-sxm4-80gb", "a100-pcie-80gb", "a800-pcie-40gb", "a800-sxm4-80gb",
    "a800-pcie-80gb", "h100-sxm5-80gb", "h100-pcie-80gb", "h100-nvl-94gb", "h100-96gb", "gh200-96gb", "h20",
    "h200-sxm5-141gb", "h200-nvl-141gb", "gh200-144gb", "b200", "gb200", "b300", "gb300", "rtx-pro-6000-blackwell",
]
NON_MIG = ["t4", "v100-sxm2-32gb", "a10", "a40", "l4", "l40s", "rtx-6000-ada"]


@pytest.mark.parametrize(
    "identifier, key",
    [
        ("a100-sxm4-80gb", "a100-sxm4-80gb"),
        ("A100-SXM4-80GB", "a100-sxm4-80gb"),
        ("0x20B2", "a100-sxm4-80gb"),
        ("0x20b2", "a100-sxm4-80gb"),
        ("20B2", "a100-sxm4-80gb"),
        ("0x20B210DE", "a100-sxm4-80gb"),
        ("20b210de", "a100-sxm4-80gb"),
        ("10de:20b2", "a100-sxm4-80gb"),
        (0x20B2, "a100-sxm4-80gb"),
        ("NVIDIA A100-SXM4-80GB", "a100-sxm4-80gb"),
        ("NVIDIA-A100-SXM4-80GB", "a100-sxm4-80gb"),
        ("NVIDIA-A100-SXM4-80GB-MIG-1g.10gb", "a100-sxm4-80gb"),
        ("NVIDIA-A100-SXM4-80GB-SHARED", "a100-sxm4-80gb"),
        ("0x20F1", "a100-pcie-40gb"),
        ("0x20B1", "a100-pcie-40gb"),
        ("NVIDIA H100 80GB HBM3", "h100-sxm5-80gb"),
        ("NVIDIA-H100-80GB-HBM3", "h100-sxm5-80gb"),
        ("0x233010DE", "h100-sxm5-80gb"),
        ("0x2321", "h100-nvl-94gb"),
        ("0x2335", "h200-sxm5-141gb"),
        ("0x233B10DE", "h200-nvl-141gb"),
        ("NVIDIA B200", "b200"),
        ("0x31C2", "gb300"),
        ("0x2BB5", "rtx-pro-6000-blackwell"),
        ("Tesla T4", "t4"),
        ("Tesla-T4", "t4"),
        ("NVIDIA L40S", "l40s"),
        ("0x26B910DE", "l40s"),
        ("Tesla V100S-PCIE-32GB", "v100s-pcie-32gb"),
        ("NVIDIA A30", "a30"),
        ({"pci_device_id": "0x20B010DE", "name": "Graphics Device"}, "a100-sxm4-40gb"),
        ({"model": "b200"}, "b200"),
    ],
)
def test_lookup(identifier, key):
    assert lookup(identifier).key == key


def test_lookup_passes_models_through():
    m = lookup("a30")
    assert lookup(m) is m


@pytest.mark.parametrize("bad", ["a100", "0x1234", "NVIDIA Quadro 9000", "", None, 3.5, "0x20B213B5"])
def test_unknown_model_lists_keys(bad):
    with pytest.raises(UnknownGpuModelError) as exc:
        lookup(bad)
    assert isinstance(exc.value, ValueError)
    msg = str(exc.value)
    assert "a100-sxm4-80gb" in msg and "rtx-6000-ada" in msg
    assert ", ".join(gpu_catalog.keys()) in msg


def test_unknown_model_message_exact():
    with pytest.raises(UnknownGpuModelError) as exc:
        lookup("a100-80gb")
    assert str(exc.value) == (
        "Unknown GPU model 'a100-80gb'. Did you mean a100-sxm4-80gb or a100-pcie-80gb or h100-sxm5-80gb? Give a catalog key "
        "(%s), a PCI device ID such as 0x20B2 or 0x20B210DE, or a product name such as 'NVIDIA A100-SXM4-80GB'."
        % ", ".join(gpu_catalog.keys())
    )


def test_catalog_covers_research_models():
    keys = gpu_catalog.keys()
    for k in MIG_MODELS_FROM_RESEARCH:
        assert k in keys and lookup(k).mig_capable, k
    for k in NON_MIG:
        assert k in keys and not lookup(k).mig_capable and lookup(k).profiles == (), k


def test_keys_unique_and_pci_ids_unique():
    keys = gpu_catalog.keys()
    assert len(keys) == len(set(keys))
    ids = [pid for m in gpu_catalog.models() for pid in m.pci_device_ids]
    assert len(ids) == len(set(ids))
    for pid in ids:
        assert pid.startswith("0x") and pid.endswith("10DE") and pid == pid[:2] + pid[2:].upper()


@pytest.mark.parametrize("model", gpu_catalog.models(), ids=lambda m: m.key)
def test_entry_shape(model):
    assert model.key == model.key.lower() and " " not in model.key
    assert model.source
    assert isinstance(model.assumed, tuple)
    assert model.gfd_product and " " not in model.gfd_product
    assert lookup(model.gfd_product) is model
    assert lookup(model.name) is model
    assert model.memory_mib > 1000
    assert model.compute_capability.count(".") == 1
    if model.mig_capable:
        assert (model.compute_slice_count, model.memory_slice_count) in ((7, 8), (4, 4))
        names = model.profile_names
        assert len(names) == len(set(names))
        for p in model.profiles:
            parsed = gpu_catalog.parse_profile_name(p.name)
            assert parsed is not None, p.name
            assert parsed[0] == p.compute_slices and parsed[1] == p.memory_gb and parsed[2] == p.media
            for s in p.starts:
                assert s + p.memory_slices <= model.memory_slice_count
            assert p.max_count >= 1
        for name, count in model.balanced:
            assert model.profile(name) is not None and count >= 1
        assert float(model.compute_capability) >= 8.0


# Max counts per profile straight from the research tables (research/mig-profiles.md).
RESEARCH_TABLES = {
    "a100-sxm4-40gb": {"1g.5gb": 7, "1g.5gb+me": 1, "1g.10gb": 4, "2g.10gb": 3, "3g.20gb": 2, "4g.20gb": 1, "7g.40gb": 1},
    "a100-sxm4-80gb": {"1g.10gb": 7, "1g.10gb+me": 1, "1g.20gb": 4, "2g.20gb": 3, "3g.40gb": 2, "4g.40gb": 1, "7g.80gb": 1},
    "a30": {"1g.6gb": 4, "1g.6gb+me": 1, "2g.12gb": 2, "2g.12gb+me": 1, "4g.24gb": 1},
    "h100-sxm5-80gb": {"1g.10gb": 7, "1g.10gb+me": 1, "1g.20gb": 4, "2g.20gb": 3, "3g.40gb": 2, "4g.40gb": 1, "7g.80gb": 1},
    "h100-nvl-94gb": {"1g.12gb": 7, "1g.12gb+me": 1, "1g.24gb": 4, "2g.24gb": 3, "3g.47gb": 2, "4g.47gb": 1, "7g.94gb": 1},
    "gh200-96gb": {"1g.12gb": 7, "1g.12gb+me": 1, "1g.24gb": 4, "2g.24gb": 3, "3g.48gb": 2, "4g.48gb": 1, "7g.96gb": 1},
    "gh200-144gb": {"1g.18gb": 7, "1g.18gb+me": 1, "1g.36gb": 4, "2g.36gb": 3, "3g.72gb": 2, "4g.72gb": 1, "7g.144gb": 1},
    "h200-sxm5-141gb": {"1g.18gb": 7, "1g.18gb+me": 1, "1g.35gb": 4, "2g.35gb": 3, "3g.71gb": 2, "4g.71gb": 1, "7g.141gb": 1},
    "b200": {"1g.23gb": 7, "1g.23gb+me": 1, "1g.45gb": 4, "2g.45gb": 3, "3g.90gb": 2, "4g.90gb": 1, "7g.180gb": 1},
    "gb200": {"1g.23gb": 7, "1g.23gb+me": 1, "1g.47gb": 4, "2g.47gb": 3, "3g.93gb": 2, "4g.93gb": 1, "7g.186gb": 1},
    "b300": {"1g.34gb": 7, "1g.34gb+me": 1, "1g.67gb": 4, "2g.67gb": 3, "3g.135gb": 2, "4g.135gb": 1, "7g.269gb": 1},
    "gb300": {"1g.35gb": 7, "1g.35gb+me": 1, "1g.70gb": 4, "2g.70gb": 3, "3g.139gb": 2, "4g.139gb": 1, "7g.278gb": 1},
    "rtx-pro-6000-blackwell": {
        "1g.24gb": 4, "1g.24gb+me": 1, "1g.24gb+gfx": 4, "1g.24gb+me.all": 1, "1g.24gb-me": 4, "2g.48gb": 2,
        "2g.48gb+gfx": 2, "2g.48gb+me.all": 1, "2g.48gb-me": 2, "4g.96gb": 1, "4g.96gb+gfx": 1,
    },
}


@pytest.mark.parametrize("key", sorted(RESEARCH_TABLES))
def test_profile_tables_match_research(key):
    m = lookup(key)
    assert dict((p.name, p.max_count) for p in m.profiles) == RESEARCH_TABLES[key]


def test_placements_and_gates_match_research():
    m = lookup("a100-sxm4-40gb")
    geo = dict((p.name, (p.starts, p.memory_slices, p.profile_id)) for p in m.profiles)
    assert geo == {
        "1g.5gb": ((0, 1, 2, 3, 4, 5, 6), 1, 19),
        "1g.5gb+me": ((0, 1, 2, 3, 4, 5, 6), 1, 20),
        "1g.10gb": ((0, 2, 4, 6), 2, 15),
        "2g.10gb": ((0, 2, 4), 2, 14),
        "3g.20gb": ((0, 4), 4, 9),
        "4g.20gb": ((0,), 4, 5),
        "7g.40gb": ((0,), 8, 0),
    }
    assert m.profile("1g.10gb").min_driver == 525
    assert m.profile("1g.5gb+me").min_driver == 470
    assert lookup("a30").profile("2g.12gb+me").min_driver == 525
    assert lookup("a30").profile("1g.6gb+me").min_driver == 470
    assert lookup("a100-sxm4-80gb").profile("1g.20gb").min_driver is None


def test_balanced_presets_match_operator_configmap():
    assert dict(lookup("0x20B010DE").balanced) == {"1g.5gb": 2, "2g.10gb": 1, "3g.20gb": 1}
    assert dict(lookup("0x233010DE").balanced) == {"1g.10gb": 2, "2g.20gb": 1, "3g.40gb": 1}
    assert dict(lookup("0x20B710DE").balanced) == {"1g.6gb": 2, "2g.12gb": 1}
    assert dict(lookup("0x2BB510DE").balanced) == {"1g.24gb": 2, "2g.48gb": 1}
    assert dict(lookup("0x294110DE").balanced) == {"1g.23gb": 2, "2g.47gb": 1, "3g.93gb": 1}
    assert dict(lookup("0x318210DE").balanced) == {"1g.34gb": 2, "2g.67gb": 1, "3g.135gb": 1}


def test_assumed_flags_follow_research():
    assert lookup("a100-sxm4-40gb").assumed == ()
    assert any("placement" in a for a in lookup("h200-sxm5-141gb").assumed)
    assert any("mock" in a for a in lookup("a30").assumed)
    assert any("ConfigMap" in a for a in lookup("gb200").assumed)
    assert lookup("b200").is_assumed


def test_resource_and_config_names():
    p = lookup("a100-sxm4-80gb").profile("1g.10gb+me")
    assert p.config_name == "all-1g.10gb.me"
    assert p.resource_name == "nvidia.com/mig-1g.10gb.me"
    q = lookup("rtx-pro-6000-blackwell").profile("1g.24gb-me")
    assert q.config_name == "all-1g.24gb-me" and q.resource_name == "nvidia.com/mig-1g.24gb-me"
    assert lookup("rtx-pro-6000-blackwell").profile("2g.48gb+me.all").resource_name == "nvidia.com/mig-2g.48gb.me.all"


def test_hardware_profiles_override_catalog():
    lgip = [
        {"name": "1g.10gb", "profile_id": 19, "total": 7, "sm": 16},
        {"name": "1g.20gb", "profile_id": 15, "total": 4, "sm": 26},
        {"name": "2g.20gb", "profile_id": 14, "total": 3, "sm": 32},
        {"name": "3g.40gb", "profile_id": 9, "total": 2, "sm": 60},
        {"name": "7g.80gb", "profile_id": 0, "total": 1, "sm": 132},
        {"name": "1g.12gb", "profile_id": 19, "total": 6, "sm": 16},  # not in the catalog: geometry from ID 19
    ]
    m = gpu_catalog.with_hardware_profiles("h100-sxm5-80gb", lgip)
    assert m.profile_names == ("1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "7g.80gb", "1g.12gb")
    assert m.profile("1g.12gb").max_count == 6 and m.profile("1g.12gb").starts == (0, 1, 2, 3, 4, 5, 6)
    assert m.profile("4g.40gb") is None and m.profile("1g.10gb+me") is None
    assert "nvidia-smi mig -lgip" in m.source
    assert gpu_catalog.with_hardware_profiles("a30", []) is lookup("a30")


def test_slice_aliases():
    assert lookup("a30").compute_slices == 4 and lookup("a30").memory_slices == 4
    assert lookup("b200").compute_slices == 7 and lookup("b200").memory_slices == 8
    assert lookup("t4").compute_slices == 0
