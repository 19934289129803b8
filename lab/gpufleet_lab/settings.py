"""Paths, ports and pinned versions of the lab (all overridable from the environment)."""
import os

LAB_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_ROOT = os.path.dirname(LAB_DIR)


def _versions():
    out = {}
    with open(os.path.join(LAB_DIR, "versions.env")) as fh:
        for line in fh:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                out[key] = value
    return out


VERSIONS = _versions()
KUBE_VERSION = VERSIONS["KUBE_VERSION"]
ETCD_VERSION = VERSIONS["ETCD_VERSION"]
HELM_VERSION = VERSIONS["HELM_VERSION"]
KWOK_VERSION = VERSIONS["KWOK_VERSION"]

CACHE = os.path.expanduser(os.environ.get("GPUFLEET_LAB_CACHE", "~/.cache/gpufleet/lab"))
BIN = os.path.join(CACHE, "v" + KUBE_VERSION, "bin")
CONTROLLER_BIN = os.path.expanduser(os.environ.get("GPUFLEET_LAB_CONTROLLER_BIN", os.path.join(CACHE, "controllers", "bin")))  # build.sh ctrl_bin
RUN = os.path.expanduser(os.environ.get("GPUFLEET_LAB_RUN", os.path.join(CACHE, "run")))
CHARTS = os.path.expanduser(os.environ.get("GPUFLEET_LAB_CHARTS", os.path.join(CACHE, "charts")))
SHARED = os.path.expanduser(os.environ.get("GPUFLEET_SHARED", os.path.join(os.path.dirname(REPO_ROOT), "shared")))
UPSTREAM = os.path.join(SHARED, "upstream")
UPSTREAM_CACHE = os.path.join(CACHE, "upstream")  # fetched copies when ../shared is absent

HOST = "127.0.0.1"
PORTS = {
    "etcd": int(os.environ.get("GPUFLEET_LAB_ETCD_PORT", "22379")),
    "etcd-peer": int(os.environ.get("GPUFLEET_LAB_ETCD_PEER_PORT", "22380")),
    "apiserver": int(os.environ.get("GPUFLEET_LAB_API_PORT", "26443")),
    "controller-manager": int(os.environ.get("GPUFLEET_LAB_KCM_PORT", "20257")),
    "scheduler": int(os.environ.get("GPUFLEET_LAB_SCHED_PORT", "20259")),
    "kwok": int(os.environ.get("GPUFLEET_LAB_KWOK_PORT", "20247")),
    # the GPU simulator's DCGM-exporter-style metrics (http://127.0.0.1:<port>/metrics)
    "dcgm": int(os.environ.get("GPUFLEET_LAB_DCGM_PORT", "20248")),
}
SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"

KUBECONFIG = os.path.join(RUN, "kubeconfig")
STATE = os.path.join(RUN, "state.json")
LOGS = os.path.join(RUN, "logs")
PIDS = os.path.join(RUN, "pids")
PKI = os.path.join(RUN, "pki")

# The lab marker: the simulator refuses to touch any cluster without it.
MARKER_NAMESPACE = "gpufleet-lab"
MARKER_ANNOTATION = "lab.gpufleet.io/lab-id"
SIMULATED_LABEL = "lab.gpufleet.io/simulated"
MANAGED_LABEL = "lab.gpufleet.io/managed-by"

DEFAULT_CONFIG = os.path.join(REPO_ROOT, "inventories", "lab", "config.yml")


def api_url():
    return "https://%s:%d" % (HOST, PORTS["apiserver"])


def binary(name):
    return os.path.join(BIN, name)
