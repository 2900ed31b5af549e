//go:build lab

package lab

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nvmeof/nvmeof/shared/nvme/kernel/kerneltest"
	"github.com/nvmeof/nvmeof/test/lab/labtarget"
)

// TestKerneltestConformance runs the same scenarios against the real
// kernel of the lab and against kerneltest, the simulated host the unit
// tests use, and fails where their observations differ: the kernel facts
// the simulation claims are proven here, on Debian's kernel.

// kapi is what a scenario does to a kernel: connects through
// /dev/nvme-fabrics, sysfs reads and writes. Controller names are turned
// into symbols (c1, c2, ...) in the order they appear, so the transcripts
// of two kernels whose numbering starts elsewhere still compare.
type kapi struct {
	t         *testing.T
	sys       string
	fabrics   string
	open      func(path string) (io.ReadWriteCloser, error)
	writeAttr func(path, value string) error
	// sim is the simulated host; nil for the real kernel, which acts on
	// its own timers.
	sim *kerneltest.Host

	symbols map[string]string // controller name -> symbol
	created []string          // controller names, to delete at the end
	log     []string
}

func (k *kapi) note(format string, args ...any) { k.log = append(k.log, fmt.Sprintf(format, args...)) }

// sym names a controller by the order it appeared; a reused name is noted.
func (k *kapi) sym(name string) string {
	if s, ok := k.symbols[name]; ok {
		return s
	}
	s := fmt.Sprintf("c%d", len(k.symbols)+1)
	k.symbols[name] = s
	return s
}

