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
module: mlflow_model_version
short_description: Resolve MLflow registry model versions to the artifact locations KServe serves
version_added: 1.1.0
description:
  - Looks up each requested registered model version (by number or by alias) in an MLflow tracking server
    through its REST API (C(/api/2.0/mlflow/model-versions/get), C(/registered-models/alias),
    C(/model-versions/get-download-uri)) and returns the location of its files as a C(s3://) URI.
  - "Locations: C(s3://) as the server gives it; C(mlflow-artifacts:) (artifacts proxied by the server) mapped
    onto O(artifacts_destination); C(models:/m-<id>), C(models:/NAME/VERSION), C(models:/NAME@ALIAS) and
    C(runs:/RUN_ID/PATH) followed through the server. Any other location is an error."
  - Every request is looked up before the module answers; when any fails, it fails once, listing each failed
    request with its O(requests[].path) and the model, version or alias asked for.
  - The kserve role calls it before it writes any object, so a model that is not in the registry deploys nothing.
  - Reads only; never reports C(changed).
author:
  - gpufleet.platform maintainers (@gpufleet)
options:
  url:
    description: The MLflow tracking server, C(http(s\)://host[:port][/prefix]).
    type: str
    required: true
  username:
    description: User for HTTP basic auth (MLflow's C(basic-auth) app). Omit for a server without authentication.
    type: str
  password:
    description: Password of O(username). Never logged or returned.
    type: str
  artifacts_destination:
    description:
      - The server's C(--artifacts-destination), C(s3://bucket/prefix); needed to map C(mlflow-artifacts:) locations.
    type: str
  requests:
    description: The model versions to resolve.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Where the request comes from (a config key path), used in messages and returned.
        type: str
        required: true
      model:
        description: The registered model name.
        type: str
        required: true
      version:
        description: The model version number. One of O(requests[].version) and O(requests[].alias) is required.
        type: int
      alias:
        description: A model alias (e.g. C(champion)).
        type: str
  timeout:
    description: Seconds to wait for each HTTP request.
    type: int
    default: 30
  validate_certs:
    description: Verify the server's TLS certificate (https URLs).
    type: bool
    default: true
  ca_path:
    description: A CA bundle to verify the server's certificate with.
    type: path
attributes:
  check_mode:
    support: full
    description: Reads only; runs the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to diff.
"""

EXAMPLES = r"""
- name: Resolve the registry models of config.yml
  gpufleet.platform.mlflow_model_version:
    url: http://mlflow.mlflow.svc.cluster.local:5000
    username: mlflow-admin
    password: "{{ vault_mlflow_admin_password }}"
    artifacts_destination: s3://mlflow/artifacts
    requests:
      - {path: "services.kserve.models[0].registry", model: llama-finetune, version: 3}
      - {path: "services.kserve.models[1].registry", model: llama-finetune, alias: champion}
  register: resolved
  no_log: true
"""

RETURN = r"""
resolved:
  description: One entry per request, in order.
  returned: success
  type: list
  elements: dict
  contains:
    path:
      description: The request's O(requests[].path).
      type: str
      sample: services.kserve.models[0].registry
    model:
      description: The registered model name.
      type: str
      sample: llama-finetune
    version:
      description: The model version (the one an alias points at, for an alias).
      type: str
      sample: "3"
    source:
      description: The model version's C(source) as registered.
      type: str
      sample: models:/m-4d1f0c
    download_uri:
      description: What the server answers as the version's download URI.
      type: str
      sample: mlflow-artifacts:/1/models/m-4d1f0c/artifacts
    storage_uri:
      description: The location KServe reads (C(storageUri)).
      type: str
      sample: s3://mlflow/artifacts/1/models/m-4d1f0c/artifacts
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gpufleet.platform.plugins.module_utils import mlflow_registry


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            username=dict(type="str"),
            password=dict(type="str", no_log=True),
            artifacts_destination=dict(type="str"),
            requests=dict(type="list", elements="dict", required=True, options=dict(
                path=dict(type="str", required=True),
                model=dict(type="str", required=True),
                version=dict(type="int"),
                alias=dict(type="str"),
            ), mutually_exclusive=[("version", "alias")], required_one_of=[("version", "alias")]),
            timeout=dict(type="int", default=30),
            validate_certs=dict(type="bool", default=True),
            ca_path=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        client = mlflow_registry.Client(params["url"], params["username"], params["password"], params["timeout"],
                                        params["validate_certs"], params["ca_path"])
    except mlflow_registry.MlflowRegistryError as err:
        module.fail_json(msg=str(err))
    resolved, problems = [], []
    for request in params["requests"]:
        try:
            entry = mlflow_registry.resolve(client, request["model"], request["version"], request["alias"],
                                            params["artifacts_destination"])
        except mlflow_registry.MlflowRegistryError as err:
            key = "version" if request["alias"] is None else "alias"
            problems.append("%s: %s (got {model: %s, %s: %s})" % (request["path"], err, request["model"], key,
                                                                  request[key]))
            continue
        entry["path"] = request["path"]
        resolved.append(entry)
    if problems:
        module.fail_json(msg="MLflow registry: %d model version%s could not be resolved: %s"
                         % (len(problems), "" if len(problems) == 1 else "s", "; ".join(problems)), resolved=resolved)
    module.exit_json(changed=False, resolved=resolved)


if __name__ == "__main__":
    main()
