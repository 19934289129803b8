# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# Apache License 2.0 (see LICENSE)
"""The config.yml contract, as a JSON Schema (draft 2020-12).

This dict is the single source: ``schemas/config.schema.json`` (what editors load through the
yaml-language-server modeline) and ``docs/config.md`` are generated from it by
``make schema docs`` and a unit test keeps them equal.

Every object sets ``additionalProperties: false`` so a typo is an error, never silently ignored.
Cross-field rules (uniqueness, references, capacity, secrets) live in ``config_rules``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
VAR_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
K8S_VERSION = r"^1\.[0-9]+\.[0-9]+$"
CHART_VERSION = r"^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$"
RESOURCE_NAME = r"^([a-z0-9.-]+/)?[a-zA-Z0-9][-a-zA-Z0-9_.]*$"
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$"
DURATION = r"^[0-9]+(ms|s|m|h|d|w|y)$"
STORAGE_URI = r"^(hf|pvc|s3)://.+"
METRIC_RESOLUTION = r"^[0-9]+(s|m)$"
ABSOLUTE_PATH = r"^/[^\x00]*$"
RBAC_NAME = r"^[A-Za-z0-9][A-Za-z0-9._@:/+=-]*$"
VLLM_FLAG = {"type": "string", "pattern": r"^--[a-z0-9][-a-z0-9_]*(=.*)?$",
             "description": "A vLLM flag, --name or --name=value."}

# Kueue 0.19 job frameworks (services.kueue.integrations; config_rules says which operator each needs).
KUEUE_INTEGRATIONS = (
    "batch/job", "jobset.x-k8s.io/jobset", "kubeflow.org/pytorchjob", "kubeflow.org/mpijob",
    "trainer.kubeflow.org/trainjob", "ray.io/rayjob", "ray.io/raycluster", "pod", "deployment", "statefulset",
    "leaderworkerset.x-k8s.io/leaderworkerset",
)
# The ClusterTrainingRuntimes the training role can apply (versions.TRAINING_RUNTIME_IMAGES pins their images).
TRAINING_RUNTIMES = ("torch-distributed", "jax-distributed", "deepspeed-distributed")

SERVICES = ("cert_manager", "gpu_operator", "kueue", "volcano", "slurm", "training", "kserve", "mlflow", "monitoring")


def _obj(properties, required=(), description=None, **extra):
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
    }
    if required:
        schema["required"] = list(required)
    if description:
        schema["description"] = description
    schema.update(extra)
    return schema


def _str(description, **extra):
    schema = {"type": "string", "description": description}
    schema.update(extra)
    return schema


def _int(description, minimum=None, maximum=None, **extra):
    schema = {"type": "integer", "description": description}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    schema.update(extra)
    return schema


def _bool(description, default):
    return {"type": "boolean", "description": description, "default": default}


def _enum(description, choices, default=None):
    schema = {"type": "string", "enum": list(choices), "description": description}
    if default is not None:
        schema["default"] = default
    return schema


SECRET_REF = {
    "description": (
        "A secret is never written in config.yml. Either name the Ansible variable that holds it "
        "(put that variable in an Ansible Vault file), or ask the collection to generate it once "
        "and keep it in a Kubernetes Secret."
    ),
    "oneOf": [
        _obj({"var": _str("Name of the (vaulted) Ansible variable holding the secret.", pattern=VAR_NAME)},
             required=("var",)),
        _obj({"generate": {"const": True, "description": "Generate once, store in a Kubernetes Secret, never regenerate."}},
             required=("generate",)),
    ],
}

_CPU_MEMORY = _obj(
    {
        "cpu": _str("CPU (Kubernetes quantity).", pattern=QUANTITY),
        "memory": _str("Memory (Kubernetes quantity).", pattern=QUANTITY),
    },
)

TEAM_ACCESS = _obj(
    {
        "groups": {"type": "array", "uniqueItems": True, "description": "Groups bound to the team's Role: OIDC "
                   "group names (cluster.oidc.groups_prefix is prepended) or client-certificate organizations.",
                   "items": _str("Group name.", pattern=RBAC_NAME, maxLength=253)},
        "users": {"type": "array", "uniqueItems": True, "description": "Users bound to the team's Role, as the API "
                  "server names them: a client certificate's common name (the kubeconfigs issued here use the "
                  "name as written) or an OIDC user name with its prefix.",
                  "items": _str("User name.", pattern=RBAC_NAME, maxLength=253)},
        "kubeconfigs": _bool("Issue each user a kubeconfig with a client certificate signed by the cluster CA "
                             "(a CertificateSigningRequest approved through the API), written 0600 on the "
                             "controller.", False),
        "resource_quota": {
            "type": "object",
            "description": ("Raise hard limits of the team's ResourceQuota, {resource: quantity} (cpu, memory, "
                            "nvidia.com/gpu, ...). By default each limit is what Kueue can admit for the team "
                            "(nominal + borrowing); a lower value is refused."),
            "propertyNames": {"pattern": RESOURCE_NAME},
            "additionalProperties": {"oneOf": [{"type": "integer", "minimum": 0},
                                               {"type": "string", "pattern": QUANTITY}]},
        },
        "default_request": dict(_CPU_MEMORY, description="LimitRange default requests of a container that sets "
                                "none (a ResourceQuota on requests.cpu refuses pods without requests).",
                                default={"cpu": "500m", "memory": "1Gi"}),
        "default_limit": dict(_CPU_MEMORY, description="LimitRange default limits of a container that sets none "
                              "(none by default)."),
    },
    description="Who may run workloads in the team's namespace (a Role and RoleBinding, nothing cluster-wide), "
                "and the ResourceQuota and LimitRange that bound pods which bypass Kueue. No access objects when "
                "omitted.",
)

SLURM_SCRIPTS = {
    "type": "object",
    "description": "Slurm prolog/epilog scripts run on every node set: {file name: script}. Each script "
                   "starts with a shebang line (#!).",
    "propertyNames": {"pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]*$"},
    "additionalProperties": {"type": "string", "pattern": r"^#!"},
}

TAINT = _obj(
    {
        "key": _str("Taint key.", pattern=r"^([a-z0-9.-]+/)?[A-Za-z0-9][-A-Za-z0-9_.]*$"),
        "value": _str("Taint value.", default=""),
        "effect": _enum("Taint effect.", ("NoSchedule", "PreferNoSchedule", "NoExecute")),
    },
    required=("key", "effect"),
)

LABELS = {
    "type": "object",
    "description": "Kubernetes labels (string values).",
    "propertyNames": {"pattern": r"^([a-z0-9.-]+/)?[A-Za-z0-9][-A-Za-z0-9_.]*$"},
    "additionalProperties": {"type": "string", "maxLength": 63},
}

CHART = _obj(
    {
        "source": _enum(
            "Where the chart comes from: a Helm repository, an OCI registry, or a local chart "
            "directory/tarball (air-gapped sites).",
            ("repo", "oci", "local"),
        ),
        "repo_url": _str("Helm repository URL (source: repo).", pattern=r"^(https?|file)://"),
        "name": _str("Chart name in the repository (source: repo)."),
        "oci_ref": _str("OCI chart reference (source: oci), e.g. oci://registry.example/charts/kueue.",
                        pattern=r"^oci://"),
        "path": _str("Local chart directory or .tgz on the controller (source: local)."),
    },
    description="Overrides the chart source from the version matrix. Omit to use the pinned upstream source.",
)


def _service(description, extra_properties=None, enabled_default=False):
    props = {
        "enabled": _bool("Install this component.", enabled_default),
        "version": _str("Chart version; omit to use the collection's pinned version matrix.", pattern=CHART_VERSION),
        "namespace": _str("Namespace the component is installed into.", pattern=DNS_LABEL),
        "chart": CHART,
        "values": {
            "type": "object",
            "description": "Free-form Helm values merged last over the values the role computes (escape hatch).",
        },
    }
    props.update(extra_properties or {})
    return _obj(props, description=description)


def _prune(what):
    return _bool("Delete the %s config no longer declares (docs/operations/prune.md); false keeps them. Over "
                 "gpufleet_prune_max objects, or a namespace that still has pods, is refused unless "
                 "-e gpufleet_allow_prune=true." % what, True)


QUOTA_VALUE = {
    "description": "A nominal quota (an integer), or a quota with borrowing and lending limits.",
    "oneOf": [
        {"type": "integer", "minimum": 0},
        _obj(
            {
                "nominal": _int("Guaranteed amount.", minimum=0),
                "borrowing_limit": _int("How much more the team may borrow from the cohort.", minimum=0),
                "lending_limit": _int("How much of the nominal quota may be lent to other teams.", minimum=0),
            },
            required=("nominal",),
        ),
    ],
}

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://gpufleet.example/schemas/config.schema.json",
    "title": "gpufleet.platform config.yml",
    "description": "One file that says what the GPU platform is. Validate with `make validate`.",
    "type": "object",
    "additionalProperties": False,
    "required": ["cluster", "nodes"],
    "properties": {
        "plugin": {
            "const": "gpufleet.platform.config",
            "description": "Lets `ansible-playbook -i config.yml` read this file as an inventory.",
        },
        "cluster": _obj(
            {
                "name": _str("Cluster name (a DNS-1123 label).", pattern=DNS_LABEL),
                "kubernetes_version": _str("Kubernetes version Kubespray installs (1.30 or newer).",
                                           pattern=K8S_VERSION, default="1.35.4"),
                "container_runtime": _enum("Container runtime. The NVIDIA runtime drop-in supports containerd.",
                                           ("containerd",), "containerd"),
                "network_plugin": _enum("Kubespray network plugin.",
                                        ("calico", "cilium", "flannel", "kube-router", "custom_cni"), "calico"),
                "kube_proxy_mode": _enum("kube-proxy mode.", ("ipvs", "iptables", "nftables"), "ipvs"),
                "pod_cidr": _str("Pod network (CIDR).", default="10.233.64.0/18"),
                "service_cidr": _str("Service network (CIDR).", default="10.233.0.0/18"),
                "dns_domain": _str("Cluster DNS domain.", pattern=DNS_SUBDOMAIN, default="cluster.local"),
                "kubeconfig": _str("Where the admin kubeconfig lives on the controller; cluster roles use it.",
                                   default="~/.kube/gpufleet.conf"),
                "context": _str("kubeconfig context to use (default: the current context)."),
                "ssh": _obj(
                    {
                        "user": _str("SSH user on every node.", default="root"),
                        "private_key_file": _str("SSH private key on the controller."),
                        "port": _int("SSH port.", 1, 65535, default=22),
                        "become": _bool("Use privilege escalation on the nodes.", True),
                    },
                    description="How Ansible reaches the nodes.",
                ),
                "addons": _obj(
                    {
                        "metrics_server": _obj(
                            {
                                "enabled": _bool("Kubespray installs metrics-server (the Metrics API that "
                                                 "HorizontalPodAutoscalers, KServe's Standard-mode autoscaling "
                                                 "and `kubectl top` read).", True),
                                "replicas": _int("metrics-server replicas (Kubespray spreads them across nodes "
                                                 "when it can).", 1, 10, default=1),
                                "metric_resolution": _str("How often metrics-server scrapes the kubelets, longer "
                                                          "than 10s (metrics-server refuses 10s or less).",
                                                          pattern=METRIC_RESOLUTION, default="15s"),
                                "host_network": _bool("Run metrics-server in the host network: for a network "
                                                      "plugin where the API server cannot reach pod IPs.", False),
                            },
                            description="metrics-server, installed by Kubespray (its metrics_server_* "
                                        "variables).",
                            default={},
                        ),
                    },
                    description="Kubespray addons the platform relies on. The others stay off: the collection "
                                "installs cert-manager, Helm releases (from the controller) and the GPU "
                                "Operator's device plugin itself.",
                    default={},
                ),
                "oidc": _obj(
                    {
                        "issuer_url": _str("OIDC issuer URL (https://, no query or fragment): the API server "
                                           "fetches the provider's signing keys from it."),
                        "client_id": _str("Client ID every token must be issued for (its 'aud' claim).",
                                          minLength=1),
                        "username_claim": _str("Token claim used as the user name (Kubernetes default: sub).",
                                               minLength=1),
                        "username_prefix": _str("Prefix added to user names, e.g. 'oidc:'; '-' for none "
                                                "(Kubernetes default: the issuer URL and '#', except for the "
                                                "email claim)."),
                        "groups_claim": _str("Token claim holding the user's groups (none when omitted).",
                                             minLength=1),
                        "groups_prefix": _str("Prefix added to group names, e.g. 'oidc:' (RBAC subjects then "
                                              "name 'oidc:<group>')."),
                        "ca_file": _str("CA bundle that signed the issuer's certificate, an absolute path on the "
                                        "control-plane nodes (default: the host's trust store).",
                                        pattern=ABSOLUTE_PATH),
                    },
                    required=("issuer_url", "client_id"),
                    description="OpenID Connect login to the API server (Kubespray's kube_oidc_* variables). "
                                "Off when omitted.",
                ),
                "admin_group": _str("Group of the platform admins, bound to the cluster-admin ClusterRole (one "
                                    "ClusterRoleBinding); an OIDC group name, cluster.oidc.groups_prefix is "
                                    "prepended. No binding when omitted.", pattern=RBAC_NAME, maxLength=253),
            },
            required=("name",),
            description="The Kubernetes cluster Kubespray builds.",
        ),
        "nodes": {
            "type": "array",
            "minItems": 1,
            "description": "Every server, once.",
            "items": _obj(
                {
                    "name": _str("Node name (hostname, a DNS-1123 subdomain).", pattern=DNS_SUBDOMAIN, maxLength=63),
                    "address": _str("IPv4 or IPv6 address Ansible and Kubernetes use."),
                    "roles": {
                        "type": "array",
                        "minItems": 1,
                        "uniqueItems": True,
                        "description": "What the node runs.",
                        "items": {"enum": ["control-plane", "etcd", "worker"]},
                    },
                    "pool": _str("GPU pool this worker belongs to (a key of gpu_pools).", pattern=DNS_LABEL),
                    "labels": LABELS,
                    "taints": {"type": "array", "items": TAINT, "description": "Extra node taints."},
                    "simulated": _bool("Lab only: a simulated (KWOK) node; node-level plays skip it.", False),
                    "host_vars": {
                        "type": "object",
                        "description": "Extra Ansible host variables for this node (free-form).",
                    },
                },
                required=("name", "address", "roles"),
            ),
        },
        "gpu_pools": {
            "type": "object",
            "description": "Groups of identical GPU nodes. Keys are pool names (DNS-1123 labels).",
            "propertyNames": {"pattern": DNS_LABEL},
            "additionalProperties": _obj(
                {
                    "model": _str(
                        "Expected GPU model: a catalog key (see docs/gpu-models.md), a PCI device ID, "
                        "or `auto` (taken from discovery; MIG layouts need a concrete model).",
                        default="auto",
                    ),
                    "gpus_per_node": _int("GPUs in each node of the pool.", 1, 16),
                    "driver": _obj(
                        {
                            "mode": _enum("Who installs the driver: the GPU Operator, or it is preinstalled on the host.",
                                          ("operator", "preinstalled"), "operator"),
                            "version": _str("Driver version the Operator installs (operator mode).",
                                            pattern=r"^[0-9]+(\.[0-9]+){1,2}$"),
                        },
                    ),
                    "mig": _obj(
                        {
                            "strategy": _enum("How MIG devices are exposed to Kubernetes.",
                                              ("none", "single", "mixed"), "none"),
                            "layout": {
                                "description": (
                                    "A preset name (all-disabled, all-1g.10gb, all-balanced, ...), a "
                                    "{profile: count} map for every GPU, or a list of maps, one per GPU index."
                                ),
                                "oneOf": [
                                    {"type": "string", "pattern": r"^[a-z0-9][a-z0-9.+-]*$"},
                                    {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
                                    {"type": "array", "minItems": 1, "items": {
                                        "type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}},
                                ],
                            },
                            "allow_disruption": _bool(
                                "Allow changing the layout of nodes that run GPU pods (they are drained first).", False),
                        },
                    ),
                    "sharing": _obj(
                        {
                            "mode": _enum("GPU sharing.", ("none", "time-slicing", "mps"), "none"),
                            "replicas": _int("Replicas per GPU (or per MIG device).", 2, 64),
                            "rename_by_default": _bool("Advertise shared GPUs as <resource>.shared.", False),
                            "fail_requests_greater_than_one": _bool(
                                "Refuse pods asking for more than one shared replica (upstream advice).", True),
                        },
                    ),
                    "labels": LABELS,
                    "taints": {"type": "array", "items": TAINT, "description": "Taints put on every node of the pool."},
                },
                required=("gpus_per_node",),
            ),
        },
        "scheduling": _obj(
            {
                "allow_overcommit": _bool("Allow team quotas to add up to more than the pools provide.", False),
                "cohort": _str("Kueue cohort shared by the team ClusterQueues.", pattern=DNS_LABEL, default="gpufleet"),
                "preemption": _enum("Kueue preemption within a team's ClusterQueue.",
                                    ("Never", "LowerPriority", "LowerOrNewerEqualPriority"), "LowerPriority"),
                "queueing_strategy": _enum("Kueue queueing strategy.", ("BestEffortFIFO", "StrictFIFO"),
                                           "BestEffortFIFO"),
            },
            description="How teams share the GPUs.",
        ),
        "teams": {
            "type": "array",
            "description": "Tenants. Each becomes a namespace, a Kueue LocalQueue/ClusterQueue and/or a Volcano queue.",
            "items": _obj(
                {
                    "name": _str("Team name (a DNS-1123 label).", pattern=DNS_LABEL),
                    "namespace": _str("Namespace (default: the team name).", pattern=DNS_LABEL),
                    "description": _str("Free text."),
                    "priority": _int("Priority value of the team's WorkloadPriorityClass.", -1000000, 1000000000),
                    "quotas": {
                        "type": "object",
                        "description": "GPU quotas: {pool: {resource: quota}}, e.g. {a100: {nvidia.com/gpu: 8}}.",
                        "propertyNames": {"pattern": DNS_LABEL},
                        "additionalProperties": {
                            "type": "object",
                            "propertyNames": {"pattern": RESOURCE_NAME},
                            "additionalProperties": QUOTA_VALUE,
                        },
                    },
                    "cpu": _str("CPU quota (Kubernetes quantity).", pattern=QUANTITY),
                    "memory": _str("Memory quota (Kubernetes quantity).", pattern=QUANTITY),
                    "volcano": _obj(
                        {
                            "weight": _int("Queue weight.", 1, 65535),
                            "parent": _str("Parent queue (a team name) for hierarchical queues.", pattern=DNS_LABEL),
                            "reclaimable": _bool("Other queues may reclaim resources this queue lent.", True),
                        },
                    ),
                    "training": _obj(
                        {
                            "default_runtime": _str("The ClusterTrainingRuntime the team's TrainJobs use unless they "
                                                    "name another (one of services.training.runtimes); the training "
                                                    "role writes it to the ConfigMap gpufleet-training in the team's "
                                                    "namespace, and examples/render.py fills it in.",
                                                    pattern=DNS_LABEL),
                        },
                        description="The team's training defaults (services.training).",
                    ),
                    "delete_namespace_on_removal": _bool(
                        "Delete the namespace when the team is removed from config.", False),
                    "access": TEAM_ACCESS,
                },
                required=("name",),
            ),
        },
        "services": _obj(
            {
                "cert_manager": _service(
                    "cert-manager (KServe and Slurm need it).",
                    {"install": _bool("Install it; false asserts an existing cert-manager.", True)},
                ),
                "gpu_operator": _service(
                    "NVIDIA GPU Operator.",
                    {
                        "dcgm_exporter": _bool("Run the DCGM exporter.", True),
                        "cdi": _bool("Use CDI in the toolkit.", True),
                        "nfd": _bool("Deploy Node Feature Discovery.", True),
                    },
                    enabled_default=True,
                ),
                "kueue": _service(
                    "Kueue (job queueing and quotas).",
                    {
                        "prune": _prune("Kueue objects (and namespaces marked for deletion) of removed teams and pools"),
                        "integrations": {
                            "type": "array",
                            "uniqueItems": True,
                            "description": "Job frameworks Kueue manages (default batch/job). The collection adds "
                                           "jobset.x-k8s.io/jobset and trainer.kubeflow.org/trainjob when "
                                           "services.training is on. A framework whose operator the config neither "
                                           "installs nor lists in external_integrations is refused.",
                            "items": {"enum": list(KUEUE_INTEGRATIONS)},
                        },
                        "external_integrations": {
                            "type": "array",
                            "uniqueItems": True,
                            "default": [],
                            "description": "Frameworks of integrations whose operator is already in the cluster, "
                                           "installed outside this collection (e.g. kubeflow.org/pytorchjob with "
                                           "the Kubeflow training-operator, ray.io/rayjob with KubeRay).",
                            "items": {"enum": list(KUEUE_INTEGRATIONS)},
                        },
                        "wait_for_pods_ready": _bool("All-or-nothing admission (waitForPodsReady).", True),
                        "fair_sharing": _bool("Enable fair sharing between cohorts.", False),
                        "count_mig_as_gpu": _bool(
                            "Charge MIG devices against nvidia.com/gpu quotas as their share of a GPU (Kueue "
                            "resources.transformations, e.g. 3g.40gb = 3/7 GPU); quotas on MIG pools are then "
                            "given in nvidia.com/gpu, not per MIG profile.", False),
                    },
                ),
                "volcano": _service(
                    "Volcano (gang scheduling, hierarchical queues).",
                    {
                        "prune": _prune("Volcano Queues (and namespaces marked for deletion) of removed teams"),
                        "scheduler_plugins": {
                            "type": "array", "uniqueItems": True,
                            "items": {"enum": ["gang", "drf", "proportion", "capacity", "binpack", "priority",
                                               "predicates", "nodeorder", "conformance"]},
                            "description": "Scheduler plugins to enable.",
                        },
                    },
                ),
                "slurm": _service(
                    "Slurm on Kubernetes (Slinky slurm-operator).",
                    {
                        "cluster_name": _str("Slurm cluster name.", pattern=DNS_LABEL),
                        "nodesets": {
                            "type": "array",
                            "description": "Slurm node sets, one per GPU pool Slurm uses.",
                            "items": _obj(
                                {
                                    "name": _str("NodeSet name.", pattern=DNS_LABEL),
                                    "pool": _str("GPU pool.", pattern=DNS_LABEL),
                                    "replicas": _int("Slurm worker pods.", 0, 10000),
                                    "gres": {
                                        "type": "object",
                                        "description": "GRES per node: {gpu: N} or {<mig profile>: N}.",
                                        "additionalProperties": {"type": "integer", "minimum": 0},
                                    },
                                    "shared_with_queues": _bool(
                                        "The pool is also in teams' Kueue/Volcano quotas. true splits its GPUs: "
                                        "Slurm's worker pods hold replicas x GRES of them through the Kubernetes "
                                        "scheduler, and the teams' quotas in the pool must fit in the rest "
                                        "(unless scheduling.allow_overcommit). false (default): a pool in team "
                                        "quotas is refused, so the two schedulers never count the same GPUs.",
                                        False),
                                },
                                required=("name", "pool"),
                            ),
                        },
                        "partitions": {
                            "type": "array",
                            "items": _obj(
                                {
                                    "name": _str("Partition name.", pattern=r"^[a-z0-9_-]+$"),
                                    "nodesets": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                                    "default": _bool("Default partition.", False),
                                    "max_time": _str("Max job time (Slurm time spec or UNLIMITED)."),
                                },
                                required=("name", "nodesets"),
                            ),
                        },
                        "login_ssh_keys": {"type": "array", "items": {"type": "string", "pattern": r"^(ssh-|ecdsa-)"},
                                           "description": "SSH public keys for the login set."},
                        "prolog_scripts": SLURM_SCRIPTS,
                        "epilog_scripts": SLURM_SCRIPTS,
                        "controller_storage": _obj(
                            {
                                "enabled": _bool("slurmctld save-state on a PersistentVolumeClaim (keeps jobs and "
                                                 "reservations across restarts; needs a StorageClass).", True),
                                "storage_class": _str("StorageClass of the claim (default: the cluster's default "
                                                      "class)."),
                                "size": _str("Claim size.", default="4Gi",
                                             pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti)$"),
                            },
                        ),
                        "accounting": _obj(
                            {
                                "enabled": _bool("Slurm accounting (slurmdbd) with an external database.", False),
                                "database_host": _str("Database host."),
                                "database_user": _str("Database user.", default="slurm"),
                                "database_port": _int("Database port (default 3306).", 1, 65535),
                                "database_name": _str("Database name (default slurm_acct_db).",
                                                      pattern=r"^[A-Za-z0-9_]+$"),
                            },
                        ),
                    },
                ),
                "training": _service(
                    "Kubeflow Trainer v2 (TrainJob, ClusterTrainingRuntime) with JobSet (role training).",
                    {
                        "prune": _prune("ClusterTrainingRuntimes and team training ConfigMaps"),
                        "runtimes": {
                            "type": "array", "uniqueItems": True, "default": ["torch-distributed"],
                            "items": {"enum": list(TRAINING_RUNTIMES)},
                            "description": "ClusterTrainingRuntimes the role applies (images pinned in the version "
                                           "matrix, from airgap.image_registry when set). One removed from the "
                                           "list is deleted (services.training.prune).",
                        },
                    },
                ),
                "kserve": _service(
                    "KServe model serving (vLLM).",
                    {
                        "prune": _prune("InferenceServices and their Secrets, ServiceAccounts and cache PVCs of removed models"),
                        "deployment_mode": _enum("KServe deployment mode; Knative needs Knative installed.",
                                                 ("Standard", "Knative"), "Standard"),
                        "kv_cache_share": {"type": "number", "minimum": 0, "maximum": 4, "default": 0.2,
                                           "description": "GPU memory for KV cache and activations, as a share of "
                                                          "the weights (the fit check: weights x (1 + share))."},
                        "gpu_memory_utilization": {"type": "number", "exclusiveMinimum": 0, "maximum": 1,
                                                   "default": 0.9,
                                                   "description": "vLLM --gpu-memory-utilization: the share of each "
                                                                  "GPU (or MIG device) vLLM may use."},
                        "engine_args": {"type": "array", "default": [], "items": VLLM_FLAG,
                                        "description": "vLLM engine flags every model gets (the runtime's args)."},
                        "wait_for_ready": _bool("Wait for every InferenceService's Ready condition and report its "
                                                "URL (needs a running KServe controller).", False),
                        "llmisvc": _bool("Install the LLMInferenceService stack (charts kserve-llmisvc-crd and "
                                         "kserve-llmisvc-resources, and KServe's LLMInferenceServiceConfig presets "
                                         "from kserve-runtime-configs), so models may set kind: "
                                         "LLMInferenceService. Turning it off later uninstalls nothing.", False),
                        "models": {
                            "type": "array",
                            "description": "InferenceServices.",
                            "items": _obj(
                                {
                                    "name": _str("Model name.", pattern=DNS_LABEL),
                                    "kind": _enum("What serves the model: an InferenceService (vLLM runtime, "
                                                  "min/max replicas), or an LLMInferenceService (KServe's llm-d "
                                                  "based stack, fixed replicas; needs services.kserve.llmisvc).",
                                                  ("InferenceService", "LLMInferenceService"), "InferenceService"),
                                    "namespace": _str("Namespace (a team's namespace when Kueue is on).",
                                                      pattern=DNS_LABEL),
                                    "storage_uri": _str("hf://, pvc:// or s3:// URI (or registry).", pattern=STORAGE_URI),
                                    "registry": {
                                        "description": "Serve a version of a model in the MLflow registry (instead of "
                                                       "storage_uri): {model: NAME, version: N} or {model: NAME, alias: "
                                                       "A}; resolved to its artifact location when the kserve role runs "
                                                       "(needs services.mlflow).",
                                        "oneOf": [
                                            _obj({"model": _str("Registered model name.", minLength=1),
                                                  "version": _int("Model version.", 1)},
                                                 required=("model", "version")),
                                            _obj({"model": _str("Registered model name.", minLength=1),
                                                  "alias": _str("Model alias.", pattern=r"^[A-Za-z0-9_-]+$")},
                                                 required=("model", "alias")),
                                        ],
                                    },
                                    "pool": _str("GPU pool to run on.", pattern=DNS_LABEL),
                                    "gpu_resource": _str("GPU resource, e.g. nvidia.com/gpu or nvidia.com/mig-3g.40gb.",
                                                         pattern=RESOURCE_NAME, default="nvidia.com/gpu"),
                                    "gpus": _int("GPUs (or MIG devices) per replica.", 1, 16),
                                    "tensor_parallel_size": _int("vLLM tensor parallel size (= gpus).", 1, 16),
                                    "parameters_billion": {"type": "number", "exclusiveMinimum": 0,
                                                           "description": "Model size, billions of parameters."},
                                    "dtype": _enum("Weights dtype.", ("float16", "bfloat16", "float32", "fp8", "int8",
                                                                      "int4"), "bfloat16"),
                                    "max_model_len": _int("vLLM max model length.", 1),
                                    "min_replicas": _int("Minimum replicas.", 0, 1000),
                                    "max_replicas": _int("Maximum replicas.", 1, 1000),
                                    "replicas": _int("Replicas of an LLMInferenceService (kind: LLMInferenceService "
                                                     "only; default 1).", 1, 1000),
                                    "credentials": SECRET_REF,
                                    "engine_args": {"type": "array", "items": VLLM_FLAG,
                                                    "description": "Extra vLLM engine flags for this model."},
                                    "cache": _obj(
                                        {
                                            "size": _str("Size of the model cache PVC.", pattern=QUANTITY),
                                            "storage_class": _str("StorageClass (default: the cluster's default)."),
                                        },
                                        required=("size",),
                                        description="A PersistentVolumeClaim mounted as the Hugging Face / vLLM cache.",
                                    ),
                                },
                                required=("name",),
                            ),
                        },
                    },
                ),
                "mlflow": _obj(
                    {
                        "enabled": _bool("Install the MLflow tracking server and model registry (role mlflow).", False),
                        "namespace": _str("Namespace MLflow runs in.", pattern=DNS_LABEL, default="mlflow"),
                        "replicas": _int("Tracking server replicas (they share the database and the bucket).", 1, 10,
                                         default=1),
                        "image": _str("Tracking server image (default: the pinned one, docs/versions.md). It must carry "
                                      "mlflow[auth] (Flask-WTF), psycopg2 and boto3, e.g. your build FROM "
                                      "ghcr.io/mlflow/mlflow:v3.15.1-full plus pip install mlflow[auth]==3.15.1.",
                                      pattern=r"^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(:[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})$"),
                        "url": _str("URL the controller reaches MLflow at, to resolve registry models for KServe "
                                    "(default: the in-cluster Service, "
                                    "http://mlflow.<namespace>.svc.cluster.local:5000).", pattern=r"^https?://[^/]+"),
                        "allowed_hosts": {"type": "array", "uniqueItems": True, "default": [],
                                          "items": {"type": "string", "minLength": 1},
                                          "description": "More Host header values the server accepts (MLflow refuses "
                                                         "unknown hosts; the Service names are always allowed), e.g. "
                                                         "the name of an ingress in front of it."},
                        "backend_store": _obj(
                            {
                                "host": _str("PostgreSQL host (an existing database server; the collection does not "
                                             "install one).", minLength=1),
                                "port": _int("PostgreSQL port.", 1, 65535, default=5432),
                                "database": _str("Database (must exist; MLflow creates its tables, and its auth "
                                                 "tables beside them).", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                                                 default="mlflow"),
                                "user": _str("Database user.", pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$"),
                                "password": SECRET_REF,
                                "sslmode": _enum("libpq sslmode of the connection.",
                                                 ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
                                                 "require"),
                            },
                            required=("host", "user", "password"),
                            description="The tracking and registry store: an existing PostgreSQL database.",
                        ),
                        "artifact_store": _obj(
                            {
                                "endpoint": _str("S3-compatible endpoint URL (MinIO, Ceph RGW, AWS).",
                                                 pattern=r"^https?://[^/]+$"),
                                "bucket": _str("Bucket (must exist).", pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"),
                                "path": _str("Key prefix inside the bucket.", pattern=r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$",
                                             default="mlflow"),
                                "region": _str("Region, where the store needs one.", pattern=r"^[a-z0-9-]+$"),
                                "credentials": SECRET_REF,
                            },
                            required=("endpoint", "bucket", "credentials"),
                            description="Where run artifacts and registered models are stored (S3-compatible); "
                                        "KServe reads registry models from here with the same credentials.",
                        ),
                        "auth": _obj(
                            {
                                "admin_user": _str("MLflow admin user (basic-auth app).", pattern=r"^[A-Za-z0-9._@-]+$",
                                                   default="gpufleet-admin"),
                                "admin_password": SECRET_REF,
                                "default_permission": _enum("Permission every user has on what others create.",
                                                            ("NO_PERMISSIONS", "READ", "EDIT", "MANAGE"), "READ"),
                            },
                            required=("admin_password",),
                            description="Authentication is always on (MLflow's basic-auth app); there is no default "
                                        "admin password.",
                        ),
                    },
                    description="MLflow tracking server and model registry (rendered by the mlflow role from a "
                                "pinned image; no chart).",
                ),
                "monitoring": _service(
                    "kube-prometheus-stack with DCGM GPU metrics, dashboards and GPU alerts.",
                    {
                        "retention": _str("Prometheus retention.", pattern=DURATION, default="15d"),
                        "storage_size": _str("Prometheus volume size (empty: no PVC).", pattern=QUANTITY),
                        "gpu_scrape_interval": _str("DCGM exporter scrape interval (>= 5s).", pattern=DURATION,
                                                    default="30s"),
                        "grafana_admin_user": _str("Grafana admin user.", default="gpufleet-admin"),
                        "alerts": _obj(
                            {
                                "gpu_temperature_celsius": _int("GPU temperature alert threshold.", 40, 120, default=85),
                                "framebuffer_used_percent": _int("Framebuffer use alert threshold.", 50, 100, default=95),
                                "low_utilisation_percent": _int("Low utilisation (right-sizing) threshold.", 1, 100,
                                                                default=20),
                                "kueue_pending_minutes": _int("Kueue workload pending alert threshold.", 1, 10080,
                                                              default=60),
                            },
                        ),
                    },
                ),
            },
            description="Platform components. Each has `enabled`, an optional pinned `version` and `chart` source.",
        ),
        "storage": _obj(
            {
                "backend": {"type": "string", "description": "The StorageClass the collection installs: local-path "
                            "(local-path-provisioner: a directory on the node that runs the pod; single-node and lab "
                            "use) or nfs (csi-driver-nfs: a directory per volume on an existing NFS export; shared). "
                            "Omit to install none (with storage.existing)."},
                "existing": _str("Adopt this StorageClass the site already has: the platform's PVCs (monitoring, "
                                 "model caches) use it. It must exist; the collection does not change it.",
                                 pattern=DNS_SUBDOMAIN, maxLength=253),
                "class_name": _str("Name of the installed StorageClass (default: local-path, or nfs-csi for nfs).",
                                   pattern=DNS_SUBDOMAIN, maxLength=253),
                "default": _bool("Make the installed StorageClass the cluster's default (PVCs without "
                                 "storageClassName get it). Only one default: false when storage.existing is set.",
                                 True),
                "reclaim_policy": _enum("What happens to a volume when its PVC is deleted.", ("Delete", "Retain"),
                                        "Delete"),
                "namespace": _str("Namespace of the provisioner (default: local-path-storage; kube-system for nfs).",
                                  pattern=DNS_LABEL),
                "version": _str("Chart version; omit to use the pinned version matrix.", pattern=CHART_VERSION),
                "chart": CHART,
                "values": {"type": "object", "description": "Free-form Helm values merged last over the values the "
                           "role computes (escape hatch)."},
                "local_path": _obj(
                    {"path": _str("Directory on each node under which volumes are created.", pattern=ABSOLUTE_PATH,
                                  default="/opt/local-path-provisioner")},
                    description="local-path settings.",
                ),
                "nfs": _obj(
                    {
                        "server": _str("NFS server: an IP address or a DNS hostname."),
                        "path": _str("Exported directory on the server (absolute); each volume is a subdirectory."),
                        "mount_options": {"type": "array", "items": {"type": "string", "minLength": 1},
                                          "default": ["nfsvers=4.1"], "description": "NFS mount options."},
                    },
                    description="nfs settings (required with backend nfs).",
                ),
            },
            description="The default StorageClass for the platform's PersistentVolumeClaims: installed (local-path, "
                        "nfs) or adopted (existing). Omit the section to leave storage as the cluster has it.",
        ),
        "airgap": _obj(
            {
                "enabled": _bool("Air-gapped site: charts and images come from local mirrors.", False),
                "chart_mirror": _obj(
                    {
                        "type": _enum("Mirror kind.", ("local", "oci", "repo")),
                        "location": _str("Directory of chart .tgz files, oci://registry/prefix, or Helm repo URL."),
                    },
                    required=("type", "location"),
                ),
                "image_registry": _str("Registry (host[:port][/prefix]) that mirrors every image.",
                                       pattern=r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._/-]+)?$"),
            },
            description="Air-gap settings.",
        ),
        "secrets": _obj(
            {
                "grafana_admin_password": SECRET_REF,
                "slurm_db_password": SECRET_REF,
                "registry_credentials": SECRET_REF,
                "alertmanager_receivers": SECRET_REF,
            },
            description="Secrets, by reference only: never a literal value in config.yml.",
        ),
    },
}


def schema():
    """Return a copy of the schema (callers may annotate it)."""
    return copy.deepcopy(SCHEMA)
