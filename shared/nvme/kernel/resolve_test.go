package kernel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel/kerneltest"
)

// multipathHost: subsystem nvme-subsys1 (nqnOne) reached by controllers
// nvme2 (through 127.0.0.1:4421, now down: connecting) and nvme3, head
// disks nvme1n1 (nsid 2), nvme1n2 (nsid 1) and nvme1n3 (nsid 7, NGUID
// only, added while nvme2 was down, so only nvme3 reaches it). nvme1, the
// controller the subsystem took its number from, is gone; nvme0 belongs to
// nqnTwo. None of the names can be derived from a controller or namespace
// number: they come from the kernel's allocation, as on a host.
func multipathHost(t *testing.T) *kerneltest.Host {
	t.Helper()
	h := kerneltest.New(t)
	h.AddTarget("127.0.0.1", "4420", nqnTwo, kerneltest.Namespace{NSID: 1, UUID: "33333333-3333-4333-8333-333333333333",
		NGUID: "33333333333333333333333333333333", SizeBytes: 1 << 20})
	h.AddTarget("127.0.0.1", "4420", nqnOne, nsTwo)
	h.AddTarget("127.0.0.1", "4421", nqnOne)
	adminConnect(t, h, adminOptions(nqnTwo))
	first := adminConnect(t, h, adminOptions(nqnOne))
	h.AddNamespace(nqnOne, nsOne)
	adminConnect(t, h, strings.Replace(adminOptions(nqnOne), "4420", "4421", 1))
	adminConnect(t, h, adminOptions(nqnOne, "duplicate_connect"))
	if err := h.RemoveController(first); err != nil {
		t.Fatal(err)
	}
	h.SetPortDown("127.0.0.1", "4421", true)
	h.AddNamespace(nqnOne, nsNoUUID)
	return h
}

// plainHost: native multipath off; controller nvme1 of nqnOne with its own
// disks nvme1n1 (nsid 2) and nvme1n2 (nsid 1); nvme0 belongs to nqnTwo.
func plainHost(t *testing.T) *kerneltest.Host {
	t.Helper()
	h := kerneltest.New(t, kerneltest.WithoutMultipath())
	h.AddTarget("127.0.0.1", "4420", nqnTwo, kerneltest.Namespace{NSID: 1, UUID: "33333333-3333-4333-8333-333333333333", SizeBytes: 1 << 20})
	h.AddTarget("127.0.0.1", "4420", nqnOne, nsTwo)
	adminConnect(t, h, adminOptions(nqnTwo))
	adminConnect(t, h, adminOptions(nqnOne))
	h.AddNamespace(nqnOne, nsOne)
	return h
}

