"""module_utils/usage_report: the window, the queries, the report rows, the table and the PNG, exact messages."""
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.gpufleet.platform.plugins.module_utils import usage_report as u
from ansible_collections.gpufleet.platform.plugins.module_utils.usage_report import UsageReportError

H = 3600
NOW = 1796632400  # 2026-12-07T08:33:20Z
LAST = NOW // H * H  # 2026-12-07T08:00:00Z
P = "usage_report_"


def problems(*args, **kwargs):
    with pytest.raises(UsageReportError) as exc:
        u.window(*args, **kwargs)
    return exc.value.problems


@pytest.mark.parametrize("value, seconds", [
    ("2026-12-01T00:00:00Z", 1796083200), ("2026-12-01T01:00:00+01:00", 1796083200), ("2026-12-01", 1796083200),
    ("1796083200", 1796083200), (1796083200, 1796083200), ("2026-12-01t00:00:00z", 1796083200),
])
def test_parse_time(value, seconds):
    assert u.parse_time(value, "x") == seconds


@pytest.mark.parametrize("value, message", [
    ("yesterday", "x: 'yesterday' is not a time; give " + u.TIME_HELP),
    ("2026-12-01T00:00:00", "x: '2026-12-01T00:00:00' is not a time; give " + u.TIME_HELP),
    ("2026-13-01", "x: '2026-13-01' is not a time; give " + u.TIME_HELP),
    ("2026-12-01T10:30:00Z", "x: '2026-12-01T10:30:00Z' (2026-12-01T10:30:00Z) is not on a whole hour; the GPU-hours "
                             "rules record whole hours, give 2026-12-01T10:00:00Z or 2026-12-01T11:00:00Z"),
    ("1796083200.5", "x: '1796083200.5' (2026-12-01T00:00:00Z) is not on a whole hour; the GPU-hours rules record "
                     "whole hours, give 2026-12-01T00:00:00Z or 2026-12-01T01:00:00Z"),
    ("99999999999999", "x: '99999999999999' is outside 1970-9999; give " + u.TIME_HELP),
])
def test_parse_time_refused(value, message):
    with pytest.raises(UsageReportError) as exc:
        u.parse_time(value, "x")
    assert exc.value.problems == [message]


@pytest.mark.parametrize("value, seconds", [("1h", H), ("24h", 24 * H), ("7d", 7 * 24 * H), ("4w", 28 * 24 * H),
                                            ("366d", 366 * 24 * H)])
def test_parse_period(value, seconds):
    assert u.parse_period(value, "p") == seconds


@pytest.mark.parametrize("value", ["7x", "0d", "-1d", "1.5d", "30m", "d", "7 d", "1y", ""])
def test_parse_period_refused(value):
    with pytest.raises(UsageReportError) as exc:
        u.parse_period(value, "p")
    assert exc.value.problems == ["p: %r is not a period; give %s" % (value, u.PERIOD_HELP)]


def test_period_too_long():
    with pytest.raises(UsageReportError) as exc:
        u.parse_period("53w", "p")
    assert exc.value.problems == ["p: '53w' is longer than 366d; give " + u.PERIOD_HELP]


@pytest.mark.parametrize("start, end, period, window", [
    ("", "", "7d", (LAST - 7 * 24 * H, LAST)),
    ("2026-12-01", "2026-12-02", "", (1796083200, 1796083200 + 24 * H)),
    ("2026-12-01", "", "1d", (1796083200, 1796083200 + 24 * H)),
    ("", "2026-12-02", "24h", (1796083200, 1796083200 + 24 * H)),
    ("2026-12-01", "2026-12-02", "24h", (1796083200, 1796083200 + 24 * H)),
    (None, str(LAST), "1h", (LAST - H, LAST)),
])
def test_window(start, end, period, window):
    assert u.window(start, end, period, NOW, P) == window


