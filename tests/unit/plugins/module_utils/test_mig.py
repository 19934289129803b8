"""MIG layout planning: presets, exact placements, exact error messages, mig-parted and resources."""
import collections

import pytest

from ansible_collections.gpufleet.platform.plugins.module_utils import gpu_catalog, mig
from ansible_collections.gpufleet.platform.plugins.module_utils.mig import MigLayoutError, plan_layout

A100_40_BASE = ["1g.5gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb"]
MIG_KEYS = gpu_catalog.mig_capable_keys()
CAPABLE = ", ".join(MIG_KEYS)


def test_balanced_two_gpus():
    plan = plan_layout("a100-sxm4-80gb", "all-balanced", gpu_count=2, driver_version="535.54.03")
    assert plan["model"] == "a100-sxm4-80gb"
    assert plan["placements"] == [["2g.20gb@0", "1g.10gb@2", "1g.10gb@3", "3g.40gb@4"]] * 2
    assert plan["resources"] == {
        "mixed": {"nvidia.com/mig-1g.10gb": 4, "nvidia.com/mig-2g.20gb": 2, "nvidia.com/mig-3g.40gb": 2},
        "single": None,
    }
    assert plan["mig_parted"] == {
        "version": "v1",
        "mig-configs": {"all-balanced": [
            {"devices": "all", "mig-enabled": True, "mig-devices": {"3g.40gb": 1, "2g.20gb": 1, "1g.10gb": 2}}
        ]},
    }
    assert plan["warnings"] == []


def test_all_1g_two_gpus_gives_14_resources():
    plan = plan_layout("a100-sxm4-80gb", "all-1g.10gb", gpu_count=2)
    assert plan["resources"] == {"mixed": {"nvidia.com/mig-1g.10gb": 14}, "single": {"nvidia.com/gpu": 14}}
    assert plan["placements"][0] == ["1g.10gb@%d" % i for i in range(7)]
    assert plan["warnings"] == [
        "driver_version not given: driver-version gates (R470 +me, R510 4g+3g, R525 1g.10gb on A100-40GB) not checked"
    ]


def test_a100_40gb_1g10gb_preset_is_four():
    plan = plan_layout("0x20B010DE", "all-1g.10gb", driver_version="R525")
    assert plan["layout"] == [{"1g.10gb": 4}]
    assert plan["placements"] == [["1g.10gb@0", "1g.10gb@2", "1g.10gb@4", "1g.10gb@6"]]


def test_disabled_and_enabled_presets():
    off = plan_layout("h100-sxm5-80gb", "all-disabled", gpu_count=8)
    assert off["mig_parted"]["mig-configs"] == {"all-disabled": [{"devices": "all", "mig-enabled": False}]}
    assert off["resources"] == {"mixed": {"nvidia.com/gpu": 8}, "single": {"nvidia.com/gpu": 8}}
    on = plan_layout("h100-sxm5-80gb", "all-enabled", gpu_count=2)
    assert on["mig_parted"]["mig-configs"] == {"all-enabled": [{"devices": "all", "mig-enabled": True, "mig-devices": {}}]}
    assert on["resources"] == {"mixed": {}, "single": {"nvidia.com/gpu": 0}}
    l40s = plan_layout("l40s", "all-disabled", gpu_count=4)
    assert l40s["resources"]["mixed"] == {"nvidia.com/gpu": 4}


def test_per_gpu_list_and_custom_name():
    plan = plan_layout("h100-sxm5-80gb", ["all-1g.10gb", {"3g.40gb": 2}, "disabled", {"3g.40gb": 2}], gpu_count=4,
                       driver_version="550.54.15", config_name="pool-a")
    assert plan["placements"] == [["1g.10gb@%d" % i for i in range(7)], ["3g.40gb@0", "3g.40gb@4"], [], ["3g.40gb@0", "3g.40gb@4"]]
    assert plan["mig_parted"]["mig-configs"]["pool-a"] == [
        {"devices": [0], "mig-enabled": True, "mig-devices": {"1g.10gb": 7}},
        {"devices": [1, 3], "mig-enabled": True, "mig-devices": {"3g.40gb": 2}},
        {"devices": [2], "mig-enabled": False},
    ]
    assert plan["resources"] == {
        "mixed": {"nvidia.com/gpu": 1, "nvidia.com/mig-1g.10gb": 7, "nvidia.com/mig-3g.40gb": 4},
        "single": None,
    }


