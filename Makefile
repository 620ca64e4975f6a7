# agent-platform: every command a developer, CI or a user needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STACK ?= local
# The workflow linter, built from the Go module proxy (Renovate reads this line).
ACTIONLINT_VERSION := v1.7.12
ACTIONLINT := $(BIN)/actionlint
# The local stack keeps state in the file backend; its secrets need a passphrase. Set your own
# in the environment; the default only protects throwaway local state.
export PULUMI_CONFIG_PASSPHRASE ?= local-only-passphrase
# System packages some targets need, from Debian's apt: prometheus (promtool and the server, for
# the monitoring tests) and wrk (bench-app). sudo only when not already root.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_INSTALL := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends
# up, preview and destroy say what to install instead of failing with "command not found".
REQUIRE_PULUMI = command -v pulumi >/dev/null || { echo "make $@ needs the Pulumi CLI: https://www.pulumi.com/docs/install/"; exit 1; }
define apt_install
	{ $(APT_INSTALL) $(1) >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(APT_INSTALL) $(1) >/dev/null; }; }
endef

.PHONY: help venv test lint pytest dev cost cost-prices vendor-rollouts vendor-edge-crds bench-app bench-restore policy bench-program config-docs up preview destroy clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt app/requirements.txt app/pyproject.toml tests/crd_schemas/package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	# The service itself, editable: puts `venv/bin/agent-service` on the path.
	$(BIN)/python -m pip install --quiet --no-deps -e app
	@command -v npm >/dev/null || { echo "npm (Node.js 18+) is needed for the CRD schema tests"; exit 1; }
	npm ci --prefix tests/crd_schemas --no-audit --no-fund --loglevel=error
	@command -v promtool >/dev/null && command -v prometheus >/dev/null && command -v amtool >/dev/null || $(call apt_install,prometheus prometheus-alertmanager) || { echo "the monitoring tests need promtool, prometheus and amtool: apt-get install prometheus prometheus-alertmanager"; exit 1; }
	touch $@

venv: $(STAMP) $(ACTIONLINT) ## Create ./venv (the one Pulumi.yaml names) with every dependency

# Rebuilt when the Makefile (its pinned version) changes; Go's build cache makes that quick.
$(ACTIONLINT): Makefile | $(STAMP)
	@command -v go >/dev/null || { echo "Go is needed to build actionlint: https://go.dev/dl/"; exit 1; }
	GOBIN=$(abspath $(BIN)) go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)
	touch $@

lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/mypy __main__.py components cost tests benchmarks app/agent_service app/devtools
	$(BIN)/mypy app/tests
	$(BIN)/mypy policies/__main__.py

pytest: $(STAMP) $(ACTIONLINT) ## The test suite alone
	$(BIN)/python -m pytest

test: lint pytest ## Install everything, lint, run the whole test suite (what CI runs)

dev: $(STAMP) ## Run the service locally: real Postgres + Redis, API on :8000, one worker
	PYTHONPATH=app $(BIN)/python app/devtools/dev.py

bench-app: $(STAMP) ## Benchmark the API and end-to-end runs against real servers (JSON)
	@command -v wrk >/dev/null || $(call apt_install,wrk) || { echo "bench-app needs wrk: apt-get install wrk"; exit 1; }
	PYTHONPATH=app:app/tests $(BIN)/python benchmarks/bench_app.py

policy: $(STAMP) ## Run the policy pack offline over every stack and print stack x rule
	$(BIN)/python tests/policy_runner.py

ROLLOUTS_VERSION := $(shell sed -n 's/^ROLLOUTS_VERSION = "\(.*\)"/\1/p' components/kubernetes/rollouts_controller.py)
ROLLOUTS_MODULE := github.com/argoproj/argo-rollouts@$(ROLLOUTS_VERSION)

vendor-rollouts: ## Vendor the CRDs and ClusterRole of ROLLOUTS_VERSION (run after a Renovate bump)
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && \
	curl -sSfL -o $$tmp/module.zip https://proxy.golang.org/github.com/argoproj/argo-rollouts/@v/$(ROLLOUTS_VERSION).zip && \
	unzip -q $$tmp/module.zip '$(ROLLOUTS_MODULE)/manifests/*' -d $$tmp && \
	rm -rf components/kubernetes/rollouts_crds tests/crd_schemas/argo-rollouts && \
	mkdir -p components/kubernetes/rollouts_crds/$(ROLLOUTS_VERSION) tests/crd_schemas/argo-rollouts/$(ROLLOUTS_VERSION) && \
	cp $$tmp/$(ROLLOUTS_MODULE)/manifests/crds/*-crd.yaml components/kubernetes/rollouts_crds/$(ROLLOUTS_VERSION)/ && \
	cp $$tmp/$(ROLLOUTS_MODULE)/manifests/role/argo-rollouts-clusterrole.yaml tests/crd_schemas/argo-rollouts/$(ROLLOUTS_VERSION)/

EDGE_MODULE := components/aws/load_balancer_controller.py
ALB_CONTROLLER_VERSION := $(shell sed -n 's/^ALB_CONTROLLER_CHART = ."aws-load-balancer-controller", "\([0-9.]*\)",.*/\1/p' $(EDGE_MODULE))
ALB_CONTROLLER_MODULE := $(shell sed -n 's/^ALB_CONTROLLER_MODULE = "\(.*\)"/\1/p' $(EDGE_MODULE))
GATEWAY_API_VERSION := $(shell sed -n 's/^GATEWAY_API_VERSION = "\(.*\)"/\1/p' $(EDGE_MODULE))

