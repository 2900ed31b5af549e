# The real-kernel lab: Debian's kernels in QEMU with an nvmet target on
# 127.0.0.1, running every *_lab_test.go in test/lab (see test/lab/doc.go)
# once per kernel: bookworm's 6.1 and trixie's 6.12, each with the
# userspace of its own release.
#
#   make lab                      build what changed, boot each kernel, run all lab tests
#   make lab LAB_KERNEL=6.12      one kernel only (6.1, 6.12 or all)
#   make lab LAB_RUN='Smoke|Raw'  only the tests matching the regex
#   make lab-shell                boot (the first of LAB_KERNEL) with the target set up and a shell
#
# Cold: downloads, unpacking and the base images; warm: only the Go
# binaries are rebuilt (see docs/PERFORMANCE.md for both, per kernel).
# Caches live in .cache/lab.

LAB_DIR          := test/lab
LAB_CACHE        := $(CACHE)/lab
LAB_RUN_DIR      := $(LAB_CACHE)/run
LAB_RUN          ?=
LAB_KERNEL       ?= all
LAB_KERNELS_ALL  := 6.1 6.12
LAB_KERNELS      := $(if $(filter all,$(LAB_KERNEL)),$(LAB_KERNELS_ALL),$(LAB_KERNEL))
$(foreach k,$(LAB_KERNELS),$(if $(filter $(k),$(LAB_KERNELS_ALL)),,$(error LAB_KERNEL=$(LAB_KERNEL): each kernel must be one of $(LAB_KERNELS_ALL), or all)))
LAB_TEST_TIMEOUT ?= 12m
# Rounds of each arm of the attach/detach benchmark: a few in `make lab`
# (it proves the arms right), 15 in `make lab-bench` (the figures).
LAB_BENCH_ROUNDS ?= 3
LAB_MEMORY       ?= 1024
LAB_CPUS         ?= 1
# A host directory shared read-only at /lab/share in the VM (9p), for big
# binaries such as a Nomad agent; empty for none.
LAB_SHARE        ?=
# Passed through the environment, so a regex needs no make or shell quoting.
export LAB_RUN LAB_SHARE

LAB_CSI_MAIN := csi/cmd/nvmeof-csi
# Static, without DWARF (stack traces keep their names): every MiB is
# unpacked by the emulated CPU at each boot.
LAB_GOFLAGS  := -trimpath -ldflags='-s -w'

# lab-deps first: the harness's own unit tests (cpio, bzImage) need its
# Debian tools, and would otherwise skip on a fresh machine.
TEST_TARGETS := lab-deps $(TEST_TARGETS) lab

.PHONY: lab lab-deps lab-image lab-binaries lab-shell lab-clean

lab-deps: ## install the lab's Debian packages that are missing (apt-get)
	@$(LAB_DIR)/scripts/deps.sh

lab-image: lab-deps ## the kernels and base initramfs (LAB_KERNEL), built once per input in .cache/lab
	@for k in $(LAB_KERNELS); do GO=$(GO) $(LAB_DIR)/scripts/mkbase.sh $(LAB_CACHE) $$k; done

lab-binaries: ## the lab test binary and the binaries it runs, static, for /lab/bin
	@mkdir -p $(LAB_RUN_DIR)/bin
	@echo "lab: build the lab test binary and tools"
	CGO_ENABLED=0 $(GO) test -c -tags lab $(LAB_GOFLAGS) -o $(LAB_RUN_DIR)/bin/lab.test ./$(LAB_DIR)
	CGO_ENABLED=0 $(GO) build $(LAB_GOFLAGS) -o $(LAB_RUN_DIR)/bin/labsetup ./$(LAB_DIR)/cmd/labsetup
	@if [[ -d $(LAB_CSI_MAIN) ]]; then \
		echo "CGO_ENABLED=0 $(GO) build $(LAB_GOFLAGS) -o $(LAB_RUN_DIR)/bin/nvmeof-csi ./$(LAB_CSI_MAIN)"; \
		CGO_ENABLED=0 $(GO) build $(LAB_GOFLAGS) -o $(LAB_RUN_DIR)/bin/nvmeof-csi ./$(LAB_CSI_MAIN); \
	else rm -f $(LAB_RUN_DIR)/bin/nvmeof-csi; fi
	$(GO) build -o $(LAB_RUN_DIR)/labrun ./$(LAB_DIR)/cmd/labrun

# The arguments every run of kernel $(1) passes to labrun; the binaries
# list follows what lab-binaries built.
define lab_run_args
-kernel-label $(1) -kernel $(LAB_CACHE)/current-$(1)/kernel -base $(LAB_CACHE)/current-$(1)/base.cpio.gz \
	-work $(LAB_RUN_DIR)/$(1) -test-timeout $(LAB_TEST_TIMEOUT) -memory $(LAB_MEMORY) -cpus $(LAB_CPUS) \
	-share "$$LAB_SHARE" \
	$$(for b in $(LAB_RUN_DIR)/bin/*; do printf -- '-bin %s=%s ' "$${b##*/}" "$$b"; done)
endef

# One VM at a time (the machine has two cores); every kernel runs even when
# an earlier one failed, and the target fails if any did.
lab: lab-image lab-binaries ## boot each lab kernel (LAB_KERNEL) and run every lab test (LAB_RUN=regex to filter)
	@failed=""; for k in $(LAB_KERNELS); do \
		echo "lab: kernel $$k"; \
		$(LAB_RUN_DIR)/labrun $(call lab_run_args,$$k) -run "$$LAB_RUN" -- -lab.bench-rounds=$(LAB_BENCH_ROUNDS) || failed="$$failed $$k"; \
	done; \
	if [[ -n $$failed ]]; then echo "lab: failed on kernel(s):$$failed"; exit 1; fi

lab-shell: lab-image lab-binaries ## boot the first LAB_KERNEL with the target ready and a shell on the console
	$(LAB_RUN_DIR)/labrun $(call lab_run_args,$(firstword $(LAB_KERNELS))) -shell

lab-clean: ## drop the lab's caches (debs, kernel, images)
	rm -rf $(LAB_CACHE)

# The attach and detach benchmark alone, 15 rounds (`make lab` runs 3): the
# plugin against the bare kernel, alternating in one VM run, and what its
# steps are made of. Figures and how to read them: docs/PERFORMANCE.md.
.PHONY: lab-bench
lab-bench: ## the attach/detach benchmark alone: the plugin against the bare kernel (LAB-BENCH lines)
	@$(MAKE) --no-print-directory lab LAB_BENCH_ROUNDS=15 LAB_RUN='^(TestAttachDetachBench|TestAttachStepCosts|TestFileSystemToolCosts)$$'
