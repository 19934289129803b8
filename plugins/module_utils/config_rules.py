# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# Apache License 2.0 (see LICENSE)
"""Validate config.yml and turn it into the normalized plan every role reads.

Pure functions over plain data; no Ansible imports. ``validate(config)`` runs the JSON Schema and
every cross-field rule, collects ALL problems, and raises ``ConfigValidationError`` listing each
with its key path (``gpu_pools.a100.mig.layout``), the bad value and what is allowed. On success
it returns the plan (defaults filled in, pool capacities and GPU resources computed, chart
sources resolved from the version matrix).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import difflib
import ipaddress
import os
import re
from urllib.parse import urlparse

try:
    import jsonschema
except ImportError:  # pragma: no cover - reported by validate()
    jsonschema = None

from ansible_collections.gpufleet.platform.plugins.module_utils import config_schema, versions

from ansible_collections.gpufleet.platform.plugins.module_utils import gpu_catalog, mig, mlflow_registry, quantity, semver, serving, tenancy
from ansible_collections.gpufleet.platform.plugins.module_utils import access

# The one list of passwords refused anywhere (compared after trimming and case folding).
KNOWN_DEFAULT_SECRETS = frozenset([
    "admin", "prom-operator", "deepops", "cns-stack", "password", "changeme", "change-me", "secret",
    "grafana", "root", "nvidia", "123456", "slurm", "test",
])
TENANCY_CPU_FLAVOR = "gpufleet-cpu"  # tenancy.CPU_FLAVOR
VOLCANO_DEFAULT_PLUGINS = ["gang", "drf", "proportion", "binpack", "priority", "predicates", "nodeorder"]
RESERVED_NAMESPACES = frozenset(["default", "kube-system", "kube-public", "kube-node-lease"])
MIN_SECRET_LENGTH = 12
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


def to_plain(data):
    """Turn Ansible's YAML objects (AnsibleUnicode, AnsibleMapping, ...) into plain Python types."""
    if isinstance(data, dict):
        return dict((to_plain(k), to_plain(v)) for k, v in data.items())
    if isinstance(data, list):
        return [to_plain(v) for v in data]
    if isinstance(data, str):
        return str(data)
    return data


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


def _schema_at(schema, path):
    """Follow a jsonschema ``schema_path`` deque to the sub-schema it names."""
    node = schema
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return {}
    return node


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


def apply_defaults(schema, data):
    """Fill in schema defaults (objects only; lists of objects item by item)."""
    if not isinstance(data, dict) or schema.get("type") != "object":
        return data
    for key, sub in schema.get("properties", {}).items():
        if key not in data and "default" in sub:
            data[key] = copy.deepcopy(sub["default"])
        if key in data:
            if sub.get("type") == "array" and isinstance(data[key], list) and isinstance(sub.get("items"), dict):
                for item in data[key]:
                    apply_defaults(sub["items"], item)
            else:
                apply_defaults(sub, data[key])
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) and extra.get("type") == "object":
        for key in data:
            if key not in schema.get("properties", {}):
                apply_defaults(extra, data[key])
    return data


# --------------------------------------------------------------------------------------------
# Helpers over a (possibly invalid) config: every accessor tolerates wrong types.
# --------------------------------------------------------------------------------------------

def _dict(value):
    return value if isinstance(value, dict) else {}


def _list(value):
    return value if isinstance(value, list) else []


def _items(config, key):
    return [(i, n) for i, n in enumerate(_list(config.get(key))) if isinstance(n, dict)]


def _entries(config, key):
    return [n for n in _list(config.get(key)) if isinstance(n, dict)]


def _pools(config):
    return {k: v for k, v in _dict(config.get("gpu_pools")).items() if isinstance(v, dict)}


def _services(config):
    return {k: v for k, v in _dict(config.get("services")).items() if isinstance(v, dict)}


def _enabled(config, name):
    service = _services(config).get(name, {})
    default = config_schema.SCHEMA["properties"]["services"]["properties"][name]["properties"]["enabled"]["default"]
    return service.get("enabled", default) is True


def _schema_clean(ctx, prefix):
    """True when the schema reported nothing at or under ``prefix``."""
    return not any(p == prefix or p.startswith(prefix + ".") or p.startswith(prefix + "[")
                   for p in ctx.get("schema_paths", ()))


def mig_enabled(pool):
    layout = _dict(pool.get("mig")).get("layout")
    return layout is not None and layout != "all-disabled"


# --------------------------------------------------------------------------------------------
# Pool resources: what each pool exposes to Kubernetes, per node.
# --------------------------------------------------------------------------------------------

def pool_resources(name, pool):
    """Resources one node of the pool advertises, and the MIG plan when MIG is on.

    Raises ValueError (MigLayoutError) when the MIG layout does not fit the model.
    """
    gpus = pool["gpus_per_node"]
    mig_conf = _dict(pool.get("mig"))
    sharing = _dict(pool.get("sharing"))
    plan = None
    if mig_enabled(pool):
        plan = mig.plan_layout(pool.get("model"), mig_conf["layout"], gpu_count=gpus,
                               driver_version=_dict(pool.get("driver")).get("version"))
        strategy = mig_conf.get("strategy", "none")
        resources = dict(plan["resources"]["single"] or {}) if strategy == "single" else dict(plan["resources"]["mixed"])
    else:
        resources = {"nvidia.com/gpu": gpus}
    mode = sharing.get("mode", "none")
    if mode != "none":
        replicas = sharing.get("replicas", 1)
        rename = sharing.get("rename_by_default", False)
        resources = {("%s.shared" % res if rename else res): count * replicas for res, count in resources.items()}
    return resources, plan


def quota_resources(config, pool, resources):
    """What team quotas in the pool are counted in: the resources the pool advertises, or whole GPUs on a
    MIG pool when services.kueue.count_mig_as_gpu charges MIG devices as GPU shares."""
    kueue = _services(config).get("kueue", {})
    if mig_enabled(pool) and kueue.get("count_mig_as_gpu") is True:
        return {"nvidia.com/gpu": pool["gpus_per_node"]}
    return dict(resources)


# --------------------------------------------------------------------------------------------
# Cross-field rules. Each yields ConfigIssues; each tolerates a config that failed the schema.
# --------------------------------------------------------------------------------------------

def rule_cluster(config, ctx):
    cluster = _dict(config.get("cluster"))
    nets = {}
    for key in ("pod_cidr", "service_cidr"):
        value = cluster.get(key, config_schema.SCHEMA["properties"]["cluster"]["properties"][key]["default"])
        try:
            nets[key] = ipaddress.ip_network(str(value), strict=True)
        except ValueError as exc:
            yield ConfigIssue("cluster.%s" % key, "must be a network in CIDR notation, e.g. 10.233.64.0/18 (%s)" % exc,
                              value, True)
    if len(nets) == 2 and nets["pod_cidr"].version == nets["service_cidr"].version \
            and nets["pod_cidr"].overlaps(nets["service_cidr"]):
        yield ConfigIssue("cluster.service_cidr", "overlaps cluster.pod_cidr %s; choose disjoint networks"
                          % nets["pod_cidr"], str(nets["service_cidr"]), True)
    ctx["networks"] = nets
    yield from _network_size_issues(config, nets)
    yield from _oidc_issues(_dict(cluster.get("oidc")))
    yield from _metrics_server_issues(_dict(_dict(cluster.get("addons")).get("metrics_server")))
    version = cluster.get("kubernetes_version")
    if isinstance(version, str) and re.match(config_schema.K8S_VERSION, version):
        if semver.parse(version) < semver.parse(versions.KUBERNETES_MIN_VERSION):
            yield ConfigIssue("cluster.kubernetes_version", "Kubespray %s supports Kubernetes %s or newer"
                              % (versions.KUBESPRAY_VERSION, versions.KUBERNETES_MIN_VERSION), version, True)
        elif semver.parse(version).minor_line > semver.parse(versions.KUBERNETES_VERSION).minor_line:
            yield ConfigIssue("cluster.kubernetes_version", "Kubespray %s supports Kubernetes up to %s.x"
                              % (versions.KUBESPRAY_VERSION, ".".join(versions.KUBERNETES_VERSION.split(".")[:2])),
                              version, True)


def _oidc_issues(oidc):
    """cluster.oidc: what kube-apiserver's --oidc-* flags accept (the schema has the types)."""
    url = oidc.get("issuer_url")
    if isinstance(url, str):
        problem = _issuer_problem(url)
        if problem:
            credentials = "@" in url.split("://", 1)[-1].split("/", 1)[0]
            # a URL with user:password@ is a credential: say what is wrong, never show it
            yield ConfigIssue("cluster.oidc.issuer_url", "must be an https:// URL of the OIDC issuer with a host and "
                              "no query or fragment, e.g. https://login.example.com/realms/gpu (%s)" % problem,
                              None if credentials else url, not credentials)
    client_id = oidc.get("client_id")
    if isinstance(client_id, str) and client_id and client_id.strip() != client_id:
        yield ConfigIssue("cluster.oidc.client_id", "must not start or end with whitespace: tokens carry the "
                          "client ID exactly", client_id, True)