func TestResolve(t *testing.T) {
	ctrl3 := Controller{Name: "nvme3", Subsystem: nqnOne}
	plain1 := Controller{Name: "nvme1", Subsystem: nqnOne}
	tests := []struct {
		name     string
		fixture  func(*testing.T) *kerneltest.Host
		ctrl     Controller
		sel      nvme.NamespaceSelector
		wantDisk string
		wantErr  error
		wantText []string
	}{
		{name: "multipath by nsid", fixture: multipathHost, ctrl: ctrl3, sel: nvme.NamespaceSelector{NSID: 1}, wantDisk: "nvme1n2"},
		{name: "multipath by nsid, second namespace", fixture: multipathHost, ctrl: ctrl3, sel: nvme.NamespaceSelector{NSID: 2}, wantDisk: "nvme1n1"},
		{name: "multipath by nsid verified by uuid", fixture: multipathHost, ctrl: ctrl3,
			sel: nvme.NamespaceSelector{NSID: 1, UUID: "11111111-1111-4111-8111-111111111111"}, wantDisk: "nvme1n2"},
		{name: "multipath by uuid only", fixture: multipathHost, ctrl: ctrl3,
			sel: nvme.NamespaceSelector{UUID: "22222222-2222-4222-8222-222222222222"}, wantDisk: "nvme1n1"},
		{name: "multipath by nguid in uuid layout", fixture: multipathHost, ctrl: ctrl3,
			sel: nvme.NamespaceSelector{NGUID: "77777777-7777-7777-7777-777777777777"}, wantDisk: "nvme1n3"},
		{name: "the second controller reaches the same head", fixture: multipathHost,
			ctrl: Controller{Name: "nvme2", Subsystem: nqnOne}, sel: nvme.NamespaceSelector{NSID: 1}, wantDisk: "nvme1n2"},
		{name: "wrong uuid is refused naming both", fixture: multipathHost, ctrl: ctrl3,
			sel:     nvme.NamespaceSelector{NSID: 1, UUID: "22222222-2222-4222-8222-222222222222"},
			wantErr: ErrNamespaceMismatch, wantText: []string{"22222222-2222-4222-8222-222222222222", "11111111-1111-4111-8111-111111111111"}},
		{name: "wrong nguid is refused naming both", fixture: multipathHost, ctrl: ctrl3,
			sel:     nvme.NamespaceSelector{NSID: 7, NGUID: "66666666666666666666666666666666"},
			wantErr: ErrNamespaceMismatch, wantText: []string{"66666666666666666666666666666666", "77777777777777777777777777777777"}},
		{name: "a uuid the namespace lacks is refused", fixture: multipathHost, ctrl: ctrl3,
			sel:     nvme.NamespaceSelector{NSID: 7, UUID: "77777777-7777-7777-7777-777777777777"},
			wantErr: ErrNamespaceMismatch, wantText: []string{"the namespace has none"}},
		{name: "plain by nsid", fixture: plainHost, ctrl: plain1, sel: nvme.NamespaceSelector{NSID: 1}, wantDisk: "nvme1n2"},
		{name: "plain by uuid", fixture: plainHost, ctrl: plain1, sel: nvme.NamespaceSelector{UUID: nsTwo.UUID}, wantDisk: "nvme1n1"},
		{name: "controller gone", fixture: plainHost, ctrl: Controller{Name: "nvme4", Subsystem: nqnOne}, sel: nvme.NamespaceSelector{NSID: 1}, wantErr: ErrControllerGone},
		{name: "controller name reused by another subsystem", fixture: multipathHost,
			ctrl: Controller{Name: "nvme0", Subsystem: nqnOne}, sel: nvme.NamespaceSelector{NSID: 1}, wantErr: ErrControllerGone},
		{name: "invalid selector", fixture: plainHost, ctrl: plain1, sel: nvme.NamespaceSelector{}, wantErr: nvme.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.fixture(t)
			k := newTestConnector(t, h)
			ns, err := k.Resolve(t.Context(), tt.ctrl, tt.sel)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
				for _, s := range tt.wantText {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not name %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ns.Name != tt.wantDisk || ns.DevicePath != filepath.Join(h.DevRoot(), tt.wantDisk) || ns.Subsystem != nqnOne {
				t.Errorf("namespace = %+v, want disk %s", ns, tt.wantDisk)
			}
		})
	}
}

func TestResolveNamespaceDetails(t *testing.T) {
	h := multipathHost(t)
	k := newTestConnector(t, h)
	ns, err := k.Resolve(t.Context(), Controller{Name: "nvme3", Subsystem: nqnOne}, nvme.NamespaceSelector{NSID: 7})
	if err != nil {
		t.Fatal(err)
	}
	// 259:4 is the number the kernel gives it: the lowest free when it
	// appeared, nvme1's path disks having freed 259:2 and 259:4.
	want := Namespace{DevicePath: filepath.Join(h.DevRoot(), "nvme1n3"), Name: "nvme1n3", Subsystem: nqnOne, NSID: 7,
		NGUID: "77777777777777777777777777777777", SizeBytes: 8 * 512, Dev: "259:4"}
	if !reflect.DeepEqual(ns, want) {
		t.Errorf("got  %+v\nwant %+v", ns, want)
	}
}

// The kernel adds namespaces after the connect returns: Resolve waits.
func TestResolveWaitsForTheScan(t *testing.T) {
	h := kerneltest.New(t)
	h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne)
	scan := h.HoldScans(nqnOne)
	name := adminConnect(t, h, adminOptions(nqnOne))
	k := newTestConnector(t, h)

	type result struct {
		ns  Namespace
		err error
	}
	done := make(chan result, 1)
	go func() {
		ns, err := k.Resolve(t.Context(), Controller{Name: name, Subsystem: nqnOne}, nvme.NamespaceSelector{NSID: 1})
		done <- result{ns, err}
	}()
	scan()
	r := <-done
	if r.err != nil || r.ns.Name != "nvme0n1" {
		t.Fatalf("Resolve = %+v, %v; want nvme0n1", r.ns, r.err)
	}
}

