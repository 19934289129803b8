# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# Apache License 2.0 (see LICENSE)
"""What is wrong with config.yml, in words: the issue and error types, key paths, secret masking, and the
JSON Schema's errors turned into messages that name the key path, the bad value and what is allowed.

Pure functions over plain data; no Ansible imports. The rules (``config_rules``) report through
``ConfigIssue`` and ``ConfigWarning``; ``ConfigValidationError`` lists every issue.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib
import re

try:
    import jsonschema
except ImportError:  # pragma: no cover - reported by schema_issues()
    jsonschema = None

from ansible_collections.gpufleet.platform.plugins.module_utils import config_schema

MAX_REPORTED = 100  # problems listed in the message; a hostile file can have tens of thousands
# Where config.yml holds secret references: nothing at or under these paths is ever printed.
SECRET_PATH = re.compile(r"^(secrets|services\.kserve\.models\[[0-9]+\]\.credentials|"
                         r"services\.mlflow\.(backend_store\.password|artifact_store\.credentials|auth\.admin_password))"
                         r"(\.|\[|$)")
SECRET_KEYS = frozenset(["secrets", "credentials", "password", "admin_password"])
SECRET_FORMS = "{var: <name of a vaulted Ansible variable>} or {generate: true}"
NOT_SHOWN = "<not shown>"


def is_secret_path(path):
    """True for a key path at or under a secret reference (``secrets.*``, a model's ``credentials``)."""
    return bool(SECRET_PATH.match(path or ""))


def _kind(value):
    for types, name in ((bool, "a boolean"), (str, "a string"), ((int, float), "a number"), (dict, "a mapping"),
                        (list, "a list")):
        if isinstance(value, types):
            return name
    return "null" if value is None else "a %s" % type(value).__name__


class ConfigIssue(object):
    """One problem found in config.yml."""

    def __init__(self, path, message, value=None, has_value=False):
        self.path = path
        self.message = message
        self.hidden = None
        if has_value and is_secret_path(path):
            self.hidden, value, has_value = _kind(value), None, False  # a secret's value never leaves
        self.value = _scrub(value)
        self.has_value = has_value

    def __str__(self):
        if self.hidden:
            return "%s: %s (got %s; a secret's value is never shown)" % (self.path, self.message, self.hidden)
        if self.has_value:
            return "%s: %s (got %s)" % (self.path or "<top level>", self.message, _show(self.value))
        return "%s: %s" % (self.path or "<top level>", self.message)

    def __repr__(self):
        return "ConfigIssue(%r, %r)" % (self.path, self.message)


class ConfigValidationError(ValueError):
    """config.yml is invalid; ``issues`` lists every problem."""

    def __init__(self, issues):
        self.issues = list(issues)
        lines = ["config.yml is invalid (%d problem%s):" % (len(self.issues), "" if len(self.issues) == 1 else "s")]
        lines.extend("  - %s" % issue for issue in self.issues[:MAX_REPORTED])
        if len(self.issues) > MAX_REPORTED:
            lines.append("  - ... and %d more (the first %d are listed; fix them and validate again)"
                         % (len(self.issues) - MAX_REPORTED, MAX_REPORTED))
        super(ConfigValidationError, self).__init__("\n".join(lines))


class ConfigWarning(object):
    """A finding that does not stop the run: listed in the plan's ``warnings`` and shown by the validate action."""

    def __init__(self, message):
        self.message = message

    def __str__(self):
        return self.message

    def __repr__(self):
        return "ConfigWarning(%r)" % self.message


def _scrub(value):
    """``value`` with whatever sits under a secret key replaced, for display."""
    if isinstance(value, dict):
        return dict((k, NOT_SHOWN if k in SECRET_KEYS else _scrub(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _show(value):
    value = _scrub(value)
    text = repr(value)
    if isinstance(value, str):
        text = "'%s'" % value
    return text if len(text) <= 80 else text[:77] + "..."


def key_path(parts):
    """Format a path like ``teams[0].quotas.a100["nvidia.com/gpu"]``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += "[%d]" % part
        elif re.match(r"^[A-Za-z0-9_-]+$", str(part)):
            out += ("." if out else "") + str(part)
        else:
            out += '["%s"]' % part
    return out


# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------

PATTERN_HELP = {
    config_schema.DNS_LABEL: "a DNS-1123 label: lowercase letters, digits and '-', at most 63, starting and "
                             "ending with a letter or digit",
    config_schema.DNS_SUBDOMAIN: "a DNS-1123 name: lowercase letters, digits, '-' and '.'",
    config_schema.VAR_NAME: "an Ansible variable name",
    config_schema.K8S_VERSION: "a Kubernetes version like 1.35.4",
    config_schema.CHART_VERSION: "a chart version like 1.2.3 or v1.2.3",
    config_schema.QUANTITY: "a Kubernetes quantity like 64, 500m or 512Gi",
    config_schema.DURATION: "a duration like 30s, 15d",
    config_schema.RESOURCE_NAME: "a Kubernetes resource name like nvidia.com/gpu",
    config_schema.STORAGE_URI: "an hf://, pvc:// or s3:// URI (hf://org/model, pvc://claim/path, s3://bucket/path)",
    config_schema.VLLM_FLAG["pattern"]: "a vLLM flag like --enable-prefix-caching or --max-num-seqs=64",
    config_schema.METRIC_RESOLUTION: "a duration in whole seconds or minutes like 15s or 1m",
    config_schema.ABSOLUTE_PATH: "an absolute path like /etc/kubernetes/ssl/oidc-ca.pem",
    config_schema.RBAC_NAME: "a user or group name: letters, digits and . _ @ : / + = -, starting with a letter or "
                             "digit",
}


_CLOSE_MATCHES = {}


def _close_match(key, allowed):
    """The allowed key closest to ``key`` (as a list of at most one), remembered: a large config repeats its typos."""
    if (key, allowed) not in _CLOSE_MATCHES:
        if len(_CLOSE_MATCHES) > 10000:
            _CLOSE_MATCHES.clear()
        _CLOSE_MATCHES[(key, allowed)] = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    return _CLOSE_MATCHES[(key, allowed)]


def _schema_issue(error, root_schema):
    path = key_path(list(error.absolute_path))
    validator = error.validator
    sub = error.schema if isinstance(error.schema, dict) else {}
    value = error.instance
    if is_secret_path(path) and path.endswith(".credentials"):
        return [ConfigIssue(path, "must be {var: <name of a vaulted Ansible variable>}: storage credentials are "
                            "never written in config.yml", value, True)]
    if path in ("services.mlflow.backend_store.password", "services.mlflow.auth.admin_password"):
        forms = SECRET_FORMS if path.endswith("admin_password") else "{var: <name of a vaulted Ansible variable>}"
        return [ConfigIssue(path, "must be %s: a secret is never written in config.yml" % forms, value, True)]
    if is_secret_path(path) and re.match(r"^(secrets\.[^.\[]+|secrets\[[^]]+\])$", path):
        return [ConfigIssue(path, "must be %s: a secret is never written in config.yml" % SECRET_FORMS, value, True)]
    if "propertyNames" in list(error.schema_path) and validator == "pattern":
        helptext = PATTERN_HELP.get(error.validator_value, "text matching %s" % error.validator_value)
        return [ConfigIssue(key_path(list(error.absolute_path) + [value]), "key must be %s" % helptext)]
    if validator == "additionalProperties" and isinstance(value, dict):
        allowed = sorted(sub.get("properties", {}))
        issues = []
        for key in sorted(k for k in value if k not in sub.get("properties", {})):
            child = key_path(list(error.absolute_path) + [key])
            if not allowed:
                issues.append(ConfigIssue(child, "unexpected value type", value[key], True))
                continue
            close = _close_match(str(key), tuple(allowed))
            hint = "did you mean '%s'? " % close[0] if close else ""
            issues.append(ConfigIssue(child, "unknown key '%s'; %sallowed keys: %s" % (key, hint, ", ".join(allowed))))
        return issues
    if validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        name = missing[0] if missing else error.message
        return [ConfigIssue(key_path(list(error.absolute_path) + [name]), "required key is missing")]
    if validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return [ConfigIssue(path, "must be %s %s" % ("an" if expected[0] in "aeiou" else "a", expected), value, True)]
    if validator == "enum":
        return [ConfigIssue(path, "must be one of: %s" % ", ".join(str(v) for v in error.validator_value), value, True)]
    if validator == "const":
        return [ConfigIssue(path, "must be %s" % _show(error.validator_value), value, True)]
    if validator == "pattern":
        helptext = PATTERN_HELP.get(error.validator_value, "text matching %s" % error.validator_value)
        return [ConfigIssue(path, "must be %s" % helptext, value, True)]
    if validator in ("minimum", "maximum", "exclusiveMinimum"):
        lo, hi = sub.get("minimum", sub.get("exclusiveMinimum")), sub.get("maximum")
        if lo is not None and hi is not None:
            allowed = "between %s and %s" % (lo, hi)
        elif lo is not None:
            allowed = "%s %s" % ("greater than" if "exclusiveMinimum" in sub else "at least", lo)
        else:
            allowed = "at most %s" % hi
        return [ConfigIssue(path, "must be %s" % allowed, value, True)]
    if validator == "minItems":
        return [ConfigIssue(path, "must list at least %d item%s" % (error.validator_value,
                                                                    "" if error.validator_value == 1 else "s"))]
    if validator == "uniqueItems":
        return [ConfigIssue(path, "must not repeat items", value, True)]
    if validator == "minLength":
        return [ConfigIssue(path, "must not be empty" if error.validator_value == 1 else
                            "must be at least %d characters" % error.validator_value, value, True)]
    if validator == "maxLength":
        return [ConfigIssue(path, "must be at most %d characters" % error.validator_value, value, True)]
    if validator == "oneOf":
        description = sub.get("description", "")
        return [ConfigIssue(path, "is not valid here: %s" % description.rstrip("."), value, True)]
    return [ConfigIssue(path, "does not satisfy the schema (%s)" % validator, value, True)]  # never error.message


def schema_issues(config):
    """Every JSON Schema violation, as ConfigIssues."""
    if jsonschema is None:
        return [ConfigIssue("", "the Python package 'jsonschema' is required on the controller (pip install jsonschema)")]
    root = config_schema.SCHEMA
    validator = jsonschema.Draft202012Validator(root)
    issues = []
    for error in sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path]):
        issues.extend(_schema_issue(error, root))
    return issues
