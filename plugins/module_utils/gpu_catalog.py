# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
# Apache License 2.0 (see LICENSE), or at your option GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt), like every module file (see README, Licensing).
"""GPU model catalog: identity (PCI device IDs, product names, GFD labels) and MIG profile tables.

Pure data plus lookup helpers; no Ansible imports.  Every entry records where its facts come from
(``source``) and which of them are assumptions rather than something read upstream (``assumed``).
The research notes behind it are ``research/mig-profiles.md`` and ``research/upstream.md`` (section 2).

Source keys used in ``source`` strings:

* ``MIG-UG``    NVIDIA MIG user guide, *Supported MIG Profiles* / *Supported GPUs* pages.
* ``OP-CM``     GPU Operator v26.7.0 ``default-mig-parted-config`` ConfigMap (device filters, counts).
* ``HW-XML``    real ``nvidia-smi -q -x`` captures (product name, PCI ID, memory).
* ``PCI``       PCI ID repository (pci.ids) device names.
* ``3P``        third-party captures or tables (``-lgip`` output, PCI-ID-to-name tables).

Use :func:`lookup` to resolve a catalog key, a PCI device ID or a product name to a :class:`GpuModel`.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib
import re
from collections import namedtuple

# --------------------------------------------------------------------------------------------------
# Data types
# --------------------------------------------------------------------------------------------------

_MigProfileBase = namedtuple(
    "MigProfile",
    [
        "name",  # GPU-instance profile name as nvidia-smi prints it, e.g. "1g.10gb+me"
        "compute_slices",  # the G in <G>g
        "memory_slices",  # memory slices occupied (placement size)
        "max_count",  # "Instances Total" of nvidia-smi mig -lgip
        "starts",  # allowed start memory slices (tuple of int)
        "profile_id",  # nvidia-smi mig -cgi ID, or None when not documented for this model
        "memory_gb",  # the <MEM> in <MEM>gb (nominal, from the name)
        "min_driver",  # minimum driver branch (int, e.g. 525) or None
        "sm_count",  # streaming multiprocessors per instance when known from -lgip captures, else None
        "media",  # attribute suffix: "", "+me", "-me", "+me.all", "+gfx"
    ],
)


class MigProfile(_MigProfileBase):
    """One GPU-instance profile of a MIG-capable model (immutable)."""

    __slots__ = ()

    @property
    def config_name(self):
        """The mig-parted / GPU Operator preset name for this profile at its max count."""
        return "all-" + self.name.replace("+", ".")

    @property
    def resource_name(self):
        """Kubernetes extended resource under the device plugin's ``mixed`` MIG strategy.

        The device plugin cannot use ``+`` in a resource name and turns it into ``.``
        (``1g.10gb+me`` is advertised as ``nvidia.com/mig-1g.10gb.me``); ``-me`` stays.
        """
        return "nvidia.com/mig-" + self.name.replace("+", ".")

    @property
    def media_exclusive(self):
        """True for profiles that take the GPU's media engines (``+me``, ``+me.all``): one per GPU."""
        return self.media in ("+me", "+me.all")

    def to_dict(self):
        d = dict(self._asdict())
        d["starts"] = list(self.starts)
        return d


_GpuModelBase = namedtuple(
    "GpuModel",
    [
        "key",  # catalog key, lowercase hyphenated
        "name",  # product name as nvidia-smi / NVML reports it (product_name)
        "architecture",  # product_architecture as nvidia-smi reports it
        "memory_mib",  # total framebuffer MiB (fb_memory_usage/total where a capture exists)
        "pci_device_ids",  # tuple of "0xDDDD10DE" strings (upper-case hex)
        "gfd_product",  # value of the nvidia.com/gpu.product label written by GPU feature discovery
        "mig_capable",  # bool
        "compute_capability",  # "8.0" etc.
        "profiles",  # tuple of MigProfile (empty when not MIG-capable)
        "compute_slice_count",  # 7 or 4 (0 when not MIG-capable)
        "memory_slice_count",  # 8 or 4 (0 when not MIG-capable)
        "balanced",  # tuple of (profile name, count): the operator's all-balanced entry
        "aliases",  # other product-name spellings seen in the wild
        "source",  # where the facts come from
        "assumed",  # tuple of human-readable notes on what is assumed, not read upstream
    ],
)