def _issuer_problem(url):
    """Why ``url`` cannot be kube-apiserver's --oidc-issuer-url, or None."""
    if any(c.isspace() for c in url):
        return "it contains whitespace"
    try:
        parts = urlparse(url)
        port = parts.port
    except ValueError as exc:
        return "not a valid URL: %s" % exc
    if parts.scheme != "https":
        return "the API server accepts only https issuers"
    if parts.username is not None or parts.password is not None:
        return "credentials in the URL are not allowed; they are not shown"
    if not parts.hostname:
        return "no host"
    if port == 0:
        return "port 0"
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        return "a query or fragment is not allowed"
    return None


# metrics-server refuses --metric-resolution under 10s, and not longer than --kubelet-request-timeout (10s)
MIN_METRIC_RESOLUTION_S = 10


def _metrics_server_issues(metrics):
    value = metrics.get("metric_resolution")
    if isinstance(value, str) and re.match(config_schema.METRIC_RESOLUTION, value):
        seconds = int(value[:-1]) * (60 if value.endswith("m") else 1)
        if seconds <= MIN_METRIC_RESOLUTION_S:
            yield ConfigIssue("cluster.addons.metrics_server.metric_resolution", "must be longer than %ds: "
                              "metrics-server refuses a resolution that is not longer than its kubelet request "
                              "timeout (10s)" % MIN_METRIC_RESOLUTION_S, value, True)


def metrics_server_enabled(config):
    """Whether Kubespray installs metrics-server (cluster.addons.metrics_server.enabled, default on)."""
    addons = _dict(_dict(config.get("cluster")).get("addons"))
    default = config_schema.SCHEMA["properties"]["cluster"]["properties"]["addons"]["properties"][
        "metrics_server"]["properties"]["enabled"]["default"]
    return _dict(addons.get("metrics_server")).get("enabled", default) is not False


# Kubespray's defaults: each node gets a /24 (IPv4) or /120 (IPv6) of the pod network (kube_network_node_prefix,
# kube_network_node_prefix_ipv6); kube-apiserver refuses a service network of more than 2^20 addresses.
NODE_PREFIX = {4: 24, 6: 120}
MIN_SERVICE_ADDRESSES = 256  # the platform's charts create about 40 Services; teams and models add their own
MAX_SERVICE_BITS = 20


def _network_size_issues(config, nets):
    nodes = len(_items(config, "nodes"))
    pod = nets.get("pod_cidr")
    if pod is not None:
        node_prefix = NODE_PREFIX[pod.version]
        blocks = 2 ** (node_prefix - pod.prefixlen) if pod.prefixlen <= node_prefix else 0
        if blocks < max(nodes, 1):
            need = node_prefix - max(nodes - 1, 0).bit_length()
            yield ConfigIssue("cluster.pod_cidr", "has room for %d node%s at Kubespray's per-node /%d "
                              "(kube_network_node_prefix) but config.yml has %d; use a /%d or larger network"
                              % (blocks, "" if blocks == 1 else "s", node_prefix, nodes, need), str(pod), True)
    service = nets.get("service_cidr")
    if service is not None:
        if service.num_addresses < MIN_SERVICE_ADDRESSES:
            yield ConfigIssue("cluster.service_cidr", "has %d addresses; the platform's Services need at least %d "
                              "(a /%d)" % (service.num_addresses, MIN_SERVICE_ADDRESSES,
                                           service.max_prefixlen - 8), str(service), True)
        elif service.max_prefixlen - service.prefixlen > MAX_SERVICE_BITS:
            yield ConfigIssue("cluster.service_cidr", "is larger than kube-apiserver accepts (at most 2^%d addresses, "
                              "a /%d)" % (MAX_SERVICE_BITS, service.max_prefixlen - MAX_SERVICE_BITS),
                              str(service), True)


def _address_problem(ip):
    """Why ``ip`` cannot be a node address (not unicast, or not routable between nodes), or None."""
    ip = getattr(ip, "ipv4_mapped", None) or ip
    for attribute, what in (("is_unspecified", "the unspecified address"), ("is_loopback", "a loopback address"),
                            ("is_multicast", "a multicast address"), ("is_link_local", "a link-local address"),
                            ("is_reserved", "a reserved address (not unicast)")):
        if getattr(ip, attribute):
            return attribute, what
    return None


def rule_nodes(config, ctx):
    names, addresses = {}, {}
    control, etcd, workers = 0, 0, 0
    pools = _pools(config)
    nets = ctx.get("networks", {})
    for i, node in _items(config, "nodes"):
        name, address, roles = node.get("name"), node.get("address"), _list(node.get("roles"))
        if isinstance(name, str):
            if name in names:
                yield ConfigIssue("nodes[%d].name" % i, "duplicate node name, already used by nodes[%d]" % names[name],
                                  name, True)
            names.setdefault(name, i)
        if isinstance(address, str):
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                yield ConfigIssue("nodes[%d].address" % i, "must be an IPv4 or IPv6 address", address, True)
            else:
                if ip in addresses:
                    yield ConfigIssue("nodes[%d].address" % i, "duplicate address, already used by nodes[%d]"
                                      % addresses[ip], address, True)
                addresses.setdefault(ip, i)
                problem = _address_problem(ip)
                if problem and not (problem[0] == "is_loopback" and node.get("simulated") is True):
                    yield ConfigIssue("nodes[%d].address" % i, "is %s; a node needs a unicast address the other "
                                      "nodes can route to (loopback only on a simulated lab node)" % problem[1],
                                      address, True)
                for key, net in nets.items():
                    if ip.version == net.version and ip in net:
                        yield ConfigIssue("nodes[%d].address" % i, "lies inside cluster.%s %s" % (key, net),
                                          address, True)
        control += "control-plane" in roles
        etcd += "etcd" in roles
        workers += "worker" in roles
        pool = node.get("pool")
        if isinstance(pool, str):
            if pool not in pools:
                yield ConfigIssue("nodes[%d].pool" % i, "no such GPU pool; defined pools: %s"
                                  % (", ".join(sorted(pools)) or "none (add gpu_pools)"), pool, True)
            if roles and "worker" not in roles:
                yield ConfigIssue("nodes[%d].roles" % i, "a node in a GPU pool must have the 'worker' role",
                                  roles, True)
    if not _list(config.get("nodes")):
        return
    if control == 0:
        yield ConfigIssue("nodes", "at least one node needs the 'control-plane' role")
    if etcd == 0 or etcd % 2 == 0:
        yield ConfigIssue("nodes", "the number of 'etcd' nodes must be odd (1, 3, 5) for quorum", etcd, True)
    if workers == 0:
        yield ConfigIssue("nodes", "at least one node needs the 'worker' role")


