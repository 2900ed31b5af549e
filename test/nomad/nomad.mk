# The Nomad story in the lab VM (test/nomad), and `make demo`.
#
#   make nomad-examples   examples/nomad checked as nomad fmt, Nomad's decoders and
#                         refusals, and the plugin would check them; no nomad binary
#   make nomad-e2e        the story: the project's Nomad-faithful driver
#                         (test/nomad/nomadclient) runs the plugin job, registers the
#                         volume terraform declared, runs the example jobs and Nomad's
#                         quirks against the real nvmeof-csi on the real kernel
#   make nomad-e2e-real   the same story with a real Nomad agent you supply
#                         (NOMAD=/path/to/nomad, or nomad on PATH); never built here
#   make demo             the story narrated, with a timing table; with a real Nomad
#                         when one is on PATH or named by NOMAD
#
# Nomad is BUSL-licensed: the project neither builds nor downloads it.

NOMAD             ?= $(shell command -v nomad 2>/dev/null)
NOMAD_E2E         := $(CACHE)/nomad-e2e
NOMAD_E2E_BIN     := $(NOMAD_E2E)/bin
NOMAD_E2E_SHARE   := $(NOMAD_E2E)/share
NOMAD_E2E_TIMEOUT ?= 8m
NOMAD_E2E_RUN     ?= ^TestNomadStory
NOMAD_E2E_MEMORY  ?= 1024
NOMAD_E2E_CPUS    ?= 2

TEST_TARGETS += nomad-examples nomad-e2e

.PHONY: nomad-examples nomad-e2e nomad-e2e-real nomad-supplied nomad-e2e-run nomad-e2e-share nomad-e2e-binaries demo

nomad-examples: ## check examples/nomad without a nomad binary: nomad fmt, decoding, Nomad's and the plugin's refusals
	$(GO) run ./test/nomad/cmd/nomad-examples examples/nomad
	@if [[ -n "$(NOMAD)" ]]; then \
		echo "nomad-examples: also with $(NOMAD): nomad fmt -check and nomad job validate"; \
		"$(NOMAD)" fmt -check -recursive examples/nomad; \
		for job in examples/nomad/*.nomad.hcl; do NOMAD_ADDR=http://127.0.0.1:1 "$(NOMAD)" job validate "$$job" >/dev/null || exit 1; done; \
	fi

# The binaries the VM runs, static, and the host's labrun and provider:
# one build configuration (CGO_ENABLED=0, -trimpath) for all of them, so a
# cold build compiles the standard library and the shared modules once, and
# the test binary built beside the others to keep both cores busy.
# terraform.sh's own build of the provider is then a cache hit.
nomad-e2e-binaries:
	@mkdir -p $(NOMAD_E2E_BIN)
	@export CGO_ENABLED=0; \
	$(GO) test -c -tags lab $(LAB_GOFLAGS) -o $(NOMAD_E2E_BIN)/lab.test ./test/nomad & test_pid=$$!; \
	echo "$(GO) build $(LAB_GOFLAGS) -o $(NOMAD_E2E_BIN)/ labsetup nvmeof-csi labrun terraform-provider-nvme"; \
	$(GO) build $(LAB_GOFLAGS) -o $(NOMAD_E2E_BIN)/ ./$(LAB_DIR)/cmd/labsetup ./$(LAB_CSI_MAIN) ./$(LAB_DIR)/cmd/labrun ./provider/cmd/terraform-provider-nvme; \
	build=$$?; wait $$test_pid && test $$build -eq 0

# The 9p share: examples/nomad as users have them and what terraform made
# of test/nomad/terraform; with NOMAD_SHARE_BINARY=1 also the nomad binary
# you supplied and the C library it links against (the image is static).
nomad-e2e-share:
	@rm -rf $(NOMAD_E2E_SHARE) && mkdir -p $(NOMAD_E2E_SHARE)/examples
	@cp examples/nomad/*.hcl $(NOMAD_E2E_SHARE)/examples/
	@if [[ -n "$(NOMAD_SHARE_BINARY)" ]]; then \
		mkdir -p $(NOMAD_E2E_SHARE)/lib && cp "$(NOMAD)" $(NOMAD_E2E_SHARE)/nomad && \
		for lib in $$(ldd "$(NOMAD)" | awk '/=> \// {print $$3} /^\t\/lib/ {print $$1}'); do cp -L $$lib $(NOMAD_E2E_SHARE)/lib/; done; \
	fi
	@NVME_PROVIDER=$(NOMAD_E2E_BIN)/terraform-provider-nvme GO=$(GO) test/nomad/terraform.sh $(NOMAD_E2E) $(NOMAD_E2E_SHARE)/terraform-output.json

# The story boots the 6.1 image (current); the other kernels' images are
# make lab's, and a demo need not build them.
nomad-e2e nomad-e2e-real: LAB_KERNELS := 6.1

nomad-e2e: lab-image nomad-e2e-binaries nomad-e2e-share ## the Nomad story in the lab VM, the project's Nomad-faithful driver in Nomad's place
	@$(MAKE) --no-print-directory nomad-e2e-run

nomad-e2e-real: nomad-supplied lab-image nomad-e2e-binaries ## the Nomad story with a real Nomad agent you supply (NOMAD=/path/to/nomad)
	@$(MAKE) --no-print-directory nomad-e2e-share NOMAD_SHARE_BINARY=1
	@$(MAKE) --no-print-directory nomad-e2e-run NOMAD_E2E_RUN=^TestRealNomadStory NOMAD_E2E_MEMORY=3072 NOMAD_E2E_TIMEOUT=12m

nomad-supplied:
	@[[ -x "$(NOMAD)" ]] || { echo "nomad-e2e-real: no nomad binary: put one on PATH or set NOMAD=/path/to/nomad (the project never builds Nomad)"; exit 2; }

# Only the VM run; the targets above prepare its inputs.
nomad-e2e-run:
	$(NOMAD_E2E_BIN)/labrun -kernel $(LAB_CACHE)/current/kernel -base $(LAB_CACHE)/current/base.cpio.gz \
		-work $(NOMAD_E2E)/run -test-timeout $(NOMAD_E2E_TIMEOUT) -memory $(NOMAD_E2E_MEMORY) -cpus $(NOMAD_E2E_CPUS) \
		-share $(NOMAD_E2E_SHARE) -run '$(NOMAD_E2E_RUN)' \
		-bin lab.test=$(NOMAD_E2E_BIN)/lab.test -bin labsetup=$(NOMAD_E2E_BIN)/labsetup \
		-bin nvmeof-csi=$(NOMAD_E2E_BIN)/nvmeof-csi

demo: ## the README's main command: the Nomad story in the lab VM, narrated
	@NOMAD="$(NOMAD)" test/nomad/demo.sh
