//go:build lab

package lab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
	"github.com/nvmeof/nvmeof/shared/retry"
	"github.com/nvmeof/nvmeof/test/lab/labtarget"
)

// These tests drive shared/nvme's kernel connector against the real
// nvme-tcp initiator and the nvmet target of the lab layout.

// lockedBuffer collects the connector's JSON log lines from any goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// take returns the log lines so far and starts over.
func (b *lockedBuffer) take() []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(&b.buf)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	b.buf.Reset()
	return out
}

func newLabConnector(t *testing.T) (kernel.Connector, *lockedBuffer) {
	t.Helper()
	return newLabConnectorWith(t, kernel.BackendFabrics)
}

// newLabConnectorWith is a connector that creates controllers with backend
// (fabrics: /dev/nvme-fabrics; nvme-cli: the release's `nvme connect`).
func newLabConnectorWith(t *testing.T, backend string) (kernel.Connector, *lockedBuffer) {
	t.Helper()
	logs := &lockedBuffer{}
	c, err := kernel.NewConnector(kernel.ConnectorConfig{
		Backend: backend,
		Logger:  hclog.New(&hclog.LoggerOptions{Name: "lab", Level: hclog.Debug, JSONFormat: true, Output: logs}),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, logs
}

func labConnection(nqn string) nvme.Connection {
	return nvme.Connection{
		Host: nvme.Host{NQN: labtarget.HostNQN, ID: labtarget.HostID},
		Target: nvme.Target{Transport: labtarget.Transport, TrAddr: labtarget.TrAddr, TrSvcID: labtarget.TrSvcID,
			NQN: nqn},
		Config: nvme.DefaultConnectionConfig(),
	}
}

// valid validates conn as the plugin does before it connects.
func valid(t *testing.T, conn nvme.Connection) nvme.ValidConnection {
	t.Helper()
	v, err := conn.Valid()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// connectForTest connects and disconnects again when the test ends.
func connectForTest(t *testing.T, c kernel.Connector, conn nvme.Connection) kernel.Controller {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ctrl, err := c.Connect(ctx, valid(t, conn))
	if err != nil {
		t.Fatalf("Connect(%s): %v", conn.Target.NQN, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Disconnect(ctx, ctrl); err != nil {
			t.Errorf("Disconnect(%s): %v", ctrl.Name, err)
		}
	})
	return ctrl
}

func ctrlSysfs(t *testing.T, ctrl kernel.Controller, attr string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/class/nvme", ctrl.Name, attr))
	if err != nil {
		t.Fatalf("read %s of %s: %v", attr, ctrl.Name, err)
	}
	return strings.TrimSpace(string(b))
}

// controllersOf lists the usable controllers of subsystem nqn.
func controllersOf(t *testing.T, c kernel.Connector, nqn string) []string {
	t.Helper()
	all, err := c.Controllers()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ctrl := range all {
		if ctrl.Subsystem == nqn && ctrl.Usable() {
			names = append(names, ctrl.Name)
		}
	}
	return names
}

func resolveForTest(t *testing.T, c kernel.Connector, ctrl kernel.Controller, sel nvme.NamespaceSelector) kernel.Namespace {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	ns, err := c.Resolve(ctx, ctrl, sel)
	if err != nil {
		t.Fatalf("Resolve(%s, %s): %v", ctrl.Name, sel, err)
	}
	return ns
}

// waitFor polls cond every 20 ms until it holds or timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// 1. Defaults reach the kernel: ctrl_loss_tmo off, reconnect_delay 5, the
// host identity as given.
func TestConnectorDefaults(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		c, _ := newLabConnectorWith(t, backend)
		ctrl := connectForTest(t, c, labConnection(labtarget.SubsystemOne))
		for attr, want := range map[string]string{
			"ctrl_loss_tmo": "off", "reconnect_delay": "5", "hostnqn": labtarget.HostNQN,
			"hostid": labtarget.HostID, "subsysnqn": labtarget.SubsystemOne, "state": "live", "transport": "tcp",
		} {
			if got := ctrlSysfs(t, ctrl, attr); got != want {
				t.Errorf("%s %s = %q, want %q", ctrl.Name, attr, got, want)
			}
		}
		if ctrl.CtrlLossTmo != -1 || ctrl.ReconnectDelay != 5 || ctrl.HostID != labtarget.HostID || ctrl.TrSvcID != labtarget.TrSvcID {
			t.Errorf("Connect returned %+v", ctrl)
		}
	})
}

// 2. A second Connect adopts; concurrent Connects meet the kernel's
// EALREADY and adopt the winner's controller.
func TestConnectorAdopts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		c, logs := newLabConnectorWith(t, backend)
		conn := labConnection(labtarget.SubsystemTwo)
		first := connectForTest(t, c, conn)
		second := connectForTest(t, c, conn)
		if second.Name != first.Name {
			t.Errorf("second Connect gave %s, want the adopted %s", second.Name, first.Name)
		}
		if got := controllersOf(t, c, labtarget.SubsystemTwo); len(got) != 1 {
			t.Errorf("controllers of %s = %v, want one", labtarget.SubsystemTwo, got)
		}

		// The kernel's own answer to a duplicate is EALREADY.
		opts, err := conn.FabricsOptions()
		if err != nil {
			t.Fatal(err)
		}
		if err := rawFabricsWrite(opts); !errors.Is(err, syscall.EALREADY) {
			t.Fatalf("duplicate write to /dev/nvme-fabrics = %v, want EALREADY", err)
		}
		if err := c.Disconnect(t.Context(), first); err != nil {
			t.Fatal(err)
		}
		logs.take()

		// Four connectors race: one write wins, the others get EALREADY (or
		// find the winner first) and adopt it.
		const racers = 4
		names := make([]string, racers)
		var wg sync.WaitGroup
		for i := range racers {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				ctrl, err := c.Connect(ctx, valid(t, conn))
				if err != nil {
					t.Errorf("racer %d: %v", i, err)
					return
				}
				names[i] = ctrl.Name
			})
		}
		wg.Wait()
		got := controllersOf(t, c, labtarget.SubsystemTwo)
		t.Cleanup(func() {
			for _, n := range got {
				if err := c.Disconnect(context.Background(), kernel.Controller{Name: n, Subsystem: labtarget.SubsystemTwo}); err != nil {
					t.Errorf("Disconnect(%s): %v", n, err)
				}
			}
		})
		if len(got) != 1 || slices.ContainsFunc(names, func(n string) bool { return n != got[0] }) {
			t.Fatalf("racers got %v, sysfs has %v; want one controller for all", names, got)
		}
		adoptedAfterEALREADY := 0
		for _, l := range logs.take() {
			if l["@message"] == "kernel reports the controller exists; adopting it" {
				adoptedAfterEALREADY++
			}
		}
		t.Logf("racers: %v; %d adopted after EALREADY", names, adoptedAfterEALREADY)
	})
}

