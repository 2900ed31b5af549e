package nvme

import (
	"maps"
	"reflect"
	"strings"
	"testing"
)

const testNQN = "nqn.2016-06.io.spdk:cnode1"

// portalNote ends every unknown-key message.
const portalNote = ` (traddr, trsvcid, host_traddr, host_iface take the suffix _2 to _8 for further portals; keys holding '/' are ignored)`

// minimal is the smallest context a user writes.
func minimal() map[string]string {
	return map[string]string{"traddr": "192.0.2.10", "nqn": testNQN, "nsid": "1"}
}

func TestParseVolumeContextDefaults(t *testing.T) {
	v, err := ParseVolumeContext(minimal())
	if err != nil {
		t.Fatal(err)
	}
	want := Volume{
		Target:    Target{Transport: "tcp", TrAddr: "192.0.2.10", TrSvcID: "4420", NQN: testNQN},
		Config:    ConnectionConfig{CtrlLossTmo: -1, ReconnectDelay: 5},
		Namespace: NamespaceSelector{NSID: 1},
	}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("ParseVolumeContext(minimal)\n got %+v\nwant %+v", v, want)
	}
}

func TestParseVolumeContextEverything(t *testing.T) {
	m := map[string]string{
		"transport": "tcp", "traddr": "2001:db8::10", "trsvcid": "4421", "nqn": testNQN,
		"host_traddr": "2001:db8::1", "host_iface": "eth1",
		"nsid": "7", "uuid": "11111111-1111-4111-8111-11111111111A", "nguid": "22222222-2222-4222-8222-22222222222B",
		"ctrl_loss_tmo": "600", "reconnect_delay": "10", "keep_alive_tmo": "15", "fast_io_fail_tmo": "30",
		"nr_io_queues": "4", "queue_size": "256", "hdr_digest": "true", "data_digest": "TRUE", "tos": "184",
		"csi.storage.k8s.io/pvc/name": "ignored", "nomad/alloc": "ignored",
	}
	v, err := ParseVolumeContext(m)
	if err != nil {
		t.Fatal(err)
	}
	want := Volume{
		Target: Target{Transport: "tcp", TrAddr: "2001:db8::10", TrSvcID: "4421", NQN: testNQN, HostTrAddr: "2001:db8::1", HostIface: "eth1"},
		Config: ConnectionConfig{
			CtrlLossTmo: 600, ReconnectDelay: 10, KeepAliveTmo: new(15), FastIOFailTmo: new(30),
			NrIOQueues: new(4), QueueSize: new(256), TOS: new(184), HdrDigest: true, DataDigest: true,
		},
		Namespace: NamespaceSelector{NSID: 7, UUID: "11111111-1111-4111-8111-11111111111a", NGUID: "2222222222224222822222222222222b"},
	}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("got  %+v\nwant %+v", v, want)
	}
}

func TestParseVolumeContextAliases(t *testing.T) {
	m := map[string]string{
		"traddr": "192.0.2.10", "nqn": testNQN, "nsid": "1",
		"ctrlLossTmo": "60", "reconnectDelay": "3", "keepAliveTmo": "7", "fastIOFailTmo": "20",
		"nrIoQueues": "2", "queueSize": "64", "hdrDigest": "true", "dataDigest": "false",
		"hostTraddr": "192.0.2.1", "hostIface": "eth0",
	}
	v, err := ParseVolumeContext(m)
	if err != nil {
		t.Fatal(err)
	}
	got := v.ToVolumeContext()
	want := map[string]string{
		"transport": "tcp", "traddr": "192.0.2.10", "trsvcid": "4420", "nqn": testNQN, "nsid": "1",
		"ctrl_loss_tmo": "60", "reconnect_delay": "3", "keep_alive_tmo": "7", "fast_io_fail_tmo": "20",
		"nr_io_queues": "2", "queue_size": "64", "hdr_digest": "true",
		"host_traddr": "192.0.2.1", "host_iface": "eth0",
	}
	if !maps.Equal(got, want) {
		t.Fatalf("aliases normalised to\n%v\nwant\n%v", got, want)
	}
}

