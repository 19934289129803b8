# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
# Apache License 2.0 (see LICENSE), or at your option GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt), like every module file (see README, Licensing).
"""Parsers for nvidia-smi output and the GPU facts built from them (pure functions, no Ansible).

Inputs handled:

* ``nvidia-smi -q -x``: XML of every DTD generation seen in the wild (no DOCTYPE / R418 without
  ``mig_mode``; v11/v12 ``power_readings`` vs ``gpu_power_readings``; ``clocks_throttle_reasons`` vs
  ``clocks_event_reasons``; three ECC error layouts).  ``N/A``, ``[N/A]``, ``Unknown Error``,
  ``Not Supported`` and "Requested functionality has been deprecated" read as missing.
* ``nvidia-smi --query-gpu=... --format=csv[,noheader][,nounits]``: the fallback.
* ``nvidia-smi -L``: MIG device profile names and UUIDs (``-q -x`` never names MIG profiles).
* ``nvidia-smi mig -lgip``: what the hardware says each GPU's GI profiles and counts are.

``collect(run, nvidia_smi)`` runs the commands through a caller-supplied ``run(args) -> (rc, out, err)``
and returns the facts; failures raise :class:`NvidiaSmiError` with what the operator should do.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import xml.etree.ElementTree as ET

from ansible_collections.gpufleet.platform.plugins.module_utils import gpu_catalog

# Values nvidia-smi prints when a field has no value.  "Unknown Error" is also recorded as a health
# finding (it usually means NVML lost the GPU or the driver misbehaves).
_MISSING = frozenset(
    [
        "",
        "n/a",
        "[n/a]",
        "not supported",
        "[not supported]",
        "requested functionality has been deprecated",
        "[requested functionality has been deprecated]",
        "insufficient permissions",
        "[insufficient permissions]",
        "not available",
        "[not available]",
    ]
)
_UNKNOWN = frozenset(["unknown error", "[unknown error]", "gpu is lost", "[gpu is lost]"])

#: fields asked from --query-gpu in the CSV fallback (names from research/upstream.md 2.1 and the CSV captures)
QUERY_FIELDS = (
    "index",
    "uuid",
    "name",
    "pci.bus_id",
    "pci.device_id",
    "memory.total",
    "compute_cap",
    "driver_version",
    "mig.mode.current",
    "mig.mode.pending",
    "persistence_mode",
    "ecc.mode.current",
    "ecc.mode.pending",
    "ecc.errors.uncorrected.volatile.total",
    "ecc.errors.uncorrected.aggregate.total",
    "retired_pages.pending",
    "remapped_rows.pending",
    "remapped_rows.failure",
    "power.limit",
    "temperature.gpu",
)
#: fields every driver since R450 knows; used when an older driver rejects one of QUERY_FIELDS
MINIMAL_QUERY_FIELDS = ("index", "uuid", "name", "pci.bus_id", "pci.device_id", "memory.total", "driver_version")

#: failure kinds that mean "this host has no usable NVIDIA GPU": facts succeed with gpus: []
NO_GPU_KINDS = ("not_installed", "no_driver", "no_devices")


class NvidiaSmiError(Exception):
    """nvidia-smi failed in a way the operator has to fix; ``kind`` classifies it."""

    def __init__(self, message, kind="error", rc=None, output=None):
        super(NvidiaSmiError, self).__init__(message)
        self.message = message
        self.kind = kind
        self.rc = rc
        self.output = output


# --------------------------------------------------------------------------------------------------
# Failure classification
# --------------------------------------------------------------------------------------------------

_FAILURES = (
    # (kind, regex over stdout+stderr, message: what happened and what to do)
    (
        "version_mismatch",
        r"driver/library version mismatch",
        "nvidia-smi: NVML driver/library version mismatch: the loaded nvidia kernel module is not the version of "
        "the installed user-space driver (usually after a driver upgrade without reboot). Reboot the host, or "
        "unload and reload the nvidia kernel modules (rmmod nvidia_uvm nvidia_drm nvidia_modeset nvidia; modprobe nvidia).",
    ),
    (
        "no_driver",
        r"couldn't communicate with the nvidia driver|nvidia driver is not loaded|driver not loaded",
        "nvidia-smi could not communicate with the NVIDIA driver: no NVIDIA kernel driver is loaded on this host.",
    ),
    (
        "no_driver",
        r"nvml shared library (?:could not|couldn't) be found|libnvidia-ml\.so.*(?:cannot open|not found)",
        "nvidia-smi could not load libnvidia-ml.so: the NVIDIA user-space driver is not installed on this host.",
    ),
    ("no_devices", r"no devices were found", "nvidia-smi found no NVIDIA GPU on this host."),
    (
        "gpu_lost",
        r"gpu is lost|fallen off the bus|unable to determine the device handle",
        "nvidia-smi lost a GPU (it fell off the bus or NVML cannot get its handle): check 'dmesg' for Xid 79/48/119 "
        "errors, drain the node and reboot it; if it recurs, reseat or replace the GPU.",
    ),
    (
        "permission",
        r"insufficient permissions|permission denied|operation not permitted",
        "nvidia-smi lacks permission to query the GPUs: run the task with become: true, or give the user access "
        "to /dev/nvidia* (e.g. the video group).",
    ),
    (
        "nvml_init",
        r"failed to initialize nvml",
        "nvidia-smi failed to initialize NVML: check that the nvidia kernel modules are loaded (lsmod | grep nvidia), "
        "that /dev/nvidia* device nodes exist, and 'dmesg' for NVRM errors; reboot if the driver was just installed.",
    ),
)


def classify_failure(rc, stdout, stderr):
    """Return (kind, message) for a failed nvidia-smi run."""
    text = "%s\n%s" % (stdout or "", stderr or "")
    low = text.lower()
    for kind, pattern, message in _FAILURES:
        if re.search(pattern, low):
            return kind, message
    # nvidia-smi(1) RETURN VALUE: 9 = driver not loaded, 12 = NVML library not found, 6 = query unsuccessful,
    # 4 = insufficient permissions, 15 = GPU fell off the bus.
    by_rc = {9: "no_driver", 12: "no_driver", 4: "permission", 15: "gpu_lost"}
    if rc in by_rc:
        kind = by_rc[rc]
        return kind, [m for k, _p, m in _FAILURES if k == kind][0]
    detail = " ".join(text.split())[:400] or "no output"
    return "error", "nvidia-smi failed with exit code %s: %s. Run 'nvidia-smi' on the host to see the problem." % (rc, detail)


# --------------------------------------------------------------------------------------------------
# Scalar parsing
# --------------------------------------------------------------------------------------------------


def clean(value):
    """Strip; return None for N/A-style placeholders and for Unknown Error."""
    if value is None:
        return None
    v = value.strip()
    low = v.lower()
    if low in _MISSING or low in _UNKNOWN:
        return None
    return v


def is_unknown_error(value):
    return value is not None and value.strip().lower() in _UNKNOWN


_NUM_RE = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*([A-Za-z%/()\s]*)$")


def to_number(value, as_int=True):
    """``"81920 MiB"`` -> 81920, ``"500.00 W"`` -> 500.0, ``"27 C"`` -> 27; None for placeholders."""
    v = clean(value)
    if v is None:
        return None
    m = _NUM_RE.match(v)
    if not m:
        return None
    num = float(m.group(1))
    if as_int:
        return int(round(num))
    return num


def to_bool(value):
    """Enabled/Disabled, Yes/No, Active/Not Active -> bool; None for placeholders."""
    v = clean(value)
    if v is None:
        return None
    low = v.lower()
    if low in ("enabled", "yes", "active", "true", "on", "1"):
        return True
    if low in ("disabled", "no", "not active", "false", "off", "0"):
        return False
    return None


def to_mode(value):
    """MIG mode text -> "enabled" / "disabled" / None."""
    b = to_bool(value)
    if b is None:
        return None
    return "enabled" if b else "disabled"


# --------------------------------------------------------------------------------------------------
# nvidia-smi -q -x
# --------------------------------------------------------------------------------------------------


def _text(elem, path):
    if elem is None:
        return None
    e = elem.find(path)
    if e is None:
        return None
    return e.text if e.text is not None else ""


def _first(elem, *paths):
    for p in paths:
        t = _text(elem, p)
        if t is not None and clean(t) is not None:
            return t
    for p in paths:
        t = _text(elem, p)
        if t is not None:
            return t
    return None


def _sum_children(elem, predicate):
    """Sum the numeric children of ``elem`` whose tag matches; None when all are placeholders/absent."""
    if elem is None:
        return None
    total = None
    for child in elem:
        if not predicate(child.tag) or len(child):
            continue
        n = to_number(child.text)
        if n is not None:
            total = (total or 0) + n
    return total


def _ecc_uncorrected(block):
    """Uncorrectable ECC errors in a ``volatile``/``aggregate`` block, for every layout seen.

    R418-R460 (v10/v11): ``single_bit``/``double_bit`` with per-unit counters and ``total``;
    R470-R535: ``sram_uncorrectable``/``dram_uncorrectable``;
    R550+ (v13): ``sram_uncorrectable_parity``/``sram_uncorrectable_secded``/``dram_uncorrectable``.
    """
    if block is None:
        return None
    double = block.find("double_bit")
    if double is not None:
        total = to_number(_text(double, "total"))
        if total is not None:
            return total
        return _sum_children(double, lambda t: t != "total")
    return _sum_children(block, lambda t: "uncorrectable" in t)


def _mig_devices(gpu):
    out = []
    md = gpu.find("mig_devices")
    if md is None:
        return out
    for dev in md.findall("mig_device"):
        shared = dev.find("device_attributes/shared")
        out.append(
            {
                "index": to_number(_text(dev, "index")),
                "gpu_instance_id": to_number(_text(dev, "gpu_instance_id")),
                "compute_instance_id": to_number(_text(dev, "compute_instance_id")),
                "profile": None,
                "profile_source": None,
                "uuid": None,
                "memory_mib": to_number(_text(dev, "fb_memory_usage/total")),
                "sm_count": to_number(_text(shared, "multiprocessor_count")) if shared is not None else None,
            }
        )
    return out


# (field name in the result, xpath) pairs whose "Unknown Error" value is reported as a health finding
_WATCHED = (
    ("product_name", "product_name"),
    ("uuid", "uuid"),
    ("memory_total", "fb_memory_usage/total"),
    ("temperature", "temperature/gpu_temp"),
    ("power_limit", "gpu_power_readings/current_power_limit"),
    ("power_limit", "power_readings/power_limit"),
    ("ecc_mode", "ecc_mode/current_ecc"),
    ("mig_mode", "mig_mode/current_mig"),
    ("pci_device_id", "pci/pci_device_id"),
)


def _gpu_from_xml(gpu, position):
    retired = gpu.find("retired_pages")
    remap = gpu.find("remapped_rows")
    remap_struct = remap is not None and len(remap) > 0
    unknown = sorted(set(name for name, path in _WATCHED if is_unknown_error(_text(gpu, path))))
    mig_mode = gpu.find("mig_mode")
    return {
        "index": position,
        "uuid": clean(_text(gpu, "uuid")),
        "name": clean(_text(gpu, "product_name")),
        "brand": clean(_text(gpu, "product_brand")),
        "architecture": clean(_text(gpu, "product_architecture")),
        "pci_device_id": gpu_catalog.normalize_pci_device_id(clean(_text(gpu, "pci/pci_device_id"))),
        "pci_sub_system_id": _hex(clean(_text(gpu, "pci/pci_sub_system_id"))),
        "pci_bus_id": clean(_text(gpu, "pci/pci_bus_id")) or clean(gpu.get("id")),
        "memory_total_mib": to_number(_text(gpu, "fb_memory_usage/total")),
        "compute_capability": None,
        "mig_mode_current": to_mode(_text(mig_mode, "current_mig")) if mig_mode is not None else None,
        "mig_mode_pending": to_mode(_text(mig_mode, "pending_mig")) if mig_mode is not None else None,
        "mig_devices": _mig_devices(gpu),
        "persistence_mode": to_bool(_text(gpu, "persistence_mode")),
        "ecc_mode_current": to_bool(_text(gpu, "ecc_mode/current_ecc")),
        "ecc_mode_pending": to_bool(_text(gpu, "ecc_mode/pending_ecc")),
        "ecc_errors_uncorrected_volatile": _ecc_uncorrected(gpu.find("ecc_errors/volatile")),
        "ecc_errors_uncorrected_aggregate": _ecc_uncorrected(gpu.find("ecc_errors/aggregate")),
        "retired_pages_single_bit": to_number(_text(retired, "multiple_single_bit_retirement/retired_count")),
        "retired_pages_double_bit": to_number(_text(retired, "double_bit_retirement/retired_count")),
        "retired_pages_pending": to_bool(_text(retired, "pending_retirement")),
        "remapped_rows_correctable": to_number(_text(remap, "remapped_row_corr")) if remap_struct else None,
        "remapped_rows_uncorrectable": to_number(_text(remap, "remapped_row_unc")) if remap_struct else None,
        "remapped_rows_pending": to_bool(_text(remap, "remapped_row_pending")) if remap_struct else None,
        "remapped_rows_failure": to_bool(_text(remap, "remapped_row_failure")) if remap_struct else None,
        "reset_required": to_bool(_text(gpu, "gpu_reset_status/reset_required")),
        "power_limit_w": to_number(
            _first(gpu, "gpu_power_readings/current_power_limit", "power_readings/power_limit",
                   "power_readings/enforced_power_limit", "power_readings/current_power_limit"),
            as_int=False,
        ),
        "power_draw_w": to_number(
            _first(gpu, "gpu_power_readings/power_draw", "gpu_power_readings/average_power_draw",
                   "gpu_power_readings/instant_power_draw", "power_readings/power_draw",
                   "power_readings/average_power_draw"),
            as_int=False,
        ),
        "temperature_c": to_number(_text(gpu, "temperature/gpu_temp")),
        "unknown_error_fields": unknown,
    }


def _hex(value):
    if value is None:
        return None
    v = value.strip()
    if re.match(r"^(0x)?[0-9a-fA-F]{8}$", v):
        return "0x" + v[-8:].upper()
    return v


def parse_xml(text):
    """Parse ``nvidia-smi -q -x`` output into {driver_version, cuda_version, attached_gpus, gpus}."""
    if text is None or not text.strip():
        raise NvidiaSmiError("nvidia-smi -q -x printed nothing.", kind="parse")
    try:
        root = ET.fromstring(text.strip().encode("utf-8") if not isinstance(text, bytes) else text)
    except ET.ParseError as e:
        raise NvidiaSmiError("nvidia-smi -q -x printed output that is not XML (%s): %s" % (e, " ".join(text.split())[:200]),
                             kind="parse")
    if root.tag != "nvidia_smi_log":
        raise NvidiaSmiError("nvidia-smi -q -x printed XML whose root is <%s>, not <nvidia_smi_log>." % root.tag, kind="parse")
    gpus = [_gpu_from_xml(g, i) for i, g in enumerate(root.findall("gpu"))]
    return {
        "driver_version": clean(_text(root, "driver_version")),
        "cuda_version": clean(_text(root, "cuda_version")),
        "attached_gpus": to_number(_text(root, "attached_gpus")),
        "gpus": gpus,
    }


# --------------------------------------------------------------------------------------------------
# nvidia-smi --query-gpu (CSV)
# --------------------------------------------------------------------------------------------------


def _split_csv(line):
    return [c.strip() for c in line.rstrip("\r\n").split(",")]


def parse_query_gpu_csv(text, fields=None):
    """Rows of ``--query-gpu`` CSV as dicts keyed by field name.

    With ``fields`` None the first line must be the header (``--format=csv``); unit suffixes in the
    header (``memory.total [MiB]``) are dropped.  Values keep their text (units included); use
    :func:`to_number` etc. on them.
    """
    lines = [ln for ln in (text or "").splitlines() if ln.strip()]
    if not lines:
        return []
    if fields is None:
        fields = [re.sub(r"\s*\[[^\]]*\]$", "", h) for h in _split_csv(lines[0])]
        lines = lines[1:]
    fields = list(fields)
    rows = []
    for ln in lines:
        cells = _split_csv(ln)
        if len(cells) != len(fields):
            raise NvidiaSmiError(
                "nvidia-smi --query-gpu printed a line with %d values for %d fields: %r" % (len(cells), len(fields), ln[:200]),
                kind="parse",
            )
        rows.append(dict((f, cells[i]) for i, f in enumerate(fields)))
    return rows


def gpus_from_csv(rows):
    """GPU dicts (same keys as parse_xml's) from --query-gpu rows; plus the driver version."""
    gpus = []
    driver = None
    for pos, row in enumerate(rows):
        g = row.get
        driver = driver or clean(g("driver_version"))
        idx = to_number(g("index"))
        unknown = sorted(k for k, v in row.items() if is_unknown_error(v))
        gpus.append(
            {
                "index": idx if idx is not None else pos,
                "uuid": clean(g("uuid")),
                "name": clean(g("name")),
                "brand": None,
                "architecture": None,
                "pci_device_id": gpu_catalog.normalize_pci_device_id(clean(g("pci.device_id"))),
                "pci_sub_system_id": _hex(clean(g("pci.sub_device_id"))),
                "pci_bus_id": clean(g("pci.bus_id")),
                "memory_total_mib": to_number(g("memory.total")),
                "compute_capability": clean(g("compute_cap")),
                "mig_mode_current": to_mode(g("mig.mode.current")),
                "mig_mode_pending": to_mode(g("mig.mode.pending")),
                "mig_devices": [],
                "persistence_mode": to_bool(g("persistence_mode")),
                "ecc_mode_current": to_bool(g("ecc.mode.current")),
                "ecc_mode_pending": to_bool(g("ecc.mode.pending")),
                "ecc_errors_uncorrected_volatile": to_number(g("ecc.errors.uncorrected.volatile.total")),
                "ecc_errors_uncorrected_aggregate": to_number(g("ecc.errors.uncorrected.aggregate.total")),
                "retired_pages_single_bit": to_number(g("retired_pages.single_bit_ecc.count")),
                "retired_pages_double_bit": to_number(g("retired_pages.double_bit.count")),
                "retired_pages_pending": to_bool(g("retired_pages.pending")),
                "remapped_rows_correctable": to_number(g("remapped_rows.correctable")),
                "remapped_rows_uncorrectable": to_number(g("remapped_rows.uncorrectable")),
                "remapped_rows_pending": to_bool(g("remapped_rows.pending")),
                "remapped_rows_failure": to_bool(g("remapped_rows.failure")),
                "reset_required": None,
                "power_limit_w": to_number(g("power.limit"), as_int=False),
                "power_draw_w": to_number(g("power.draw"), as_int=False),
                "temperature_c": to_number(g("temperature.gpu")),
                "unknown_error_fields": unknown,
            }
        )
    return gpus, driver


# --------------------------------------------------------------------------------------------------
# nvidia-smi -L and nvidia-smi mig -lgip
# --------------------------------------------------------------------------------------------------

_L_GPU_RE = re.compile(r"^GPU\s+(\d+):\s+(.*?)\s+\(UUID:\s*(\S+?)\)\s*$")
_L_MIG_RE = re.compile(r"^\s+MIG\s+(\S+)\s+Device\s+(\d+):\s+\(UUID:\s*(\S+?)\)\s*$")
_OLD_MIG_UUID_RE = re.compile(r"^MIG-(GPU-[0-9a-fA-F-]+)/(\d+)/(\d+)$")


def parse_list(text):
    """``nvidia-smi -L`` -> [{index, name, uuid, mig_devices: [{index, profile, uuid, gi, ci}]}].

    Handles CRLF and the R450-era ``MIG-GPU-<uuid>/<gi>/<ci>`` MIG UUIDs (which carry GI/CI IDs).
    """
    gpus = []
    for raw in (text or "").splitlines():
        line = raw.rstrip("\r")
        m = _L_GPU_RE.match(line)
        if m:
            gpus.append({"index": int(m.group(1)), "name": m.group(2), "uuid": m.group(3), "mig_devices": []})
            continue
        m = _L_MIG_RE.match(line)
        if m and gpus:
            uuid = m.group(3)
            gi = ci = None
            old = _OLD_MIG_UUID_RE.match(uuid)
            if old:
                gi, ci = int(old.group(2)), int(old.group(3))
            gpus[-1]["mig_devices"].append(
                {"index": int(m.group(2)), "profile": m.group(1), "uuid": uuid, "gpu_instance_id": gi, "compute_instance_id": ci}
            )
    return gpus


_LGIP_ROW1 = re.compile(
    r"^\|\s*(\d+)\s+MIG\s+(\S+)\s+(\d+)\s+(\d+)/(\d+)\s+([\d.]+)\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\|\s*$"
)
_LGIP_ROW2 = re.compile(r"^\|\s+(\d+)\s+(\d+)\s+(\d+)\s*\|\s*$")


def parse_lgip(text):
    """``nvidia-smi mig -lgip`` -> {gpu index: [{name, profile_id, free, total, memory_gib, p2p, sm, dec, enc, ce, jpeg, ofa}]}."""
    out = {}
    last = None
    for raw in (text or "").splitlines():
        line = raw.rstrip("\r")
        m = _LGIP_ROW1.match(line)
        if m:
            last = {
                "name": m.group(2),
                "profile_id": int(m.group(3)),
                "free": int(m.group(4)),
                "total": int(m.group(5)),
                "memory_gib": float(m.group(6)),
                "p2p": m.group(7).lower() == "yes",
                "sm": int(m.group(8)),
                "dec": int(m.group(9)),
                "enc": int(m.group(10)),
                "ce": None,
                "jpeg": None,
                "ofa": None,
            }
            out.setdefault(int(m.group(1)), []).append(last)
            continue
        m = _LGIP_ROW2.match(line)
        if m and last is not None and last["ce"] is None:
            last["ce"], last["jpeg"], last["ofa"] = int(m.group(1)), int(m.group(2)), int(m.group(3))
            continue
        if line.startswith("+"):
            last = None
    return out


# --------------------------------------------------------------------------------------------------
# Facts
# --------------------------------------------------------------------------------------------------


def infer_mig_profile(model, memory_mib, sm_count, hardware_profiles=None):
    """Best guess of a MIG device's GI profile from its memory and SM count (``-q -x`` has no name).

    Uses the host's ``-lgip`` rows when given (exact GiB and SMs), else the catalog's nominal sizes.
    Returns a profile name or None when nothing (or more than one profile) matches.
    """
    if memory_mib is None:
        return None
    gib = memory_mib / 1024.0
    cands = []
    if hardware_profiles:
        for row in hardware_profiles:
            if abs(row["memory_gib"] - gib) / max(row["memory_gib"], 0.1) < 0.05:
                if sm_count is None or row.get("sm") in (None, sm_count):
                    cands.append((row["name"], "+" in row["name"] or "-me" in row["name"]))
    elif model is not None:
        for p in model.profiles:
            if abs(p.memory_gb - gib) / float(p.memory_gb) < 0.15:
                if sm_count is None or p.sm_count is None or p.sm_count == sm_count:
                    cands.append((p.name, bool(p.media)))
    plain = [n for n, media in cands if not media]
    if len(plain) == 1:
        return plain[0]
    if not plain and len(cands) == 1:
        return cands[0][0]
    return None


def _health(gpu, add):
    where = "GPU %s (%s)" % (gpu["index"], gpu.get("pci_bus_id") or gpu.get("uuid") or "?")
    if gpu.get("remapped_rows_failure"):
        add(gpu, "remapped_rows_failure", "error",
            "%s: row remapping failed; the GPU has uncorrectable memory and needs to be replaced (RMA)." % where)
    if gpu.get("remapped_rows_pending"):
        add(gpu, "remapped_rows_pending", "warning",
            "%s: row remapping is pending; drain the node and reset the GPU (nvidia-smi -r or reboot) to apply it." % where)
    if gpu.get("retired_pages_pending"):
        add(gpu, "retired_pages_pending", "warning",
            "%s: page retirement is pending; drain the node and reboot it to retire the pages." % where)
    vol = gpu.get("ecc_errors_uncorrected_volatile")
    if vol:
        add(gpu, "ecc_uncorrected_volatile", "error",
            "%s: %d uncorrectable ECC error(s) since the last driver load; drain the node, reset the GPU, "
            "and replace it if they recur." % (where, vol))
    agg = gpu.get("ecc_errors_uncorrected_aggregate")
    if agg and not vol:
        add(gpu, "ecc_uncorrected_aggregate", "warning",
            "%s: %d uncorrectable ECC error(s) over the GPU's lifetime; watch for new ones." % (where, agg))
    cur, pend = gpu.get("mig_mode_current"), gpu.get("mig_mode_pending")
    if cur and pend and cur != pend:
        add(gpu, "mig_mode_change_pending", "warning",
            "%s: MIG mode is %s but %s is pending; it takes effect after a GPU reset (drain the node, then "
            "nvidia-smi -r -i %s, or reboot)." % (where, cur, pend, gpu["index"]))
    ecur, epend = gpu.get("ecc_mode_current"), gpu.get("ecc_mode_pending")
    if ecur is not None and epend is not None and ecur != epend:
        add(gpu, "ecc_mode_change_pending", "warning",
            "%s: ECC mode change pending (%s -> %s); it takes effect after a reboot."
            % (where, "enabled" if ecur else "disabled", "enabled" if epend else "disabled"))
    if gpu.get("reset_required"):
        add(gpu, "reset_required", "warning", "%s: the driver reports that a GPU reset is required." % where)
    if gpu.get("unknown_error_fields"):
        add(gpu, "unknown_error", "error",
            "%s: nvidia-smi reported 'Unknown Error' for %s; check 'dmesg' for Xid errors and reset or reboot."
            % (where, ", ".join(gpu["unknown_error_fields"])))
    if gpu.get("model") is None:
        add(gpu, "unknown_model", "warning",
            "%s: PCI device ID %s (%s) is not in the gpufleet.platform GPU catalog; MIG layouts cannot be validated for it."
            % (where, gpu.get("pci_device_id"), gpu.get("name")))


def build_facts(parsed, source, listing=None, lgip=None, caps=None):
    """Combine parsed nvidia-smi data with the catalog into the gpu_facts result.

    ``parsed``: {driver_version, cuda_version, attached_gpus, gpus} (parse_xml or the CSV fallback).
    ``listing``: parse_list() result; ``lgip``: parse_lgip() result; ``caps``: {uuid or index: "8.0"}.
    """
    listing_by_uuid = dict((g["uuid"], g) for g in (listing or []))
    listing_by_index = dict((g["index"], g) for g in (listing or []))
    caps = caps or {}
    gpus = []
    for raw in parsed["gpus"]:
        gpu = dict(raw)
        model = gpu_catalog.by_pci_device_id(gpu.get("pci_device_id"))
        gpu["model_source"] = "pci_device_id" if model else None
        if model is None:
            model = gpu_catalog.by_name(gpu.get("name"))
            gpu["model_source"] = "product_name" if model else None
        gpu["model"] = model.key if model else None
        if not gpu.get("architecture") and model:
            gpu["architecture"] = model.architecture
        cap = caps.get(gpu.get("uuid")) or caps.get(gpu["index"])
        if cap:
            gpu["compute_capability"] = cap
        if not gpu.get("compute_capability") and model:
            gpu["compute_capability"] = model.compute_capability
        gpu["mig_capable"] = bool(model.mig_capable) if model else gpu.get("mig_mode_current") is not None
        hw = (lgip or {}).get(gpu["index"]) or []
        gpu["mig_profiles"] = [dict(r) for r in hw]
        gpu["mig_profiles_source"] = "nvidia-smi mig -lgip" if hw else ("catalog" if model and model.mig_capable else None)
        listed = listing_by_uuid.get(gpu.get("uuid")) or (listing_by_index.get(gpu["index"]) if not gpu.get("uuid") else None)
        if listed is None and gpu.get("uuid") is None:
            listed = listing_by_index.get(gpu["index"])
        named = dict((d["index"], d) for d in (listed or {}).get("mig_devices", []))
        devices = []
        for dev in gpu.get("mig_devices") or []:
            dev = dict(dev)
            ln = named.get(dev["index"])
            if ln:
                dev["profile"], dev["uuid"], dev["profile_source"] = ln["profile"], ln["uuid"], "nvidia-smi -L"
            else:
                dev["profile"] = infer_mig_profile(model, dev.get("memory_mib"), dev.get("sm_count"), hw)
                dev["profile_source"] = "inferred" if dev["profile"] else None
            devices.append(dev)
        if not devices and listed and listed.get("mig_devices"):
            for ln in listed["mig_devices"]:
                devices.append({"index": ln["index"], "gpu_instance_id": ln["gpu_instance_id"],
                                "compute_instance_id": ln["compute_instance_id"], "profile": ln["profile"],
                                "profile_source": "nvidia-smi -L", "uuid": ln["uuid"], "memory_mib": None, "sm_count": None})
        gpu["mig_devices"] = devices
        gpus.append(gpu)

    health = []

    def add(gpu, check, severity, message):
        health.append({"gpu": gpu["index"] if gpu else None, "uuid": gpu.get("uuid") if gpu else None,
                       "check": check, "severity": severity, "message": message})

    for gpu in gpus:
        _health(gpu, add)
    attached = parsed.get("attached_gpus")
    if attached is not None and attached != len(gpus):
        add(None, "gpu_count_mismatch", "warning",
            "nvidia-smi reports %d attached GPU(s) but describes %d; a GPU may be lost or hidden." % (attached, len(gpus)))

    models = {}
    for gpu in gpus:
        k = gpu["model"] or "unknown"
        models[k] = models.get(k, 0) + 1
    return {
        "source": source,
        "driver_version": parsed.get("driver_version"),
        "cuda_version": parsed.get("cuda_version"),
        "count": len(gpus),
        "gpus": gpus,
        "models": models,
        "mig_capable_count": sum(1 for g in gpus if g["mig_capable"]),
        "mig_enabled_count": sum(1 for g in gpus if g.get("mig_mode_current") == "enabled"),
        "health": health,
        "healthy": not any(h["severity"] == "error" for h in health),
        "reason": None,
    }


def empty_facts(reason, source=None):
    """The result for a host without usable GPUs."""
    return {
        "source": source,
        "driver_version": None,
        "cuda_version": None,
        "count": 0,
        "gpus": [],
        "models": {},
        "mig_capable_count": 0,
        "mig_enabled_count": 0,
        "health": [],
        "healthy": True,
        "reason": reason,
    }


def collect(run, nvidia_smi, mig_details=True):
    """Run nvidia-smi through ``run(args) -> (rc, stdout, stderr)`` and build the facts.

    Raises NvidiaSmiError for failures the operator must fix; returns empty_facts() with a reason for
    hosts without a driver or GPU.
    """
    rc, out, err = run([nvidia_smi, "-q", "-x"])
    parsed = None
    source = "nvidia-smi -q -x"
    fallback_note = None
    if rc == 0:
        try:
            parsed = parse_xml(out)
        except NvidiaSmiError as e:
            fallback_note = e.message
    else:
        kind, message = classify_failure(rc, out, err)
        if kind in NO_GPU_KINDS:
            return empty_facts(message, source)
        if kind != "error":
            raise NvidiaSmiError(message, kind=kind, rc=rc, output=(out or "") + (err or ""))
        fallback_note = message
    if parsed is None:
        parsed = _collect_csv(run, nvidia_smi, fallback_note)
        source = "nvidia-smi --query-gpu"
    if not parsed["gpus"]:
        return empty_facts("nvidia-smi found no NVIDIA GPU on this host.", source)

    caps = {}
    if source == "nvidia-smi -q -x":
        rc, out, _err = run([nvidia_smi, "--query-gpu=index,uuid,compute_cap", "--format=csv,noheader,nounits"])
        if rc == 0:
            try:
                for row in parse_query_gpu_csv(out, ("index", "uuid", "compute_cap")):
                    cap = clean(row["compute_cap"])
                    if cap:
                        caps[row["uuid"]] = cap
            except NvidiaSmiError:
                caps = {}
    listing = lgip = None
    if mig_details and any(g.get("mig_mode_current") == "enabled" for g in parsed["gpus"]):
        rc, out, _err = run([nvidia_smi, "-L"])
        if rc == 0:
            listing = parse_list(out)
        rc, out, _err = run([nvidia_smi, "mig", "-lgip"])
        if rc == 0:
            lgip = parse_lgip(out)
    facts = build_facts(parsed, source, listing, lgip, caps)
    if fallback_note:
        facts["health"].append({"gpu": None, "uuid": None, "check": "xml_query_failed", "severity": "warning",
                                "message": "nvidia-smi -q -x failed, facts come from --query-gpu: %s" % fallback_note})
    return facts


def _collect_csv(run, nvidia_smi, xml_problem):
    last = None
    for fields in (QUERY_FIELDS, MINIMAL_QUERY_FIELDS):
        rc, out, err = run([nvidia_smi, "--query-gpu=" + ",".join(fields), "--format=csv,noheader,nounits"])
        if rc == 0:
            gpus, driver = gpus_from_csv(parse_query_gpu_csv(out, fields))
            return {"driver_version": driver, "cuda_version": None, "attached_gpus": None, "gpus": gpus}
        kind, message = classify_failure(rc, out, err)
        if kind != "error":
            raise NvidiaSmiError(message, kind=kind, rc=rc, output=(out or "") + (err or ""))
        last = message
        if "not a valid field" not in ((out or "") + (err or "")).lower():
            break
    raise NvidiaSmiError(
        "nvidia-smi failed for both -q -x (%s) and --query-gpu (%s)." % (xml_problem, last), kind="error"
    )
