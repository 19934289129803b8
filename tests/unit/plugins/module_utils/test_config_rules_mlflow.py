"""services.mlflow and services.kserve.models[].registry: schema and cross-field rules, with exact messages.

Every bad case starts from config.example.yml with MLflow enabled (a complete, valid services.mlflow) and
asserts the exact problem line; a secret's value is never part of one.
"""
import copy
import os

import pytest
import yaml

from ansible_collections.gpufleet.platform.plugins.module_utils import config_plan, config_rules
from ansible_collections.gpufleet.platform.tests.unit.plugins.module_utils import leak_cases

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
MLFLOW = {
    "enabled": True,
    "backend_store": {"host": "postgres.example.internal", "user": "mlflow",
                      "password": {"var": "vault_mlflow_db_password"}},
    "artifact_store": {"endpoint": "https://s3.example.internal", "bucket": "mlflow",
                       "credentials": {"var": "vault_mlflow_s3_credentials"}},
    "auth": {"admin_password": {"generate": True}},
}
SECRETS = {"vault_mlflow_db_password": "Db-password-long-enough-1",
           "vault_mlflow_s3_credentials": {"access_key_id": "AKIAEXAMPLE", "secret_access_key": "S3-secret-9xk2"},
           "vault_mlflow_admin_password": "Admin-password-long-2",
           "vault_grafana_admin_password": "Grafana-password-long-3"}


@pytest.fixture()
def config():
    with open(os.path.join(ROOT, "config.example.yml")) as handle:
        config = yaml.safe_load(handle)
    config["services"]["mlflow"] = copy.deepcopy(MLFLOW)
    return config


def lines(config, secrets=None):
    return [str(issue) for issue in config_rules.check(config, secrets)]


def registry_model(config, registry, **extra):
    model = dict(config["services"]["kserve"]["models"][0], registry=registry)
    model.pop("storage_uri")
    model.update(extra)
    config["services"]["kserve"]["enabled"] = True
    config["services"]["kserve"]["models"] = [model]
    return model


def test_complete_mlflow_is_valid_and_planned(config):
    assert lines(config, SECRETS) == []
    plan = config_plan.validate(config, SECRETS)["services"]["mlflow"]
    assert plan["charts"] == []
    assert plan["namespace"] == "mlflow"
    assert plan["url"] == plan["service_url"] == "http://mlflow.mlflow.svc.cluster.local:5000"
    assert plan["artifacts_destination"] == "s3://mlflow/mlflow"
    assert plan["image"] == "docker.io/burakince/mlflow:3.15.1"
    assert plan["auth"] == {"admin_user": "gpufleet-admin", "default_permission": "READ",
                            "admin_password": {"generate": True}}
    assert plan["backend_store"]["port"] == 5432 and plan["backend_store"]["sslmode"] == "require"
    assert "mlflow.mlflow.svc.cluster.local:*" in plan["allowed_hosts"]


def test_disabled_mlflow_needs_nothing(config):
    config["services"]["mlflow"] = {"enabled": False}
    assert lines(config) == []


@pytest.mark.parametrize("key,message", [
    ("backend_store", "services.mlflow.backend_store: is required when services.mlflow.enabled is true: an existing "
                      "PostgreSQL database ({host, user, password: {var: vault_mlflow_db_password}}); the collection "
                      "installs none"),
    ("artifact_store", "services.mlflow.artifact_store: is required when services.mlflow.enabled is true: an "
                       "S3-compatible bucket ({endpoint, bucket, credentials: {var: vault_mlflow_s3_credentials}})"),
    ("auth", "services.mlflow.auth.admin_password: is required when services.mlflow.enabled is true: {var: <vaulted "
             "variable>} or {generate: true}; authentication is always on and the collection never ships a default"),
])
def test_enabled_without_a_store_or_admin_password(config, key, message):
    del config["services"]["mlflow"][key]
    assert lines(config) == [message]


