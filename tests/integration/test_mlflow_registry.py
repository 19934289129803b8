"""KServe models from the MLflow registry, against a real MLflow server (no mock).

The test starts `mlflow server` (the PyPI release pinned in tests/integration/mlflow/requirements.txt, installed in
.build/mlflow-venv by `make integration`) on 127.0.0.1 with a SQLite backend store, a local artifacts destination
and MLflow's basic-auth app on, registers models through MLflow's own client (tests/integration/mlflow/register.py:
a logged pyfunc model, run artifacts registered from runs:/, a version already on S3, two aliases), then runs the
kserve role's registry resolution through real ansible-playbook processes (playbooks/validate.yml, then the role's
preflight) and checks the storageUri of every InferenceService it computes, and that a missing model, version or
alias fails naming services.kserve.models[i].registry before any object is computed, with the password never shown.
"""
import base64
import copy
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import yaml
from ansible_runs import ROOT, run

MLFLOW_VENV = os.path.join(ROOT, ".build", "mlflow-venv")
MLFLOW = os.path.join(MLFLOW_VENV, "bin", "mlflow")
PASSWORD = "Gf-registry-test-7Qm2xT9v"  # noqa: S105 - a throwaway password of the test's own server
DB_PASSWORD = "Gf-db-test-unused-4kLp0s"  # noqa: S105 - rendered into nothing here (no database is contacted)
DESTINATION = "s3://mlflow-bucket/artifacts"
pytestmark = pytest.mark.skipif(not os.path.exists(MLFLOW), reason="no MLflow server here: `make integration` "
                                "installs it into .build/mlflow-venv (tests/integration/mlflow/requirements.txt)")


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url):
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real MLflow tracking server with basic auth, and what register.py registered in it."""
    tmp = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    url = "http://127.0.0.1:%d" % port
    (tmp / "auth.ini").write_text(
        "[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///%s\nadmin_username = gpufleet-admin\n"
        "admin_password = %s\nauthorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        % (tmp / "auth.db", PASSWORD))
    env = dict(os.environ, MLFLOW_AUTH_CONFIG_PATH=str(tmp / "auth.ini"),
               MLFLOW_FLASK_SERVER_SECRET_KEY="gpufleet-test-flask-key")
    log = open(tmp / "server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(  # noqa: S603
        [MLFLOW, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", "sqlite:///%s" % (tmp / "mlflow.db"), "--serve-artifacts",
         "--artifacts-destination", str(tmp / "artifacts"), "--app-name", "basic-auth",
         # the form the mlflow role passes (module_utils/mlflow_registry.py plan_service): names and name:* patterns
         "--allowed-hosts", "localhost,localhost:*,127.0.0.1,127.0.0.1:*,mlflow.mlflow.svc.cluster.local:*"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        started = time.monotonic()
        while not _healthy(url):
            if proc.poll() is not None or time.monotonic() - started > 180:
                pytest.fail("mlflow server did not start: %s" % (tmp / "server.log").read_text()[-3000:])
            time.sleep(0.5)
        registered = subprocess.run(  # noqa: S603
            [os.path.join(MLFLOW_VENV, "bin", "python"), os.path.join(ROOT, "tests", "integration", "mlflow",
                                                                       "register.py")],
            env=dict(os.environ, MLFLOW_TRACKING_URI=url, MLFLOW_TRACKING_USERNAME="gpufleet-admin",
                     MLFLOW_TRACKING_PASSWORD=PASSWORD), capture_output=True, text=True, timeout=300, check=False)
        assert registered.returncode == 0, registered.stderr[-3000:]
        info = json.loads(registered.stdout.strip().splitlines()[-1])
        yield {"url": url, "artifacts": tmp / "artifacts", "tmp": tmp, "startup_s": time.monotonic() - started,
               **info}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its workers: the session this test started
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


MODEL = {"name": "churn", "namespace": "serving", "pool": "l40s", "gpu_resource": "nvidia.com/gpu", "gpus": 1,
         "tensor_parallel_size": 1, "min_replicas": 1, "max_replicas": 1}


def _config(server, registries):
    with open(os.path.join(ROOT, "config.example.yml")) as handle:
        config = yaml.safe_load(handle)
    services = config["services"]
    services["cert_manager"]["enabled"] = True
    services["kserve"]["enabled"] = True
    services["kserve"]["models"] = [dict(copy.deepcopy(MODEL), name="m%d" % i, registry=registry)
                                    for i, registry in enumerate(registries)]
    services["mlflow"] = {
        "enabled": True, "url": server["url"],
        "backend_store": {"host": "postgres.example.internal", "user": "mlflow",
                          "password": {"var": "vault_mlflow_db_password"}},
        "artifact_store": {"endpoint": "http://minio.example.internal:9000", "bucket": "mlflow-bucket",
                           "path": "artifacts", "credentials": {"var": "vault_mlflow_s3_credentials"}},
        "auth": {"admin_password": {"var": "vault_mlflow_admin_password"}},
    }
    return config


def _play(server, tmp_path, registries, *extra):
    """validate.yml, then the kserve role's preflight (registry resolution, then the objects it would apply)."""
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump(_config(server, registries), sort_keys=False))
    secrets = tmp_path / "vault.yml"
    secrets.write_text(yaml.safe_dump({
        "vault_mlflow_db_password": DB_PASSWORD, "vault_mlflow_admin_password": PASSWORD,
        "vault_grafana_admin_password": "Gf-grafana-test-8Jd3kW1",
        "vault_mlflow_s3_credentials": {"access_key_id": "gpufleet-test", "secret_access_key": "Gf-s3-test-2Vb8nR5"},
    }))
    playbook = tmp_path / "resolve.yml"
    playbook.write_text(yaml.safe_dump([
        {"name": "Validate", "ansible.builtin.import_playbook": os.path.join(ROOT, "playbooks", "validate.yml")},
        {"name": "Resolve", "hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": [
            {"name": "KServe preflight", "ansible.builtin.include_role": {"name": "gpufleet.platform.kserve",
                                                                          "tasks_from": "preflight.yml"}},
            {"name": "Storage URIs", "check_mode": False, "ansible.builtin.copy": {
                "dest": str(tmp_path / "uris.json"), "mode": "0600",
                "content": "{{ __kserve_objects | selectattr('kind', 'equalto', 'InferenceService') "
                           "| map(attribute='spec.predictor.model.storageUri') | to_json }}"}},
        ]},
    ], sort_keys=False))
    started = time.monotonic()
    result = run("ansible-playbook", "-i", str(config), "-e", "@%s" % secrets, str(playbook), *extra)
    result.elapsed = time.monotonic() - started
    return result


