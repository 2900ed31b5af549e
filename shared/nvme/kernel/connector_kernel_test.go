package kernel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel/kerneltest"
)

func TestConnectCreates(t *testing.T) {
	h := kerneltest.New(t)
	h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne)
	k := newTestConnector(t, h)

	ctrl, err := k.Connect(t.Context(), valid(t, connectionTo(nqnOne)))
	if err != nil {
		t.Fatal(err)
	}
	want := "nqn=" + nqnOne + ",transport=tcp,traddr=127.0.0.1,trsvcid=4420,hostnqn=" + testHostNQN +
		",hostid=" + testHostID + ",reconnect_delay=5,ctrl_loss_tmo=-1"
	if got := h.Writes(); len(got) != 1 || got[0] != want {
		t.Fatalf("writes = %q, want one write %q", got, want)
	}
	if ctrl.Name != "nvme0" || ctrl.Subsystem != nqnOne || ctrl.CtrlLossTmo != -1 || ctrl.ReconnectDelay != 5 || ctrl.HostID != testHostID {
		t.Errorf("controller = %+v", ctrl)
	}
	if ctrl.State != StateLive || ctrl.CntlID != 1 || ctrl.KeepAliveTmo != 5 || ctrl.FastIOFailTmo != -1 {
		t.Errorf("controller = %+v, want live, cntlid 1, kato 5, fast_io_fail_tmo off", ctrl)
	}
}

func TestConnectAdopts(t *testing.T) {
	tests := []struct {
		name string
		// existing makes a controller outside the connector.
		existing   func(t *testing.T, h *kerneltest.Host)
		wantWrites int
		wantName   string
	}{
		{name: "live with other params is adopted and tuned", wantName: "nvme0",
			existing: func(t *testing.T, h *kerneltest.Host) {
				adminConnect(t, h, adminOptions(nqnOne, "ctrl_loss_tmo=600", "reconnect_delay=10"))
			}},
		{name: "connecting is adopted", wantName: "nvme0",
			existing: func(t *testing.T, h *kerneltest.Host) {
				adminConnect(t, h, adminOptions(nqnOne))
				h.SetDown(nqnOne, true)
			}},
		{name: "deleting is not adopted", wantWrites: 1, wantName: "nvme1",
			existing: func(t *testing.T, h *kerneltest.Host) {
				if err := h.SetControllerState(adminConnect(t, h, adminOptions(nqnOne)), StateDeletingIO); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "dead is not adopted", wantWrites: 1, wantName: "nvme1",
			existing: func(t *testing.T, h *kerneltest.Host) {
				if err := h.SetControllerState(adminConnect(t, h, adminOptions(nqnOne)), StateDead); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "another host's controller is not adopted", wantWrites: 1, wantName: "nvme1",
			existing: func(t *testing.T, h *kerneltest.Host) {
				adminConnect(t, h, "nqn="+nqnOne+",transport=tcp,traddr=127.0.0.1,trsvcid=4420,hostnqn="+otherHostNQN+",hostid="+otherHostID)
			}},
		{name: "another port's controller is not adopted", wantWrites: 1, wantName: "nvme1",
			existing: func(t *testing.T, h *kerneltest.Host) {
				h.AddTarget("127.0.0.1", "4421", nqnOne)
				adminConnect(t, h, strings.Replace(adminOptions(nqnOne), "trsvcid=4420", "trsvcid=4421", 1))
			}},
		{name: "one with a source address is not adopted for a connect without", wantWrites: 1, wantName: "nvme1",
			existing: func(t *testing.T, h *kerneltest.Host) {
				adminConnect(t, h, adminOptions(nqnOne, "host_traddr=127.0.0.2"))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := kerneltest.New(t)
			h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne)
			tt.existing(t, h)
			k := newTestConnector(t, h)

			ctrl, err := k.Connect(t.Context(), valid(t, connectionTo(nqnOne)))
			if err != nil {
				t.Fatalf("%v (dmesg %q)", err, h.Dmesg())
			}
			if got := len(h.Writes()); got != tt.wantWrites || ctrl.Name != tt.wantName {
				t.Fatalf("got %s after %d writes, want %s after %d", ctrl.Name, got, tt.wantName, tt.wantWrites)
			}
			if ctrl.CtrlLossTmo != -1 || ctrl.ReconnectDelay != 5 {
				t.Errorf("reconnection params %d/%d, want -1/5", ctrl.CtrlLossTmo, ctrl.ReconnectDelay)
			}
		})
	}
}

func TestConnectEALREADYAdoptsTheOtherConnect(t *testing.T) {
	h := kerneltest.New(t)
	h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne)
	// Someone else's connect lands between our look and our write, so the
	// kernel answers ours with EALREADY.
	h.BeforeNextConnect(func() {
		adminConnect(t, h, adminOptions(nqnOne))
	})
	k := newTestConnector(t, h)

	ctrl, err := k.Connect(t.Context(), valid(t, connectionTo(nqnOne)))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(h.Writes()); ctrl.Name != "nvme0" || got != 1 || h.Connects() != 0 {
		t.Errorf("got %s after %d writes (%d created), want the other connect's nvme0 after 1 (none created)", ctrl.Name, got, h.Connects())
	}
	if !slices.ContainsFunc(h.Dmesg(), func(l string) bool { return strings.Contains(l, "already exists") }) {
		t.Errorf("the kernel did not refuse a duplicate: %q", h.Dmesg())
	}
}