class GpuModel(_GpuModelBase):
    """A GPU model of the catalog (immutable)."""

    __slots__ = ()

    @property
    def profile_names(self):
        return tuple(p.name for p in self.profiles)

    @property
    def compute_slices(self):
        """Alias of compute_slice_count (7, 4, or 0 without MIG)."""
        return self.compute_slice_count

    @property
    def memory_slices(self):
        """Alias of memory_slice_count (8, 4, or 0 without MIG)."""
        return self.memory_slice_count

    @property
    def is_assumed(self):
        """True when any fact of the entry is marked assumed."""
        return bool(self.assumed)

    def profile(self, name):
        """The MigProfile called ``name``, or None."""
        return _profile_map(self.profiles).get(name)

    def to_dict(self):
        d = dict(self._asdict())
        d["pci_device_ids"] = list(self.pci_device_ids)
        d["profiles"] = [p.to_dict() for p in self.profiles]
        d["balanced"] = dict(self.balanced)
        d["aliases"] = list(self.aliases)
        d["assumed"] = list(self.assumed)
        return d


_PROFILE_MAPS = {}


def _profile_map(profiles):
    """name -> MigProfile for a profile tuple, cached by identity (catalog tuples live for the process)."""
    entry = _PROFILE_MAPS.get(id(profiles))
    if entry is None or entry[0] is not profiles:
        if len(_PROFILE_MAPS) > 512:
            _PROFILE_MAPS.clear()
        entry = (profiles, dict((p.name, p) for p in profiles))
        _PROFILE_MAPS[id(profiles)] = entry
    return entry[1]


class UnknownGpuModelError(ValueError):
    """The identifier names no model of the catalog."""

    def __init__(self, identifier, message=None):
        self.identifier = identifier
        if message is None:
            hint = ""
            if isinstance(identifier, str):
                close = difflib.get_close_matches(identifier.strip().lower(), keys(), n=3, cutoff=0.6)
                if close:
                    hint = " Did you mean %s?" % " or ".join(close)
            message = (
                "Unknown GPU model %r.%s Give a catalog key (%s), a PCI device ID such as 0x20B2 or 0x20B210DE, "
                "or a product name such as 'NVIDIA A100-SXM4-80GB'." % (identifier, hint, ", ".join(keys()))
            )
        super(UnknownGpuModelError, self).__init__(message)


# --------------------------------------------------------------------------------------------------
# Profile geometry builders
# --------------------------------------------------------------------------------------------------

_ME_GATE_AMPERE = 470  # [MIG-UG]: 1g.5gb+me and 1g.6gb+me need R470+

# 7 compute / 8 memory slice parts.  Placement table: [MIG-UG] Getting Started -lgipp (A100); for
# Hopper and Blackwell parts the same table is assumed (research/mig-profiles.md, rule 2).
_SEVEN_GEOMETRY = {
    # class: (compute, memory slices, max, starts, cgi id)
    "1g": (1, 1, 7, (0, 1, 2, 3, 4, 5, 6), 19),
    "1g+me": (1, 1, 1, (0, 1, 2, 3, 4, 5, 6), 20),
    "1g2": (1, 2, 4, (0, 2, 4, 6), 15),
    "2g": (2, 2, 3, (0, 2, 4), 14),
    "3g": (3, 4, 2, (0, 4), 9),
    "4g": (4, 4, 1, (0,), 5),
    "7g": (7, 8, 1, (0,), 0),
}


def _seven_slice(mem1, mem2, mem4, mem8, me_gate=None, double_gate=None, sms=None):
    """Profiles of a 7-slice part from its memory sizes (GB) per memory-slice width.

    ``sms``: SM counts per class (dict) when known from an -lgip capture.
    """
    sms = sms or {}
    rows = [
        ("%dg.%dgb" % (1, mem1), "1g", "", None),
        ("%dg.%dgb+me" % (1, mem1), "1g+me", "+me", me_gate),
        ("%dg.%dgb" % (1, mem2), "1g2", "", double_gate),
        ("%dg.%dgb" % (2, mem2), "2g", "", None),
        ("%dg.%dgb" % (3, mem4), "3g", "", None),
        ("%dg.%dgb" % (4, mem4), "4g", "", None),
        ("%dg.%dgb" % (7, mem8), "7g", "", None),
    ]
    out = []
    for name, cls, media, gate in rows:
        c, m, mx, starts, pid = _SEVEN_GEOMETRY[cls]
        gb = int(name.split(".")[1].split("gb")[0])
        out.append(MigProfile(name, c, m, mx, starts, pid, gb, gate, sms.get(cls), media))
    return tuple(out)


def _balanced7(mem1, mem2, mem4):
    return (("1g.%dgb" % mem1, 2), ("2g.%dgb" % mem2, 1), ("3g.%dgb" % mem4, 1))


# SM counts per instance, from -lgip captures: A100-40GB [3P-LGIP]; H100 80GB (stackhpc capture in
# shared/fixtures/nvidia-smi/lgip).  GA100 parts have 14 SMs per compute slice.
_GA100_SMS = {"1g": 14, "1g+me": 14, "1g2": 14, "2g": 28, "3g": 42, "4g": 56, "7g": 98}
_H100_80_SMS = {"1g": 16, "1g+me": 16, "1g2": 26, "2g": 32, "3g": 60, "4g": 64, "7g": 132}

