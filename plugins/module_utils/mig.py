# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
# Apache License 2.0 (see LICENSE), or at your option GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt), like every module file (see README, Licensing).
"""MIG layout validation and planning: pure functions over the GPU catalog.

``plan_layout(model, layout, gpu_count=1, driver_version=None)`` checks a requested layout against a
GPU model's profile table and placement rules (research/mig-profiles.md, "Valid-combination rules")
and returns the placement, a mig-parted config document and the Kubernetes resources it yields.
Failures raise :class:`MigLayoutError` with a message that names the model, the profile and what is
allowed, plus ``suggestions``: the nearest layouts that do fit.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib
import hashlib
import json
import re

from ansible_collections.gpufleet.platform.plugins.module_utils import gpu_catalog
from ansible_collections.gpufleet.platform.plugins.module_utils.gpu_catalog import UnknownGpuModelError

try:
    from functools import lru_cache
except ImportError:  # pragma: no cover - Python 2 is not supported by this collection
    lru_cache = None

DISABLED = "disabled"
MIG_PARTED_VERSION = "v1"
ALL_DISABLED = "all-disabled"  # the GPU Operator's own name for "MIG off" (nvidia.com/mig.config)
#: [MIG-UG]: before R510 a (4 memory, 4 compute) and a (4 memory, 3 compute) GI could not coexist.
R510_4G_3G_GATE = 510


class MigLayoutError(ValueError):
    """A MIG layout that cannot be applied; ``suggestions`` lists nearest fitting layouts (profile->count maps)."""

    def __init__(self, message, suggestions=None, model=None, gpu=None):
        self.suggestions = list(suggestions or [])
        self.model = model
        self.gpu = gpu
        if self.suggestions:
            message = "%s Nearest layouts that fit: %s." % (message, "; ".join(format_counts(s) for s in self.suggestions))
        super(MigLayoutError, self).__init__(message)


# --------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------


def _order_key(model):
    order = dict((p.name, i) for i, p in enumerate(model.profiles))

    def key(name):
        p = model.profile(name)
        if p is None:
            return (0, 0, 999, name)
        return (-p.compute_slices, -p.memory_slices, order[name], name)

    return key


def format_counts(counts, model=None):
    """``{3g.40gb: 1, 1g.10gb: 2}`` with larger profiles first (stable, for messages)."""
    if not counts:
        return "{}"
    names = list(counts)
    if model is not None:
        names.sort(key=_order_key(model))
    else:
        names.sort(key=lambda n: (-_g_of(n), n))
    return "{%s}" % ", ".join("%s: %d" % (n, counts[n]) for n in names)


def _g_of(name):
    m = re.match(r"^(\d+)g\.", name or "")
    return int(m.group(1)) if m else 0


def parse_driver_version(value):
    """Driver branch as int: ``535.154.05`` -> 535, ``R525`` -> 525, ``470`` -> 470; None passes through."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise MigLayoutError("driver_version %r is not a driver version such as 535.154.05 or R535." % (value,))
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    m = re.match(r"^\s*[Rr]?(\d{3,4})(?:\.\d+){0,3}\s*$", str(value))
    if not m:
        raise MigLayoutError("driver_version %r is not a driver version such as 535.154.05 or R535." % (value,))
    return int(m.group(1))


def _model(model):
    try:
        return gpu_catalog.lookup(model)
    except UnknownGpuModelError as e:
        raise MigLayoutError(str(e))


# --------------------------------------------------------------------------------------------------
# Presets (the GPU Operator's config names)
# --------------------------------------------------------------------------------------------------


def presets(model):
    """Preset name -> per-GPU layout (None = MIG disabled, {} = enabled without devices, or a map).

    Same names as the GPU Operator's default/generated mig-parted configs: ``all-disabled``,
    ``all-enabled``, ``all-balanced`` and ``all-<profile>`` (``+`` written as ``.``) at its max count.
    """
    model = _model(model)
    out = {"all-disabled": None}
    if model.mig_capable:
        out["all-enabled"] = {}
        if model.balanced:
            out["all-balanced"] = dict(model.balanced)
        for p in model.profiles:
            out[p.config_name] = {p.name: p.max_count}
    return out