func TestConnectErrors(t *testing.T) {
	tests := []struct {
		name string
		conn func() nvme.Connection
		// hostOpts configure the simulated host; setup prepares it:
		// targets, faults.
		hostOpts   []kerneltest.Option
		setup      func(t *testing.T, h *kerneltest.Host)
		wantErrno  error
		wantErr    error
		wantText   string
		wantWrites int
		wantCtrls  int // controllers on the host after
	}{
		{name: "refused twice, then connected", wantWrites: 3, wantCtrls: 1,
			setup: func(_ *testing.T, h *kerneltest.Host) {
				h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne)
				h.FailNextConnect(syscall.ECONNREFUSED)
				h.FailNextConnect(syscall.ECONNREFUSED)
			}},
		{name: "nothing listening gives up after the steps", setup: func(*testing.T, *kerneltest.Host) {},
			wantErrno: syscall.ECONNREFUSED, wantText: "nothing listens there", wantWrites: 4},
		{name: "target down gives up after the steps", wantErrno: syscall.ECONNREFUSED, wantText: "nothing listens there", wantWrites: 4,
			setup: func(_ *testing.T, h *kerneltest.Host) {
				h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne)
				h.SetDown(nqnOne, true)
			}},
		{name: "host not allowed is not retried", wantErrno: syscall.EIO, wantText: "allowed hosts", wantWrites: 1,
			setup: func(_ *testing.T, h *kerneltest.Host) {
				h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne)
				h.SetAllowedHosts(nqnOne, []string{otherHostNQN})
			}},
		{name: "no such subsystem on the port is not retried", wantErrno: syscall.EIO, wantText: "no such subsystem", wantWrites: 1,
			setup: func(_ *testing.T, h *kerneltest.Host) {
				h.AddTarget("127.0.0.1", "4420", nqnTwo, nsOne)
			}},
		{name: "host NQN known with another host ID is not retried (newer kernels)", wantErrno: syscall.EINVAL, wantText: "another host ID",
			wantWrites: 1, wantCtrls: 1, hostOpts: []kerneltest.Option{kerneltest.WithStrictHostIdentity()},
			setup: func(t *testing.T, h *kerneltest.Host) {
				h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne)
				h.AddTarget("127.0.0.1", "4420", nqnTwo, nsTwo)
				adminConnect(t, h, strings.Replace(adminOptions(nqnTwo), testHostID, otherHostID, 1))
			}},
		{name: "injection in the NQN never reaches the kernel", setup: func(*testing.T, *kerneltest.Host) {},
			conn: func() nvme.Connection { return connectionTo(nqnOne + ",ctrl_loss_tmo=0") }, wantErr: nvme.ErrInvalid, wantText: "must not contain ','"},
		{name: "injection in the host NQN never reaches the kernel", setup: func(*testing.T, *kerneltest.Host) {},
			conn: func() nvme.Connection {
				c := connectionTo(nqnOne)
				c.Host.NQN += "\nctrl_loss_tmo=0"
				return c
			}, wantErr: nvme.ErrInvalid, wantText: "newline"},
		{name: "a host name must be resolved first", setup: func(*testing.T, *kerneltest.Host) {},
			conn: func() nvme.Connection {
				c := connectionTo(nqnOne)
				c.Target.TrAddr = "nowhere.example"
				return c
			}, wantErr: nvme.ErrInvalid, wantText: "resolve it before connecting"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := kerneltest.New(t, tt.hostOpts...)
			tt.setup(t, h)
			k := newTestConnector(t, h)
			conn := connectionTo(nqnOne)
			if tt.conn != nil {
				conn = tt.conn()
			}
			// The connector takes only validated connections: a value that
			// would inject an option is refused before anything is sent.
			vc, err := conn.Valid()
			if err == nil {
				_, err = k.Connect(t.Context(), vc)
			}
			if got := len(h.Writes()); got != tt.wantWrites {
				t.Errorf("%d writes to the kernel, want %d", got, tt.wantWrites)
			}
			wantFail := tt.wantErrno != nil || tt.wantErr != nil || tt.wantText != ""
			if (err != nil) != wantFail {
				t.Fatalf("error = %v, want failure %v", err, wantFail)
			}
			if tt.wantErrno != nil && !errors.Is(err, tt.wantErrno) {
				t.Errorf("error %v does not match %v", err, tt.wantErrno)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v does not match %v", err, tt.wantErr)
			}
			if tt.wantText != "" && !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not say %q", err, tt.wantText)
			}
			if got := len(h.Controllers()); got != tt.wantCtrls {
				t.Errorf("controllers %q after, want %d", controllerNames(h), tt.wantCtrls)
			}
		})
	}
}

