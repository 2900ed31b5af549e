package kerneltest

import (
	"path/filepath"
	"testing"
)

// BenchmarkConnectDelete is one controller with two namespaces made and
// deleted through the control files: what a stage and an unstage cost the
// simulation, almost all of it file system work in the test's temporary
// directory (TMPDIR).
func BenchmarkConnectDelete(b *testing.B) {
	h := New(b)
	h.AddTarget("127.0.0.1", "4420", nqnA, ns1, ns2)
	del := filepath.Join(h.SysfsRoot(), "class/nvme/nvme0/delete_controller")
	for b.Loop() {
		if _, err := write(h, opts(nqnA)); err != nil {
			b.Fatal(err)
		}
		if err := h.WriteAttr(del, "1"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNew is an empty simulated host.
func BenchmarkNew(b *testing.B) {
	for b.Loop() {
		New(b)
	}
}
