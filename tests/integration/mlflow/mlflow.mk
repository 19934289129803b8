# The MLflow server and client of tests/integration/test_mlflow_registry.py, in a virtualenv of their own (MLflow's
# dependencies stay out of the Ansible tooling's). `make integration` builds it; about 95 s on 2 cores the first
# time (pip, mlflow[auth]==3.15.1 and its dependencies), nothing after.
MLFLOW_VENV := .build/mlflow-venv

$(MLFLOW_VENV)/.installed: tests/integration/mlflow/requirements.txt
	test -x $(MLFLOW_VENV)/bin/python || $(PYTHON) -m venv $(MLFLOW_VENV)
	$(MLFLOW_VENV)/bin/pip install -q -r tests/integration/mlflow/requirements.txt
	touch $@

.PHONY: mlflow-venv
mlflow-venv: $(MLFLOW_VENV)/.installed ## Virtualenv with the MLflow server the registry integration test starts

integration: $(MLFLOW_VENV)/.installed
