package kernel

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

const (
	nqnOne = "nqn.2026-01.io.nvmeof.lab:one"
	nqnTwo = "nqn.2026-01.io.nvmeof.lab:two"
)

// fastBackoff retries at once, so tests exercise the retry path without
// waiting.
var fastBackoff = wait.Backoff{Duration: time.Microsecond, Factor: 1, Steps: 4}

func connectionTo(nqn string) nvme.Connection {
	return nvme.Connection{
		Host:   nvme.Host{NQN: testHostNQN, ID: testHostID},
		Target: nvme.Target{Transport: nvme.TransportTCP, TrAddr: "127.0.0.1", TrSvcID: nvme.DefaultTrSvcID, NQN: nqn},
		Config: nvme.DefaultConnectionConfig(),
	}
}

// valid validates c for the connector, failing the test when it is not.
func valid(tb testing.TB, c nvme.Connection) nvme.ValidConnection {
	tb.Helper()
	v, err := c.Valid()
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// newTestConnector is a fabrics connector on fx whose /dev/nvme-fabrics is
// the fake kernel.
func newTestConnector(t *testing.T, fx *sysfsFixture, fake *fakeFabrics) *kernelConnector {
	t.Helper()
	c, err := NewConnector(ConnectorConfig{SysfsRoot: fx.root, DevRoot: fx.dev, Backoff: fastBackoff,
		LookupHost: func(_ context.Context, host string) ([]netip.Addr, error) {
			if host == "target.example" {
				return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
			}
			return nil, errors.New("no such host")
		}})
	if err != nil {
		t.Fatal(err)
	}
	k := c.(*kernelConnector)
	k.backend.(*fabricsBackend).open = fake.open
	return k
}

func TestConnectCreates(t *testing.T) {
	fx := newSysfsFixture(t)
	fake := newFakeFabrics(fx)
	k := newTestConnector(t, fx, fake)

	ctrl, err := k.Connect(t.Context(), valid(t, connectionTo(nqnOne)))
	if err != nil {
		t.Fatal(err)
	}
	want := "nqn=" + nqnOne + ",transport=tcp,traddr=127.0.0.1,trsvcid=4420,hostnqn=" + testHostNQN +
		",hostid=" + testHostID + ",reconnect_delay=5,ctrl_loss_tmo=-1"
	if fake.writeCount() != 1 || fake.writes[0] != want {
		t.Fatalf("writes = %q, want one write %q", fake.writes, want)
	}
	if ctrl.Name != "nvme0" || ctrl.Subsystem != nqnOne || ctrl.CtrlLossTmo != -1 || ctrl.ReconnectDelay != 5 || ctrl.HostID != testHostID {
		t.Errorf("controller = %+v", ctrl)
	}
}

func TestConnectAdopts(t *testing.T) {
	tests := []struct {
		name       string
		existing   fixtureCtrl
		wantWrites int
		wantName   string
	}{
		{name: "live with other params is adopted and tuned",
			existing: fixtureCtrl{Instance: 4, NQN: nqnOne, CtrlLossTmo: "600", ReconnectDelay: "10"}, wantName: "nvme4"},
		{name: "connecting is adopted",
			existing: fixtureCtrl{Instance: 4, NQN: nqnOne, State: StateConnecting, Address: "traddr=127.0.0.1,trsvcid=4420"}, wantName: "nvme4"},
		{name: "deleting is not adopted",
			existing: fixtureCtrl{Instance: 4, NQN: nqnOne, State: StateDeletingIO}, wantWrites: 1, wantName: "nvme0"},
		{name: "dead is not adopted",
			existing: fixtureCtrl{Instance: 4, NQN: nqnOne, State: StateDead}, wantWrites: 1, wantName: "nvme0"},
		{name: "another host's controller is not adopted",
			existing: fixtureCtrl{Instance: 4, NQN: nqnOne, HostNQN: "nqn.2026-01.io.nvmeof.lab:host-2"}, wantWrites: 1, wantName: "nvme0"},
		{name: "another port's controller is not adopted",
			existing: fixtureCtrl{Instance: 4, NQN: nqnOne, Address: "traddr=127.0.0.1,trsvcid=4421"}, wantWrites: 1, wantName: "nvme0"},
		{name: "one with a source address is not adopted for a connect without",
			existing: fixtureCtrl{Instance: 4, NQN: nqnOne, Address: "traddr=127.0.0.1,trsvcid=4420,host_traddr=127.0.0.2"}, wantWrites: 1, wantName: "nvme0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newSysfsFixture(t)
			fx.addSubsystem(9, nqnOne)
			tt.existing.Subsys = 9
			fx.addController(tt.existing)
			fake := newFakeFabrics(fx)
			k := newTestConnector(t, fx, fake)

			ctrl, err := k.Connect(t.Context(), valid(t, connectionTo(nqnOne)))
			if err != nil {
				t.Fatal(err)
			}
			if fake.writeCount() != tt.wantWrites || ctrl.Name != tt.wantName {
				t.Fatalf("got %s after %d writes, want %s after %d", ctrl.Name, fake.writeCount(), tt.wantName, tt.wantWrites)
			}
			if ctrl.CtrlLossTmo != -1 || ctrl.ReconnectDelay != 5 {
				t.Errorf("reconnection params %d/%d, want -1/5", ctrl.CtrlLossTmo, ctrl.ReconnectDelay)
			}
		})
	}
}

