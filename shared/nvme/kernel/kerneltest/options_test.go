package kerneltest

import (
	"errors"
	"strings"
	"syscall"
	"testing"
)

const base = "nqn=nqn.2026-01.io.test:one,transport=tcp,traddr=127.0.0.1"

func TestParseOptions(t *testing.T) {
	tests := []struct {
		name  string
		opts  string
		check func(t *testing.T, o *options)
		// wantErr is the errno a refusal carries; 0 means accepted.
		wantErr syscall.Errno
		strict  bool // newer kernels' host identity rules
	}{
		{name: "kernel defaults", opts: base, check: func(t *testing.T, o *options) {
			if o.trsvcid != "8009" || o.reconnectDelay != 10 || o.maxReconnects != 60 || o.kato != 5 ||
				o.queueSize != 128 || o.nrIOQueues != 2 || o.fastIOFailTmo != -1 || o.tos != -1 {
				t.Errorf("defaults = %+v", o)
			}
		}},
		{name: "split on newline as well as comma", opts: base + "\nctrl_loss_tmo=-1,reconnect_delay=2", check: func(t *testing.T, o *options) {
			if o.maxReconnects != -1 || o.reconnectDelay != 2 {
				t.Errorf("ctrl_loss_tmo/reconnect_delay = %d/%d", o.maxReconnects, o.reconnectDelay)
			}
		}},
		{name: "empty pieces are skipped", opts: ",," + base + ",\n,", check: func(*testing.T, *options) {}},
		{name: "a later value replaces an earlier one", opts: base + ",ctrl_loss_tmo=0,ctrl_loss_tmo=-1,traddr=127.0.0.2",
			check: func(t *testing.T, o *options) {
				if o.maxReconnects != -1 || o.traddr != "127.0.0.2" {
					t.Errorf("ctrl_loss_tmo attempts %d, traddr %s: want the last values", o.maxReconnects, o.traddr)
				}
			}},
		{name: "injected option in a value takes effect", opts: "nqn=nqn.2026-01.io.test:one,ctrl_loss_tmo=0,transport=tcp,traddr=127.0.0.1",
			check: func(t *testing.T, o *options) {
				if o.nqn != "nqn.2026-01.io.test:one" || o.maxReconnects != 0 {
					t.Errorf("nqn %q, attempts %d", o.nqn, o.maxReconnects)
				}
			}},
		{name: "octal", opts: base + ",reconnect_delay=010", check: func(t *testing.T, o *options) {
			if o.reconnectDelay != 8 {
				t.Errorf("reconnect_delay=010 read %d, want 8", o.reconnectDelay)
			}
		}},
		{name: "hex", opts: base + ",queue_size=0x1f", check: func(t *testing.T, o *options) {
			if o.queueSize != 31 {
				t.Errorf("queue_size=0x1f read %d, want 31", o.queueSize)
			}
		}},
		{name: "negative hex", opts: base + ",ctrl_loss_tmo=-0x1", check: func(t *testing.T, o *options) {
			if o.maxReconnects != -1 {
				t.Errorf("attempts %d, want forever", o.maxReconnects)
			}
		}},
		{name: "ctrl_loss_tmo rounds up to attempts", opts: base + ",ctrl_loss_tmo=5,reconnect_delay=2", check: func(t *testing.T, o *options) {
			if o.maxReconnects != 3 {
				t.Errorf("attempts %d, want 3 (reads 6)", o.maxReconnects)
			}
		}},
		{name: "ctrl_loss_tmo takes the last reconnect_delay", opts: base + ",ctrl_loss_tmo=30,reconnect_delay=7", check: func(t *testing.T, o *options) {
			if o.maxReconnects != 5 {
				t.Errorf("attempts %d, want 5", o.maxReconnects)
			}
		}},
		{name: "keep_alive_tmo 0 means the default", opts: base + ",keep_alive_tmo=0", check: func(t *testing.T, o *options) {
			if o.kato != 5 {
				t.Errorf("kato %d, want 5", o.kato)
			}
		}},
		{name: "nr_io_queues capped at the CPUs", opts: base + ",nr_io_queues=64", check: func(t *testing.T, o *options) {
			if o.nrIOQueues != 2 {
				t.Errorf("nr_io_queues %d, want 2", o.nrIOQueues)
			}
		}},
		{name: "tos clamped", opts: base + ",tos=300", check: func(t *testing.T, o *options) {
			if o.tos != 255 {
				t.Errorf("tos %d, want 255", o.tos)
			}
		}},
		{name: "fast_io_fail_tmo negative is off", opts: base + ",fast_io_fail_tmo=-7", check: func(t *testing.T, o *options) {
			if o.fastIOFailTmo != -1 {
				t.Errorf("fast_io_fail_tmo %d, want -1", o.fastIOFailTmo)
			}
		}},
		{name: "hostid is read from its first 36 characters", opts: base + ",hostid=0AAAAAAA-0000-4000-8000-00000000000Axyz",
			check: func(t *testing.T, o *options) {
				if o.hostID != "0aaaaaaa-0000-4000-8000-00000000000a" {
					t.Errorf("hostid %q", o.hostID)
				}
			}},
		{name: "flags", opts: base + ",hdr_digest,data_digest,duplicate_connect,disable_sqflow", check: func(t *testing.T, o *options) {
			if !o.hdrDigest || !o.dataDigest || !o.dupConnect || !o.disableSQFlow {
				t.Errorf("flags %+v", o)
			}
		}},
		{name: "discovery NQN", opts: "nqn=" + discoveryNQN + ",transport=tcp,traddr=127.0.0.1,nr_io_queues=4", check: func(t *testing.T, o *options) {
			if !o.discovery || !o.dupConnect || o.nrIOQueues != 0 || o.kato != 0 {
				t.Errorf("discovery %+v", o)
			}
		}},
		{name: "hostnqn twice is EADDRINUSE on 6.1", opts: base + ",hostnqn=a,hostnqn=a", wantErr: syscall.EADDRINUSE},
		{name: "hostnqn twice, the last wins on newer kernels", opts: base + ",hostnqn=a,hostnqn=b", strict: true,
			check: func(t *testing.T, o *options) {
				if o.hostNQN != "b" {
					t.Errorf("hostnqn %q", o.hostNQN)
				}
			}},
		{name: "unknown option", opts: base + ",ctrl_los_tmo=5", wantErr: syscall.EINVAL},
		{name: "missing value", opts: base + ",trsvcid=", wantErr: syscall.EINVAL},
		{name: "no equals sign", opts: base + ",trsvcid", wantErr: syscall.EINVAL},
		{name: "flag with a value", opts: base + ",hdr_digest=1", wantErr: syscall.EINVAL},
		{name: "integer with trailing text", opts: base + ",reconnect_delay=5s", wantErr: syscall.EINVAL},
		{name: "8 is no octal digit", opts: base + ",reconnect_delay=08", wantErr: syscall.EINVAL},
		{name: "plus sign", opts: base + ",reconnect_delay=+5", wantErr: syscall.EINVAL},
		{name: "integer out of range", opts: base + ",ctrl_loss_tmo=2147483648", wantErr: syscall.EINVAL},
		{name: "reconnect_delay 0", opts: base + ",reconnect_delay=0", wantErr: syscall.EINVAL},
		{name: "negative keep_alive_tmo", opts: base + ",keep_alive_tmo=-1", wantErr: syscall.EINVAL},
		{name: "queue_size below 16", opts: base + ",queue_size=15", wantErr: syscall.EINVAL},
		{name: "queue_size above 1024", opts: base + ",queue_size=1025", wantErr: syscall.EINVAL},
		{name: "nr_io_queues 0", opts: base + ",nr_io_queues=0", wantErr: syscall.EINVAL},
		{name: "negative tos", opts: base + ",tos=-1", wantErr: syscall.EINVAL},
		{name: "NQN of 223 bytes", opts: "transport=tcp,traddr=127.0.0.1,nqn=" + strings.Repeat("n", 223), wantErr: syscall.EINVAL},
		{name: "host NQN of 223 bytes", opts: base + ",hostnqn=" + strings.Repeat("n", 223), wantErr: syscall.EINVAL},
		{name: "hostid not a UUID", opts: base + ",hostid=0aaaaaaa-0000-4000-8000", wantErr: syscall.EINVAL},
		{name: "DH-HMAC-CHAP secret without its envelope", opts: base + ",dhchap_secret=secretsecret", wantErr: syscall.EINVAL},
		{name: "no transport", opts: "nqn=nqn.2026-01.io.test:one,traddr=127.0.0.1", wantErr: syscall.EINVAL},
		{name: "no nqn", opts: "transport=tcp,traddr=127.0.0.1", wantErr: syscall.EINVAL},
		{name: "no traddr", opts: "nqn=nqn.2026-01.io.test:one,transport=tcp", wantErr: syscall.EINVAL},
		{name: "transport not loaded", opts: "nqn=nqn.2026-01.io.test:one,transport=rdma,traddr=127.0.0.1", wantErr: syscall.EINVAL},
		{name: "empty", opts: "", wantErr: syscall.EINVAL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseOptions(tt.opts, 2, tt.strict)
			if tt.wantErr != 0 {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("parseOptions(%q) = %v, want %v", tt.opts, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseOptions(%q): %v", tt.opts, err)
			}
			tt.check(t, o)
		})
	}
}

