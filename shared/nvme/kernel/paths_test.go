package kernel

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel/kerneltest"
)

// twoPathHost exports nqnOne on two ports and connects both paths through
// the connector; it returns the controllers and the namespace's head.
func twoPathHost(t *testing.T, opts ...kerneltest.Option) (*kerneltest.Host, *kernelConnector, [2]Controller, Namespace) {
	t.Helper()
	h := kerneltest.New(t, opts...)
	h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne, nsTwo)
	h.AddTarget("127.0.0.1", "4421", nqnOne)
	k := newTestConnector(t, h)
	var ctrls [2]Controller
	for i, svc := range []string{"4420", "4421"} {
		c := connectionTo(nqnOne)
		c.Target.TrSvcID = svc
		ctrl, err := k.Create(context.Background(), valid(t, c))
		if err != nil {
			t.Fatal(err)
		}
		ctrls[i] = ctrl
	}
	ns, err := k.Resolve(context.Background(), ctrls[1], nvme.NamespaceSelector{NSID: 1})
	if err != nil {
		t.Fatal(err)
	}
	return h, k, ctrls, ns
}

func TestPaths(t *testing.T) {
	h, k, ctrls, ns := twoPathHost(t)
	paths, err := k.Paths(ns)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 2 || paths[0].Controller.Name != ctrls[0].Name || paths[1].Controller.Name != ctrls[1].Name {
		t.Fatalf("Paths() = %+v, want %s and %s", paths, ctrls[0].Name, ctrls[1].Name)
	}
	for _, p := range paths {
		if !p.Live() || p.ANAState != ANAOptimized || !strings.Contains(p.Disk, "c") {
			t.Errorf("path %+v: want a live, optimized path disk", p)
		}
	}
	if paths[1].Controller.TrSvcID != "4421" {
		t.Errorf("second path goes to %s", paths[1].Controller.TrSvcID)
	}

	// The target makes one path inaccessible and the other one's port
	// goes away: neither can take I/O.
	if err := h.SetANAState(ctrls[0].Name, ANAInaccessible); err != nil {
		t.Fatal(err)
	}
	h.SetPortDown("127.0.0.1", "4421", true)
	paths, err = k.Paths(ns)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 2 || paths[0].Live() || paths[1].Live() {
		t.Fatalf("Paths() = %+v, want two paths, neither live", paths)
	}
	if got := paths[0].String(); got != ctrls[0].Name+" (127.0.0.1:4420) live, ANA inaccessible" {
		t.Errorf("String() = %q", got)
	}
	if got := paths[1].String(); got != ctrls[1].Name+" (127.0.0.1:4421) connecting" {
		t.Errorf("String() = %q", got)
	}

	// A deleted path is no path; the head stays with the other.
	if err := h.RemoveController(ctrls[1].Name); err != nil {
		t.Fatal(err)
	}
	paths, err = k.Paths(ns)
	if err != nil || len(paths) != 1 || paths[0].Controller.Name != ctrls[0].Name {
		t.Fatalf("after a delete Paths() = %+v, %v", paths, err)
	}
	if _, err := k.Paths(Namespace{Name: "nvme9n9"}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Paths of a disk that is not there = %v", err)
	}
}

func TestPathsWithoutMultipath(t *testing.T) {
	h := kerneltest.New(t, kerneltest.WithoutMultipath())
	h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne)
	k := newTestConnector(t, h)
	ctrl, err := k.Connect(context.Background(), valid(t, connectionTo(nqnOne)))
	if err != nil {
		t.Fatal(err)
	}
	ns, err := k.Resolve(context.Background(), ctrl, nvme.NamespaceSelector{NSID: 1})
	if err != nil {
		t.Fatal(err)
	}
	paths, err := k.Paths(ns)
	if err != nil || len(paths) != 1 || paths[0].Controller.Name != ctrl.Name || paths[0].Disk != ns.Name || !paths[0].Live() {
		t.Fatalf("Paths() = %+v, %v; want the disk's own controller", paths, err)
	}
	if on, err := k.Multipath(); err != nil || on {
		t.Errorf("Multipath() = %v, %v; want off", on, err)
	}
}

