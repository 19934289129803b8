"""Pinned upstream files (CRDs, chart values): from ../shared/upstream, or fetched and verified.

lab/upstream.lock lists every file with its source repository, commit, path and git blob hash.
When ../shared/upstream is present its files are used (and their hashes checked). Otherwise each
file is fetched from raw.githubusercontent.com at the pinned commit into the lab cache and
checked against the blob hash before use. (That fetch path cannot be exercised in the offline
development environment; it is implemented but untested there.)
"""
import glob
import hashlib
import os
import re
import urllib.request

from . import settings

LOCK = os.path.join(settings.LAB_DIR, "upstream.lock")
RAW = "https://raw.githubusercontent.com/%s/%s/%s"


class UpstreamError(RuntimeError):
    pass


def entries():
    out = []
    with open(LOCK) as fh:
        for line in fh:
            if line.startswith("#") or not line.strip():
                continue
            dest, repo, commit, source, blob, size = line.rstrip("\n").split("\t")
            out.append({"dest": dest, "repo": repo, "commit": commit, "source": source, "blob": blob,
                        "bytes": int(size)})
    return out


def blob_hash(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _fetch(entry, path):
    url = RAW % (entry["repo"], entry["commit"], entry["source"])
    with urllib.request.urlopen(url, timeout=60) as resp:
        data = resp.read()
    if blob_hash(data) != entry["blob"]:
        raise UpstreamError("checksum mismatch for %s (from %s): got blob %s, pinned %s"
                            % (entry["dest"], url, blob_hash(data), entry["blob"]))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".part"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def root(verify=False):
    """Directory holding the upstream tree (shared copy or verified cache)."""
    if os.path.isdir(settings.UPSTREAM):
        if verify:
            for e in entries():
                with open(os.path.join(settings.UPSTREAM, e["dest"]), "rb") as fh:
                    if blob_hash(fh.read()) != e["blob"]:
                        raise UpstreamError("%s does not match its pinned blob %s" % (e["dest"], e["blob"]))
        return settings.UPSTREAM
    for e in entries():
        path = os.path.join(settings.UPSTREAM_CACHE, e["dest"])
        if os.path.exists(path):
            with open(path, "rb") as fh:
                if blob_hash(fh.read()) == e["blob"]:
                    continue
        _fetch(e, path)
    return settings.UPSTREAM_CACHE


def crd_dirs():
    """<root>/<component>/<version>/crds of the pinned components (not the real chart folders in charts/)."""
    return sorted(d for d in glob.glob(os.path.join(root(), "*", "*", "crds"))
                  if os.path.relpath(d, root()).split(os.sep)[0] not in ("charts", "src"))


_DOC = re.compile(r"^---[^\n]*$", re.M)
_CRD_KIND = re.compile(r"^kind:\s*[\"']?CustomResourceDefinition[\"']?\s*$", re.M)
_GROUP = re.compile(r"^[ ]+group:\s*[\"']?([A-Za-z0-9.-]+)[\"']?\s*$", re.M)
_PLURAL = re.compile(r"^[ ]+plural:\s*[\"']?([a-z0-9-]+)[\"']?\s*$", re.M)
_META_NAME = re.compile(r"^metadata:\n(?:[ ].*\n|\{\{.*\n)*?  name:\s*[\"']?([a-z0-9.-]+)[\"']?\s*$", re.M)


def crd_names(text):
    """Names (<plural>.<group>) of the CustomResourceDefinitions in a YAML text, or a chart template of one
    (read without rendering: spec.group and spec.names.plural are literal in every pinned chart)."""
    names = []
    for doc in _DOC.split(text):
        if not _CRD_KIND.search(doc):
            continue
        group, plural = _GROUP.search(doc), _PLURAL.search(doc)
        if group and plural:
            names.append("%s.%s" % (plural.group(1), group.group(1)))
            continue
        meta = _META_NAME.search(doc)
        if meta:
            names.append(meta.group(1))
    return names


_NAMES_CACHE = {}


def crd_files():
    """[(path, [CRD names])] of every upstream CRD file the lab may pre-install, in crd_dirs() order."""
    out = []
    for d in crd_dirs():
        for path in sorted(glob.glob(os.path.join(d, "*.yaml"))):
            st = os.stat(path)
            key = (path, st.st_size, st.st_mtime_ns)
            if key not in _NAMES_CACHE:
                with open(path, encoding="utf-8") as fh:
                    _NAMES_CACHE[key] = crd_names(fh.read())
            out.append((path, list(_NAMES_CACHE[key])))
    return out


def values_file(component, chart):
    """The upstream values.yaml of a chart, or None."""
    hits = sorted(glob.glob(os.path.join(root(), component, "*", "values", chart + ".values.yaml")))
    return hits[-1] if hits else None


def default_mig_parted_config():
    hits = sorted(glob.glob(os.path.join(root(), "gpu-operator", "*", "default-mig-parted-config.yaml")))
    return hits[-1] if hits else None