func TestResolveGivesUpWithTheContext(t *testing.T) {
	h := kerneltest.New(t)
	h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne)
	h.HoldScans(nqnOne)
	name := adminConnect(t, h, adminOptions(nqnOne))
	k := newTestConnector(t, h)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	_, err := k.Resolve(ctx, Controller{Name: name, Subsystem: nqnOne}, nvme.NamespaceSelector{NSID: 1})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "did not appear") {
		t.Errorf("error = %v, want a deadline naming the namespace", err)
	}
}

func TestNamespaceOf(t *testing.T) {
	tests := []struct {
		name      string
		fixture   func(*testing.T) *kerneltest.Host
		device    string
		wantNSID  uint32
		wantCtrls string
		wantErr   bool
	}{
		{name: "head disk reached by two controllers", fixture: multipathHost, device: "/dev/nvme1n2", wantNSID: 1, wantCtrls: "nvme2 nvme3"},
		{name: "head disk reached by one controller", fixture: multipathHost, device: "nvme1n3", wantNSID: 7, wantCtrls: "nvme3"},
		{name: "plain disk", fixture: plainHost, device: "/dev/nvme1n1", wantNSID: 2, wantCtrls: "nvme1"},
		{name: "a path disk is no device", fixture: multipathHost, device: "nvme1c3n1", wantErr: true},
		{name: "unknown disk", fixture: plainHost, device: "nvme9n9", wantErr: true},
		{name: "not nvme", fixture: plainHost, device: "/dev/sda", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.fixture(t)
			k := newTestConnector(t, h)
			ns, ctrls, err := k.NamespaceOf(tt.device)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			var names []string
			for _, c := range ctrls {
				names = append(names, c.Name)
			}
			if ns.NSID != tt.wantNSID || ns.Subsystem != nqnOne || strings.Join(names, " ") != tt.wantCtrls {
				t.Errorf("got nsid %d of %q via %v, want nsid %d via %s", ns.NSID, ns.Subsystem, names, tt.wantNSID, tt.wantCtrls)
			}
		})
	}
}

// largeHost has n subsystems, each with one controller and four
// namespaces behind native multipath: 4n namespaces in all.
func largeHost(b *testing.B, n int) *kerneltest.Host {
	h := kerneltest.New(b)
	for i := range n {
		nqn := fmt.Sprintf("nqn.2026-01.io.nvmeof.bench:s%d", i)
		var nss []kerneltest.Namespace
		for j := 1; j <= 4; j++ {
			nss = append(nss, kerneltest.Namespace{NSID: uint32(j), UUID: fmt.Sprintf("%08x-0000-4000-8000-%012x", i, j),
				NGUID: fmt.Sprintf("%016x%016x", i, j), SizeBytes: 4096})
		}
		h.AddTarget("127.0.0.1", "4420", nqn, nss...)
		adminConnect(b, h, adminOptions(nqn))
	}
	return h
}

