package kernel

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sysfsFixture builds a sysfs tree shaped like Linux 6.1's under a temp
// dir: device directories under devices/, and class/ and block/ links into
// them, so the code walks the same links it walks on a host.
type sysfsFixture struct {
	tb   testing.TB
	root string // the sysfs root
	dev  string // the /dev root
}

func newSysfsFixture(tb testing.TB) *sysfsFixture {
	tb.Helper()
	base := tb.TempDir()
	f := &sysfsFixture{tb: tb, root: filepath.Join(base, "sys"), dev: filepath.Join(base, "dev")}
	for _, d := range []string{"class/nvme", "class/nvme-subsystem", "block", "devices/virtual/nvme-fabrics/ctl", "devices/virtual/nvme-subsystem", "fs/ext4"} {
		f.mkdir(filepath.Join(f.root, d))
	}
	f.mkdir(f.dev)
	return f
}

func (f *sysfsFixture) mkdir(dir string) {
	f.tb.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.tb.Fatal(err)
	}
}

// writeAttrs writes each attribute with the kernel's trailing newline.
func (f *sysfsFixture) writeAttrs(dir string, attrs map[string]string) {
	f.tb.Helper()
	f.mkdir(dir)
	for k, v := range attrs {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v+"\n"), 0o644); err != nil {
			f.tb.Fatal(err)
		}
	}
}

// link makes a relative symlink at path pointing to target, as sysfs does.
func (f *sysfsFixture) link(target, path string) {
	f.tb.Helper()
	rel, err := filepath.Rel(filepath.Dir(path), target)
	if err != nil {
		f.tb.Fatal(err)
	}
	if err := os.Symlink(rel, path); err != nil {
		f.tb.Fatal(err)
	}
}

func (f *sysfsFixture) subsysDevDir(k int) string {
	return filepath.Join(f.root, "devices/virtual/nvme-subsystem", fmt.Sprintf("nvme-subsys%d", k))
}

func (f *sysfsFixture) ctrlDevDir(n int) string {
	return filepath.Join(f.root, "devices/virtual/nvme-fabrics/ctl", fmt.Sprintf("nvme%d", n))
}

// addSubsystem creates nvme-subsysK with nqn.
func (f *sysfsFixture) addSubsystem(k int, nqn string) {
	f.tb.Helper()
	dir := f.subsysDevDir(k)
	f.writeAttrs(dir, map[string]string{"subsysnqn": nqn, "iopolicy": "numa", "subsystype": "nvm"})
	f.link(dir, filepath.Join(f.root, "class/nvme-subsystem", filepath.Base(dir)))
}

// fixtureCtrl is a controller as the fixture writes it. Zero values get
// the lab's usual ones.
type fixtureCtrl struct {
	Instance       int
	Subsys         int // nvme-subsysK it belongs to
	NQN            string
	State          string
	Address        string
	HostNQN        string
	HostID         string
	CtrlLossTmo    string
	ReconnectDelay string
	FastIOFailTmo  string
}

const (
	testHostNQN = "nqn.2026-01.io.nvmeof.lab:host-1"
	testHostID  = "0aaaaaaa-0000-4000-8000-00000000000a"
)

// addController creates nvmeN, links it from class/nvme and its subsystem.
func (f *sysfsFixture) addController(c fixtureCtrl) {
	f.tb.Helper()
	def := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	dir := f.ctrlDevDir(c.Instance)
	f.writeAttrs(dir, map[string]string{
		"state":             def(c.State, "live"),
		"subsysnqn":         c.NQN,
		"transport":         "tcp",
		"address":           def(c.Address, "traddr=127.0.0.1,trsvcid=4420,src_addr=127.0.0.1"),
		"hostnqn":           def(c.HostNQN, testHostNQN),
		"hostid":            def(c.HostID, testHostID),
		"cntlid":            fmt.Sprint(c.Instance + 1),
		"kato":              "5",
		"ctrl_loss_tmo":     def(c.CtrlLossTmo, "off"),
		"reconnect_delay":   def(c.ReconnectDelay, "5"),
		"fast_io_fail_tmo":  def(c.FastIOFailTmo, "off"),
		"delete_controller": "",
		"queue_count":       "2",
		"cntrltype":         "io",
	})
	name := filepath.Base(dir)
	f.link(dir, filepath.Join(f.root, "class/nvme", name))
	f.link(dir, filepath.Join(f.subsysDevDir(c.Subsys), name))
}

