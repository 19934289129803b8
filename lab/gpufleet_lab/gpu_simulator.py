"""GPU SIMULATOR for the gpufleet lab. It is not a driver, device plugin or MIG manager.

The lab runs the real GPU Operator (controllers.py plays its Deployment); only the GPUs are simulated.
This process plays the GPU hardware and what the operator's DaemonSet pods (NFD worker, MIG manager,
device plugin, GPU feature discovery, DCGM exporter) would publish on the lab's KWOK-simulated GPU nodes:

* The node-feature-discovery labels the operator selects GPU nodes by (``feature.node.kubernetes.io/
  pci-10de.present`` ...) and reads (kernel version, OS release): kept on every GPU node.

* When a node's ``nvidia.com/mig.config`` label changes, it sets
  ``nvidia.com/mig.config.state=pending``. It then reads the mig-parted config (ConfigMap
  ``--mig-configmap``, key ``config.yaml``, or the one the ClusterPolicy names). A preset name
  that is missing there is planned with the collection's own ``mig.plan_layout``. The node
  ends ``success``, with ``nvidia.com/mig-*`` capacity (mixed strategy) or the single-strategy
  ``nvidia.com/gpu`` count, or ``failed`` when the layout does not fit the GPU.
* It applies time-slicing / MPS replicas from the device-plugin config ConfigMap, choosing the
  key by the node's ``nvidia.com/device-plugin.config`` label (or the default key).
* The ClusterPolicy status is the real operator's. Only when the lab has no GPU Operator binary
  (a STAND-IN operator) does the simulator mark every ClusterPolicy ``status.state: ready`` itself.
* DCGM-exporter-style Prometheus metrics per simulated GPU on ``http://127.0.0.1:<dcgm port>/metrics``
  (settings.PORTS["dcgm"], GPUFLEET_LAB_DCGM_PORT): a GPU is busy while pods on its node hold it.
* Test hook: the node annotation ``lab.gpufleet.io/force-mig-state: failed`` leaves that node
  ``failed``.

Safety: it refuses to start unless its kubeconfig points at the lab's own API server on
127.0.0.1 (the lab port) and the lab marker namespace carries this lab's id.
"""
import argparse
import hashlib
import http.server
import json
import math
import os
import queue
import sys
import threading
import time
import urllib.parse
import uuid

import yaml

from . import controllers, gpu_models, nodes, settings

MIG_CONFIG = "nvidia.com/mig.config"
MIG_STATE = "nvidia.com/mig.config.state"
DP_CONFIG = "nvidia.com/device-plugin.config"
FORCE = "lab.gpufleet.io/force-mig-state"
APPLIED = "lab.gpufleet.io/applied-mig-config"
MIG_RES = "lab.gpufleet.io/mig-resources"
MIG_ERROR = "lab.gpufleet.io/mig-error"
# Every simulated node (not only nvidia.com/gpu.present=true: the operator clears that label on a node that
# lost its PCI labels, and the simulator puts them back); nodes without GPUs are skipped in reconcile.
SELECTOR = "%s=true" % settings.SIMULATED_LABEL


def _mig_module():
    gpu_models.collection_importable()  # puts .build/collections on sys.path
    from ansible_collections.gpufleet.platform.plugins.module_utils import mig
    return mig


class Refused(SystemExit):
    pass


def safety_check(api_client, kubeconfig, lab_id):
    """Refuse to run anywhere but the lab's own 127.0.0.1 API server carrying our lab marker."""
    from kubernetes import client
    with open(kubeconfig) as fh:
        kc = yaml.safe_load(fh)
    ctx = next(c["context"] for c in kc["contexts"] if c["name"] == kc["current-context"])
    server = next(c["cluster"]["server"] for c in kc["clusters"] if c["name"] == ctx["cluster"])
    url = urllib.parse.urlparse(server)
    if url.hostname != settings.HOST or url.port != settings.PORTS["apiserver"]:
        raise Refused("gpu-simulator: refusing to run against %s: only the lab API server %s is allowed"
                      % (server, settings.api_url()))
    try:
        ns = client.CoreV1Api(api_client).read_namespace(settings.MARKER_NAMESPACE)
    except Exception as exc:
        raise Refused("gpu-simulator: refusing to run: lab marker namespace %s not found (%s)"
                      % (settings.MARKER_NAMESPACE, exc))
    found = (ns.metadata.annotations or {}).get(settings.MARKER_ANNOTATION)
    if not lab_id or found != lab_id:
        raise Refused("gpu-simulator: refusing to run: lab marker %s=%r does not match this lab (%r)"
                      % (settings.MARKER_ANNOTATION, found, lab_id))


