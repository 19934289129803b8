"""Simulated (KWOK) nodes generated from config.yml, labelled like GPU feature discovery does."""
import concurrent.futures
import json
import os
import re
import time

import yaml

from . import gpu_models, settings

DEFAULT_DRIVER = "595.91.07"  # GPU Operator v26.7.0's default driver
BASE_ANNOTATION = "lab.gpufleet.io/base-resources"  # physical GPUs before MIG/sharing (read by the simulator)
MODEL_ANNOTATION = "lab.gpufleet.io/gpu-model"
KERNEL_VERSION = "6.1.0-lab"  # what the simulated kubelets report (status.nodeInfo)
OS_IMAGE = "Debian GNU/Linux 12 (bookworm) [gpufleet lab]"
NFD = "feature.node.kubernetes.io/"
# NVIDIA's PCI vendor id; data-centre GPUs are PCI class 0302 (3D controller). The GPU Operator's node
# labelling turns nvidia.com/gpu.present on and off by these (controllers/state_manager.go gpuNodeLabels).
NFD_GPU_LABELS = {NFD + "pci-10de.present": "true", NFD + "pci-0302_10de.present": "true"}

# Approximate "max CUDA version" a driver branch reports (GFD's cuda.runtime-version labels).
_CUDA_BY_DRIVER = ((595, "13.2"), (590, "13.1"), (580, "13.0"), (575, "12.9"), (570, "12.8"),
                   (560, "12.6"), (550, "12.4"), (535, "12.2"), (0, "12.0"))


def load_config(path):
    with open(os.path.expanduser(path)) as fh:
        return yaml.safe_load(fh)


def _cuda_for(driver):
    major = int(driver.split(".")[0])
    return next(v for floor, v in _CUDA_BY_DRIVER if major >= floor)


def _sizes(node, gpus):
    hv = node.get("host_vars") or {}
    if gpus:
        cpu, mem = 16 * gpus, "%dGi" % (128 * gpus)
    elif "control-plane" in node.get("roles", ()):
        cpu, mem = 8, "32Gi"
    else:
        cpu, mem = 32, "128Gi"
    return str(hv.get("lab_cpu", cpu)), str(hv.get("lab_memory", mem)), str(hv.get("lab_pods", 110))


def _os_release(os_image):
    """(ID, VERSION_ID) of /etc/os-release, from a node's osImage (what NFD's system source reads)."""
    m = re.match(r"(Debian GNU/Linux|Ubuntu|Red Hat Enterprise Linux|Rocky Linux)\D*(\d+(?:\.\d+)?)", os_image or "")
    if not m:
        return "debian", "12"
    return {"Debian GNU/Linux": "debian", "Ubuntu": "ubuntu", "Red Hat Enterprise Linux": "rhel",
            "Rocky Linux": "rocky"}[m.group(1)], m.group(2)


def nfd_labels(kernel=KERNEL_VERSION, os_image=OS_IMAGE, gpu=False):
    """The node-feature-discovery labels the GPU Operator reads: kernel and OS release (every node; the
    driver DaemonSet's image tag is <driver>-<ID><VERSION_ID>), and the NVIDIA PCI device labels (GPU nodes)."""
    kernel = re.sub(r"[^A-Za-z0-9._-]", "_", kernel)[:63]
    kparts = (re.findall(r"\d+", kernel) + ["0", "0", "0"])[:3]
    os_id, os_ver = _os_release(os_image)
    labels = {
        NFD + "kernel-version.full": kernel,
        NFD + "kernel-version.major": kparts[0],
        NFD + "kernel-version.minor": kparts[1],
        NFD + "kernel-version.revision": kparts[2],
        NFD + "system-os_release.ID": os_id,
        NFD + "system-os_release.VERSION_ID": os_ver,
        NFD + "system-os_release.VERSION_ID.major": os_ver.split(".")[0],
    }
    if "." in os_ver:
        labels[NFD + "system-os_release.VERSION_ID.minor"] = os_ver.split(".")[1]
    if gpu:
        labels.update(NFD_GPU_LABELS)
    return labels


