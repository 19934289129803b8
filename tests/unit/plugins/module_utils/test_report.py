"""The report of the doctor and verify (schema gpufleet.platform/report/v1): checks, build, table, collect."""
import json

import pytest

from ansible_collections.gpufleet.platform.plugins.module_utils import report as r

CHECKS = [
    r.check("gpu-2", "gpu_model", "fail", "pool a100 declares a100-sxm4-80gb but nvidia-smi found l40s x1", {"found": {"l40s": 1}}),
    r.check("cp-1", "swap", "ok", "swap is off"),
    r.check("gpu-1", "time_sync", "warn", "chrony is active but not synchronised"),
    r.check("gpu-1", "disk", "ok", "/ 40 GiB free"),
    r.check("controller", "ansible_core", "skip", "not checked"),
]


def test_check_shape():
    assert r.check("h", "c", "ok", "fine") == {"host": "h", "check": "c", "status": "ok", "message": "fine", "details": {}}
    assert r.check("h", "c", "warn", "", {"a": 1})["details"] == {"a": 1}


@pytest.mark.parametrize("args, message", [
    (("h", "c", "error", "m"), "check c on h: unknown status 'error'; allowed: ok, warn, fail, skip."),
    (("h", "c", "OK", "m"), "unknown status 'OK'"),
    (("", "c", "ok", "m"), "check host must not be empty."),
    ((None, "c", "ok", "m"), "check host must be a string, got None"),
    (("h", "", "ok", "m"), "check name (host h) must not be empty."),
    (("h", "c", "ok", 3), "message of check c on h must be a string"),
    (("h", "c", "ok", "m", ["x"]), "details of check c on h must be a mapping or null"),
])
def test_check_refuses_bad_input(args, message):
    with pytest.raises(r.ReportError) as e:
        r.check(*args)
    assert message in str(e.value)


def test_build_sorts_counts_and_lists_failures():
    report = r.build("preflight", CHECKS, {"cluster": "molecule"})
    assert report["schema"] == "gpufleet.platform/report/v1"
    assert report["kind"] == "preflight"
    assert report["ok"] is False
    assert report["summary"] == {"ok": 2, "warn": 1, "fail": 1, "skip": 1}
    assert report["hosts"] == ["controller", "cp-1", "gpu-1", "gpu-2"]
    assert [(c["host"], c["check"]) for c in report["checks"]] == [
        ("controller", "ansible_core"), ("cp-1", "swap"), ("gpu-1", "disk"), ("gpu-1", "time_sync"), ("gpu-2", "gpu_model")]
    assert report["failures"] == [CHECKS[0]]
    assert report["meta"] == {"cluster": "molecule"}
    assert list(report) == ["schema", "kind", "ok", "summary", "hosts", "checks", "failures", "meta"]
    json.dumps(report)  # plain JSON


def test_build_ok_without_failures_and_empty():
    assert r.build("verify", CHECKS[1:])["ok"] is True
    empty = r.build("verify", [])
    assert empty["ok"] is True and empty["hosts"] == [] and empty["summary"] == {"ok": 0, "warn": 0, "fail": 0, "skip": 0}
    assert empty["meta"] == {}


def test_build_accepts_checks_without_message_or_details():
    report = r.build("verify", [{"host": "h", "check": "c", "status": "ok"}])
    assert report["checks"] == [{"host": "h", "check": "c", "status": "ok", "message": "", "details": {}}]


def test_build_does_not_share_the_callers_objects():
    checks = [r.check("h", "c", "ok", "m", {"a": 1})]
    meta = {"x": 1}
    report = r.build("verify", checks, meta)
    report["checks"][0]["details"]["a"] = 2
    report["meta"]["x"] = 2
    assert checks[0]["details"] == {"a": 1} and meta == {"x": 1}