def rule_pools(config, ctx):
    services = _services(config)
    gpu_operator_on = _enabled(config, "gpu_operator")
    members = {}
    for node in (n for n in _entries(config, "nodes")):
        if isinstance(node.get("pool"), str):
            members.setdefault(node["pool"], []).append(node.get("name"))
    ctx["pool_resources"] = {}
    ctx["pool_mig"] = {}
    for name, pool in sorted(_pools(config).items()):
        base = "gpu_pools.%s" % name
        model = pool.get("model", "auto")
        mig_conf = _dict(pool.get("mig"))
        sharing = _dict(pool.get("sharing"))
        driver = _dict(pool.get("driver"))
        strategy = mig_conf.get("strategy", "none")
        mode = sharing.get("mode", "none")
        model_ok = True
        if isinstance(model, str) and model != "auto" and gpu_catalog is not None:
            try:
                gpu_catalog.lookup(model)
            except ValueError as exc:
                model_ok = False
                yield ConfigIssue(base + ".model", str(exc), model, True)
        if name not in members:
            ctx.setdefault("warnings", []).append("%s: no node references this pool" % base)
        if driver.get("mode") == "preinstalled" and "version" in driver:
            yield ConfigIssue(base + ".driver.version", "is only used when driver.mode is 'operator' (the driver is "
                              "preinstalled on these hosts); remove it or set driver.mode: operator",
                              driver["version"], True)
        if mode != "none" and "replicas" not in sharing:
            yield ConfigIssue(base + ".sharing.replicas", "is required when sharing.mode is '%s' (2..64)" % mode)
        if mode == "none" and "replicas" in sharing:
            yield ConfigIssue(base + ".sharing.replicas", "has no effect with sharing.mode 'none'; set mode to "
                              "time-slicing or mps, or remove replicas", sharing["replicas"], True)
        if mode != "none" and not gpu_operator_on:
            yield ConfigIssue(base + ".sharing.mode", "GPU sharing is configured through the GPU Operator's device "
                              "plugin; enable services.gpu_operator", mode, True)
        layout = mig_conf.get("layout")
        if mig_enabled(pool):
            if strategy == "none":
                yield ConfigIssue(base + ".mig.strategy", "must be 'single' or 'mixed' when mig.layout enables MIG",
                                  strategy, True)
            if mode == "mps":
                yield ConfigIssue(base + ".sharing.mode", "MPS is not supported on MIG-enabled GPUs (NVIDIA device "
                                  "plugin v0.20.0); use time-slicing, or disable MIG on this pool", mode, True)
            if not gpu_operator_on:
                yield ConfigIssue(base + ".mig.layout", "MIG layouts are applied by the GPU Operator's MIG manager; "
                                  "enable services.gpu_operator", layout, True)
            if model == "auto":
                yield ConfigIssue(base + ".mig.layout", "needs a concrete gpu_pools.%s.model (MIG profiles differ per "
                                  "GPU model; 'auto' is only resolved after discovery)" % name, layout, True)
                continue
        elif strategy != "none" and layout is None:
            yield ConfigIssue(base + ".mig.layout", "is required when mig.strategy is '%s' (e.g. all-1g.10gb or a "
                              "{profile: count} map); or set strategy: none" % strategy)
        if not model_ok or not _schema_clean(ctx, base):
            continue  # planning needs a pool the schema accepted (sizes in range)
        try:
            resources, plan = pool_resources(name, pool)
        except (ValueError, TypeError, KeyError) as exc:
            yield ConfigIssue(base + ".mig.layout", str(exc))
            continue
        if strategy == "single" and mig_enabled(pool) and not resources:
            yield ConfigIssue(base + ".mig.strategy", "'single' needs every GPU split into the same profile; this "
                              "layout mixes profiles, use strategy 'mixed'", strategy, True)
            continue
        ctx["pool_resources"][name] = resources
        ctx["pool_mig"][name] = plan
        ctx.setdefault("pool_quota_resources", {})[name] = quota_resources(config, pool, resources)
    # The GPU Operator's ClusterPolicy has one driver version and one MIG strategy for the cluster.
    versions, strategies = {}, {}
    for name, pool in sorted(_pools(config).items()):
        driver, mig_conf = _dict(pool.get("driver")), _dict(pool.get("mig"))
        if driver.get("mode", "operator") == "operator" and isinstance(driver.get("version"), str):
            versions.setdefault(driver["version"], name)
        if isinstance(mig_conf.get("strategy"), str) and mig_conf["strategy"] != "none":
            strategies.setdefault(mig_conf["strategy"], name)
    if len(versions) > 1:
        first, other = sorted(versions.items(), key=lambda kv: kv[1])[:2]
        yield ConfigIssue("gpu_pools.%s.driver.version" % other[1], "differs from gpu_pools.%s.driver.version (%s): "
                          "the GPU Operator installs one driver version; use the same one on every operator-mode pool"
                          % (first[1], first[0]), other[0], True)
    if len(strategies) > 1:
        first, other = sorted(strategies.items(), key=lambda kv: kv[1])[:2]
        yield ConfigIssue("gpu_pools.%s.mig.strategy" % other[1], "differs from gpu_pools.%s.mig.strategy (%s): the "
                          "GPU Operator's device plugin takes one MIG strategy for the cluster; use the same on every "
                          "pool (mixed fits every layout)" % (first[1], first[0]), other[0], True)
    del services


def _quota_nominal(value):
    if isinstance(value, dict):
        return value.get("nominal")
    return value


def rule_teams(config, ctx):
    pools = _pools(config)
    names, namespaces = {}, {}
    scheduling = _dict(config.get("scheduling"))
    overcommit = scheduling.get("allow_overcommit") is True
    used = {}
    service_namespaces = set()
    for svc_name, chart_list in versions.CHARTS.items():
        service = _services(config).get(svc_name, {})
        for chart in chart_list:
            service_namespaces.add(service.get("namespace") or chart["namespace"])
    teams = _items(config, "teams")
    for i, team in teams:
        name = team.get("name")
        if isinstance(name, str):
            if name in names:
                yield ConfigIssue("teams[%d].name" % i, "duplicate team name, already used by teams[%d]" % names[name],
                                  name, True)
            names.setdefault(name, i)
        namespace = team.get("namespace", name)
        if isinstance(namespace, str):
            if namespace in namespaces:
                yield ConfigIssue("teams[%d].namespace" % i, "namespace already used by teams[%d]"
                                  % namespaces[namespace], namespace, True)
            namespaces.setdefault(namespace, i)
            if namespace in RESERVED_NAMESPACES or namespace in service_namespaces:
                yield ConfigIssue("teams[%d].namespace" % i, "is a system or platform namespace; give the team its "
                                  "own", namespace, True)
        for pool_name, quotas in _dict(team.get("quotas")).items():
            base = key_path(["teams", i, "quotas", pool_name])
            if pool_name not in pools:
                yield ConfigIssue(base, "no such GPU pool (flavor); defined pools: %s"
                                  % (", ".join(sorted(pools)) or "none"), pool_name, True)
                continue
            offered = ctx.get("pool_quota_resources", {}).get(pool_name)
            for resource, value in _dict(quotas).items():
                path = key_path(["teams", i, "quotas", pool_name, resource])
                if offered is not None and resource not in offered:
                    yield ConfigIssue(path, "pool '%s' does not provide this resource; it provides: %s"
                                      % (pool_name, ", ".join(sorted(offered))), resource, True)
                    continue
                nominal = _quota_nominal(value)
                if isinstance(value, dict) and isinstance(value.get("lending_limit"), int) \
                        and isinstance(nominal, int) and value["lending_limit"] > nominal:
                    yield ConfigIssue(path + ".lending_limit", "cannot exceed the nominal quota %d" % nominal,
                                      value["lending_limit"], True)
                if isinstance(nominal, int):
                    used.setdefault((pool_name, resource), []).append((i, nominal))
        vparent = _dict(team.get("volcano")).get("parent")
        if isinstance(vparent, str) and vparent == name:
            yield ConfigIssue("teams[%d].volcano.parent" % i, "a queue cannot be its own parent", vparent, True)
    team_names = {t.get("name") for _i, t in teams}
    for i, team in teams:
        vparent = _dict(team.get("volcano")).get("parent")
        if isinstance(vparent, str) and vparent not in team_names:
            yield ConfigIssue("teams[%d].volcano.parent" % i, "no such team (queue); teams: %s"
                              % ", ".join(sorted(str(n) for n in team_names)), vparent, True)
    parents = {t.get("name"): _dict(t.get("volcano")).get("parent") for _i, t in teams}
    reported = set()
    for start in sorted(parents, key=str):
        walk, node = [], start
        while node is not None and node in parents and node not in walk:
            walk.append(node)
            node = parents[node]
        if node in walk:
            cycle = walk[walk.index(node):]
            if len(cycle) > 1 and frozenset(cycle) not in reported:
                reported.add(frozenset(cycle))
                idx = [i for i, t in teams if t.get("name") == cycle[0]][0]
                yield ConfigIssue("teams[%d].volcano.parent" % idx, "queue parents form a cycle: %s"
                                  % " -> ".join(cycle + [cycle[0]]))
    for (pool_name, resource), entries in sorted(used.items()):
        offered = ctx.get("pool_quota_resources", {}).get(pool_name, {})
        if resource not in offered:
            continue
        nodes = len([n for n in _entries(config, "nodes") if n.get("pool") == pool_name])
        capacity = offered[resource] * nodes
        total = sum(n for _i, n in entries)
        ctx.setdefault("quota_totals", {})[(pool_name, resource)] = (total, capacity)
        if total > capacity and not overcommit:
            last = entries[-1][0]
            yield ConfigIssue(key_path(["teams", last, "quotas", pool_name, resource]),
                              "team quotas for %s in pool '%s' add up to %d but the pool provides %d (%d node%s x %d); "
                              "lower the quotas, add nodes, or set scheduling.allow_overcommit: true"
                              % (resource, pool_name, total, capacity, nodes, "" if nodes == 1 else "s",
                                 offered[resource]), total, True)
        elif total > capacity:
            ctx.setdefault("warnings", []).append(
                "teams[].quotas.%s[\"%s\"]: over-committed, team quotas add up to %d of %d (%s) "
                "(scheduling.allow_overcommit: true)" % (pool_name, resource, total, capacity, ", ".join(
                    "%s=%d" % (config["teams"][i].get("name"), n) for i, n in entries)))
    yield from _scheduling_issues(config, teams)
    yield from _access_issues(config, ctx, teams)


