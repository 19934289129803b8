"""Registers models in a running MLflow server through MLflow's own client (run with the MLflow virtualenv's
Python by test_mlflow_registry.py; MLFLOW_TRACKING_URI, MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD
come from the environment). Prints one JSON object: what was registered, and where the client put the files."""
import json
import os
import tempfile

import mlflow
from mlflow import MlflowClient


class Echo(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input


def main():
    client = MlflowClient()
    mlflow.set_experiment("gpufleet-registry-test")
    out = {}
    # 1. A logged model (MLflow 3: a LoggedModel, version source models:/m-<id>), registered as version 1.
    with mlflow.start_run() as run:
        info = mlflow.pyfunc.log_model(name="model", python_model=Echo(), registered_model_name="churn")
        out["logged_model_uri"] = info.model_uri
        out["logged_artifact_uri"] = client.get_logged_model(info.model_id).artifact_location
        # 2. Plain run artifacts registered from a runs:/ URI, version 2.
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "weights.txt"), "w") as handle:
                handle.write("not really weights\n")
            mlflow.log_artifacts(tmp, artifact_path="exported")
        out["run_artifact_uri"] = run.info.artifact_uri
    version = client.create_model_version("churn", "runs:/%s/exported" % run.info.run_id, run_id=run.info.run_id)
    out["runs_version"] = version.version
    # 3. A version whose source is already on S3 (registered elsewhere), version 3.
    client.create_model_version("churn", "s3://models-bucket/prebuilt/churn", run_id=None)
    client.set_registered_model_alias("churn", "champion", "1")
    client.set_registered_model_alias("churn", "direct", "3")
    out["versions"] = {v.version: v.source for v in client.search_model_versions("name='churn'")}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
