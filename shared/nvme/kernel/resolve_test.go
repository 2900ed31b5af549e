package kernel

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

var (
	nsOne = fixtureNS{NSID: 1, UUID: "11111111-1111-4111-8111-111111111111", NGUID: "11111111111111111111111111111111", Sectors: 262144}
	nsTwo = fixtureNS{NSID: 2, UUID: "22222222-2222-4222-8222-222222222222", NGUID: "22222222222222222222222222222222", Sectors: 262144}
	// nsNoUUID has only an NGUID: sysfs shows it as the uuid too.
	nsNoUUID = fixtureNS{NSID: 7, NGUID: "77777777777777777777777777777777", Sectors: 8}
)

// multipathFixture: subsystem nvme-subsys2 (nqnOne) reached by controllers
// nvme5 and nvme6, head disks nvme2n1 (nsid 2), nvme2n2 (nsid 1) and
// nvme2n3 (nsid 7, NGUID only). The numbers differ on purpose: none of
// the names can be derived from a controller or namespace number.
func multipathFixture(t *testing.T) *sysfsFixture {
	fx := newSysfsFixture(t)
	fx.addSubsystem(0, nqnTwo)
	fx.addSubsystem(2, nqnOne)
	fx.addController(fixtureCtrl{Instance: 0, Subsys: 0, NQN: nqnTwo})
	fx.addController(fixtureCtrl{Instance: 5, Subsys: 2, NQN: nqnOne})
	fx.addController(fixtureCtrl{Instance: 6, Subsys: 2, NQN: nqnOne, Address: "traddr=127.0.0.2,trsvcid=4420"})
	fx.addHeadNamespace(0, 1, fixtureNS{NSID: 1, UUID: "33333333-3333-4333-8333-333333333333", NGUID: "33333333333333333333333333333333"}, 0)
	fx.addHeadNamespace(2, 1, nsTwo, 5, 6)
	fx.addHeadNamespace(2, 2, nsOne, 5, 6)
	fx.addHeadNamespace(2, 3, nsNoUUID, 5)
	return fx
}

// plainFixture: native multipath off; controller nvme3 of nqnOne with its
// own disks nvme3n1 (nsid 2) and nvme3n2 (nsid 1).
func plainFixture(t *testing.T) *sysfsFixture {
	fx := newSysfsFixture(t)
	fx.addSubsystem(0, nqnOne)
	fx.addController(fixtureCtrl{Instance: 3, Subsys: 0, NQN: nqnOne})
	fx.addPlainNamespace(3, 1, nsTwo)
	fx.addPlainNamespace(3, 2, nsOne)
	return fx
}

func TestResolve(t *testing.T) {
	ctrl5 := Controller{Name: "nvme5", Subsystem: nqnOne}
	ctrl3 := Controller{Name: "nvme3", Subsystem: nqnOne}
	tests := []struct {
		name     string
		fixture  func(*testing.T) *sysfsFixture
		ctrl     Controller
		sel      nvme.NamespaceSelector
		wantDisk string
		wantErr  error
		wantText []string
	}{
		{name: "multipath by nsid", fixture: multipathFixture, ctrl: ctrl5, sel: nvme.NamespaceSelector{NSID: 1}, wantDisk: "nvme2n2"},
		{name: "multipath by nsid, second namespace", fixture: multipathFixture, ctrl: ctrl5, sel: nvme.NamespaceSelector{NSID: 2}, wantDisk: "nvme2n1"},
		{name: "multipath by nsid verified by uuid", fixture: multipathFixture, ctrl: ctrl5,
			sel: nvme.NamespaceSelector{NSID: 1, UUID: "11111111-1111-4111-8111-111111111111"}, wantDisk: "nvme2n2"},
		{name: "multipath by uuid only", fixture: multipathFixture, ctrl: ctrl5,
			sel: nvme.NamespaceSelector{UUID: "22222222-2222-4222-8222-222222222222"}, wantDisk: "nvme2n1"},
		{name: "multipath by nguid in uuid layout", fixture: multipathFixture, ctrl: ctrl5,
			sel: nvme.NamespaceSelector{NGUID: "77777777-7777-7777-7777-777777777777"}, wantDisk: "nvme2n3"},
		{name: "the second controller reaches the same head", fixture: multipathFixture,
			ctrl: Controller{Name: "nvme6", Subsystem: nqnOne}, sel: nvme.NamespaceSelector{NSID: 1}, wantDisk: "nvme2n2"},
		{name: "wrong uuid is refused naming both", fixture: multipathFixture, ctrl: ctrl5,
			sel:     nvme.NamespaceSelector{NSID: 1, UUID: "22222222-2222-4222-8222-222222222222"},
			wantErr: ErrNamespaceMismatch, wantText: []string{"22222222-2222-4222-8222-222222222222", "11111111-1111-4111-8111-111111111111"}},
		{name: "wrong nguid is refused naming both", fixture: multipathFixture, ctrl: ctrl5,
			sel:     nvme.NamespaceSelector{NSID: 7, NGUID: "66666666666666666666666666666666"},
			wantErr: ErrNamespaceMismatch, wantText: []string{"66666666666666666666666666666666", "77777777777777777777777777777777"}},
		{name: "a uuid the namespace lacks is refused", fixture: multipathFixture, ctrl: ctrl5,
			sel:     nvme.NamespaceSelector{NSID: 7, UUID: "77777777-7777-7777-7777-777777777777"},
			wantErr: ErrNamespaceMismatch, wantText: []string{"the namespace has none"}},
		{name: "plain by nsid", fixture: plainFixture, ctrl: ctrl3, sel: nvme.NamespaceSelector{NSID: 1}, wantDisk: "nvme3n2"},
		{name: "plain by uuid", fixture: plainFixture, ctrl: ctrl3, sel: nvme.NamespaceSelector{UUID: nsTwo.UUID}, wantDisk: "nvme3n1"},
		{name: "controller gone", fixture: plainFixture, ctrl: Controller{Name: "nvme4", Subsystem: nqnOne}, sel: nvme.NamespaceSelector{NSID: 1}, wantErr: ErrControllerGone},
		{name: "controller name reused by another subsystem", fixture: multipathFixture,
			ctrl: Controller{Name: "nvme0", Subsystem: nqnOne}, sel: nvme.NamespaceSelector{NSID: 1}, wantErr: ErrControllerGone},
		{name: "invalid selector", fixture: plainFixture, ctrl: ctrl3, sel: nvme.NamespaceSelector{}, wantErr: nvme.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := tt.fixture(t)
			k := newTestConnector(t, fx, newFakeFabrics(fx))
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
			if ns.Name != tt.wantDisk || ns.DevicePath != filepath.Join(fx.dev, tt.wantDisk) || ns.Subsystem != nqnOne {
				t.Errorf("namespace = %+v, want disk %s", ns, tt.wantDisk)
			}
		})
	}
}

