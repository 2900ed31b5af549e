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