def _qty(value):
    try:
        return int(str(value))
    except ValueError:
        return 0


# ----------------------------------------------------------------- DCGM exporter metrics
# (name, HELP text as dcgm-exporter's default counters file words it)
DCGM_METRICS = (
    ("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %)."),
    ("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB)."),
    ("DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB)."),
    ("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C)."),
    ("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W)."),
)
_TDP_W = {"blackwell": 1000, "hopper": 700, "ampere": 400, "ada-lovelace": 350, "turing": 70}


def gpu_uuid(node, index):
    """A stable GPU UUID (GPU-xxxxxxxx-...) per node and GPU index, like nvidia-smi's."""
    return "GPU-" + str(uuid.uuid5(uuid.NAMESPACE_URL, "gpufleet-lab/%s/%d" % (node, index)))


def gpu_samples(node, model, gpus, busy):
    """One sample dict per GPU of a node; the first `busy` GPUs are in use by pods (deterministic values)."""
    out = []
    tdp = _TDP_W.get(model.family, 300)
    for i in range(gpus):
        wobble = int(hashlib.sha1(("%s/%d" % (node, i)).encode()).hexdigest()[:4], 16)
        used = i < busy
        fb_used = int(model.memory_mib * 0.85) if used else 0
        out.append({
            "gpu": i, "UUID": gpu_uuid(node, i), "device": "nvidia%d" % i,
            "modelName": model.gfd_product.replace("-", " "), "Hostname": node,
            "DCGM_FI_DEV_GPU_UTIL": 90 + wobble % 10 if used else 0,
            "DCGM_FI_DEV_FB_USED": fb_used,
            "DCGM_FI_DEV_FB_FREE": model.memory_mib - fb_used,
            "DCGM_FI_DEV_GPU_TEMP": 62 + wobble % 8 if used else 30 + wobble % 5,
            "DCGM_FI_DEV_POWER_USAGE": round(tdp * (0.8 if used else 0.12) + (wobble % 100) / 10.0, 3),
        })
    return out


