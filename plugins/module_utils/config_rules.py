# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# Apache License 2.0 (see LICENSE)
"""Every cross-field rule over config.yml (uniqueness, references, capacity, secrets), after the schema.

Pure functions over plain data; no Ansible imports. ``findings(config)`` runs the JSON Schema
(``config_issues.schema_issues``), derives what the rules and the plan share (``config_derive.derive``) and
runs each rule over the config and the derived data; ``check(config)`` lists ALL problems, each with its key
path (``gpu_pools.a100.mig.layout``), the bad value and what is allowed. The plan is ``config_plan``'s.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import ipaddress
import re
from urllib.parse import urlparse

from ansible_collections.gpufleet.platform.plugins.module_utils import access, config_schema, quantity, semver, serving, tenancy
from ansible_collections.gpufleet.platform.plugins.module_utils import storage, training, versions
from ansible_collections.gpufleet.platform.plugins.module_utils.config_derive import (
    apply_defaults, as_dict, as_list, config_pools, config_services, derive, dict_entries, indexed, mig_enabled,
    schema_clean, service_enabled)
from ansible_collections.gpufleet.platform.plugins.module_utils.config_issues import (
    ConfigIssue, ConfigWarning, key_path, schema_issues)

# The one list of passwords refused anywhere (compared after trimming and case folding).
KNOWN_DEFAULT_SECRETS = frozenset([
    "admin", "prom-operator", "deepops", "cns-stack", "password", "changeme", "change-me", "secret",
    "grafana", "root", "nvidia", "123456", "slurm", "test",
])
TENANCY_CPU_FLAVOR = "gpufleet-cpu"  # tenancy.CPU_FLAVOR
# gpufleet-<pool>-<8 hex> (config_plan.mig_config_name) is a label value: at most 63 characters
MIG_POOL_NAME_MAX = 63 - len("gpufleet-") - len("-") - 8
VOLCANO_DEFAULT_PLUGINS = ["gang", "drf", "proportion", "binpack", "priority", "predicates", "nodeorder"]
RESERVED_NAMESPACES = frozenset(["default", "kube-system", "kube-public", "kube-node-lease"])
MIN_SECRET_LENGTH = 12


# --------------------------------------------------------------------------------------------
# Cross-field rules. Each is rule(config, derived, secret_values) over config.yml with the schema defaults
# filled in and config_derive.derive()'s data; each yields ConfigIssues (and ConfigWarnings, which do not
# stop the run) and tolerates a config that failed the schema.
# --------------------------------------------------------------------------------------------

def rule_cluster(config, derived, secret_values):
    cluster = as_dict(config.get("cluster"))
    nets = derived["networks"]
    for key, (value, reason) in derived["network_errors"].items():
        yield ConfigIssue("cluster.%s" % key, "must be a network in CIDR notation, e.g. 10.233.64.0/18 (%s)" % reason,
                          value, True)
    if len(nets) == 2 and nets["pod_cidr"].version == nets["service_cidr"].version \
            and nets["pod_cidr"].overlaps(nets["service_cidr"]):
        yield ConfigIssue("cluster.service_cidr", "overlaps cluster.pod_cidr %s; choose disjoint networks"
                          % nets["pod_cidr"], str(nets["service_cidr"]), True)
    yield from _network_size_issues(config, nets)
    yield from _oidc_issues(as_dict(cluster.get("oidc")))
    yield from _metrics_server_issues(as_dict(as_dict(cluster.get("addons")).get("metrics_server")))
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
    addons = as_dict(as_dict(config.get("cluster")).get("addons"))
    default = config_schema.SCHEMA["properties"]["cluster"]["properties"]["addons"]["properties"][
        "metrics_server"]["properties"]["enabled"]["default"]
    return as_dict(addons.get("metrics_server")).get("enabled", default) is not False


# Kubespray's defaults: each node gets a /24 (IPv4) or /120 (IPv6) of the pod network (kube_network_node_prefix,
# kube_network_node_prefix_ipv6); kube-apiserver refuses a service network of more than 2^20 addresses.
NODE_PREFIX = {4: 24, 6: 120}
MIN_SERVICE_ADDRESSES = 256  # the platform's charts create about 40 Services; teams and models add their own
MAX_SERVICE_BITS = 20


def _network_size_issues(config, nets):
    nodes = len(indexed(config, "nodes"))
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


def rule_nodes(config, derived, secret_values):
    names, addresses = {}, {}
    control, etcd, workers = 0, 0, 0
    pools = config_pools(config)
    nets = derived["networks"]
    for i, node in indexed(config, "nodes"):
        name, address, roles = node.get("name"), node.get("address"), as_list(node.get("roles"))
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
    if not as_list(config.get("nodes")):
        return
    if control == 0:
        yield ConfigIssue("nodes", "at least one node needs the 'control-plane' role")
    if etcd == 0 or etcd % 2 == 0:
        yield ConfigIssue("nodes", "the number of 'etcd' nodes must be odd (1, 3, 5) for quorum", etcd, True)
    if workers == 0:
        yield ConfigIssue("nodes", "at least one node needs the 'worker' role")


def rule_pools(config, derived, secret_values):
    gpu_operator_on = service_enabled(config, "gpu_operator")
    members = {}
    for node in (n for n in dict_entries(config, "nodes")):
        if isinstance(node.get("pool"), str):
            members.setdefault(node["pool"], []).append(node.get("name"))
    for name, pool in sorted(config_pools(config).items()):
        base = "gpu_pools.%s" % name
        model = pool.get("model", "auto")
        mig_conf = as_dict(pool.get("mig"))
        sharing = as_dict(pool.get("sharing"))
        driver = as_dict(pool.get("driver"))
        strategy = mig_conf.get("strategy", "none")
        mode = sharing.get("mode", "none")
        if name in derived["model_errors"]:
            yield ConfigIssue(base + ".model", derived["model_errors"][name], model, True)
        if name not in members:
            yield ConfigWarning("%s: no node references this pool" % base)
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
            if len(name) > MIG_POOL_NAME_MAX:
                yield ConfigIssue(base, "is too long a pool name for MIG: its mig-parted config is named "
                                  "gpufleet-%s-<8 hex digits>, a node label value of at most 63 characters; "
                                  "use a pool name of at most %d characters" % (name, MIG_POOL_NAME_MAX), name, True)
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
        # why derive() could not plan the pool (it plans only what the schema accepted: sizes in range)
        problem, reason = derived["pool_errors"].get(name, (None, None))
        if problem == "stopped":
            return  # planning met data it cannot read: the rest is not checked, as for any rule
        if problem == "mig.layout":
            yield ConfigIssue(base + ".mig.layout", reason)
        elif problem == "mig.strategy":
            yield ConfigIssue(base + ".mig.strategy", "'single' needs every GPU split into the same profile; this "
                              "layout mixes profiles, use strategy 'mixed'", strategy, True)
    # The GPU Operator's ClusterPolicy has one driver version and one MIG strategy for the cluster.
    versions, strategies = {}, {}
    for name, pool in sorted(config_pools(config).items()):
        driver, mig_conf = as_dict(pool.get("driver")), as_dict(pool.get("mig"))
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


def _quota_nominal(value):
    if isinstance(value, dict):
        return value.get("nominal")
    return value


def rule_teams(config, derived, secret_values):
    pools = config_pools(config)
    names, namespaces = {}, {}
    scheduling = as_dict(config.get("scheduling"))
    overcommit = scheduling.get("allow_overcommit") is True
    used = {}
    service_namespaces = set()
    for svc_name, chart_list in versions.CHARTS.items():
        service = config_services(config).get(svc_name, {})
        for chart in chart_list:
            service_namespaces.add(service.get("namespace") or chart["namespace"])
    teams = indexed(config, "teams")
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
        for pool_name, quotas in as_dict(team.get("quotas")).items():
            base = key_path(["teams", i, "quotas", pool_name])
            if pool_name not in pools:
                yield ConfigIssue(base, "no such GPU pool (flavor); defined pools: %s"
                                  % (", ".join(sorted(pools)) or "none"), pool_name, True)
                continue
            offered = derived["pool_quota_resources"].get(pool_name)
            for resource, value in as_dict(quotas).items():
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
        vparent = as_dict(team.get("volcano")).get("parent")
        if isinstance(vparent, str) and vparent == name:
            yield ConfigIssue("teams[%d].volcano.parent" % i, "a queue cannot be its own parent", vparent, True)
    team_names = {t.get("name") for _i, t in teams}
    for i, team in teams:
        vparent = as_dict(team.get("volcano")).get("parent")
        if isinstance(vparent, str) and vparent not in team_names:
            yield ConfigIssue("teams[%d].volcano.parent" % i, "no such team (queue); teams: %s"
                              % ", ".join(sorted(str(n) for n in team_names)), vparent, True)
    parents = {t.get("name"): as_dict(t.get("volcano")).get("parent") for _i, t in teams}
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
        offered = derived["pool_quota_resources"].get(pool_name, {})
        if resource not in offered:
            continue
        nodes = len([n for n in dict_entries(config, "nodes") if n.get("pool") == pool_name])
        capacity = offered[resource] * nodes
        total = sum(n for _i, n in entries)
        if total > capacity and not overcommit:
            last = entries[-1][0]
            yield ConfigIssue(key_path(["teams", last, "quotas", pool_name, resource]),
                              "team quotas for %s in pool '%s' add up to %d but the pool provides %d (%d node%s x %d); "
                              "lower the quotas, add nodes, or set scheduling.allow_overcommit: true"
                              % (resource, pool_name, total, capacity, nodes, "" if nodes == 1 else "s",
                                 offered[resource]), total, True)
        elif total > capacity:
            yield ConfigWarning(
                "teams[].quotas.%s[\"%s\"]: over-committed, team quotas add up to %d of %d (%s) "
                "(scheduling.allow_overcommit: true)" % (pool_name, resource, total, capacity, ", ".join(
                    "%s=%d" % (config["teams"][i].get("name"), n) for i, n in entries)))
    yield from _scheduling_issues(config, teams)
    yield from _access_issues(config, derived, teams)


def _access_issues(config, derived, teams):
    """teams[].access and cluster.admin_group: subjects, kubeconfigs, ResourceQuota and LimitRange values."""
    admin = as_dict(config.get("cluster")).get("admin_group")
    if isinstance(admin, str) and admin.startswith(access.RESERVED_PREFIX):
        yield ConfigIssue("cluster.admin_group", "names starting with 'system:' belong to Kubernetes itself; "
                          "name the platform admins' own group", admin, True)
    for i, team in teams:
        team_access = team.get("access")
        if not isinstance(team_access, dict):
            continue
        base = "teams[%d].access" % i
        for key in ("groups", "users"):
            for j, name in enumerate(as_list(team_access.get(key))):
                if not isinstance(name, str):
                    continue
                if name.startswith(access.RESERVED_PREFIX):
                    yield ConfigIssue("%s.%s[%d]" % (base, key, j), "names starting with 'system:' belong to "
                                      "Kubernetes itself (system:masters is cluster-admin); name the team's own %s"
                                      % key[:-1], name, True)
                elif key == "groups" and name == admin:
                    yield ConfigIssue("%s.groups[%d]" % (base, j), "is the platform admin group (cluster.admin_group), "
                                      "which is cluster-admin everywhere; a team gets a group of its own", name, True)
        if team_access.get("kubeconfigs") is True and not as_list(team_access.get("users")):
            yield ConfigIssue(base + ".kubeconfigs", "issues one kubeconfig per user, but %s.users is empty; list the "
                              "users or set kubeconfigs: false" % base, True, True)
        request, limit = as_dict(team_access.get("default_request")), as_dict(team_access.get("default_limit"))
        for res in sorted(set(request) & set(limit)):
            try:
                low, high = quantity.parse(request[res])[0], quantity.parse(limit[res])[0]
            except quantity.QuantityError:
                continue
            if low > high:
                yield ConfigIssue("%s.default_request.%s" % (base, res), "is above %s.default_limit.%s (%s); the "
                                  "API server refuses a LimitRange whose default request exceeds its default limit"
                                  % (base, res, limit[res]), request[res], True)
    if schema_clean(derived["schema_paths"], "teams") and schema_clean(derived["schema_paths"], "gpu_pools"):
        yield from _resource_quota_issues(config, derived, teams)


def _resource_quota_issues(config, derived, teams):
    """A ResourceQuota below what Kueue can admit would refuse the pods of admitted workloads."""
    plain = [t for _i, t in teams]
    mini = {"services": {"kueue": config_services(config).get("kueue", {})},
            "pools": dict((name, {"model": pool.get("model"), "mig": {"enabled": mig_enabled(pool)},
                                  "resources_per_node": derived["pool_resources"].get(name, {})})
                          for name, pool in config_pools(config).items())}
    milli = access.mig_milli(mini)
    for index, (i, team) in enumerate(teams):
        overrides = as_dict(as_dict(team.get("access")).get("resource_quota"))
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
    pools = config_pools(config)
    if service_enabled(config, "kueue") and TENANCY_CPU_FLAVOR in pools:
        yield ConfigIssue("gpu_pools.%s" % TENANCY_CPU_FLAVOR, "the name is reserved for the Kueue CPU flavor; "
                          "rename the pool", TENANCY_CPU_FLAVOR, True)
    if not service_enabled(config, "volcano"):
        return
    volcano = config_services(config).get("volcano", {})
    plugins = volcano.get("scheduler_plugins", VOLCANO_DEFAULT_PLUGINS)
    if isinstance(plugins, list) and "capacity" in plugins and "proportion" in plugins:
        yield ConfigIssue("services.volcano.scheduler_plugins", "capacity and proportion conflict in Volcano "
                          "v1.15 (both divide queue resources); keep capacity for hierarchical queues or proportion "
                          "for flat weighted queues", plugins, True)
    for i, team in teams:
        if team.get("name") in ("default", "root"):
            yield ConfigIssue("teams[%d].name" % i, "Volcano creates the queues 'default' and 'root' itself; "
                              "choose another team name", team.get("name"), True)
        parent = as_dict(team.get("volcano")).get("parent")
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
    parent_of = dict((name, as_dict(t.get("volcano")).get("parent")) for name, (_i, t) in by_name.items())
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


def _slurm_split_issues(config, derived, sets):
    """Slurm node sets on pools that teams' Kueue/Volcano quotas also count: refused unless split."""
    nodes_of = {}
    for node in as_list(config.get("nodes")):
        if isinstance(node, dict) and node.get("pool"):
            nodes_of[node["pool"]] = nodes_of.get(node["pool"], 0) + 1
    queues = service_enabled(config, "kueue") or service_enabled(config, "volcano")
    quota_users = {}
    for t, team in enumerate(dict_entries(config, "teams")):
        for pool in as_dict(team.get("quotas")):
            quota_users.setdefault(pool, []).append((t, team))
    held = {}
    for i, nodeset in enumerate(as_list(config_services(config).get("slurm", {}).get("nodesets"))):
        if not isinstance(nodeset, dict) or nodeset.get("pool") not in config_pools(config):
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
        offered = derived["pool_resources"].get(pool) or {}
        gres = as_dict(nodeset.get("gres")) or dict(
            (r.split("mig-", 1)[1] if "mig-" in r else "gpu", n) for r, n in offered.items())
        for key, count in gres.items():
            resource = "nvidia.com/gpu" if key == "gpu" else "nvidia.com/mig-%s" % key
            if isinstance(count, int) and isinstance(replicas, int):
                held.setdefault(pool, {}).setdefault(resource, []).append((i, count * replicas))
    if as_dict(config.get("scheduling")).get("allow_overcommit") is True:
        return
    for pool, resources in sorted(held.items()):
        offered = derived["pool_resources"].get(pool) or {}
        for resource, entries in sorted(resources.items()):
            capacity = offered.get(resource, 0) * nodes_of.get(pool, 0)
            slurm = sum(entry[1] for entry in entries)
            teams = 0
            for _index, team in quota_users[pool]:
                quota = as_dict(team.get("quotas")).get(pool, {}).get(resource, 0)
                teams += quota.get("nominal", 0) if isinstance(quota, dict) else quota
            if isinstance(teams, int) and slurm + teams > capacity:
                yield ConfigIssue("services.slurm.nodesets[%d].shared_with_queues" % entries[0][0],
                                  "pool '%s' has %d %s; Slurm holds %d and team quotas add up to %d: lower the "
                                  "quotas or the node set (replicas x GRES), or set scheduling.allow_overcommit: true"
                                  % (pool, capacity, resource, slurm, teams), True, True)


