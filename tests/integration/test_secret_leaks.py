"""Secrets never leave, through real runs: the validate playbook at -vvvv (the inventory plugin and
the action both read the file) with a marker secret in every secret key in every wrong form
(tests/unit/plugins/module_utils/leak_cases.py), in the variables secret references name, and on lines that break
the YAML. The marker must not appear in stdout, stderr, the Ansible log, or any file the run writes."""
import json
import os
import sys

import pytest
import yaml
from ansible_runs import ROOT, UNIT_MODULE_UTILS, run

sys.path.insert(0, UNIT_MODULE_UTILS)
import leak_cases  # noqa: E402  pylint: disable=wrong-import-position

MARKERS = (leak_cases.MARKER, leak_cases.SHORT_MARKER)


@pytest.fixture(scope="module")
def example():
    with open(os.path.join(ROOT, "config.example.yml")) as handle:
        return yaml.safe_load(handle)


def _run_and_scan(tmp_path, text, extra_vars=None, markers=MARKERS):
    """Run validate.yml at -vvvv on ``text``; assert it failed and that no marker came out."""
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    config = inputs / "config.yml"
    config.write_text(text) if isinstance(text, str) else config.write_bytes(text)
    args = ["-i", str(config)]
    if extra_vars is not None:
        (inputs / "vars.json").write_text(json.dumps(extra_vars))
        args += ["-e", "@%s" % (inputs / "vars.json")]
    written = tmp_path / "written"
    written.mkdir()
    result = run("ansible-playbook", "-vvvv", *args, "playbooks/validate.yml",
                 ANSIBLE_LOG_PATH=str(written / "ansible.log"), ANSIBLE_LOCAL_TEMP=str(written / "tmp"),
                 ANSIBLE_RETRY_FILES_ENABLED="1", ANSIBLE_RETRY_FILES_SAVE_PATH=str(written / "retry"))
    assert result.returncode != 0, result.stdout
    assert (written / "ansible.log").stat().st_size > 0
    for marker in markers:
        assert marker not in result.stdout
        assert marker not in result.stderr
        for dirpath, _dirs, files in os.walk(str(written)):
            for name in files:
                with open(os.path.join(dirpath, name), "rb") as handle:
                    assert marker.encode() not in handle.read(), os.path.join(dirpath, name)
    return result


@pytest.mark.parametrize("form", sorted(leak_cases.WRONG_FORMS))
def test_wrong_form_at_every_secret_key(tmp_path, example, form):
    config = leak_cases.with_form(example, leak_cases.WRONG_FORMS[form])
    result = _run_and_scan(tmp_path, yaml.safe_dump(config, sort_keys=False))
    for path in leak_cases.KEY_PATHS:  # every key is named
        assert "- %s" % path in result.stdout


@pytest.mark.parametrize("case", sorted(leak_cases.PARENT_FORMS))
def test_wrong_parent_form(tmp_path, example, case):
    path, value = leak_cases.PARENT_FORMS[case]
    config = leak_cases.put(leak_cases.base(example), path, value)
    _run_and_scan(tmp_path, yaml.safe_dump(config, sort_keys=False))


@pytest.mark.parametrize("case", sorted(leak_cases.VAR_CASES))
def test_variables_holding_bad_secrets(tmp_path, example, case):
    refs, values = leak_cases.VAR_CASES[case]
    config = leak_cases.with_vars(example, refs)
    result = _run_and_scan(tmp_path, yaml.safe_dump(config, sort_keys=False), extra_vars=values,
                           markers=MARKERS + ("Prom-Operator", "CHANGEME"))
    for var in refs.values():
        assert "'%s'" % var in result.stdout


@pytest.mark.parametrize("text", [
    "plugin: gpufleet.platform.config\nsecrets:\n  grafana_admin_password: %s: x\n",          # YAML error on it
    "plugin: gpufleet.platform.config\nsecrets: {grafana_admin_password: '%s\n",            # unterminated quote
    "plugin: gpufleet.platform.config\nsecrets:\n  x: %s\n  x: %s\n",                       # duplicate key
    "plugin: gpufleet.platform.config\nsecrets:\n\tgrafana_admin_password: %s\n",          # a tab
], ids=["mapping-in-value", "unterminated-quote", "duplicate-key", "tab"])
def test_broken_yaml_around_a_secret(tmp_path, text):
    _run_and_scan(tmp_path, text.replace("%s", leak_cases.MARKER))


def test_marker_in_a_non_utf8_file(tmp_path):
    _run_and_scan(tmp_path, b"plugin: gpufleet.platform.config\nsecrets: {grafana_admin_password: "
                  + leak_cases.MARKER.encode() + b"\xff}\n")