_A100_40_PROFILES = _seven_slice(5, 10, 20, 40, me_gate=_ME_GATE_AMPERE, double_gate=525, sms=_GA100_SMS)
_A100_80_PROFILES = _seven_slice(10, 20, 40, 80, me_gate=_ME_GATE_AMPERE, sms=_GA100_SMS)
_H100_80_PROFILES = _seven_slice(10, 20, 40, 80, sms=_H100_80_SMS)
_H100_94_PROFILES = _seven_slice(12, 24, 47, 94)
_H100_96_PROFILES = _seven_slice(12, 24, 48, 96)
_GH200_144_PROFILES = _seven_slice(18, 36, 72, 144)
_H200_PROFILES = _seven_slice(18, 35, 71, 141)
_B200_PROFILES = _seven_slice(23, 45, 90, 180)
_GB200_PROFILES = _seven_slice(23, 47, 93, 186)
_B300_PROFILES = _seven_slice(34, 67, 135, 269)
_GB300_PROFILES = _seven_slice(35, 70, 139, 278)

# A30: 4 compute / 4 memory slices.  Table [MIG-UG]; placements from go-nvml mock only (assumed).
_A30_PROFILES = (
    MigProfile("1g.6gb", 1, 1, 4, (0, 1, 2, 3), None, 6, None, 14, ""),
    MigProfile("1g.6gb+me", 1, 1, 1, (0, 1, 2, 3), None, 6, _ME_GATE_AMPERE, 14, "+me"),
    MigProfile("2g.12gb", 2, 2, 2, (0, 2), None, 12, None, 28, ""),
    MigProfile("2g.12gb+me", 2, 2, 1, (0, 2), None, 12, 525, 28, "+me"),
    MigProfile("4g.24gb", 4, 4, 1, (0,), None, 24, None, 56, ""),
)

# RTX PRO 6000 Blackwell: 4 compute / 4 memory slices.  Table [MIG-UG]; placements assumed (A30-like).
_RTX_PRO_6000_PROFILES = (
    MigProfile("1g.24gb", 1, 1, 4, (0, 1, 2, 3), None, 24, None, None, ""),
    MigProfile("1g.24gb+me", 1, 1, 1, (0, 1, 2, 3), None, 24, None, None, "+me"),
    MigProfile("1g.24gb+gfx", 1, 1, 4, (0, 1, 2, 3), None, 24, None, None, "+gfx"),
    MigProfile("1g.24gb+me.all", 1, 1, 1, (0, 1, 2, 3), None, 24, None, None, "+me.all"),
    MigProfile("1g.24gb-me", 1, 1, 4, (0, 1, 2, 3), None, 24, None, None, "-me"),
    MigProfile("2g.48gb", 2, 2, 2, (0, 2), None, 48, None, None, ""),
    MigProfile("2g.48gb+gfx", 2, 2, 2, (0, 2), None, 48, None, None, "+gfx"),
    MigProfile("2g.48gb+me.all", 2, 2, 1, (0, 2), None, 48, None, None, "+me.all"),
    MigProfile("2g.48gb-me", 2, 2, 2, (0, 2), None, 48, None, None, "-me"),
    MigProfile("4g.96gb", 4, 4, 1, (0,), None, 96, None, None, ""),
    MigProfile("4g.96gb+gfx", 4, 4, 1, (0,), None, 96, None, None, "+gfx"),
)

_PLACEMENT_A100 = "placements: [MIG-UG] nvidia-smi mig -lgipp example on A100"
_PLACEMENT_ASSUMED = "placement table (start slots) assumed identical to A100; not read upstream for this model"
_PLACEMENT_H100 = "placement table matches third-party -lgipp captures only (not confirmed upstream)"
_NAME_ASSUMED = "product name string not confirmed by a capture (third-party PCI-ID-to-name table)"
_OPCM_ONLY = "profile set and counts from the GPU Operator's default ConfigMap only (no MIG user guide table)"


def _pci(*ids):
    return tuple("0x%s10DE" % i.upper() for i in ids)


def _mig(key, name, arch, mem, pci, gfd, cc, profiles, balanced, source, assumed, aliases=(), slices=(7, 8)):
    return GpuModel(
        key, name, arch, mem, _pci(*pci), gfd, True, cc, profiles, slices[0], slices[1], balanced, tuple(aliases), source, tuple(assumed)
    )


def _plain(key, name, arch, mem, pci, gfd, cc, source, assumed=(), aliases=()):
    return GpuModel(key, name, arch, mem, _pci(*pci), gfd, False, cc, (), 0, 0, (), tuple(aliases), source, tuple(assumed))