def _access_issues(config, ctx, teams):
    """teams[].access and cluster.admin_group: subjects, kubeconfigs, ResourceQuota and LimitRange values."""
    admin = _dict(config.get("cluster")).get("admin_group")
    if isinstance(admin, str) and admin.startswith(access.RESERVED_PREFIX):
        yield ConfigIssue("cluster.admin_group", "names starting with 'system:' belong to Kubernetes itself; "
                          "name the platform admins' own group", admin, True)
    for i, team in teams:
        team_access = team.get("access")
        if not isinstance(team_access, dict):
            continue
        base = "teams[%d].access" % i
        for key in ("groups", "users"):
            for j, name in enumerate(_list(team_access.get(key))):
                if not isinstance(name, str):
                    continue
                if name.startswith(access.RESERVED_PREFIX):
                    yield ConfigIssue("%s.%s[%d]" % (base, key, j), "names starting with 'system:' belong to "
                                      "Kubernetes itself (system:masters is cluster-admin); name the team's own %s"
                                      % key[:-1], name, True)
                elif key == "groups" and name == admin:
                    yield ConfigIssue("%s.groups[%d]" % (base, j), "is the platform admin group (cluster.admin_group), "
                                      "which is cluster-admin everywhere; a team gets a group of its own", name, True)
        if team_access.get("kubeconfigs") is True and not _list(team_access.get("users")):
            yield ConfigIssue(base + ".kubeconfigs", "issues one kubeconfig per user, but %s.users is empty; list the "
                              "users or set kubeconfigs: false" % base, True, True)
        request, limit = _dict(team_access.get("default_request")), _dict(team_access.get("default_limit"))
        for res in sorted(set(request) & set(limit)):
            try:
                low, high = quantity.parse(request[res])[0], quantity.parse(limit[res])[0]
            except quantity.QuantityError:
                continue
            if low > high:
                yield ConfigIssue("%s.default_request.%s" % (base, res), "is above %s.default_limit.%s (%s); the "
                                  "API server refuses a LimitRange whose default request exceeds its default limit"
                                  % (base, res, limit[res]), request[res], True)
    if _schema_clean(ctx, "teams") and _schema_clean(ctx, "gpu_pools"):
        yield from _resource_quota_issues(config, ctx, teams)


def _resource_quota_issues(config, ctx, teams):
    """A ResourceQuota below what Kueue can admit would refuse the pods of admitted workloads."""
    plain = [t for _i, t in teams]
    mini = {"services": {"kueue": _services(config).get("kueue", {})},
            "pools": dict((name, {"model": pool.get("model"), "mig": {"enabled": mig_enabled(pool)},
                                  "resources_per_node": ctx.get("pool_resources", {}).get(name, {})})
                          for name, pool in _pools(config).items())}
    milli = access.mig_milli(mini)
    for index, (i, team) in enumerate(teams):
        overrides = _dict(_dict(team.get("access")).get("resource_quota"))
        if not overrides:
            continue
        ceilings = access.quota_ceilings(plain, index, milli)
        for res, value in sorted(overrides.items()):
            path = key_path(["teams", i, "access", "resource_quota", res])
            if res in ("cpu", "memory") and res not in ceilings:
                yield ConfigIssue(path, "teams[%d] sets no %s quota, so Kueue admits up to the kueue role's default "
                                  "for it; set teams[%d].%s (the ResourceQuota then defaults to what Kueue admits)"
                                  % (i, res, i, res), value, True)
                continue
            if res not in ceilings:
                continue
            most, why = ceilings[res]
            try:
                lower = quantity.parse(value)[0] < most
            except quantity.QuantityError:
                continue
            if lower:
                yield ConfigIssue(path, "is lower than what Kueue can admit for the team, %s (%s): the pods of admitted "
                                  "workloads would be refused; set at least %s, or lower the quota or its "
                                  "borrowing_limit" % (access.as_quantity(most, res == "memory"), why,
                                                       access.as_quantity(most, res == "memory")),
                                  value, True)


def _scheduling_issues(config, teams):
    """Kueue/Volcano combinations upstream does not support, and names they reserve."""
    pools = _pools(config)
    if _enabled(config, "kueue") and TENANCY_CPU_FLAVOR in pools:
        yield ConfigIssue("gpu_pools.%s" % TENANCY_CPU_FLAVOR, "the name is reserved for the Kueue CPU flavor; "
                          "rename the pool", TENANCY_CPU_FLAVOR, True)
    if not _enabled(config, "volcano"):
        return
    volcano = _services(config).get("volcano", {})
    plugins = volcano.get("scheduler_plugins", VOLCANO_DEFAULT_PLUGINS)
    if isinstance(plugins, list) and "capacity" in plugins and "proportion" in plugins:
        yield ConfigIssue("services.volcano.scheduler_plugins", "capacity and proportion conflict in Volcano "
                          "v1.15 (both divide queue resources); keep capacity for hierarchical queues or proportion "
                          "for flat weighted queues", plugins, True)
    for i, team in teams:
        if team.get("name") in ("default", "root"):
            yield ConfigIssue("teams[%d].name" % i, "Volcano creates the queues 'default' and 'root' itself; "
                              "choose another team name", team.get("name"), True)
        parent = _dict(team.get("volcano")).get("parent")
        if isinstance(parent, str) and isinstance(plugins, list) and "capacity" not in plugins:
            yield ConfigIssue("teams[%d].volcano.parent" % i, "hierarchical queues need Volcano's capacity plugin "
                              "(enableHierarchy); replace proportion with capacity in "
                              "services.volcano.scheduler_plugins", parent, True)
    if isinstance(plugins, list) and "capacity" in plugins:
        yield from _volcano_hierarchy_issues(teams)


def _volcano_hierarchy_issues(teams):
    """Volcano's queue webhook (v1.15) refuses a child queue whose parent does not cover it: the children's
    deserved and guarantee add up to at most the parent's, and a child's capability is at most its nearest
    ancestor's. Found here, before anything is applied, with the key to change."""
    by_name = dict((t.get("name"), (i, t)) for i, t in teams if isinstance(t.get("name"), str))
    parent_of = dict((name, _dict(t.get("volcano")).get("parent")) for name, (_i, t) in by_name.items())
    try:
        res = dict((name, tuple(dict((r, quantity.parse(n)[0]) for r, n in part.items())
                                for part in tenancy.volcano_queue_resources(t)))
                   for name, (_i, t) in by_name.items())
    except (TypeError, ValueError, AttributeError, KeyError):
        return  # malformed quotas are reported by the schema and the quota rules

    def amount(value):
        return value
    for parent in sorted(p for p in set(parent_of.values()) if isinstance(p, str) and p in by_name):
        children = sorted(n for n, p in parent_of.items() if p == parent)
        for kind, idx in (("deserved", 0), ("guarantee", 1)):
            total = {}
            for child in children:
                for r, n in res[child][idx].items():
                    total[r] = total.get(r, 0) + amount(n)
            for r, n in sorted(total.items()):
                have = amount(res[parent][idx].get(r, 0))
                if n > have:
                    fix = ("raise the nominal quota of '%s' for %s or lower its lending_limit" if kind == "guarantee"
                           else "raise the quota of '%s' for %s") % (parent, r)
                    yield ConfigIssue(
                        "teams[%d].volcano.parent" % by_name[children[-1]][0],
                        "Volcano hierarchical queues: the children of '%s' (%s) have %s %s = %s in total but '%s' "
                        "has %s; a parent queue must cover its children: %s, or lower the children's"
                        % (parent, ", ".join(children), kind, r, _num(n), parent, _num(have), fix), parent, True)
    for child, parent in sorted(parent_of.items()):
        for r, n in sorted(res[child][2].items()):
            node, seen = parent, set()
            while isinstance(node, str) and node in by_name and node not in seen:
                seen.add(node)
                if r in res[node][2]:
                    if amount(n) > amount(res[node][2][r]):
                        yield ConfigIssue(
                            "teams[%d].volcano.parent" % by_name[child][0],
                            "Volcano hierarchical queues: '%s' may borrow up to %s %s (capability) but its ancestor "
                            "'%s' only %s; lower the borrowing_limit of '%s' or raise that of '%s'" % (
                                child, _num(amount(n)), r, node, _num(amount(res[node][2][r])), child, node),
                            parent, True)
                    break
                node = parent_of.get(node)


def _num(value):
    return str(int(value)) if value == int(value) else str(float(value))