# --------------------------------------------------------------------------------------------------
# Normalising the requested layout
# --------------------------------------------------------------------------------------------------


def _normalize_entry(model, entry, where):
    """One GPU's layout -> None (disabled) or {profile: count}; may return a preset name for messages."""
    if entry is None:
        return None
    if isinstance(entry, str):
        name = entry.strip()
        if name.lower() in (DISABLED, "all-disabled", "none", "off"):
            return None
        if not model.mig_capable:
            validate_gpu(model, {"(preset %s)" % name: 1}, None, where)
        table = presets(model)
        if name in table:
            val = table[name]
            return None if val is None else dict(val)
        valid = sorted(table)
        same = _same_class(model, name[4:].replace(".me", "+me").replace(".gfx", "+gfx")) if name.startswith("all-") else []
        close = ["all-" + same[0].replace("+", ".")] if same else difflib.get_close_matches(name, valid, n=1)
        raise MigLayoutError(
            "%sUnknown MIG preset %r for %s (%s); valid presets: %s.%s"
            % (where, name, model.key, model.name, ", ".join(_preset_order(model, valid)),
               (" Did you mean %r?" % close[0]) if close else "")
        )
    if isinstance(entry, dict):
        counts = {}
        for prof, cnt in entry.items():
            prof_s = str(prof).strip()
            if isinstance(cnt, bool) or cnt is None:
                raise MigLayoutError("%sCount for %s must be a non-negative integer, got %r." % (where, prof_s, cnt))
            if isinstance(cnt, str) and re.match(r"^\s*\d+\s*$", cnt):
                cnt = int(cnt)
            if isinstance(cnt, float) and cnt.is_integer():
                cnt = int(cnt)
            if not isinstance(cnt, int) or cnt < 0:
                raise MigLayoutError("%sCount for %s must be a non-negative integer, got %r." % (where, prof_s, cnt))
            if cnt:
                counts[prof_s] = counts.get(prof_s, 0) + cnt
        return counts
    raise MigLayoutError(
        "%sA MIG layout must be a preset name, a {profile: count} map or a list of those per GPU; got %s."
        % (where, type(entry).__name__)
    )


def _preset_order(model, names):
    head = ["all-disabled", "all-enabled", "all-balanced"]
    prof_order = dict((p.config_name, i) for i, p in enumerate(model.profiles))
    return [n for n in head if n in names] + sorted((n for n in names if n not in head), key=lambda n: prof_order.get(n, 999))


def normalize_layout(model, layout, gpu_count=1):
    """Expand a preset / map / per-GPU list into a list (len gpu_count) of None or {profile: count}."""
    model = _model(model)
    if isinstance(gpu_count, bool) or not isinstance(gpu_count, int) or gpu_count < 1:
        raise MigLayoutError("gpu_count must be a positive integer, got %r." % (gpu_count,))
    if isinstance(layout, (list, tuple)):
        if len(layout) != gpu_count:
            raise MigLayoutError(
                "The layout lists %d GPU(s) but the node has gpu_count=%d; give one entry per GPU index "
                "(a {profile: count} map, a preset name, or 'disabled')." % (len(layout), gpu_count)
            )
        return [_normalize_entry(model, e, "GPU %d: " % i) for i, e in enumerate(layout)]
    one = _normalize_entry(model, layout, "")
    return [None if one is None else dict(one) for _i in range(gpu_count)]


# --------------------------------------------------------------------------------------------------
# Placement search
# --------------------------------------------------------------------------------------------------


