"""module_utils/mlflow_registry.py: artifact locations as KServe reads them, models:/ and runs:/ followed through the
server, HTTP errors, and the tracking server's Secret. The server here is a table of answers (the real MLflow server
is tests/integration/test_mlflow_registry.py's)."""
import io
import json
import urllib.error

import pytest

from ansible_collections.gpufleet.platform.plugins.module_utils import mlflow_registry as reg

DEST = "s3://mlflow/artifacts"


@pytest.mark.parametrize("location,expected", [
    ("s3://bucket/path/model", "s3://bucket/path/model"),
    ("s3://bucket/path/model/", "s3://bucket/path/model"),
    ("mlflow-artifacts:/1/models/m-abc/artifacts", DEST + "/1/models/m-abc/artifacts"),
    ("mlflow-artifacts://mlflow.mlflow:5000/1/abc/artifacts/model", DEST + "/1/abc/artifacts/model"),
    ("mlflow-artifacts:///2/x", DEST + "/2/x"),
    ("models:/m-abc", None),
    ("models:/churn/3", None),
    ("runs:/abc/model", None),
])
def test_storage_uri(location, expected):
    assert reg.storage_uri(location, DEST) == expected


def test_destination_with_a_trailing_slash():
    assert reg.storage_uri("mlflow-artifacts:/1/a", "s3://b/") == "s3://b/1/a"


@pytest.mark.parametrize("location,message", [
    ("/mnt/mlruns/1/abc/artifacts/model", "artifact location /mnt/mlruns/1/abc/artifacts/model cannot be served: "
     "KServe reads s3:// (and mlflow-artifacts: proxied onto S3) locations only; log the model to the MLflow server "
     "whose artifact store is S3"),
    ("file:///mnt/mlruns/1", "artifact location file:///mnt/mlruns/1 cannot be served: KServe reads s3:// (and "
     "mlflow-artifacts: proxied onto S3) locations only; log the model to the MLflow server whose artifact store is "
     "S3"),
    ("gs://bucket/model", "artifact location gs://bucket/model cannot be served: KServe reads s3:// (and "
     "mlflow-artifacts: proxied onto S3) locations only; log the model to the MLflow server whose artifact store is "
     "S3"),
    ("", "artifact location (empty) cannot be served: KServe reads s3:// (and mlflow-artifacts: proxied onto S3) "
     "locations only; log the model to the MLflow server whose artifact store is S3"),
    ("s3:///path", "artifact location s3:///path names no bucket"),
])
def test_locations_kserve_cannot_read(location, message):
    with pytest.raises(reg.MlflowRegistryError) as info:
        reg.storage_uri(location, DEST)
    assert str(info.value) == message


def test_proxied_location_needs_a_destination():
    with pytest.raises(reg.MlflowRegistryError) as info:
        reg.storage_uri("mlflow-artifacts:/1/a", None)
    assert str(info.value) == ("artifact location mlflow-artifacts:/1/a is proxied by the tracking server, and no "
                               "artifacts destination (s3://bucket/prefix) is known to map it onto")


@pytest.mark.parametrize("uri,expected", [
    ("models:/m-0a1b", ("logged", "m-0a1b", "")),
    ("models:/m-0a1b/sub/dir", ("logged", "m-0a1b", "sub/dir")),
    ("models:/churn/3", ("version", "churn", "3", None, "")),
    ("models:/churn/3/path", ("version", "churn", "3", None, "path")),
    ("models:/churn@champion", ("version", "churn", None, "champion", "")),
    ("models:/churn@champion/x", ("version", "churn", None, "champion", "x")),
])
def test_parse_models_uri(uri, expected):
    assert reg.parse_models_uri(uri) == expected


@pytest.mark.parametrize("uri", ["models:/churn/Production", "models:/churn", "models:/@a", "models:/"])
def test_unsupported_models_uri(uri):
    with pytest.raises(reg.MlflowRegistryError) as info:
        reg.parse_models_uri(uri)
    assert str(info.value) == ("unsupported models URI %s: expected models:/m-<id>, models:/NAME/VERSION or "
                               "models:/NAME@ALIAS" % uri)


def test_parse_runs_uri():
    assert reg.parse_runs_uri("runs:/abc/model/x") == ("abc", "model/x")
    with pytest.raises(reg.MlflowRegistryError):
        reg.parse_runs_uri("runs:/")