def _slurm_split_issues(config, ctx, sets):
    """Slurm node sets on pools that teams' Kueue/Volcano quotas also count: refused unless split."""
    nodes_of = {}
    for node in _list(config.get("nodes")):
        if isinstance(node, dict) and node.get("pool"):
            nodes_of[node["pool"]] = nodes_of.get(node["pool"], 0) + 1
    queues = _enabled(config, "kueue") or _enabled(config, "volcano")
    quota_users = {}
    for t, team in enumerate(_entries(config, "teams")):
        for pool in _dict(team.get("quotas")):
            quota_users.setdefault(pool, []).append((t, team))
    held = {}
    for i, nodeset in enumerate(_list(_services(config).get("slurm", {}).get("nodesets"))):
        if not isinstance(nodeset, dict) or nodeset.get("pool") not in _pools(config):
            continue
        base = "services.slurm.nodesets[%d]" % i
        pool = nodeset["pool"]
        replicas = nodeset.get("replicas", nodes_of.get(pool, 0))
        if isinstance(replicas, int) and replicas > nodes_of.get(pool, 0):
            yield ConfigIssue(base + ".replicas", "pool '%s' has %d node(s); each Slurm worker pod takes a node's "
                              "GPUs, so at most %d can run" % (pool, nodes_of.get(pool, 0), nodes_of.get(pool, 0)),
                              replicas, True)
        if not queues or pool not in quota_users:
            continue
        if nodeset.get("shared_with_queues") is not True:
            yield ConfigIssue(base + ".pool", "pool '%s' is also in team quotas (%s) that Kueue/Volcano schedule: "
                              "the two schedulers would count the same GPUs; give Slurm its own pool, or set "
                              "%s.shared_with_queues: true to split the pool (team quotas must then fit in what "
                              "Slurm leaves)" % (pool, ", ".join("teams[%d].quotas.%s" % (entry[0], pool)
                                                                 for entry in quota_users[pool]), base), pool, True)
            continue
        offered = ctx.get("pool_resources", {}).get(pool) or {}
        gres = _dict(nodeset.get("gres")) or dict(
            (r.split("mig-", 1)[1] if "mig-" in r else "gpu", n) for r, n in offered.items())
        for key, count in gres.items():
            resource = "nvidia.com/gpu" if key == "gpu" else "nvidia.com/mig-%s" % key
            if isinstance(count, int) and isinstance(replicas, int):
                held.setdefault(pool, {}).setdefault(resource, []).append((i, count * replicas))
    if _dict(config.get("scheduling")).get("allow_overcommit") is True:
        return
    for pool, resources in sorted(held.items()):
        offered = ctx.get("pool_resources", {}).get(pool) or {}
        for resource, entries in sorted(resources.items()):
            capacity = offered.get(resource, 0) * nodes_of.get(pool, 0)
            slurm = sum(entry[1] for entry in entries)
            teams = 0
            for _index, team in quota_users[pool]:
                quota = _dict(team.get("quotas")).get(pool, {}).get(resource, 0)
                teams += quota.get("nominal", 0) if isinstance(quota, dict) else quota
            if isinstance(teams, int) and slurm + teams > capacity:
                yield ConfigIssue("services.slurm.nodesets[%d].shared_with_queues" % entries[0][0],
                                  "pool '%s' has %d %s; Slurm holds %d and team quotas add up to %d: lower the "
                                  "quotas or the node set (replicas x GRES), or set scheduling.allow_overcommit: true"
                                  % (pool, capacity, resource, slurm, teams), True, True)


def rule_services(config, ctx):
    services = _services(config)
    pools = _pools(config)
    cert_manager = _enabled(config, "cert_manager")
    for name in ("kserve", "slurm"):
        if _enabled(config, name) and not cert_manager:
            yield ConfigIssue("services.%s.enabled" % name, "%s needs cert-manager; enable services.cert_manager "
                              "(install: false to use an existing one)" % name, True, True)
    for name, service in services.items():
        chart = _dict(service.get("chart"))
        source = chart.get("source")
        needed = {"local": "path", "oci": "oci_ref", "repo": "repo_url"}.get(source)
        if needed and needed not in chart:
            yield ConfigIssue("services.%s.chart.%s" % (name, needed), "is required when chart.source is '%s'" % source)
    if _enabled(config, "kueue") and not _items(config, "teams"):
        ctx.setdefault("warnings", []).append("services.kueue: enabled but no teams are declared")
    slurm = services.get("slurm", {})
    if _enabled(config, "slurm"):
        sets = {}
        for i, nodeset in enumerate(_list(slurm.get("nodesets"))):
            if not isinstance(nodeset, dict):
                continue
            base = "services.slurm.nodesets[%d]" % i
            if nodeset.get("name") in sets:
                yield ConfigIssue(base + ".name", "duplicate node set name", nodeset.get("name"), True)
            sets[nodeset.get("name")] = nodeset
            pool = nodeset.get("pool")
            if isinstance(pool, str) and pool not in pools:
                yield ConfigIssue(base + ".pool", "no such GPU pool; defined pools: %s"
                                  % (", ".join(sorted(pools)) or "none"), pool, True)
                continue
            offered = ctx.get("pool_resources", {}).get(pool)
            plan = ctx.get("pool_mig", {}).get(pool)
            for gres, count in _dict(nodeset.get("gres")).items():
                path = base + ".gres." + gres if "." not in gres else key_path(["services", "slurm", "nodesets", i,
                                                                                "gres", gres])
                if offered is None:
                    continue
                if gres == "gpu":
                    limit = pools[pool].get("gpus_per_node") if plan is None else None
                    if limit is None:
                        yield ConfigIssue(path, "pool '%s' is MIG-partitioned; declare GRES per MIG profile: %s"
                                          % (pool, ", ".join(sorted(r.split("mig-", 1)[1] for r in offered
                                                                    if "mig-" in r))), gres, True)
                        continue
                else:
                    limit = offered.get("nvidia.com/mig-%s" % gres)
                    if limit is None:
                        yield ConfigIssue(path, "pool '%s' has no MIG profile '%s'; it provides: %s"
                                          % (pool, gres, ", ".join(sorted(offered))), gres, True)
                        continue
                if isinstance(count, int) and count > limit:
                    yield ConfigIssue(path, "a node of pool '%s' has only %d" % (pool, limit), count, True)
        yield from _slurm_split_issues(config, ctx, sets)
        defaults = 0
        for i, part in enumerate(_list(slurm.get("partitions"))):
            if not isinstance(part, dict):
                continue
            defaults += part.get("default") is True
            for j, ref in enumerate(_list(part.get("nodesets"))):
                if ref not in sets:
                    yield ConfigIssue("services.slurm.partitions[%d].nodesets[%d]" % (i, j),
                                      "no such node set; node sets: %s" % ", ".join(sorted(str(s) for s in sets)),
                                      ref, True)
        if defaults > 1:
            yield ConfigIssue("services.slurm.partitions", "only one partition may be the default", defaults, True)
        accounting = _dict(slurm.get("accounting"))
        if accounting.get("enabled") is True:
            if "database_host" not in accounting:
                yield ConfigIssue("services.slurm.accounting.database_host", "is required when accounting is enabled")
            if "slurm_db_password" not in _dict(config.get("secrets")):
                yield ConfigIssue("secrets.slurm_db_password", "is required when services.slurm.accounting is "
                                  "enabled (reference a vaulted variable: {var: vault_slurm_db_password})")
            elif "var" not in _dict(_dict(config.get("secrets")).get("slurm_db_password")):
                yield ConfigIssue("secrets.slurm_db_password", "must name a vaulted variable ({var: "
                                  "vault_slurm_db_password}): the external database already has its password, a "
                                  "generated one would not match", config["secrets"]["slurm_db_password"], True)
    kserve = services.get("kserve", {})
    if _enabled(config, "kserve"):
        team_namespaces = {t.get("namespace", t.get("name")) for t in _entries(config, "teams")}
        seen_models = {}
        kueue_integrations = _list(_dict(services.get("kueue")).get("integrations"))
        if _enabled(config, "kueue") and _list(kserve.get("models")) and not {"deployment", "pod"} & set(
                kueue_integrations):
            ctx.setdefault("warnings", []).append(
                "services.kserve.models: Kueue counts serving against team quotas only with the 'deployment' "
                "(or 'pod') integration in services.kueue.integrations")
        for i, model in enumerate(_list(kserve.get("models"))):
            if not isinstance(model, dict):
                continue
            base = "services.kserve.models[%d]" % i
            gpus, tp = model.get("gpus"), model.get("tensor_parallel_size")
            if isinstance(gpus, int) and isinstance(tp, int) and gpus != tp:
                yield ConfigIssue(base + ".tensor_parallel_size", "must equal gpus (%d): vLLM shards the model over "
                                  "every GPU it is given" % gpus, tp, True)
            pool = model.get("pool")
            if isinstance(pool, str):
                if pool not in pools:
                    yield ConfigIssue(base + ".pool", "no such GPU pool; defined pools: %s"
                                      % ", ".join(sorted(pools)), pool, True)
                else:
                    offered = ctx.get("pool_resources", {}).get(pool)
                    resource = model.get("gpu_resource", "nvidia.com/gpu")
                    if offered is not None and resource not in offered:
                        yield ConfigIssue(base + ".gpu_resource", "pool '%s' provides: %s"
                                          % (pool, ", ".join(sorted(offered))), resource, True)
                    yield from _one_node_issues(pool, pools[pool], model, base)
            if _enabled(config, "kueue"):
                namespace = model.get("namespace")
                if namespace not in team_namespaces:
                    yield ConfigIssue(base + ".namespace", "with Kueue on, a model runs in a team's namespace so it "
                                      "counts against that team's quota; team namespaces: %s"
                                      % ", ".join(sorted(str(n) for n in team_namespaces)), namespace, True)
            lo, hi = model.get("min_replicas"), model.get("max_replicas")
            if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
                yield ConfigIssue(base + ".min_replicas", "cannot exceed max_replicas (%d)" % hi, lo, True)
            if str(model.get("storage_uri", "")).startswith("s3://") and "credentials" not in model:
                yield ConfigIssue(base + ".credentials", "is required for an s3:// storage_uri (reference a vaulted "
                                  "variable: {var: vault_s3_credentials})")
            yield from _kserve_kind_issues(kserve, model, base)
            yield from _registry_issues(config, model, base)
            yield from _kserve_model_issues(config, ctx, kserve, model, base, seen_models)
    yield from _mlflow_issues(config, ctx)
    if _enabled(config, "monitoring"):
        if "grafana_admin_password" not in _dict(config.get("secrets")):
            yield ConfigIssue("secrets.grafana_admin_password", "is required when services.monitoring is enabled: "
                              "{var: <vaulted variable>} or {generate: true}; the collection never ships a default")
        interval = _dict(services.get("monitoring")).get("gpu_scrape_interval")
        if isinstance(interval, str) and re.match(r"^[0-9]+(ms|s)$", interval):
            seconds = int(re.match(r"^[0-9]+", interval).group(0)) / (1000.0 if interval.endswith("ms") else 1)
            if seconds < 5:
                yield ConfigIssue("services.monitoring.gpu_scrape_interval", "must be at least 5s (DCGM exporter "
                                  "scraping every second loads the GPUs and Prometheus)", interval, True)