def find_placement(model, counts):
    """Backtracking search: a list of (profile name, start) that places every instance, or None.

    Larger profiles are placed first (research rule 6: create 3g before 1g/2g); start slots are tried
    in ascending order; identical instances take increasing starts to avoid symmetric duplicates.
    """
    model = gpu_catalog.lookup(model)
    instances = []
    for name in sorted(counts, key=_order_key(model)):
        p = model.profile(name)
        if p is None:
            return None
        instances.extend([p] * counts[name])
    if not instances:
        return []
    masks = {}
    for p in set(instances):
        masks[p.name] = [(s, ((1 << p.memory_slices) - 1) << s) for s in p.starts if s + p.memory_slices <= model.memory_slice_count]
    result = []

    def place(i, used, min_start):
        if i == len(instances):
            return True
        p = instances[i]
        nxt_same = i + 1 < len(instances) and instances[i + 1].name == p.name
        for start, mask in masks[p.name]:
            if start < min_start or used & mask:
                continue
            result.append((p.name, start))
            if place(i + 1, used | mask, start + 1 if nxt_same else 0):
                return True
            result.pop()
        return False

    if place(0, 0, 0):
        return sorted(result, key=lambda t: (t[1], t[0]))
    return None


def _placements_of(model, subset=None):
    """Every set of non-overlapping GI placements (left-to-right scan), as tuples of (name, start)."""
    profs = [p for p in model.profiles if subset is None or p.name in subset]
    by_start = {}
    for p in profs:
        for s in p.starts:
            if s + p.memory_slices <= model.memory_slice_count:
                by_start.setdefault(s, []).append(p)
    out = []
    n = model.memory_slice_count

    def walk(pos, acc):
        if pos >= n:
            out.append(tuple(acc))
            return
        walk(pos + 1, acc)
        for p in by_start.get(pos, ()):
            acc.append((p.name, pos))
            walk(pos + p.memory_slices, acc)
            acc.pop()

    walk(0, [])
    return out


def _rule_violation(model, counts, driver):
    """First rule (other than geometry) the multiset breaks, as (kind, detail) or None."""
    for name, c in counts.items():
        p = model.profile(name)
        if c > p.max_count:
            return ("max", name)
    if sum(c for n, c in counts.items() if model.profile(n).media_exclusive) > 1:
        return ("media", None)
    if sum(model.profile(n).compute_slices * c for n, c in counts.items()) > model.compute_slice_count:
        return ("compute", None)
    if sum(model.profile(n).memory_slices * c for n, c in counts.items()) > model.memory_slice_count:
        return ("memory", None)
    if driver is not None:
        for name in counts:
            p = model.profile(name)
            if p.min_driver and driver < p.min_driver:
                return ("driver", name)
        if _needs_r510(model, counts) and driver < R510_4G_3G_GATE:
            return ("r510", None)
    return None


def maximal_multisets(model, profiles=None, driver_version=None):
    """Placeable multisets (sorted item tuples) that no other placeable multiset strictly contains."""
    model = gpu_catalog.lookup(model)
    subset = set(profiles) if profiles is not None else None
    cands = [dict(m) for m in placeable_multisets(model, driver_version) if subset is None or all(n in subset for n, _c in m)]

    def contains(big, small):
        return big != small and all(big.get(n, 0) >= c for n, c in small.items())

    return sorted(tuple(sorted(c.items())) for c in cands if not any(contains(o, c) for o in cands))


def _needs_r510(model, counts):
    if model.compute_slice_count != 7:
        return False
    has4 = any(model.profile(n).compute_slices == 4 and model.profile(n).memory_slices == 4 for n in counts)
    has3 = any(model.profile(n).compute_slices == 3 and model.profile(n).memory_slices == 4 for n in counts)
    return has4 and has3


def _enumerate_multisets(model, driver):
    # models that share a profile table share the enumeration
    return _enumerate_geometry(model.profiles, model.compute_slice_count, model.memory_slice_count, driver)


