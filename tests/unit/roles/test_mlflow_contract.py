"""The mlflow role's objects (rendered as Ansible renders them) and the kserve role's registry models: the
Deployment runs the pinned image with basic-auth, the proxied S3 artifacts and every secret by reference; the
Secret holds what the filter computed; a registry model gets its resolved storageUri and the storage
ServiceAccount of the artifact store's credentials. No lab test: the lab does not run this role (docs/mlflow.md)."""
import base64
import copy

import yaml

from ansible_collections.gpufleet.platform.plugins.filter import mlflow as mlflow_filters
from ansible_collections.gpufleet.platform.tests.unit.roles.role_contract import ROOT, render_role_template

SECRETS = {"vault_mlflow_db_password": "Db-password-long-enough-1",
           "vault_mlflow_s3_credentials": {"access_key_id": "AKIAEXAMPLE", "secret_access_key": "S3-secret-9xk2"}}
DATA = {"backend-store-uri": "postgresql+psycopg2://mlflow:Db-pw-1@pg:5432/mlflow?sslmode=require",
        "basic_auth.ini": "[mlflow]\nadmin_password = Generated-admin-pass-1\n", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "S3-secret-9xk2", "admin-user": "gpufleet-admin",
        "admin-password": "Generated-admin-pass-1", "flask-secret-key": "Flask-key-abcdef-42"}


def _config(airgap=False):
    with open(ROOT + "/config.example.yml") as handle:
        config = yaml.safe_load(handle)
    config["services"]["mlflow"] = {
        "enabled": True, "replicas": 2, "allowed_hosts": ["mlflow.example.com"],
        "backend_store": {"host": "pg.example", "user": "mlflow", "password": {"var": "vault_mlflow_db_password"}},
        "artifact_store": {"endpoint": "http://minio.storage:9000", "bucket": "mlflow", "path": "runs",
                           "region": "eu-west-1", "credentials": {"var": "vault_mlflow_s3_credentials"}},
        "auth": {"admin_password": {"generate": True}},
    }
    if airgap:
        config["airgap"] = {"enabled": True, "image_registry": "registry.local:5000/mirror",
                            "chart_mirror": {"type": "local", "location": "/srv/charts"}}
    return config


def _render(template, config):
    return render_role_template("mlflow", template, config, extra=dict(SECRETS, __mlflow_secret_data=DATA))


