# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# Apache License 2.0 (see LICENSE)
"""Strict Semantic Versioning 2.0.0 (https://semver.org): parse and compare versions such as ``1.35.4``,
``v1.35.4``, ``v0.20.0-rc.1`` and ``1.2.3-beta.2+build.7``.

Pure Python, standard library only: module_utils may run on managed nodes, where ``packaging`` is not
guaranteed. Precedence follows semver section 11: major, minor, patch numerically; a version with a
pre-release is lower than the same version without one; pre-release identifiers compare one by one,
numeric ones numerically and below alphanumeric ones, which compare in ASCII order; a longer list wins when
the shorter one is its prefix. Build metadata is kept but never affects precedence (``1.0.0+a == 1.0.0+b``).
A leading ``v`` or ``V`` is accepted (Kubernetes, Helm chart and image tags use it) unless ``allow_v=False``.

Not semver, and refused: ``1.35`` (no patch), leading zeros (``1.02.3``, ``1.2.3-01``), empty identifiers.
NVIDIA driver versions (``535.154.05``) are not semver either: ``mig.parse_driver_version`` reads them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import functools
import re

_NUM = r"0|[1-9][0-9]*"
_PRE_ID = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_BUILD_ID = r"[0-9A-Za-z-]+"
SEMVER = re.compile(
    r"^(?P<major>%s)\.(?P<minor>%s)\.(?P<patch>%s)"
    r"(?:-(?P<pre>%s(?:\.%s)*))?"
    r"(?:\+(?P<build>%s(?:\.%s)*))?\Z" % (_NUM, _NUM, _NUM, _PRE_ID, _PRE_ID, _BUILD_ID, _BUILD_ID))


class SemverError(ValueError):
    """A string that is not a semantic version; the message names it and the expected form."""


@functools.total_ordering
class Version:
    """A parsed semantic version. Compare with ``<``, ``==`` (precedence, build ignored); ``str()`` is canonical
    (no ``v``)."""

    __slots__ = ("major", "minor", "patch", "prerelease", "build")

    def __init__(self, major, minor, patch, prerelease=(), build=()):
        self.major, self.minor, self.patch = int(major), int(minor), int(patch)
        self.prerelease = tuple(prerelease)
        self.build = tuple(build)

    @property
    def core(self):
        """(major, minor, patch)."""
        return (self.major, self.minor, self.patch)

    @property
    def minor_line(self):
        """(major, minor): the release line, e.g. Kubernetes 1.35.x."""
        return (self.major, self.minor)

    @property
    def is_prerelease(self):
        return bool(self.prerelease)

    def __eq__(self, other):
        if not isinstance(other, Version):
            return NotImplemented
        return _pre_key(self) == _pre_key(other)

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __lt__(self, other):
        if not isinstance(other, Version):
            return NotImplemented
        return _pre_key(self) < _pre_key(other)

    def __hash__(self):
        return hash(_pre_key(self))

    def __str__(self):
        text = "%d.%d.%d" % self.core
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + ".".join(self.build)
        return text

    def __repr__(self):
        return "Version(%r)" % str(self)


def _pre_key(version):
    """Sort key of semver precedence. A pre-release list compares element-wise, and a list that is a prefix of
    another sorts first; a release (no pre-release) sorts after every pre-release of the same core."""
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in version.prerelease)
    # (1,) for a release sorts after (0, ...) for any pre-release; tuples order a prefix first.
    return version.core + (((1,),) if not ids else ((0,) + ids,))


def parse(text, allow_v=True):
    """``text`` as a :class:`Version`; ``SemverError`` naming the value when it is not strict semver."""
    if isinstance(text, Version):
        return text
    if not isinstance(text, str) or isinstance(text, bool):
        raise SemverError("%r is not a version string such as 1.35.4 or v1.35.4" % (text,))
    raw = text.strip()
    body = raw[1:] if allow_v and raw[:1] in ("v", "V") else raw
    m = SEMVER.fullmatch(body)
    if not m:
        raise SemverError("%r is not a semantic version (MAJOR.MINOR.PATCH, optional -pre.release and +build%s, "
                          "no leading zeros), e.g. 1.35.4 or v0.20.0-rc.1" % (text, ", a leading v" if allow_v else ""))
    pre = tuple(m.group("pre").split(".")) if m.group("pre") else ()
    build = tuple(m.group("build").split(".")) if m.group("build") else ()
    return Version(m.group("major"), m.group("minor"), m.group("patch"), pre, build)


def is_valid(text, allow_v=True):
    try:
        parse(text, allow_v)
    except SemverError:
        return False
    return True


def compare(a, b):
    """-1, 0 or 1 as ``a`` has lower, equal or higher precedence than ``b`` (strings or Versions)."""
    a, b = parse(a), parse(b)
    return (a > b) - (a < b)


def sort(versions, reverse=False):
    """Version strings in precedence order (ties keep their input order)."""
    return sorted(versions, key=lambda v: _pre_key(parse(v)), reverse=reverse)
