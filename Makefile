# The two commands of the README: `make demo` and `make test`.
# Each first installs what is missing (deploy/bootstrap.sh), then builds with CMake.

BUILD ?= build
JOBS  ?= $(shell nproc 2>/dev/null || echo 2)
DEMO_ARGS ?=

.PHONY: all build compile deps deps-test demo test clean

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

clean:
	rm -rf $(BUILD)
