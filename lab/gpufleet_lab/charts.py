"""STAND-IN Helm charts for the lab (generated into the cache at lab-up, never committed).

No Helm repository or OCI registry is reachable here, so for each chart the roles install the
lab generates a local chart with the upstream chart's name and version that:

* carries the upstream CRDs in crds/ (from ../shared/upstream),
* uses the upstream chart's default values.yaml verbatim (so every real key is accepted; there is
  no values.schema.json),
* installs only inert placeholder controller Deployment(s) (image registry.invalid/stand-in:0)
  that KWOK marks Running on a simulated CPU node, plus a few objects the lab's simulator reads
  (the GPU Operator stand-in renders the ClusterPolicy and the chart-created ConfigMaps).

Chart.yaml says STAND-IN in its description and carries the annotation gpufleet.io/stand-in: "true".
The roles reach them like an air-gapped site reaches its mirror: <charts>/<name>-<version>.tgz, or
the directory <charts>/<name>/, listed in <charts>/charts.yml.
"""
import hashlib
import io
import os
import shutil
import tarfile

import yaml

from . import settings, upstream

# name -> spec. crds: upstream component whose crds/ go into the chart. values: (component, file stem).
STAND_INS = {
    "cert-manager": {"version": "v1.21.1", "app": "v1.21.1", "crds": "cert-manager", "values": None,
                     "deployments": ["{{ .Release.Name }}", "{{ .Release.Name }}-cainjector",
                                     "{{ .Release.Name }}-webhook"]},
    "gpu-operator": {"version": "v26.7.0", "app": "v26.7.0", "crds": "gpu-operator",
                     "values": ("gpu-operator", "gpu-operator"), "deployments": ["gpu-operator"],
                     "extra": "gpu_operator"},
    "nvidia-device-plugin": {"version": "0.20.0", "app": "0.20.0", "crds": None,
                             "values": ("k8s-device-plugin", "nvidia-device-plugin"),
                             "deployments": ["{{ .Release.Name }}"]},
    "dcgm-exporter": {"version": "4.8.2", "app": "4.5.3-4.8.2", "crds": None,
                      "values": ("dcgm-exporter", "dcgm-exporter"), "deployments": ["{{ .Release.Name }}"]},
    "kueue": {"version": "0.19.2", "app": "v0.19.2", "crds": "kueue", "values": ("kueue", "kueue"),
              "deployments": ["kueue-controller-manager"]},
    "volcano": {"version": "1.15.1", "app": "v1.15.1", "crds": "volcano", "values": ("volcano", "volcano"),
                "deployments": ["{{ .Release.Name }}-scheduler", "{{ .Release.Name }}-controllers",
                                "{{ .Release.Name }}-admission"]},
    "slurm-operator-crds": {"version": "1.2.1", "app": "1.2.1", "crds": "slurm-operator", "values": None,
                            "deployments": []},
    "slurm-operator": {"version": "1.2.1", "app": "1.2.1", "crds": None,
                       "values": ("slurm-operator", "slurm-operator"),
                       "deployments": ["{{ .Release.Name }}", "{{ .Release.Name }}-webhook"]},
    "slurm": {"version": "1.2.1", "app": "26.05", "crds": None, "values": ("slurm-operator", "slurm"),
              "deployments": ["{{ .Release.Name }}-stand-in"]},
    "kserve-crd": {"version": "v0.20.0", "app": "v0.20.0", "crds": "kserve", "values": None, "deployments": []},
    "kserve-resources": {"version": "v0.20.0", "app": "v0.20.0", "crds": None,
                         "values": ("kserve", "kserve-resources"), "deployments": ["kserve-controller-manager"]},
    "kserve-runtime-configs": {"version": "v0.20.0", "app": "v0.20.0", "crds": None,
                               "values": ("kserve", "kserve-runtime-configs"), "deployments": []},
    # Upstream kserve-llmisvc-crd carries only these CRDs (ClusterStorageContainer too, shared with kserve-crd).
    "kserve-llmisvc-crd": {"version": "v0.20.0", "app": "v0.20.0", "crds": "kserve", "values": None,
                           "deployments": [],
                           "crd_files": ["serving.kserve.io_clusterstoragecontainers.yaml",
                                         "serving.kserve.io_llminferenceserviceconfigs.yaml",
                                         "serving.kserve.io_llminferenceservices.yaml"]},
    "kserve-llmisvc-resources": {"version": "v0.20.0", "app": "v0.20.0", "crds": None,
                                 "values": ("kserve", "kserve-llmisvc-resources"),
                                 "deployments": ["llmisvc-controller-manager"]},
    "kube-prometheus-stack": {"version": "88.5.3", "app": "v0.93.1", "crds": "prometheus-operator",
                              "values": ("kube-prometheus-stack", "kube-prometheus-stack"),
                              "deployments": ["{{ .Release.Name }}-operator"], "strip_crd_descriptions": True},
}

