# The two commands of the README: `make demo` and `make test`.
# Each first installs what is missing (deploy/bootstrap.sh), then builds with CMake.
# `make test` runs the default build's whole suite, then the other build
# configurations CI checks (tests/ci/configs.sh: Release and clang with their
# unit tests, ASan+UBSan with unit and integration tests; tests/ci/README.md).
# `make test-configs CONFIGS="clang"` runs only those.

BUILD ?= build
JOBS  ?= $(shell nproc 2>/dev/null || echo 2)
DEMO_ARGS ?=
CONFIGS ?= release clang asan

.PHONY: all build compile deps deps-test demo test test-configs clean

all: build

deps:
	@./deploy/bootstrap.sh build

deps-test:
	@./deploy/bootstrap.sh test

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

compile: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

build: deps
	@$(MAKE) --no-print-directory compile

demo: build
	./$(BUILD)/bin/empq demo $(DEMO_ARGS)

test: deps deps-test
	@$(MAKE) --no-print-directory compile
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	JOBS=$(JOBS) ./tests/ci/configs.sh $(CONFIGS)

test-configs: deps deps-test
	JOBS=$(JOBS) ./tests/ci/configs.sh $(CONFIGS)

clean:
	rm -rf $(BUILD) build-release build-clang build-asan
