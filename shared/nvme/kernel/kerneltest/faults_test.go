package kerneltest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

func TestHoldConnects(t *testing.T) {
	t.Run("the held controller is in sysfs, connecting", func(t *testing.T) {
		h := newHost(t)
		entered, release := h.HoldConnects(nqnA)
		done := make(chan error, 1)
		go func() { _, err := write(h, opts(nqnA)); done <- err }()
		<-entered
		if got := names(h); got != "nvme0=connecting" {
			t.Errorf("controllers while held %q", got)
		}
		if got := attr(t, h, "class/nvme/nvme0/cntlid"); got != "0" || exists(h, "class/nvme-subsystem/nvme-subsys0") {
			t.Errorf("held controller has cntlid %s or a subsystem already", got)
		}
		release()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := names(h); got != "nvme0=live" {
			t.Errorf("controllers after %q", got)
		}
	})
	t.Run("other connects wait behind it, as behind the kernel's mutex", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newHost(t)
			entered, release := h.HoldConnects(nqnA)
			held := make(chan error, 1)
			go func() { _, err := write(h, opts(nqnA)); held <- err }()
			<-entered
			other := make(chan error, 1)
			go func() { _, err := write(h, opts(nqnB)); other <- err }()
			synctest.Wait()
			select {
			case err := <-other:
				t.Fatalf("a connect to another subsystem finished while one was held: %v", err)
			default:
			}
			release()
			if err := <-held; err != nil {
				t.Fatal(err)
			}
			if err := <-other; err != nil {
				t.Fatal(err)
			}
		})
	})
	t.Run("with concurrent connects they do not", func(t *testing.T) {
		h := newHost(t, WithConcurrentConnects())
		entered, release := h.HoldConnects(nqnA)
		defer release()
		held := make(chan error, 1)
		go func() { _, err := write(h, opts(nqnA)); held <- err }()
		<-entered
		mustConnect(t, h, opts(nqnB))
		release()
		if err := <-held; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a target that went down meanwhile refuses", func(t *testing.T) {
		h := newHost(t)
		entered, release := h.HoldConnects(nqnA)
		done := make(chan error, 1)
		go func() { _, err := write(h, opts(nqnA)); done <- err }()
		<-entered
		h.SetDown(nqnA, true)
		release()
		if err := <-done; !errnoIs(err, syscall.ECONNREFUSED) {
			t.Fatalf("error %v, want ECONNREFUSED", err)
		}
		if got := names(h); got != "" {
			t.Errorf("a failed connect left %q", got)
		}
		checkTree(t, h)
	})
	t.Run("deleted while held", func(t *testing.T) {
		h := newHost(t)
		entered, release := h.HoldConnects(nqnA)
		done := make(chan error, 1)
		go func() { _, err := write(h, opts(nqnA)); done <- err }()
		<-entered
		if err := h.WriteAttr(filepath.Join(h.SysfsRoot(), "class/nvme/nvme0/delete_controller"), "1"); err != nil {
			t.Fatal(err)
		}
		release()
		if err := <-done; !errnoIs(err, syscall.EINVAL) {
			t.Fatalf("error %v, want EINVAL", err)
		}
		checkTree(t, h)
	})
	t.Run("the test's end releases a held connect", func(t *testing.T) {
		done := make(chan error, 1)
		t.Run("inner", func(t *testing.T) {
			h := newHost(t)
			entered, _ := h.HoldConnects(nqnA)
			go func() {
				f, err := h.OpenFabrics(h.FabricsPath())
				if err != nil {
					done <- err
					return
				}
				_, err = f.Write([]byte(opts(nqnA)))
				_ = f.Close()
				done <- err
			}()
			<-entered
		})
		if err := <-done; err != nil {
			t.Errorf("released write: %v", err)
		}
	})
}

func TestConnectLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHost(t)
		h.SetConnectLatency(30 * time.Millisecond)
		start := time.Now()
		errs := make(chan error, 2)
		for _, n := range []string{nqnA, nqnB} {
			go func() { _, err := write(h, opts(n)); errs <- err }()
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		// Serialised: two connects take twice the latency (fake time).
		if took := time.Since(start); took != 60*time.Millisecond {
			t.Errorf("two connects took %s, want 60ms", took)
		}
	})
}