def _enumerate_geometry(profiles, compute_slices, memory_slices, driver):
    """Every placeable multiset, by a left-to-right scan over memory slices that places an instance at
    an allowed start or leaves the slice empty, pruned by max counts, the compute budget and media."""
    model = gpu_catalog.GpuModel("_", "_", "_", 0, (), "_", True, "_", profiles, compute_slices, memory_slices, (), (), "", ())
    by_start = {}
    for i, p in enumerate(profiles):
        for s in p.starts:
            if s + p.memory_slices <= memory_slices:
                by_start.setdefault(s, []).append((i, p.memory_slices, p.compute_slices, p.max_count, p.media_exclusive))
    counts = [0] * len(profiles)
    seen = set()

    def walk(pos, compute, media):
        if pos >= memory_slices:
            seen.add(tuple(counts))
            return
        walk(pos + 1, compute, media)
        for i, size, g, mx, excl in by_start.get(pos, ()):
            if counts[i] < mx and compute + g <= compute_slices and not (excl and media):
                counts[i] += 1
                walk(pos + size, compute + g, media or excl)
                counts[i] -= 1

    walk(0, 0, False)
    found = set()
    for vec in seen:
        items = tuple(sorted((profiles[i].name, c) for i, c in enumerate(vec) if c))
        if items and _rule_violation(model, dict(items), driver) is None:
            found.add(items)
    return frozenset(found)


def _candidates(model, driver):
    """Placeable multisets with the figures nearest_layouts scores them by (cached per profile table)."""
    key = (model.profiles, model.compute_slice_count, model.memory_slice_count, driver)
    hit = _CANDIDATES.get(key)
    if hit is None:
        hit = []
        for items in _enumerate_geometry(model.profiles, model.compute_slice_count, model.memory_slice_count, driver):
            cd = dict(items)
            by_g = {}
            comp = mem = 0
            media = {}
            for n, c in items:
                p = model.profile(n)
                by_g[p.compute_slices] = by_g.get(p.compute_slices, 0) + c
                comp += p.compute_slices * c
                mem += p.memory_slices * c
                if p.media:
                    media[n] = c
            hit.append((cd, by_g, comp, mem, media, format_counts(cd, model)))
        if len(_CANDIDATES) > 256:
            _CANDIDATES.clear()
        _CANDIDATES[key] = hit
    return hit


_CANDIDATES = {}


if lru_cache is not None:
    _enumerate_geometry = lru_cache(maxsize=256)(_enumerate_geometry)


def fits(model, counts, driver_version=None):
    """Fast yes/no: does the {profile: count} multiset fit one GPU of ``model`` (all rules)?"""
    model = gpu_catalog.lookup(model)
    if not model.mig_capable:
        return False
    items = tuple(sorted((n, c) for n, c in counts.items() if c))
    if not items:
        return True
    return items in placeable_multisets(model, driver_version)


def placeable_multisets(model, driver_version=None):
    """All non-empty {profile: count} multisets that fit one GPU of ``model`` (as sorted item tuples)."""
    model = gpu_catalog.lookup(model)
    if not model.mig_capable:
        return frozenset()
    return _enumerate_multisets(model, parse_driver_version(driver_version))


def maximal_placements(model, profiles=None):
    """Placements (tuples of (name, start)) to which no further instance of ``profiles`` can be added."""
    model = gpu_catalog.lookup(model)
    subset = set(profiles) if profiles is not None else None
    valid = []
    for placement in _placements_of(model, subset):
        counts = {}
        for name, _s in placement:
            counts[name] = counts.get(name, 0) + 1
        if placement and _rule_violation(model, counts, None) is None:
            valid.append(placement)
    valid_set = set(frozenset(v) for v in valid)
    maximal = []
    for v in valid:
        fv = frozenset(v)
        if not any(fv < other for other in valid_set if len(other) > len(fv)):
            maximal.append(v)
    return maximal