def _kserve_kind_issues(kserve, model, base):
    """An LLMInferenceService needs the llmisvc stack and has a fixed replica count; replicas is its key only."""
    kind = model.get("kind", serving.ISVC)
    if kind == serving.LLMISVC:
        if kserve.get("llmisvc") is not True:
            yield ConfigIssue(base + ".kind", "an LLMInferenceService needs services.kserve.llmisvc: true (it installs "
                              "the kserve-llmisvc-crd and kserve-llmisvc-resources charts); or use kind: "
                              "InferenceService", kind, True)
        for key in ("min_replicas", "max_replicas"):
            if key in model:
                yield ConfigIssue(base + "." + key, "an LLMInferenceService runs a fixed number of replicas: set "
                                  "replicas instead (min_replicas/max_replicas are for kind: InferenceService)",
                                  model[key], True)
    elif "replicas" in model:
        yield ConfigIssue(base + ".replicas", "is for kind: LLMInferenceService only; an InferenceService scales "
                          "between min_replicas and max_replicas", model["replicas"], True)


def _one_node_issues(pool_name, pool, model, base):
    """A replica runs on one node (vLLM's tensor parallel group shares the node's GPUs): its GPUs and tensor
    parallel size fit in one node of the pool. MIG devices are one per replica (the rule above)."""
    per_node = pool.get("gpus_per_node")
    if serving.is_mig(model.get("gpu_resource", "")) or not isinstance(per_node, int):
        return
    key = "gpus" if "gpus" in model else "tensor_parallel_size"
    count = model.get(key)
    if isinstance(count, int) and not isinstance(count, bool) and count > per_node:
        yield ConfigIssue(base + "." + key, "a replica runs on one node and a node of pool '%s' has %d GPU%s "
                          "(gpu_pools.%s.gpus_per_node): ask for at most %d, or use a pool with bigger nodes"
                          % (pool_name, per_node, "" if per_node == 1 else "s", pool_name, per_node), count, True)


def _kserve_model_issues(config, ctx, kserve, model, base, seen):
    """Serving rules beyond the anchors: unique names, credentials by reference, scale to zero, and the
    GPU memory fit (module_utils/serving.py)."""
    key = (model.get("namespace"), model.get("name"))
    if key in seen:
        yield ConfigIssue(base + ".name", "duplicate model in namespace '%s', already %s" % (key[0], seen[key]),
                          key[1], True)
    seen.setdefault(key, base)
    credentials = model.get("credentials")
    if isinstance(credentials, dict) and "var" not in credentials:
        yield ConfigIssue(base + ".credentials", "storage credentials come from your store, never generated: "
                          "reference a vaulted variable ({var: vault_s3_credentials})", credentials, True)
    if str(model.get("storage_uri", "")).startswith("pvc://") and credentials is not None:
        yield ConfigIssue(base + ".credentials", "a pvc:// model needs no credentials; remove the key", credentials,
                          True)
    yield from _credential_issues(ctx, model, base)
    if model.get("min_replicas") == 0 and kserve.get("deployment_mode", "Standard") != "Knative":
        yield ConfigIssue(base + ".min_replicas", "scale to zero needs services.kserve.deployment_mode: Knative; "
                          "Standard mode keeps at least 1 replica", 0, True)
    low, high = model.get("min_replicas", 1), model.get("max_replicas")
    if kserve.get("deployment_mode", "Standard") != "Knative" and model.get("kind", serving.ISVC) == serving.ISVC \
            and isinstance(low, int) and isinstance(high, int) and high > low and not metrics_server_enabled(config):
        yield ConfigIssue(base + ".max_replicas", "scaling between min_replicas %d and max_replicas %d is done by a "
                          "HorizontalPodAutoscaler (Standard mode), which reads CPU usage from metrics-server, but "
                          "cluster.addons.metrics_server.enabled is false; turn it on, or set max_replicas to "
                          "min_replicas" % (low, high), high, True)
    gpus = model.get("gpus")
    if serving.is_mig(model.get("gpu_resource", "")) and isinstance(gpus, int) and gpus > 1:
        yield ConfigIssue(base + ".gpus", "a process sees only one MIG device, so vLLM cannot shard over several; "
                          "ask for 1 %s, or for whole GPUs (nvidia.com/gpu) on a non-MIG pool"
                          % model.get("gpu_resource"), gpus, True)
    pools = _pools(config)
    pool = pools.get(model.get("pool"))
    if pool is None or not _schema_clean(ctx, base) or model.get("parameters_billion") is None:
        return
    offered = {name: {"model": p.get("model"), "resources_per_node": ctx.get("pool_resources", {}).get(name) or {},
                      "shared": _dict(p.get("sharing")).get("mode", "none") != "none"}
               for name, p in pools.items()}
    try:
        problem = serving.check_fit(model, offered, kserve.get("kv_cache_share", 0.2),
                                    kserve.get("gpu_memory_utilization", 0.9))
    except (serving.ServingError, ValueError):
        return
    if problem:
        yield ConfigIssue(base + ".gpu_resource", "the model does not fit: " + problem,
                          model.get("gpu_resource", "nvidia.com/gpu"), True)


# services.mlflow secret references: key -> (what it must hold, whether {generate: true} is allowed)
MLFLOW_SECRETS = (
    ("backend_store", "password", "the database user's password"),
    ("artifact_store", "credentials", "a mapping with non-empty access_key_id and secret_access_key"),
    ("auth", "admin_password", "the MLflow admin password"),
)