// rawFabricsWrite writes opts to /dev/nvme-fabrics the way the kernel
// expects, outside the connector, and returns the write's error.
func rawFabricsWrite(opts string) error {
	f, err := os.OpenFile("/dev/nvme-fabrics", os.O_RDWR, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(opts)
	return errors.Join(err, f.Close())
}

// 3. Resolve by nsid and by uuid, a wrong uuid refused, both namespaces of
// one subsystem.
func TestConnectorResolve(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		c, _ := newLabConnectorWith(t, backend)
		ctrl := connectForTest(t, c, labConnection(labtarget.SubsystemOne))

		ns1 := resolveForTest(t, c, ctrl, nvme.NamespaceSelector{NSID: 1})
		ns2 := resolveForTest(t, c, ctrl, nvme.NamespaceSelector{UUID: labtarget.OneNS2UUID})
		if ns1.NSID != 1 || ns1.UUID != labtarget.OneNS1UUID || ns1.NGUID != labtarget.OneNS1NGUID || ns1.SizeBytes != labtarget.NamespaceSize {
			t.Errorf("nsid 1 = %+v", ns1)
		}
		if ns2.NSID != 2 || ns2.UUID != labtarget.OneNS2UUID || ns2.NGUID != labtarget.OneNS2NGUID {
			t.Errorf("uuid %s = %+v", labtarget.OneNS2UUID, ns2)
		}
		if ns1.DevicePath == ns2.DevicePath {
			t.Errorf("both namespaces resolved to %s", ns1.DevicePath)
		}
		for _, ns := range []kernel.Namespace{ns1, ns2} {
			if st, err := os.Stat(ns.DevicePath); err != nil || st.Mode()&os.ModeDevice == 0 {
				t.Errorf("%s: %v, mode %v; want a block device", ns.DevicePath, err, st.Mode())
			}
		}
		verified := resolveForTest(t, c, ctrl, nvme.NamespaceSelector{NSID: 2, UUID: labtarget.OneNS2UUID, NGUID: labtarget.OneNS2NGUID})
		if verified.DevicePath != ns2.DevicePath {
			t.Errorf("nsid 2 verified = %s, want %s", verified.DevicePath, ns2.DevicePath)
		}

		start := time.Now()
		_, err := c.Resolve(t.Context(), ctrl, nvme.NamespaceSelector{NSID: 1, UUID: labtarget.OneNS2UUID})
		if !errors.Is(err, kernel.ErrNamespaceMismatch) || !strings.Contains(err.Error(), labtarget.OneNS1UUID) || !strings.Contains(err.Error(), labtarget.OneNS2UUID) {
			t.Errorf("wrong uuid: error = %v, want a mismatch naming both uuids", err)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("a mismatch took %s: it must not be waited on", took)
		}

		got, ctrls, err := c.NamespaceOf(ns1.DevicePath)
		if err != nil || got.NSID != 1 || len(ctrls) != 1 || ctrls[0].Name != ctrl.Name {
			t.Errorf("NamespaceOf(%s) = %+v via %v, %v", ns1.DevicePath, got, ctrls, err)
		}
		t.Logf("subsystem one: nsid 1 = %s, nsid 2 = %s on %s", ns1.DevicePath, ns2.DevicePath, ctrl.Name)
	})
}