def test_custom_layout_gets_stable_hashed_name_and_device_filter():
    a = plan_layout("a100-sxm4-80gb", {"3g.40gb": 1, "1g.10gb": 4}, device_filter=True)
    b = plan_layout("a100-sxm4-80gb", {"1g.10gb": 4, "3g.40gb": 1}, device_filter=True)
    assert a["config_name"] == b["config_name"] and a["config_name"].startswith("custom-")
    entry = a["mig_parted"]["mig-configs"][a["config_name"]][0]
    assert entry["device-filter"] == ["0x20B210DE"]
    assert a["placements"] == [["1g.10gb@0", "1g.10gb@1", "1g.10gb@2", "1g.10gb@3", "3g.40gb@4"]]


def test_merge_plans_for_mixed_node():
    a100 = plan_layout("a100-sxm4-80gb", "all-balanced", gpu_count=2)
    a30 = plan_layout("a30", "all-balanced", gpu_count=1)
    merged = mig.merge_plans([a100, a30], "all-balanced")
    assert merged["mig_parted"]["mig-configs"]["all-balanced"] == [
        {"device-filter": ["0x20B210DE"], "devices": "all", "mig-enabled": True,
         "mig-devices": {"3g.40gb": 1, "2g.20gb": 1, "1g.10gb": 2}},
        {"device-filter": ["0x20B710DE"], "devices": "all", "mig-enabled": True,
         "mig-devices": {"2g.12gb": 1, "1g.6gb": 2}},
    ]
    assert merged["resources"]["mixed"] == {
        "nvidia.com/mig-1g.10gb": 4, "nvidia.com/mig-1g.6gb": 2, "nvidia.com/mig-2g.12gb": 1,
        "nvidia.com/mig-2g.20gb": 2, "nvidia.com/mig-3g.40gb": 2,
    }
    with pytest.raises(MigLayoutError) as exc:
        mig.merge_plans([a100, a100])
    assert str(exc.value) == "merge_plans got two plans for a100-sxm4-80gb; give one plan per GPU model."


# ------------------------------------------------------------------------------------ exact messages


def _err(*args, **kwargs):
    with pytest.raises(MigLayoutError) as exc:
        plan_layout(*args, **kwargs)
    return exc.value


def test_not_mig_capable():
    e = _err("l40s", {"1g.10gb": 1})
    assert str(e) == "GPU model l40s (NVIDIA L40S) does not support MIG. MIG layouts apply only to: %s." % CAPABLE
    e = _err("NVIDIA L40S", "all-balanced")
    assert str(e).startswith("GPU model l40s (NVIDIA L40S) does not support MIG.")


def test_deepops_impossible_example():
    e = _err("a100-sxm4-80gb", {"7g.80gb": 2})
    assert str(e) == (
        "{7g.80gb: 2} asks for 2 x 7g.80gb, but at most 1 7g.80gb instance fits on one a100-sxm4-80gb "
        "(NVIDIA A100-SXM4-80GB) GPU. Nearest layouts that fit: {7g.80gb: 1}; {4g.40gb: 1, 3g.40gb: 1}; {3g.40gb: 2}."
    )
    assert e.suggestions == [{"7g.80gb": 1}, {"4g.40gb": 1, "3g.40gb": 1}, {"3g.40gb": 2}]


def test_unknown_profile_with_hint():
    e = _err("a100-sxm4-80gb", {"1g.5gb": 2})
    assert str(e) == (
        "MIG profile '1g.5gb' does not exist on a100-sxm4-80gb (NVIDIA A100-SXM4-80GB). Valid profiles: 1g.10gb, "
        "1g.10gb+me, 1g.20gb, 2g.20gb, 3g.40gb, 4g.40gb, 7g.80gb. Did you mean '1g.5gb' -> '1g.10gb'? "
        "Nearest layouts that fit: {1g.10gb: 2}."
    )
    e = _err("a100-sxm4-80gb", {"1g.10gb.me": 1})
    assert "Did you mean '1g.10gb.me' -> '1g.10gb+me'?" in str(e)
    assert e.suggestions == [{"1g.10gb+me": 1}]


def test_unknown_profiles_plural():
    e = _err("h100-sxm5-80gb", {"9g.1gb": 1, "bogus": 1})
    assert str(e) == (
        "MIG profiles '9g.1gb', 'bogus' do not exist on h100-sxm5-80gb (NVIDIA H100 80GB HBM3). Valid profiles: "
        "1g.10gb, 1g.10gb+me, 1g.20gb, 2g.20gb, 3g.40gb, 4g.40gb, 7g.80gb."
    )
    assert e.suggestions == []