func TestResolveNamespaceDetails(t *testing.T) {
	fx := multipathFixture(t)
	k := newTestConnector(t, fx, newFakeFabrics(fx))
	ns, err := k.Resolve(t.Context(), Controller{Name: "nvme5", Subsystem: nqnOne}, nvme.NamespaceSelector{NSID: 7})
	if err != nil {
		t.Fatal(err)
	}
	want := Namespace{DevicePath: filepath.Join(fx.dev, "nvme2n3"), Name: "nvme2n3", Subsystem: nqnOne, NSID: 7,
		NGUID: "77777777777777777777777777777777", SizeBytes: 8 * 512}
	if ns != want {
		t.Errorf("got  %+v\nwant %+v", ns, want)
	}
}

// The kernel adds namespaces after the connect returns: Resolve waits.
func TestResolveWaitsForTheScan(t *testing.T) {
	fx := newSysfsFixture(t)
	fx.addSubsystem(1, nqnOne)
	fx.addController(fixtureCtrl{Instance: 0, Subsys: 1, NQN: nqnOne})
	k := newTestConnector(t, fx, newFakeFabrics(fx))

	type result struct {
		ns  Namespace
		err error
	}
	done := make(chan result, 1)
	go func() {
		ns, err := k.Resolve(t.Context(), Controller{Name: "nvme0", Subsystem: nqnOne}, nvme.NamespaceSelector{NSID: 1})
		done <- result{ns, err}
	}()
	fx.addHeadNamespace(1, 1, nsOne, 0)
	r := <-done
	if r.err != nil || r.ns.Name != "nvme1n1" {
		t.Fatalf("Resolve = %+v, %v; want nvme1n1", r.ns, r.err)
	}
}

func TestResolveGivesUpWithTheContext(t *testing.T) {
	fx := newSysfsFixture(t)
	fx.addSubsystem(1, nqnOne)
	fx.addController(fixtureCtrl{Instance: 0, Subsys: 1, NQN: nqnOne})
	k := newTestConnector(t, fx, newFakeFabrics(fx))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	_, err := k.Resolve(ctx, Controller{Name: "nvme0", Subsystem: nqnOne}, nvme.NamespaceSelector{NSID: 1})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "did not appear") {
		t.Errorf("error = %v, want a deadline naming the namespace", err)
	}
}

func TestNamespaceOf(t *testing.T) {
	tests := []struct {
		name      string
		fixture   func(*testing.T) *sysfsFixture
		device    string
		wantNSID  uint32
		wantCtrls string
		wantErr   bool
	}{
		{name: "head disk reached by two controllers", fixture: multipathFixture, device: "/dev/nvme2n2", wantNSID: 1, wantCtrls: "nvme5 nvme6"},
		{name: "head disk reached by one controller", fixture: multipathFixture, device: "nvme2n3", wantNSID: 7, wantCtrls: "nvme5"},
		{name: "plain disk", fixture: plainFixture, device: "/dev/nvme3n1", wantNSID: 2, wantCtrls: "nvme3"},
		{name: "a path disk is no device", fixture: multipathFixture, device: "nvme2c5n1", wantErr: true},
		{name: "unknown disk", fixture: plainFixture, device: "nvme9n9", wantErr: true},
		{name: "not nvme", fixture: plainFixture, device: "/dev/sda", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := tt.fixture(t)
			k := newTestConnector(t, fx, newFakeFabrics(fx))
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

// largeFixture has n subsystems, each with one controller and four
// namespaces behind native multipath: 4n namespaces in all.
func largeFixture(b *testing.B, n int) *sysfsFixture {
	fx := newSysfsFixture(b)
	for i := range n {
		nqn := fmt.Sprintf("nqn.2026-01.io.nvmeof.bench:s%d", i)
		fx.addSubsystem(i, nqn)
		fx.addController(fixtureCtrl{Instance: i, Subsys: i, NQN: nqn})
		for j := 1; j <= 4; j++ {
			fx.addHeadNamespace(i, j, fixtureNS{NSID: uint32(j), UUID: fmt.Sprintf("%08x-0000-4000-8000-%012x", i, j), NGUID: fmt.Sprintf("%016x%016x", i, j), Sectors: 8}, i)
		}
	}
	return fx
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
		fx := largeFixture(b, n)
		k, err := NewConnector(ConnectorConfig{SysfsRoot: fx.root, DevRoot: fx.dev})
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
