# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
"""GPU-hours per team over a period, from the collection's GPU usage recording rules (pure logic).

The monitoring role records, every evaluation, the GPU-hours of the last hour per team namespace
(``namespace_resource:gpufleet_gpu_hours_requested:sum_1h``: what running pods requested, from kube-state-metrics;
``namespace_profile:gpufleet_gpu_hours_in_use:sum_1h``: what the DCGM exporter attributes to a pod). The GPU-hours of
a window (start, end] are the sum of those hourly values at whole hours: ``sum_over_time(<record>[<hours>h:1h])``
evaluated at ``end``, so start and end are whole hours (UTC).

Here: the window from start/end/period, the two queries, the rows of the report from Prometheus' answers, the
Markdown table, the JSON document and a PNG bar chart (a small PNG writer: zlib and struct, no imaging library).
Errors are ``UsageReportError``, one message per problem, each naming the variable, the value and what is allowed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import math
import os
import re
import struct
import zlib

SCHEMA = "gpufleet.platform/usage_report/v1"
REQUESTED_RECORD = "namespace_resource:gpufleet_gpu_hours_requested:sum_1h"
IN_USE_RECORD = "namespace_profile:gpufleet_gpu_hours_in_use:sum_1h"
HOUR = 3600
MAX_HOURS = 366 * 24
DURATION = re.compile(r"^([1-9][0-9]*)([hdw])$")
UNIT_SECONDS = {"h": HOUR, "d": 24 * HOUR, "w": 7 * 24 * HOUR}
TIME_HELP = ("an RFC 3339 time on a whole hour (2026-12-01T00:00:00Z, an offset instead of Z is fine), a date "
             "(2026-12-01, midnight UTC) or Unix seconds")
PERIOD_HELP = "a whole number of hours, days or weeks: <n>h, <n>d or <n>w (e.g. 24h, 7d, 4w), at most 366d"


class UsageReportError(Exception):
    """Bad input or an unusable answer; ``problems`` lists every message."""

    def __init__(self, problems):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super(UsageReportError, self).__init__("; ".join(self.problems))


def _iso(ts):
    return datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value, name):
    """Unix seconds of ``value`` (RFC 3339, a date or Unix seconds); ``name`` is the variable, for messages."""
    text = str(value).strip()
    if re.match(r"^[0-9]+(\.[0-9]+)?$", text):
        seconds = float(text)
    else:
        candidate = text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text
        try:
            if re.match(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", candidate):
                moment = datetime.datetime.strptime(candidate, "%Y-%m-%d").replace(tzinfo=datetime.timezone.utc)
            else:
                moment = datetime.datetime.fromisoformat(candidate.replace("t", "T", 1))
                if moment.tzinfo is None:
                    raise ValueError("no time zone")
        except ValueError:
            raise UsageReportError("%s: %r is not a time; give %s" % (name, value, TIME_HELP))
        seconds = moment.timestamp()
    if not 0 <= seconds <= 253402300799:  # 1970 to 9999
        raise UsageReportError("%s: %r is outside 1970-9999; give %s" % (name, value, TIME_HELP))
    if seconds != int(seconds) or int(seconds) % HOUR:
        raise UsageReportError("%s: %r (%s) is not on a whole hour; the GPU-hours rules record whole hours, give %s "
                               "or %s" % (name, value, _iso(int(seconds)), _iso(int(seconds) // HOUR * HOUR),
                                          _iso(int(seconds) // HOUR * HOUR + HOUR)))
    return int(seconds)


def parse_period(value, name):
    """Seconds of ``value`` (``<n>h``, ``<n>d``, ``<n>w``)."""
    match = DURATION.match(str(value).strip())
    if not match:
        raise UsageReportError("%s: %r is not a period; give %s" % (name, value, PERIOD_HELP))
    seconds = int(match.group(1)) * UNIT_SECONDS[match.group(2)]
    if seconds > MAX_HOURS * HOUR:
        raise UsageReportError("%s: %r is longer than 366d; give %s" % (name, value, PERIOD_HELP))
    return seconds


def window(start, end, period, now, prefix=""):
    """(start, end) in Unix seconds, whole hours, from any two of start/end/period (or period alone: the period up
    to the last whole hour before ``now``). Empty strings and None are unset. Raises UsageReportError listing every
    problem; ``prefix`` is put before each option's name in messages (the usage_report role's variables)."""
    names = dict((key, prefix + key) for key in ("start", "end", "period"))
    given = dict((key, value) for key, value in (("start", start), ("end", end), ("period", period))
                 if value not in (None, ""))
    problems, parsed = [], {}
    for key, value in given.items():
        try:
            parsed[key] = parse_period(value, names[key]) if key == "period" else parse_time(value, names[key])
        except UsageReportError as exc:
            problems.extend(exc.problems)
    if not given:
        problems.append("%s, %s, %s: none is set; give %s=<period> (the period up to now, e.g. 7d), or %s and %s "
                        "(or one of them and %s)" % (names["period"], names["start"], names["end"], names["period"],
                                                     names["start"], names["end"], names["period"]))
    elif list(given) == ["start"] or list(given) == ["end"]:
        key = list(given)[0]
        other = "end" if key == "start" else "start"
        problems.append("%s is set alone; give %s too, or %s" % (names[key], names[other], names["period"]))
    if problems:
        raise UsageReportError(problems)
    latest = int(now) // HOUR * HOUR
    if "start" in parsed and "end" in parsed:
        lo, hi = parsed["start"], parsed["end"]
        if "period" in parsed and hi - lo != parsed["period"]:
            raise UsageReportError("%s: %r does not match %s %s and %s %s (%d hours apart); set two of the three"
                                   % (names["period"], given["period"], names["start"], _iso(lo), names["end"],
                                      _iso(hi), (hi - lo) // HOUR))
    elif "start" in parsed:
        lo, hi = parsed["start"], parsed["start"] + parsed["period"]
    elif "end" in parsed:
        lo, hi = parsed["end"] - parsed["period"], parsed["end"]
    else:
        lo, hi = latest - parsed["period"], latest
    if hi <= lo:
        raise UsageReportError("%s: %s is not after %s %s; give an end later than the start"
                               % (names["end"], _iso(hi), names["start"], _iso(lo)))
    if hi > latest:
        raise UsageReportError("%s: %s is after the last whole hour (%s); a report covers recorded hours only, give "
                               "an end at or before %s" % (names["end"] if "end" in parsed else names["period"],
                                                           _iso(hi), _iso(latest), _iso(latest)))
    if hi - lo > MAX_HOURS * HOUR:
        raise UsageReportError("%s to %s: %d hours is longer than 366d; give a shorter window"
                               % (_iso(lo), _iso(hi), (hi - lo) // HOUR))
    return lo, hi


def queries(start, end):
    """The two instant queries (evaluated at ``end``) of the window's GPU-hours."""
    hours = (end - start) // HOUR
    return {
        "requested": "sum by (namespace, resource) (sum_over_time(%s[%dh:1h]))" % (REQUESTED_RECORD, hours),
        "in_use": 'sum by (namespace, GPU_I_PROFILE) (sum_over_time(%s[%dh:1h]))' % (IN_USE_RECORD, hours),
    }