func TestConnectResolvesHostName(t *testing.T) {
	h := kerneltest.New(t)
	h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne)
	k := newTestConnector(t, h)
	conn := connectionTo(nqnOne)
	conn.Target.TrAddr = "target.example"
	target, err := k.ResolveTarget(t.Context(), conn.Target)
	if err != nil {
		t.Fatal(err)
	}
	conn.Target = target
	ctrl, err := k.Connect(t.Context(), valid(t, conn))
	if err != nil {
		t.Fatal(err)
	}
	if w := h.Writes(); !strings.Contains(w[0], ",traddr=127.0.0.1,") || ctrl.TrAddr != "127.0.0.1" {
		t.Errorf("wrote %q, controller traddr %q; want the resolved 127.0.0.1", w[0], ctrl.TrAddr)
	}
	if _, err := k.ResolveTarget(t.Context(), nvme.Target{TrAddr: "nowhere.example"}); err == nil || !strings.Contains(err.Error(), `"nowhere.example"`) {
		t.Errorf("ResolveTarget of an unknown name: %v", err)
	}
	// Find finds what Connect made.
	found, ok, err := k.Find(valid(t, conn))
	if err != nil || !ok || found.Name != ctrl.Name {
		t.Errorf("Find = %s, %v, %v; want %s", found.Name, ok, err, ctrl.Name)
	}
}

// The kernel's write cannot be interrupted: a cancelled Connect returns at
// once, and the descriptor is closed when the write comes back.
func TestConnectCancelledDuringWriteClosesLater(t *testing.T) {
	h := kerneltest.New(t)
	h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne)
	entered, release := h.HoldConnects(nqnOne)
	defer release()
	k := newTestConnector(t, h)

	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := k.Connect(ctx, valid(t, connectionTo(nqnOne)))
		errc <- err
	}()
	<-entered
	cancel()
	var inflight *InFlightError
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) || !errors.As(err, &inflight) {
			t.Fatalf("error = %v, want context.Canceled and an *InFlightError", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Connect did not return after its context was cancelled")
	}
	if n := h.OpenFabricsFiles(); n != 1 {
		t.Fatalf("%d descriptors open while the kernel was still writing, want 1", n)
	}
	release()
	waitCtx, waitCancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer waitCancel()
	if err := h.WaitFabricsClosed(waitCtx); err != nil {
		t.Fatalf("device never closed after the write returned: %v", err)
	}
	// Whoever asked learns what the kernel finally made.
	made, err := inflight.Wait(t.Context())
	if err != nil || made.Name != "nvme0" || made.Subsystem != nqnOne {
		t.Fatalf("Wait = %+v, %v; want the new controller nvme0", made, err)
	}
	if again, err := inflight.Wait(t.Context()); err != nil || again.Name != made.Name {
		t.Errorf("second Wait = %s, %v; want %s", again.Name, err, made.Name)
	}
	// The connect finished in the kernel: the next Connect adopts it.
	ctrl, err := k.Connect(t.Context(), valid(t, connectionTo(nqnOne)))
	if err != nil || ctrl.Name != "nvme0" || len(h.Writes()) != 1 {
		t.Errorf("Connect after the late connect = %s, %v after %d writes; want nvme0 adopted", ctrl.Name, err, len(h.Writes()))
	}
}

