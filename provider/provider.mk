# provider/provider.mk: the Terraform provider terraform-provider-nvme.
# Acceptance tests drive the terraform CLI on PATH; nothing is downloaded.

BUILD_TARGETS += provider/cmd/terraform-provider-nvme
TEST_TARGETS  += test-provider-acc test-provider-docs test-provider-fmt

PROVIDER_CACHE := $(CACHE)/provider
# A CLI configuration of our own: the machine's may point anywhere.
PROVIDER_TF_ENV := TF_ACC=1 TF_ACC_TERRAFORM_PATH="$$(command -v terraform)" CHECKPOINT_DISABLE=1 \
	TF_CLI_CONFIG_FILE=$(PROVIDER_CACHE)/terraformrc

$(PROVIDER_CACHE)/terraformrc:
	@mkdir -p $(@D)
	@: > $@

.PHONY: test-provider-acc
# The tests wait on terraform processes more than they compute: a few run
# at once.
test-provider-acc: $(PROVIDER_CACHE)/terraformrc ## provider acceptance tests and the example test with the real terraform CLI
	$(PROVIDER_TF_ENV) $(GO) test -count=1 -parallel 4 ./provider/...

.PHONY: test-provider-example
test-provider-example: $(PROVIDER_CACHE)/terraformrc ## plan and apply the nvme part of examples/terraform with a local build
	$(PROVIDER_TF_ENV) $(GO) test -count=1 -run '^TestAccExample$$' ./provider/

.PHONY: test-provider-fmt
test-provider-fmt: $(PROVIDER_CACHE)/terraformrc ## terraform fmt -check on the examples
	TF_CLI_CONFIG_FILE=$(PROVIDER_CACHE)/terraformrc terraform fmt -check -recursive examples/
	TF_CLI_CONFIG_FILE=$(PROVIDER_CACHE)/terraformrc terraform fmt -check -recursive provider/examples/

# tfplugindocs runs `go build` in --provider-dir, so it points at the main
# package; examples, templates and the rendered docs stay in provider/.
TFPLUGINDOCS_ARGS := --provider-name nvme --provider-dir provider/cmd/terraform-provider-nvme \
	--examples-dir ../../examples --website-source-dir ../../templates --rendered-website-dir ../../docs

.PHONY: provider-docs
provider-docs: $(TOOLS)/tfplugindocs ## regenerate the provider's registry docs in provider/docs
	TF_CLI_CONFIG_FILE=/dev/null CHECKPOINT_DISABLE=1 $(TOOLS)/tfplugindocs generate $(TFPLUGINDOCS_ARGS)

.PHONY: test-provider-docs
test-provider-docs: $(TOOLS)/tfplugindocs ## fail when regenerating the provider docs changes them
	@rm -rf $(PROVIDER_CACHE)/docs.before && mkdir -p $(PROVIDER_CACHE) && cp -r provider/docs $(PROVIDER_CACHE)/docs.before
	@$(MAKE) --no-print-directory provider-docs
	@diff -ru $(PROVIDER_CACHE)/docs.before provider/docs || { echo "provider/docs is stale: run 'make provider-docs' and commit the result"; exit 1; }

.PHONY: provider-bench
provider-bench: ## terraform plan of 500 namespaces: nvme_connection vs a no-op provider (figures for docs/PERFORMANCE.md)
	test/providerbench/plan.sh 500 7

$(TOOLS)/tfplugindocs: GNUmakefile provider/provider.mk
	@mkdir -p $(TOOLS)
	@if ! $(GO) version -m $@ 2>/dev/null | grep -q "terraform-plugin-docs[[:space:]]*$(TFPLUGINDOCS_VERSION)"; then \
		echo "build tfplugindocs $(TFPLUGINDOCS_VERSION)"; \
		GOBIN=$(TOOLS) $(GO) install github.com/hashicorp/terraform-plugin-docs/cmd/tfplugindocs@$(TFPLUGINDOCS_VERSION); \
	fi
	@touch $@