def rule_services(config, derived, secret_values):
    services = config_services(config)
    pools = config_pools(config)
    cert_manager = service_enabled(config, "cert_manager")
    for name in ("kserve", "slurm"):
        if service_enabled(config, name) and not cert_manager:
            yield ConfigIssue("services.%s.enabled" % name, "%s needs cert-manager; enable services.cert_manager "
                              "(install: false to use an existing one)" % name, True, True)
    for name, service in services.items():
        chart = as_dict(service.get("chart"))
        source = chart.get("source")
        needed = {"local": "path", "oci": "oci_ref", "repo": "repo_url"}.get(source)
        if needed and needed not in chart:
            yield ConfigIssue("services.%s.chart.%s" % (name, needed), "is required when chart.source is '%s'" % source)
    if service_enabled(config, "kueue") and not indexed(config, "teams"):
        yield ConfigWarning("services.kueue: enabled but no teams are declared")
    slurm = services.get("slurm", {})
    if service_enabled(config, "slurm"):
        sets = {}
        for i, nodeset in enumerate(as_list(slurm.get("nodesets"))):
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
            offered = derived["pool_resources"].get(pool)
            plan = derived["pool_mig"].get(pool)
            for gres, count in as_dict(nodeset.get("gres")).items():
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
        yield from _slurm_split_issues(config, derived, sets)
        defaults = 0
        for i, part in enumerate(as_list(slurm.get("partitions"))):
            if not isinstance(part, dict):
                continue
            defaults += part.get("default") is True
            for j, ref in enumerate(as_list(part.get("nodesets"))):
                if ref not in sets:
                    yield ConfigIssue("services.slurm.partitions[%d].nodesets[%d]" % (i, j),
                                      "no such node set; node sets: %s" % ", ".join(sorted(str(s) for s in sets)),
                                      ref, True)
        if defaults > 1:
            yield ConfigIssue("services.slurm.partitions", "only one partition may be the default", defaults, True)
        accounting = as_dict(slurm.get("accounting"))
        if accounting.get("enabled") is True:
            if "database_host" not in accounting:
                yield ConfigIssue("services.slurm.accounting.database_host", "is required when accounting is enabled")
            if "slurm_db_password" not in as_dict(config.get("secrets")):
                yield ConfigIssue("secrets.slurm_db_password", "is required when services.slurm.accounting is "
                                  "enabled (reference a vaulted variable: {var: vault_slurm_db_password})")
            elif "var" not in as_dict(as_dict(config.get("secrets")).get("slurm_db_password")):
                yield ConfigIssue("secrets.slurm_db_password", "must name a vaulted variable ({var: "
                                  "vault_slurm_db_password}): the external database already has its password, a "
                                  "generated one would not match", config["secrets"]["slurm_db_password"], True)
    kserve = services.get("kserve", {})
    if service_enabled(config, "kserve"):
        team_namespaces = {t.get("namespace", t.get("name")) for t in dict_entries(config, "teams")}
        seen_models = {}
        kueue_integrations = as_list(as_dict(services.get("kueue")).get("integrations"))
        if service_enabled(config, "kueue") and as_list(kserve.get("models")) and not {"deployment", "pod"} & set(
                kueue_integrations):
            yield ConfigWarning(
                "services.kserve.models: Kueue counts serving against team quotas only with the 'deployment' "
                "(or 'pod') integration in services.kueue.integrations")
        for i, model in enumerate(as_list(kserve.get("models"))):
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
                    offered = derived["pool_resources"].get(pool)
                    resource = model.get("gpu_resource", "nvidia.com/gpu")
                    if offered is not None and resource not in offered:
                        yield ConfigIssue(base + ".gpu_resource", "pool '%s' provides: %s"
                                          % (pool, ", ".join(sorted(offered))), resource, True)
                    yield from _one_node_issues(pool, pools[pool], model, base)
            if service_enabled(config, "kueue"):
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
            yield from _kserve_model_issues(config, derived, secret_values, kserve, model, base, seen_models)
    yield from _mlflow_issues(config, secret_values)
    if service_enabled(config, "monitoring"):
        if "grafana_admin_password" not in as_dict(config.get("secrets")):
            yield ConfigIssue("secrets.grafana_admin_password", "is required when services.monitoring is enabled: "
                              "{var: <vaulted variable>} or {generate: true}; the collection never ships a default")
        interval = as_dict(services.get("monitoring")).get("gpu_scrape_interval")
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


