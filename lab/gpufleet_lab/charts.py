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

REAL charts: for a chart named in REAL_CHARTS the lab packages the real upstream chart folder
$GPUFLEET_SHARED/upstream/charts/<name>-<version> instead (see real_chart_files/package_real). The
index entry says which (stand_in: true|false, source: the shared folder or null). Once every chart is
real the stand-in generator goes.
"""
import gzip
import hashlib
import io
import os
import re
import shutil
import tarfile

import yaml

from . import procs, settings, upstream

# Charts whose REAL upstream chart the lab installs (from $GPUFLEET_SHARED/upstream/charts/<name>-<version>),
# with their controllers played by pod_host; every other chart of STAND_INS stays a stand-in.
# kube-prometheus-stack is not among them: ../shared lacks its four subcharts (docs/lab.md).
ALWAYS_REAL = {"gpu-operator", "nvidia-device-plugin", "dcgm-exporter", "kueue", "volcano", "local-path-provisioner",
               "csi-driver-nfs", "kubeflow-trainer"}
# cert-manager builds only from source extracts (lab/build.sh); these charts need it (the KServe and Slinky
# webhooks' serving certificates are cert-manager Certificates), so they are real exactly when it is built.
NEEDS_CERT_MANAGER = {"cert-manager", "kserve-crd", "kserve-resources", "kserve-runtime-configs",
                      "kserve-llmisvc-crd", "kserve-llmisvc-resources", "slurm-operator-crds", "slurm-operator",
                      "slurm"}


def _cert_manager_built():
    from . import controllers
    return all(os.access(controllers.binary(b), os.X_OK) for b in controllers.CHART_BINARIES["cert-manager"])


REAL_CHARTS = ALWAYS_REAL | (NEEDS_CERT_MANAGER if _cert_manager_built() else set())

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
    # storage.backend local-path (its controller is played by pod_host) and nfs (its CSI pods stay KWOK's: nothing mounts)
    "local-path-provisioner": {"version": "0.0.37", "app": "v0.0.37", "crds": None, "values": None,
                               "deployments": ["{{ .Release.Name }}"]},
    "csi-driver-nfs": {"version": "4.13.4", "app": "4.13.4", "crds": None, "values": None, "deployments": []},
    # services.training: the trainer and its JobSet subchart, both controllers played by pod_host (their CRDs are the
    # chart's: the trainer's are templates, JobSet's in charts/jobset/crds)
    "kubeflow-trainer": {"version": "2.3.0", "app": "v2.3.0", "crds": None, "values": None,
                         "deployments": ["kubeflow-trainer-controller-manager", "jobset-controller"]},
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


def _source_hash(real):
    h = hashlib.sha256()
    with open(__file__, "rb") as fh:
        h.update(fh.read())
    with open(upstream.LOCK, "rb") as fh:
        h.update(fh.read())
    h.update(repr(sorted(real)).encode())
    for name in sorted(real):
        h.update(_folder_fingerprint(real_chart_dir(name)).encode())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# real charts: $GPUFLEET_SHARED/upstream/charts/<name>-<version>, packaged like `helm package`
# ---------------------------------------------------------------------------------------------

def real_charts_root():
    return os.path.join(settings.SHARED, "upstream", "charts")


def real_chart_dir(name):
    """The real upstream chart folder of a chart of STAND_INS (same version as its stand-in)."""
    return os.path.join(real_charts_root(), "%s-%s" % (name, STAND_INS[name]["version"]))


def _check_real(real):
    unknown = sorted(set(real) - set(STAND_INS))
    if unknown:
        raise procs.LabError("REAL_CHARTS names charts the lab does not mirror: %s (known: %s)"
                             % (", ".join(unknown), ", ".join(STAND_INS)))
    for name in sorted(real):
        folder = real_chart_dir(name)
        if not os.path.isfile(os.path.join(folder, "Chart.yaml")):
            raise procs.LabError(
                "the lab installs the real %s chart, but its folder %s is missing: it comes from "
                "../shared/upstream/charts (set GPUFLEET_SHARED to the shared directory; see "
                "../shared/upstream/charts/README.md)" % (name, folder))


def _folder_fingerprint(folder):
    """Cheap change detector: every file's relative path, size and mtime (symlinks followed)."""
    if not os.path.isdir(folder):
        return "missing:" + folder
    out = [folder]
    for top, dirs, files in os.walk(folder, followlinks=True):
        dirs.sort()
        for f in sorted(files):
            path = os.path.join(top, f)
            try:
                st = os.stat(path)
            except OSError:
                out.append("%s broken" % os.path.relpath(path, folder))
                continue
            out.append("%s %d %d" % (os.path.relpath(path, folder), st.st_size, st.st_mtime_ns))
    return "\n".join(out)