class Server(object):
    """Answers GET /api/2.0/mlflow/<endpoint>?<query> from a table; records the requests."""

    def __init__(self, answers):
        self.answers = answers
        self.requests = []

    def __call__(self, url, headers, timeout):
        self.requests.append((url, headers, timeout))
        path = url.split("/api/2.0/mlflow/", 1)[1]
        status, body = self.answers.get(path, (404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "nope"}))
        if status != 200:
            raise urllib.error.HTTPError(url, status, "error", {}, io.BytesIO(json.dumps(body).encode()))
        return io.BytesIO(json.dumps(body).encode())


def client(answers):
    return reg.Client("http://mlflow:5000/", "admin", "s3cret-pass", opener=Server(answers))


def version(name, number, source):
    return (200, {"model_version": {"name": name, "version": str(number), "source": source}})


def test_resolve_logged_model_through_models_uri():
    server = Server({
        "model-versions/get?name=churn&version=1": version("churn", 1, "models:/m-0a1b"),
        "model-versions/get-download-uri?name=churn&version=1": (200, {"artifact_uri": "models:/m-0a1b"}),
        "logged-models/m-0a1b": (200, {"model": {"info": {"artifact_uri": "mlflow-artifacts:/3/models/m-0a1b/a"}}}),
    })
    c = reg.Client("http://mlflow:5000/", "admin", "s3cret-pass", opener=server)
    assert reg.resolve(c, "churn", version=1, artifacts_destination=DEST) == {
        "model": "churn", "version": "1", "source": "models:/m-0a1b", "download_uri": "models:/m-0a1b",
        "storage_uri": DEST + "/3/models/m-0a1b/a"}
    assert server.requests[0][1] == {"Accept": "application/json", "Authorization": "Basic YWRtaW46czNjcmV0LXBhc3M="}


def test_resolve_alias_to_runs_uri_and_registered_models_uri():
    c = client({
        "registered-models/alias?alias=champion&name=churn": version("churn", 4, "models:/base/2/sub"),
        "model-versions/get-download-uri?name=churn&version=4": (200, {"artifact_uri": "models:/base/2/sub"}),
        "model-versions/get?name=base&version=2": version("base", 2, "runs:/r1/model"),
        "model-versions/get-download-uri?name=base&version=2": (200, {"artifact_uri": "runs:/r1/model"}),
        "runs/get?run_id=r1": (200, {"run": {"info": {"artifact_uri": "s3://other/1/r1/artifacts"}}}),
    })
    result = reg.resolve(c, "churn", alias="champion", artifacts_destination=DEST)
    assert (result["version"], result["storage_uri"]) == ("4", "s3://other/1/r1/artifacts/model/sub")


@pytest.mark.parametrize("kwargs,answers,message", [
    ({"version": 9}, {}, "registered model churn version 9 not found in MLflow at http://mlflow:5000"),
    ({"alias": "nope"}, {"registered-models/alias?alias=nope&name=churn": (
        400, {"error_code": "INVALID_PARAMETER_VALUE", "message": "Registered model alias nope not found."})},
     "registered model churn alias nope not found in MLflow at http://mlflow:5000"),
    ({"version": 1}, {"model-versions/get?name=churn&version=1": (401, {})},
     "MLflow at http://mlflow:5000 refused the credentials (HTTP 401); check the admin user and password"),
    ({"version": 1}, {"model-versions/get?name=churn&version=1": (500, {"message": "db down"})},
     "MLflow at http://mlflow:5000 answered HTTP 500 to /api/2.0/mlflow/model-versions/get: db down"),
    ({"version": 1}, {"model-versions/get?name=churn&version=1": version("churn", 1, "models:/m-ff"),
                      "model-versions/get-download-uri?name=churn&version=1": (200, {"artifact_uri": "models:/m-ff"})},
     "artifact location models:/m-ff points at something MLflow at http://mlflow:5000 does not have"),
])
def test_resolve_failures(kwargs, answers, message):
    c = client(answers)
    with pytest.raises(reg.MlflowRegistryError) as info:
        reg.resolve(c, "churn", artifacts_destination=DEST, **kwargs)
    assert str(info.value) == message
    assert "s3cret" not in str(info.value)


