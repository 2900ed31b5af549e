package nvme

import (
	"errors"
	"strings"
	"testing"
)

func TestDefaultConnectionConfig(t *testing.T) {
	c := DefaultConnectionConfig()
	if c.CtrlLossTmo != -1 || c.ReconnectDelay != 5 {
		t.Fatalf("defaults = ctrl_loss_tmo %d, reconnect_delay %d; want -1, 5", c.CtrlLossTmo, c.ReconnectDelay)
	}
	if c.KeepAliveTmo != nil || c.FastIOFailTmo != nil || c.NrIOQueues != nil || c.QueueSize != nil || c.TOS != nil || c.HdrDigest || c.DataDigest {
		t.Fatalf("defaults set a kernel-owned option: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
}

func TestConnectionConfigValidate(t *testing.T) {
	with := func(f func(*ConnectionConfig)) ConnectionConfig {
		c := DefaultConnectionConfig()
		f(&c)
		return c
	}
	tests := []struct {
		name    string
		cfg     ConnectionConfig
		wantErr string // exact message; "" = valid
		related []string
	}{
		{name: "defaults", cfg: DefaultConnectionConfig()},
		{name: "give up at first error", cfg: with(func(c *ConnectionConfig) { c.CtrlLossTmo = 0 })},
		{name: "tmo equal to delay", cfg: with(func(c *ConnectionConfig) { c.CtrlLossTmo = 5 })},
		{name: "everything set", cfg: with(func(c *ConnectionConfig) {
			c.CtrlLossTmo, c.ReconnectDelay = 600, 10
			c.KeepAliveTmo, c.FastIOFailTmo, c.NrIOQueues, c.QueueSize, c.TOS = new(5), new(30), new(4), new(1024), new(0)
		})},
		{name: "fast_io_fail off", cfg: with(func(c *ConnectionConfig) { c.FastIOFailTmo = new(-1) })},
		{name: "fast_io_fail equal to tmo", cfg: with(func(c *ConnectionConfig) { c.CtrlLossTmo, c.FastIOFailTmo = 30, new(30) })},
		{name: "fast_io_fail with forever", cfg: with(func(c *ConnectionConfig) { c.FastIOFailTmo = new(3600) })},
		{
			name:    "ctrl_loss_tmo below -1",
			cfg:     with(func(c *ConnectionConfig) { c.CtrlLossTmo = -2 }),
			wantErr: `invalid ctrl_loss_tmo "-2": must be -1 (reconnect forever), 0 (give up at the first error) or a number of seconds up to 2147483647`,
		},
		{
			name:    "reconnect_delay zero",
			cfg:     with(func(c *ConnectionConfig) { c.ReconnectDelay = 0 }),
			wantErr: `invalid reconnect_delay "0": must be a number of seconds from 1 to 2147483647`,
		},
		{
			name:    "single attempt trap",
			cfg:     with(func(c *ConnectionConfig) { c.CtrlLossTmo, c.ReconnectDelay = 3, 5 }),
			wantErr: `invalid ctrl_loss_tmo "3": is shorter than reconnect_delay 5, which gives a single reconnect attempt; use ctrl_loss_tmo -1 (forever), 0, or at least reconnect_delay`,
			related: []string{KeyReconnectDelay},
		},
		{
			name:    "fast_io_fail beyond tmo",
			cfg:     with(func(c *ConnectionConfig) { c.CtrlLossTmo, c.FastIOFailTmo = 30, new(60) }),
			wantErr: `invalid fast_io_fail_tmo "60": is longer than ctrl_loss_tmo 30, so it never takes effect: the controller is deleted first; use a value up to ctrl_loss_tmo, or ctrl_loss_tmo -1`,
			related: []string{KeyCtrlLossTmo},
		},
		{
			name:    "fast_io_fail below -1",
			cfg:     with(func(c *ConnectionConfig) { c.FastIOFailTmo = new(-5) }),
			wantErr: `invalid fast_io_fail_tmo "-5": must be -1 (off) or a number of seconds from 0 to 2147483647`,
		},
		{
			name:    "keep_alive_tmo zero",
			cfg:     with(func(c *ConnectionConfig) { c.KeepAliveTmo = new(0) }),
			wantErr: `invalid keep_alive_tmo "0": must be a number of seconds from 1 to 65535`,
		},
		{
			name:    "nr_io_queues zero",
			cfg:     with(func(c *ConnectionConfig) { c.NrIOQueues = new(0) }),
			wantErr: `invalid nr_io_queues "0": must be a number of queues from 1 to 65535 (the kernel caps it at the CPU count)`,
		},
		{
			name:    "queue_size too small",
			cfg:     with(func(c *ConnectionConfig) { c.QueueSize = new(15) }),
			wantErr: `invalid queue_size "15": must be a queue depth from 16 to 1024`,
		},
		{
			name:    "queue_size too large",
			cfg:     with(func(c *ConnectionConfig) { c.QueueSize = new(1025) }),
			wantErr: `invalid queue_size "1025": must be a queue depth from 16 to 1024`,
		},
		{
			name:    "tos too large",
			cfg:     with(func(c *ConnectionConfig) { c.TOS = new(256) }),
			wantErr: `invalid tos "256": must be an IP type-of-service value from 0 to 255`,
		},
		{
			name:    "tos negative",
			cfg:     with(func(c *ConnectionConfig) { c.TOS = new(-1) }),
			wantErr: `invalid tos "-1": must be an IP type-of-service value from 0 to 255`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			checkOneError(t, err, tt.wantErr, tt.related)
		})
	}
}

func TestConnectionConfigValidateReportsAll(t *testing.T) {
	c := ConnectionConfig{CtrlLossTmo: -7, ReconnectDelay: 0, QueueSize: new(1)}
	fes := AsFieldErrors(c.Validate())
	var keys []string
	for _, fe := range fes {
		keys = append(keys, fe.Key)
	}
	if got := strings.Join(keys, ","); got != "ctrl_loss_tmo,reconnect_delay,queue_size" {
		t.Fatalf("errors for %s, want ctrl_loss_tmo,reconnect_delay,queue_size", got)
	}
}

// checkOneError asserts err is exactly one FieldError with message want
// (or nil when want is "").
func checkOneError(t *testing.T, err error, want string, related []string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("error %v does not match ErrInvalid", err)
	}
	fes := AsFieldErrors(err)
	if len(fes) != 1 {
		t.Fatalf("%d field errors (%v), want 1", len(fes), err)
	}
	if got := fes[0].Error(); got != want {
		t.Errorf("message\n got: %s\nwant: %s", got, want)
	}
	if strings.Join(fes[0].Related, ",") != strings.Join(related, ",") {
		t.Errorf("related = %v, want %v", fes[0].Related, related)
	}
}

func TestConnectionConfigDiff(t *testing.T) {
	a := DefaultConnectionConfig()
	if d := a.Diff(DefaultConnectionConfig()); d != nil {
		t.Fatalf("Diff of equal configs = %q", d)
	}
	b := DefaultConnectionConfig()
	b.CtrlLossTmo, b.FastIOFailTmo, b.HdrDigest = 30, new(10), true
	want := []string{"ctrl_loss_tmo -1 -> 30", "fast_io_fail_tmo kernel default -> 10", "hdr_digest kernel default -> true"}
	if got := a.Diff(b); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("Diff = %q, want %q", got, want)
	}
	// Pointers to equal values are equal settings.
	c, d := DefaultConnectionConfig(), DefaultConnectionConfig()
	c.QueueSize, d.QueueSize = new(64), new(64)
	if got := c.Diff(d); got != nil {
		t.Fatalf("Diff of equal values behind different pointers = %q", got)
	}
}
