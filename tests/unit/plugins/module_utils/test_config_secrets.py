"""Secrets never leave validation: a marker secret in every secret key, in every wrong form (and in
the variables secret references name), is refused with the key path and the allowed forms and never
printed. Also the one list of default passwords, compared after trimming and case folding."""
import os
import sys

import pytest
import yaml

from ansible_collections.gpufleet.platform.plugins.module_utils import config_issues, config_plan, config_rules

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import leak_cases  # noqa: E402  pylint: disable=wrong-import-position

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
KEY_PATHS = [config_issues.key_path(path) for path in leak_cases.SECRET_KEYS]
assert KEY_PATHS == leak_cases.KEY_PATHS


@pytest.fixture(scope="module")
def example():
    with open(os.path.join(ROOT, "config.example.yml")) as handle:
        return yaml.safe_load(handle)


def _refused(config, secret_values=None, markers=(leak_cases.MARKER,)):
    with pytest.raises(config_issues.ConfigValidationError) as info:
        config_plan.validate(config, secret_values=secret_values)
    error = info.value
    for marker in markers:
        assert marker not in str(error).replace("grafana_admin_", "")
        for issue in error.issues:
            assert marker not in str(issue).replace("grafana_admin_", "")
            assert marker not in repr(issue.value)
    return error


def test_base_config_is_valid_with_references(example):
    config = leak_cases.with_vars(example, {"grafana_admin_password": "v_g", "slurm_db_password": "v_s",
                                            "credentials": "v_s3"})
    config_plan.validate(config, secret_values={"v_g": "a-long-unique-secret-42", "v_s": "another-long-secret-7",
                                                "v_s3": {"access_key_id": "AK", "secret_access_key": "SK"}})


@pytest.mark.parametrize("form", sorted(leak_cases.WRONG_FORMS))
def test_wrong_form_names_every_key_and_never_the_value(example, form):
    error = _refused(leak_cases.with_form(example, leak_cases.WRONG_FORMS[form]), secret_values={})
    paths = [issue.path for issue in error.issues]
    for path in KEY_PATHS:
        assert any(p == path or p.startswith(path + ".") for p in paths), (path, paths)
    for issue in error.issues:
        if issue.path in KEY_PATHS[:4] and "must be {var:" in issue.message:
            assert issue.message == ("must be {var: <name of a vaulted Ansible variable>} or {generate: true}: a "
                                     "secret is never written in config.yml")


@pytest.mark.parametrize("case", sorted(leak_cases.PARENT_FORMS))
def test_wrong_parent_never_shows_the_value(example, case):
    path, value = leak_cases.PARENT_FORMS[case]
    _refused(leak_cases.put(leak_cases.base(example), path, value))


def test_not_a_mapping_never_shows_secrets():
    _refused([{"secrets": {"grafana_admin_password": leak_cases.MARKER}}])


@pytest.mark.parametrize("case", sorted(leak_cases.VAR_CASES))
def test_variable_values_never_shown(example, case):
    refs, values = leak_cases.VAR_CASES[case]
    error = _refused(leak_cases.with_vars(example, refs), secret_values=values,
                     markers=(leak_cases.MARKER, leak_cases.SHORT_MARKER, "Prom-Operator", "CHANGEME"))
    for var in refs.values():
        assert any(var in str(issue) for issue in error.issues), (var, error.issues)


def test_exact_secret_messages(example):
    config = leak_cases.with_form(example, "hunter2hunter2")
    issues = {str(issue) for issue in config_rules.check(config)}
    assert ("secrets.grafana_admin_password: must be {var: <name of a vaulted Ansible variable>} or {generate: "
            "true}: a secret is never written in config.yml (got a string; a secret's value is never shown)") in issues
    assert ("services.kserve.models[0].credentials: must be {var: <name of a vaulted Ansible variable>}: storage "
            "credentials are never written in config.yml (got a string; a secret's value is never shown)") in issues


@pytest.mark.parametrize("value", ["admin", " admin", "ADMIN", "Admin\t", "  Prom-Operator  ", "ChangeMe", "DEEPOPS",
                                   "cns-stack\n", "PASSWORD"])
def test_default_passwords_after_trim_and_case_fold(example, value):
    config = leak_cases.with_vars(example, {"grafana_admin_password": "v"})
    error = _refused(config, secret_values={"v": value}, markers=(value,))
    assert [str(i) for i in error.issues if i.path == "secrets.grafana_admin_password.var"] == [
        "secrets.grafana_admin_password.var: variable 'v' holds a well-known default password; choose a unique "
        "secret (at least 12 characters)"]


def test_one_list_of_default_passwords():
    """The monitoring role keeps no copy: validation's KNOWN_DEFAULT_SECRETS is the list."""
    for dirpath, _dirs, files in os.walk(os.path.join(ROOT, "roles")):
        for name in files:
            with open(os.path.join(dirpath, name), errors="replace") as handle:
                text = handle.read()
            assert "prom-operator, deepops" not in text, os.path.join(dirpath, name)
    assert {"admin", "prom-operator", "deepops", "cns-stack", "password", "changeme", "grafana"} <= \
        config_rules.KNOWN_DEFAULT_SECRETS