def gpu_labels(pool, model, gpus):
    driver = (pool.get("driver") or {}).get("version") or DEFAULT_DRIVER
    dparts = (driver.split(".") + ["0", "0"])[:3]
    cuda = _cuda_for(driver)
    cmaj, cmin = cuda.split(".")
    comp = model.compute.split(".")
    mig = pool.get("mig") or {}
    labels = {
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": model.gfd_product,
        "nvidia.com/gpu.count": str(gpus),
        "nvidia.com/gpu.replicas": "1",
        "nvidia.com/gpu.memory": str(model.memory_mib),
        "nvidia.com/gpu.family": model.family,
        "nvidia.com/gpu.mode": "compute",
        "nvidia.com/gpu.machine": "Simulated-GPU-Node",
        "nvidia.com/gpu.compute.major": comp[0],
        "nvidia.com/gpu.compute.minor": comp[1] if len(comp) > 1 else "0",
        "nvidia.com/gpu.sharing-strategy": "none",
        "nvidia.com/mig.capable": "true" if model.mig_capable else "false",
        "nvidia.com/mps.capable": "false",
        "nvidia.com/cuda.driver-version.major": dparts[0],
        "nvidia.com/cuda.driver-version.minor": dparts[1],
        "nvidia.com/cuda.driver-version.revision": dparts[2],
        "nvidia.com/cuda.driver-version.full": driver,
        "nvidia.com/cuda.runtime-version.major": cmaj,
        "nvidia.com/cuda.runtime-version.minor": cmin,
        "nvidia.com/cuda.runtime-version.full": cuda,
        "nvidia.com/gfd.timestamp": str(int(time.time())),
    }
    if model.mig_capable:
        strategy = mig.get("strategy") or "none"
        labels["nvidia.com/mig.strategy"] = "single" if strategy == "single" else "mixed" \
            if strategy == "mixed" else "none"
    return labels


def node_objects(config, lab_id):
    """Node manifests (with status) for every config node marked simulated."""
    pools = config.get("gpu_pools") or {}
    out = []
    for node in config.get("nodes") or ():
        if not node.get("simulated"):
            continue
        roles = node.get("roles") or []
        pool_name = node.get("pool")
        pool = pools.get(pool_name) or {} if pool_name else {}
        gpus = int(pool.get("gpus_per_node", 0)) if pool_name else 0
        labels = {
            "kubernetes.io/hostname": node["name"],
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "type": "kwok",
            settings.SIMULATED_LABEL: "true",
            settings.MANAGED_LABEL: "gpufleet-lab",
        }
        if "control-plane" in roles:
            labels["node-role.kubernetes.io/control-plane"] = ""
        if "worker" in roles:
            labels["node-role.kubernetes.io/worker"] = ""
        annotations = {
            "kwok.x-k8s.io/node": "fake",
            "node.alpha.kubernetes.io/ttl": "0",
            settings.MARKER_ANNOTATION: lab_id,
        }
        taints = []
        if "control-plane" in roles:
            taints.append({"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"})
        cpu, mem, pods = _sizes(node, gpus)
        capacity = {"cpu": cpu, "memory": mem, "pods": pods, "ephemeral-storage": "1Ti"}
        if pool_name:
            labels["gpufleet.io/pool"] = pool_name
            labels.update(pool.get("labels") or {})
            taints.extend(pool.get("taints") or [])
        if gpus:
            model = gpu_models.lookup(pool.get("model") or "a100-sxm4-80gb")
            labels.update(gpu_labels(pool, model, gpus))
            capacity["nvidia.com/gpu"] = str(gpus)
            annotations[BASE_ANNOTATION] = json.dumps({"nvidia.com/gpu": gpus})
            annotations[MODEL_ANNOTATION] = model.key
        labels.update(nfd_labels(gpu=bool(gpus)))
        labels.update(node.get("labels") or {})
        taints.extend(node.get("taints") or [])
        taints = [{k: v for k, v in t.items() if v is not None} for t in taints]
        out.append({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": node["name"], "labels": labels, "annotations": annotations},
            "spec": {"taints": taints} if taints else {},
            "status": {
                "capacity": capacity,
                "allocatable": dict(capacity),
                "addresses": [{"type": "InternalIP", "address": node.get("address", settings.HOST)},
                              {"type": "Hostname", "address": node["name"]}],
                "nodeInfo": {
                    "architecture": "amd64", "operatingSystem": "linux",
                    "kubeletVersion": "v" + settings.KUBE_VERSION,
                    "kubeProxyVersion": "v" + settings.KUBE_VERSION,
                    "containerRuntimeVersion": "containerd://2.1.5",
                    "kernelVersion": KERNEL_VERSION, "osImage": OS_IMAGE,
                    "machineID": "", "systemUUID": "", "bootID": "",
                },
            },
        })
    return out