func TestSimpleStrtol(t *testing.T) {
	tests := []struct {
		in       string
		want     int64
		consumed int
	}{
		{"0", 0, 1}, {"10", 10, 2}, {"010", 8, 3}, {"0x10", 16, 4}, {"0X1f", 31, 4}, {"-5", -5, 2},
		{"08", 0, 1}, {"0x", 0, 1}, {"0xg", 0, 1}, {"-", 0, 0}, {"", 0, 0}, {"x1", 0, 0}, {"12ab", 12, 2},
		{"18446744073709551621", 5, 20}, // wraps as simple_strtoull does
	}
	for _, tt := range tests {
		got, n := simpleStrtol(tt.in)
		if got != tt.want || n != tt.consumed {
			t.Errorf("simpleStrtol(%q) = %d, %d; want %d, %d", tt.in, got, n, tt.want, tt.consumed)
		}
	}
}

func TestKstrtoInt(t *testing.T) {
	tests := []struct {
		in     string
		base   int
		signed bool
		want   int64
		ok     bool
	}{
		{"5", 10, true, 5, true}, {"5\n", 10, true, 5, true}, {"-1", 10, true, -1, true}, {"+7", 10, false, 7, true},
		{"010", 10, true, 10, true}, {"-1", 10, false, 0, false}, {"0x10", 10, true, 0, false}, {"5\n\n", 10, true, 0, false},
		{"", 10, true, 0, false}, {"4294967295", 10, false, 4294967295, true}, {"4294967296", 10, false, 0, false},
		{"2147483648", 10, true, 0, false}, {"0x1144", 0, false, 4420, true}, {"04420", 0, false, 2320, true},
	}
	for _, tt := range tests {
		got, ok := kstrtoInt(tt.in, tt.base, tt.signed)
		if got != tt.want || ok != tt.ok {
			t.Errorf("kstrtoInt(%q, %d, %v) = %d, %v; want %d, %v", tt.in, tt.base, tt.signed, got, ok, tt.want, tt.ok)
		}
	}
}

func TestOptionList(t *testing.T) {
	l := OptionList()
	if !strings.HasPrefix(l, "instance=-1,cntlid=-1,transport=%s,traddr=%s,") || !strings.HasSuffix(l, ",dhchap_ctrl_secret=%s\n") {
		t.Errorf("OptionList() = %q", l)
	}
	for _, want := range []string{",ctrl_loss_tmo=%d,", ",hostid=%s,", ",duplicate_connect,", ",fast_io_fail_tmo=%d,"} {
		if !strings.Contains(l, want) {
			t.Errorf("OptionList() lacks %q", want)
		}
	}
}