// 4. A host the subsystem does not allow gets a clear error, at once.
func TestConnectorHostNotAllowed(t *testing.T) {
	c, _ := newLabConnector(t)
	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ctrl, err := c.Connect(ctx, valid(t, labConnection(labtarget.SubsystemACL)))
	if err == nil {
		_ = c.Disconnect(context.Background(), ctrl)
		t.Fatalf("host %s connected to %s", labtarget.HostNQN, labtarget.SubsystemACL)
	}
	t.Logf("refused after %s: %v", time.Since(start), err)
	if retry.IsRetryableError(err) || !strings.Contains(err.Error(), "after 1 attempt(s)") {
		t.Errorf("the refusal was retried or is retryable: %v", err)
	}
	if !strings.Contains(err.Error(), "allowed hosts") || !strings.Contains(err.Error(), labtarget.HostNQN) {
		t.Errorf("error does not say which host is not allowed: %v", err)
	}
	if !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.EIO) {
		t.Errorf("error does not carry the kernel's errno: %v", err)
	}
	if got := controllersOf(t, c, labtarget.SubsystemACL); len(got) != 0 {
		t.Errorf("controllers of %s after a refusal: %v", labtarget.SubsystemACL, got)
	}

	// The allowed host gets in.
	allowed := labConnection(labtarget.SubsystemACL)
	allowed.Host = nvme.Host{NQN: labtarget.AllowedHostNQN, ID: labtarget.AllowedHostID}
	ok := connectForTest(t, c, allowed)
	resolveForTest(t, c, ok, nvme.NamespaceSelector{NSID: 1, UUID: labtarget.ACLNS1UUID})
}