IMAGE = "registry.invalid/stand-in:0"

DEPLOYMENT = """\
---
# STAND-IN placeholder for the upstream controller: an inert pod that KWOK reports Running.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: "%(name)s"
  namespace: {{ .Release.Namespace }}
  labels:
    app.kubernetes.io/name: "%(name)s"
    app.kubernetes.io/instance: {{ .Release.Name }}
    app.kubernetes.io/managed-by: {{ .Release.Service }}
    helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
    gpufleet.io/stand-in: "true"
spec:
  replicas: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: "%(name)s"
      app.kubernetes.io/instance: {{ .Release.Name }}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: "%(name)s"
        app.kubernetes.io/instance: {{ .Release.Name }}
        gpufleet.io/stand-in: "true"
    spec:
      automountServiceAccountToken: false
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
            - matchExpressions:
              - {key: lab.gpufleet.io/simulated, operator: In, values: ["true"]}
              - {key: nvidia.com/gpu.present, operator: DoesNotExist}
      tolerations:
      - {key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}
      containers:
      - name: stand-in
        image: %(image)s
        imagePullPolicy: IfNotPresent
        resources:
          requests: {cpu: 10m, memory: 16Mi}
"""

# The GPU Operator chart renders the ClusterPolicy (clusterPolicy.deployCR) and, when asked, the
# device-plugin and MIG ConfigMaps. The stand-in does the same, with the fields the lab reads.
GPU_OPERATOR_EXTRA = """\
{{- if .Values.devicePlugin.config.create }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Values.devicePlugin.config.name }}
  namespace: {{ .Release.Namespace }}
data:
{{ toYaml .Values.devicePlugin.config.data | indent 2 }}
{{- end }}
{{- if .Values.migManager.config.create }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Values.migManager.config.name }}
  namespace: {{ .Release.Namespace }}
data:
{{ toYaml .Values.migManager.config.data | indent 2 }}
{{- end }}
{{- if .Values.clusterPolicy.deployCR }}
---
apiVersion: nvidia.com/v1
kind: ClusterPolicy
metadata:
  name: cluster-policy
  labels:
    app.kubernetes.io/managed-by: {{ .Release.Service }}
    gpufleet.io/stand-in: "true"
spec:
  operator:
    defaultRuntime: {{ .Values.operator.defaultRuntime | default "containerd" }}
  daemonsets: {}
  driver:
    enabled: {{ .Values.driver.enabled }}
    {{- with .Values.driver.version }}
    version: {{ . | quote }}
    {{- end }}
  toolkit:
    enabled: {{ .Values.toolkit.enabled }}
  devicePlugin:
    enabled: {{ .Values.devicePlugin.enabled }}
    {{- if .Values.devicePlugin.config.name }}
    config:
      name: {{ .Values.devicePlugin.config.name }}
      default: {{ .Values.devicePlugin.config.default | quote }}
    {{- end }}
  dcgm:
    enabled: {{ .Values.dcgm.enabled }}
  dcgmExporter:
    enabled: {{ .Values.dcgmExporter.enabled }}
  gfd:
    enabled: {{ .Values.gfd.enabled }}
  nodeStatusExporter:
    enabled: {{ .Values.nodeStatusExporter.enabled }}
  mig:
    strategy: {{ .Values.mig.strategy }}
  migManager:
    enabled: {{ .Values.migManager.enabled }}
    config:
      {{- if .Values.migManager.config.name }}
      name: {{ .Values.migManager.config.name }}
      {{- end }}
      default: {{ .Values.migManager.config.default | quote }}
{{- end }}
"""

NOTES = "STAND-IN chart {{ .Chart.Name }} {{ .Chart.Version }} (gpufleet lab): inert, not the upstream chart.\n"


def _source_hash():
    h = hashlib.sha256()
    with open(__file__, "rb") as fh:
        h.update(fh.read())
    with open(upstream.LOCK, "rb") as fh:
        h.update(fh.read())
    return h.hexdigest()[:16]


