# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
# Apache License 2.0 (see LICENSE), or at your option GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt), like every module file (see README, Licensing).
"""The deployed state of a Helm release, read from the Secret Helm 3 keeps it in, and the converge decision.

Helm 3 stores each revision of a release in a Secret of type ``helm.sh/release.v1`` named
``sh.helm.release.v1.<release>.v<revision>`` in the release namespace, labelled ``owner=helm``,
``name=<release>``, ``status=<status>`` and ``version=<revision>``. Its ``data.release`` is, after the API's
own base64, the base64 text of the gzip of the release JSON: ``name``, ``namespace``, ``version`` (the
revision), ``info.status``, ``chart.metadata`` (``name``, ``version``, ``appVersion``) and ``config`` (the
values the user supplied; what ``helm get values`` prints).

So one list call (one label selector) tells whether a release is up to date: the deployed revision's chart is
the wanted name and version and its user values equal the wanted values. This is the same comparison
``kubernetes.core.helm`` makes without the helm-diff plugin (chart name-version and ``helm get values``), made
with one API read instead of several helm runs.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import gzip
import json
import zlib

SECRET_TYPE = "helm.sh/release.v1"
GZIP_MAGIC = b"\x1f\x8b\x08"


class ReleaseDecodeError(ValueError):
    """A Helm release Secret that cannot be read (not a Helm 3 release record)."""


def selector(release_name):
    """The label selectors (kubernetes.core.k8s_info form) of the deployed revisions of a release."""
    return ["owner=helm", "name=%s" % release_name, "status=deployed"]


def decode_release(data_release):
    """The release JSON of a Helm 3 release Secret, from its ``data.release`` as the API returns it."""
    if not isinstance(data_release, str) or not data_release:
        raise ReleaseDecodeError("the Secret has no data.release")
    try:
        raw = base64.b64decode(base64.b64decode(data_release, validate=True), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ReleaseDecodeError("data.release is not base64 (%s)" % exc)
    if raw[:3] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ReleaseDecodeError("data.release is not valid gzip (%s)" % exc)
    try:
        release = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ReleaseDecodeError("data.release is not release JSON (%s)" % exc)
    if not isinstance(release, dict):
        raise ReleaseDecodeError("data.release is not a JSON object")
    return release


def _revision(secret):
    labels = (secret.get("metadata") or {}).get("labels") or {}
    try:
        return int(labels.get("version", "0"))
    except ValueError:
        return 0


def deployed(secrets, release_name):
    """A summary of the deployed revision of ``release_name`` among the Secrets, or None when none is.

    ``secrets`` are the resources of a k8s_info list call with :func:`selector`. Secrets of another type or
    release are ignored; of several deployed revisions (an interrupted upgrade can leave two) the highest wins.
    """
    candidates = [s for s in secrets or [] if isinstance(s, dict) and s.get("type") == SECRET_TYPE
                  and ((s.get("metadata") or {}).get("labels") or {}).get("name") == release_name]
    if not candidates:
        return None
    secret = max(candidates, key=_revision)
    release = decode_release((secret.get("data") or {}).get("release"))
    metadata = (release.get("chart") or {}).get("metadata") or {}
    info = release.get("info") or {}
    return {
        "name": release.get("name", release_name),
        "namespace": release.get("namespace", (secret.get("metadata") or {}).get("namespace")),
        "revision": release.get("version", _revision(secret)),
        "status": info.get("status", ""),
        "chart": "%s-%s" % (metadata.get("name", ""), metadata.get("version", "")),
        "app_version": metadata.get("appVersion", ""),
        "values": release.get("config") or {},
    }


def normalize(values):
    """Values as Helm keeps them: a JSON round trip (YAML-only types become their JSON form; None stays null)."""
    return json.loads(json.dumps(values if values is not None else {}, sort_keys=True, default=str))


def chart_id(name, version):
    """The chart field of ``helm list`` for a chart name and version (``cert-manager-v1.21.1``)."""
    return "%s-%s" % (name, version)


def decide(release, chart_name, chart_version, values):
    """What a converge of the release needs: ``{"up_to_date": bool, "chart_changed": bool, "reasons": [..]}``.

    ``release`` is :func:`deployed`'s summary (None when not installed). Up to date means deployed, same chart
    name and version, same user values: the upgrade would change nothing, so it is not run. ``chart_changed``
    (install, or another chart version) is when the chart's CRDs need applying.
    """
    if release is None:
        return {"up_to_date": False, "chart_changed": True, "reasons": ["not installed"]}
    reasons = []
    chart_changed = release["chart"] != chart_id(chart_name, chart_version)
    if chart_changed:
        reasons.append("chart %s deployed, %s wanted" % (release["chart"], chart_id(chart_name, chart_version)))
    if release["status"] != "deployed":
        reasons.append("status %s" % release["status"])
    if normalize(release["values"]) != normalize(values):
        reasons.append("values differ")
    return {"up_to_date": not reasons, "chart_changed": chart_changed, "reasons": reasons}