// removeController deletes nvmeN as the kernel does: the device, its
// class link, its subsystem link and its path disks.
func (f *sysfsFixture) removeController(n, subsys int) {
	f.tb.Helper()
	name := fmt.Sprintf("nvme%d", n)
	for _, p := range []string{f.ctrlDevDir(n), filepath.Join(f.root, "class/nvme", name), filepath.Join(f.subsysDevDir(subsys), name)} {
		if err := os.RemoveAll(p); err != nil {
			f.tb.Fatal(err)
		}
	}
}

// fixtureNS is a namespace as the kernel shows it; UUID and NGUID are
// canonical ("" = the namespace has none) and rendered the kernel's way.
type fixtureNS struct {
	NSID    uint32
	UUID    string
	NGUID   string
	Sectors int64
}

func (ns fixtureNS) attrs() map[string]string {
	a := map[string]string{"nsid": fmt.Sprint(ns.NSID), "size": fmt.Sprint(ns.Sectors), "hidden": "0"}
	if ns.NGUID != "" {
		g := ns.NGUID
		a["nguid"] = g[0:8] + "-" + g[8:12] + "-" + g[12:16] + "-" + g[16:20] + "-" + g[20:]
		a["wwid"] = "eui." + g
	}
	switch {
	case ns.UUID != "":
		a["uuid"] = ns.UUID
		a["wwid"] = "uuid." + ns.UUID
	case ns.NGUID != "":
		a["uuid"] = a["nguid"] // the kernel shows the NGUID when there is no UUID
	}
	return a
}

// addHeadNamespace adds head disk nvmeKnI under subsystem K (native
// multipath) with a hidden path disk nvmeKcCnI under each controller.
func (f *sysfsFixture) addHeadNamespace(subsys, index int, ns fixtureNS, ctrls ...int) string {
	f.tb.Helper()
	name := fmt.Sprintf("nvme%dn%d", subsys, index)
	dir := filepath.Join(f.subsysDevDir(subsys), name)
	f.writeAttrs(dir, ns.attrs())
	f.link(dir, filepath.Join(f.root, "block", name))
	for _, c := range ctrls {
		path := fmt.Sprintf("nvme%dc%dn%d", subsys, c, index)
		attrs := ns.attrs()
		attrs["hidden"] = "1"
		attrs["ana_state"] = "optimized"
		f.writeAttrs(filepath.Join(f.ctrlDevDir(c), path), attrs)
	}
	f.touch(filepath.Join(f.dev, name))
	return name
}

// addPlainNamespace adds nvmeXnI under controller ctrl: the layout without
// native multipath.
func (f *sysfsFixture) addPlainNamespace(ctrl, index int, ns fixtureNS) string {
	f.tb.Helper()
	name := fmt.Sprintf("nvme%dn%d", ctrl, index)
	dir := filepath.Join(f.ctrlDevDir(ctrl), name)
	f.writeAttrs(dir, ns.attrs())
	f.link(dir, filepath.Join(f.root, "block", name))
	f.touch(filepath.Join(f.dev, name))
	return name
}

func (f *sysfsFixture) touch(path string) {
	f.tb.Helper()
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		f.tb.Fatal(err)
	}
}

// attr reads an attribute of controller n as written last.
func (f *sysfsFixture) ctrlAttr(n int, attr string) string {
	f.tb.Helper()
	b, err := os.ReadFile(filepath.Join(f.ctrlDevDir(n), attr))
	if err != nil {
		f.tb.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
