# ebb's entry points. `make help` lists them.
#
# The Go modules are the ones listed in go.work; every target that builds,
# vets or tests covers all of them. Tools and cluster binaries are built once
# per version into $(EBB_CACHE) (outside the clone) and reused.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -o errexit -o nounset -o pipefail -c
.DEFAULT_GOAL := help

export EBB_CACHE ?= $(or $(EBB_CACHE_DIR),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/ebb)

MODULES     := $(shell go work edit -json | sed -n 's/^[[:space:]]*"DiskPath": "\.\/\(.*\)".*/\1/p')
PACKAGES    := $(addsuffix /...,$(addprefix ./,$(MODULES)))
SERVICES    := operator webhook metrics-apiserver
BIN_DIR     := bin

VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
COMMIT      ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BUILD_DATE  ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
VERSION_PKG := github.com/ebb-autoscaler/ebb/pkg/version
LDFLAGS     := -s -w -X $(VERSION_PKG).gitVersion=$(VERSION) -X $(VERSION_PKG).gitCommit=$(COMMIT) -X $(VERSION_PKG).buildDate=$(BUILD_DATE)

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the three services into bin/
	@mkdir -p $(BIN_DIR)
	@for svc in $(SERVICES); do \
		echo ">> building bin/ebb-$$svc"; \
		go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN_DIR)/ebb-$$svc ./services/$$svc; \
	done

.PHONY: test
test: ## Run every test (unit, integration, e2e) across all modules
	@hack/test.sh $(PACKAGES)

.PHONY: e2e
e2e: ## Run only the end-to-end tests (the e2e module)
	@hack/test.sh ./e2e/...

.PHONY: verify
verify: ## Check generated code, protos, charts, dependency drift, gofmt, go vet, staticcheck, standalone builds
	@hack/verify-gofmt.sh
	@echo ">> go vet"; go vet $(PACKAGES)
	@hack/verify-build.sh
	@hack/verify-deps.sh
	@hack/verify-codegen.sh
	@hack/verify-proto.sh
	@hack/verify-charts.sh
	@hack/verify-staticcheck.sh $(PACKAGES)

.PHONY: generate
generate: ## Regenerate deepcopy, clients, CRDs and protos
	@hack/update-codegen.sh
	@hack/update-proto.sh

.PHONY: bench
bench: ## Run the benchmarks on the local cluster and write docs/benchmarks.md
	@hack/bench.sh

.PHONY: up
up: ## Start a local cluster with the three services (installed by their Helm charts) and a demo
	@hack/up.sh

.PHONY: cluster
cluster: ## Start the local control plane and cert-manager in the background (kubeconfig: .ebb/kubeconfig)
	@go build -o $(BIN_DIR)/ebb-cluster ./e2e/cmd/ebb-cluster
	@$(BIN_DIR)/ebb-cluster up --detach --state-dir .ebb

.PHONY: down
down: ## Stop the local cluster (make cluster / make up) and remove its state
	@go build -o $(BIN_DIR)/ebb-cluster ./e2e/cmd/ebb-cluster
	@$(BIN_DIR)/ebb-cluster down --state-dir .ebb

.PHONY: clean
clean: ## Remove build output (the tool cache in $(EBB_CACHE) is kept)
	rm -rf $(BIN_DIR) _output