def profile_resource(profile):
    """The Kubernetes resource (as kube-state-metrics names it) of a DCGM GPU_I_PROFILE: '' is a whole GPU."""
    if not profile:
        return "nvidia_com_gpu"
    return "nvidia_com_mig_" + re.sub(r"[^A-Za-z0-9]", "_", profile)


def _vector(answer, what):
    if not isinstance(answer, dict) or answer.get("status") != "success":
        error = answer.get("error") if isinstance(answer, dict) else None
        raise UsageReportError("Prometheus refused the %s query: %s" % (what, error or answer))
    data = answer.get("data") or {}
    if data.get("resultType") != "vector":
        raise UsageReportError("Prometheus answered the %s query with a %s, not an instant vector"
                               % (what, data.get("resultType")))
    out = []
    for sample in data.get("result") or []:
        value = float(sample["value"][1])
        if not math.isnan(value):
            out.append((sample.get("metric") or {}, value))
    return out


def team_of(teams):
    """{namespace: team name} from the plan's teams (each with name and namespace)."""
    return dict((t.get("namespace") or t["name"], t["name"]) for t in teams or [])


def build(requested_answer, in_use_answer, start, end, teams=None, prometheus_url=""):
    """The report (a JSON-ready dict) from Prometheus' answers to queries(start, end)."""
    owners = team_of(teams)
    cells = {}
    for metric, value in _vector(requested_answer, "requested GPU-hours"):
        key = (metric.get("namespace", ""), metric.get("resource", ""))
        cells.setdefault(key, [0.0, 0.0])[0] += value
    for metric, value in _vector(in_use_answer, "in-use GPU-hours"):
        key = (metric.get("namespace", ""), profile_resource(metric.get("GPU_I_PROFILE", "")))
        cells.setdefault(key, [0.0, 0.0])[1] += value
    rows = []
    for (namespace, resource), (requested, in_use) in cells.items():
        rows.append({"team": owners.get(namespace, ""), "namespace": namespace, "resource": resource,
                     "gpu_hours_requested": round(requested, 6), "gpu_hours_in_use": round(in_use, 6)})
    rows.sort(key=lambda r: (r["team"] == "", r["team"], r["namespace"], r["resource"]))
    per_team = {}
    for row in rows:
        entry = per_team.setdefault(row["team"] or row["namespace"], {
            "team": row["team"], "namespaces": [], "gpu_hours_requested": {}, "gpu_hours_in_use": {}})
        if row["namespace"] not in entry["namespaces"]:
            entry["namespaces"].append(row["namespace"])
        for field in ("gpu_hours_requested", "gpu_hours_in_use"):
            entry[field][row["resource"]] = round(entry[field].get(row["resource"], 0.0) + row[field], 6)
    totals = {"gpu_hours_requested": {}, "gpu_hours_in_use": {}}
    for row in rows:
        for field, total in totals.items():
            total[row["resource"]] = round(total.get(row["resource"], 0.0) + row[field], 6)
    return {
        "schema": SCHEMA,
        "prometheus_url": prometheus_url,
        "start": _iso(start),
        "end": _iso(end),
        "hours": (end - start) // HOUR,
        "records": {"requested": REQUESTED_RECORD, "in_use": IN_USE_RECORD},
        "queries": queries(start, end),
        "rows": rows,
        "teams": list(per_team.values()),
        "totals": totals,
    }