def _go_match_regex(pattern):
    """Go's filepath.Match as a regex: * and ? never match '/', [..] classes ([^..] negated), \\ escapes."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            j = pattern.find("]", i + 2)
            if j < 0:
                raise procs.LabError("bad .helmignore pattern %r" % pattern)
            body = pattern[i + 1:j]
            neg = body.startswith("^")
            body = body[1:] if neg else body
            out.append("[%s%s]" % ("^" if neg else "", body.replace("\\", "\\\\").replace("[", "\\[")))
            i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


class HelmIgnore:
    """Helm's .helmignore rules (pkg/ignore): first matching rule wins; `!` negates; a trailing / matches
    directories only; a leading / or any / matches the whole relative path, otherwise the base name.
    Helm adds the default rule templates/.?* after the file's rules; ** is not supported (as in Helm)."""

    def __init__(self, text=""):
        self.rules = []
        for line in text.splitlines() + ["templates/.?*"]:
            rule = line.strip()
            if not rule or rule.startswith("#"):
                continue
            if "**" in rule:
                raise procs.LabError(".helmignore: double-star (**) syntax is not supported: %r" % rule)
            negate = rule.startswith("!")
            rule = rule[1:] if negate else rule
            must_dir = rule.endswith("/")
            rule = rule.rstrip("/") if must_dir else rule
            whole = "/" in rule
            self.rules.append((negate, must_dir, whole, _go_match_regex(rule.lstrip("/"))))

    def ignored(self, rel, is_dir):
        for negate, must_dir, whole, rx in self.rules:
            if must_dir and not is_dir:
                continue
            if rx.match(rel if whole else rel.rsplit("/", 1)[-1]):
                return not negate
        return False


def real_chart_files(folder):
    """{relative path: bytes} of a chart folder as `helm package` reads it: the top-level .helmignore
    applies to the whole tree (subcharts included, as in Helm), symlinks are followed (a linked
    directory's files appear under the link's path), no directory entries."""
    if not os.path.isfile(os.path.join(folder, "Chart.yaml")):
        raise procs.LabError("%s is not a chart folder (no Chart.yaml)" % folder)
    ignore_file = os.path.join(folder, ".helmignore")
    text = ""
    if os.path.exists(ignore_file):
        with open(ignore_file) as fh:
            text = fh.read()
    rules = HelmIgnore(text)
    files = {}

    def walk(directory, prefix, seen):
        for entry in sorted(os.listdir(directory)):
            path, rel = os.path.join(directory, entry), prefix + entry
            if os.path.isdir(path):
                if rules.ignored(rel, True):
                    continue
                real = os.path.realpath(path)
                if real in seen:
                    raise procs.LabError("symlink loop at %s" % path)
                walk(path, rel + "/", seen | {real})
            elif os.path.isfile(path):
                if not rules.ignored(rel, False):
                    with open(path, "rb") as fh:
                        files[rel] = fh.read()
            else:
                raise procs.LabError("%s is not a regular file or directory (a broken symlink?); Helm refuses it" % path)

    walk(folder, "", {os.path.realpath(folder)})
    return files


_SUBCHART_TGZ = re.compile(r"^(?:charts/[^/]+/)*charts/[^/]+\.tgz$")
_CRDS_DIR = re.compile(r"^(?:charts/[^/]+/)*crds/")


def _expanded(files):
    """The chart's files with packaged subcharts (charts/*.tgz) unpacked under charts/<name>/."""
    out = {}
    for rel, data in files.items():
        if not _SUBCHART_TGZ.match(rel):
            out[rel] = data
            continue
        sub = {}
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            for m in tar.getmembers():
                if m.isfile():
                    sub[rel.rsplit("/", 1)[0] + "/" + m.name] = tar.extractfile(m).read()
        out.update(_expanded(sub))
    return out


def chart_crds(files):
    """CRD names a chart ships: {"crds_dir": names in a crds/ directory (chart or subchart; Helm creates those
    only when absent), "templates": names in any other file (templates/, or files a template reads, like
    volcano's crd/bases or kserve's files/; Helm owns those and refuses to adopt existing ones)}.
    Static, conservative: a template CRD counts even when a value gates it off."""
    out = {"crds_dir": set(), "templates": set()}
    for rel, data in sorted(_expanded(files).items()):
        if b"CustomResourceDefinition" not in data:
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        out["crds_dir" if _CRDS_DIR.match(rel) else "templates"].update(upstream.crd_names(text))
    return out