def _kserve_model_issues(config, derived, secret_values, kserve, model, base, seen):
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
    yield from _credential_issues(secret_values, model, base)
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
    pools = config_pools(config)
    pool = pools.get(model.get("pool"))
    if pool is None or not schema_clean(derived["schema_paths"], base) or model.get("parameters_billion") is None:
        return
    offered = {name: {"model": p.get("model"), "resources_per_node": derived["pool_resources"].get(name) or {},
                      "shared": as_dict(p.get("sharing")).get("mode", "none") != "none"}
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


def _mlflow_issues(config, values):
    """MLflow needs a backend store, an artifact store and an admin password (authentication is always on);
    references are checked like every secret, values never shown."""
    mlflow = as_dict(config_services(config).get("mlflow"))
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
    if "admin_password" not in as_dict(mlflow.get("auth")):
        yield ConfigIssue("services.mlflow.auth.admin_password", "is required when services.mlflow.enabled is true: "
                          "{var: <vaulted variable>} or {generate: true}; authentication is always on and the "
                          "collection never ships a default")
    for section, key, holds in MLFLOW_SECRETS:
        ref = as_dict(mlflow.get(section)).get(key)
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
    if not service_enabled(config, "mlflow"):
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
    refs = list(as_dict(config.get("secrets")).values()) if isinstance(config, dict) else []
    kserve = as_dict(as_dict(config.get("services")).get("kserve")) if isinstance(config, dict) else {}
    refs.extend(as_dict(m).get("credentials") for m in as_list(kserve.get("models")))
    mlflow = as_dict(as_dict(config.get("services")).get("mlflow")) if isinstance(config, dict) else {}
    if mlflow.get("enabled") is True:  # the only case the rules read them
        refs.extend(as_dict(mlflow.get(section)).get(key) for section, key, _holds in MLFLOW_SECRETS)
    return sorted(set(ref["var"] for ref in refs if isinstance(ref, dict) and _var_name(ref.get("var"))))


def _var_name(value):
    return isinstance(value, str) and re.match(config_schema.VAR_NAME, value) is not None


def _credential_issues(values, model, base):
    """A model's {var: NAME} names a defined variable of the shape its storage scheme needs (values never shown)."""
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


def rule_secrets(config, derived, values):
    for purpose, ref in sorted(as_dict(config.get("secrets")).items()):
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


def rule_airgap(config, derived, secret_values):
    airgap = as_dict(config.get("airgap"))
    if airgap.get("enabled") is True:
        for key in ("chart_mirror", "image_registry"):
            if key not in airgap:
                yield ConfigIssue("airgap.%s" % key, "is required when airgap.enabled is true")


def rule_storage(config, derived, secret_values):
    """The storage: section (plugins/module_utils/storage.py)."""
    return storage.issues(config)


def rule_training(config, derived, secret_values):
    """services.training, the teams' training defaults and the Kueue integrations (plugins/module_utils/training.py)."""
    return training.issues(config)


RULES = (rule_cluster, rule_nodes, rule_pools, rule_teams, rule_services, rule_secrets, rule_airgap, rule_storage,
         rule_training)


def run_rules(config, derived, secret_values=None):
    """Run every cross-field rule over ``config`` (schema defaults filled in) and ``derived``
    (``config_derive.derive``): ``(issues, warnings)``. ``secret_values`` maps variable names to values (the
    controller's vaulted variables) so that secret references can be checked; None skips that check. A rule
    that meets data the schema already rejected stops quietly."""
    issues, warnings = [], []
    for rule in RULES:
        try:
            for finding in rule(config, derived, secret_values):
                (warnings if isinstance(finding, ConfigWarning) else issues).append(finding)
        except (TypeError, KeyError, AttributeError, ValueError, IndexError):
            continue
    return issues, warnings


def findings(config, secret_values=None):
    """Validate ``config``: ``(issues, warnings, derived)``, the schema's issues first, then the rules';
    ``derived`` is what ``config_derive.derive`` found (None for a config that is not a mapping)."""
    if not isinstance(config, dict):
        return [ConfigIssue("", "config.yml must be a mapping of sections (cluster, nodes, ...)", config, True)], [], None
    issues = schema_issues(config)
    filled = apply_defaults(config_schema.SCHEMA, copy.deepcopy(config))
    derived = derive(filled, [issue.path for issue in issues])
    rule_issues, warnings = run_rules(filled, derived, secret_values)
    return issues + rule_issues, [str(warning) for warning in warnings], derived


def check(config, secret_values=None):
    """All problems in ``config`` (a list of ConfigIssue); empty when valid."""
    return findings(config, secret_values)[0]