func TestConnectEALREADYAdoptsTheOtherConnect(t *testing.T) {
	fx := newSysfsFixture(t)
	fake := newFakeFabrics(fx)
	fake.failures = []error{syscall.EALREADY}
	// Someone else's connect lands between our look and our write.
	fake.beforeWrite = func() {
		fx.addSubsystem(5, nqnOne)
		fx.addController(fixtureCtrl{Instance: 7, Subsys: 5, NQN: nqnOne})
		fake.beforeWrite = nil
	}
	k := newTestConnector(t, fx, fake)

	ctrl, err := k.Connect(t.Context(), valid(t, connectionTo(nqnOne)))
	if err != nil {
		t.Fatal(err)
	}
	if ctrl.Name != "nvme7" || fake.writeCount() != 1 {
		t.Errorf("got %s after %d writes, want the other connect's nvme7 after 1", ctrl.Name, fake.writeCount())
	}
}

func TestConnectErrors(t *testing.T) {
	tests := []struct {
		name       string
		conn       func() nvme.Connection
		failures   []error
		wantErrno  error
		wantErr    error
		wantText   string
		wantWrites int
	}{
		{name: "refused twice, then connected", failures: []error{syscall.ECONNREFUSED, syscall.ECONNREFUSED}, wantWrites: 3},
		{name: "refused every time gives up after the steps", failures: []error{syscall.ECONNREFUSED, syscall.ECONNREFUSED, syscall.ECONNREFUSED, syscall.ECONNREFUSED, syscall.ECONNREFUSED},
			wantErrno: syscall.ECONNREFUSED, wantText: "nothing listens there", wantWrites: 4},
		{name: "host not allowed is not retried", failures: []error{syscall.EINVAL},
			wantErrno: syscall.EINVAL, wantText: "allowed hosts", wantWrites: 1},
		{name: "target error status is not retried", failures: []error{syscall.EIO},
			wantErrno: syscall.EIO, wantText: "allowed hosts", wantWrites: 1},
		{name: "injection in the NQN never reaches the kernel",
			conn: func() nvme.Connection { return connectionTo(nqnOne + ",ctrl_loss_tmo=0") }, wantErr: nvme.ErrInvalid, wantText: "must not contain ','"},
		{name: "injection in the host NQN never reaches the kernel",
			conn: func() nvme.Connection {
				c := connectionTo(nqnOne)
				c.Host.NQN += "\nctrl_loss_tmo=0"
				return c
			}, wantErr: nvme.ErrInvalid, wantText: "newline"},
		{name: "a host name must be resolved first",
			conn: func() nvme.Connection {
				c := connectionTo(nqnOne)
				c.Target.TrAddr = "nowhere.example"
				return c
			}, wantErr: nvme.ErrInvalid, wantText: "resolve it before connecting"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newSysfsFixture(t)
			fake := newFakeFabrics(fx)
			fake.failures = tt.failures
			k := newTestConnector(t, fx, fake)
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
			if got := fake.writeCount(); got != tt.wantWrites {
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
		})
	}
}

func TestConnectResolvesHostName(t *testing.T) {
	fx := newSysfsFixture(t)
	fake := newFakeFabrics(fx)
	k := newTestConnector(t, fx, fake)
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
	if !strings.Contains(fake.writes[0], ",traddr=127.0.0.1,") || ctrl.TrAddr != "127.0.0.1" {
		t.Errorf("wrote %q, controller traddr %q; want the resolved 127.0.0.1", fake.writes[0], ctrl.TrAddr)
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
	fx := newSysfsFixture(t)
	fake := newFakeFabrics(fx)
	fake.writeStarted, fake.release, fake.closed = make(chan struct{}), make(chan struct{}), make(chan struct{})
	k := newTestConnector(t, fx, fake)

	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := k.Connect(ctx, valid(t, connectionTo(nqnOne)))
		errc <- err
	}()
	<-fake.writeStarted
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
	select {
	case <-fake.closed:
		t.Fatal("device closed while the kernel was still writing")
	default:
	}
	close(fake.release)
	select {
	case <-fake.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("device never closed after the write returned: descriptor leak")
	}
	// Whoever asked learns what the kernel finally made.
	ctrl, err := inflight.Wait(t.Context())
	if err != nil || ctrl.Name != "nvme0" || ctrl.Subsystem != nqnOne {
		t.Fatalf("Wait = %+v, %v; want the new controller nvme0", ctrl, err)
	}
	if again, err := inflight.Wait(t.Context()); err != nil || again.Name != ctrl.Name {
		t.Errorf("second Wait = %s, %v; want %s", again.Name, err, ctrl.Name)
	}
}

