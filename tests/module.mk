# Tests: criterion unit tests per module (tests/unit/test_<module>.c) and
# integration tests that start a real readoutd (tests/integration/).
# Each test_*.c is its own criterion binary.
TEST_CPPFLAGS := -Itests -DRDO_BIN_DIR='"$(abspath $(BIN))"' -DRDO_SOURCE_DIR='"$(CURDIR)"'
UNIT_TESTS := $(patsubst tests/unit/%.c,$(BIN)/tests/unit_%,$(wildcard tests/unit/test_*.c))
INTEGRATION_TESTS := $(patsubst tests/integration/%.c,$(BIN)/tests/integration_%, \
	$(wildcard tests/integration/test_*.c))
HARNESS_OBJ := $(OBJ)/tests/harness.o

$(OBJ)/tests/%.o: tests/%.c | deps $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(TEST_CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

# The concurrent scenarios the ring and pool unit tests share with the stress programs.
SCENARIO_OBJ := $(OBJ)/tests/stress/scenario.o

# Objects before libraries, whatever rule added them, so every archive member they need is found.
LINK_INPUTS = $(filter %.o,$^) $(filter %.a,$^)

$(BIN)/tests/unit_%: $(OBJ)/tests/unit/%.o $(SERVER_LIB) $(CLIENT_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(LINK_INPUTS) $(LDLIBS) -lcriterion

$(BIN)/tests/unit_test_ring $(BIN)/tests/unit_test_pool: $(SCENARIO_OBJ)

# readout-writer's config is a tool's own module, in no library.
$(BIN)/tests/unit_test_writer_config: $(OBJ)/clients/tools/writer_config.o

# The tools' shared command line is linked into each tool, not into a library.
$(BIN)/tests/unit_test_cli: $(OBJ)/clients/tools/cli.o

$(BIN)/tests/integration_%: $(OBJ)/tests/integration/%.o $(HARNESS_OBJ) $(CLIENT_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcriterion

TESTS := $(UNIT_TESTS) $(INTEGRATION_TESTS)

# Stress programs (tests/stress/stress_*.c): plain programs, since criterion
# crashes under ThreadSanitizer, that run a module's concurrent scenario hard
# for a few seconds and abort naming the failed check. make test runs them
# as built; make tsan also runs their TSan builds.
STRESS_TESTS := $(patsubst tests/stress/%.c,$(BIN)/tests/%,$(wildcard tests/stress/stress_*.c))

$(BIN)/tests/stress_%: $(OBJ)/tests/stress/stress_%.o $(SCENARIO_OBJ) $(SERVER_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(LINK_INPUTS) $(LDLIBS)

.SECONDARY: $(STRESS_TESTS:$(BIN)/tests/%=$(OBJ)/tests/stress/%.o)
.PHONY: stress
stress: $(STRESS_TESTS)
	@for t in $(STRESS_TESTS); do echo "== $$t"; $$t || exit 1; done

# Criterion forks a process per test; -j1 keeps two cores free for the
# daemons the integration tests start.
CRITERION_FLAGS ?= --jobs 1
# The readoutd and readoutctl the integration tests run (make tsan swaps them).
TEST_DAEMON_DIR ?= $(abspath $(BIN))
# The layering check (tests/layers, tests/check-layers) first: it reads the
# sources only; then its own tests, with Debian's pytest.
PYTEST ?= pytest-3
test: binaries $(TESTS) $(STRESS_TESTS)
	@fail=0; echo "== tests/check-layers"; tests/check-layers || fail=1; \
	echo "== tests/test_check_layers.py"; $(PYTEST) -q -p no:cacheprovider tests/test_check_layers.py || fail=1; \
	for t in $(TESTS); do \
		echo "== $$t"; \
		RDO_BIN_DIR=$(TEST_DAEMON_DIR) $$t $(CRITERION_FLAGS) || fail=1; \
	done; \
	for t in $(STRESS_TESTS); do echo "== $$t"; $$t || fail=1; done; \
	if [ $$fail -ne 0 ]; then echo "make test: FAILED"; exit 1; fi; \
	echo "make test: all test binaries passed"

# Benchmarks: tests/bench/bench_*.c, each a program printing
# "bench <name> <value> <unit> baseline <value> ratio <value>" lines, built
# with what they share (tests/bench/benchlib.c, not a bench itself). They run
# one after another, never side by side. bench_writer's baseline is fio, which
# make bench installs (through deps) when it is missing.
BENCHES := $(patsubst tests/bench/%.c,$(BIN)/tests/%,$(wildcard tests/bench/bench_*.c))
BENCHLIB_OBJ := $(OBJ)/tests/bench/benchlib.o

$(BIN)/tests/bench_%: $(OBJ)/tests/bench/bench_%.o $(BENCHLIB_OBJ) $(HARNESS_OBJ) $(CLIENT_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

.SECONDARY: $(BENCHES:$(BIN)/tests/%=$(OBJ)/tests/bench/%.o) $(BENCHLIB_OBJ)
bench: binaries $(BENCHES)
	@$(MAKE) --no-print-directory deps DEBS=fio
	@for b in $(BENCHES); do $$b || exit 1; done