func TestDisconnect(t *testing.T) {
	tests := []struct {
		name       string
		ctrl       Controller
		wantGone   string
		wantRemain string
	}{
		{name: "deletes the controller", ctrl: Controller{Name: "nvme0", Subsystem: nqnOne, TrAddr: "127.0.0.1", TrSvcID: "4420"},
			wantRemain: "nvme1=live"},
		{name: "already gone is success", ctrl: Controller{Name: "nvme8", Subsystem: nqnOne}, wantRemain: "nvme0=live nvme1=live"},
		{name: "a reused name is not ours to delete", ctrl: Controller{Name: "nvme1", Subsystem: nqnOne}, wantRemain: "nvme0=live nvme1=live"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := kerneltest.New(t)
			h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne)
			h.AddTarget("127.0.0.1", "4420", nqnTwo, nsTwo)
			adminConnect(t, h, adminOptions(nqnOne))
			adminConnect(t, h, adminOptions(nqnTwo))
			k := newTestConnector(t, h)

			for range 2 { // idempotent
				if err := k.Disconnect(t.Context(), tt.ctrl); err != nil {
					t.Fatal(err)
				}
			}
			if got := controllerNames(h); got != tt.wantRemain {
				t.Errorf("controllers %q, want %q", got, tt.wantRemain)
			}
			wantDisconnects := 0
			if tt.wantRemain == "nvme1=live" {
				wantDisconnects = 1
			}
			if h.Disconnects() != wantDisconnects {
				t.Errorf("%d deletes through sysfs, want %d", h.Disconnects(), wantDisconnects)
			}
		})
	}
}

func TestUpdateReconnectParams(t *testing.T) {
	four := 4
	tests := []struct {
		name string
		cfg  nvme.ConnectionConfig
		// rule, when set, is a udev rule that writes ctrl_loss_tmo back.
		rule     string
		wantErr  error
		wantText string
		want     map[string]string
	}{
		{name: "forever", cfg: nvme.ConnectionConfig{CtrlLossTmo: -1, ReconnectDelay: 2},
			want: map[string]string{"reconnect_delay": "2", "ctrl_loss_tmo": "off", "fast_io_fail_tmo": "off"}},
		{name: "finite with fast fail", cfg: nvme.ConnectionConfig{CtrlLossTmo: 10, ReconnectDelay: 5, FastIOFailTmo: &four},
			want: map[string]string{"reconnect_delay": "5", "ctrl_loss_tmo": "10", "fast_io_fail_tmo": "4"}},
		// The kernel keeps attempts: 5 s at 2 s per attempt reads 6, which
		// the connector expects.
		{name: "rounded up by the kernel", cfg: nvme.ConnectionConfig{CtrlLossTmo: 5, ReconnectDelay: 2},
			want: map[string]string{"reconnect_delay": "2", "ctrl_loss_tmo": "6"}},
		// A value that something rewrote behind the connector is an error
		// naming what it read.
		{name: "read-back differs", cfg: nvme.ConnectionConfig{CtrlLossTmo: 5, ReconnectDelay: 2}, rule: "600",
			wantText: "reads reconnect_delay=2 ctrl_loss_tmo=600"},
		{name: "invalid is refused", cfg: nvme.ConnectionConfig{CtrlLossTmo: -1, ReconnectDelay: 0}, wantErr: nvme.ErrInvalid,
			want: map[string]string{"reconnect_delay": "10", "ctrl_loss_tmo": "600"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := kerneltest.New(t)
			h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne)
			name := adminConnect(t, h, adminOptions(nqnOne, "ctrl_loss_tmo=600", "reconnect_delay=10"))
			if tt.rule != "" {
				h.RewriteAttr("ctrl_loss_tmo", tt.rule)
			}
			k := newTestConnector(t, h)

			err := k.UpdateReconnectParams(Controller{Name: name, Subsystem: nqnOne}, tt.cfg)
			switch {
			case tt.wantErr != nil || tt.wantText != "":
				if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) || !strings.Contains(err.Error(), tt.wantText) {
					t.Fatalf("error = %v, want %v / %q", err, tt.wantErr, tt.wantText)
				}
			case err != nil:
				t.Fatal(err)
			}
			for attr, v := range tt.want {
				if got := ctrlAttr(t, h, name, attr); got != v {
					t.Errorf("%s = %q, want %q", attr, got, v)
				}
			}
		})
	}
	t.Run("gone", func(t *testing.T) {
		h := kerneltest.New(t)
		k := newTestConnector(t, h)
		err := k.UpdateReconnectParams(Controller{Name: "nvme3", Subsystem: nqnOne}, nvme.DefaultConnectionConfig())
		if !errors.Is(err, ErrControllerGone) {
			t.Errorf("error = %v, want ErrControllerGone", err)
		}
	})
}