func TestParseVolumeContextErrors(t *testing.T) {
	with := func(kv ...string) map[string]string {
		m := minimal()
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "<delete>" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	tests := []struct {
		name string
		m    map[string]string
		want []string // every message, in order
	}{
		{
			name: "typo of a key",
			m:    with("ctrl_los_tmo", "0"),
			want: []string{`invalid ctrl_los_tmo (value redacted): is not a known volume context key (did you mean "ctrl_loss_tmo"?); known keys: ` + strings.Join(volumeContextKeys, ", ") + portalNote},
		},
		{
			name: "unknown key far from any",
			m:    with("colour", "blue"),
			want: []string{`invalid colour (value redacted): is not a known volume context key; known keys: ` + strings.Join(volumeContextKeys, ", ") + portalNote},
		},
		{
			name: "snake key with wrong case is not an alias",
			m:    with("CTRL_LOSS_TMO", "5"),
			want: []string{`invalid CTRL_LOSS_TMO (value redacted): is not a known volume context key (did you mean "ctrl_loss_tmo"?); known keys: ` + strings.Join(volumeContextKeys, ", ") + portalNote},
		},
		{
			name: "set twice",
			m:    with("ctrl_loss_tmo", "-1", "ctrlLossTmo", "30"),
			want: []string{`invalid ctrl_loss_tmo "-1": is set twice, as "ctrlLossTmo" and as "ctrl_loss_tmo"; give it once`},
		},
		{
			name: "not a number",
			m:    with("ctrl_loss_tmo", "forever"),
			want: []string{`invalid ctrl_loss_tmo "forever": must be a decimal integer; ` + ctrlLossTmoRange},
		},
		{
			name: "octal looking",
			m:    with("reconnect_delay", "010"),
			want: []string{`invalid reconnect_delay "010": must be a decimal integer; ` + reconnectDelayRange},
		},
		{
			name: "hex",
			m:    with("queue_size", "0x80"),
			want: []string{`invalid queue_size "0x80": must be a decimal integer; ` + queueSizeRange},
		},
		{
			name: "plus sign",
			m:    with("tos", "+1"),
			want: []string{`invalid tos "+1": must be a decimal integer; ` + tosRange},
		},
		{
			name: "out of int32",
			m:    with("ctrl_loss_tmo", "2147483648"),
			want: []string{`invalid ctrl_loss_tmo "2147483648": is out of range; ` + ctrlLossTmoRange},
		},
		{
			name: "range after parse",
			m:    with("ctrl_loss_tmo", "-2"),
			want: []string{`invalid ctrl_loss_tmo "-2": ` + ctrlLossTmoRange},
		},
		{
			name: "bool",
			m:    with("hdr_digest", "yes"),
			want: []string{`invalid hdr_digest "yes": must be "true" or "false"`},
		},
		{
			name: "nsid zero",
			m:    with("nsid", "0"),
			want: []string{`invalid nsid "0": ` + nsidRange},
		},
		{
			name: "nsid broadcast",
			m:    with("nsid", "4294967295"),
			want: []string{`invalid nsid "4294967295": is out of range; ` + nsidRange},
		},
		{
			name: "no namespace",
			m:    with("nsid", "<delete>"),
			want: []string{`invalid nsid: one of nsid, uuid or nguid is required to pick the namespace`},
		},
		{
			name: "bad uuid",
			m:    with("uuid", "1234"),
			want: []string{`invalid uuid "1234": must be a UUID (8-4-4-4-12 hexadecimal digits)`},
		},
		{
			name: "bad nguid",
			m:    with("nguid", "xyz"),
			want: []string{`invalid nguid "xyz": must be 32 hexadecimal digits (dashes allowed)`},
		},
		{
			name: "missing target",
			m:    map[string]string{"nsid": "1"},
			want: []string{`invalid traddr: is required; must be an IPv4 or IPv6 address or a host name`, `invalid nqn: is required`},
		},
		{
			name: "cross field",
			m:    with("ctrl_loss_tmo", "2"),
			want: []string{`invalid ctrl_loss_tmo "2": is shorter than reconnect_delay 5, which gives a single reconnect attempt; use ctrl_loss_tmo -1 (forever), 0, or at least reconnect_delay`},
		},
		{
			name: "injection through nqn",
			m:    with("nqn", "x,ctrl_loss_tmo=0"),
			want: []string{`invalid nqn "x,ctrl_loss_tmo=0": must not contain ',' (the kernel splits its options on it)`},
		},
		{
			name: "syntax errors are all reported",
			m:    with("queue_size", "big", "tos", "high", "bogus", "1"),
			want: []string{
				`invalid bogus (value redacted): is not a known volume context key; known keys: ` + strings.Join(volumeContextKeys, ", ") + portalNote,
				`invalid queue_size "big": must be a decimal integer; ` + queueSizeRange,
				`invalid tos "high": must be a decimal integer; ` + tosRange,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := ParseVolumeContext(tt.m)
			if err == nil {
				t.Fatalf("no error; parsed %+v", v)
			}
			if !reflect.DeepEqual(v, Volume{}) {
				t.Errorf("a failed parse returned a volume: %+v", v)
			}
			var got []string
			for _, fe := range AsFieldErrors(err) {
				got = append(got, fe.Error())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("messages\n got: %q\nwant: %q", got, tt.want)
			}
			if err.Error() != strings.Join(tt.want, "; ") {
				t.Errorf("Error() = %q", err.Error())
			}
		})
	}
}

func TestParseVolumeContextStrictNQN(t *testing.T) {
	m := minimal()
	m["nqn"] = "testnqn"
	if _, err := ParseVolumeContext(m); err != nil {
		t.Fatalf("free-form NQN refused by default: %v", err)
	}
	if _, err := ParseVolumeContext(m, WithNQNMode(NQNStrict)); err == nil {
		t.Fatal("strict mode accepted a free-form NQN")
	}
}

// The value of an unknown key is never shown: it may be a secret given in
// the wrong place.
func TestParseVolumeContextNeverShowsUnknownValues(t *testing.T) {
	const secret = "DHHC-1:00:c2VjcmV0LWtleS1ub3QtZm9yLWxvZ3MtYXQtYWxsLTEyMzQ1Njc4OTA=:"
	m := minimal()
	m["dhchap_secret"] = secret
	_, err := ParseVolumeContext(m)
	if err == nil || strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "c2VjcmV0") {
		t.Fatalf("err = %v; want an error that does not show the value", err)
	}
}