_MODELS = (
    # ------------------------------------------------------------------ Ampere GA100 (MIG)
    _mig(
        "a100-sxm4-40gb", "NVIDIA A100-SXM4-40GB", "Ampere", 40960, ["20B0"], "NVIDIA-A100-SXM4-40GB", "8.0",
        _A100_40_PROFILES, _balanced7(5, 10, 20),
        "MIG-UG Table 6; OP-CM device-filter 0x20B010DE; HW-XML name and memory; " + _PLACEMENT_A100, (),
        aliases=["A100-SXM4-40GB"],
    ),
    _mig(
        "a100-pcie-40gb", "NVIDIA A100-PCIE-40GB", "Ampere", 40960, ["20B1", "20F1"], "NVIDIA-A100-PCIE-40GB", "8.0",
        _A100_40_PROFILES, _balanced7(5, 10, 20),
        "MIG-UG Table 6; OP-CM device-filter 0x20B110DE/0x20F110DE; PCI; " + _PLACEMENT_A100, (_NAME_ASSUMED,),
        aliases=["A100-PCIE-40GB"],
    ),
    _mig(
        "a100-sxm4-80gb", "NVIDIA A100-SXM4-80GB", "Ampere", 81920, ["20B2"], "NVIDIA-A100-SXM4-80GB", "8.0",
        _A100_80_PROFILES, _balanced7(10, 20, 40),
        "MIG-UG A100 names; OP-CM counts (device-filter 0x20B210DE); HW-XML name and memory (telegraf capture)",
        ("placement table assumed identical to A100-40GB (go-nvml mock uses the same table)",),
        aliases=["A100-SXM4-80GB"],
    ),
    _mig(
        "a100-pcie-80gb", "NVIDIA A100 80GB PCIe", "Ampere", 81920, ["20B5"], "NVIDIA-A100-80GB-PCIe", "8.0",
        _A100_80_PROFILES, _balanced7(10, 20, 40),
        "MIG-UG A100 names; OP-CM counts (device-filter 0x20B510DE); PCI",
        (_NAME_ASSUMED, "placement table assumed identical to A100-40GB", "memory_mib nominal"),
        aliases=["A100-PCIE-80GB"],
    ),
    _mig(
        "a800-pcie-40gb", "NVIDIA A800 40GB PCIe", "Ampere", 40960, ["20F6"], "NVIDIA-A800-40GB-PCIe", "8.0",
        _A100_40_PROFILES, _balanced7(5, 10, 20),
        "OP-CM (device-filter 0x20F610DE shares the A100-40GB entries); PCI",
        ("product name string not confirmed", "not in the MIG user guide's supported-GPU table", "memory_mib nominal"),
    ),
    _mig(
        "a800-sxm4-80gb", "NVIDIA A800-SXM4-80GB", "Ampere", 81920, ["20F3"], "NVIDIA-A800-SXM4-80GB", "8.0",
        _A100_80_PROFILES, _balanced7(10, 20, 40),
        "OP-CM (device-filter 0x20F310DE shares the A100-80GB entries); PCI",
        ("product name string not confirmed", "not in the MIG user guide's supported-GPU table", "memory_mib nominal"),
    ),
    _mig(
        "a800-pcie-80gb", "NVIDIA A800 80GB PCIe", "Ampere", 81920, ["20F5"], "NVIDIA-A800-80GB-PCIe", "8.0",
        _A100_80_PROFILES, _balanced7(10, 20, 40),
        "OP-CM (device-filter 0x20F510DE shares the A100-80GB entries); PCI",
        ("product name string not confirmed", "not in the MIG user guide's supported-GPU table", "memory_mib nominal"),
    ),
    _mig(
        "a30", "NVIDIA A30", "Ampere", 24576, ["20B7"], "NVIDIA-A30", "8.0",
        _A30_PROFILES, (("1g.6gb", 2), ("2g.12gb", 1)),
        "MIG-UG A30 table; OP-CM device-filter 0x20B710DE; mig-parted hard-coded A30 profiles; name from cloud-native-docs",
        ("placements from the go-nvml mock only", "memory_mib nominal"),
        slices=(4, 4),
    ),
    # ------------------------------------------------------------------ Hopper GH100 (MIG)
    _mig(
        "h100-sxm5-80gb", "NVIDIA H100 80GB HBM3", "Hopper", 81559, ["2330"], "NVIDIA-H100-80GB-HBM3", "9.0",
        _H100_80_PROFILES, _balanced7(10, 20, 40),
        "MIG-UG Table 7; OP-CM device-filter 0x233010DE; HW-XML name and memory; GFD label from cloud-native-docs; "
        + _PLACEMENT_H100,
        ("placement table from third-party -lgipp captures only",),
        aliases=["H100-SXM5-80GB"],
    ),
    _mig(
        "h100-pcie-80gb", "NVIDIA H100 PCIe", "Hopper", 81559, ["2331"], "NVIDIA-H100-PCIe", "9.0",
        _H100_80_PROFILES, _balanced7(10, 20, 40),
        "MIG-UG Table 7; OP-CM device-filter 0x233110DE; PCI",
        (_NAME_ASSUMED, "placement table from third-party -lgipp captures only", "memory_mib assumed equal to SXM5"),
        aliases=["H100-PCIE-80GB"],
    ),
    _mig(
        "h800-pcie-80gb", "NVIDIA H800 PCIe", "Hopper", 81559, ["2322"], "NVIDIA-H800-PCIe", "9.0",
        _H100_80_PROFILES, _balanced7(10, 20, 40),
        "OP-CM (device-filter 0x232210DE shares the H100-80GB entries); PCI",
        (_NAME_ASSUMED, "not in the MIG user guide's supported-GPU table", "memory_mib assumed"),
    ),
    _mig(
        "h800-sxm5-80gb", "NVIDIA H800 80GB HBM3", "Hopper", 81559, ["2324"], "NVIDIA-H800-80GB-HBM3", "9.0",
        _H100_80_PROFILES, _balanced7(10, 20, 40),
        "OP-CM (device-filter 0x232410DE shares the H100-80GB entries); PCI",
        (_NAME_ASSUMED, "not in the MIG user guide's supported-GPU table", "memory_mib assumed"),
    ),
    _mig(
        "h100-nvl-94gb", "NVIDIA H100 NVL", "Hopper", 95830, ["2321"], "NVIDIA-H100-NVL", "9.0",
        _H100_94_PROFILES, _balanced7(12, 24, 47),
        "MIG-UG H100 94GB table; OP-CM all-balanced device-filter 0x232110DE; 3P -lgip (H100 NVL)",
        (_NAME_ASSUMED, "placement table from third-party -lgipp captures only", "memory_mib nominal"),
    ),
    _mig(
        "h800-nvl-94gb", "NVIDIA H800 NVL", "Hopper", 95830, ["233A"], "NVIDIA-H800-NVL", "9.0",
        _H100_94_PROFILES, _balanced7(12, 24, 47),
        "OP-CM all-balanced device-filter 0x233A10DE",
        ("product name string not confirmed", _PLACEMENT_ASSUMED, "memory_mib nominal"),
    ),
    _mig(
        "h100-96gb", "NVIDIA H100 96GB", "Hopper", 98304, ["233D"], "NVIDIA-H100-96GB", "9.0",
        _H100_96_PROFILES, _balanced7(12, 24, 48),
        "MIG-UG H100 96GB table; OP-CM all-balanced device-filter 0x233D10DE",
        ("product name string not confirmed", _PLACEMENT_ASSUMED, "memory_mib nominal"),
    ),
    _mig(
        "gh200-96gb", "NVIDIA GH200 480GB", "Hopper", 98304, ["2342"], "NVIDIA-GH200-480GB", "9.0",
        _H100_96_PROFILES, _balanced7(12, 24, 48),
        "MIG-UG H100 96GB (H100 on GH200) table; OP-CM all-balanced device-filter 0x234210DE",
        ("product name string not confirmed", _PLACEMENT_ASSUMED, "memory_mib nominal"),
    ),
    _mig(
        "h20", "NVIDIA H20", "Hopper", 98304, ["2329"], "NVIDIA-H20", "9.0",
        _H100_96_PROFILES, _balanced7(12, 24, 48),
        "MIG-UG supported GPUs (H20, 96GB); OP-CM all-balanced device-filter 0x232910DE",
        (_NAME_ASSUMED, _PLACEMENT_ASSUMED, "memory_mib nominal"),
    ),
    _mig(
        "pg506-96gb", "NVIDIA PG506-96GB", "Ampere", 98304, ["20B6"], "NVIDIA-PG506-96GB", "8.0",
        _H100_96_PROFILES, _balanced7(12, 24, 48),
        "OP-CM all-balanced device-filter 0x20B610DE (shares the H100-96GB entry); PCI PG506-232",
        ("product name string not confirmed", _PLACEMENT_ASSUMED, "memory_mib nominal", "architecture assumed Ampere"),
    ),
    _mig(
        "gh200-144gb", "NVIDIA GH200 144G HBM3e", "Hopper", 147456, ["2348"], "NVIDIA-GH200-144G-HBM3e", "9.0",
        _GH200_144_PROFILES, _balanced7(18, 36, 72),
        "OP-CM all-balanced device-filter 0x234810DE and unfiltered GH200 144G entries",
        ("product name string not confirmed", _OPCM_ONLY, _PLACEMENT_ASSUMED, "memory_mib nominal"),
    ),
    _mig(
        "h200-sxm5-141gb", "NVIDIA H200", "Hopper", 143771, ["2335"], "NVIDIA-H200", "9.0",
        _H200_PROFILES, _balanced7(18, 35, 71),
        "MIG-UG Table 8; OP-CM all-balanced device-filter 0x233510DE",
        (_NAME_ASSUMED, _PLACEMENT_ASSUMED, "memory_mib nominal"),
    ),
    _mig(
        "h200-nvl-141gb", "NVIDIA H200 NVL", "Hopper", 143771, ["233B"], "NVIDIA-H200-NVL", "9.0",
        _H200_PROFILES, _balanced7(18, 35, 71),
        "MIG-UG Table 8; OP-CM all-balanced device-filter 0x233B10DE",
        (_NAME_ASSUMED, _PLACEMENT_ASSUMED, "memory_mib nominal"),
    ),
    # ------------------------------------------------------------------ Blackwell (MIG)
    _mig(
        "b200", "NVIDIA B200", "Blackwell", 183359, ["2901"], "NVIDIA-B200", "10.0",
        _B200_PROFILES, _balanced7(23, 45, 90),
        "MIG-UG Table 9; OP-CM all-balanced device-filter 0x290110DE; HW-XML name and memory",
        (_PLACEMENT_ASSUMED,),
    ),
    _mig(
        "gb200", "NVIDIA GB200", "Blackwell", 189471, ["2941"], "NVIDIA-GB200", "10.0",
        _GB200_PROFILES, _balanced7(23, 47, 93),
        "OP-CM all-balanced device-filter 0x294110DE and unfiltered GB200 entries; HW-XML name and memory",
        (_OPCM_ONLY, "profile set inferred (research/mig-profiles.md: inferred, not confirmed)", _PLACEMENT_ASSUMED),
    ),
    _mig(
        "b300", "NVIDIA B300", "Blackwell", 275456, ["3182"], "NVIDIA-B300", "10.3",
        _B300_PROFILES, _balanced7(34, 67, 135),
        "OP-CM all-balanced device-filter 0x318210DE and B300 entries",
        ("product name string not confirmed", _OPCM_ONLY, _PLACEMENT_ASSUMED, "memory_mib nominal",
         "compute capability assumed"),
    ),
    _mig(
        "gb300", "NVIDIA GB300", "Blackwell", 284208, ["31C2"], "NVIDIA-GB300", "10.3",
        _GB300_PROFILES, _balanced7(35, 70, 139),
        "OP-CM all-balanced device-filter 0x31C210DE and GB300 entries; HW-XML name and memory",
        (_OPCM_ONLY, _PLACEMENT_ASSUMED, "compute capability assumed"),
    ),
    _mig(
        "rtx-pro-6000-blackwell", "NVIDIA RTX PRO 6000 Blackwell Server Edition", "Blackwell", 97887, ["2BB5"],
        "NVIDIA-RTX-PRO-6000-Blackwell-Server-Edition", "12.0",
        _RTX_PRO_6000_PROFILES, (("1g.24gb", 2), ("2g.48gb", 1)),
        "MIG-UG RTX PRO 6000 table; OP-CM all-balanced device-filter 0x2BB510DE",
        ("product name string not confirmed", "placement table assumed (4-slice, like A30)", "memory_mib nominal"),
        slices=(4, 4),
    ),
    # ------------------------------------------------------------------ non-MIG data-centre GPUs
    _plain("t4", "Tesla T4", "Turing", 15360, ["1EB8"], "Tesla-T4", "7.5",
           "HW-XML (telegraf tesla-t4 capture: name, PCI ID, memory); GFD label example in upstream docs"),
    _plain("v100-sxm2-16gb", "Tesla V100-SXM2-16GB", "Volta", 16384, ["1DB1"], "Tesla-V100-SXM2-16GB", "7.0",
           "PCI; third-party PCI-ID-to-name table", (_NAME_ASSUMED, "memory_mib nominal")),
    _plain("v100-sxm2-32gb", "Tesla V100-SXM2-32GB", "Volta", 32768, ["1DB5"], "Tesla-V100-SXM2-32GB", "7.0",
           "PCI; third-party PCI-ID-to-name table", (_NAME_ASSUMED, "memory_mib nominal")),
    _plain("v100-pcie-16gb", "Tesla V100-PCIE-16GB", "Volta", 16384, ["1DB4"], "Tesla-V100-PCIE-16GB", "7.0",
           "PCI; third-party PCI-ID-to-name table", (_NAME_ASSUMED, "memory_mib nominal")),
    _plain("v100-pcie-32gb", "Tesla V100-PCIE-32GB", "Volta", 32768, ["1DB6"], "Tesla-V100-PCIE-32GB", "7.0",
           "PCI; third-party PCI-ID-to-name table", (_NAME_ASSUMED, "memory_mib nominal")),
    _plain("v100s-pcie-32gb", "Tesla V100S-PCIE-32GB", "Volta", 32510, ["1DF6"], "Tesla-V100S-PCIE-32GB", "7.0",
           "HW-XML (datakit 8-GPU capture: name, PCI ID, memory)"),
    _plain("a2", "NVIDIA A2", "Ampere", 15356, ["25B6"], "NVIDIA-A2", "8.6",
           "3P -lgip fixture names NVIDIA A2 as non-MIG", ("PCI device ID not confirmed", "memory_mib nominal")),
    _plain("a10", "NVIDIA A10", "Ampere", 23028, ["2236"], "NVIDIA-A10", "8.6",
           "PCI; third-party PCI-ID-to-name table", (_NAME_ASSUMED, "memory_mib nominal")),
    _plain("a10g", "NVIDIA A10G", "Ampere", 23028, ["2237"], "NVIDIA-A10G", "8.6",
           "PCI; third-party PCI-ID-to-name table", (_NAME_ASSUMED, "memory_mib nominal")),
    _plain("a40", "NVIDIA A40", "Ampere", 46068, ["2235"], "NVIDIA-A40", "8.6",
           "PCI; third-party PCI-ID-to-name table", (_NAME_ASSUMED, "memory_mib nominal")),
    _plain("rtx-a6000", "NVIDIA RTX A6000", "Ampere", 49140, ["2230"], "NVIDIA-RTX-A6000", "8.6",
           "PCI; third-party PCI-ID-to-name table", (_NAME_ASSUMED, "memory_mib nominal")),
    _plain("l4", "NVIDIA L4", "Ada Lovelace", 23034, ["27B8"], "NVIDIA-L4", "8.9",
           "PCI; third-party PCI-ID-to-name table", (_NAME_ASSUMED, "memory_mib nominal")),
    _plain("l40", "NVIDIA L40", "Ada Lovelace", 46068, ["26B5"], "NVIDIA-L40", "8.9",
           "PCI; third-party PCI-ID-to-name table", (_NAME_ASSUMED, "memory_mib nominal")),
    _plain("l40s", "NVIDIA L40S", "Ada Lovelace", 46068, ["26B9"], "NVIDIA-L40S", "8.9",
           "HW-XML (k8s-test-infra capture: name, PCI ID, memory); CSV capture compute_cap 8.9"),
    _plain("rtx-6000-ada", "NVIDIA RTX 6000 Ada Generation", "Ada Lovelace", 49140, ["26B1"],
           "NVIDIA-RTX-6000-Ada-Generation", "8.9",
           "PCI", ("product name string and PCI device ID not confirmed by a capture", "memory_mib nominal")),
)

