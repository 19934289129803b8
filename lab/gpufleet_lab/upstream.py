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
    return sorted(glob.glob(os.path.join(root(), "*", "*", "crds")))


def values_file(component, chart):
    """The upstream values.yaml of a chart, or None."""
    hits = sorted(glob.glob(os.path.join(root(), component, "*", "values", chart + ".values.yaml")))
    return hits[-1] if hits else None


def default_mig_parted_config():
    hits = sorted(glob.glob(os.path.join(root(), "gpu-operator", "*", "default-mig-parted-config.yaml")))
    return hits[-1] if hits else None