// BenchmarkResolve looks up a namespace by nsid and uuid among n
// controllers with 4 namespaces each. The cost depends on the subsystem's
// own namespaces, not on n: the subsystem is found through its path disks.
// "subsystem-fallback-scan" is the search through every subsystem that
// runs only when the path disks name a subsystem that does not hold the
// controller: O(n). "find-controller" is the look for a controller to
// adopt that every Connect makes first: one read per controller, O(n).
func BenchmarkResolve(b *testing.B) {
	for _, n := range []int{100, 1000} {
		h := largeHost(b, n)
		k, err := NewConnector(ConnectorConfig{SysfsRoot: h.SysfsRoot(), DevRoot: h.DevRoot(), ControlFiles: h, DiskEvents: simulatedDiskEvents(h)})
		if err != nil {
			b.Fatal(err)
		}
		target := n / 2
		ctrl := Controller{Name: fmt.Sprintf("nvme%d", target), Subsystem: fmt.Sprintf("nqn.2026-01.io.nvmeof.bench:s%d", target)}
		sel := nvme.NamespaceSelector{NSID: 4, UUID: fmt.Sprintf("%08x-0000-4000-8000-%012x", target, 4)}
		b.Run(fmt.Sprintf("controllers=%d/namespaces=%d", n, 4*n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := k.Resolve(b.Context(), ctrl, sel); err != nil {
					b.Fatal(err)
				}
			}
		})
		kc := k.(*kernelConnector)
		b.Run(fmt.Sprintf("controllers=%d/subsystem-fallback-scan", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := kc.sys.subsystemDir(ctrl.Name, ctrl.Subsystem, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
		conn := connectionTo(ctrl.Subsystem)
		b.Run(fmt.Sprintf("controllers=%d/find-controller", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok, err := findController(kc.sys, conn); err != nil || !ok {
					b.Fatalf("found %v, %v", ok, err)
				}
			}
		})
	}
}

// A transient sysfs read error while a namespace is looked up is an error
// (the caller must fail closed), never "no such namespace", and never a
// namespace with fields left out.
func TestLookupsFailOnReadErrors(t *testing.T) {
	for _, broken := range []string{"block/nvme1n2/uuid", "block/nvme1n2/nsid", "class/nvme/nvme3/state"} {
		t.Run(broken, func(t *testing.T) {
			h := multipathHost(t)
			k := newTestConnector(t, h)
			repair := h.BreakAttr(broken)
			_, _, err := k.NamespaceOf("/dev/nvme1n2")
			if err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrControllerGone) {
				t.Fatalf("NamespaceOf with %s unreadable: %v, want a read error", broken, err)
			}
			if !errors.Is(err, syscall.EIO) && !errors.Is(err, syscall.EISDIR) {
				t.Errorf("error %v does not carry the read's errno", err)
			}
			repair()
			ns, ctrls, err := k.NamespaceOf("/dev/nvme1n2")
			if err != nil || ns.UUID != nsOne.UUID || len(ctrls) != 2 {
				t.Errorf("after the repair: %+v via %d controllers, %v", ns, len(ctrls), err)
			}
		})
	}
	t.Run("controller state", func(t *testing.T) {
		h := multipathHost(t)
		k := newTestConnector(t, h)
		h.BreakAttr("class/nvme/nvme3/state")
		if _, err := k.Controllers(); err == nil || errors.Is(err, ErrControllerGone) {
			t.Errorf("Controllers with a state unreadable: %v, want a read error", err)
		}
	})
}

func TestNamespaces(t *testing.T) {
	tests := []struct {
		name    string
		fixture func(*testing.T) *kerneltest.Host
		ctrl    string
		want    string // "name(nsid,dev) ..."
		wantErr error
	}{
		{name: "multipath, three heads", fixture: multipathHost, ctrl: "nvme3", want: "nvme1n1(2,259:3) nvme1n2(1,259:5) nvme1n3(7,259:4)"},
		{name: "multipath, the path that missed a namespace", fixture: multipathHost, ctrl: "nvme2", want: "nvme1n1(2,259:3) nvme1n2(1,259:5)"},
		{name: "plain disks", fixture: plainHost, ctrl: "nvme1", want: "nvme1n1(2,259:1) nvme1n2(1,259:2)"},
		{name: "gone", fixture: plainHost, ctrl: "nvme7", wantErr: ErrControllerGone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.fixture(t)
			k := newTestConnector(t, h)
			got, err := k.Namespaces(Controller{Name: tt.ctrl, Subsystem: nqnOne})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, ns := range got {
				names = append(names, fmt.Sprintf("%s(%d,%s)", ns.Name, ns.NSID, ns.Dev))
			}
			slices.Sort(names)
			if strings.Join(names, " ") != tt.want {
				t.Errorf("Namespaces(%s) = %v, want %s", tt.ctrl, names, tt.want)
			}
			// The numbers are the disks' own, as the mount table shows them.
			for _, d := range h.Disks() {
				for _, ns := range got {
					if d.Name == ns.Name && d.Dev != ns.Dev {
						t.Errorf("%s: connector says %s, sysfs %s", d.Name, ns.Dev, d.Dev)
					}
				}
			}
		})
	}
	t.Run("a read error is an error, not a shorter list", func(t *testing.T) {
		h := multipathHost(t)
		k := newTestConnector(t, h)
		h.BreakAttr("block/nvme1n3/nsid")
		if got, err := k.Namespaces(Controller{Name: "nvme3", Subsystem: nqnOne}); err == nil {
			t.Errorf("Namespaces with an unreadable nsid = %d namespaces, want an error", len(got))
		}
	})
}