_BY_KEY = dict((m.key, m) for m in _MODELS)
_BY_PCI = {}
for _m in _MODELS:
    for _pid in _m.pci_device_ids:
        _BY_PCI[_pid] = _m


def _norm_name(text):
    """Normalise a product name / GFD label: upper case, NVIDIA prefix dropped, runs of space/hyphen -> '-'."""
    s = text.strip().upper()
    s = re.sub(r"[\s_-]+", "-", s)
    # GFD appends -MIG-<profile> (single strategy) and -SHARED (sharing); drop them.
    s = re.sub(r"-SHARED$", "", s)
    s = re.sub(r"-MIG-\d+G\.\d+GB.*$", "", s)
    if s.startswith("NVIDIA-"):
        s = s[len("NVIDIA-"):]
    return s


_BY_NAME = {}
for _m in _MODELS:
    for _n in (_m.name, _m.gfd_product) + _m.aliases:
        _BY_NAME.setdefault(_norm_name(_n), _m)

_PCI_RE = re.compile(r"^(?:0x)?([0-9a-f]{4})(10de)?$", re.IGNORECASE)
_PCI_PAIR_RE = re.compile(r"^10de:([0-9a-f]{4})$", re.IGNORECASE)


def keys():
    """All catalog keys, in catalog order."""
    return [m.key for m in _MODELS]