def test_suffix_profiles_on_rtx_pro():
    plan = plan_layout("rtx-pro-6000-blackwell", {"1g.24gb+gfx": 2, "2g.48gb-me": 1})
    assert plan["placements"] == [["2g.48gb-me@0", "1g.24gb+gfx@2", "1g.24gb+gfx@3"]]
    assert plan["resources"]["mixed"] == {"nvidia.com/mig-1g.24gb.gfx": 2, "nvidia.com/mig-2g.48gb-me": 1}
    e = _err("rtx-pro-6000-blackwell", {"1g.24gb+me.all": 1, "2g.48gb+me.all": 1})
    assert str(e).startswith(
        "{2g.48gb+me.all: 1, 1g.24gb+me.all: 1} has 2 instances with media extensions (1g.24gb+me.all, 2g.48gb+me.all), "
        "but one rtx-pro-6000-blackwell (NVIDIA RTX PRO 6000 Blackwell Server Edition) GPU has one set of media engines: "
        "at most one +me/+me.all instance fits. Nearest layouts that fit: "
    )


def test_compute_budget():
    e = _err("a100-sxm4-80gb", {"4g.40gb": 1, "3g.40gb": 1, "1g.10gb": 1})
    assert str(e) == (
        "{4g.40gb: 1, 3g.40gb: 1, 1g.10gb: 1} needs 8 compute slices, but one a100-sxm4-80gb (NVIDIA A100-SXM4-80GB) "
        "GPU has 7. Nearest layouts that fit: {4g.40gb: 1, 3g.40gb: 1}; {4g.40gb: 1, 2g.20gb: 1, 1g.10gb: 1}; "
        "{3g.40gb: 1, 2g.20gb: 1, 1g.10gb: 2}."
    )


def test_memory_budget():
    e = _err("a100-sxm4-80gb", {"3g.40gb": 1, "2g.20gb": 1, "1g.20gb": 2})
    assert str(e).startswith(
        "{3g.40gb: 1, 2g.20gb: 1, 1g.20gb: 2} needs 10 memory slices, but one a100-sxm4-80gb (NVIDIA A100-SXM4-80GB) GPU has 8."
    )
    assert e.suggestions[0] == {"3g.40gb": 1, "2g.20gb": 1, "1g.20gb": 1}


def test_placement_failure_within_budgets():
    # With the catalog's geometry every multiset inside the count and slice budgets is placeable (checked
    # exhaustively in test_mig_property.py), so exercise the placement check with a hypothetical table in
    # which 3g may only start at slice 0.
    base = gpu_catalog.lookup("a100-sxm4-80gb")
    odd = base._replace(profiles=tuple(p._replace(starts=(0,)) if p.name == "3g.40gb" else p for p in base.profiles))
    e = _err(odd, {"3g.40gb": 2})
    assert str(e) == (
        "{3g.40gb: 2} fits the slice budgets of a100-sxm4-80gb (NVIDIA A100-SXM4-80GB) but has no valid placement: "
        "instances must start at allowed memory slices (3g.40gb at 0) without overlapping. Nearest layouts that fit: "
        "{3g.40gb: 1, 2g.20gb: 1, 1g.20gb: 1}; {7g.80gb: 1}; {3g.40gb: 1, 2g.20gb: 1, 1g.10gb: 1}."
    )


def test_driver_gates():
    e = _err("a100-sxm4-40gb", {"1g.10gb": 2}, driver_version="520.61.05")
    assert str(e) == (
        "MIG profile 1g.10gb on a100-sxm4-40gb (NVIDIA A100-SXM4-40GB) needs NVIDIA driver R525 or later; the driver is "
        "R520. Nearest layouts that fit: {1g.5gb: 2}; {3g.20gb: 1}; {2g.10gb: 1, 1g.5gb: 2}."
    )
    e = _err("a100-sxm4-40gb", {"4g.20gb": 1, "3g.20gb": 1}, driver_version="470.82.01")
    assert str(e).startswith(
        "4g.20gb together with 3g.20gb on a100-sxm4-40gb (NVIDIA A100-SXM4-40GB) needs NVIDIA driver R510 or later; "
        "the driver is R470."
    )
    assert {"4g.20gb": 1, "3g.20gb": 1} not in e.suggestions
    e = _err("a100-sxm4-80gb", {"1g.10gb+me": 1}, driver_version="460.106.00")
    assert str(e).startswith("MIG profile 1g.10gb+me on a100-sxm4-80gb (NVIDIA A100-SXM4-80GB) needs NVIDIA driver R470")
    assert plan_layout("a100-sxm4-40gb", {"4g.20gb": 1, "3g.20gb": 1}, driver_version="R510")["placements"] == [
        ["4g.20gb@0", "3g.20gb@4"]
    ]
    e = _err("a30", {"2g.12gb+me": 1}, driver_version="515.65.01")
    assert "needs NVIDIA driver R525 or later; the driver is R515." in str(e)


