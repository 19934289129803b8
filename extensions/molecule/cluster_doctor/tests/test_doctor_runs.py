"""ansible-playbook runs of the doctor against the converged containers: with the default it exits non-zero
listing the failure; check mode changes nothing and gives the same report; an unreachable host is reported."""
import json

from conftest import NODES, PREFLIGHT, ansible_playbook, load_report, show

FAILURE = "doctor-gpu-2: gpu_model: pool a100 declares GPU model a100-sxm4-80gb but nvidia-smi found h100-sxm5-80gb x8"


def statuses(report):
    return {(c["host"], c["check"]): c["status"] for c in report["checks"]}


def test_doctor_in_check_mode_exits_non_zero_listing_every_failure_unreachable_host_included(tmp_path):
    # one doctor run (they take half a minute): check mode, the default exit status, and a fourth host on a closed
    # port of this machine (SSH connection refused at once)
    extra = tmp_path / "ghost.yml"
    extra.write_text(json.dumps({"k8s_cluster": {"hosts": {"doctor-ghost": {
        "ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 1, "ansible_user": "nobody"}}}}))
    path = tmp_path / "report.json"
    rc, out, recap = ansible_playbook(PREFLIGHT, "--check", "--diff", "-e", "gpufleet_preflight_fail_on_failure=true",
                                      "-e", "gpufleet_preflight_report=%s" % path, inventories=[extra])
    assert rc != 0, show(out)
    assert "preflight FAILED, 2 failed check(s) (report: %s):\\n" % path in out, show(out)
    assert "\\ndoctor-ghost: ssh: unreachable as nobody at 127.0.0.1" in out, show(out)
    assert "\\n%s" % FAILURE in out, show(out)
    assert "preflight FAILED: 5 hosts, " in out, show(out)  # the table's summary line
    assert all(recap[name]["changed"] == 0 and recap[name]["failed"] == 0 for name in NODES + ("doctor-ghost",)), recap
    assert recap["localhost"]["failed"] == 1 and recap["localhost"]["changed"] == 0, recap
    report = load_report(str(path))
    ghost = [c for c in report["checks"] if c["host"] == "doctor-ghost"]
    assert [(c["check"], c["status"]) for c in ghost] == [("ssh", "fail")], ghost
    assert ghost[0]["message"].startswith("unreachable as nobody at 127.0.0.1: "), ghost
    assert [(c["host"], c["check"]) for c in report["failures"]] == [("doctor-ghost", "ssh"), ("doctor-gpu-2", "gpu_model")]
    # written in check mode too, with the same results as the converge's run for the containers
    assert {k: v for k, v in statuses(report).items() if k[0] != "doctor-ghost"} == statuses(load_report())


def test_bad_setting_stops_before_any_host_is_checked(tmp_path):
    rc, out, recap = ansible_playbook(PREFLIGHT, "-e", '{"preflight_skip_checks": ["swapp"]}',
                                      "-e", "gpufleet_preflight_report=%s" % (tmp_path / "r.json"))
    assert rc != 0, show(out)
    assert 'preflight_skip_checks has unknown checks [\\"swapp\\"]' in out, show(out)
    assert not (tmp_path / "r.json").exists()