def _mlflow_issues(config, ctx):
    """MLflow needs a backend store, an artifact store and an admin password (authentication is always on);
    references are checked like every secret, values never shown."""
    mlflow = _dict(_services(config).get("mlflow"))
    if mlflow.get("enabled") is not True:
        return
    needs = {
        "backend_store": "an existing PostgreSQL database ({host, user, password: {var: vault_mlflow_db_password}}); "
                         "the collection installs none",
        "artifact_store": "an S3-compatible bucket ({endpoint, bucket, credentials: {var: "
                          "vault_mlflow_s3_credentials}})",
    }
    for key, what in sorted(needs.items()):
        if key not in mlflow:
            yield ConfigIssue("services.mlflow." + key, "is required when services.mlflow.enabled is true: " + what)
    if "admin_password" not in _dict(mlflow.get("auth")):
        yield ConfigIssue("services.mlflow.auth.admin_password", "is required when services.mlflow.enabled is true: "
                          "{var: <vaulted variable>} or {generate: true}; authentication is always on and the "
                          "collection never ships a default")
    values = ctx.get("secret_values")
    for section, key, holds in MLFLOW_SECRETS:
        ref = _dict(mlflow.get(section)).get(key)
        path = "services.mlflow.%s.%s" % (section, key)
        if not isinstance(ref, dict):
            continue
        if ref.get("generate") is True and key != "admin_password":
            yield ConfigIssue(path, ("must name a vaulted variable ({var: vault_mlflow_db_password}): the existing "
                                     "database already has its password, a generated one would not match")
                              if key == "password" else
                              "storage credentials come from your store, never generated: reference a vaulted "
                              "variable ({var: vault_mlflow_s3_credentials})")
            continue
        var = ref.get("var")
        if values is None or not _var_name(var):
            continue
        if var not in values:
            yield ConfigIssue(path + ".var", "names variable '%s', which is not defined; put it in an Ansible Vault "
                              "file (ansible-vault create group_vars/all/vault.yml)" % var)
            continue
        value = values[var]
        if key == "credentials":
            if not (isinstance(value, dict) and all(isinstance(value.get(k), str) and value[k]
                                                    for k in ("access_key_id", "secret_access_key"))):
                yield ConfigIssue(path + ".var", "variable '%s' must hold %s" % (var, holds))
        elif not isinstance(value, str) or not value.strip():
            yield ConfigIssue(path + ".var", "variable '%s' must hold %s (a non-empty string)" % (var, holds))
        elif is_known_default(value):
            yield ConfigIssue(path + ".var", "variable '%s' holds a well-known default password; choose a unique "
                              "secret (at least %d characters)" % (var, MIN_SECRET_LENGTH))
        elif key == "admin_password" and len(value.strip()) < MIN_SECRET_LENGTH:
            yield ConfigIssue(path + ".var", "variable '%s' holds a password shorter than %d characters"
                              % (var, MIN_SECRET_LENGTH))


def _registry_issues(config, model, base):
    """A KServe model comes from storage_uri or from the MLflow registry (services.mlflow), not both."""
    registry = model.get("registry")
    if registry is None:
        if "storage_uri" not in model:
            yield ConfigIssue(base, "needs storage_uri (hf://, pvc:// or s3://) or registry ({model: NAME, version: N} "
                              "or {model: NAME, alias: A})")
        return
    if "storage_uri" in model:
        yield ConfigIssue(base + ".registry", "give storage_uri or registry, not both", registry, True)
    if not _enabled(config, "mlflow"):
        yield ConfigIssue(base + ".registry", "needs services.mlflow.enabled: true: registry models are resolved "
                          "against the collection's MLflow and read with services.mlflow.artifact_store.credentials",
                          registry, True)
    if "credentials" in model:
        yield ConfigIssue(base + ".credentials", "a registry model is read with "
                          "services.mlflow.artifact_store.credentials; remove the key")


# Secrets whose value is a structure, not a password: the collection cannot generate them.
STRUCTURED_SECRETS = {"alertmanager_receivers": "a mapping with a non-empty 'receivers' list of Alertmanager "
                                                "receivers (each with a 'name'; optional 'route', 'inhibit_rules')"}


def _receivers_ok(value):
    receivers = value.get("receivers") if isinstance(value, dict) else None
    return (isinstance(receivers, list) and bool(receivers)
            and all(isinstance(r, dict) and isinstance(r.get("name"), str) and r["name"] for r in receivers))


def is_known_default(value):
    """True when ``value`` is a well-known default password, however padded or cased."""
    return isinstance(value, str) and value.strip().casefold() in KNOWN_DEFAULT_SECRETS


def credential_vars(config):
    """The variable names config.yml's secret references name: ``secrets.*.var``, the models'
    ``credentials.var`` and an enabled services.mlflow's (the values the validate action reads for the checks)."""
    refs = list(_dict(config.get("secrets")).values()) if isinstance(config, dict) else []
    kserve = _dict(_dict(config.get("services")).get("kserve")) if isinstance(config, dict) else {}
    refs.extend(_dict(m).get("credentials") for m in _list(kserve.get("models")))
    mlflow = _dict(_dict(config.get("services")).get("mlflow")) if isinstance(config, dict) else {}
    if mlflow.get("enabled") is True:  # the only case the rules read them
        refs.extend(_dict(mlflow.get(section)).get(key) for section, key, _holds in MLFLOW_SECRETS)
    return sorted(set(ref["var"] for ref in refs if isinstance(ref, dict) and _var_name(ref.get("var"))))


def _var_name(value):
    return isinstance(value, str) and re.match(config_schema.VAR_NAME, value) is not None


def _credential_issues(ctx, model, base):
    """A model's {var: NAME} names a defined variable of the shape its storage scheme needs (values never shown)."""
    values = ctx.get("secret_values")
    credentials = model.get("credentials")
    var = credentials.get("var") if isinstance(credentials, dict) else None
    if values is None or not _var_name(var):
        return
    path = base + ".credentials.var"
    if var not in values:
        yield ConfigIssue(path, "names variable '%s', which is not defined; put it in an Ansible Vault file "
                          "(ansible-vault create group_vars/all/vault.yml)" % var)
        return
    value, scheme = values[var], str(model.get("storage_uri", "")).split("://", 1)[0]
    if scheme == "s3" and not (isinstance(value, dict) and all(
            isinstance(value.get(k), str) and value[k] for k in ("access_key_id", "secret_access_key"))):
        yield ConfigIssue(path, "variable '%s' must be a mapping with non-empty access_key_id and secret_access_key "
                          "(optional: endpoint, region, use_https, verify_ssl)" % var)
    elif scheme == "hf" and not (isinstance(value, str) and value.strip()):
        yield ConfigIssue(path, "variable '%s' must hold a Hugging Face token (a non-empty string)" % var)


def rule_secrets(config, ctx):
    values = ctx.get("secret_values")
    for purpose, ref in sorted(_dict(config.get("secrets")).items()):
        if purpose in STRUCTURED_SECRETS and isinstance(ref, dict) and ref.get("generate") is True:
            yield ConfigIssue("secrets.%s" % purpose, "cannot be generated; reference a vaulted variable holding "
                              "%s: {var: vault_%s}" % (STRUCTURED_SECRETS[purpose], purpose))
            continue
        if not isinstance(ref, dict) or not _var_name(ref.get("var")) or values is None:
            continue  # a malformed reference is the schema's to report (without its value)
        var = ref["var"]
        path = "secrets.%s.var" % purpose
        if var not in values:
            yield ConfigIssue(path, "names variable '%s', which is not defined; put it in an Ansible Vault file "
                              "(ansible-vault create group_vars/all/vault.yml) or use {generate: true}" % var)
            continue
        value = values[var]
        if purpose in STRUCTURED_SECRETS:
            if not _receivers_ok(value):
                yield ConfigIssue(path, "variable '%s' must hold %s" % (var, STRUCTURED_SECRETS[purpose]))
            continue
        if not isinstance(value, str) or not value.strip():
            yield ConfigIssue(path, "variable '%s' must hold a non-empty string" % var)
        elif is_known_default(value):
            yield ConfigIssue(path, "variable '%s' holds a well-known default password; choose a unique secret "
                              "(at least %d characters)" % (var, MIN_SECRET_LENGTH))
        elif purpose.endswith("password") and len(value.strip()) < MIN_SECRET_LENGTH:
            yield ConfigIssue(path, "variable '%s' holds a password shorter than %d characters"
                              % (var, MIN_SECRET_LENGTH))


def rule_airgap(config, ctx):
    airgap = _dict(config.get("airgap"))
    if airgap.get("enabled") is True:
        for key in ("chart_mirror", "image_registry"):
            if key not in airgap:
                yield ConfigIssue("airgap.%s" % key, "is required when airgap.enabled is true")


RULES = (rule_cluster, rule_nodes, rule_pools, rule_teams, rule_services, rule_secrets, rule_airgap)


def rule_issues(config, secret_values=None, ctx=None):
    """Run every cross-field rule. A rule that meets data the schema already rejected stops quietly."""
    ctx = ctx if ctx is not None else {}
    ctx["secret_values"] = secret_values
    issues = []
    for rule in RULES:
        try:
            for issue in rule(config, ctx):
                issues.append(issue)
        except (TypeError, KeyError, AttributeError, ValueError, IndexError):
            continue
    return issues


# --------------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------------

# containerd drop-ins: Kubespray's config.toml imports this directory (containerd_extra_args) and the
# gpu_node role writes the NVIDIA runtime there (gpu_node_containerd_dropin_dir, same default), so the
# runtime survives a Kubespray re-render of config.toml (kubespray#12277).
CONTAINERD_DROPIN_DIR = "/etc/containerd/conf.d"
CONTAINERD_IMPORTS_LINE = 'imports = ["%s/*.toml"]' % CONTAINERD_DROPIN_DIR


