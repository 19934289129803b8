#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
# Apache License 2.0 (see LICENSE), or at your option GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt), like every module file (see README, Licensing).

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: gpu_usage_report
short_description: GPU-hours per team over a period from Prometheus, as a Markdown table, JSON and a PNG bar chart
version_added: 1.1.0
description:
  - Queries Prometheus (the HTTP API, two instant queries) for the GPU-hours of every team namespace in a window of
    whole hours, from the monitoring role's recording rules C(namespace_resource:gpufleet_gpu_hours_requested:sum_1h)
    (GPUs and MIG devices requested by running pods) and C(namespace_profile:gpufleet_gpu_hours_in_use:sum_1h)
    (GPUs the DCGM exporter attributes to a pod).
  - Writes C(gpu-hours-<start>-<end>.md), C(.json) and C(.png) to O(output_dir) (created if missing).
  - Runs where it is called (the usage_report role runs it on the controller); it contacts only O(prometheus_url).
  - Every bad input is reported at once, each message naming the option (with O(variable_prefix) before it), the
    value and what is allowed.
author:
  - gpufleet.platform maintainers (@gpufleet)
options:
  prometheus_url:
    description: Base URL of the Prometheus HTTP API (C(http://127.0.0.1:9090)); C(/api/v1/query) is appended.
    type: str
    required: true
  start:
    description: Start of the window (excluded), a whole hour - RFC 3339, a date (midnight UTC) or Unix seconds.
    type: str
    default: ""
  end:
    description: End of the window (included), a whole hour, at or before the last whole hour.
    type: str
    default: ""
  period:
    description:
      - Length of the window, C(<n>h), C(<n>d) or C(<n>w) (at most 366d). Alone, the window ends at the last whole
        hour; with O(start) or O(end), it gives the other end; with both, it must match them.
    type: str
    default: ""
  output_dir:
    description: Directory the three files are written to; created when missing; must be writable.
    type: path
    required: true
  teams:
    description: The teams of the plan (C(gpufleet_plan.teams)), each with C(name) and C(namespace), to name the team
      of each namespace; a namespace of no team is reported with an empty team.
    type: list
    elements: dict
    default: []
  variable_prefix:
    description: Put before the option names in messages (the usage_report role passes C(usage_report_), so that
      messages name its variables).
    type: str
    default: ""
  timeout:
    description: Seconds to wait for each Prometheus answer.
    type: int
    default: 30
  validate_certs:
    description: Verify the TLS certificate of an C(https) O(prometheus_url).
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Queries Prometheus and returns the report; writes no file and creates no directory.
  diff_mode:
    support: none
    description: The outputs are new files, reported in RV(files).
"""

EXAMPLES = r"""
- name: GPU-hours per team over the last 7 days
  gpufleet.platform.gpu_usage_report:
    prometheus_url: http://127.0.0.1:9090
    period: 7d
    output_dir: reports/
    teams: "{{ gpufleet_plan.teams }}"
  register: usage

- name: GPU-hours per team in November 2026
  gpufleet.platform.gpu_usage_report:
    prometheus_url: http://127.0.0.1:9090
    start: "2026-11-01"
    end: "2026-12-01"
    output_dir: /srv/reports/gpu
"""

RETURN = r"""
report:
  description: The report, as written to the JSON file (schema C(gpufleet.platform/usage_report/v1)).
  returned: always
  type: dict
  sample:
    schema: gpufleet.platform/usage_report/v1
    start: "2026-12-01T00:00:00Z"
    end: "2026-12-08T00:00:00Z"
    hours: 168
    rows:
      - {team: research, namespace: research, resource: nvidia_com_gpu, gpu_hours_requested: 1344.0,
         gpu_hours_in_use: 1210.5}
table:
  description: The report as a Markdown table (the C(.md) file).
  returned: always
  type: str
  sample: "| team | namespace | resource | GPU-hours requested | GPU-hours in use |"
files:
  description: The files written (in check mode, the files that would be written).
  returned: always
  type: list
  elements: str
  sample: [reports/gpu-hours-20261201T00Z-20261208T00Z.md]
"""

import json
import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.six.moves.urllib.parse import urlencode, urlparse
from ansible.module_utils.urls import open_url

from ansible_collections.gpufleet.platform.plugins.module_utils import usage_report


def _query(module, url, query, at):
    name = module.params["variable_prefix"] + "prometheus_url"
    target = "%s/api/v1/query?%s" % (url.rstrip("/"), urlencode({"query": query, "time": str(at)}))
    try:
        response = open_url(target, timeout=module.params["timeout"], validate_certs=module.params["validate_certs"])
        body = response.read()
    except HTTPError as exc:
        detail = to_native(exc.read() or b"")
        try:
            detail = json.loads(detail).get("error", detail)
        except ValueError:
            pass
        raise usage_report.UsageReportError("%s: %s answered HTTP %s to %s: %s" % (name, url, exc.code, query, detail))
    except (URLError, OSError, ValueError) as exc:
        raise usage_report.UsageReportError(
            "%s: %s is not reachable (%s); give the URL of a Prometheus this controller reaches, e.g. after "
            "`kubectl -n monitoring port-forward svc/kube-prometheus-stack-prometheus 9090` -e %s=http://127.0.0.1:9090"
            % (name, url, to_native(getattr(exc, "reason", exc)), name))
    try:
        return json.loads(to_native(body))
    except ValueError:
        raise usage_report.UsageReportError("%s: %s did not answer with JSON (is it the Prometheus HTTP API?)"
                                            % (name, url))


def _same(path, data):
    if not os.path.exists(path):
        return False
    with open(path, "rb") as fh:
        return fh.read() == data


def _write(path, data):
    """Write ``data`` (bytes) to ``path`` unless it already holds them; True when written."""
    if _same(path, data):
        return False
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, 0o644)
    os.rename(tmp, path)
    return True


def main():
    module = AnsibleModule(
        argument_spec=dict(
            prometheus_url=dict(type="str", required=True),
            start=dict(type="str", default=""),
            end=dict(type="str", default=""),
            period=dict(type="str", default=""),
            output_dir=dict(type="path", required=True),
            teams=dict(type="list", elements="dict", default=[]),
            variable_prefix=dict(type="str", default=""),
            timeout=dict(type="int", default=30),
            validate_certs=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    prefix = params["variable_prefix"]
    problems = []
    url = (params["prometheus_url"] or "").strip()
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        problems.append("%sprometheus_url: %r is not an http(s) URL; give the Prometheus base URL, e.g. "
                        "http://127.0.0.1:9090" % (prefix, url))
    try:
        start, end = usage_report.window(params["start"], params["end"], params["period"], time.time(), prefix)
    except usage_report.UsageReportError as exc:
        problems.extend(exc.problems)
    problems.extend(usage_report.check_output_dir(params["output_dir"], prefix + "output_dir"))
    if problems:
        module.fail_json(msg="usage report: %d problem(s): %s" % (len(problems), " | ".join(problems)),
                         problems=problems)
    try:
        q = usage_report.queries(start, end)
        report = usage_report.build(_query(module, url, q["requested"], end), _query(module, url, q["in_use"], end),
                                    start, end, params["teams"], url)
    except usage_report.UsageReportError as exc:
        module.fail_json(msg=str(exc), problems=exc.problems)
    directory = os.path.abspath(params["output_dir"])
    base = os.path.join(directory, usage_report.basename(report))
    table = usage_report.markdown(report)
    outputs = [(base + ".md", table.encode("utf-8")), (base + ".json", usage_report.to_json(report).encode("utf-8")),
               (base + ".png", usage_report.chart(report))]
    changed = False
    if module.check_mode:
        changed = not all(_same(path, data) for path, data in outputs)
    else:
        try:
            if not os.path.isdir(directory):
                os.makedirs(directory)
            for path, data in outputs:
                changed = _write(path, data) or changed
        except (IOError, OSError) as exc:
            module.fail_json(msg="%soutput_dir: %r: cannot write the report: %s" % (prefix, directory, to_native(exc)))
    module.exit_json(changed=changed, report=report, table=table, files=[output[0] for output in outputs])


if __name__ == "__main__":
    main()