@pytest.mark.parametrize("bad", ["latest", "5.1", True, "R5x5"])
def test_bad_driver_version(bad):
    e = _err("a30", "all-balanced", driver_version=bad)
    assert str(e) == "driver_version %r is not a driver version such as 535.154.05 or R535." % (bad,)


def test_layout_shape_errors():
    assert str(_err("a30", ["all-balanced"], gpu_count=2)) == (
        "The layout lists 1 GPU(s) but the node has gpu_count=2; give one entry per GPU index (a {profile: count} map, "
        "a preset name, or 'disabled')."
    )
    assert str(_err("a30", {"1g.6gb": -1})) == "Count for 1g.6gb must be a non-negative integer, got -1."
    assert str(_err("a30", {"1g.6gb": "two"})) == "Count for 1g.6gb must be a non-negative integer, got 'two'."
    assert str(_err("a30", 7)) == (
        "A MIG layout must be a preset name, a {profile: count} map or a list of those per GPU; got int."
    )
    assert str(_err("a30", "all-balanced", gpu_count=0)) == "gpu_count must be a positive integer, got 0."
    assert str(_err("a30", [{"1g.6gb": 1}, {"4g.24gb": 2}], gpu_count=2)).startswith(
        "GPU 1: {4g.24gb: 2} asks for 2 x 4g.24gb, but at most 1 4g.24gb instance fits on one a30 (NVIDIA A30) GPU."
    )
    assert plan_layout("a30", {"1g.6gb": "2", "4g.24gb": 0})["layout"] == [{"1g.6gb": 2}]


def test_unknown_preset():
    e = _err("a100-sxm4-80gb", "all-1g.5gb")
    assert str(e) == (
        "Unknown MIG preset 'all-1g.5gb' for a100-sxm4-80gb (NVIDIA A100-SXM4-80GB); valid presets: all-disabled, "
        "all-enabled, all-balanced, all-1g.10gb, all-1g.10gb.me, all-1g.20gb, all-2g.20gb, all-3g.40gb, all-4g.40gb, "
        "all-7g.80gb. Did you mean 'all-1g.10gb'?"
    )


def test_unknown_model():
    e = _err("a100", "all-balanced")
    assert str(e).startswith("Unknown GPU model 'a100'.")


# ------------------------------------------------------------------------------------ the 19 / 12 / 37


def test_a100_40gb_19_maximal_placements_and_12_multisets():
    placements = mig.maximal_placements("a100-sxm4-40gb", A100_40_BASE)
    assert len(placements) == 19
    short = sorted(" + ".join("%s@%d" % (n.split(".")[0], s) for n, s in p) for p in placements)
    assert "4g@0 + 3g@4" in short and "7g@0" in short and "1g@0 + 1g@1 + 1g@2 + 1g@3 + 1g@4 + 1g@5 + 1g@6" in short
    multisets = mig.maximal_multisets("a100-sxm4-40gb", A100_40_BASE)
    assert len(multisets) == 12
    as_g = sorted(sorted(collections.Counter({n.split(".")[0]: c for n, c in m}).items()) for m in multisets)
    assert [("3g", 1), ("4g", 1)] in as_g and [("1g", 7)] in as_g and [("1g", 1), ("2g", 3)] in as_g
    placeable = [m for m in mig.placeable_multisets("a100-sxm4-40gb") if all(n in A100_40_BASE for n, _c in m)]
    assert len(placeable) == 37
    # before R510 the 4g+3g layout disappears: 18 of the 19
    pre510 = mig.maximal_multisets("a100-sxm4-40gb", A100_40_BASE, driver_version="470.57.02")
    assert (("3g.20gb", 1), ("4g.20gb", 1)) not in pre510


def test_every_preset_of_every_model_plans():
    for key in MIG_KEYS:
        for name in mig.presets(key):
            plan = plan_layout(key, name, gpu_count=2, driver_version="580.105.08")
            assert plan["config_name"] == name


def test_fits_matches_plan_layout_for_a30():
    m = gpu_catalog.lookup("a30")
    import itertools
    ranges = [range(p.max_count + 2) for p in m.profiles]
    for combo in itertools.product(*ranges):
        counts = dict((p.name, c) for p, c in zip(m.profiles, combo, strict=True) if c)
        try:
            plan_layout(m, counts or "all-enabled", driver_version="535.1")
            ok = True
        except MigLayoutError:
            ok = False
        assert ok == mig.fits(m, counts, "535.1"), counts