def kubespray_vars(cluster):
    """Kubespray v2.31.0 inventory variables derived from ``cluster`` (defaults applied).

    Names are Kubespray's own (roles/kubespray_defaults/defaults/main/main.yml,
    roles/container-engine/containerd/defaults/main.yml, roles/kubernetes-apps/metrics_server/defaults/main.yml,
    roles/kubernetes/control-plane/defaults/main/main.yml for kube_oidc_*). ``containerd_extra_args`` is rendered
    literally at the top level of config.toml, before any table: the place for ``imports``; the
    line is exactly what the gpu_node role writes, so gpu_node after Kubespray changes nothing.
    ``kubeconfig_localhost`` stays off: playbooks/cluster.yml fetches admin.conf to
    ``cluster.kubeconfig`` (mode 0600) instead of Kubespray's artifacts/ next to the inventory.
    Addons the collection installs itself stay off (Helm runs on the controller, cert-manager is the
    cert_manager role's). OIDC: ``kube_oidc_auth`` always, the other kube_oidc_* only when given.
    """
    metrics = cluster.get("addons", {}).get("metrics_server", {})
    out = {
        "kube_version": cluster["kubernetes_version"],
        "container_manager": cluster["container_runtime"],
        "kube_network_plugin": cluster["network_plugin"],
        "kube_proxy_mode": cluster["kube_proxy_mode"],
        "kube_pods_subnet": cluster["pod_cidr"],
        "kube_service_addresses": cluster["service_cidr"],
        "cluster_name": cluster["dns_domain"],
        "dns_mode": "coredns",
        # legacy in-tree device plugin and driver installer; the GPU Operator does both
        "nvidia_accelerator_enabled": False,
        "containerd_extra_args": CONTAINERD_IMPORTS_LINE,
        "kubeconfig_localhost": False,
        "helm_enabled": False,
        "cert_manager_enabled": False,
        "metrics_server_enabled": metrics["enabled"],
        "metrics_server_replicas": metrics["replicas"],
        "metrics_server_metric_resolution": metrics["metric_resolution"],
        "metrics_server_host_network": metrics["host_network"],
        "kube_oidc_auth": "oidc" in cluster,
    }
    for key, name in OIDC_VARS:
        if key in cluster.get("oidc", {}):
            out[name] = cluster["oidc"][key]
    return out


# cluster.oidc key -> Kubespray v2.31.0 variable (roles/kubernetes/control-plane/defaults/main/main.yml documents
# them, templates/kubeadm-config.v1beta4.yaml.j2 renders each into an --oidc-* flag when it is defined)
OIDC_VARS = (
    ("issuer_url", "kube_oidc_url"),
    ("client_id", "kube_oidc_client_id"),
    ("ca_file", "kube_oidc_ca_file"),
    ("username_claim", "kube_oidc_username_claim"),
    ("username_prefix", "kube_oidc_username_prefix"),
    ("groups_claim", "kube_oidc_groups_claim"),
    ("groups_prefix", "kube_oidc_groups_prefix"),
)


def nvidia_runtime(pool):
    """Whether hosts of ``pool`` get the containerd NVIDIA runtime from gpufleet (host variable
    ``gpufleet_nvidia_runtime``): only with a preinstalled driver; otherwise the GPU Operator's
    toolkit configures containerd itself."""
    driver = pool.get("driver") if isinstance(pool, dict) else None
    return isinstance(driver, dict) and driver.get("mode") == "preinstalled"


def build_plan(config, ctx):
    """The normalized plan (call only on a valid config)."""
    config = apply_defaults(config_schema.SCHEMA, copy.deepcopy(config))
    cluster = config["cluster"]
    cluster["kubeconfig"] = os.path.expanduser(cluster["kubeconfig"])
    nodes = config["nodes"]
    plan_pools = {}
    for name, pool in sorted(config.get("gpu_pools", {}).items()):
        members = [n["name"] for n in nodes if n.get("pool") == name]
        per_node = ctx["pool_resources"].get(name, {})
        mig_plan = ctx["pool_mig"].get(name)
        model = None
        if pool["model"] != "auto" and gpu_catalog is not None:
            entry = gpu_catalog.lookup(pool["model"])
            model = {"key": entry.key, "name": entry.name, "gfd_product": entry.gfd_product,
                     "memory_mib": entry.memory_mib, "mig_capable": entry.mig_capable}
        plan_pools[name] = {
            "name": name,
            "model": pool["model"],
            "catalog": model,
            "gpus_per_node": pool["gpus_per_node"],
            "driver": pool.get("driver", {"mode": "operator"}),
            "mig": dict(pool.get("mig", {"strategy": "none"}), enabled=mig_enabled(pool),
                        config_name=("gpufleet-%s" % name) if mig_enabled(pool) else "all-disabled",
                        placements=mig_plan["placements"] if mig_plan else None),
            "sharing": pool.get("sharing", {"mode": "none"}),
            "labels": pool.get("labels", {}),
            "taints": pool.get("taints", []),
            "nodes": members,
            "node_count": len(members),
            "resources_per_node": per_node,
            "capacity": {res: count * len(members) for res, count in per_node.items()},
            # what team quotas in this pool are counted in (differs from capacity only with
            # services.kueue.count_mig_as_gpu on a MIG pool: whole GPUs)
            "quota_capacity": {res: count * len(members) for res, count in
                               ctx.get("pool_quota_resources", {}).get(name, per_node).items()},
        }
    teams = []
    for team in config.get("teams", []):
        quotas = {}
        for pool_name, resources in team.get("quotas", {}).items():
            quotas[pool_name] = {}
            for res, value in resources.items():
                entry = value if isinstance(value, dict) else {"nominal": value}
                quotas[pool_name][res] = entry
        teams.append(dict(team, namespace=team.get("namespace", team["name"]), quotas=quotas))
    services = {}
    for name, service in config.get("services", {}).items():
        if name not in versions.CHARTS:  # rendered by its role, no chart (mlflow)
            continue
        services[name] = dict(service, charts=versions.resolve_component(name, service, config.get("airgap")))
        services[name].setdefault("namespace", services[name]["charts"][-1]["namespace"])
    services["mlflow"] = mlflow_registry.plan_service(
        apply_defaults(config_schema.SCHEMA["properties"]["services"]["properties"]["mlflow"],
                       copy.deepcopy(config.get("services", {}).get("mlflow", {}))))
    for name in versions.CHARTS:
        if name not in services:
            service = apply_defaults(config_schema.SCHEMA["properties"]["services"]["properties"][name], {})
            services[name] = dict(service, charts=versions.resolve_component(name, service, config.get("airgap")))
            services[name].setdefault("namespace", services[name]["charts"][-1]["namespace"])
    services["kserve"] = serving.plan_models(services["kserve"], services["mlflow"])
    if not services["kserve"].get("llmisvc"):
        services["kserve"]["charts"] = [c for c in services["kserve"]["charts"]
                                        if c["name"] not in versions.LLMISVC_CHARTS]
    return {
        "cluster": cluster,
        "nodes": nodes,
        "pools": plan_pools,
        "teams": teams,
        "scheduling": config.get("scheduling", apply_defaults(config_schema.SCHEMA["properties"]["scheduling"], {})),
        "services": services,
        "airgap": config.get("airgap", {"enabled": False}),
        "secrets": config.get("secrets", {}),
        "kubespray": kubespray_vars(cluster),
        "versions": {"kubespray": versions.KUBESPRAY_VERSION, "kubernetes": cluster["kubernetes_version"],
                     "helm": versions.HELM_VERSION},
        "warnings": sorted(set(ctx.get("warnings", []))),
    }


def _issues(config, secret_values, ctx):
    if not isinstance(config, dict):
        return [ConfigIssue("", "config.yml must be a mapping of sections (cluster, nodes, ...)", config, True)]
    issues = schema_issues(config)
    ctx["schema_paths"] = [issue.path for issue in issues]
    filled = apply_defaults(config_schema.SCHEMA, copy.deepcopy(config))
    issues.extend(rule_issues(filled, secret_values, ctx))
    return issues


def check(config, secret_values=None):
    """All problems in ``config`` (a list of ConfigIssue); empty when valid."""
    return _issues(config, secret_values, {})


def validate(config, secret_values=None):
    """Validate ``config`` and return the plan; raise ConfigValidationError listing every problem.

    ``secret_values`` maps variable names to values (the controller's vaulted variables) so that
    secret references can be checked; pass None to skip that check.
    """
    ctx = {}
    issues = _issues(config, secret_values, ctx)
    if issues:
        raise ConfigValidationError(issues)
    return build_plan(config, ctx)
