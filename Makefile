# Galley: the two commands are `make run` and `make test`; everything else is a step of theirs.
SHELL := /bin/bash
JOBS ?= $(shell nproc)
PYTEST := .venv/bin/python -m pytest
# ccache hits across checkouts in different folders (a CI clone, a second work tree).
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

.PHONY: deps build build-asan build-fuzz kube-plane collector run test unit integration fuzz bench clean format image

deps:
	@scripts/deps.sh

build: deps
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j $(JOBS)

build-asan: deps
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan -j $(JOBS)

build-fuzz: deps
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz -j $(JOBS) --target http_request_fuzzer infer_json_fuzzer upstream_response_fuzzer

# The Kubernetes control plane the Kubernetes tests run against (kube-apiserver, etcd,
# kube-controller-manager, KWOK), built from Go modules; only `make test` needs it.
kube-plane: deps
	@scripts/fetch_kube.sh
	@scripts/fetch_kubectl.sh

# The trace collector the tracing tests export to (Jaeger, built from Go modules); only
# `make test` needs it.
collector: deps
	@scripts/fetch_jaeger.sh

# The main job: the local stack (`galley up`): the gateway on 127.0.0.1:8080 in front of model
# replicas run as child processes, with the default model. `make run CHAT=1`: the same stack with
# the chat models and pipeline (POST /v1/chat) and a Redis for the conversations
# (scripts/run_chat.sh).
run: build
ifeq ($(CHAT),1)
	exec scripts/run_chat.sh
else
	exec ./build/release/galley up --listen $${GALLEY_LISTEN:-127.0.0.1:8080} --grpc-port $${GALLEY_GRPC_PORT:-8081}
endif

# Every test: unit tests (release and ASan+UBSan), integration tests against both binaries,
# and a short bounded fuzzing run.
test: build build-asan build-fuzz kube-plane collector
	@scripts/test.sh

# The container image (localhost/galley:dev and build/image/galley-oci.tar), no daemon needed.
image: build
	@scripts/image.sh build

bench: build
	@bench/serve/run.sh

format:
	@clang-format -i $$(scripts/cpp_files.sh)

clean:
	rm -rf build
