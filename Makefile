# Developer entry points. CI runs .ci/run, which runs hack/test.sh.
TOOLS := $(shell hack/tools.sh)
CONTROLLER_GEN := $(TOOLS)/controller-gen
IMG ?= ghcr.io/sluice-dev/sluice-manager:dev
ENGINE_IMG ?= ghcr.io/sluice-dev/sluice-engine:dev

.PHONY: all build test generate manifests deploy undeploy images docker-build

all: generate build

build:
	go build -o bin/engine ./cmd/engine
	go build -o bin/manager ./cmd/manager

test:
	hack/test.sh

## generate: deep-copy functions of the API types.
generate:
	$(CONTROLLER_GEN) object paths=./api/...

## manifests: the CRD, the RBAC role and the webhook configuration from the
## kubebuilder markers, and their copies in the Helm chart.
manifests:
	$(CONTROLLER_GEN) crd:allowDangerousTypes=true rbac:roleName=manager-role webhook paths=./api/... paths=./controllers/... paths=./internal/... \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac \
		output:webhook:artifacts:config=config/webhook
	cp config/crd/bases/streaming.sluice.dev_streamqueries.yaml charts/sluice/crds/
	sed -n '/^rules:$$/,$$p' config/rbac/role.yaml | tail -n +2 > charts/sluice/files/rules.yaml

## deploy: the CRD, RBAC and the manager, through kustomize, with the
## manager image IMG and the engine image ENGINE_IMG.
deploy: manifests
	kubectl kustomize config/default \
		| sed -e 's#image: ghcr.io/sluice-dev/sluice-manager:dev#image: $(IMG)#' \
		      -e 's#--engine-image=ghcr.io/sluice-dev/sluice-engine:dev#--engine-image=$(ENGINE_IMG)#' \
		| kubectl apply -f -

undeploy:
	kubectl delete -k config/default

## images: the engine, manager and pause images as archives, without Docker
## (hack/images.sh; the tested path).
images:
	hack/images.sh

docker-build:
	docker build -f Dockerfile.manager -t $(IMG) .
	docker build -f Dockerfile.engine -t $(ENGINE_IMG) .