_CRDS_CACHE = {}


def real_chart_crds(name):
    """chart_crds() of a real chart folder (kept per folder fingerprint: lab-up asks twice)."""
    folder = real_chart_dir(name)
    key = _folder_fingerprint(folder)
    if key not in _CRDS_CACHE:
        _CRDS_CACHE[key] = chart_crds(real_chart_files(folder))
    return {k: set(v) for k, v in _CRDS_CACHE[key].items()}


def template_crd_names(real=None):
    """CRDs that a chart of `real` (default REAL_CHARTS) ships as templates: the lab must not pre-install them."""
    real = REAL_CHARTS if real is None else set(real)
    _check_real(real)
    names = set()
    for name in sorted(real):
        names |= real_chart_crds(name)["templates"]
    return names


def preinstalled_crds(real=None):
    """The upstream CRD files (upstream.crd_files) the lab pre-installs when the charts of `real` (default
    REAL_CHARTS) are real: all, less any file holding a CRD that a real chart ships as a template."""
    skip = template_crd_names(real)
    return [path for path, names in upstream.crd_files() if not set(names) & skip]


def _pinned_versions():
    """name -> version of plugins/module_utils/versions.py CHARTS (the roles' matrix)."""
    import importlib.util
    path = os.path.join(settings.REPO_ROOT, "plugins", "module_utils", "versions.py")
    spec = importlib.util.spec_from_file_location("_gpufleet_versions", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return {c["name"]: c["version"] for charts in mod.all_charts().values() for c in charts}


class _CrdLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml when there: 10x faster, same data
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


# A stand-in CRD that a REAL chart ships as a template is a template in the stand-in too (so Helm owns it and the
# real chart's release meets it as another release's, as with the real pair), guarded like upstream kserve's
# ClusterStorageContainer: rendered unless it exists and is not this release's.
TEMPLATE_CRD = """\
{{- $existing := lookup "apiextensions.k8s.io/v1" "CustomResourceDefinition" "" "%(crd)s" -}}
{{- if or (not $existing) (eq (get (default dict $existing.metadata.annotations) "meta.helm.sh/release-name") .Release.Name) }}
{{ .Files.Get "files/crd-templates/%(file)s" }}
{{- end }}
"""


def _chart_files(name, spec, up, template_crds=frozenset()):
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
                    data = fh.read()
                names = upstream.crd_names(data.decode("utf-8"))
                if set(names) & template_crds:
                    files["files/crd-templates/" + entry] = data
                    files["templates/crd-" + entry] = "".join(TEMPLATE_CRD % {"crd": n, "file": entry} for n in names[:1])
                    continue
                if spec.get("strip_crd_descriptions"):
                    data = _without_descriptions(data)
                files["crds/" + entry] = data
    body = "".join(DEPLOYMENT % {"name": d, "image": IMAGE} for d in spec["deployments"])
    if spec.get("extra") == "gpu_operator":
        body += GPU_OPERATOR_EXTRA
    files["templates/stand-in.yaml"] = body or "# STAND-IN: the upstream chart only carries CRDs.\n"
    files["templates/NOTES.txt"] = NOTES
    return files


def _tgz(name, files, path):
    """<name>/<file> members like `helm package` (Chart.yaml first, mode 0644, no directory entries), but
    reproducible: mtime 0, no owner, a gzip header without name or time, so equal files give equal bytes."""
    tmp = path + ".part"
    order = sorted(files, key=lambda rel: (rel != "Chart.yaml", rel))
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in order:
            data = files[rel]
            if isinstance(data, str):
                data = data.encode()
            info = tarfile.TarInfo("%s/%s" % (name, rel))
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, path)


def _subchart_names(files):
    """Chart names of the direct subcharts in charts/ (folders and .tgz packages)."""
    names = set()
    for rel, data in files.items():
        if re.match(r"^charts/[^/]+/Chart\.yaml$", rel):
            names.add(yaml.safe_load(data).get("name"))
        elif re.match(r"^charts/[^/]+\.tgz$", rel):
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
                for m in tar.getmembers():
                    if m.isfile() and m.name.count("/") == 1 and m.name.endswith("/Chart.yaml"):
                        names.add(yaml.safe_load(tar.extractfile(m).read()).get("name"))
    return names