def apply_nodes(api, nodes, threads=8):
    """Create missing nodes (one POST each, status included) and re-apply existing ones.

    Runs in parallel threads over one connection pool: 1,000 nodes take seconds, not one
    kubectl process per node.
    """
    from kubernetes.client.rest import ApiException

    def one(obj):
        name = obj["metadata"]["name"]
        try:
            api.create_node(obj)
            return "created"
        except ApiException as exc:
            if exc.status != 409:
                raise
        body = {"apiVersion": "v1", "kind": "Node", "metadata": obj["metadata"], "spec": obj["spec"]}
        api.patch_node(name, body, field_manager="gpufleet-lab", force=True,
                       _content_type="application/apply-patch+yaml")
        return "updated"

    counts = {"created": 0, "updated": 0}
    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
        for result in pool.map(one, nodes):
            counts[result] += 1
    return counts


def prune_nodes(api, keep_names):
    """Delete lab-managed nodes that are no longer in the config."""
    keep = set(keep_names)
    stale = [n.metadata.name for n in api.list_node(label_selector=settings.MANAGED_LABEL + "=gpufleet-lab").items
             if n.metadata.name not in keep]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(api.delete_node, stale))
    return stale


def ready_count(api, selector=settings.SIMULATED_LABEL + "=true"):
    total = ready = 0
    cont = None
    while True:
        resp = api.list_node(label_selector=selector, limit=500, _continue=cont)
        for n in resp.items:
            total += 1
            for c in n.status.conditions or ():
                if c.type == "Ready" and c.status == "True":
                    ready += 1
        cont = resp.metadata._continue
        if not cont:
            return total, ready


def wait_ready(api, expected, timeout):
    deadline = time.time() + timeout
    while True:
        total, ready = ready_count(api)
        if ready >= expected:
            return ready
        if time.time() > deadline:
            raise RuntimeError("only %d of %d simulated nodes Ready after %ds (see kwok log)" % (ready, expected, timeout))
        time.sleep(0.5)


def generate_config(base_path, gpu_nodes, out_path):
    """A copy of the lab config with `gpu_nodes` GPU nodes spread over its pools (for the bench)."""
    config = load_config(base_path)
    pools = list((config.get("gpu_pools") or {}).keys())
    keep = [n for n in config["nodes"] if not n.get("pool")]
    nodes = list(keep)
    for i in range(gpu_nodes):
        pool = pools[i % len(pools)]
        nodes.append({"name": "lab-%s-%04d" % (pool, i + 1),
                      "address": "127.%d.%d.%d" % (20 + i // 62500, (i // 250) % 250, i % 250 + 1),
                      "roles": ["worker"], "pool": pool, "simulated": True})
    config["nodes"] = nodes
    with open(out_path, "w") as fh:
        fh.write("# Generated by lab/lab.py gen-config from %s (%d GPU nodes). Do not edit.\n"
                 % (os.path.basename(base_path), gpu_nodes))
        yaml.safe_dump(config, fh, sort_keys=False)
    return out_path