def models():
    """All catalog entries."""
    return list(_MODELS)


def mig_capable_keys():
    return [m.key for m in _MODELS if m.mig_capable]


def normalize_pci_device_id(value):
    """Return ``0xDDDD10DE`` for ``0x20b2``, ``20B2``, ``0x20B210DE``, ``20B210DE``, ``10de:20b2`` or an int.

    Returns None when the value is not a PCI device ID of NVIDIA (vendor 10DE).
    """
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = "%x" % value
    if not isinstance(value, str):
        return None
    v = value.strip()
    m = _PCI_RE.match(v)
    if m:
        if m.group(2) is None and not v.lower().startswith("0x") and not re.search(r"\d", v):
            return None
        return "0x%s10DE" % m.group(1).upper()
    m = _PCI_PAIR_RE.match(v)
    if m:
        return "0x%s10DE" % m.group(1).upper()
    # full 8-digit form with another vendor, or garbage
    return None


def by_pci_device_id(value):
    """The catalog model for a PCI device ID, or None."""
    pid = normalize_pci_device_id(value)
    return _BY_PCI.get(pid) if pid else None


def by_name(value):
    """The catalog model for a product name or GFD ``nvidia.com/gpu.product`` label value, or None."""
    if not isinstance(value, str) or not value.strip():
        return None
    return _BY_NAME.get(_norm_name(value))