def basename(report):
    """File name (without extension) of a report: its window."""
    def stamp(text):
        return text.replace("-", "").replace(":", "")[:11] + "Z"
    return "gpu-hours-%s-%s" % (stamp(report["start"]), stamp(report["end"]))


def markdown(report):
    """The report as a Markdown table (readable as plain text)."""
    lines = ["# GPU-hours per team, %s to %s (%d hours)" % (report["start"], report["end"], report["hours"]), "",
             "Requested: GPUs (or MIG devices) that running pods requested (`%s`). In use: GPUs the DCGM exporter "
             "attributed to a pod (`%s`). A MIG resource counts device-hours of that profile."
             % (report["records"]["requested"], report["records"]["in_use"]), ""]
    lines.append("| team | namespace | resource | GPU-hours requested | GPU-hours in use |")
    lines.append("|---|---|---|---:|---:|")
    for row in report["rows"]:
        cells = (row["team"] or "-", row["namespace"], row["resource"], row["gpu_hours_requested"],
                 row["gpu_hours_in_use"])
        lines.append("| %s | %s | %s | %.2f | %.2f |" % cells)
    for resource in sorted(report["totals"]["gpu_hours_requested"]):
        lines.append("| **total** | | %s | %.2f | %.2f |" % (
            resource, report["totals"]["gpu_hours_requested"][resource],
            report["totals"]["gpu_hours_in_use"].get(resource, 0.0)))
    if not report["rows"]:
        lines.append("| - | - | - | 0.00 | 0.00 |")
        lines.extend(["", "No GPU-hours were recorded in this window (are the gpufleet-gpu-usage recording rules "
                      "loaded in this Prometheus?)."])
    return "\n".join(lines) + "\n"