def test_objects():
    objects = _render("objects.yml.j2", _config())
    assert [(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in objects] == [
        ("ServiceAccount", "mlflow", "mlflow"), ("Deployment", "mlflow", "mlflow"), ("Service", "mlflow", "mlflow")]
    deployment, service = objects[1], objects[2]
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert deployment["spec"]["replicas"] == 2
    assert container["image"] == "docker.io/burakince/mlflow:3.15.1"
    assert container["command"] == ["mlflow", "server"]
    args = container["args"]
    assert args[:6] == ["--host=0.0.0.0", "--port=5000", "--workers=2", "--app-name=basic-auth", "--serve-artifacts",
                        "--artifacts-destination=s3://mlflow/runs"]
    assert args[6].startswith("--allowed-hosts=localhost,") and "mlflow.example.com:*" in args[6]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    ref = {"secretKeyRef": {"name": "mlflow-server", "key": "backend-store-uri"}}
    assert env["MLFLOW_BACKEND_STORE_URI"] == ref
    assert env["MLFLOW_FLASK_SERVER_SECRET_KEY"]["secretKeyRef"]["key"] == "flask-secret-key"
    assert env["AWS_SECRET_ACCESS_KEY"]["secretKeyRef"] == {"name": "mlflow-server", "key": "AWS_SECRET_ACCESS_KEY"}
    assert (env["MLFLOW_S3_ENDPOINT_URL"], env["AWS_DEFAULT_REGION"]) == ("http://minio.storage:9000", "eu-west-1")
    assert env["MLFLOW_AUTH_CONFIG_PATH"] == "/etc/mlflow/auth/basic_auth.ini"
    assert pod["spec"]["volumes"][0]["secret"] == {"secretName": "mlflow-server",
                                                   "items": [{"key": "basic_auth.ini", "path": "basic_auth.ini"}]}
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"] == selector
    assert all(pod["metadata"]["labels"][k] == v for k, v in selector.items())
    text = yaml.safe_dump(objects)
    assert all(str(v) not in text for k, v in DATA.items() if k != "admin-user")  # values only by reference


def test_a_changed_secret_rolls_the_pods():
    config = _config()
    first = _render("objects.yml.j2", config)[1]["spec"]["template"]["metadata"]["annotations"]
    changed = render_role_template("mlflow", "objects.yml.j2", config, extra=dict(
        SECRETS, __mlflow_secret_data=dict(DATA, **{"admin-password": "Another-admin-pass-2"})))
    assert first != changed[1]["spec"]["template"]["metadata"]["annotations"]


def test_airgap_image():
    objects = _render("objects.yml.j2", _config(airgap=True))
    assert objects[1]["spec"]["template"]["spec"]["containers"][0]["image"] == \
        "registry.local:5000/mirror/burakince/mlflow:3.15.1"


def test_secret():
    secret = _render("secret.yml.j2", _config())
    expected = ("Secret", "mlflow", "mlflow-server")
    assert (secret["kind"], secret["metadata"]["namespace"], secret["metadata"]["name"]) == expected
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == DATA


def test_secret_data_filter():
    service = {"backend_store": {"host": "pg", "user": "u", "port": 5432, "database": "d", "sslmode": "disable"},
               "auth": {"admin_user": "a", "default_permission": "READ"}}
    data = mlflow_filters.FilterModule().filters()["mlflow_secret_data"](
        service, "pw", {"access_key_id": "A", "secret_access_key": "S"}, "admin-pass", "key")
    assert data["backend-store-uri"] == "postgresql+psycopg2://u:pw@pg:5432/d?sslmode=disable"


def _kserve_config():
    config = _config()
    config["services"]["kserve"]["enabled"] = True
    model = copy.deepcopy(config["services"]["kserve"]["models"][0])
    model.pop("storage_uri")
    model["registry"] = {"model": "churn", "alias": "champion"}
    config["services"]["kserve"]["models"] = [model]
    return config


def test_kserve_serves_the_resolved_location():
    resolved = {"resolved": [{"path": "services.kserve.models[0].registry", "model": "churn", "version": "4",
                              "storage_uri": "s3://mlflow/runs/1/models/m-1/artifacts"}]}
    objects = render_role_template("kserve", "objects.yml.j2", _kserve_config(),
                                   extra=dict(SECRETS, __kserve_registry=resolved))
    isvc = [o for o in objects if o["kind"] == "InferenceService"][0]
    predictor = isvc["spec"]["predictor"]
    assert predictor["model"]["storageUri"] == "s3://mlflow/runs/1/models/m-1/artifacts"
    assert predictor["serviceAccountName"] == "llama-8b-storage"
    # its Secret's endpoint, region and scheme come from the artifact store (templates/secrets.yml.j2 reads them)
    assert [o["kind"] for o in objects if o["metadata"]["name"] == "llama-8b-storage"] == ["ServiceAccount"]


def test_kserve_registry_requests():
    from ansible_collections.gpufleet.platform.tests.unit.roles.role_contract import role_variables
    from ansible.template import Templar
    from ansible.parsing.dataloader import DataLoader
    from ansible_collections.gpufleet.platform.plugins.module_utils import config_plan
    plan = config_plan.validate(_kserve_config())
    templar = Templar(loader=DataLoader(), variables=role_variables("kserve", plan))
    assert templar.template("{{ _kserve_registry_requests }}") == [
        {"model": "churn", "alias": "champion", "path": "services.kserve.models[0].registry"}]
    assert templar.template("{{ _kserve_models[0].storage_uri }}") in ("", None)  # resolved by tasks/registry.yml