func TestBreakAttr(t *testing.T) {
	h := newHost(t)
	mustConnect(t, h, opts(nqnA))
	repair := h.BreakAttr("block/nvme0n1/uuid")
	path := filepath.Join(h.SysfsRoot(), "block/nvme0n1/uuid")
	if _, err := os.ReadFile(path); err == nil || errors.Is(err, os.ErrNotExist) {
		t.Fatalf("read of a broken attribute: %v, want an error other than not-exist", err)
	}
	// The connector reads attributes with open and read system calls.
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open of a broken attribute: %v, want it to succeed", err)
	}
	var buf [4096]byte
	_, err = syscall.Read(fd, buf[:])
	_ = syscall.Close(fd)
	if procMemReadsEIO() && !errors.Is(err, syscall.EIO) {
		t.Errorf("read: %v, want EIO", err)
	} else if err == nil {
		t.Error("read of a broken attribute succeeded")
	}
	// Other attributes and listings still work.
	if got := attr(t, h, "block/nvme0n1/nsid"); got != "1" {
		t.Errorf("nsid %q", got)
	}
	repair()
	if got := attr(t, h, "block/nvme0n1/uuid"); got != ns1.UUID {
		t.Errorf("uuid after repair %q", got)
	}

	// A broken attribute that changes shows the change once repaired.
	repair = h.BreakAttr(filepath.Join(h.SysfsRoot(), "class/nvme/nvme0/state"))
	h.SetDown(nqnA, true)
	repair()
	if got := attr(t, h, "class/nvme/nvme0/state"); got != "connecting" {
		t.Errorf("state after repair %q", got)
	}
	// A broken rw attribute keeps its mode and stays writable.
	repair = h.BreakAttr("class/nvme/nvme0/ctrl_loss_tmo")
	if err := h.WriteAttr(filepath.Join(h.SysfsRoot(), "class/nvme/nvme0/ctrl_loss_tmo"), "-1"); err != nil {
		t.Fatal(err)
	}
	repair()
	fi, err := os.Stat(filepath.Join(h.SysfsRoot(), "class/nvme/nvme0/ctrl_loss_tmo"))
	if got := attr(t, h, "class/nvme/nvme0/ctrl_loss_tmo"); got != "off" || err != nil || fi.Mode().Perm() != modeRW {
		t.Errorf("ctrl_loss_tmo after repair %q, mode %v, %v", got, fi.Mode(), err)
	}
	checkTree(t, h)
}

func TestOutages(t *testing.T) {
	h := newHost(t)
	h.AddTarget("127.0.0.1", "4421", nqnA)
	mustConnect(t, h, opts(nqnA, "ctrl_loss_tmo=-1"))
	mustConnect(t, h, strings.Replace(opts(nqnA, "ctrl_loss_tmo=30"), "4420", "4421", 1))
	mustConnect(t, h, opts(nqnB, "ctrl_loss_tmo=0"))

	h.SetPortDown("127.0.0.1", "4421", true)
	if got := names(h); got != "nvme0=live nvme1=connecting nvme2=live" {
		t.Errorf("port down: %q", got)
	}
	h.SetPortDown("127.0.0.1", "4421", false)
	h.SetDown(nqnA, true)
	h.SetDown(nqnB, true)
	// ctrl_loss_tmo 0: deleted at the first error, its head with it.
	if got := names(h); got != "nvme0=connecting nvme1=connecting" || devExists(h, "nvme2n1") {
		t.Errorf("targets down: %q, disks %s", got, diskNames(h))
	}
	if gone := h.ExpireCtrlLoss(nqnA); len(gone) != 1 || gone[0] != "nvme1" {
		t.Errorf("ExpireCtrlLoss = %v, want nvme1 (ctrl_loss_tmo 30; nvme0 has off)", gone)
	}
	// The head stays while a path (nvme0, reconnecting) remains.
	if !devExists(h, "nvme0n1") {
		t.Error("head disk went with a path while another remains")
	}
	h.SetDown(nqnA, false)
	if got := names(h); got != "nvme0=live" {
		t.Errorf("target back: %q", got)
	}
	if got := attr(t, h, "class/nvme/nvme0/address"); !strings.HasSuffix(got, ",src_addr=127.0.0.1") {
		t.Errorf("address when live again %q", got)
	}
	checkTree(t, h)
}

