# mcpg — one entry point for building, running and testing. See README.md.
SWIFT ?= swift
DIST ?= dist
RELEASE_SCRATCH ?= .build-release
PLUGINS := apikey anonymous oidc mtls spiffe rules cedar casbin opa redact mock mcp http openapi graphql pipeline command sql jsonl prometheus otel syslog webhook postgres
PY ?= python3
VENV ?= .venv

.PHONY: build plugins run test test-unit test-differential test-blackbox bench bench-policy bench-identity bench-ledger bench-backends clean deps docs

## build: release `mcpg` (static Swift runtime) and every plugin (static-stdlib .so), signed with a local dev key.
build:
	MCPG_STATIC_PLUGINS=1 $(SWIFT) build -c release --static-swift-stdlib --scratch-path $(RELEASE_SCRATCH) \
		--product mcpg
	for p in $(PLUGINS); do \
		MCPG_STATIC_PLUGINS=1 $(SWIFT) build -c release --static-swift-stdlib --scratch-path $(RELEASE_SCRATCH) \
			--product $$p || exit 1; \
	done
	mkdir -p $(DIST)/bin $(DIST)/lib/mcpg/plugins $(DIST)/keys
	strip -o $(DIST)/bin/mcpg $(RELEASE_SCRATCH)/release/mcpg
	$(MAKE) --no-print-directory plugins

## plugins: copy, strip and sign the plugins with the development key (made once under dist/keys).
plugins:
	test -f $(DIST)/keys/dev-plugin.key || $(DIST)/bin/mcpg plugin keygen --out $(DIST)/keys/dev-plugin
	test -f $(DIST)/keys/audit.key || $(DIST)/bin/mcpg plugin keygen --out $(DIST)/keys/audit
	for p in $(PLUGINS); do \
		strip --strip-unneeded -o $(DIST)/lib/mcpg/plugins/$$p.so $(RELEASE_SCRATCH)/release/lib$$p.so || exit 1; \
		$(DIST)/bin/mcpg plugin sign $(DIST)/lib/mcpg/plugins/$$p.so --key $(DIST)/keys/dev-plugin.key || exit 1; \
	done

## run: build if needed, then serve the quickstart on 127.0.0.1:8080.
run:
	test -x $(DIST)/bin/mcpg -a -f $(DIST)/lib/mcpg/plugins/mock.so.minisig || $(MAKE) --no-print-directory build
	$(DIST)/bin/mcpg serve --config examples/quickstart/mcpg.yaml

## test: unit tests, then the release build, then black-box tests against the built binary.
test: test-unit test-differential build test-blackbox

# The venv first: OPAClientTests start an OPA-compatible server on the reference Rego engine from it.
test-unit: $(VENV)/.installed
	$(SWIFT) build --build-tests
	Tests/run-unit --limit 900 -- $(SWIFT) test --skip-build

## test-differential: mcpg's Cedar, Casbin and Rego engines decide the same as the reference engines.
test-differential: $(VENV)/.installed
	MCPG_EVAL_DIR=$(abspath .build/debug) $(VENV)/bin/pytest -q Tests/Differential

$(VENV)/.installed: Tests/Blackbox/requirements.txt
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r Tests/Blackbox/requirements.txt
	touch $@

## test-blackbox: a plugin from a separate package loads into the release mcpg; then the real-client suite.
test-blackbox: $(VENV)/.installed
	examples/custom-plugin/check.sh
	MCPG_DIST=$(abspath $(DIST)) $(VENV)/bin/pytest -q Tests/Blackbox

## docs: regenerate docs/config.md from the live schema.
docs:
	$(DIST)/bin/mcpg config reference > docs/config.md

## bench: throughput against a bare-NIO ceiling and Python MCP gateways (pinned, in bench/.venv-peers), latency,
## boot and ABI cost, printed as ratios against baselines measured in the same run.
bench: build $(VENV)/.installed
	bench/run --dist $(DIST) --venv $(VENV)

## bench-policy: tools/list over 10,000 tools and tools/call per policy engine, as ratios against allow-all.
bench-policy: build
	bench/policy

## bench-ledger: tools/call with the ledger off, sync and batch(5ms), as ratios; records/s of the ledger alone.
bench-ledger: build
	bench/ledger

## bench-backends: tools/call through the `http` and `sql` backends against calling the same server directly, as ratios.
bench-backends: build
	bench/backends

## bench-identity: per-request cost of JWT validation (cached JWKS) and TLS handshakes, as ratios against API keys.
bench-identity: build $(VENV)/.installed
	$(VENV)/bin/python bench/identity

clean:
	rm -rf $(DIST) $(RELEASE_SCRATCH) .build $(VENV)
