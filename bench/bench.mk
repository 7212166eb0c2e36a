# bench.mk -- build rules of the benchmark (included by the top-level
# Makefile).  The bench programs are always built with the release flags
# into build/release/bench/ and linked with the release library, whatever
# VARIANT says: a benchmark of a sanitizer build measures the sanitizer.
#
#   make bench-build   build/release/bench/sy-bench, sy-bench-fwd and the
#                      durable-queue programs (sy-bench-lmdb, -fill,
#                      -durable, -bean, -restart) and the chat ones
#                      (sy-bench-llm, sy-bench-chat) and slowsync.so, the
#                      slow-flush disk LD_PRELOADed by the durable suite
#   make bench         build everything, then run bench/run.sh

BENCH_OUT    := build/release/bench
BENCH_CFLAGS := $(CFLAGS_COMMON) -O2
BENCH_LIB    := build/release/libswitchyard.a
BENCH_LOAD_OBJS := $(addprefix $(BENCH_OUT)/,bench.o benchclient.o \
                     benchworker.o benchwire.o)
BENCH_FWD_OBJS  := $(BENCH_OUT)/benchfwd.o
BENCH_DUR_PROGS := lmdb fill durable bean restart
# The chat path: an instant LLM backend and a one-at-a-time question client.
BENCH_CHAT_PROGS := llm chat
BENCH_BINS      := $(BENCH_OUT)/sy-bench $(BENCH_OUT)/sy-bench-fwd \
                   $(BENCH_DUR_PROGS:%=$(BENCH_OUT)/sy-bench-%) \
                   $(BENCH_CHAT_PROGS:%=$(BENCH_OUT)/sy-bench-%) \
                   $(BENCH_OUT)/slowsync.so
# Helpers linked into the durable-queue programs.
BENCH_DUR_HELPERS := $(addprefix $(BENCH_OUT)/,benchwire.o benchtxnid.o)

.PHONY: bench-build
ifeq ($(VARIANT),release)
bench-build: $(BENCH_BINS)
else
bench-build:
	@$(MAKE) --no-print-directory VARIANT=release bench-build
endif

$(BENCH_OUT)/%.o: bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) -c -o $@ $<

$(BENCH_OUT)/sy-bench: $(BENCH_LOAD_OBJS) $(BENCH_LIB)
	$(CC) -o $@ $^ $(LDLIBS)

$(BENCH_OUT)/sy-bench-fwd: $(BENCH_FWD_OBJS)
	$(CC) -o $@ $^ $(LDLIBS)

# sy-bench-lmdb from benchlmdb.c, sy-bench-fill from benchfill.c, ...
$(BENCH_OUT)/sy-bench-%: $(BENCH_OUT)/bench%.o $(BENCH_DUR_HELPERS) $(BENCH_LIB)
	$(CC) -o $@ $^ $(LDLIBS)
# Keep the objects of the pattern rule above (make would delete them as
# intermediate files and rebuild them every time).
.SECONDARY: $(BENCH_DUR_PROGS:%=$(BENCH_OUT)/bench%.o) \
            $(BENCH_CHAT_PROGS:%=$(BENCH_OUT)/bench%.o)

# The slow-flush shim (bench/slowsync.c): position-independent, loaded
# into other programs by LD_PRELOAD, so not linked with the library.
$(BENCH_OUT)/slowsync.so: bench/slowsync.c
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) -fPIC -shared -o $@ $< -ldl
