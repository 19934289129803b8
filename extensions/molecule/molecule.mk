# Molecule: node roles in systemd containers (included by the top Makefile). Scenarios live in
# extensions/molecule/ (molecule's collection layout); extensions/molecule/config.yml is their shared base config,
# which molecule finds there by itself.
#   make docker-up     Docker engine (Debian docker.io) and debootstrap, dockerd started if not running
#   make test-image    the systemd test image, built locally with debootstrap (cached)
#   make molecule      every scenario: create, converge, idempotence, verify, destroy
#   make molecule MOLECULE_SCENARIOS="gpu_node_preinstalled"   one scenario
MOLECULE_SCENARIOS ?= $(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard extensions/molecule/*/molecule.yml))))
MOLECULE_IMAGE ?= gpufleet/debian-systemd:bookworm
DOCKERD_LOG ?= /var/log/gpufleet-dockerd.log
export MOLECULE_IMAGE
# Real nvidia-smi captures come from ../shared (never copied into the repo); without them the shim
# scenarios print the collection's synthetic fixtures and the preinstalled scenario declares their model.
ifeq ($(wildcard $(GPUFLEET_SHARED)/fixtures/nvidia-smi/qx),)
export GPUFLEET_MOLECULE_CONFIG := config-synthetic.yml
endif

.PHONY: docker-up
docker-up: ## Install docker.io + debootstrap if missing; start dockerd (no bridge, no iptables) if not running
	@if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io debootstrap; fi
	@if ! docker info >/dev/null 2>&1; then \
	  echo "starting dockerd (log: $(DOCKERD_LOG))"; \
	  nohup dockerd --bridge=none --iptables=false >>$(DOCKERD_LOG) 2>&1 & \
	  for i in $$(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done; \
	  docker info >/dev/null 2>&1 || { echo "dockerd did not start:"; tail -n 30 $(DOCKERD_LOG); exit 1; }; fi
	@echo "docker: $$(docker version -f '{{.Server.Version}}')"

.PHONY: test-image
test-image: docker-up ## Systemd test image for node roles (debootstrap + docker import, cached)
	tests/images/build-debian-systemd.sh $(MOLECULE_IMAGE)

# A real containerd 2.x (built from the Go module proxy) lets the preinstalled scenario check containerd's own
# merge of config.toml and the drop-in (`containerd config dump`). Optional: the scenario says when it is absent.
CONTAINERD_VERSION ?= v2.2.3
GPUFLEET_CONTAINERD_BIN ?= $(HOME)/.cache/gpufleet/containerd/$(CONTAINERD_VERSION)/containerd
export GPUFLEET_CONTAINERD_BIN

.PHONY: test-containerd
test-containerd: ## containerd $(CONTAINERD_VERSION) for the molecule scenarios, built from the Go module proxy (cached)
	@test -x $(GPUFLEET_CONTAINERD_BIN) && echo "containerd: $(GPUFLEET_CONTAINERD_BIN) (cached)" || { \
	  mkdir -p $(dir $(GPUFLEET_CONTAINERD_BIN)) && \
	  GOBIN=$(dir $(GPUFLEET_CONTAINERD_BIN)) CGO_ENABLED=0 go install -tags no_btrfs \
	    github.com/containerd/containerd/v2/cmd/containerd@$(CONTAINERD_VERSION) && \
	  $(GPUFLEET_CONTAINERD_BIN) --version; }

.PHONY: molecule
molecule: venv test-image ## Molecule scenarios (node roles in systemd containers): create, converge, idempotence, verify, destroy
	@failed=""; start=$$(date +%s); for s in $(MOLECULE_SCENARIOS); do \
	  echo "== molecule $$s"; \
	  PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/molecule test -s $$s || failed="$$failed $$s"; \
	done; echo "== molecule: $(words $(MOLECULE_SCENARIOS)) scenarios in $$(( $$(date +%s) - start ))s"; \
	if [ -n "$$failed" ]; then echo "== molecule FAILED:$$failed"; exit 1; fi

EXTRA_TEST_TARGETS += molecule
