"""The report filters: module_utils errors become AnsibleFilterError with the filter's name."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.gpufleet.platform.plugins.filter import report as f


def test_filters_are_registered():
    assert set(f.FilterModule().filters()) == {"report_build", "report_table", "report_collect", "report_failures"}


def test_build_table_failures_roundtrip():
    checks = [{"host": "a", "check": "x", "status": "fail", "message": "broken"}, {"host": "a", "check": "y", "status": "ok"}]
    report = f.report_build(checks, "verify", {"cluster": "c"})
    assert report["ok"] is False and report["meta"] == {"cluster": "c"}
    assert f.report_table(report).splitlines()[-1] == "verify FAILED: 1 hosts, 2 checks: 1 ok, 0 warn, 1 fail, 0 skip"
    assert f.report_failures(report) == ["a: x: broken"]
    assert f.report_build(checks, "verify")["meta"] == {}


def test_collect():
    checks = f.report_collect({"a": {"gpufleet_report_checks": []}}, ["a", "b"])
    assert checks == [{"host": "b", "check": "completed", "status": "fail", "details": {},
                       "message": "did not complete the checks (unreachable or a task failed; see the output above)"}]


@pytest.mark.parametrize("call, message", [
    (lambda: f.report_build([{"host": "a", "check": "x", "status": "nope"}], "verify"),
     "report_build: check x on a: unknown status 'nope'; allowed: ok, warn, fail, skip."),
    (lambda: f.report_table({}), "report_table: table() needs a report built by report_build"),
    (lambda: f.report_collect({"a": {"gpufleet_report_checks": 1}}, ["a"]), "report_collect: host a: gpufleet_report_checks must be a list"),
    (lambda: f.report_failures({}), "report_failures needs a report built by report_build"),
])
def test_errors_name_the_filter(call, message):
    with pytest.raises(AnsibleFilterError) as e:
        call()
    assert message in str(e.value)
