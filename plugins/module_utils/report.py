# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
# Apache License 2.0 (see LICENSE), or at your option GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt), like every module file (see README, Licensing).
"""The report of the doctor (playbooks/preflight.yml) and of the post-deploy verification (playbooks/verify.yml).

Pure functions over plain data, no Ansible imports. The filters in ``plugins/filter/report.py`` and the
``gpufleet.platform.report`` role use them. The JSON schema (``gpufleet.platform/report/v1``) is documented in
``docs/operations/reports.md``; a change to its keys or meanings needs a new schema id.

* :func:`check` makes one check result: host, check name, status (ok, warn, fail, skip), message, details.
* :func:`build` makes the report of a list of checks: sorted, counted, ``ok`` when no check failed.
* :func:`table` renders a report as a fixed-width text table with a summary line.
* :func:`collect` gathers the checks every host kept in a fact; a host without the fact did not finish.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

SCHEMA = "gpufleet.platform/report/v1"
STATUSES = ("ok", "warn", "fail", "skip")
KINDS = ("preflight", "verify")
CHECK_KEYS = ("host", "check", "status", "message", "details")
DEFAULT_FACT = "gpufleet_report_checks"
COMPLETED_CHECK = "completed"
COMPLETED_MESSAGE = "did not complete the checks (unreachable or a task failed; see the output above)"
COLUMNS = ("HOST", "CHECK", "STATUS", "MESSAGE")


class ReportError(ValueError):
    """A check or a report that does not follow the schema."""


def _text(value, what, allow_empty=False):
    if not isinstance(value, str):
        raise ReportError("%s must be a string, got %r (%s)." % (what, value, type(value).__name__))
    if not allow_empty and not value.strip():
        raise ReportError("%s must not be empty." % what)
    return value


def _one_line(text):
    return re.sub(r"\s+", " ", str(text)).strip()


def check(host, name, status, message, details=None):
    """One check result, validated: ``{"host", "check", "status", "message", "details"}``; the message on one line."""
    host = _text(host, "check host")
    name = _text(name, "check name (host %s)" % host)
    if status not in STATUSES:
        raise ReportError("check %s on %s: unknown status %r; allowed: %s." % (name, host, status, ", ".join(STATUSES)))
    # one line: messages written as folded YAML keep the line breaks of their Jinja expressions
    message = _one_line(_text(message, "message of check %s on %s" % (name, host), allow_empty=True))
    if details is None:
        details = {}
    if not isinstance(details, dict):
        raise ReportError("details of check %s on %s must be a mapping or null, got %r." % (name, host, details))
    return {"host": host, "check": name, "status": status, "message": message, "details": dict(details)}


def _validated(item, index):
    if not isinstance(item, dict):
        raise ReportError("checks[%d] must be a mapping with %s, got %r." % (index, ", ".join(CHECK_KEYS), item))
    unknown = sorted(set(item) - set(CHECK_KEYS))
    if unknown:
        raise ReportError("checks[%d] has unknown keys %s; allowed: %s." % (index, ", ".join(unknown), ", ".join(CHECK_KEYS)))
    missing = [key for key in ("host", "check", "status") if key not in item]
    if missing:
        raise ReportError("checks[%d] lacks %s: %r." % (index, ", ".join(missing), item))
    return check(item["host"], item["check"], item["status"], item.get("message", ""), item.get("details"))


def build(kind, checks, meta=None):
    """The report of ``checks`` (a list of check dicts) for a ``kind`` of run (preflight or verify)."""
    if kind not in KINDS:
        raise ReportError("unknown report kind %r; allowed: %s." % (kind, ", ".join(KINDS)))
    if not isinstance(checks, (list, tuple)):
        raise ReportError("checks must be a list of check mappings, got %r." % (checks,))
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise ReportError("meta must be a mapping, got %r." % (meta,))
    items = sorted((_validated(item, i) for i, item in enumerate(checks)), key=lambda c: (c["host"], c["check"]))
    summary = dict((status, 0) for status in STATUSES)
    for item in items:
        summary[item["status"]] += 1
    failures = [item for item in items if item["status"] == "fail"]
    return {
        "schema": SCHEMA,
        "kind": kind,
        "ok": not failures,
        "summary": summary,
        "hosts": sorted(set(item["host"] for item in items)),
        "checks": items,
        "failures": failures,
        "meta": dict(meta),
    }


def summary_line(report):
    """``preflight FAILED: 3 hosts, 12 checks: 9 ok, 1 warn, 2 fail, 0 skip``."""
    counts = report["summary"]
    return "%s %s: %d hosts, %d checks: %s" % (
        report["kind"], "OK" if report["ok"] else "FAILED", len(report["hosts"]), len(report["checks"]),
        ", ".join("%d %s" % (counts.get(status, 0), status) for status in STATUSES))


def table(report):
    """The report as text: a fixed-width table HOST | CHECK | STATUS | MESSAGE, then the summary line."""
    if not isinstance(report, dict) or report.get("schema") != SCHEMA:
        raise ReportError("table() needs a report built by report_build (schema %s), got %r." % (SCHEMA, report))
    rows = [(c["host"], c["check"], c["status"].upper(), _one_line(c["message"])) for c in report["checks"]]
    widths = [max([len(COLUMNS[i])] + [len(row[i]) for row in rows]) for i in range(3)]

    def line(cells):
        return (" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(cells[:3])) + " | " + cells[3]).rstrip()

    out = [line(COLUMNS), "-+-".join("-" * w for w in widths) + "-+-" + "-" * len(COLUMNS[3])]
    out.extend(line(row) for row in rows)
    out.append(summary_line(report))
    return "\n".join(out)


def failure_lines(report):
    """Every failure as ``host: check: message``."""
    return ["%s: %s: %s" % (c["host"], c["check"], _one_line(c["message"])) for c in report["failures"]]


def collect(hostvars, hosts, fact=DEFAULT_FACT):
    """Every host's checks (the list in its ``fact``), in host order; a host without the fact gets a failed
    ``completed`` check: it was unreachable or a task failed before it kept its results."""
    if isinstance(hosts, str):
        hosts = [hosts]
    checks = []
    for host in hosts:
        host_vars = hostvars[host] if host in hostvars else {}
        found = host_vars[fact] if fact in host_vars else None
        if found is None:
            checks.append(check(host, COMPLETED_CHECK, "fail", COMPLETED_MESSAGE))
            continue
        if not isinstance(found, (list, tuple)):
            raise ReportError("host %s: %s must be a list of checks, got %r." % (host, fact, found))
        checks.extend(found)
    return checks