func TestMultipath(t *testing.T) {
	tests := []struct {
		name    string
		param   string // "" for none; "-" for no nvme_core at all
		want    bool
		wantErr bool
	}{
		{name: "on", param: "Y", want: true},
		{name: "off", param: "N"},
		{name: "built without it", param: ""},
		{name: "nvme_core not loaded", param: "-", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			params := filepath.Join(root, "module", "nvme_core", "parameters")
			if tt.param != "-" {
				if err := os.MkdirAll(params, 0o750); err != nil {
					t.Fatal(err)
				}
			}
			if tt.param != "" && tt.param != "-" {
				if err := os.WriteFile(filepath.Join(params, "multipath"), []byte(tt.param+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			c, err := NewConnector(ConnectorConfig{SysfsRoot: root, DevRoot: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Multipath()
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("Multipath() = %v, %v", got, err)
			}
		})
	}
}

func TestSetIOPolicy(t *testing.T) {
	tests := []struct {
		name    string
		opts    []kerneltest.Option
		policy  nvme.IOPolicy
		want    nvme.IOPolicy
		wantErr error
	}{
		{name: "round-robin", policy: nvme.IOPolicyRoundRobin, want: nvme.IOPolicyRoundRobin},
		{name: "numa, already", policy: nvme.IOPolicyNUMA, want: nvme.IOPolicyNUMA},
		{name: "queue-depth on a 6.1 kernel", policy: nvme.IOPolicyQueueDepth, want: nvme.IOPolicyNUMA, wantErr: ErrIOPolicyUnsupported},
		{name: "queue-depth where offered", opts: []kerneltest.Option{kerneltest.WithIOPolicies("numa", "round-robin", "queue-depth")},
			policy: nvme.IOPolicyQueueDepth, want: nvme.IOPolicyQueueDepth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, k, ctrls, _ := twoPathHost(t, tt.opts...)
			err := k.SetIOPolicy(ctrls[1], tt.policy)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("SetIOPolicy() = %v, want %v", err, tt.wantErr)
			}
			for _, c := range ctrls {
				if got, err := k.IOPolicy(c); err != nil || got != tt.want {
					t.Errorf("IOPolicy(%s) = %q, %v; want %q (one policy per subsystem)", c.Name, got, err, tt.want)
				}
			}
		})
	}
	_, k, ctrls, _ := twoPathHost(t)
	gone := ctrls[0]
	gone.Name = "nvme9"
	if err := k.SetIOPolicy(gone, nvme.IOPolicyRoundRobin); !errors.Is(err, ErrControllerGone) {
		t.Errorf("SetIOPolicy on a gone controller = %v", err)
	}
}

func TestHealthPaths(t *testing.T) {
	tests := []struct {
		name      string
		act       func(h *kerneltest.Host, ctrls [2]Controller)
		wantLive  int
		wantState string
		wantText  []string // "" none: healthy
	}{
		{name: "both live", act: func(*kerneltest.Host, [2]Controller) {}, wantLive: 2, wantState: StateLive},
		{name: "one port down: degraded, not unhealthy", act: func(h *kerneltest.Host, _ [2]Controller) {
			h.SetPortDown("127.0.0.1", "4420", true)
		}, wantLive: 1, wantState: StateLive},
		{name: "both down", act: func(h *kerneltest.Host, _ [2]Controller) { h.SetDown(nqnOne, true) },
			wantState: StateConnecting, wantText: []string{"no path to", "is live", "(127.0.0.1:4420) connecting", "(127.0.0.1:4421) connecting", "ctrl_loss_tmo off"}},
		{name: "one down, the other inaccessible", act: func(h *kerneltest.Host, c [2]Controller) {
			h.SetPortDown("127.0.0.1", "4420", true)
			if err := h.SetANAState(c[1].Name, ANAPersistentLoss); err != nil {
				panic(err)
			}
		}, wantState: StateConnecting, wantText: []string{"can take I/O", "ANA persistent-loss", "inaccessible (ANA)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, k, ctrls, ns := twoPathHost(t)
			tt.act(h, ctrls)
			hl, err := k.Health(ctrls[0], ns, "")
			if err != nil {
				t.Fatal(err)
			}
			if hl.LivePaths != tt.wantLive || len(hl.Paths) != 2 || hl.ControllerState != tt.wantState || hl.Healthy() != (len(tt.wantText) == 0) {
				t.Errorf("Health() = %+v", hl)
			}
			for _, s := range tt.wantText {
				if !strings.Contains(hl.Message, s) {
					t.Errorf("message %q does not say %q", hl.Message, s)
				}
			}
		})
	}
}

// Native multipath adds a namespace's head disk only once one of its paths
// is usable: a namespace the target makes inaccessible on every path from
// the start has path disks and no device. Resolve says so instead of "did
// not appear".
func TestResolveNamespaceHiddenByANA(t *testing.T) {
	h, k, ctrls, ns := twoPathHost(t)
	for _, c := range ctrls {
		if err := h.SetANAState(c.Name, ANAInaccessible); err != nil {
			t.Fatal(err)
		}
	}
	// The head as it is before any path was usable: not there.
	head, err := filepath.EvalSymlinks(filepath.Join(h.SysfsRoot(), "block", ns.Name))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{head, filepath.Join(h.SysfsRoot(), "block", ns.Name), ns.DevicePath} {
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = k.Resolve(ctx, ctrls[0], nvme.NamespaceSelector{NSID: 1})
	if !errors.Is(err, ErrNamespaceInaccessible) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "makes it inaccessible (ANA)") {
		t.Fatalf("Resolve() = %v", err)
	}
	// Another namespace that simply is not there is not blamed on ANA.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := k.Resolve(ctx2, ctrls[0], nvme.NamespaceSelector{NSID: 9}); errors.Is(err, ErrNamespaceInaccessible) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Resolve(nsid 9) = %v", err)
	}
}