func TestVolumeContextRoundTrip(t *testing.T) {
	canonical := []map[string]string{
		{"transport": "tcp", "traddr": "192.0.2.10", "trsvcid": "4420", "nqn": testNQN, "nsid": "1", "ctrl_loss_tmo": "-1", "reconnect_delay": "5"},
		{"transport": "tcp", "traddr": "array.example", "trsvcid": "4420", "nqn": "testnqn", "uuid": "11111111-1111-4111-8111-111111111111", "ctrl_loss_tmo": "0", "reconnect_delay": "1"},
		{"transport": "tcp", "traddr": "fe80::1%eth0", "trsvcid": "1", "nqn": testNQN, "nguid": "22222222222222222222222222222222", "ctrl_loss_tmo": "600", "reconnect_delay": "10",
			"host_traddr": "fe80::2", "host_iface": "eth0", "keep_alive_tmo": "30", "fast_io_fail_tmo": "-1", "nr_io_queues": "8", "queue_size": "16",
			"tos": "0", "hdr_digest": "true", "data_digest": "true"},
		{"transport": "tcp", "traddr": "192.0.2.10", "trsvcid": "65535", "nqn": testNQN, "nsid": "4294967294", "uuid": "11111111-1111-4111-8111-111111111111",
			"nguid": "22222222222222222222222222222222", "ctrl_loss_tmo": "2147483647", "reconnect_delay": "2147483647", "fast_io_fail_tmo": "0"},
	}
	for _, m := range canonical {
		v, err := ParseVolumeContext(m)
		if err != nil {
			t.Fatalf("ParseVolumeContext(%v): %v", m, err)
		}
		if got := v.ToVolumeContext(); !maps.Equal(got, m) {
			t.Errorf("round trip\n got %v\nwant %v", got, m)
		}
		again, err := ParseVolumeContext(v.ToVolumeContext())
		if err != nil || !reflect.DeepEqual(again, v) {
			t.Errorf("parse∘format is not the identity: %+v vs %+v (%v)", again, v, err)
		}
	}
}

func TestExternalID(t *testing.T) {
	tests := []struct {
		sel  NamespaceSelector
		want string
	}{
		{NamespaceSelector{NSID: 3}, testNQN + "/nsid:3"},
		{NamespaceSelector{NSID: 3, NGUID: "22222222222222222222222222222222"}, testNQN + "/nguid:22222222222222222222222222222222"},
		{NamespaceSelector{NSID: 3, UUID: "11111111-1111-4111-8111-111111111111", NGUID: "2"}, testNQN + "/uuid:11111111-1111-4111-8111-111111111111"},
	}
	for _, tt := range tests {
		v := Volume{Target: Target{NQN: testNQN}, Namespace: tt.sel}
		if got := v.ExternalID(); got != tt.want {
			t.Errorf("ExternalID = %q, want %q", got, tt.want)
		}
	}
}

func TestVolumeContextKeysAreDocumentedOnce(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range VolumeContextKeys() {
		if seen[k] {
			t.Errorf("key %q listed twice", k)
		}
		seen[k] = true
		if got, n, problem := canonicalKey(k); got != k || n != 1 || problem != "" {
			t.Errorf("canonicalKey(%q) = %q, %d, %q", k, got, n, problem)
		}
	}
}