def to_json(report):
    return json.dumps(report, indent=2, sort_keys=False) + "\n"


# --- PNG bar chart -------------------------------------------------------------------------------------------------
# A 5x7 bitmap font (rows top to bottom, 5 bits each, most significant bit on the left; g, j, p, q and y have an
# eighth row, their descender); upper case is drawn as lower case, anything else as '?'.
FONT = {
    "0": (14, 17, 19, 21, 25, 17, 14), "1": (4, 12, 4, 4, 4, 4, 14), "2": (14, 17, 1, 2, 4, 8, 31),
    "3": (31, 2, 4, 2, 1, 17, 14), "4": (2, 6, 10, 18, 31, 2, 2), "5": (31, 16, 30, 1, 1, 17, 14),
    "6": (6, 8, 16, 30, 17, 17, 14), "7": (31, 1, 2, 4, 8, 8, 8), "8": (14, 17, 17, 14, 17, 17, 14),
    "9": (14, 17, 17, 15, 1, 2, 12), "a": (0, 0, 14, 1, 15, 17, 15), "b": (16, 16, 22, 25, 17, 17, 30),
    "c": (0, 0, 14, 16, 16, 17, 14), "d": (1, 1, 13, 19, 17, 17, 15), "e": (0, 0, 14, 17, 31, 16, 14),
    "f": (6, 9, 8, 28, 8, 8, 8), "g": (0, 0, 15, 17, 17, 15, 1, 14), "h": (16, 16, 22, 25, 17, 17, 17),
    "i": (4, 0, 12, 4, 4, 4, 14), "j": (2, 0, 6, 2, 2, 2, 18, 12), "k": (16, 16, 18, 20, 24, 20, 18),
    "l": (12, 4, 4, 4, 4, 4, 14), "m": (0, 0, 26, 21, 21, 17, 17), "n": (0, 0, 22, 25, 17, 17, 17),
    "o": (0, 0, 14, 17, 17, 17, 14), "p": (0, 0, 30, 17, 17, 30, 16, 16), "q": (0, 0, 15, 17, 17, 15, 1, 1),
    "r": (0, 0, 22, 25, 16, 16, 16), "s": (0, 0, 14, 16, 14, 1, 30), "t": (8, 8, 28, 8, 8, 9, 6),
    "u": (0, 0, 17, 17, 17, 19, 13), "v": (0, 0, 17, 17, 17, 10, 4), "w": (0, 0, 17, 17, 21, 21, 10),
    "x": (0, 0, 17, 10, 4, 10, 17), "y": (0, 0, 17, 17, 17, 15, 1, 14), "z": (0, 0, 31, 2, 4, 8, 31),
    "-": (0, 0, 0, 31, 0, 0, 0), ".": (0, 0, 0, 0, 0, 12, 12), "_": (0, 0, 0, 0, 0, 0, 31),
    ":": (0, 12, 12, 0, 12, 12, 0), "/": (0, 1, 2, 4, 8, 16, 0), " ": (0, 0, 0, 0, 0, 0, 0),
    "(": (2, 4, 8, 8, 8, 4, 2), ")": (8, 4, 2, 2, 2, 4, 8), "?": (14, 17, 1, 2, 4, 0, 4),
}
SCALE = 2
GLYPH_W = 6 * SCALE  # 5 columns and a space
WHITE, INK, GRID = (255, 255, 255), (33, 37, 41), (222, 226, 230)
REQUESTED_COLOR, IN_USE_COLOR = (54, 110, 201), (242, 142, 43)
CHART = {"width": 960, "label_w": 360, "bar_w": 460, "top": 64, "row_h": 40, "bar_h": 14, "bottom": 24}