def lookup(identifier):
    """Resolve a catalog key, PCI device ID, product name, GFD label, GpuModel or gpu_facts GPU dict.

    Raises UnknownGpuModelError (a ValueError) listing the valid keys.
    """
    if isinstance(identifier, GpuModel):
        return identifier
    if isinstance(identifier, dict):
        for field, resolver in (("model", _BY_KEY.get), ("pci_device_id", by_pci_device_id), ("name", by_name),
                                ("product_name", by_name)):
            val = identifier.get(field)
            if isinstance(val, str) and val:
                found = resolver(val.strip().lower() if field == "model" else val)
                if found is not None:
                    return found
        raise UnknownGpuModelError(identifier)
    if isinstance(identifier, str):
        text = identifier.strip()
        found = _BY_KEY.get(text.lower())
        if found is None:
            found = by_pci_device_id(text)
        if found is None:
            found = by_name(text)
        if found is not None:
            return found
    elif isinstance(identifier, int) and not isinstance(identifier, bool):
        found = by_pci_device_id(identifier)
        if found is not None:
            return found
    raise UnknownGpuModelError(identifier)


# --------------------------------------------------------------------------------------------------
# Overriding the catalog with what the hardware says (nvidia-smi mig -lgip)
# --------------------------------------------------------------------------------------------------