def _label_value(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def dcgm_metrics_text(samples):
    """Prometheus text exposition (0.0.4) of GPU samples, in dcgm-exporter's metric and label names."""
    lines = []
    for name, help_text in DCGM_METRICS:
        lines.append("# HELP %s %s" % (name, help_text))
        lines.append("# TYPE %s gauge" % name)
        for smp in samples:
            labels = ",".join('%s="%s"' % (k, _label_value(smp[k]))
                              for k in ("gpu", "UUID", "device", "modelName", "Hostname"))
            lines.append("%s{%s} %s" % (name, labels, smp[name]))
    return "\n".join(lines) + "\n"


def busy_gpus(gpus, capacity, requested):
    """How many of a node's GPUs are in use: the share of its nvidia.com/* capacity the pods request."""
    total = sum(_qty(v) for k, v in (capacity or {}).items() if k.startswith("nvidia.com/"))
    used = sum(v for k, v in requested.items() if k.startswith("nvidia.com/") and _qty((capacity or {}).get(k, 0)) > 0)
    if total <= 0 or used <= 0:
        return 0
    return min(gpus, int(math.ceil(gpus * float(used) / total)))


class _MetricsHandler(http.server.BaseHTTPRequestHandler):
    sim = None

    def do_GET(self):
        if self.path.split("?", 1)[0] != "/metrics":
            self.send_error(404, "only /metrics")
            return
        try:
            body = self.sim.metrics_text().encode()
        except Exception as exc:  # the API server restarting: say so, like an exporter would with 500
            self.send_error(500, str(exc)[:200])
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # quiet: scrapes every few seconds
        pass


class Simulator(object):
    def __init__(self, api_client, args):
        from kubernetes import client
        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.args = args
        self.queue = queue.Queue()
        self.stats = {"state": "running", "pid": os.getpid(), "reconciles": 0, "mig_applied": 0, "mig_failed": 0,
                      "cluster_policies_ready": 0, "cluster_policy_status": None, "last_event": None,
                      "dcgm_metrics": "http://%s:%d/metrics" % (settings.HOST, args.dcgm_port), "started": time.time()}
        self.cp_config = {}  # ClusterPolicy-named ConfigMaps
        self.gpu_nodes = {}  # name -> (model, gpus, nvidia.com/* capacity): what the DCGM metrics describe
        self.pods_cache = (0.0, {})  # (time, {node: {resource: requested}})
        self.stop = threading.Event()

    # ----------------------------------------------------------------- helpers
    def log(self, msg):
        sys.stdout.write("%s %s\n" % (time.strftime("%H:%M:%S"), msg))
        sys.stdout.flush()
        self.stats["last_event"] = msg[:200]

    def save_stats(self):
        path = os.path.join(settings.RUN, "gpu-simulator.json")
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(self.stats, fh, indent=2)
        os.replace(tmp, path)

    def configmap(self, name, key):
        from kubernetes.client.rest import ApiException
        try:
            cm = self.core.read_namespaced_config_map(name, self.namespace())
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return (cm.data or {}).get(key) if key else (cm.data or {})

    def namespace(self):
        """The GPU Operator's namespace: the ClusterPolicy's Helm release namespace, else --namespace."""
        return self.cp_config.get("namespace") or self.args.namespace

    def mig_configmap_name(self):
        return self.cp_config.get("mig") or self.args.mig_configmap

    def dp_configmap(self):
        return self.cp_config.get("dp") or self.args.device_plugin_configmap, self.cp_config.get("dp_default")

    # ----------------------------------------------------------------- MIG
    def mig_layout(self, model, gpus, config_name):
        """Per-GPU layouts (None = disabled) for mig-parted config `config_name`, or raise ValueError."""
        mig = _mig_module()
        text = self.configmap(self.mig_configmap_name(), "config.yaml")
        entries = None
        if text:
            doc = yaml.safe_load(text) or {}
            entries = (doc.get("mig-configs") or {}).get(config_name)
        if entries is None:
            # Not in the ConfigMap: the MIG manager's generated presets (all-disabled, all-1g.10gb, ...).
            return mig.plan_layout(model.key, config_name, gpu_count=gpus)
        per_gpu = [None] * gpus
        for entry in entries:
            flt = entry.get("device-filter")
            if flt:
                flt = [flt] if isinstance(flt, str) else flt
                ids = {str(f).upper().replace("0X", "0x") for f in flt}
                if model.pci_id and model.pci_id not in ids:
                    continue
            devices = entry.get("devices", "all")
            idx = range(gpus) if devices == "all" else [int(d) for d in devices]
            for i in idx:
                if i >= gpus:
                    raise ValueError("mig-parted config %s names GPU %d; the node has %d" % (config_name, i, gpus))
                per_gpu[i] = dict(entry.get("mig-devices") or {}) if entry.get("mig-enabled") else None
        return mig.plan_layout(model.key, per_gpu, gpu_count=gpus)

    def apply_mig(self, node, labels, ann, model, gpus):
        """Returns (resources dict or None to keep, state, error)."""
        if ann.get(FORCE):
            return None, ann[FORCE], "forced by annotation %s" % FORCE
        strategy = labels.get("nvidia.com/mig.strategy", "mixed")
        try:
            plan = self.mig_layout(model, gpus, labels[MIG_CONFIG])
        except Exception as exc:  # MigLayoutError, bad ConfigMap, unknown preset
            return None, "failed", str(exc)
        res = plan["resources"]
        if strategy == "single":
            if res.get("single") is None:
                return None, "failed", "the single MIG strategy needs every GPU split into one profile"
            return dict(res["single"]), "success", None
        return dict(res["mixed"]), "success", None

    # ----------------------------------------------------------------- sharing
    def sharing(self, labels):
        name, default_key = self.dp_configmap()
        data = self.configmap(name, None)
        if not data:
            return None
        key = labels.get(DP_CONFIG) or default_key or ("default" if "default" in data else None)
        if key is None and len(data) == 1:
            key = next(iter(data))
        if key not in data:
            return None
        doc = yaml.safe_load(data[key]) or {}
        sharing = doc.get("sharing") or {}
        for mode, field in (("time-slicing", "timeSlicing"), ("mps", "mps")):
            if sharing.get(field):
                return mode, sharing[field]
        return None

    # ----------------------------------------------------------------- reconcile
    def reconcile(self, name):
        from kubernetes.client.rest import ApiException
        try:
            node = self.core.read_node(name)
        except ApiException as exc:
            if exc.status == 404:
                self.gpu_nodes.pop(name, None)
                return
            raise
        labels = dict(node.metadata.labels or {})
        ann = dict(node.metadata.annotations or {})
        if nodes.BASE_ANNOTATION not in ann:
            return
        self.stats["reconciles"] += 1
        base = json.loads(ann[nodes.BASE_ANNOTATION])
        gpus = int(base.get("nvidia.com/gpu", 0))
        model = gpu_models.lookup(ann.get(nodes.MODEL_ANNOTATION) or "a100-sxm4-80gb")
        # NFD worker: the PCI, kernel and OS labels of the (simulated) hardware, put back if removed
        info = node.status.node_info
        new_labels = nodes.nfd_labels(kernel=getattr(info, "kernel_version", None) or nodes.KERNEL_VERSION,
                                      os_image=getattr(info, "os_image", None) or nodes.OS_IMAGE, gpu=gpus > 0)
        new_ann = {}

        # MIG (MIG manager + device plugin mixed/single strategy)
        mig_res = json.loads(ann[MIG_RES]) if ann.get(MIG_RES) else dict(base)
        if model.mig_capable and not labels.get(MIG_CONFIG) and ann.get(APPLIED):
            new_ann[APPLIED] = None  # the label went away: setting it again (even to the same value) applies it
        if model.mig_capable and labels.get(MIG_CONFIG):
            # As the NVIDIA MIG manager: a config is applied when the label's value changes (its node informer
            # compares label values; the ConfigMap is read then, not watched). A ConfigMap edit alone changes nothing.
            key = "%s|%s|%s" % (labels[MIG_CONFIG], ann.get(FORCE, ""), labels.get("nvidia.com/mig.strategy"))
            if ann.get(APPLIED) != key:
                if labels.get(MIG_STATE) != "pending":
                    self.core.patch_node(name, {"metadata": {"labels": {MIG_STATE: "pending"}}})
                    labels[MIG_STATE] = "pending"
                    self.log("%s: mig.config=%s -> pending" % (name, labels[MIG_CONFIG]))
                    time.sleep(self.args.mig_delay)
                res, state, error = self.apply_mig(node, labels, ann, model, gpus)
                if res is not None:
                    mig_res = res
                    new_ann[MIG_RES] = json.dumps(res, sort_keys=True)
                new_ann[APPLIED] = key
                new_ann[MIG_ERROR] = error
                new_labels[MIG_STATE] = state
                self.stats["mig_applied" if state == "success" else "mig_failed"] += 1
                self.log("%s: mig.config=%s -> %s%s" % (name, labels[MIG_CONFIG], state,
                                                        (" (%s)" % error) if error else ""))

        # Sharing (device plugin time-slicing / MPS)
        final = dict(mig_res)
        share = self.sharing(labels)
        replicas = 1
        renamed = False
        if share:
            mode, cfg = share
            rename_default = bool(cfg.get("renameByDefault"))
            for r in cfg.get("resources") or ():
                rname, reps = r.get("name"), int(r.get("replicas", 1))
                if rname in final and final[rname] > 0 and reps > 1:
                    target = r.get("rename") or (rname + ".shared" if rename_default else rname)
                    count = final[rname] * reps
                    if target != rname:
                        final[rname] = 0
                        renamed = True
                    final[target] = count
                    if rname == "nvidia.com/gpu" or rname.startswith("nvidia.com/mig-"):
                        replicas = max(replicas, reps)
            new_labels["nvidia.com/gpu.sharing-strategy"] = mode
        else:
            new_labels["nvidia.com/gpu.sharing-strategy"] = "none"
        new_labels["nvidia.com/gpu.replicas"] = str(replicas)
        product = model.gfd_product
        if share and not renamed and replicas > 1:
            product += "-SHARED"
        new_labels["nvidia.com/gpu.product"] = product
        for res in mig_res:
            if res.startswith("nvidia.com/mig-"):
                new_labels[res + ".count"] = str(mig_res[res])
        for key in labels:
            if key.startswith("nvidia.com/mig-") and key.endswith(".count") and key[:-6] not in mig_res:
                new_labels[key] = None

        # Patch status: every nvidia.com/* resource not published any more drops to 0 (like the kubelet).
        cap = dict(node.status.capacity or {})
        want = {}
        for res in cap:
            if res.startswith("nvidia.com/") and res not in final:
                want[res] = "0"
        for res, count in final.items():
            want[res] = str(count)
        self.gpu_nodes[name] = (model, gpus, dict(want))
        if any(cap.get(k) != v for k, v in want.items()) or \
                any((node.status.allocatable or {}).get(k) != v for k, v in want.items()):
            self.core.patch_node_status(name, {"status": {"capacity": want, "allocatable": want}})
            self.log("%s: capacity %s" % (name, ", ".join("%s=%s" % kv for kv in sorted(want.items()) if kv[1] != "0")))
        patch_labels = {k: v for k, v in new_labels.items() if labels.get(k) != v}
        patch_ann = {k: v for k, v in new_ann.items() if ann.get(k) != v}
        if patch_labels or patch_ann:
            self.core.patch_node(name, {"metadata": {"labels": patch_labels, "annotations": patch_ann}})

    # ----------------------------------------------------------------- loops
    def watch_nodes(self):
        from kubernetes import watch
        while not self.stop.is_set():
            try:
                resp = self.core.list_node(label_selector=SELECTOR)
                for n in resp.items:
                    self.queue.put(n.metadata.name)
                w = watch.Watch()
                for ev in w.stream(self.core.list_node, label_selector=SELECTOR,
                                   resource_version=resp.metadata.resource_version, timeout_seconds=300):
                    if ev["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        self.queue.put(ev["object"].metadata.name)
                    if self.stop.is_set():
                        break
            except Exception as exc:  # 410 Gone, connection reset: relist
                self.log("node watch restarted: %s" % str(exc)[:200])
                time.sleep(1)

    def watch_configmaps(self):
        from kubernetes import watch
        while not self.stop.is_set():
            try:
                w = watch.Watch()
                for ev in w.stream(self.core.list_config_map_for_all_namespaces, timeout_seconds=300):
                    name, ns = ev["object"].metadata.name, ev["object"].metadata.namespace
                    if ns == self.namespace() and name in (self.mig_configmap_name(), self.dp_configmap()[0]):
                        self.log("ConfigMap %s/%s %s: resync all GPU nodes" % (ns, name, ev["type"]))
                        self.resync()
                    if self.stop.is_set():
                        break
            except Exception as exc:
                self.log("configmap watch restarted: %s" % str(exc)[:200])
                time.sleep(1)

    # ----------------------------------------------------------------- DCGM metrics
    def requested_by_node(self, max_age=5.0):
        """{node: {nvidia.com/* resource: requested}} over the pods that hold devices (cached max_age s)."""
        at, cached = self.pods_cache
        if time.time() - at < max_age:
            return cached
        out = {}
        for pod in self.core.list_pod_for_all_namespaces(field_selector="status.phase=Running").items:
            node = pod.spec.node_name
            if not node or node not in self.gpu_nodes:
                continue
            for c in pod.spec.containers or ():
                res = c.resources
                asked = dict((res.requests or {}) if res else {})
                asked.update((res.limits or {}) if res else {})
                for k, v in asked.items():
                    if k.startswith("nvidia.com/"):
                        out.setdefault(node, {})[k] = out.get(node, {}).get(k, 0) + _qty(v)
        self.pods_cache = (time.time(), out)
        return out

    def metrics_text(self):
        requested = self.requested_by_node()
        samples = []
        for name in sorted(self.gpu_nodes):
            model, gpus, cap = self.gpu_nodes[name]
            samples.extend(gpu_samples(name, model, gpus, busy_gpus(gpus, cap, requested.get(name, {}))))
        return dcgm_metrics_text(samples)

    def serve_metrics(self):
        handler = type("Handler", (_MetricsHandler,), {"sim": self})
        server = http.server.ThreadingHTTPServer((settings.HOST, self.args.dcgm_port), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True, name="dcgm-metrics").start()
        return server

    def resync(self):
        for n in self.core.list_node(label_selector=SELECTOR).items:
            self.queue.put(n.metadata.name)

    def cluster_policies(self):
        from kubernetes.client.rest import ApiException
        while not self.stop.is_set():
            try:
                items = self.custom.list_cluster_custom_object("nvidia.com", "v1", "clusterpolicies")["items"]
            except ApiException:
                items = []
            except Exception as exc:
                self.log("clusterpolicy poll: %s" % str(exc)[:200])
                items = []
            conf = {}
            for cp in items:
                spec = cp.get("spec") or {}
                found = {
                    "mig": ((spec.get("migManager") or {}).get("config") or {}).get("name"),
                    "dp": ((spec.get("devicePlugin") or {}).get("config") or {}).get("name"),
                    "dp_default": ((spec.get("devicePlugin") or {}).get("config") or {}).get("default"),
                    "namespace": ((cp.get("metadata") or {}).get("annotations") or {}).get(
                        "meta.helm.sh/release-namespace"),
                }
                for key, value in found.items():
                    if value and key not in conf:
                        conf[key] = value
            if conf != self.cp_config:
                self.cp_config = conf
                self.log("ClusterPolicy config now %s: resync" % (conf or "(none: lab defaults)"))
                self.resync()
            # The real operator owns ClusterPolicy status; without its binary the simulator stands in.
            real = controllers.match("gpu-operator", "gpu-operator", None) is not None
            owner = "gpu-operator" if real else "gpu-simulator (STAND-IN: no gpu-operator binary)"
            if owner != self.stats["cluster_policy_status"]:
                self.stats["cluster_policy_status"] = owner
                self.log("ClusterPolicy status is set by %s" % owner)
            for cp in items:
                if not real and (cp.get("status") or {}).get("state") != "ready":
                    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                    body = {"status": {"state": "ready", "namespace": self.namespace(), "conditions": [
                        {"type": "Ready", "status": "True", "reason": "Reconciled", "lastTransitionTime": now,
                         "message": "gpufleet lab GPU simulator (STAND-IN operator): all simulated operands ready"},
                        {"type": "Error", "status": "False", "reason": "Ready", "lastTransitionTime": now,
                         "message": ""}]}}
                    try:
                        self.custom.patch_cluster_custom_object_status(
                            "nvidia.com", "v1", "clusterpolicies", cp["metadata"]["name"], body)
                        self.stats["cluster_policies_ready"] += 1
                        self.log("ClusterPolicy %s -> ready" % cp["metadata"]["name"])
                    except ApiException as exc:
                        self.log("ClusterPolicy status patch failed: %s" % exc.reason)
            self.save_stats()
            self.stop.wait(self.args.poll)

    def run(self):
        self.serve_metrics()
        for target in (self.watch_nodes, self.watch_configmaps, self.cluster_policies):
            threading.Thread(target=target, daemon=True, name=target.__name__).start()
        self.log("GPU SIMULATOR running against %s (lab %s)" % (settings.api_url(), self.args.lab_id))
        while not self.stop.is_set():
            try:
                name = self.queue.get(timeout=1)
            except queue.Empty:
                continue
            pending = {name}
            while True:  # coalesce bursts
                try:
                    pending.add(self.queue.get_nowait())
                except queue.Empty:
                    break
            for n in sorted(pending):
                try:
                    self.reconcile(n)
                except Exception as exc:
                    self.log("%s: reconcile error: %s" % (n, str(exc)[:300]))
                    self.stop.wait(0.5)
                    self.queue.put(n)


def main(argv=None):
    p = argparse.ArgumentParser(prog="gpu_simulator", description="gpufleet lab GPU SIMULATOR (lab clusters only)")
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--lab-id", required=True)
    p.add_argument("--namespace", default=os.environ.get("GPUFLEET_LAB_GPU_NAMESPACE", "gpu-operator"),
                   help="namespace of the GPU Operator ConfigMaps")
    p.add_argument("--mig-configmap", default=os.environ.get("GPUFLEET_LAB_MIG_CONFIGMAP", "gpufleet-mig-parted-config"),
                   help="mig-parted ConfigMap (key config.yaml), unless a ClusterPolicy names another")
    p.add_argument("--device-plugin-configmap",
                   default=os.environ.get("GPUFLEET_LAB_DP_CONFIGMAP", "gpufleet-device-plugin-config"),
                   help="device-plugin config ConfigMap, unless a ClusterPolicy names another")
    p.add_argument("--mig-delay", type=float, default=0.3, help="seconds a node stays pending")
    p.add_argument("--poll", type=float, default=2.0, help="ClusterPolicy poll interval")
    p.add_argument("--dcgm-port", type=int, default=settings.PORTS["dcgm"],
                   help="127.0.0.1 port of the DCGM-exporter-style /metrics (GPUFLEET_LAB_DCGM_PORT)")
    args = p.parse_args(argv)
    from kubernetes import client, config
    cfg = client.Configuration()
    config.load_kube_config(config_file=args.kubeconfig, client_configuration=cfg)
    cfg.client_go_retries = True  # GETs retry a 504/429 with Retry-After, as client-go does (cli.core_api)
    api = client.ApiClient(cfg)
    try:
        safety_check(api, args.kubeconfig, args.lab_id)
    except Refused as exc:
        sys.stderr.write("%s\n" % exc.code)
        return 2
    sim = Simulator(api, args)
    sim.save_stats()
    sim.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
