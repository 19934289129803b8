"""Hostile and careless config.yml files through both entry points, ``-i FILE`` and
``-e gpufleet_config_file=FILE``: each is refused by the validate play with the one exact message
that names the file given (the loader's unit tests hold the table), quickly and in little memory,
and the inventory warns with the same message instead of handing the file to other plugins."""
import json
import sys
import time

import pytest
from ansible_runs import UNIT_MODULE_UTILS, run, run_measured

sys.path.insert(0, UNIT_MODULE_UTILS)
import hostile_files  # noqa: E402  pylint: disable=wrong-import-position

ENTRY_POINTS = {
    "inventory": lambda path: ["-i", path],
    "extra-var": lambda path: ["-i", "localhost,", "-e", "gpufleet_config_file=%s" % path],
}


def _squeezed(text):
    """``text`` without whitespace: Ansible wraps warnings at 79 columns, breaking after hyphens too."""
    return "".join(text.split())


def _validate(path, entry):
    started = time.monotonic()
    result, maxrss = run_measured("ansible-playbook", *ENTRY_POINTS[entry](path), "playbooks/validate.yml",
                                  ANSIBLE_STDOUT_CALLBACK="json")
    elapsed = time.monotonic() - started
    report = json.loads(result.stdout)
    [task] = [t for t in report["plays"][0]["tasks"] if t["task"]["name"].startswith("Validate config.yml")]
    result.maxrss_kib = maxrss
    return result, task["hosts"]["localhost"], elapsed


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("name", sorted(hostile_files.CASES))
def test_refused_with_the_exact_message(tmp_path, name, entry):
    path = str(tmp_path / "config.yml")
    with open(path, "wb") as handle:
        handle.write(hostile_files.CASES[name][0])
    result, host, elapsed = _validate(path, entry)
    assert result.returncode != 0
    assert host.get("failed") is True
    assert host["msg"] == hostile_files.message(name, path)
    if entry == "inventory":
        assert _squeezed(result.stderr).count(_squeezed(hostile_files.message(name, path))) == 1
        assert "Unable to parse" not in result.stderr      # no other inventory plugin read the file
    assert "Traceback" not in result.stdout + result.stderr
    assert elapsed < 60  # the whole ansible-playbook run; the loader's own bound (5 s) is a unit test
    assert result.maxrss_kib < 200 * 1024  # KiB: the largest process of this ansible-playbook run


def test_missing_file_named_the_same_way(tmp_path):
    path = str(tmp_path / "nope.yml")
    _result, host, _elapsed = _validate(path, "extra-var")
    assert host["msg"] == ("config file %s not found; copy config.example.yml to config.yml, or pass "
                           "-e gpufleet_config_file=PATH" % path)


def test_inventory_lists_nothing_and_warns(tmp_path):
    path = str(tmp_path / "config.yml")
    with open(path, "wb") as handle:
        handle.write(hostile_files.CASES["alias-bomb"][0])
    result = run("ansible-inventory", "-i", path, "--list")
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert listing["all"]["children"] == ["ungrouped"]
    assert _squeezed(hostile_files.message("alias-bomb", path)) in _squeezed(result.stderr)


def test_classic_yaml_inventory_is_not_claimed():
    """A YAML inventory that is no gpufleet config (hosts.yml with -e) still goes to the yaml plugin."""
    result = run("ansible-inventory", "-i", "inventories/example/classic/hosts.yml", "--list")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["_meta"]["hostvars"], result.stdout
    assert "gpufleet" not in result.stderr