func TestControllers(t *testing.T) {
	h := kerneltest.New(t)
	h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne)
	h.AddTarget("127.0.0.1", "4420", nqnTwo, nsTwo)
	h.AddTarget("127.0.0.1", "4421", nqnOne)
	// Eleven controllers, then all but nvme2, nvme9 and nvme10 deleted:
	// the listing is in numeric order, not in the order of the names.
	for i := range 11 {
		switch i {
		case 9:
			adminConnect(t, h, strings.Replace(adminOptions(nqnOne, "duplicate_connect"), "4420", "4421", 1))
		case 10:
			adminConnect(t, h, adminOptions(nqnTwo, "duplicate_connect"))
		default:
			adminConnect(t, h, adminOptions(nqnOne, "duplicate_connect"))
		}
	}
	for _, i := range []int{0, 1, 3, 4, 5, 6, 7, 8} {
		if err := h.RemoveController(fmt.Sprintf("nvme%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	h.SetPortDown("127.0.0.1", "4421", true)
	k := newTestConnector(t, h)
	got, err := k.Controllers()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range got {
		names = append(names, c.Name+"="+c.State)
	}
	if want := "nvme2=live nvme9=connecting nvme10=live"; strings.Join(names, " ") != want {
		t.Errorf("Controllers = %v, want %s", names, want)
	}
}

// On 6.1 a connect with the same host NQN and another host ID succeeds and
// rewrites the host ID of every controller of that NQN (measured in the
// lab). The connector then no longer recognises its own controller: its
// write gets EALREADY, which rewrites the ID back, and the retry adopts.
func TestConnectAfterAnotherHostIDOn61(t *testing.T) {
	h := kerneltest.New(t)
	h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne)
	h.AddTarget("127.0.0.1", "4420", nqnTwo, nsTwo)
	k := newTestConnector(t, h)
	first, err := k.Connect(t.Context(), valid(t, connectionTo(nqnOne)))
	if err != nil {
		t.Fatal(err)
	}
	adminConnect(t, h, strings.Replace(adminOptions(nqnTwo), testHostID, otherHostID, 1))
	if got := ctrlAttr(t, h, first.Name, "hostid"); got != otherHostID {
		t.Fatalf("hostid of %s after another ID connected: %s, want %s", first.Name, got, otherHostID)
	}
	ctrl, err := k.Connect(t.Context(), valid(t, connectionTo(nqnOne)))
	if err != nil || ctrl.Name != first.Name {
		t.Fatalf("Connect = %s, %v; want %s adopted", ctrl.Name, err, first.Name)
	}
	if got := len(h.Writes()); got != 2 || h.Connects() != 1 {
		t.Errorf("%d writes, %d created; want the second write refused as a duplicate", got, h.Connects())
	}
}