def nearest_layouts(model, counts, driver_version=None, limit=3):
    """The ``limit`` placeable multisets closest to ``counts``.

    Distance: exact-name count differences + compute-class (the G of Gg) count differences + the
    differences in total compute and memory slices, + 2 per media/graphics instance the request did not
    ask for.  Ties prefer sub-multisets of the request, then more compute and memory used.
    """
    model = gpu_catalog.lookup(model)
    driver = parse_driver_version(driver_version)
    wanted = dict((n, c) for n, c in counts.items() if model.profile(n) is not None)
    w_g = {}
    w_comp = w_mem = 0
    for n, c in wanted.items():
        p = model.profile(n)
        w_g[p.compute_slices] = w_g.get(p.compute_slices, 0) + c
        w_comp += p.compute_slices * c
        w_mem += p.memory_slices * c
    scored = []
    for cd, c_g, c_comp, c_mem, media, shown in _candidates(model, driver):
        dist = sum(abs(cd.get(n, 0) - c) for n, c in wanted.items()) + sum(c for n, c in cd.items() if n not in wanted)
        dist += sum(abs(c_g.get(g, 0) - c) for g, c in w_g.items()) + sum(c for g, c in c_g.items() if g not in w_g)
        dist += abs(c_comp - w_comp) + abs(c_mem - w_mem)
        dist += 2 * sum(c for n, c in media.items() if n not in wanted)
        subset = all(c <= wanted.get(n, 0) for n, c in cd.items())
        scored.append(((dist, 0 if subset else 1, -c_comp, -c_mem, shown), cd))
    scored.sort(key=lambda t: t[0])
    order = _order_key(model)
    return [dict((n, cd[n]) for n in sorted(cd, key=order)) for _score, cd in scored[:limit]]


# --------------------------------------------------------------------------------------------------
# Validation of one GPU
# --------------------------------------------------------------------------------------------------


def _starts_text(model, names):
    parts = []
    for n in sorted(set(names), key=_order_key(model)):
        p = model.profile(n)
        parts.append("%s at %s" % (n, ",".join(str(s) for s in p.starts)))
    return "; ".join(parts)


def _same_class(model, name):
    """The model's profile with the same compute slices and suffix and the nearest memory size."""
    parsed = gpu_catalog.parse_profile_name(name)
    if parsed is None:
        return []
    g, gb, media = parsed
    cands = [p for p in model.profiles if p.compute_slices == g and p.media == media]
    if not cands:
        return []
    best = min(cands, key=lambda p: (abs(p.memory_gb - gb), p.memory_gb))
    return [best.name]