def test_window_errors_name_the_variables():
    assert problems("", "", "", NOW, P) == [
        "usage_report_period, usage_report_start, usage_report_end: none is set; give usage_report_period=<period> "
        "(the period up to now, e.g. 7d), or usage_report_start and usage_report_end (or one of them and "
        "usage_report_period)"]
    assert problems("2026-12-01", "", "", NOW, P) == [
        "usage_report_start is set alone; give usage_report_end too, or usage_report_period"]
    assert problems("2026-12-02", "2026-12-01", "", NOW, P) == [
        "usage_report_end: 2026-12-01T00:00:00Z is not after usage_report_start 2026-12-02T00:00:00Z; give an end "
        "later than the start"]
    assert problems("2026-12-01", "2026-12-01", "", NOW, P) == [
        "usage_report_end: 2026-12-01T00:00:00Z is not after usage_report_start 2026-12-01T00:00:00Z; give an end "
        "later than the start"]
    assert problems("2026-12-01", "2026-12-02", "2d", NOW, P) == [
        "usage_report_period: '2d' does not match usage_report_start 2026-12-01T00:00:00Z and usage_report_end "
        "2026-12-02T00:00:00Z (24 hours apart); set two of the three"]
    assert problems("", "2026-12-08", "1d", NOW, P) == [
        "usage_report_end: 2026-12-08T00:00:00Z is after the last whole hour (2026-12-07T08:00:00Z); a report covers "
        "recorded hours only, give an end at or before 2026-12-07T08:00:00Z"]
    assert problems("2026-12-07", "", "1d", NOW, P) == [
        "usage_report_period: 2026-12-08T00:00:00Z is after the last whole hour (2026-12-07T08:00:00Z); a report "
        "covers recorded hours only, give an end at or before 2026-12-07T08:00:00Z"]
    assert problems("2025-01-01", "2026-12-01", "", NOW, P) == [
        "2025-01-01T00:00:00Z to 2026-12-01T00:00:00Z: 16776 hours is longer than 366d; give a shorter window"]


def test_window_lists_every_bad_value():
    assert problems("soon", "later", "7x", NOW, P) == [
        "usage_report_start: 'soon' is not a time; give " + u.TIME_HELP,
        "usage_report_end: 'later' is not a time; give " + u.TIME_HELP,
        "usage_report_period: '7x' is not a period; give " + u.PERIOD_HELP]


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=2000000), st.integers(min_value=1, max_value=366 * 24))
def test_window_from_any_two_agrees(start_hour, hours):
    start, end = start_hour * H, (start_hour + hours) * H
    now = end + 59 * 60
    period = "%dh" % hours
    assert u.window(str(start), str(end), "", now) == (start, end)
    assert u.window(str(start), "", period, now) == (start, end)
    assert u.window("", str(end), period, now) == (start, end)
    assert u.window(str(start), str(end), period, now) == (start, end)
    assert u.window("", "", period, now) == (start, end)


def test_queries():
    assert u.queries(0, 168 * H) == {
        "requested": "sum by (namespace, resource) (sum_over_time("
                     "namespace_resource:gpufleet_gpu_hours_requested:sum_1h[168h:1h]))",
        "in_use": "sum by (namespace, GPU_I_PROFILE) (sum_over_time("
                  "namespace_profile:gpufleet_gpu_hours_in_use:sum_1h[168h:1h]))",
    }


def vector(*samples):
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": metric, "value": [0, str(value)]} for metric, value in samples]}}


TEAMS = [{"name": "research", "namespace": "research"}, {"name": "inference", "namespace": "serving"}]


def test_build():
    requested = vector(({"namespace": "research", "resource": "nvidia_com_gpu"}, 51),
                       ({"namespace": "serving", "resource": "nvidia_com_mig_1g_10gb"}, 17),
                       ({"namespace": "kube-system", "resource": "nvidia_com_gpu"}, 1.5),
                       ({"namespace": "research", "resource": "nvidia_com_mig_3g_40gb"}, "NaN"))
    in_use = vector(({"namespace": "research"}, 48), ({"namespace": "serving", "GPU_I_PROFILE": "1g.10gb"}, 12),
                    ({"namespace": "serving", "GPU_I_PROFILE": "2g.20gb"}, 2))
    report = u.build(requested, in_use, 0, 6 * H, TEAMS, "http://p:9090")
    assert report["schema"] == "gpufleet.platform/usage_report/v1"
    assert (report["start"], report["end"], report["hours"]) == ("1970-01-01T00:00:00Z", "1970-01-01T06:00:00Z", 6)
    assert report["rows"] == [
        {"team": "inference", "namespace": "serving", "resource": "nvidia_com_mig_1g_10gb", "gpu_hours_requested": 17.0,
         "gpu_hours_in_use": 12.0},
        {"team": "inference", "namespace": "serving", "resource": "nvidia_com_mig_2g_20gb", "gpu_hours_requested": 0.0,
         "gpu_hours_in_use": 2.0},
        {"team": "research", "namespace": "research", "resource": "nvidia_com_gpu", "gpu_hours_requested": 51.0,
         "gpu_hours_in_use": 48.0},
        {"team": "", "namespace": "kube-system", "resource": "nvidia_com_gpu", "gpu_hours_requested": 1.5,
         "gpu_hours_in_use": 0.0},
    ]
    assert report["totals"] == {"gpu_hours_requested": {"nvidia_com_mig_1g_10gb": 17.0, "nvidia_com_mig_2g_20gb": 0.0,
                                                        "nvidia_com_gpu": 52.5},
                                "gpu_hours_in_use": {"nvidia_com_mig_1g_10gb": 12.0, "nvidia_com_mig_2g_20gb": 2.0,
                                                     "nvidia_com_gpu": 48.0}}
    assert [t["team"] or t["namespaces"][0] for t in report["teams"]] == ["inference", "research", "kube-system"]
    table = u.markdown(report)
    assert "| research | research | nvidia_com_gpu | 51.00 | 48.00 |" in table
    assert "| - | kube-system | nvidia_com_gpu | 1.50 | 0.00 |" in table
    assert "| **total** | | nvidia_com_gpu | 52.50 | 48.00 |" in table
    assert u.basename(report) == "gpu-hours-19700101T00Z-19700101T06Z"