func errName(err error) string {
	if err == nil {
		return "ok"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return "error " + err.Error()
}

// connect writes options in one write and reads the reply; it returns the
// controller's name ("" on failure).
func (k *kapi) connect(label, options string) string {
	f, err := k.open(k.fabrics)
	if err != nil {
		k.t.Fatalf("open %s: %v", k.fabrics, err)
	}
	defer func() { _ = f.Close() }()
	if _, err := f.Write([]byte(options)); err != nil {
		k.note("%s: %s", label, errName(err))
		return ""
	}
	b, err := io.ReadAll(f)
	if err != nil {
		k.t.Fatalf("read reply: %v", err)
	}
	var inst, cntlid int
	if _, err := fmt.Sscanf(string(b), "instance=%d,cntlid=%d\n", &inst, &cntlid); err != nil {
		k.t.Fatalf("reply %q: %v", b, err)
	}
	name := fmt.Sprintf("nvme%d", inst)
	k.created = append(k.created, name)
	k.note("%s: ok, %s", label, k.sym(name))
	return name
}

func (k *kapi) read(rel string) string {
	b, err := os.ReadFile(filepath.Join(k.sys, rel))
	if err != nil {
		return errName(err)
	}
	return strings.TrimSuffix(string(b), "\n")
}

func (k *kapi) readCtrl(name string, attrs ...string) {
	for _, a := range attrs {
		k.note("%s %s = %q", k.sym(name), a, k.read(filepath.Join("class/nvme", name, a)))
	}
}

func (k *kapi) write(name, attr, value string) {
	err := k.writeAttr(filepath.Join(k.sys, "class/nvme", name, attr), value)
	k.note("write %s %s=%q: %s", k.sym(name), attr, value, errName(err))
}

// entries lists the NVMe objects (nvme*) of a sysfs directory with
// controller and subsystem numbers replaced by symbols, for comparing
// layouts.
func (k *kapi) entries(rel string, replace map[string]string) []string {
	des, err := os.ReadDir(filepath.Join(k.sys, rel))
	if err != nil {
		return []string{errName(err)}
	}
	var out []string
	for _, d := range des {
		n := d.Name()
		if !strings.HasPrefix(n, "nvme") {
			continue
		}
		for from, to := range replace {
			n = strings.ReplaceAll(n, from, to)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func (k *kapi) deleteAll() {
	for _, name := range slices.Backward(k.created) {
		_ = k.writeAttr(filepath.Join(k.sys, "class/nvme", name, "delete_controller"), "1")
	}
	k.created = nil
}

// export links (or unlinks) a subsystem to the target's port.
func (k *kapi) export(nqn string, linked bool) {
	if k.sim != nil {
		k.sim.SetExported(labtarget.TrAddr, labtarget.TrSvcID, nqn, linked)
		return
	}
	do := labtarget.Unlink
	if linked {
		do = labtarget.Link
	}
	if err := do(nqn); err != nil {
		k.t.Fatal(err)
	}
}

// waitState notes a controller's state once it is want ("gone": no
// longer in sysfs), or what it is when the wait ends. The real kernel gets
// time; the simulation must already be there.
func (k *kapi) waitState(name, want string, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		got := k.read(filepath.Join("class/nvme", name, "state"))
		if got == errName(syscall.ENOENT) {
			got = "gone"
		}
		if got == want || k.sim != nil || time.Now().After(deadline) {
			k.note("%s is %s", k.sym(name), got)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitDisks waits until controller name has n disks (path disks, or its
// own): the kernel scans namespaces after the connect returns.
func (k *kapi) waitDisks(name string, n int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for len(k.entries(filepath.Join("class/nvme", name), nil)) < n && k.sim == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

// expire ends ctrl_loss_tmo of nqn's reconnecting controllers: the
// simulation's ExpireCtrlLoss, the real kernel's own timer.
func (k *kapi) expire(nqn string) {
	if k.sim != nil {
		k.sim.ExpireCtrlLoss(nqn)
	}
}

// labOpts is an option string to the lab target as host-1, plus extra.
func labOpts(nqn string, extra ...string) string {
	return strings.Join(append([]string{"nqn=" + nqn, "transport=tcp", "traddr=" + labtarget.TrAddr, "trsvcid=" + labtarget.TrSvcID,
		"hostnqn=" + labtarget.HostNQN, "hostid=" + labtarget.HostID}, extra...), ",")
}

const otherHostID = "0ccccccc-0000-4000-8000-00000000000c"

// conformanceScenarios each drive a kernel and leave no controller behind.
var conformanceScenarios = []struct {
	name string
	run  func(k *kapi)
}{
	{"option list", func(k *kapi) {
		f, err := k.open(k.fabrics)
		if err != nil {
			k.t.Fatal(err)
		}
		defer func() { _ = f.Close() }()
		b, err := io.ReadAll(f)
		k.note("list %q, %s", b, errName(err))
	}},
	{"option parsing", func(k *kapi) {
		one := labtarget.SubsystemOne
		for _, c := range []struct{ label, opts string }{
			{"unknown option", labOpts(one, "ctrl_los_tmo=5")},
			{"flag with a value", labOpts(one, "hdr_digest=1")},
			{"missing value", labOpts(one, "host_iface=")},
			{"8 is no octal digit", labOpts(one, "reconnect_delay=08")},
			{"plus sign", labOpts(one, "reconnect_delay=+5")},
			{"out of int range", labOpts(one, "ctrl_loss_tmo=2147483648")},
			{"reconnect_delay 0", labOpts(one, "reconnect_delay=0")},
			{"queue_size 15", labOpts(one, "queue_size=15")},
			{"negative kato", labOpts(one, "keep_alive_tmo=-1")},
			{"no traddr", "nqn=" + one + ",transport=tcp"},
			{"transport not loaded", strings.Replace(labOpts(one), "transport=tcp", "transport=rdma", 1)},
			{"DH-HMAC-CHAP secret without envelope", labOpts(one, "dhchap_secret=secretsecret")},
		} {
			if name := k.connect(c.label, c.opts); name != "" {
				k.deleteAll()
			}
		}
	}},
	{"later values win, base 0, empty pieces, newlines", func(k *kapi) {
		one := labtarget.SubsystemOne
		name := k.connect("duplicates", ",,"+labOpts(one, "ctrl_loss_tmo=0", "ctrl_loss_tmo=30", "reconnect_delay=010\nkeep_alive_tmo=0")+",")
		if name != "" {
			k.readCtrl(name, "ctrl_loss_tmo", "reconnect_delay", "kato", "address")
			k.deleteAll()
		}
		k.connect("hostnqn twice", labOpts(one, "hostnqn="+labtarget.HostNQN))
		k.deleteAll()
		name = k.connect("trsvcid in hex", strings.Replace(labOpts(one), "trsvcid=4420", "trsvcid=0x1144", 1))
		if name != "" {
			k.readCtrl(name, "address")
			k.deleteAll()
		}
		k.connect("no trsvcid is 8009", strings.Replace(labOpts(one), ",trsvcid=4420", "", 1))
		k.connect("trsvcid 04420 is octal", strings.Replace(labOpts(one), "trsvcid=4420", "trsvcid=04420", 1))
		k.deleteAll()
	}},
	{"defaults and sysfs stores", func(k *kapi) {
		name := k.connect("defaults", labOpts(labtarget.SubsystemTwo))
		if name == "" {
			return
		}
		k.readCtrl(name, "state", "ctrl_loss_tmo", "reconnect_delay", "fast_io_fail_tmo", "kato", "transport", "subsysnqn",
			"hostnqn", "hostid", "address", "cntrltype", "sqsize")
		k.write(name, "reconnect_delay", "5") // ctrl_loss_tmo keeps its attempts
		k.readCtrl(name, "ctrl_loss_tmo")
		k.write(name, "reconnect_delay", "2")
		k.write(name, "ctrl_loss_tmo", "5")
		k.readCtrl(name, "ctrl_loss_tmo")
		k.write(name, "ctrl_loss_tmo", "-1")
		k.readCtrl(name, "ctrl_loss_tmo")
		k.write(name, "ctrl_loss_tmo", "off")
		k.write(name, "ctrl_loss_tmo", "0x10")
		k.write(name, "ctrl_loss_tmo", "010")
		k.readCtrl(name, "ctrl_loss_tmo")
		k.write(name, "fast_io_fail_tmo", "4")
		k.readCtrl(name, "fast_io_fail_tmo")
		k.write(name, "fast_io_fail_tmo", "-3")
		k.readCtrl(name, "fast_io_fail_tmo")
		k.write(name, "reconnect_delay", "-1")
		// 0 is taken (never write ctrl_loss_tmo after it: the kernel
		// divides by it); put 10 back at once.
		k.write(name, "reconnect_delay", "0")
		k.readCtrl(name, "reconnect_delay")
		k.write(name, "reconnect_delay", "10")
		k.write(name, "kato", "9")
		k.write(name, "state", "live")
		k.write(name, "no_such_attribute", "1")
		k.write(name, "delete_controller", "1")
		k.write(name, "ctrl_loss_tmo", "5")
		k.write(name, "delete_controller", "1")
		k.created = nil
	}},
	{"duplicate rule", func(k *kapi) {
		one := labtarget.SubsystemOne
		first := k.connect("first", labOpts(one))
		k.connect("same again", labOpts(one, "ctrl_loss_tmo=5"))
		k.connect("duplicate_connect", labOpts(one, "duplicate_connect"))
		k.connect("host_traddr on one side only", labOpts(one, "host_traddr=127.0.0.1"))
		k.connect("traddr as other text", strings.Replace(labOpts(one), "traddr=127.0.0.1", "traddr=127.000.0.01", 1))
		if first != "" {
			k.readCtrl(first, "subsysnqn")
		}
		k.deleteAll()
	}},
	{"host identity", func(k *kapi) {
		one, two := labtarget.SubsystemOne, labtarget.SubsystemTwo
		first := k.connect("first", labOpts(one))
		k.connect("same NQN, other ID", strings.Replace(labOpts(two), labtarget.HostID, otherHostID, 1))
		if first != "" {
			k.readCtrl(first, "hostid") // 6.1 overwrote it
		}
		k.connect("same ID, other NQN", strings.Replace(labOpts(two), labtarget.HostNQN, labtarget.AllowedHostNQN, 1))
		k.connect("first's options again", labOpts(one))
		if first != "" {
			k.readCtrl(first, "hostid")
		}
		k.connect("NQN without ID", strings.Replace(labOpts(two), ",hostid="+labtarget.HostID, "", 1))
		k.connect("NQN without ID, duplicate_connect", strings.Replace(labOpts(two, "duplicate_connect"), ",hostid="+labtarget.HostID, "", 1))
		if first != "" {
			id := k.read(filepath.Join("class/nvme", first, "hostid"))
			k.note("first's hostid is random now: %v", id != labtarget.HostID && id != otherHostID && len(id) == 36)
		}
		k.deleteAll()
		k.connect("other ID once the first is gone", strings.Replace(labOpts(two), labtarget.HostID, otherHostID, 1))
		k.deleteAll()
	}},
	{"target answers", func(k *kapi) {
		k.connect("not allowed", labOpts(labtarget.SubsystemACL))
		k.connect("no such subsystem", labOpts("nqn.2026-01.io.nvmeof.lab:none"))
		k.connect("nothing listening", strings.Replace(labOpts(labtarget.SubsystemOne), "4420", "4430", 1))
		k.connect("host_traddr not local", labOpts(labtarget.SubsystemOne, "host_traddr=192.0.2.9"))
		k.connect("unknown host_iface", labOpts(labtarget.SubsystemOne, "host_iface=eth7"))
		k.deleteAll()
	}},
	{"outage", func(k *kapi) {
		one, two := labtarget.SubsystemOne, labtarget.SubsystemTwo
		k.t.Cleanup(func() {
			for _, nqn := range []string{one, two} {
				if err := labtarget.Link(nqn); err != nil {
					k.t.Error(err)
				}
			}
		})
		a := k.connect("a reconnects forever", labOpts(one, "reconnect_delay=1", "ctrl_loss_tmo=-1"))
		b := k.connect("b gives up at the first error", labOpts(two, "reconnect_delay=1", "ctrl_loss_tmo=0"))
		c := k.connect("c gives up after 2 s", labOpts(two, "reconnect_delay=1", "ctrl_loss_tmo=2", "duplicate_connect"))
		if a == "" || b == "" || c == "" {
			k.deleteAll()
			return
		}
		k.export(one, false)
		k.waitState(a, "connecting", 15*time.Second)
		k.readCtrl(a, "address")
		k.connect("connect to the unlinked subsystem, the port still listening", labOpts(one, "duplicate_connect"))
		k.export(two, false)
		k.waitState(b, "gone", 15*time.Second)
		k.waitState(c, "connecting", 15*time.Second)
		k.expire(two)
		k.waitState(c, "gone", 20*time.Second)
		k.export(one, true)
		k.export(two, true)
		k.waitState(a, "live", 15*time.Second)
		k.readCtrl(a, "address")
		k.deleteAll()
	}},
	{"second write on one descriptor", func(k *kapi) {
		f, err := k.open(k.fabrics)
		if err != nil {
			k.t.Fatal(err)
		}
		_, err1 := f.Write([]byte(labOpts(labtarget.SubsystemOne)))
		_, err2 := f.Write([]byte(labOpts(labtarget.SubsystemTwo)))
		b, err3 := io.ReadAll(f)
		_ = f.Close()
		k.note("first %s, second %s, read %s", errName(err1), errName(err2), errName(err3))
		var inst, cntlid int
		if _, err := fmt.Sscanf(string(b), "instance=%d,cntlid=%d\n", &inst, &cntlid); err == nil {
			k.created = append(k.created, fmt.Sprintf("nvme%d", inst))
		}
		k.deleteAll()
	}},
	{"numbers and layout", func(k *kapi) {
		one, two := labtarget.SubsystemOne, labtarget.SubsystemTwo
		a := k.connect("a", labOpts(one))
		b := k.connect("b to the same subsystem", labOpts(one, "duplicate_connect"))
		c := k.connect("c", labOpts(two))
		if a == "" || b == "" || c == "" {
			k.deleteAll()
			return
		}
		for _, name := range []string{a, b} {
			k.waitDisks(name, 2, 10*time.Second)
		}
		aN, bN, cN := strings.TrimPrefix(a, "nvme"), strings.TrimPrefix(b, "nvme"), strings.TrimPrefix(c, "nvme")
		replace := map[string]string{"nvme" + aN + "c": "nvmeAc", "c" + aN + "n": "cAn", "c" + bN + "n": "cBn",
			"nvme" + cN + "c": "nvmeCc", "c" + cN + "n": "cCn", "nvme" + aN + "n": "nvmeAn", "nvme" + cN + "n": "nvmeCn"}
		k.note("a's subsystem: %v", k.entries("class/nvme-subsystem/nvme-subsys"+aN, replace))
		k.note("a: %v", k.entries("class/nvme/"+a, replace))
		k.note("b: %v", k.entries("class/nvme/"+b, replace))
		head := "class/nvme-subsystem/nvme-subsys" + aN + "/nvme" + aN + "n1"
		for _, attr := range []string{"nsid", "uuid", "nguid", "wwid", "size", "hidden"} {
			k.note("head %s = %q", attr, k.read(filepath.Join(head, attr)))
		}
		path := "class/nvme/" + b + "/nvme" + aN + "c" + bN + "n2"
		for _, attr := range []string{"nsid", "hidden", "ana_state"} {
			k.note("path %s = %q", attr, k.read(filepath.Join(path, attr)))
		}
		// a goes: its number stays with its subsystem; b keeps the heads.
		k.write(a, "delete_controller", "1")
		k.note("subsystem after a: %v", k.entries("class/nvme-subsystem/nvme-subsys"+aN, replace))
		d := k.connect("d", labOpts(one, "duplicate_connect"))
		k.note("d took a's number: %v, c's+1: %v", d == a, d == fmt.Sprintf("nvme%d", atoi(cN)+1))
		k.created = slices.DeleteFunc(k.created, func(n string) bool { return n == a })
		k.deleteAll()
		k.note("subsystem after all: %s", k.read("class/nvme-subsystem/nvme-subsys"+aN+"/subsysnqn"))
	}},
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func TestKerneltestConformance(t *testing.T) {
	// kerneltest models Debian's 6.1. On another kernel the differences
	// are listed (6.12: its option list adds tls, keyring and tls_key; host
	// NQN and ID are strict; a reconnect answered "subsystem not found"
	// ends the controller; namespace heads are numbered otherwise), and
	// the test skips, naming the model it lacks.
	release := labCapabilities(t).Release
	modelled := strings.HasPrefix(release, "6.1.")
	differences := 0
	defer func() {
		if !modelled && !t.Failed() {
			t.Skipf("kerneltest models Linux 6.1 only; kernel %s differs from it in %d step(s), listed above: a model of this kernel is missing", release, differences)
		}
	}()
	for _, sc := range conformanceScenarios {
		t.Run(sc.name, func(t *testing.T) {
			h := kerneltest.New(t, kerneltest.WithCPUs(1))
			for _, s := range labtarget.Subsystems() {
				var nss []kerneltest.Namespace
				for _, ns := range s.Namespaces {
					nss = append(nss, kerneltest.Namespace{NSID: ns.NSID, UUID: ns.UUID, NGUID: ns.NGUID, SizeBytes: labtarget.NamespaceSize})
				}
				h.AddTarget(labtarget.TrAddr, labtarget.TrSvcID, s.NQN, nss...)
				if !s.AllowAnyHost {
					h.SetAllowedHosts(s.NQN, s.AllowedHosts)
				}
			}
			sim := &kapi{t: t, sys: h.SysfsRoot(), fabrics: h.FabricsPath(), open: h.OpenFabrics, writeAttr: h.WriteAttr,
				sim: h, symbols: map[string]string{}}
			real := &kapi{t: t, sys: "/sys", fabrics: "/dev/nvme-fabrics", symbols: map[string]string{},
				open: func(p string) (io.ReadWriteCloser, error) { return os.OpenFile(p, os.O_RDWR, 0) },
				writeAttr: func(p, v string) error {
					f, err := os.OpenFile(p, os.O_WRONLY, 0)
					if err != nil {
						return err
					}
					_, werr := f.WriteString(v)
					return errors.Join(werr, f.Close())
				}}
			t.Cleanup(real.deleteAll)
			sc.run(sim)
			sc.run(real)
			for i := range max(len(sim.log), len(real.log)) {
				var s, r string
				if i < len(sim.log) {
					s = sim.log[i]
				}
				if i < len(real.log) {
					r = real.log[i]
				}
				switch {
				case s != r && !modelled:
					differences++
					t.Logf("step %d differs on %s:\n  kernel:     %s\n  kerneltest: %s", i, release, r, s)
				case s != r:
					t.Errorf("step %d:\n  kernel:     %s\n  kerneltest: %s", i, r, s)
				default:
					t.Logf("step %d: %s", i, r)
				}
			}
		})
	}
}
