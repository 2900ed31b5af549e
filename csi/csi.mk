# The CSI plugin nvmeof-csi. Its unit tests and csi-sanity (inside go test,
# TestSanity in csi/driver) run under `make test-unit`; `make test-csi`
# runs just them.
BUILD_TARGETS += csi/cmd/nvmeof-csi

.PHONY: test-csi
test-csi: ## the plugin's unit tests and csi-sanity, with the race detector
	$(GO) test -race -count=1 ./csi/...

.PHONY: bench-csi
bench-csi: ## the plugin's benchmarks (50 concurrent stages vs one)
	$(GO) test -run='^$$' -bench=. -benchtime=20x ./csi/driver/

# The Prometheus alerts on the plugin's metrics, with their unit tests.
# promtool comes from Debian's prometheus package, downloaded and unpacked
# into .cache/tools (never installed: the package would start a server).
ALERTS_DIR := examples/prometheus
PROMTOOL   := $(TOOLS)/promtool
TEST_TARGETS += test-alerts

.PHONY: test-alerts
test-alerts: ## promtool check rules and test rules on examples/prometheus
	@$(ALERTS_DIR)/promtool.sh $(TOOLS)
	$(PROMTOOL) check rules $(ALERTS_DIR)/nvmeof-csi-alerts.yml
	cd $(ALERTS_DIR) && $(PROMTOOL) test rules nvmeof-csi-alerts.test.yml