@pytest.mark.parametrize("kind, checks, meta, message", [
    ("doctor", [], None, "unknown report kind 'doctor'; allowed: preflight, verify."),
    ("verify", "nope", None, "checks must be a list of check mappings"),
    ("verify", [], ["x"], "meta must be a mapping"),
    ("verify", ["x"], None, "checks[0] must be a mapping"),
    ("verify", [{"host": "h", "check": "c", "status": "bad"}], None, "unknown status 'bad'; allowed: ok, warn, fail, skip."),
    ("verify", [{"host": "h", "check": "c"}], None, "checks[0] lacks status"),
    ("verify", [{"host": "h", "check": "c", "status": "ok", "extra": 1}], None, "checks[0] has unknown keys extra"),
])
def test_build_refuses_bad_input(kind, checks, meta, message):
    with pytest.raises(r.ReportError) as e:
        r.build(kind, checks, meta)
    assert message in str(e.value)


def test_table_is_fixed_width_with_a_summary():
    text = r.table(r.build("preflight", CHECKS))
    lines = text.splitlines()
    assert lines[0].split(" | ") == ["HOST      ", "CHECK       ", "STATUS", "MESSAGE"]
    assert set(lines[1]) == {"-", "+"}
    assert len(lines) == 2 + len(CHECKS) + 1
    # the STATUS column starts at the same offset on every row
    offsets = {line.index(" | ", line.index(" | ") + 1) for line in lines[2:-1]}
    assert len(offsets) == 1
    assert lines[2].startswith("controller | ansible_core | SKIP   | not checked")
    assert "gpu-2      | gpu_model    | FAIL   | pool a100 declares" in text
    assert lines[-1] == "preflight FAILED: 4 hosts, 5 checks: 2 ok, 1 warn, 1 fail, 1 skip"


def test_check_puts_the_message_on_one_line():
    assert r.check("h", "c", "ok", "driver 595.91.07 is\n         installed ")["message"] == "driver 595.91.07 is installed"
    assert r.build("verify", [{"host": "h", "check": "c", "status": "ok", "message": "a\nb"}])["checks"][0]["message"] == "a b"


def test_table_puts_messages_on_one_line():
    report = r.build("verify", [r.check("n", "c", "ok", "two\n  lines ")])
    assert r.table(report).splitlines()[2] == "n    | c     | OK     | two lines"
    assert r.table(report).splitlines()[-1] == "verify OK: 1 hosts, 1 checks: 1 ok, 0 warn, 0 fail, 0 skip"


def test_table_refuses_a_non_report():
    with pytest.raises(r.ReportError) as e:
        r.table({"checks": []})
    assert "needs a report built by report_build (schema gpufleet.platform/report/v1)" in str(e.value)


def test_failure_lines():
    assert r.failure_lines(r.build("preflight", CHECKS)) == [
        "gpu-2: gpu_model: pool a100 declares a100-sxm4-80gb but nvidia-smi found l40s x1"]


def test_collect_marks_hosts_without_the_fact():
    hostvars = {
        "cp-1": {"gpufleet_report_checks": [CHECKS[1]]},
        "gpu-1": {"gpufleet_report_checks": [CHECKS[2], CHECKS[3]]},
        "gpu-2": {"other": 1},
    }
    checks = r.collect(hostvars, ["cp-1", "gpu-1", "gpu-2", "ghost"])
    assert checks[:3] == [CHECKS[1], CHECKS[2], CHECKS[3]]
    assert checks[3:] == [
        {"host": "gpu-2", "check": "completed", "status": "fail", "details": {},
         "message": "did not complete the checks (unreachable or a task failed; see the output above)"},
        {"host": "ghost", "check": "completed", "status": "fail", "details": {},
         "message": "did not complete the checks (unreachable or a task failed; see the output above)"},
    ]
    report = r.build("preflight", checks)
    assert [(c["host"], c["check"]) for c in report["failures"]] == [("ghost", "completed"), ("gpu-2", "completed")]


def test_collect_other_fact_and_single_host():
    assert r.collect({"h": {"mine": [CHECKS[1]]}}, "h", fact="mine") == [CHECKS[1]]


def test_collect_refuses_a_fact_that_is_not_a_list():
    with pytest.raises(r.ReportError) as e:
        r.collect({"h": {"gpufleet_report_checks": "oops"}}, ["h"])
    assert "host h: gpufleet_report_checks must be a list of checks, got 'oops'." in str(e.value)