// 5. Reconnection parameters change on a live controller and read back.
func TestConnectorUpdateReconnectParams(t *testing.T) {
	c, _ := newLabConnector(t)
	ctrl := connectForTest(t, c, labConnection(labtarget.SubsystemTwo))
	four := 4
	off := -1
	tests := []struct {
		cfg  nvme.ConnectionConfig
		want map[string]string
	}{
		{nvme.ConnectionConfig{CtrlLossTmo: 30, ReconnectDelay: 2, FastIOFailTmo: &four},
			map[string]string{"ctrl_loss_tmo": "30", "reconnect_delay": "2", "fast_io_fail_tmo": "4"}},
		// The kernel counts attempts: 5 s at 2 s per attempt reads 6.
		{nvme.ConnectionConfig{CtrlLossTmo: 5, ReconnectDelay: 2},
			map[string]string{"ctrl_loss_tmo": "6", "reconnect_delay": "2", "fast_io_fail_tmo": "4"}},
		{nvme.ConnectionConfig{CtrlLossTmo: -1, ReconnectDelay: 5, FastIOFailTmo: &off},
			map[string]string{"ctrl_loss_tmo": "off", "reconnect_delay": "5", "fast_io_fail_tmo": "off"}},
	}
	for _, tt := range tests {
		if err := c.UpdateReconnectParams(ctrl, tt.cfg); err != nil {
			t.Fatalf("UpdateReconnectParams(%+v): %v", tt.cfg, err)
		}
		for attr, want := range tt.want {
			if got := ctrlSysfs(t, ctrl, attr); got != want {
				t.Errorf("after %+v: %s = %q, want %q", tt.cfg, attr, got, want)
			}
		}
	}
	if got := ctrlSysfs(t, ctrl, "state"); got != "live" {
		t.Errorf("state = %q after tuning", got)
	}
}

// 7. Disconnect is idempotent and leaves other subsystems alone.
func TestConnectorDisconnect(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		c, _ := newLabConnectorWith(t, backend)
		one := connectForTest(t, c, labConnection(labtarget.SubsystemOne))
		two := connectForTest(t, c, labConnection(labtarget.SubsystemTwo))
		for i := range 2 {
			if err := c.Disconnect(t.Context(), one); err != nil {
				t.Fatalf("Disconnect #%d: %v", i+1, err)
			}
		}
		if got := controllersOf(t, c, labtarget.SubsystemOne); len(got) != 0 {
			t.Errorf("controllers of %s after Disconnect: %v", labtarget.SubsystemOne, got)
		}
		if got := ctrlSysfs(t, two, "state"); got != "live" {
			t.Errorf("%s of the other subsystem is %q after the Disconnect", two.Name, got)
		}
	})
}

// 8. An option smuggled in through a value never reaches the kernel.
func TestConnectorInjectionRefused(t *testing.T) {
	c, _ := newLabConnector(t)
	before, err := c.Controllers()
	if err != nil {
		t.Fatal(err)
	}
	// The connector takes only validated connections; validation is
	// where the injection stops.
	conn := labConnection(labtarget.SubsystemOne + ",ctrl_loss_tmo=0")
	vc, err := conn.Valid()
	if err == nil {
		ctrl, cerr := c.Connect(t.Context(), vc)
		if cerr == nil {
			_ = c.Disconnect(context.Background(), ctrl)
		}
		t.Fatal("an NQN holding ,ctrl_loss_tmo=0 passed validation")
	}
	if !errors.Is(err, nvme.ErrInvalid) {
		t.Errorf("error = %v, want ErrInvalid", err)
	}
	after, err := c.Controllers()
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("controllers %d before, %d after a refused connect", len(before), len(after))
	}
}