def package_real(name, dest):
    """Package the real chart folder of `name` into <dest>/<name>-<version>.tgz; returns (path, files)."""
    _check_real({name})
    folder = real_chart_dir(name)
    files = real_chart_files(folder)
    meta = yaml.safe_load(files["Chart.yaml"])
    version = STAND_INS[name]["version"]
    if meta.get("name") != name or str(meta.get("version")) != version:
        raise procs.LabError("%s/Chart.yaml says %s %s, the lab mirrors %s %s"
                             % (folder, meta.get("name"), meta.get("version"), name, version))
    missing = sorted({d["name"] for d in meta.get("dependencies") or ()} - _subchart_names(files))
    if missing:  # Helm needs every dependency under charts/, whatever its condition
        raise procs.LabError("the real %s chart in %s lacks the subcharts %s under charts/ (Chart.yaml dependencies; "
                             "helm install fails without them); they belong in ../shared/upstream/charts"
                             % (name, folder, ", ".join(missing)))
    os.makedirs(dest, exist_ok=True)
    tgz = os.path.join(dest, "%s-%s.tgz" % (name, version))
    _tgz(name, files, tgz)
    return tgz, files


def _write_dir(cdir, files):
    shutil.rmtree(cdir, ignore_errors=True)
    for rel, data in files.items():
        path = os.path.join(cdir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)


def _read_index(path):
    try:
        with open(path) as fh:
            return (yaml.safe_load(fh) or {}).get("charts") or {}
    except (OSError, yaml.YAMLError, AttributeError):
        return {}


def generate(dest=None, force=False, real=None):
    """Write every chart of the mirror (directory and .tgz) and charts.yml; returns the index.

    A chart in `real` (default REAL_CHARTS) is its real upstream chart folder, packaged; the others are stand-ins.
    Raises procs.LabError when a real chart's folder is missing.
    """
    real = REAL_CHARTS if real is None else set(real)
    _check_real(real)
    pinned = _pinned_versions()
    drift = {n: (v, STAND_INS[n]["version"]) for n, v in pinned.items() if n in STAND_INS and STAND_INS[n]["version"] != v}
    if drift:
        raise procs.LabError("charts.py STAND_INS versions differ from plugins/module_utils/versions.py CHARTS: %s"
                             % ", ".join("%s %s (STAND_INS %s)" % (n, v[0], v[1]) for n, v in sorted(drift.items())))
    dest = dest or settings.CHARTS
    index_path = os.path.join(dest, "charts.yml")
    stamp = os.path.join(dest, ".stamp")
    digest = _source_hash(real)
    if not force and os.path.exists(index_path) and os.path.exists(stamp):
        with open(stamp) as fh:
            if fh.read().strip() == digest:
                with open(index_path) as fh:
                    return yaml.safe_load(fh)
    up = upstream.root()
    os.makedirs(dest, exist_ok=True)
    try:
        os.unlink(stamp)
    except FileNotFoundError:
        pass
    template_crds = frozenset(template_crd_names(real))
    index = {"stand_in": bool(set(STAND_INS) - real), "charts": {}}
    for name, spec in STAND_INS.items():
        cdir = os.path.join(dest, name)
        if name in real:
            tgz, files = package_real(name, dest)
            crds = chart_crds(files)
            entry = {"crds": len(crds["crds_dir"] | crds["templates"]), "stand_in": False, "source": real_chart_dir(name)}
        else:
            files = _chart_files(name, spec, up, template_crds)
            tgz = os.path.join(dest, "%s-%s.tgz" % (name, spec["version"]))
            _tgz(name, files, tgz)
            entry = {"crds": sum(1 for f in files if f.startswith(("crds/", "files/crd-templates/"))),
                     "stand_in": True, "source": None}
        _write_dir(cdir, files)
        index["charts"][name] = dict({"version": spec["version"], "path": cdir, "package": tgz}, **entry)
    # The mirror is shared by every checkout on the machine (and their labs): a chart another checkout packaged
    # and this one does not know (an older tree without it) stays listed while its package is there.
    for name, entry in sorted(_read_index(index_path).items()):
        if name not in index["charts"] and isinstance(entry, dict) and os.path.exists(str(entry.get("package"))):
            index["charts"][name] = entry
    with open(index_path + ".tmp", "w") as fh:
        fh.write("# Generated by the gpufleet lab: name -> local chart (stand_in: true = inert STAND-IN, "
                 "false = the real upstream chart from source).\n")
        yaml.safe_dump(index, fh, sort_keys=False)
    os.replace(index_path + ".tmp", index_path)
    with open(stamp, "w") as fh:
        fh.write(digest)
    return index