def validate_gpu(model, counts, driver_version=None, where=""):
    """Check one GPU's {profile: count}; return its placement [(name, start)] or raise MigLayoutError."""
    model = _model(model)
    driver = parse_driver_version(driver_version)
    label = "%s (%s)" % (model.key, model.name)
    if not model.mig_capable:
        raise MigLayoutError(
            "%sGPU model %s does not support MIG. MIG layouts apply only to: %s."
            % (where, label, ", ".join(gpu_catalog.mig_capable_keys())),
            model=model.key,
        )
    unknown = [n for n in counts if model.profile(n) is None]
    if unknown:
        hints = []
        fixed = {}
        for n in unknown:
            alt = n.replace(".me", "+me") if n.endswith(".me") or ".me." in n else n
            alt = alt.replace(".gfx", "+gfx")
            close = [alt] if model.profile(alt) else _same_class(model, n) or difflib.get_close_matches(
                n, model.profile_names, n=1, cutoff=0.8)
            if close:
                hints.append("%r -> %r" % (n, close[0]))
                fixed[close[0]] = fixed.get(close[0], 0) + counts[n]
        for n, c in counts.items():
            if n not in unknown:
                fixed[n] = fixed.get(n, 0) + c
        sugg = []
        if hints and len(hints) == len(unknown):
            if find_placement(model, fixed) is not None and _rule_violation(model, fixed, driver) is None:
                sugg = [dict((n, fixed[n]) for n in sorted(fixed, key=_order_key(model)))]
            else:
                sugg = nearest_layouts(model, fixed, driver)
        raise MigLayoutError(
            "%sMIG profile%s %s do%s not exist on %s. Valid profiles: %s.%s"
            % (where, "s" if len(unknown) > 1 else "", ", ".join(repr(n) for n in unknown),
               "" if len(unknown) > 1 else "es", label, ", ".join(model.profile_names),
               (" Did you mean %s?" % ", ".join(hints)) if hints else ""),
            suggestions=sugg, model=model.key,
        )
    if not counts:
        return []
    shown = format_counts(counts, model)
    if driver is not None:
        for n in sorted(counts, key=_order_key(model)):
            p = model.profile(n)
            if p.min_driver and driver < p.min_driver:
                raise MigLayoutError(
                    "%sMIG profile %s on %s needs NVIDIA driver R%d or later; the driver is R%d."
                    % (where, n, label, p.min_driver, driver),
                    suggestions=nearest_layouts(model, counts, driver), model=model.key,
                )
        if _needs_r510(model, counts) and driver < R510_4G_3G_GATE:
            four = [n for n in counts if model.profile(n).compute_slices == 4][0]
            three = [n for n in counts if model.profile(n).compute_slices == 3][0]
            raise MigLayoutError(
                "%s%s together with %s on %s needs NVIDIA driver R510 or later; the driver is R%d."
                % (where, four, three, label, driver),
                suggestions=nearest_layouts(model, counts, driver), model=model.key,
            )
    for n in sorted(counts, key=_order_key(model)):
        p = model.profile(n)
        if counts[n] > p.max_count:
            raise MigLayoutError(
                "%s%s asks for %d x %s, but at most %d %s instance%s fit%s on one %s GPU."
                % (where, shown, counts[n], n, p.max_count, n, "s" if p.max_count != 1 else "",
                   "" if p.max_count != 1 else "s", label),
                suggestions=nearest_layouts(model, counts, driver), model=model.key,
            )
    media = [n for n in counts if model.profile(n).media_exclusive]
    if sum(counts[n] for n in media) > 1:
        raise MigLayoutError(
            "%s%s has %d instances with media extensions (%s), but one %s GPU has one set of media engines: "
            "at most one +me/+me.all instance fits." % (where, shown, sum(counts[n] for n in media), ", ".join(sorted(media)), label),
            suggestions=nearest_layouts(model, counts, driver), model=model.key,
        )
    compute = sum(model.profile(n).compute_slices * c for n, c in counts.items())
    if compute > model.compute_slice_count:
        raise MigLayoutError(
            "%s%s needs %d compute slices, but one %s GPU has %d."
            % (where, shown, compute, label, model.compute_slice_count),
            suggestions=nearest_layouts(model, counts, driver), model=model.key,
        )
    memory = sum(model.profile(n).memory_slices * c for n, c in counts.items())
    if memory > model.memory_slice_count:
        raise MigLayoutError(
            "%s%s needs %d memory slices, but one %s GPU has %d."
            % (where, shown, memory, label, model.memory_slice_count),
            suggestions=nearest_layouts(model, counts, driver), model=model.key,
        )
    placement = find_placement(model, counts)
    if placement is None:
        raise MigLayoutError(
            "%s%s fits the slice budgets of %s but has no valid placement: instances must start at allowed "
            "memory slices (%s) without overlapping." % (where, shown, label, _starts_text(model, counts)),
            suggestions=nearest_layouts(model, counts, driver), model=model.key,
        )
    return placement


# --------------------------------------------------------------------------------------------------
# Plans: placement, mig-parted document and Kubernetes resources
# --------------------------------------------------------------------------------------------------


def _default_config_name(layout, model, per_gpu):
    if isinstance(layout, str) and layout.strip() in presets(model):
        return layout.strip()
    blob = json.dumps({"model": model.key, "layout": per_gpu}, sort_keys=True)
    return "custom-%s" % hashlib.sha1(blob.encode("utf-8")).hexdigest()[:10]


def _entries(model, per_gpu, device_filter):
    groups = []  # (layout, [indices])
    for i, lay in enumerate(per_gpu):
        for g in groups:
            if g[0] == lay:
                g[1].append(i)
                break
        else:
            groups.append((lay, [i]))
    entries = []
    for lay, idx in groups:
        entry = {}
        if device_filter:
            entry["device-filter"] = list(model.pci_device_ids)
        entry["devices"] = "all" if len(groups) == 1 else idx
        entry["mig-enabled"] = lay is not None
        if lay is not None:
            entry["mig-devices"] = dict((n, lay[n]) for n in sorted(lay, key=_order_key(model)))
        entries.append(entry)
    return entries


