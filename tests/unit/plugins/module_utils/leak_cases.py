"""A marker secret in every secret key of config.yml, in every wrong form, and in the variables that
secret references name: shared by the unit test (tests/unit/plugins/module_utils/test_config_secrets.py) and the
integration test that runs the validate playbook at -vvvv (tests/integration/test_secret_leaks.py).
Validation must name the key path and the allowed forms, and the marker must never come out."""
import copy

MARKER = "Mk7-s3cr3t-LEAK-marker"
SHORT_MARKER = "Qx7!kP"  # a password that fails the length rule

SECRET_KEYS = [
    ("secrets", "grafana_admin_password"),
    ("secrets", "slurm_db_password"),
    ("secrets", "registry_credentials"),
    ("secrets", "alertmanager_receivers"),
    ("services", "kserve", "models", 0, "credentials"),
]
KEY_PATHS = ["secrets.grafana_admin_password", "secrets.slurm_db_password", "secrets.registry_credentials",
             "secrets.alertmanager_receivers", "services.kserve.models[0].credentials"]

# name -> the wrong value put at every secret key
WRONG_FORMS = {
    "plain-string": MARKER,
    "padded-string": "  %s  " % MARKER,
    "multi-line": "line one\n%s\n" % MARKER,
    "list": [MARKER],
    "key-is-secret": {MARKER: True},
    "var-not-a-name": {"var": MARKER},
    "var-and-value": {"var": "vault_ok", "value": MARKER},
    "var-list": {"var": ["vault_ok", MARKER]},
    "var-nested": {"var": {"name": MARKER}},
    "generate-string": {"generate": MARKER},
    "generate-and-value": {"generate": True, "password": MARKER},
    "empty-var": {"var": "", "hint": MARKER},
}

# Wrong forms one level up: the section or list that holds the secret keys.
PARENT_FORMS = {
    "secrets-string": (("secrets",), MARKER),
    "secrets-list": (("secrets",), [MARKER, {"grafana_admin_password": MARKER}]),
    "models-mapping": (("services", "kserve", "models"), {"credentials": MARKER}),
    "model-list": (("services", "kserve", "models", 0), [{"credentials": MARKER}]),
}

# {var: NAME} references whose variables hold bad values with the marker in them: name -> (refs, variables)
VAR_CASES = {
    "not-strings": ({"grafana_admin_password": "v_grafana", "slurm_db_password": "v_slurm",
                     "registry_credentials": "v_registry", "alertmanager_receivers": "v_am", "credentials": "v_s3"},
                    {"v_grafana": {"password": MARKER}, "v_slurm": [MARKER], "v_registry": {"x": MARKER},
                     "v_am": {"receivers": [{"nomen": MARKER}]}, "v_s3": {"access_key_id": MARKER}}),
    "defaults-padded-and-cased": ({"grafana_admin_password": "v_grafana", "slurm_db_password": "v_slurm"},
                                  {"v_grafana": "  Prom-Operator  ", "v_slurm": "CHANGEME\t"}),
    "short": ({"grafana_admin_password": "v_grafana", "slurm_db_password": "v_slurm"},
              {"v_grafana": SHORT_MARKER, "v_slurm": " %s " % SHORT_MARKER}),
}


def base(example):
    """config.example.yml with every secret key in play: Slurm accounting on, KServe on with an s3:// model."""
    config = copy.deepcopy(example)
    slurm = config["services"]["slurm"]
    slurm.update(enabled=True, accounting={"enabled": True, "database_host": "db.example"})
    slurm["nodesets"] = []
    slurm.pop("partitions", None)
    kserve = config["services"]["kserve"]
    kserve["enabled"] = True
    kserve["models"][0]["storage_uri"] = "s3://models/llama-8b"
    return config


def put(config, path, value):
    node = config
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = copy.deepcopy(value)
    return config


def with_form(example, value):
    """base() with ``value`` at every secret key."""
    config = base(example)
    for path in SECRET_KEYS:
        put(config, path, value)
    return config


def with_vars(example, refs):
    config = base(example)
    for key, var in refs.items():
        path = ("services", "kserve", "models", 0, "credentials") if key == "credentials" else ("secrets", key)
        put(config, path, {"var": var})
    return config
