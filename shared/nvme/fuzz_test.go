package nvme

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// FuzzParseVolumeContext feeds arbitrary key/value pairs to the parser. It
// must never panic; whatever it accepts must render kernel options that
// split into exactly the intended tokens, and must survive a round trip.
func FuzzParseVolumeContext(f *testing.F) {
	f.Add("ctrl_loss_tmo", "-1", "nqn", testNQN, "traddr", "192.0.2.10")
	f.Add("ctrlLossTmo", "600", "reconnect_delay", "10", "fast_io_fail_tmo", "30")
	f.Add("nqn", "a,ctrl_loss_tmo=0", "traddr", "10.0.0.1\nhostnqn=x", "trsvcid", "04420")
	f.Add("uuid", "11111111-1111-4111-8111-111111111111", "nguid", "22222222-2222-4222-8222-222222222222", "hdr_digest", "true")
	f.Add("queue_size", "0x10", "tos", "+1", "csi/foo", "bar")
	f.Add("traddr_2", "192.0.2.11", "trsvcid_2", "4421", "host_iface_2", "eth1")
	f.Add("traddr_2", "192.0.2.11,ctrl_loss_tmo=0", "hostIface3", "eth1\nnqn=x", "traddr_3", "::1")
	f.Add("traddr_3", "192.0.2.12", "trsvcid_02", "1", "iopolicy", "round-robin")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3 string) {
		m := map[string]string{"traddr": "192.0.2.10", "nqn": testNQN, "nsid": "1"}
		m[k1], m[k2], m[k3] = v1, v2, v3
		v, err := ParseVolumeContext(m)
		if err != nil {
			if len(AsFieldErrors(err)) == 0 {
				t.Fatalf("error without field errors: %v", err)
			}
			return
		}
		back := v.ToVolumeContext()
		again, err := ParseVolumeContext(back)
		if err != nil {
			t.Fatalf("ToVolumeContext produced a context the parser refuses: %v\n%v", err, back)
		}
		if !reflect.DeepEqual(again, v) {
			t.Fatalf("round trip changed the volume:\n%+v\n%+v", v, again)
		}
		if !maps.Equal(again.ToVolumeContext(), back) {
			t.Fatal("ToVolumeContext is not stable")
		}
		for _, target := range v.Targets() {
			if !target.IsIPAddress() {
				continue // the kernel never sees a host name
			}
			checkKernelTokens(t, Connection{Host: testHost, Target: target, Config: v.Config})
		}
	})
}

// FuzzFabricsOptions sets every text field of a connection from fuzz input.
// Any accepted connection must split, the way the kernel splits, into
// exactly its intended options.
func FuzzFabricsOptions(f *testing.F) {
	f.Add("nqn.2014-08.org.example:x", "127.0.0.1", "4420", "lo", "host-1", "0aaaaaaa-0000-4000-8000-00000000000a", 5, -1)
	f.Add("x,ctrl_loss_tmo=0", "127.0.0.1\n", "4420,", "lo\x00", "h\nq", "bad", 0, 0)
	f.Add("nqn.2014-08.org.example:x", "::1", "1", "eth0", "h", "0AAAAAAA-0000-4000-8000-00000000000A", 1, 0)
	f.Fuzz(func(t *testing.T, nqn, traddr, trsvcid, iface, hostnqn, hostid string, delay, tmo int) {
		c := Connection{
			Host:   Host{NQN: hostnqn, ID: hostid},
			Target: Target{Transport: TransportTCP, TrAddr: traddr, TrSvcID: trsvcid, NQN: nqn, HostIface: iface},
			Config: ConnectionConfig{CtrlLossTmo: tmo, ReconnectDelay: delay},
		}
		if _, err := c.FabricsOptions(); err != nil {
			return
		}
		checkKernelTokens(t, c)
	})
}

// checkKernelTokens splits c's option string as the kernel does (strsep on
// ",\n") and compares the tokens with the options c is meant to set.
func checkKernelTokens(t *testing.T, c Connection) {
	t.Helper()
	s, err := c.FabricsOptions()
	if err != nil {
		t.Fatalf("FabricsOptions: %v", err)
	}
	got := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' })
	var want []string
	c.each(func(o option) {
		if o.flag {
			want = append(want, o.key)
		} else {
			want = append(want, o.key+"="+o.value)
		}
	})
	if !slices.Equal(got, want) {
		t.Fatalf("kernel would read %q, want %q", got, want)
	}
	if strings.Count(s, "ctrl_loss_tmo=") != 1 || strings.Count(s, "hostnqn=") != 1 || strings.Count(s, "trsvcid=") != 1 {
		t.Fatalf("an option appears other than once: %q", s)
	}
}