func TestNamespaceEvents(t *testing.T) {
	h := newHost(t)
	release := h.HoldScans(nqnA)
	mustConnect(t, h, opts(nqnA))
	if got := diskNames(h); got != "" || names(h) != "nvme0=live" {
		t.Fatalf("held scan: controllers %q, disks %q", names(h), got)
	}
	release()
	if got := diskNames(h); got != "nvme0c0n1 nvme0c0n2 nvme0n1 nvme0n2" {
		t.Fatalf("after the scan: %s", got)
	}
	h.RemoveNamespace(nqnA, 1)
	h.AddNamespace(nqnA, Namespace{NSID: 9, NGUID: "99999999999999999999999999999999", SizeBytes: 4096})
	// The freed index 1 is the lowest free: nsid 9 gets it.
	if got := diskNames(h); got != "nvme0c0n1 nvme0c0n2 nvme0n1 nvme0n2" || attr(t, h, "block/nvme0n1/nsid") != "9" {
		t.Errorf("after remove and add: %s, nvme0n1 is nsid %s", got, attr(t, h, "block/nvme0n1/nsid"))
	}
	h.ResizeNamespace(nqnA, 2, 4<<20)
	if a, b := attr(t, h, "block/nvme0n2/size"), attr(t, h, "block/nvme0c0n2/size"); a != "8192" || b != "8192" {
		t.Errorf("sizes after resize %s, %s; want 8192 sectors", a, b)
	}
	if fi, err := os.Stat(filepath.Join(h.DevRoot(), "nvme0n2")); err != nil || fi.Size() != 4<<20 {
		t.Errorf("device node after resize: %v, %v", fi, err)
	}
	if got := attr(t, h, "block/nvme0n1/wwid"); got != "eui.99999999999999999999999999999999" {
		t.Errorf("wwid of an NGUID-only namespace %q", got)
	}
	checkTree(t, h)
}

func TestHoldDisk(t *testing.T) {
	h := newHost(t)
	mustConnect(t, h, opts(nqnB))
	if got := attr(t, h, "block/nvme0n1/dev"); got != "259:1" {
		t.Fatalf("head dev %s", got)
	}
	release, err := h.HoldDisk("nvme0n1")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.RemoveController("nvme0"); err != nil {
		t.Fatal(err)
	}
	mustConnect(t, h, opts(nqnB))
	// 259:1 is still held (a mount of the removed disk): the new head
	// gets another number, the path disk reuses the free 259:0.
	if a, b := attr(t, h, "block/nvme0c0n1/dev"), attr(t, h, "block/nvme0n1/dev"); a != "259:0" || b != "259:2" {
		t.Errorf("devs %s, %s; want 259:0 and 259:2", a, b)
	}
	release()
	if err := h.RemoveController("nvme0"); err != nil {
		t.Fatal(err)
	}
	mustConnect(t, h, opts(nqnB))
	if b := attr(t, h, "block/nvme0n1/dev"); b != "259:1" {
		t.Errorf("head dev %s after the hold ended, want 259:1 reused", b)
	}
}

func TestSetANAStateAndFSErrors(t *testing.T) {
	h := newHost(t)
	mustConnect(t, h, opts(nqnA))
	if err := h.SetANAState("nvme0", "inaccessible"); err != nil {
		t.Fatal(err)
	}
	if got := attr(t, h, "block/nvme0c0n2/ana_state"); got != "inaccessible" {
		t.Errorf("ana_state %q", got)
	}
	if err := h.SetANAState("nvme0", "dead"); err == nil {
		t.Error("a bogus ANA state was accepted")
	}
	if err := h.SetANAState("nvme9", "optimized"); err == nil {
		t.Error("an unknown controller was accepted")
	}
	h.SetFSErrors("/dev/nvme0n1", 2)
	if got := attr(t, h, "fs/ext4/nvme0n1/errors_count"); got != "2" {
		t.Errorf("errors_count %q", got)
	}
	h.SetFSErrors("nvme0n1", -1)
	if exists(h, "fs/ext4/nvme0n1") {
		t.Error("fs/ext4/nvme0n1 outlived the unmount")
	}
	if err := New(t, WithoutMultipath()).SetANAState("nvme0", "optimized"); err == nil {
		t.Error("SetANAState without multipath was accepted")
	}
}

