package nvme

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/nvmeof/nvmeof/shared/nvme/nvmetest"
)

var testHost = Host{NQN: "nqn.2026-01.io.nvmeof.lab:host-1", ID: "0aaaaaaa-0000-4000-8000-00000000000a"}

func testConnection() Connection {
	return Connection{
		Host:   testHost,
		Target: Target{Transport: "tcp", TrAddr: "127.0.0.1", TrSvcID: "4420", NQN: "nqn.2026-01.io.nvmeof.lab:one"},
		Config: DefaultConnectionConfig(),
	}
}

func TestFabricsOptions(t *testing.T) {
	full := testConnection()
	full.Target.HostTrAddr, full.Target.HostIface = "127.0.0.1", "lo"
	full.Config = ConnectionConfig{
		CtrlLossTmo: 600, ReconnectDelay: 10, KeepAliveTmo: new(15), FastIOFailTmo: new(0),
		NrIOQueues: new(2), QueueSize: new(64), TOS: new(8), HdrDigest: true, DataDigest: true,
	}
	tests := []struct {
		name string
		c    Connection
		want string
	}{
		{
			name: "defaults",
			c:    testConnection(),
			want: "nqn=nqn.2026-01.io.nvmeof.lab:one,transport=tcp,traddr=127.0.0.1,trsvcid=4420,hostnqn=nqn.2026-01.io.nvmeof.lab:host-1,hostid=0aaaaaaa-0000-4000-8000-00000000000a,reconnect_delay=5,ctrl_loss_tmo=-1",
		},
		{
			name: "everything",
			c:    full,
			want: "nqn=nqn.2026-01.io.nvmeof.lab:one,transport=tcp,traddr=127.0.0.1,trsvcid=4420,host_traddr=127.0.0.1,host_iface=lo,hostnqn=nqn.2026-01.io.nvmeof.lab:host-1,hostid=0aaaaaaa-0000-4000-8000-00000000000a,nr_io_queues=2,queue_size=64,keep_alive_tmo=15,reconnect_delay=10,ctrl_loss_tmo=600,fast_io_fail_tmo=0,tos=8,hdr_digest,data_digest",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.c.FabricsOptions()
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("FabricsOptions\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestBuildConnectArgs(t *testing.T) {
	c := testConnection()
	c.Config.KeepAliveTmo, c.Config.QueueSize, c.Config.HdrDigest = new(7), new(32), true
	got, err := c.BuildConnectArgs()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"connect", "-n", "nqn.2026-01.io.nvmeof.lab:one", "-t", "tcp", "-a", "127.0.0.1", "-s", "4420",
		"-q", "nqn.2026-01.io.nvmeof.lab:host-1", "-I", "0aaaaaaa-0000-4000-8000-00000000000a",
		"-Q", "32", "-k", "7", "-c", "5", "-l", "-1", "-g",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("BuildConnectArgs\n got %q\nwant %q", got, want)
	}
}

func TestBuildConnectArgsRefusesWhatNVMeCLIDrops(t *testing.T) {
	for _, c := range []func(*Connection){
		func(c *Connection) { c.Config.CtrlLossTmo = 0 },
		func(c *Connection) { c.Config.FastIOFailTmo = new(0) },
	} {
		conn := testConnection()
		c(&conn)
		if _, err := conn.BuildConnectArgs(); err == nil || !strings.Contains(err.Error(), "nvme-cli leaves out options that are 0") {
			t.Errorf("err = %v, want the nvme-cli zero refusal", err)
		}
		if _, err := conn.FabricsOptions(); err != nil {
			t.Errorf("the fabrics connector must accept it: %v", err)
		}
	}
}

func TestConnectionValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Connection)
		want string
	}{
		{name: "no host", mod: func(c *Connection) { c.Host = Host{} }, want: "invalid hostnqn: is required; invalid hostid: must be a UUID (8-4-4-4-12 hexadecimal digits)"},
		{name: "host name", mod: func(c *Connection) { c.Target.TrAddr = "array.example" }, want: `invalid traddr "array.example": is a host name, but the kernel takes only IP addresses: resolve it before connecting`},
		{name: "bad config", mod: func(c *Connection) { c.Config.ReconnectDelay = 0 }, want: `invalid reconnect_delay "0": must be a number of seconds from 1 to 2147483647`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConnection()
			tt.mod(&c)
			for _, render := range []func() error{
				func() error { _, err := c.FabricsOptions(); return err },
				func() error { _, err := c.BuildConnectArgs(); return err },
			} {
				if err := render(); err == nil || err.Error() != tt.want {
					t.Errorf("err = %v\nwant %s", err, tt.want)
				}
			}
		})
	}
}

