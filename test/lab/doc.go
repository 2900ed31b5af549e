// Package lab holds the real-kernel lab tests: Go tests with the `lab` build
// tag that run inside a Debian kernel booted in QEMU, against the nvmet
// target on 127.0.0.1 that labtarget describes. `make lab` builds the
// kernel, the initramfs and `go test -c -tags lab` of this package, boots
// the VM (cmd/labrun) and fails unless every test passed.
//
// Outside the VM there is nothing to run: without the tag the package is
// this file alone.
package lab
