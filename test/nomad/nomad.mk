# Nomad end to end in the lab VM (test/nomad) and `make demo`.
#
#   make nomad-e2e   build Nomad (once), apply test/nomad/terraform with the local
#                    provider, boot the lab VM with Nomad shared over 9p, run the story
#   make demo        the same, narrated, with a timing table at the end
#
# Nomad is built from the Go module proxy in its own module (tools/nomad),
# cached by the hash of that module's go.mod and go.sum: ~10 min cold.

NOMAD_VERSION   := v1.11.3
NOMAD_KEY       := $(shell cat tools/nomad/go.mod tools/nomad/go.sum 2>/dev/null | sha256sum | cut -c1-12)
NOMAD_BIN       := $(CACHE)/nomad/$(NOMAD_VERSION)-$(NOMAD_KEY)/nomad
NOMAD_E2E       := $(CACHE)/nomad-e2e
NOMAD_E2E_SHARE := $(NOMAD_E2E)/share
NOMAD_E2E_TIMEOUT ?= 12m

TEST_TARGETS += nomad-examples nomad-e2e

.PHONY: nomad-examples nomad-bin nomad-e2e nomad-e2e-run nomad-e2e-share nomad-e2e-binaries demo

nomad-bin: $(NOMAD_BIN) ## build Nomad for the e2e tests (cached; ~10 min the first time)

$(NOMAD_BIN):
	@echo "nomad: building Nomad $(NOMAD_VERSION) from the Go module proxy (about 10 minutes the first time; cached in $(@D))"
	@mkdir -p $(@D)
	cd tools/nomad && GOFLAGS=-mod=mod $(GO) build -trimpath -o $@.tmp github.com/hashicorp/nomad
	@mv $@.tmp $@
	@$@ version

nomad-examples: $(NOMAD_BIN) ## nomad fmt -check and job validate on examples/nomad (offline)
	$(NOMAD_BIN) fmt -check -recursive examples/nomad
	@for job in examples/nomad/*.nomad.hcl; do \
		echo "nomad job validate $$job"; \
		NOMAD_ADDR=http://127.0.0.1:1 $(NOMAD_BIN) job validate $$job >/dev/null || exit 1; \
	done

# The 9p share: Nomad, the C library it links against (the lab image is
# static busybox), the examples as users have them, and what terraform
# made of test/nomad/terraform.
nomad-e2e-share: $(NOMAD_BIN)
	@rm -rf $(NOMAD_E2E_SHARE) && mkdir -p $(NOMAD_E2E_SHARE)/lib $(NOMAD_E2E_SHARE)/examples
	@ln -f $(NOMAD_BIN) $(NOMAD_E2E_SHARE)/nomad 2>/dev/null || cp $(NOMAD_BIN) $(NOMAD_E2E_SHARE)/nomad
	@for lib in $$(ldd $(NOMAD_BIN) | awk '/=> \// {print $$3} /^\t\/lib/ {print $$1}'); do cp -L $$lib $(NOMAD_E2E_SHARE)/lib/; done
	@cp examples/nomad/*.hcl $(NOMAD_E2E_SHARE)/examples/
	@test/nomad/terraform.sh $(NOMAD_E2E) $(NOMAD_E2E_SHARE)/terraform-output.json

nomad-e2e-binaries: lab-binaries
	@mkdir -p $(NOMAD_E2E)/bin
	CGO_ENABLED=0 $(GO) test -c -tags lab -trimpath -o $(NOMAD_E2E)/bin/lab.test ./test/nomad

nomad-e2e: lab-image nomad-e2e-binaries nomad-e2e-share ## Nomad, the plugin and a real NVMe/TCP volume in the lab VM
	@$(MAKE) --no-print-directory nomad-e2e-run

# Only the VM run; nomad-e2e and demo prepare its inputs first.
nomad-e2e-run:
	$(LAB_RUN_DIR)/labrun -kernel $(LAB_CACHE)/current/kernel -base $(LAB_CACHE)/current/base.cpio.gz \
		-work $(NOMAD_E2E)/run -test-timeout $(NOMAD_E2E_TIMEOUT) -memory 3072 -cpus 2 \
		-share $(NOMAD_E2E_SHARE) -run '^TestNomad' \
		-bin lab.test=$(NOMAD_E2E)/bin/lab.test -bin labsetup=$(LAB_RUN_DIR)/bin/labsetup \
		-bin nvmeof-csi=$(LAB_RUN_DIR)/bin/nvmeof-csi

demo: ## the README's main command: the Nomad story in the lab VM, narrated
	@NOMAD_BIN=$(NOMAD_BIN) test/nomad/demo.sh
