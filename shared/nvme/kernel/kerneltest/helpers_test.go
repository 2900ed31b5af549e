package kerneltest

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

const (
	nqnA    = "nqn.2026-01.io.nvmeof.test:a"
	nqnB    = "nqn.2026-01.io.nvmeof.test:b"
	hostA   = "nqn.2026-01.io.nvmeof.test:host-a"
	hostAID = "0aaaaaaa-0000-4000-8000-00000000000a"
	hostB   = "nqn.2026-01.io.nvmeof.test:host-b"
	hostBID = "0bbbbbbb-0000-4000-8000-00000000000b"
)

var (
	ns1 = Namespace{NSID: 1, UUID: "11111111-1111-4111-8111-111111111111", NGUID: "11111111111111111111111111111111", SizeBytes: 1 << 20}
	ns2 = Namespace{NSID: 2, UUID: "22222222-2222-4222-8222-222222222222", SizeBytes: 2 << 20}
)

// opts is an option string to nqn at 127.0.0.1:4420 as host A, plus extra.
func opts(nqn string, extra ...string) string {
	return strings.Join(append([]string{"nqn=" + nqn, "transport=tcp", "traddr=127.0.0.1", "trsvcid=4420",
		"hostnqn=" + hostA, "hostid=" + hostAID}, extra...), ",")
}

// newHost is a host with target A (ns1, ns2) and B (ns1) on 127.0.0.1:4420.
func newHost(t *testing.T, o ...Option) *Host {
	t.Helper()
	h := New(t, o...)
	h.AddTarget("127.0.0.1", "4420", nqnA, ns1, ns2)
	h.AddTarget("127.0.0.1", "4420", nqnB, Namespace{NSID: 1, NGUID: "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", SizeBytes: 1 << 20})
	return h
}

// write opens /dev/nvme-fabrics, writes options, reads the reply, closes.
func write(h *Host, options string) (string, error) {
	f, err := h.OpenFabrics(h.FabricsPath())
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	if _, err := f.Write([]byte(options)); err != nil {
		return "", err
	}
	b, err := io.ReadAll(f)
	return string(b), err
}

// mustConnect connects through /dev/nvme-fabrics and returns the reply.
func mustConnect(t *testing.T, h *Host, options string) string {
	t.Helper()
	reply, err := write(h, options)
	if err != nil {
		t.Fatalf("connect %q: %v (dmesg %q)", options, err, h.Dmesg())
	}
	return reply
}

// attr reads a sysfs attribute of h, path relative to its sysfs.
func attr(t *testing.T, h *Host, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.SysfsRoot(), rel))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(string(b), "\n")
}

func exists(h *Host, rel string) bool {
	_, err := os.Lstat(filepath.Join(h.SysfsRoot(), rel))
	return err == nil
}

func devExists(h *Host, name string) bool {
	_, err := os.Lstat(filepath.Join(h.DevRoot(), name))
	return err == nil
}

func names(h *Host) string {
	var out []string
	for _, c := range h.Controllers() {
		out = append(out, c.Name+"="+c.State)
	}
	return strings.Join(out, " ")
}

func diskNames(h *Host) string {
	var out []string
	for _, d := range h.Disks() {
		out = append(out, d.Name)
	}
	return strings.Join(out, " ")
}

// checkTree verifies what a reader of the tree relies on: every class and
// block link resolves to an object with its attributes, device numbers are
// unique and /sys/dev/block agrees, /dev holds exactly the visible disks,
// the model and the tree list the same objects, nothing is left in
// staging.
func checkTree(t *testing.T, h *Host) {
	t.Helper()
	sys := h.SysfsRoot()
	list := func(rel string) []string {
		entries, err := os.ReadDir(filepath.Join(sys, rel))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range entries {
			out = append(out, e.Name())
		}
		return out
	}
	var ctrls []string
	for _, c := range h.Controllers() {
		ctrls = append(ctrls, c.Name)
	}
	slices.Sort(ctrls)
	if got := list("class/nvme"); !slices.Equal(got, ctrls) {
		t.Errorf("class/nvme %v, controllers %v", got, ctrls)
	}
	for _, c := range list("class/nvme") {
		attr(t, h, "class/nvme/"+c+"/state")
	}
	for _, s := range list("class/nvme-subsystem") {
		attr(t, h, "class/nvme-subsystem/"+s+"/subsysnqn")
	}
	devs := map[string]string{}
	var visible []string
	for _, d := range list("block") {
		dev := attr(t, h, "block/"+d+"/dev")
		if other, dup := devs[dev]; dup {
			t.Errorf("%s and %s both have device number %s", d, other, dev)
		}
		devs[dev] = d
		a, errA := filepath.EvalSymlinks(filepath.Join(sys, "block", d))
		b, errB := filepath.EvalSymlinks(filepath.Join(sys, "dev/block", dev))
		if errA != nil || errB != nil || a != b {
			t.Errorf("block/%s -> %s (%v), dev/block/%s -> %s (%v)", d, a, errA, dev, b, errB)
		}
		if attr(t, h, "block/"+d+"/hidden") == "0" {
			visible = append(visible, d)
		}
	}
	if got := list("dev/block"); len(got) != len(devs) {
		t.Errorf("dev/block holds %v, block %v", got, devs)
	}
	entries, err := os.ReadDir(h.DevRoot())
	if err != nil {
		t.Fatal(err)
	}
	var nodes []string
	for _, e := range entries {
		if e.Name() != "nvme-fabrics" {
			nodes = append(nodes, e.Name())
		}
	}
	slices.Sort(visible)
	if !slices.Equal(nodes, visible) {
		t.Errorf("/dev holds %v, visible disks are %v", nodes, visible)
	}
	var model []string
	for _, d := range h.Disks() {
		model = append(model, d.Name)
	}
	if got := list("block"); !slices.Equal(got, model) {
		t.Errorf("block %v, model %v", got, model)
	}
	if left, _ := os.ReadDir(h.tree.stage); len(left) != 0 {
		t.Errorf("staging holds %d entries", len(left))
	}
}

// recordTB is a testing.TB whose Errorf records instead of failing, for
// tests of what the simulation reports as a test failure.
type recordTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recordTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, format)
	_ = args
}

func (r *recordTB) errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.errs)
}

// errnoIs reports whether err carries errno.
func errnoIs(err error, errno syscall.Errno) bool { return errors.Is(err, errno) }
