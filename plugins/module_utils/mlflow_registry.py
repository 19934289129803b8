# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
# Apache License 2.0 (see LICENSE), or at your option GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt), like every module file (see README, Licensing).
"""MLflow's model registry over its REST API: which artifact location a registered model version is.

Pure functions and a small client over Ansible's ``open_url``, so the unit tests call it directly and the module
``mlflow_model_version`` is a thin wrapper. The calls (MLflow REST API 2.0, /api/2.0/mlflow/...):

- ``GET model-versions/get?name=&version=``: the version exists (404 RESOURCE_DOES_NOT_EXIST if not);
- ``GET registered-models/alias?name=&alias=``: the version an alias points at;
- ``GET model-versions/get-download-uri?name=&version=``: where its files are (the server answers the
  version's ``storage_location`` when it has one, else its ``source``);
- ``GET logged-models/<id>`` and ``GET runs/get?run_id=`` for ``models:/m-<id>`` and ``runs:/`` URIs.

The location is then turned into what KServe's storage initializer can read (:func:`storage_uri`):
``s3://`` as it is; ``mlflow-artifacts:`` (artifacts proxied by the tracking server) mapped onto the
server's ``--artifacts-destination``; ``models:/`` and ``runs:/`` resolved through the server first.
Anything else (a local path, ``file:``, other clouds) is refused: KServe is given S3 credentials only.
Credentials never appear in a message or a return value.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import re

from ansible_collections.gpufleet.platform.plugins.module_utils import versions

from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode, urlsplit

from ansible.module_utils.urls import ConnectionError as UrlError
from ansible.module_utils.urls import open_url

API = "/api/2.0/mlflow/"
# How deep models:/ and runs:/ URIs may point at each other before the chain is refused.
MAX_HOPS = 5
LOGGED_MODEL = re.compile(r"^m-[0-9a-f]+$")


class MlflowRegistryError(Exception):
    """A registry lookup failed; the message says what and never holds a credential."""


class NotFound(MlflowRegistryError):
    """The registered model, version or alias does not exist."""


class ApiError(MlflowRegistryError):
    """MLflow answered an HTTP error other than 401/403/404; ``status`` and ``server_message`` say which."""

    def __init__(self, message, status, server_message):
        super(ApiError, self).__init__(message)
        self.status = status
        self.server_message = server_message or ""


def _join(base, path):
    """``base`` (a URI, no trailing slash needed) and a relative ``path``, with one slash between."""
    path = path.lstrip("/")
    return base.rstrip("/") + ("/" + path if path else "")


def artifacts_path(uri):
    """The path of an ``mlflow-artifacts:`` URI, relative to the server's artifacts destination.

    ``mlflow-artifacts:/1/abc/artifacts/model`` and ``mlflow-artifacts://host:5000/1/abc/artifacts/model``
    both give ``1/abc/artifacts/model`` (the authority names the server, not a place in the bucket).
    """
    parts = urlsplit(uri)
    if parts.scheme != "mlflow-artifacts":
        raise ValueError("not an mlflow-artifacts URI: %s" % uri)
    return parts.path.lstrip("/")


def parse_models_uri(uri):
    """``models:/`` URI -> ``("logged", model_id, path)`` or ``("version", name, version, alias, path)``.

    Forms (MLflow's own): ``models:/m-<id>[/path]`` (a logged model, MLflow 3), ``models:/NAME/VERSION[/path]``,
    ``models:/NAME@ALIAS[/path]``. Stages (``models:/NAME/Production``) are refused: MLflow deprecated them for
    aliases, and a stage can hold several versions.
    """
    if not uri.startswith("models:/"):
        raise ValueError("not a models URI: %s" % uri)
    rest = uri[len("models:/"):].lstrip("/")
    head, _sep, tail = rest.partition("/")
    if LOGGED_MODEL.match(head):
        return ("logged", head, tail)
    if "@" in head:
        name, _sep, alias = head.partition("@")
        if name and alias:
            return ("version", name, None, alias, tail)
    else:
        version, _sep, path = tail.partition("/")
        if head and version.isdigit():
            return ("version", head, version, None, path)
    raise MlflowRegistryError("unsupported models URI %s: expected models:/m-<id>, models:/NAME/VERSION or "
                              "models:/NAME@ALIAS" % uri)


def parse_runs_uri(uri):
    """``runs:/RUN_ID/path`` -> ``(run_id, path)``."""
    rest = uri[len("runs:/"):].lstrip("/") if uri.startswith("runs:/") else ""
    run_id, _sep, path = rest.partition("/")
    if not run_id:
        raise MlflowRegistryError("unsupported runs URI %s: expected runs:/RUN_ID/PATH" % uri)
    return run_id, path


def storage_uri(location, artifacts_destination=None):
    """What KServe reads for a location that needs no server call (``s3://`` or ``mlflow-artifacts:``).

    ``artifacts_destination`` is the tracking server's ``--artifacts-destination`` (``s3://bucket/prefix``).
    Returns None for ``models:/`` and ``runs:/`` (the caller resolves them through the server); raises
    MlflowRegistryError for a location KServe cannot be given.
    """
    text = str(location or "")
    scheme = urlsplit(text).scheme if "://" in text or text.startswith(("mlflow-artifacts:", "models:",
                                                                        "runs:")) else ""
    if scheme == "s3":
        if not urlsplit(text).netloc:
            raise MlflowRegistryError("artifact location %s names no bucket" % text)
        return text.rstrip("/")
    if scheme == "mlflow-artifacts":
        if not artifacts_destination:
            raise MlflowRegistryError("artifact location %s is proxied by the tracking server, and no artifacts "
                                      "destination (s3://bucket/prefix) is known to map it onto" % text)
        return _join(artifacts_destination, artifacts_path(text))
    if scheme in ("models", "runs"):
        return None
    raise MlflowRegistryError("artifact location %s cannot be served: KServe reads s3:// (and mlflow-artifacts: "
                              "proxied onto S3) locations only; log the model to the MLflow server whose artifact "
                              "store is S3" % (text or "(empty)"))


class Client(object):
    """A minimal MLflow REST client (the calls above), with HTTP basic auth when a username is given."""

    def __init__(self, url, username=None, password=None, timeout=30, validate_certs=True, ca_path=None,
                 opener=None):
        """``opener(url, headers, timeout)`` returns a file-like response (default: Ansible's open_url)."""
        if not re.match(r"^https?://[^/]+", str(url or "")):
            raise MlflowRegistryError("MLflow URL %r must be http(s)://host[:port][/prefix]" % (url,))
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._auth = None
        if username:
            token = ("%s:%s" % (username, password or "")).encode("utf-8")
            self._auth = "Basic " + base64.b64encode(token).decode("ascii")
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self._opener = opener or self._open_url

    def _open_url(self, url, headers, timeout):
        return open_url(url, method="GET", headers=headers, timeout=timeout, validate_certs=self.validate_certs,
                        ca_path=self.ca_path, follow_redirects="safe")

    def get(self, endpoint, **params):
        """GET ``/api/2.0/mlflow/<endpoint>``; the decoded JSON, NotFound on RESOURCE_DOES_NOT_EXIST / 404."""
        url = "%s%s%s" % (self.url, API, endpoint)
        if params:
            url += "?" + urlencode(sorted(params.items()))
        headers = {"Accept": "application/json"}
        if self._auth:
            headers["Authorization"] = self._auth
        try:
            response = self._opener(url, headers, self.timeout)
            return json.loads(response.read().decode("utf-8") or "{}")
        except HTTPError as err:
            body = _error_body(err)
            code = body.get("error_code", "")
            if err.code == 404 or code == "RESOURCE_DOES_NOT_EXIST":
                raise NotFound(body.get("message") or "not found")
            if err.code in (401, 403):
                raise MlflowRegistryError("MLflow at %s refused the credentials (HTTP %d); check the admin user and "
                                          "password" % (self.url, err.code))
            raise ApiError("MLflow at %s answered HTTP %d to %s%s: %s"
                           % (self.url, err.code, API, endpoint, body.get("message") or err.reason), err.code,
                           body.get("message"))
        except (URLError, UrlError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise MlflowRegistryError("cannot reach MLflow at %s: %s" % (self.url, reason))
        except ValueError:
            raise MlflowRegistryError("MLflow at %s answered %s%s with something that is not JSON"
                                      % (self.url, API, endpoint))

    def model_version(self, name, version=None, alias=None):
        """The model version dict (``name``, ``version``, ``source``, ...) of ``version`` or ``alias``."""
        if alias is not None:
            try:
                return self.get("registered-models/alias", name=name, alias=alias)["model_version"]
            except ApiError as err:  # MLflow answers an unknown alias with 400 INVALID_PARAMETER_VALUE
                if err.status == 400 and "not found" in err.server_message.lower():
                    raise NotFound(err.server_message)
                raise
        return self.get("model-versions/get", name=name, version=str(version))["model_version"]

    def download_uri(self, name, version):
        return self.get("model-versions/get-download-uri", name=name, version=str(version))["artifact_uri"]

    def logged_model_uri(self, model_id):
        return self.get("logged-models/%s" % model_id)["model"]["info"]["artifact_uri"]

    def run_artifact_uri(self, run_id):
        return self.get("runs/get", run_id=run_id)["run"]["info"]["artifact_uri"]


def _error_body(err):
    try:
        body = json.loads(err.read().decode("utf-8"))
        return body if isinstance(body, dict) else {}
    except (ValueError, AttributeError, OSError):
        return {}


def describe(name, version=None, alias=None):
    return "%s version %s" % (name, version) if alias is None else "%s alias %s" % (name, alias)


def resolve(client, name, version=None, alias=None, artifacts_destination=None):
    """The registered model version's artifact location as KServe reads it.

    Returns ``{"model", "version", "source", "download_uri", "storage_uri"}``. Raises NotFound naming the model,
    version or alias that does not exist, MlflowRegistryError for anything else.
    """
    try:
        found = client.model_version(name, version, alias)
    except NotFound:
        raise NotFound("registered model %s not found in MLflow at %s" % (describe(name, version, alias), client.url))
    number = str(found.get("version", version))
    location = client.download_uri(name, number)
    uri = _follow(client, location, artifacts_destination, 0)
    return {"model": name, "version": number, "source": found.get("source"), "download_uri": location,
            "storage_uri": uri}


def _follow(client, location, artifacts_destination, hops):
    uri = storage_uri(location, artifacts_destination)
    if uri is not None:
        return uri
    if hops >= MAX_HOPS:
        raise MlflowRegistryError("artifact location %s: more than %d models:/ or runs:/ indirections"
                                  % (location, MAX_HOPS))
    try:
        if location.startswith("runs:/"):
            run_id, path = parse_runs_uri(location)
            nxt = _join(client.run_artifact_uri(run_id), path)
        else:
            parsed = parse_models_uri(location)
            if parsed[0] == "logged":
                nxt = _join(client.logged_model_uri(parsed[1]), parsed[2])
            else:
                name, version, alias, path = parsed[1:]
                number = client.model_version(name, version, alias).get("version", version)
                nxt = _join(client.download_uri(name, number), path)
    except NotFound:
        raise NotFound("artifact location %s points at something MLflow at %s does not have" % (location, client.url))
    return _follow(client, nxt, artifacts_destination, hops + 1)


# The tracking server's port and Service name (the mlflow role renders both).
PORT = 5000
SERVICE_NAME = "mlflow"
SECRET_NAME = "mlflow-server"


def artifacts_destination(artifact_store):
    """``s3://bucket/prefix`` of services.mlflow.artifact_store (the server's --artifacts-destination)."""
    store = artifact_store or {}
    return _join("s3://%s" % store["bucket"], store.get("path", "")) if store.get("bucket") else None


def plan_service(service):
    """services.mlflow (defaults applied) completed for the roles: the in-cluster URL, the URL the controller
    uses, the artifacts destination and the Host names the server accepts. Secret references stay references."""
    # no chart: the role renders the objects
    out = dict(service, charts=[], image=service.get("image") or versions.IMAGES["mlflow"], secret_name=SECRET_NAME)
    out.setdefault("namespace", "mlflow")
    out["auth"] = dict({"admin_user": "gpufleet-admin", "default_permission": "READ"}, **(service.get("auth") or {}))
    host = "%s.%s.svc.cluster.local" % (SERVICE_NAME, out["namespace"])
    out["service_url"] = "http://%s:%d" % (host, PORT)
    out["url"] = (service.get("url") or out["service_url"]).rstrip("/")
    out["artifacts_destination"] = artifacts_destination(service.get("artifact_store"))
    names = [SERVICE_NAME, "%s.%s" % (SERVICE_NAME, out["namespace"]), "%s.%s.svc" % (SERVICE_NAME, out["namespace"]),
             host]
    extra = [urlsplit(out["url"]).netloc] + list(service.get("allowed_hosts") or [])
    allowed = ["localhost", "localhost:*", "127.0.0.1", "127.0.0.1:*"]
    for name in names + extra:
        for entry in (name, name if ":" in name else name + ":*"):
            if entry not in allowed:
                allowed.append(entry)
    out["allowed_hosts"] = allowed
    return out


def _quote(text):
    """``text`` percent-encoded for the user or password part of a database URI (nothing is left safe)."""
    return quote(str(text), safe="")


def backend_store_uri(store, password):
    """SQLAlchemy URI of the PostgreSQL backend store (psycopg2, which the official -full image carries)."""
    return "postgresql+psycopg2://%s:%s@%s:%d/%s?sslmode=%s" % (
        _quote(store["user"]), _quote(password), store["host"], int(store.get("port", 5432)),
        store.get("database", "mlflow"), store.get("sslmode", "require"))


def secret_data(service, db_password, s3_credentials, admin_password, flask_secret_key):
    """stringData of the Secret the tracking server reads: the backend store URI, the basic-auth app's INI file
    (its users live in the same database, in tables of their own), the S3 keys, the admin user and password (the
    kserve role reads them to query the registry) and the Flask session key."""
    for name, value in (("database password", db_password), ("admin password", admin_password),
                        ("Flask secret key", flask_secret_key)):
        if not isinstance(value, str) or not value or "\n" in value or "\r" in value:
            raise MlflowRegistryError("the MLflow %s must be a non-empty string on one line" % name)
    creds = s3_credentials if isinstance(s3_credentials, dict) else {}
    if not all(isinstance(creds.get(k), str) and creds[k] for k in ("access_key_id", "secret_access_key")):
        raise MlflowRegistryError("the MLflow artifact store credentials must be a mapping with non-empty "
                                  "access_key_id and secret_access_key")
    uri = backend_store_uri(service["backend_store"], db_password)
    auth = service.get("auth") or {}

    def ini(value):  # configparser interpolates %: double it
        return value.replace("%", "%%")
    lines = [
        "[mlflow]",
        "default_permission = %s" % auth.get("default_permission", "READ"),
        "database_uri = %s" % ini(uri),
        "admin_username = %s" % auth.get("admin_user", "gpufleet-admin"),
        "admin_password = %s" % ini(admin_password),
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
        "",
    ]
    return {
        "backend-store-uri": uri,
        "basic_auth.ini": "\n".join(lines),
        "AWS_ACCESS_KEY_ID": creds["access_key_id"],
        "AWS_SECRET_ACCESS_KEY": creds["secret_access_key"],
        "admin-user": auth.get("admin_user", "gpufleet-admin"),
        "admin-password": admin_password,
        "flask-secret-key": flask_secret_key,
    }
