"""Filters in plugins/filter/mig.py."""
import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.gpufleet.platform.plugins.filter.mig import FilterModule
from ansible_collections.gpufleet.platform.plugins.module_utils.mig import plan_layout

F = FilterModule().filters()


def test_filters_registered():
    assert sorted(F) == ["mig_parted_config", "mig_placements", "mig_plan", "mig_resources"]


def test_mig_parted_config_from_layout():
    doc = F["mig_parted_config"]({"3g.40gb": 1, "2g.20gb": 1, "1g.10gb": 2}, "h100-sxm5-80gb", 8, config_name="inference")
    assert doc == {"version": "v1", "mig-configs": {"inference": [
        {"devices": "all", "mig-enabled": True, "mig-devices": {"3g.40gb": 1, "2g.20gb": 1, "1g.10gb": 2}}]}}


def test_mig_parted_config_merges_plans():
    plans = [plan_layout("a100-sxm4-80gb", "all-1g.10gb", 2), plan_layout("a30", "all-1g.6gb", 1)]
    doc = F["mig_parted_config"](plans, config_name="mixed")
    assert [e["device-filter"] for e in doc["mig-configs"]["mixed"]] == [["0x20B210DE"], ["0x20B710DE"]]
    assert F["mig_resources"](plans) == {"nvidia.com/mig-1g.10gb": 14, "nvidia.com/mig-1g.6gb": 4}


def test_mig_parted_config_renames_plan():
    plan = plan_layout("a30", "all-balanced")
    assert list(F["mig_parted_config"](plan, config_name="x")["mig-configs"]) == ["x"]
    assert F["mig_parted_config"](plan) == plan["mig_parted"]


def test_mig_resources():
    assert F["mig_resources"]("all-1g.10gb", "a100-sxm4-80gb", 2) == {"nvidia.com/mig-1g.10gb": 14}
    assert F["mig_resources"]("all-1g.10gb", "a100-sxm4-80gb", 2, "single") == {"nvidia.com/gpu": 14}
    assert F["mig_resources"]("all-balanced", "a100-sxm4-80gb", 2, "both")["single"] is None
    with pytest.raises(AnsibleFilterError) as exc:
        F["mig_resources"]("all-balanced", "a30", 1, "bogus")
    assert str(exc.value) == "mig_resources strategy must be mixed, single or both, got 'bogus'."


def test_mig_placements_and_plan():
    assert F["mig_placements"]({"3g.40gb": 2}, "0x2330") == [["3g.40gb@0", "3g.40gb@4"]]
    assert F["mig_plan"]("all-disabled", "t4", 4)["resources"]["mixed"] == {"nvidia.com/gpu": 4}


def test_errors_become_filter_errors():
    with pytest.raises(AnsibleFilterError) as exc:
        F["mig_parted_config"]({"7g.80gb": 2}, "a100-sxm4-80gb")
    assert str(exc.value).startswith("{7g.80gb: 2} asks for 2 x 7g.80gb, but at most 1 7g.80gb instance fits")
    with pytest.raises(AnsibleFilterError) as exc:
        F["mig_parted_config"]({"7g.80gb": 1})
    assert "needs the GPU model" in str(exc.value)