def test_a_models_uri_loop_stops():
    c = client({
        "model-versions/get?name=a&version=1": version("a", 1, "models:/a/1"),
        "model-versions/get-download-uri?name=a&version=1": (200, {"artifact_uri": "models:/a/1"}),
    })
    with pytest.raises(reg.MlflowRegistryError) as info:
        reg.resolve(c, "a", version=1)
    assert str(info.value) == "artifact location models:/a/1: more than 5 models:/ or runs:/ indirections"


def test_unreachable_server():
    c = reg.Client("http://127.0.0.1:9", timeout=2)
    with pytest.raises(reg.MlflowRegistryError) as info:
        c.model_version("churn", 1)
    assert str(info.value).startswith("cannot reach MLflow at http://127.0.0.1:9: ")


def test_bad_url():
    with pytest.raises(reg.MlflowRegistryError) as info:
        reg.Client("mlflow:5000")
    assert str(info.value) == "MLflow URL 'mlflow:5000' must be http(s)://host[:port][/prefix]"


STORE = {"host": "pg.example", "user": "ml@flow", "database": "mlflow", "port": 5432, "sslmode": "verify-full"}


def test_secret_data():
    service = {"backend_store": STORE, "auth": {"admin_user": "boss", "default_permission": "NO_PERMISSIONS"}}
    data = reg.secret_data(service, "p@ss:w/rd%1", {"access_key_id": "AK", "secret_access_key": "SK"},
                           "Admin%pass-123", "flask-key")
    uri = "postgresql+psycopg2://ml%40flow:p%40ss%3Aw%2Frd%251@pg.example:5432/mlflow?sslmode=verify-full"
    assert data == {
        "backend-store-uri": uri,
        "basic_auth.ini": "[mlflow]\ndefault_permission = NO_PERMISSIONS\ndatabase_uri = %s\nadmin_username = boss\n"
                          "admin_password = Admin%%%%pass-123\nauthorization_function = "
                          "mlflow.server.auth:authenticate_request_basic_auth\n" % uri.replace("%", "%%"),
        "AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK", "admin-user": "boss",
        "admin-password": "Admin%pass-123", "flask-secret-key": "flask-key"}


def test_secret_data_ini_reads_back():
    import configparser
    data = reg.secret_data({"backend_store": STORE}, "p%w", {"access_key_id": "A", "secret_access_key": "S"},
                           "Ad%min-pass-12", "k")
    parser = configparser.ConfigParser()
    parser.read_string(data["basic_auth.ini"])
    assert parser["mlflow"]["admin_password"] == "Ad%min-pass-12"
    assert parser["mlflow"]["database_uri"] == data["backend-store-uri"]
    assert parser["mlflow"]["admin_username"] == "gpufleet-admin"


@pytest.mark.parametrize("args,message", [
    (("", {"access_key_id": "A", "secret_access_key": "S"}, "x", "k"),
     "the MLflow database password must be a non-empty string on one line"),
    (("p", {"access_key_id": "A", "secret_access_key": "S"}, "two\nlines", "k"),
     "the MLflow admin password must be a non-empty string on one line"),
    (("p", {"access_key_id": "A"}, "x", "k"),
     "the MLflow artifact store credentials must be a mapping with non-empty access_key_id and secret_access_key"),
])
def test_secret_data_refuses(args, message):
    with pytest.raises(reg.MlflowRegistryError) as info:
        reg.secret_data({"backend_store": STORE}, *args)
    assert str(info.value) == message


def test_plan_service_url_override_and_allowed_hosts():
    plan = reg.plan_service({"enabled": True, "namespace": "ml", "url": "https://mlflow.example.com/",
                             "allowed_hosts": ["ingress.example"], "artifact_store": {"bucket": "b", "path": "p/q"}})
    assert plan["url"] == "https://mlflow.example.com"
    assert plan["service_url"] == "http://mlflow.ml.svc.cluster.local:5000"
    assert plan["artifacts_destination"] == "s3://b/p/q"
    for host in ("mlflow", "mlflow.ml.svc", "mlflow.ml.svc.cluster.local:*", "mlflow.example.com",
                 "mlflow.example.com:*", "ingress.example", "ingress.example:*"):
        assert host in plan["allowed_hosts"]