def _uris(tmp_path):
    return json.loads((tmp_path / "uris.json").read_text())


def test_registry_models_resolve_to_their_artifacts(server, tmp_path):
    logged = server["logged_artifact_uri"]  # mlflow-artifacts:/<experiment>/models/m-<id>/artifacts
    assert logged.startswith("mlflow-artifacts:/") and server["logged_model_uri"].startswith("models:/m-")
    assert server["versions"]["1"] == server["logged_model_uri"]  # MLflow 3 registers a LoggedModel by models:/
    assert server["versions"]["2"].startswith("runs:/")
    result = _play(server, tmp_path, [{"model": "churn", "version": 1}, {"model": "churn", "alias": "champion"},
                                      {"model": "churn", "version": 2}, {"model": "churn", "alias": "direct"}])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    uris = _uris(tmp_path)
    relative = logged[len("mlflow-artifacts:/"):]
    runs = server["run_artifact_uri"][len("mlflow-artifacts:/"):] + "/exported"
    assert uris == [DESTINATION + "/" + relative, DESTINATION + "/" + relative, DESTINATION + "/" + runs,
                    "s3://models-bucket/prebuilt/churn"]
    # the mapping is right: the files MLflow wrote are at that path under its artifacts destination
    assert (server["artifacts"] / relative / "MLmodel").is_file()
    assert (server["artifacts"] / runs / "weights.txt").is_file()
    assert PASSWORD not in result.stdout + result.stderr
    print("mlflow server up in %.1f s; resolution run %.1f s" % (server["startup_s"], result.elapsed))


def test_check_mode_resolves_the_same(server, tmp_path):
    result = _play(server, tmp_path, [{"model": "churn", "alias": "champion"}], "--check")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert _uris(tmp_path) == [DESTINATION + "/" + server["logged_artifact_uri"][len("mlflow-artifacts:/"):]]


def test_missing_model_version_or_alias_fails_before_any_object(server, tmp_path):
    result = _play(server, tmp_path, [{"model": "churn", "version": 1}, {"model": "no-such-model", "version": 1},
                                      {"model": "churn", "version": 42}, {"model": "churn", "alias": "nope"}],
                   "-vvv")
    out = result.stdout + result.stderr
    flat = " ".join(out.split())  # the callback wraps long messages
    assert result.returncode != 0
    url = server["url"]
    assert ("MLflow registry: 3 model versions could not be resolved: "
            "services.kserve.models[1].registry: registered model no-such-model version 1 not found in MLflow at %s "
            "(got {model: no-such-model, version: 1}); "
            "services.kserve.models[2].registry: registered model churn version 42 not found in MLflow at %s "
            "(got {model: churn, version: 42}); "
            "services.kserve.models[3].registry: registered model churn alias nope not found in MLflow at %s "
            "(got {model: churn, alias: nope})" % (url, url, url)) in flat, out[-5000:]
    assert "Compute the runtime, ServiceAccounts" not in out  # nothing computed, so nothing could be written
    assert not (tmp_path / "uris.json").exists()
    assert PASSWORD not in out


def _status(url, host):
    request = urllib.request.Request(url + "/api/2.0/mlflow/registered-models/get?name=churn", headers={
        "Host": host, "Authorization": "Basic " + base64.b64encode(("gpufleet-admin:" + PASSWORD).encode()).decode()})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the test's own server
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_allowed_hosts_in_the_roles_form(server):
    assert _status(server["url"], "mlflow.mlflow.svc.cluster.local:5000") == 200
    assert _status(server["url"], "attacker.example:5000") == 403  # MLflow's DNS rebinding protection


def test_wrong_password_is_refused_without_showing_it(server, tmp_path):
    playbook = tmp_path / "direct.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "connection": "local", "gather_facts": False,
                                         "tasks": [{"gpufleet.platform.mlflow_model_version": {
                                             "url": server["url"], "username": "gpufleet-admin",
                                             "password": "Wrong-password-3Hx8", "requests": [
                                                 {"path": "services.kserve.models[0].registry", "model": "churn",
                                                  "version": 1}]}}]}]))
    result = run("ansible-playbook", "-i", "localhost,", "-e", "ansible_python_interpreter=" + sys.executable,
                 str(playbook), "-vvv")
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert ("services.kserve.models[0].registry: MLflow at %s refused the credentials (HTTP 401); check the admin "
            "user and password (got {model: churn, version: 1})" % server["url"]) in " ".join(out.split()), out[-5000:]
    assert "Wrong-password-3Hx8" not in out