// TestNoValueCanInject is the property the kernel's option parser needs:
// whatever a field holds, the rendered string either fails validation or
// splits (on ',' and '\n', as the kernel does) into exactly the intended
// options.
func TestNoValueCanInject(t *testing.T) {
	evil := []string{",ctrl_loss_tmo=0", "\nctrl_loss_tmo=0", "a\x00b", "a\rb", "x=y,z", "\x7f", "\u0085"}
	fields := []func(*Connection, string){
		func(c *Connection, s string) { c.Target.NQN = "nqn.2014-08.org.example:" + s },
		func(c *Connection, s string) { c.Target.TrAddr = "127.0.0.1" + s },
		func(c *Connection, s string) { c.Target.TrSvcID = "4420" + s },
		func(c *Connection, s string) { c.Target.HostTrAddr = "127.0.0.1" + s },
		func(c *Connection, s string) { c.Target.HostIface = "lo" + s },
		func(c *Connection, s string) { c.Host.NQN = "host" + s },
		func(c *Connection, s string) { c.Host.ID = testHost.ID + s },
		func(c *Connection, s string) { c.Auth.HostSecret = Secret("DHHC-1:00:" + s + ":") },
	}
	for i, set := range fields {
		for _, s := range evil {
			c := testConnection()
			set(&c, s)
			opts, err := c.FabricsOptions()
			if err == nil {
				t.Errorf("field %d with %q rendered %q", i, s, opts)
			}
		}
	}
}

func TestSecretNeverPrints(t *testing.T) {
	const key = "DHHC-1:00:c2VjcmV0LWtleS1ub3QtZm9yLWxvZ3MtYXQtYWxsLTEyMzQ1Njc4OTA=:"
	a := Auth{HostSecret: Secret(key), CtrlSecret: Secret(key)}
	c := testConnection()
	c.Auth = a
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X"} {
		for _, v := range []any{a, c, a.HostSecret, &c} {
			if out := fmt.Sprintf(format, v); strings.Contains(out, "c2VjcmV0") {
				t.Errorf("%s of %T shows the key: %s", format, v, out)
			}
		}
	}
	if a.HostSecret.Reveal() != key {
		t.Error("Reveal lost the key")
	}
}

func TestParseSecrets(t *testing.T) {
	key32 := nvmetest.DHCHAPKey(bytes.Repeat([]byte{7}, 32))
	key64 := nvmetest.DHCHAPKey(bytes.Repeat([]byte{9}, 64))
	badCRC := key32[:12] + "A" + key32[13:]
	const bad = "DHHC-1:07:c2VjcmV0:"
	tests := []struct {
		name    string
		m       map[string]string
		want    Auth
		wantErr string
	}{
		{name: "none", m: nil},
		{name: "host key", m: map[string]string{"dhchap_secret": key32}, want: Auth{HostSecret: Secret(key32)}},
		{name: "both camel", m: map[string]string{"dhchapSecret": key32, "dhchapCtrlSecret": key64}, want: Auth{HostSecret: Secret(key32), CtrlSecret: Secret(key64)}},
		{name: "mistyped", m: map[string]string{"dhchap_secret": badCRC}, wantErr: "invalid dhchap_secret (value redacted): has a CRC that does not match its key"},
		{name: "bad key", m: map[string]string{"dhchap_secret": bad}, wantErr: "invalid dhchap_secret (value redacted): must be a DH-HMAC-CHAP key"},
		{name: "ctrl without host", m: map[string]string{"dhchap_ctrl_secret": key32}, wantErr: "invalid dhchap_ctrl_secret (value redacted): needs dhchap_secret too"},
		{name: "unknown", m: map[string]string{"password": "hunter2"}, wantErr: "invalid password (value redacted): is not a known secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSecrets(tt.m)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				for _, v := range tt.m {
					if strings.Contains(err.Error(), v) {
						t.Fatalf("error shows a secret value: %v", err)
					}
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSecrets = %v, %v", got, err)
			}
		})
	}
}