def resources_for(model, per_gpu):
    """Kubernetes resources per node under the device plugin's ``mixed`` and ``single`` MIG strategies."""
    model = gpu_catalog.lookup(model)
    mixed = {}
    full = 0
    for lay in per_gpu:
        if lay is None:
            full += 1
            continue
        for n, c in lay.items():
            res = model.profile(n).resource_name
            mixed[res] = mixed.get(res, 0) + c
    if full:
        mixed["nvidia.com/gpu"] = full
    enabled = [lay for lay in per_gpu if lay is not None]
    used = set(n for lay in enabled for n in lay)
    if not enabled:
        single = {"nvidia.com/gpu": len(per_gpu)}
    elif len(enabled) == len(per_gpu) and len(used) <= 1:
        single = {"nvidia.com/gpu": sum(sum(lay.values()) for lay in enabled)}
    else:
        single = None
    return {"mixed": dict(sorted(mixed.items())), "single": single}


def plan_layout(model, layout, gpu_count=1, driver_version=None, config_name=None, device_filter=False):
    """Validate ``layout`` for ``gpu_count`` GPUs of ``model`` and plan it.

    ``model``: catalog key, PCI device ID, product name, GpuModel (or a gpu_facts GPU dict).
    ``layout``: preset name, {profile: count} applied to every GPU, or a list (one entry per GPU index).
    Returns {"model", "config_name", "gpu_count", "layout", "placements", "resources", "mig_parted",
    "warnings", "assumed"}.
    """
    model = _model(model)
    driver = parse_driver_version(driver_version)
    per_gpu = normalize_layout(model, layout, gpu_count)
    per_list = isinstance(layout, (list, tuple))
    placements = []
    cache = {}
    for i, lay in enumerate(per_gpu):
        if lay is None:
            placements.append([])
            continue
        key = tuple(sorted(lay.items()))
        if key not in cache:
            cache[key] = validate_gpu(model, lay, driver, "GPU %d: " % i if per_list else "")
        placements.append(["%s@%d" % (n, s) for n, s in cache[key]])
    name = config_name or _default_config_name(layout, model, per_gpu)
    warnings = []
    if driver is None and any(lay for lay in per_gpu):
        warnings.append("driver_version not given: driver-version gates (R470 +me, R510 4g+3g, R525 1g.10gb on A100-40GB) not checked")
    return {
        "model": model.key,
        "config_name": name,
        "gpu_count": gpu_count,
        "layout": per_gpu,
        "placements": placements,
        "resources": resources_for(model, per_gpu),
        "mig_parted": {"version": MIG_PARTED_VERSION, "mig-configs": {name: _entries(model, per_gpu, device_filter)}},
        "warnings": warnings,
        "assumed": list(model.assumed),
    }


def parted_document(pools, mixed_model_pools=(), device_filter=False):
    """The mig-parted document of the validated plan's pools (``gpufleet_plan.pools``): one config per MIG pool,
    named ``mig.config_name``, from the per-GPU layout validation planned (``mig.layout_per_gpu``), plus
    ``all-disabled``. Entries carry the model's PCI device IDs as ``device-filter`` when ``device_filter`` is
    set or the pool is in ``mixed_model_pools`` (a node there reported more than one GPU model)."""
    mixed = set(mixed_model_pools or ())
    configs = {ALL_DISABLED: [{"devices": "all", "mig-enabled": False}]}
    for name, pool in sorted((pools or {}).items()):
        conf = pool.get("mig") or {}
        if not conf.get("enabled"):
            continue
        if not conf.get("layout_per_gpu") or not pool.get("catalog"):
            raise MigLayoutError("gpu_pools.%s: the plan has no MIG layout for this pool; validate config.yml again "
                                 "(playbooks/validate.yml) with this collection version" % name)
        entries = _entries(_model(pool["catalog"]["key"]), conf["layout_per_gpu"], device_filter or name in mixed)
        if conf["config_name"] in configs and configs[conf["config_name"]] != entries:
            raise MigLayoutError("two MIG pools render different mig-parted configs named %r" % conf["config_name"])
        configs[conf["config_name"]] = entries
    return {"version": MIG_PARTED_VERSION, "mig-configs": configs}