def test_missing_store_keys_are_named(config):
    config["services"]["mlflow"]["artifact_store"] = {"bucket": "mlflow"}
    assert lines(config) == [
        "services.mlflow.artifact_store.endpoint: required key is missing",
        "services.mlflow.artifact_store.credentials: required key is missing",
    ]


@pytest.mark.parametrize("path,value,message", [
    ("backend_store.password", "hunter2-literal", "services.mlflow.backend_store.password: must be {var: <name of a "
     "vaulted Ansible variable>}: a secret is never written in config.yml (got a string; a secret's value is never "
     "shown)"),
    ("auth.admin_password", "hunter2-literal", "services.mlflow.auth.admin_password: must be {var: <name of a "
     "vaulted Ansible variable>} or {generate: true}: a secret is never written in config.yml (got a string; a "
     "secret's value is never shown)"),
    ("artifact_store.credentials", {"access_key_id": "hunter2-literal"}, "services.mlflow.artifact_store.credentials: "
     "must be {var: <name of a vaulted Ansible variable>}: storage credentials are never written in config.yml (got "
     "a mapping; a secret's value is never shown)"),
    ("backend_store.password", {"generate": True}, "services.mlflow.backend_store.password: must name a vaulted "
     "variable ({var: vault_mlflow_db_password}): the existing database already has its password, a generated one "
     "would not match"),
    ("artifact_store.credentials", {"generate": True}, "services.mlflow.artifact_store.credentials: storage "
     "credentials come from your store, never generated: reference a vaulted variable ({var: "
     "vault_mlflow_s3_credentials})"),
])
def test_secret_forms(config, path, value, message):
    section, key = path.split(".")
    config["services"]["mlflow"][section][key] = value
    assert lines(config) == [message]
    assert all("hunter2" not in line for line in lines(config))


@pytest.mark.parametrize("var,value,message", [
    ("vault_mlflow_db_password", None, "services.mlflow.backend_store.password.var: names variable "
     "'vault_mlflow_db_password', which is not defined; put it in an Ansible Vault file (ansible-vault create "
     "group_vars/all/vault.yml)"),
    ("vault_mlflow_db_password", "  ", "services.mlflow.backend_store.password.var: variable "
     "'vault_mlflow_db_password' must hold the database user's password (a non-empty string)"),
    ("vault_mlflow_db_password", "ChangeMe", "services.mlflow.backend_store.password.var: variable "
     "'vault_mlflow_db_password' holds a well-known default password; choose a unique secret (at least 12 characters)"),
    ("vault_mlflow_s3_credentials", {"access_key_id": "AKIA"}, "services.mlflow.artifact_store.credentials.var: "
     "variable 'vault_mlflow_s3_credentials' must hold a mapping with non-empty access_key_id and secret_access_key"),
    ("vault_mlflow_admin_password", "short-pw", "services.mlflow.auth.admin_password.var: variable "
     "'vault_mlflow_admin_password' holds a password shorter than 12 characters"),
    ("vault_mlflow_admin_password", "password", "services.mlflow.auth.admin_password.var: variable "
     "'vault_mlflow_admin_password' holds a well-known default password; choose a unique secret (at least 12 "
     "characters)"),
])
def test_secret_values(config, var, value, message):
    config["services"]["mlflow"]["auth"]["admin_password"] = {"var": "vault_mlflow_admin_password"}
    secrets = dict(SECRETS)
    if value is None:
        del secrets[var]
    else:
        secrets[var] = value
    assert lines(config, secrets) == [message]


def test_registry_models_plan_as_s3_with_the_artifact_store(config):
    registry_model(config, {"model": "churn", "alias": "champion"})
    config["services"]["mlflow"]["artifact_store"]["endpoint"] = "http://minio.storage:9000"
    config["services"]["mlflow"]["artifact_store"]["region"] = "eu-west-1"
    assert lines(config, SECRETS) == []
    model = config_plan.validate(config, SECRETS)["services"]["kserve"]["models"][0]
    assert model["registry"] == {"model": "churn", "alias": "champion"}
    assert (model["scheme"], model["storage_uri"]) == ("s3", None)
    assert model["credentials"] == {"var": "vault_mlflow_s3_credentials"}
    expected = ("minio.storage:9000", False, "eu-west-1")
    assert (model["s3_endpoint"], model["s3_use_https"], model["s3_region"]) == expected