class Canvas:
    def __init__(self, width, height):
        self.width, self.height = width, height
        self.pixels = bytearray(WHITE * (width * height))

    def rect(self, x, y, w, h, color):
        for row in range(max(0, y), min(self.height, y + h)):
            lo, hi = max(0, x), min(self.width, x + w)
            if hi > lo:
                start = (row * self.width + lo) * 3
                self.pixels[start:start + (hi - lo) * 3] = bytes(color) * (hi - lo)

    def text(self, x, y, text, color=INK):
        for i, char in enumerate(str(text)):
            glyph = FONT.get(char.lower(), FONT["?"])
            for gy, bits in enumerate(glyph):
                for gx in range(5):
                    if bits & (16 >> gx):
                        self.rect(x + i * GLYPH_W + gx * SCALE, y + gy * SCALE, SCALE, SCALE, color)

    def png(self):
        raw = b"".join(b"\x00" + bytes(self.pixels[y * self.width * 3:(y + 1) * self.width * 3])
                       for y in range(self.height))

        def chunk(kind, data):
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def bar_length(value, largest, width=CHART["bar_w"]):
    """Pixels of a bar: proportional to the largest value, at least 1 for a non-zero value."""
    if largest <= 0 or value <= 0:
        return 0
    return max(1, int(round(width * value / largest)))


def chart(report):
    """PNG bytes: per report row, a bar of requested GPU-hours and, under it, one of GPU-hours in use, on one scale;
    the value is written after each bar."""
    rows = report["rows"]
    c = CHART
    height = c["top"] + c["row_h"] * max(1, len(rows)) + c["bottom"]
    canvas = Canvas(c["width"], height)
    canvas.text(12, 10, "gpu-hours per team  %s to %s utc" % (report["start"][:16].replace("T", " "),
                                                              report["end"][:16].replace("T", " ")))
    canvas.rect(12, 38, 14, 14, REQUESTED_COLOR)
    canvas.text(32, 38, "requested")
    canvas.rect(172, 38, 14, 14, IN_USE_COLOR)
    canvas.text(192, 38, "in use (dcgm)")
    largest = max([r["gpu_hours_requested"] for r in rows] + [r["gpu_hours_in_use"] for r in rows] + [0])
    x0 = c["label_w"]
    canvas.rect(x0 - 1, c["top"] - 4, 1, c["row_h"] * max(1, len(rows)) + 4, GRID)
    if not rows:
        canvas.text(12, c["top"] + 8, "no gpu-hours recorded")
    for i, row in enumerate(rows):
        y = c["top"] + i * c["row_h"]
        label = "%s %s" % (row["team"] or row["namespace"], row["resource"].replace("nvidia_com_", ""))
        canvas.text(12, y + 6, label[:(x0 - 24) // GLYPH_W])
        for j, (field, color) in enumerate((("gpu_hours_requested", REQUESTED_COLOR),
                                            ("gpu_hours_in_use", IN_USE_COLOR))):
            length = bar_length(row[field], largest)
            top = y + j * (c["bar_h"] + 2)
            canvas.rect(x0, top, length, c["bar_h"], color)
            canvas.text(x0 + length + 6, top, "%.1f" % row[field])
    return canvas.png()


def check_output_dir(path, name):
    """Problems with ``path`` as the report directory: it must be a directory (or one that can be created) that
    this user can write to. Returns a list of messages (empty: usable)."""
    if not path:
        return ["%s is not set; give the directory the report is written to (e.g. -e %s=reports/)" % (name, name)]
    path = os.path.abspath(os.path.expanduser(path))
    probe = path
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        return ["%s: %r is not a directory (%s is a file); give a directory you can write to" % (name, path, probe)]
    if not os.access(probe, os.W_OK | os.X_OK):
        what = "is not writable" if probe == path else "cannot be created: %s is not writable" % probe
        return ["%s: %r %s by this user; give a directory you can write to" % (name, path, what)]
    return []