def merge_plans(plans, config_name=None):
    """One mig-parted document for a node with several GPU models: one entry per model, device-filtered.

    ``plans`` are plan_layout() results for different models (each covering that model's GPUs).
    """
    plans = list(plans)
    if not plans:
        raise MigLayoutError("merge_plans needs at least one plan.")
    name = config_name or plans[0]["config_name"]
    seen = set()
    entries = []
    mixed = {}
    singles = []
    for plan in plans:
        model = _model(plan["model"])
        if model.key in seen:
            raise MigLayoutError("merge_plans got two plans for %s; give one plan per GPU model." % model.key)
        seen.add(model.key)
        for entry in _entries(model, plan["layout"], True):
            entries.append(entry)
        for r, c in plan["resources"]["mixed"].items():
            mixed[r] = mixed.get(r, 0) + c
        singles.append(plan["resources"]["single"])
    single = None
    if len(plans) == 1:
        single = singles[0]
    return {
        "config_name": name,
        "mig_parted": {"version": MIG_PARTED_VERSION, "mig-configs": {name: entries}},
        "resources": {"mixed": dict(sorted(mixed.items())), "single": single},
    }


def plan_from_facts(facts, layout, model=None, gpu_count=None, driver_version=None, config_name=None, device_filter=False):
    """plan_layout() for the GPUs that gpu_facts discovered on a host.

    ``facts`` is ``ansible_facts.gpufleet_gpu_facts``.  The model, GPU count and driver version come from
    the facts unless given; when the GPUs report ``nvidia-smi mig -lgip`` profiles, those override the
    catalog's profile set and counts.
    """
    if not isinstance(facts, dict) or not isinstance(facts.get("gpus"), list):
        raise MigLayoutError("gpu_facts must be the gpufleet_gpu_facts dict returned by gpufleet.platform.gpu_facts.")
    gpus = facts["gpus"]
    if not gpus:
        raise MigLayoutError(
            "gpu_facts lists no GPU (%s); there is nothing to plan a MIG layout for." % (facts.get("reason") or "no reason given")
        )
    if model is not None:
        wanted = _model(model)
        chosen = [g for g in gpus if g.get("model") == wanted.key]
        if not chosen:
            found = sorted(set(str(g.get("model")) for g in gpus))
            raise MigLayoutError("gpu_facts has no %s GPU; the host has: %s." % (wanted.key, ", ".join(found)))
    else:
        keys_found = {}
        for g in gpus:
            keys_found[str(g.get("model"))] = keys_found.get(str(g.get("model")), 0) + 1
        if len(keys_found) > 1:
            raise MigLayoutError(
                "The host mixes GPU models (%s); set model to plan one of them and merge the plans with the "
                "gpufleet.platform.mig_parted_config filter." % ", ".join("%s x%d" % (k, v) for k, v in sorted(keys_found.items()))
            )
        if "None" in keys_found:
            g = gpus[0]
            raise MigLayoutError(
                "GPU %s (%s, PCI device ID %s) is not in the GPU catalog; set model to a catalog key (%s)."
                % (g.get("index"), g.get("name"), g.get("pci_device_id"), ", ".join(gpu_catalog.keys()))
            )
        chosen = gpus
        wanted = _model(gpus[0]["model"])
    hw = chosen[0].get("mig_profiles") or []
    if hw and wanted.mig_capable:
        wanted = gpu_catalog.with_hardware_profiles(wanted, hw)
    count = gpu_count if gpu_count is not None else len(chosen)
    driver = driver_version if driver_version is not None else facts.get("driver_version")
    plan = plan_layout(wanted, layout, count, driver, config_name=config_name, device_filter=device_filter)
    plan["profiles_source"] = "nvidia-smi mig -lgip" if hw and wanted.mig_capable else "catalog"
    return plan