_PROFILE_NAME_RE = re.compile(r"^(\d+)g\.(\d+)gb(\+me\.all|\+me|-me|\+gfx)?$")


def parse_profile_name(name):
    """Split ``3g.40gb+me`` into (3, 40, '+me'); None when the string is not a GI profile name."""
    m = _PROFILE_NAME_RE.match(name or "")
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), m.group(3) or ""


def with_hardware_profiles(model, lgip_profiles):
    """A copy of ``model`` whose profile set and max counts come from ``nvidia-smi mig -lgip``.

    ``lgip_profiles`` is a list of dicts with at least ``name`` and ``total`` (and optionally
    ``profile_id`` and ``sm``), as returned by ``nvidia_smi.parse_lgip`` for one GPU.  Profiles the
    hardware does not list are dropped; profiles it lists that the catalog lacks are added with the
    geometry of their class (by -cgi ID when given, else by compute slices and memory size).
    """
    model = lookup(model)
    if not lgip_profiles:
        return model
    known = dict((p.name, p) for p in model.profiles)
    new = []
    for row in lgip_profiles:
        name = row.get("name")
        if not name or name in [p.name for p in new]:
            continue
        total = row.get("total")
        base = known.get(name)
        if base is None:
            base = _geometry_for(model, name, row.get("profile_id"))
            if base is None:
                continue
        if isinstance(total, int) and total >= 0:
            base = base._replace(max_count=total)
        if row.get("profile_id") is not None:
            base = base._replace(profile_id=row["profile_id"])
        if row.get("sm") is not None:
            base = base._replace(sm_count=row["sm"])
        new.append(base)
    if not new:
        return model
    assumed = tuple(a for a in model.assumed if "profile set" not in a and "counts" not in a)
    return model._replace(
        profiles=tuple(new),
        source=model.source + "; profile set and counts overridden by nvidia-smi mig -lgip on the host",
        assumed=assumed,
    )


def _geometry_for(model, name, profile_id):
    parsed = parse_profile_name(name)
    if parsed is None:
        return None
    g, gb, media = parsed
    if model.compute_slice_count == 7:
        cls = {19: "1g", 20: "1g+me", 15: "1g2", 14: "2g", 9: "3g", 5: "4g", 0: "7g"}.get(profile_id)
        if cls is None:
            cls = {1: "1g", 2: "2g", 3: "3g", 4: "4g", 7: "7g"}.get(g)
            if cls == "1g":
                single = [p for p in model.profiles if p.compute_slices == 1 and p.memory_slices == 1]
                if single and gb > single[0].memory_gb * 1.5:
                    cls = "1g2"
        if cls is None:
            return None
        c, m, mx, starts, pid = _SEVEN_GEOMETRY[cls]
        return MigProfile(name, c, m, mx, starts, pid, gb, None, None, media)
    if model.compute_slice_count == 4:
        geo = {1: (1, (0, 1, 2, 3)), 2: (2, (0, 2)), 4: (4, (0,))}.get(g)
        if geo is None:
            return None
        return MigProfile(name, g, geo[0], 4 // geo[0], geo[1], profile_id, gb, None, None, media)
    return None