vendor-edge-crds: ## Vendor the load balancer controller's CRDs and IAM policy and the Gateway API's CRDs (after a bump)
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && \
	curl -sSfL -o $$tmp/lbc.zip https://proxy.golang.org/sigs.k8s.io/aws-load-balancer-controller/@v/$(ALB_CONTROLLER_MODULE).zip && \
	curl -sSfL -o $$tmp/gw.zip https://proxy.golang.org/sigs.k8s.io/gateway-api/@v/$(GATEWAY_API_VERSION).zip && \
	unzip -q $$tmp/lbc.zip '*/helm/aws-load-balancer-controller/*' '*/docs/install/iam_policy.json' -d $$tmp && \
	unzip -q $$tmp/gw.zip '*/config/crd/standard/*' -d $$tmp && \
	grep -q '^version: $(ALB_CONTROLLER_VERSION)$$' $$tmp/sigs.k8s.io/aws-load-balancer-controller@*/helm/aws-load-balancer-controller/Chart.yaml || { echo "ALB_CONTROLLER_MODULE is not the chart $(ALB_CONTROLLER_VERSION) commit"; exit 1; } && \
	rm -rf components/aws/crds tests/crd_schemas/aws-load-balancer-controller && \
	mkdir -p components/aws/crds/aws-load-balancer-controller-$(ALB_CONTROLLER_VERSION) components/aws/crds/gateway-api-$(GATEWAY_API_VERSION) tests/crd_schemas/aws-load-balancer-controller/$(ALB_CONTROLLER_VERSION) && \
	cp $$tmp/sigs.k8s.io/aws-load-balancer-controller@*/docs/install/iam_policy.json tests/crd_schemas/aws-load-balancer-controller/$(ALB_CONTROLLER_VERSION)/ && \
	cp $$tmp/sigs.k8s.io/aws-load-balancer-controller@*/helm/aws-load-balancer-controller/crds/*.yaml components/aws/crds/aws-load-balancer-controller-$(ALB_CONTROLLER_VERSION)/ && \
	rm components/aws/crds/aws-load-balancer-controller-$(ALB_CONTROLLER_VERSION)/kustomization.yaml && \
	cp $$tmp/sigs.k8s.io/gateway-api@*/config/crd/standard/*.yaml components/aws/crds/gateway-api-$(GATEWAY_API_VERSION)/

config-docs: $(STAMP) ## Regenerate Pulumi.yaml's config block and docs/configuration.md from components/config/keys.py
	$(BIN)/python -m components.config.reference

cost: $(STAMP) ## Monthly cost estimate of STACK (default: dev and prod), table; JSON=1 for JSON
	$(BIN)/python -m cost $(if $(STACK),--stack $(STACK)) $(if $(JSON),--json)

cost-prices: $(STAMP) ## Refresh policies/aws_prices.json from the AWS Price List API (needs AWS credentials)
	$(BIN)/python -m cost.prices $(if $(REGION),--region $(REGION))

bench-restore: $(STAMP) ## Back up and restore a 100k-run database against a real Postgres (JSON)
	PYTHONPATH=app $(BIN)/python benchmarks/bench_restore.py

bench-program: $(STAMP) ## Time the program's evaluation of every stack (JSON)
	$(BIN)/python benchmarks/bench_program.py

up: $(STAMP) ## Deploy the local stack to the current kubeconfig context
	@$(REQUIRE_PULUMI)
	@pulumi whoami >/dev/null 2>&1 || pulumi login --local
	pulumi stack select --create $(STACK) --secrets-provider passphrase
	pulumi up --stack $(STACK) --yes

preview: $(STAMP) ## Preview STACK (default local) with a diff
	@$(REQUIRE_PULUMI)
	pulumi preview --stack $(STACK) --diff

destroy: ## Tear down STACK (default local); stateful resources need protectState false first
	@$(REQUIRE_PULUMI)
	pulumi destroy --stack $(STACK) --yes

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