func TestDisconnect(t *testing.T) {
	tests := []struct {
		name      string
		ctrl      Controller
		wantWrite bool
	}{
		{name: "deletes the controller", ctrl: Controller{Name: "nvme1", Subsystem: nqnOne, TrAddr: "127.0.0.1", TrSvcID: "4420"}, wantWrite: true},
		{name: "already gone is success", ctrl: Controller{Name: "nvme8", Subsystem: nqnOne}},
		{name: "a reused name is not ours to delete", ctrl: Controller{Name: "nvme2", Subsystem: nqnOne}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newSysfsFixture(t)
			fx.addSubsystem(0, nqnOne)
			fx.addSubsystem(1, nqnTwo)
			fx.addController(fixtureCtrl{Instance: 1, Subsys: 0, NQN: nqnOne})
			fx.addController(fixtureCtrl{Instance: 2, Subsys: 1, NQN: nqnTwo})
			k := newTestConnector(t, fx, newFakeFabrics(fx))

			for range 2 { // idempotent
				if err := k.Disconnect(t.Context(), tt.ctrl); err != nil {
					t.Fatal(err)
				}
			}
			if got := fx.ctrlAttr(1, "delete_controller") == "1"; got != tt.wantWrite {
				t.Errorf("nvme1 deleted = %v, want %v", got, tt.wantWrite)
			}
			if fx.ctrlAttr(2, "delete_controller") != "" {
				t.Error("the other subsystem's controller was deleted")
			}
		})
	}
}

func TestUpdateReconnectParams(t *testing.T) {
	four := 4
	tests := []struct {
		name     string
		cfg      nvme.ConnectionConfig
		wantErr  error
		wantText string
		want     map[string]string
	}{
		{name: "forever", cfg: nvme.ConnectionConfig{CtrlLossTmo: -1, ReconnectDelay: 2},
			want: map[string]string{"reconnect_delay": "2", "ctrl_loss_tmo": "-1", "fast_io_fail_tmo": "off"}},
		{name: "finite with fast fail", cfg: nvme.ConnectionConfig{CtrlLossTmo: 10, ReconnectDelay: 5, FastIOFailTmo: &four},
			want: map[string]string{"reconnect_delay": "5", "ctrl_loss_tmo": "10", "fast_io_fail_tmo": "4"}},
		// The kernel would read 6 back; a value that stays 5 means
		// something rewrote it.
		{name: "read-back differs", cfg: nvme.ConnectionConfig{CtrlLossTmo: 5, ReconnectDelay: 2}, wantText: "reads reconnect_delay=2 ctrl_loss_tmo=5"},
		{name: "invalid is refused", cfg: nvme.ConnectionConfig{CtrlLossTmo: -1, ReconnectDelay: 0}, wantErr: nvme.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newSysfsFixture(t)
			fx.addSubsystem(0, nqnOne)
			fx.addController(fixtureCtrl{Instance: 3, NQN: nqnOne, CtrlLossTmo: "600", ReconnectDelay: "10"})
			k := newTestConnector(t, fx, newFakeFabrics(fx))

			err := k.UpdateReconnectParams(Controller{Name: "nvme3", Subsystem: nqnOne}, tt.cfg)
			switch {
			case tt.wantErr != nil || tt.wantText != "":
				if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) || !strings.Contains(err.Error(), tt.wantText) {
					t.Fatalf("error = %v, want %v / %q", err, tt.wantErr, tt.wantText)
				}
			case err != nil:
				t.Fatal(err)
			}
			for attr, v := range tt.want {
				if got := fx.ctrlAttr(3, attr); got != v {
					t.Errorf("%s = %q, want %q", attr, got, v)
				}
			}
		})
	}
	t.Run("gone", func(t *testing.T) {
		fx := newSysfsFixture(t)
		k := newTestConnector(t, fx, newFakeFabrics(fx))
		err := k.UpdateReconnectParams(Controller{Name: "nvme3", Subsystem: nqnOne}, nvme.DefaultConnectionConfig())
		if !errors.Is(err, ErrControllerGone) {
			t.Errorf("error = %v, want ErrControllerGone", err)
		}
	})
}

func TestControllers(t *testing.T) {
	fx := newSysfsFixture(t)
	fx.addSubsystem(0, nqnOne)
	fx.addSubsystem(1, nqnTwo)
	for _, c := range []fixtureCtrl{{Instance: 10, Subsys: 1, NQN: nqnTwo}, {Instance: 2, NQN: nqnOne}, {Instance: 9, NQN: nqnOne, State: StateConnecting}} {
		fx.addController(c)
	}
	k := newTestConnector(t, fx, newFakeFabrics(fx))
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