def test_an_empty_answer_says_so():
    report = u.build(vector(), vector(), 0, H)
    assert report["rows"] == [] and "No GPU-hours were recorded in this window" in u.markdown(report)
    assert u.chart(report).startswith(b"\x89PNG")


@pytest.mark.parametrize("answer, message", [
    ({"status": "error", "errorType": "bad_data", "error": "parse error"},
     "Prometheus refused the requested GPU-hours query: parse error"),
    ({"status": "success", "data": {"resultType": "matrix", "result": []}},
     "Prometheus answered the requested GPU-hours query with a matrix, not an instant vector"),
])
def test_a_bad_answer(answer, message):
    with pytest.raises(UsageReportError) as exc:
        u.build(answer, vector(), 0, H)
    assert exc.value.problems == [message]


def decode_png(data):
    """(width, height, rows of RGB bytes), checking the signature, every chunk's CRC and filter type 0."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        chunks.append((kind, body))
        pos += 12 + length
    assert [chunk[0] for chunk in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, color, compression, filtering, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, color, compression, filtering, interlace) == (8, 2, 0, 0, 0)
    raw = zlib.decompress(chunks[1][1])
    stride = 1 + width * 3
    assert len(raw) == stride * height
    rows = [raw[y * stride:(y + 1) * stride] for y in range(height)]
    assert all(r[0] == 0 for r in rows)
    return width, height, [r[1:] for r in rows]


def bar_pixels(rows, y, color):
    return sum(1 for x in range(0, len(rows[y]), 3) if tuple(rows[y][x:x + 3]) == color)


def test_chart_bars_are_proportional():
    requested = vector(({"namespace": "research", "resource": "nvidia_com_gpu"}, 50),
                       ({"namespace": "serving", "resource": "nvidia_com_gpu"}, 10))
    report = u.build(requested, vector(({"namespace": "research"}, 25)), 0, H, TEAMS)
    width, height, rows = decode_png(u.chart(report))
    c = u.CHART
    assert (width, height) == (c["width"], c["top"] + 2 * c["row_h"] + c["bottom"])
    mid = c["bar_h"] // 2
    research, serving = c["top"] + mid, c["top"] + c["row_h"] + mid  # rows sorted by team: inference, research
    assert bar_pixels(rows, serving, u.REQUESTED_COLOR) == c["bar_w"]       # research 50: the longest bar
    assert bar_pixels(rows, research, u.REQUESTED_COLOR) == c["bar_w"] // 5  # inference (serving) 10
    assert bar_pixels(rows, serving + c["bar_h"] + 2, u.IN_USE_COLOR) == c["bar_w"] // 2
    assert bar_pixels(rows, research + c["bar_h"] + 2, u.IN_USE_COLOR) == 0


def test_bar_length():
    assert [u.bar_length(v, 100, 400) for v in (0, 0.01, 50, 100)] == [0, 1, 200, 400]
    assert u.bar_length(5, 0) == 0


def test_check_output_dir(tmp_path):
    assert u.check_output_dir(str(tmp_path), "d") == []
    assert u.check_output_dir(str(tmp_path / "new" / "deeper"), "d") == []
    (tmp_path / "f").write_text("x")
    assert u.check_output_dir(str(tmp_path / "f"), "d") == [
        "d: %r is not a directory (%s is a file); give a directory you can write to" % (str(tmp_path / "f"),
                                                                                        tmp_path / "f")]
    below_a_file = str(tmp_path / "f" / "sub")
    assert u.check_output_dir(below_a_file, "d")[0].startswith("d: %r is not a directory" % below_a_file)
    assert u.check_output_dir("", "d") == [
        "d is not set; give the directory the report is written to (e.g. -e d=reports/)"]