class _CrdLoader(yaml.SafeLoader):
    """PyYAML reads the bare `=` enum item (AlertmanagerConfig) as the YAML 1.1 value tag; go-yaml as "="."""


_CrdLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if not (k == "description" and isinstance(v, str))}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _without_descriptions(data):
    """The CRDs without their documentation strings (schema, enums, required: unchanged).

    Helm stores every chart file in the release Secret; with the full prometheus-operator CRDs (4.5 MB)
    the stand-in's release exceeds the 1 MiB Secret limit (`data: Too long`). The lab's own CRD install
    (upstream.py) still applies the unmodified files.
    """
    docs = [_strip(d) for d in yaml.load_all(data, Loader=_CrdLoader) if d]
    return yaml.safe_dump_all(docs, sort_keys=False).encode()


def _chart_files(name, spec, up):
    files = {}
    files["Chart.yaml"] = yaml.safe_dump({
        "apiVersion": "v2",
        "name": name,
        "version": spec["version"],
        "appVersion": spec["app"],
        "type": "application",
        "description": ("STAND-IN for the upstream %s chart %s, generated by the gpufleet lab. Same name, version, "
                        "CRDs and values keys; installs only inert placeholder objects. Not the real chart."
                        % (name, spec["version"])),
        "annotations": {"gpufleet.io/stand-in": "true"},
    }, sort_keys=False)
    values = upstream.values_file(*spec["values"]) if spec["values"] else None
    if values:
        with open(values, "rb") as fh:
            files["values.yaml"] = fh.read()
    else:
        files["values.yaml"] = "# STAND-IN: the upstream chart's values file is not vendored; any keys are accepted.\n{}\n"
    if spec["crds"]:
        for crd_dir in sorted(os.path.join(up, spec["crds"], v, "crds") for v in os.listdir(os.path.join(up, spec["crds"]))):
            for entry in sorted(os.listdir(crd_dir)):
                if spec.get("crd_files") and entry not in spec["crd_files"]:
                    continue
                with open(os.path.join(crd_dir, entry), "rb") as fh:
                    files["crds/" + entry] = fh.read()
                if spec.get("strip_crd_descriptions"):
                    files["crds/" + entry] = _without_descriptions(files["crds/" + entry])
    body = "".join(DEPLOYMENT % {"name": d, "image": IMAGE} for d in spec["deployments"])
    if spec.get("extra") == "gpu_operator":
        body += GPU_OPERATOR_EXTRA
    files["templates/stand-in.yaml"] = body or "# STAND-IN: the upstream chart only carries CRDs.\n"
    files["templates/NOTES.txt"] = NOTES
    return files


def _tgz(name, files, path):
    tmp = path + ".part"
    with tarfile.open(tmp, "w:gz") as tar:
        for rel, data in sorted(files.items()):
            if isinstance(data, str):
                data = data.encode()
            info = tarfile.TarInfo("%s/%s" % (name, rel))
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, path)


def generate(dest=None, force=False):
    """Write every stand-in chart (directory and .tgz) and charts.yml; returns the index."""
    dest = dest or settings.CHARTS
    index_path = os.path.join(dest, "charts.yml")
    stamp = os.path.join(dest, ".stamp")
    digest = _source_hash()
    if not force and os.path.exists(index_path) and os.path.exists(stamp):
        with open(stamp) as fh:
            if fh.read().strip() == digest:
                with open(index_path) as fh:
                    return yaml.safe_load(fh)
    up = upstream.root()
    os.makedirs(dest, exist_ok=True)
    index = {"stand_in": True, "charts": {}}
    for name, spec in STAND_INS.items():
        files = _chart_files(name, spec, up)
        cdir = os.path.join(dest, name)
        shutil.rmtree(cdir, ignore_errors=True)
        for rel, data in files.items():
            path = os.path.join(cdir, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(data.encode() if isinstance(data, str) else data)
        tgz = os.path.join(dest, "%s-%s.tgz" % (name, spec["version"]))
        _tgz(name, files, tgz)
        index["charts"][name] = {"version": spec["version"], "path": cdir, "package": tgz,
                                 "crds": sum(1 for f in files if f.startswith("crds/"))}
    with open(index_path, "w") as fh:
        fh.write("# Generated by the gpufleet lab: STAND-IN charts (inert), name -> local chart.\n")
        yaml.safe_dump(index, fh, sort_keys=False)
    with open(stamp, "w") as fh:
        fh.write(digest)
    return index
