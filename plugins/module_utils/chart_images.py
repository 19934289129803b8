# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# Apache License 2.0 (see LICENSE)
"""Container images in rendered Kubernetes manifests (``helm template`` output): pure functions.

Used by ``make versions-check`` (tools/versions_check.py). An image is any string value of an
``image`` key in any document, at any depth, including inside string values that hold JSON (charts
such as kserve-resources put their images in ConfigMap data as JSON). CustomResourceDefinitions are
skipped: their ``image`` keys are schema, not images.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json


def _walk(node, found):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "image" and isinstance(value, str) and value.strip():
                found.add(_compose(node, value.strip()))
            else:
                _walk(value, found)
    elif isinstance(node, list):
        for item in node:
            _walk(item, found)
    elif isinstance(node, str) and node.lstrip()[:1] in ("{", "["):
        try:
            _walk(json.loads(node), found)
        except ValueError:
            pass


def _compose(node, image):
    """The GPU Operator's ClusterPolicy splits an image: repository, image, version side by side."""
    repository, version = node.get("repository"), node.get("version")
    if "/" not in image and isinstance(repository, str) and repository:
        image = "%s/%s" % (repository.rstrip("/"), image)
        if isinstance(version, str) and version and ":" not in image and "@" not in image:
            image = "%s%s%s" % (image, "@" if version.startswith("sha256:") else ":", version)
    return image


def images_in_documents(documents):
    """Sorted unique images in parsed manifests (a list of dicts; None entries are ignored)."""
    found = set()
    for doc in documents:
        if isinstance(doc, dict) and doc.get("kind") != "CustomResourceDefinition":
            _walk(doc, found)
    return sorted(found)


def split_image(image):
    """``registry/repo:tag@digest`` -> {repository, tag, digest} (tag/digest None when absent)."""
    digest = None
    if "@" in image:
        image, digest = image.split("@", 1)
    tag = None
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        image, tag = image.rsplit(":", 1)
    return {"repository": image, "tag": tag, "digest": digest}