func TestLookupHost(t *testing.T) {
	h := New(t)
	h.SetHostAddr("array.example", "192.0.2.7", "2001:db8::7")
	got, err := h.LookupHost(t.Context(), "array.example")
	if err != nil || len(got) != 2 || got[0].String() != "192.0.2.7" {
		t.Errorf("LookupHost = %v, %v", got, err)
	}
	var dnsErr *net.DNSError
	if _, err := h.LookupHost(t.Context(), "nowhere.example"); !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("unknown name: %v, want a not-found DNSError", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := h.LookupHost(ctx, "array.example"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestCountersAndHooks(t *testing.T) {
	h := newHost(t)
	name, err := h.AdminConnect(opts(nqnB))
	if err != nil || name != "nvme0" {
		t.Fatalf("AdminConnect = %s, %v", name, err)
	}
	h.FailNextConnect(syscall.ECONNREFUSED)
	var after string
	h.AfterNextConnect(func(ctrl string) { after = ctrl })
	secret := "DHHC-1:00:c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0Cg==:"
	if _, err := write(h, opts(nqnA, "dhchap_secret="+secret)); !errnoIs(err, syscall.ECONNREFUSED) {
		t.Fatalf("injected failure: %v", err)
	}
	mustConnect(t, h, opts(nqnA, "dhchap_secret="+secret))
	if after != "nvme1" {
		t.Errorf("after hook got %q", after)
	}
	if _, err := h.AdminConnect(opts(nqnA)); !errnoIs(err, syscall.EALREADY) {
		t.Errorf("admin duplicate: %v", err)
	}
	w := h.Writes()
	if h.Connects() != 1 || len(w) != 2 || !strings.Contains(w[1], secret) {
		t.Errorf("connects %d, writes %q: want 1 and the two writes of the code under test, secrets included", h.Connects(), w)
	}
	for _, line := range h.Dmesg() {
		if strings.Contains(line, secret) {
			t.Errorf("dmesg shows the secret: %q", line)
		}
	}
}

// The hooks run outside the kernel's mutex: they may connect themselves.
func TestHooksMayConnect(t *testing.T) {
	h := newHost(t)
	var admin string
	h.AfterNextConnect(func(string) {
		name, err := h.AdminConnect(opts(nqnB))
		if err != nil {
			t.Error(err)
		}
		admin = name
	})
	h.BeforeNextConnect(func() {
		if _, err := h.AdminConnect(opts(nqnA, "duplicate_connect")); err != nil {
			t.Error(err)
		}
	})
	mustConnect(t, h, opts(nqnA, "duplicate_connect"))
	if got := names(h); got != "nvme0=live nvme1=live nvme2=live" || admin != "nvme2" {
		t.Errorf("controllers %q, after hook made %q", got, admin)
	}
}

func TestSetExported(t *testing.T) {
	h := newHost(t)
	mustConnect(t, h, opts(nqnA))
	mustConnect(t, h, opts(nqnB))
	h.SetExported("127.0.0.1", "4420", nqnA, false)
	if got := names(h); got != "nvme0=connecting nvme1=live" {
		t.Errorf("after unlinking A: %q", got)
	}
	// The port still listens for B: a connect to A fails at the NVMe level.
	if _, err := write(h, opts(nqnA, "duplicate_connect")); !errnoIs(err, syscall.EIO) {
		t.Errorf("connect to an unlinked subsystem: %v, want EIO", err)
	}
	h.SetExported("127.0.0.1", "4420", nqnB, false)
	if _, err := write(h, opts(nqnA, "duplicate_connect")); !errnoIs(err, syscall.ECONNREFUSED) {
		t.Errorf("connect once the last subsystem is unlinked: %v, want ECONNREFUSED", err)
	}
	h.SetExported("127.0.0.1", "4420", nqnA, true)
	h.SetExported("127.0.0.1", "4420", nqnB, true)
	if got := names(h); got != "nvme0=live nvme1=live" {
		t.Errorf("after linking again: %q", got)
	}
	checkTree(t, h)
}

func TestInterfaces(t *testing.T) {
	h := New(t, WithInterface("eth0", "192.0.2.10/24", "2001:db8::10/64"))
	h.AddTarget("192.0.2.1", "4420", nqnA, ns1)
	mustConnect(t, h, strings.Replace(opts(nqnA), "127.0.0.1", "192.0.2.1", 1))
	if got := attr(t, h, "class/nvme/nvme0/address"); got != "traddr=192.0.2.1,trsvcid=4420,src_addr=192.0.2.10" {
		t.Errorf("address %q: want the interface's address as the source", got)
	}
	mustConnect(t, h, strings.Replace(opts(nqnA, "host_iface=eth0", "host_traddr=192.0.2.10"), "127.0.0.1", "192.0.2.1", 1))
	if got := attr(t, h, "class/nvme/nvme1/address"); got != "traddr=192.0.2.1,trsvcid=4420,host_traddr=192.0.2.10,host_iface=eth0,src_addr=192.0.2.10" {
		t.Errorf("address %q", got)
	}
	fatal := make(chan bool, 1)
	go func() {
		defer func() { fatal <- recover() != nil }()
		New(&fatalTB{recordTB: &recordTB{TB: t}}, WithInterface("eth1", "not-a-prefix"))
	}()
	if !<-fatal {
		t.Error("a malformed interface prefix did not stop New")
	}
}

// fatalTB turns Fatalf into a panic the test can recover from.
type fatalTB struct{ *recordTB }

func (f *fatalTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