@pytest.mark.parametrize("mutate,expected", [
    (lambda c: registry_model(c, {"model": "churn", "version": 3}, storage_uri="hf://org/model"),
     ["services.kserve.models[0].registry: give storage_uri or registry, not both (got {'model': 'churn', "
      "'version': 3})"]),
    (lambda c: c["services"]["kserve"]["models"][0].pop("storage_uri"),
     ["services.kserve.models[0]: needs storage_uri (hf://, pvc:// or s3://) or registry ({model: NAME, version: N} "
      "or {model: NAME, alias: A})"]),
    (lambda c: (registry_model(c, {"model": "churn", "version": 3}), c["services"]["mlflow"].update(enabled=False)),
     ["services.kserve.models[0].registry: needs services.mlflow.enabled: true: registry models are resolved against "
      "the collection's MLflow and read with services.mlflow.artifact_store.credentials (got {'model': 'churn', "
      "'version': 3})"]),
    (lambda c: registry_model(c, {"model": "churn", "version": 3}, credentials={"var": "vault_s3"}),
     ["services.kserve.models[0].credentials: a registry model is read with services.mlflow.artifact_store."
      "credentials; remove the key"]),
])
def test_registry_rules(config, mutate, expected):
    config["services"]["kserve"]["enabled"] = True
    mutate(config)
    assert lines(config) == expected


@pytest.mark.parametrize("registry", [{"model": "churn"}, {"model": "churn", "version": 0},
                                      {"model": "churn", "version": 1, "alias": "a"}, {"model": "", "alias": "a"},
                                      {"model": "churn", "alias": "bad alias"}])
def test_registry_shape(config, registry):
    registry_model(config, registry)
    assert lines(config) == ["services.kserve.models[0].registry: is not valid here: Serve a version of a model in "
                             "the MLflow registry (instead of storage_uri): {model: NAME, version: N} or {model: NAME, "
                             "alias: A}; resolved to its artifact location when the kserve role runs (needs "
                             "services.mlflow) (got %r)" % (registry,)]


def test_credential_vars_of_an_enabled_mlflow(config):
    config["services"]["mlflow"]["auth"]["admin_password"] = {"var": "vault_mlflow_admin_password"}
    names = ["vault_mlflow_admin_password", "vault_mlflow_db_password", "vault_mlflow_s3_credentials"]
    assert set(names) <= set(config_rules.credential_vars(config))
    config["services"]["mlflow"]["enabled"] = False
    assert not set(names) & set(config_rules.credential_vars(config))


@pytest.mark.parametrize("form", sorted(leak_cases.WRONG_FORMS))
@pytest.mark.parametrize("path", ["backend_store.password", "artifact_store.credentials", "auth.admin_password"])
def test_a_wrong_form_never_shows_the_value(config, form, path):
    section, key = path.split(".")
    config["services"]["mlflow"][section][key] = copy.deepcopy(leak_cases.WRONG_FORMS[form])
    found = lines(config, SECRETS)
    assert any(line.startswith("services.mlflow." + path) for line in found), found
    assert not any(leak_cases.MARKER in line for line in found)


def test_variable_values_never_shown(config):
    config["services"]["mlflow"]["auth"]["admin_password"] = {"var": "vault_mlflow_admin_password"}
    secrets = {"vault_mlflow_db_password": [leak_cases.MARKER], "vault_mlflow_admin_password": leak_cases.SHORT_MARKER,
               "vault_mlflow_s3_credentials": {"access_key_id": leak_cases.MARKER}}
    found = lines(config, secrets)
    assert len(found) == 3
    assert not any(leak_cases.MARKER in line or leak_cases.SHORT_MARKER in line for line in found)
