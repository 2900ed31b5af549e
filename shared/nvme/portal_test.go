package nvme

import (
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// twoPortals is a volume reached through two target ports, each from its
// own interface.
func twoPortals() map[string]string {
	m := minimal()
	m["host_iface"] = "eth0"
	m["traddr_2"] = "198.51.100.10"
	m["host_iface_2"] = "eth1"
	return m
}

func TestParseVolumeContextPortals(t *testing.T) {
	tests := []struct {
		name string
		m    map[string]string
		want []Portal
	}{
		{
			name: "single portal, as before",
			m:    minimal(),
			want: []Portal{{TrAddr: "192.0.2.10", TrSvcID: "4420"}},
		},
		{
			name: "two portals, each port defaults to 4420",
			m:    twoPortals(),
			want: []Portal{{TrAddr: "192.0.2.10", TrSvcID: "4420", HostIface: "eth0"}, {TrAddr: "198.51.100.10", TrSvcID: "4420", HostIface: "eth1"}},
		},
		{
			name: "one address, two ports",
			m:    with(minimal(), "trsvcid", "4420", "traddr_2", "192.0.2.10", "trsvcid_2", "4421"),
			want: []Portal{{TrAddr: "192.0.2.10", TrSvcID: "4420"}, {TrAddr: "192.0.2.10", TrSvcID: "4421"}},
		},
		{
			name: "camelCase aliases with the number at the end",
			m:    with(minimal(), "traddr2", "192.0.2.11", "trSvcId2", "4421", "hostTraddr2", "192.0.2.1", "HOSTIFACE3", "eth3", "traddr3", "2001:db8::3"),
			want: []Portal{
				{TrAddr: "192.0.2.10", TrSvcID: "4420"},
				{TrAddr: "192.0.2.11", TrSvcID: "4421", HostTrAddr: "192.0.2.1"},
				{TrAddr: "2001:db8::3", TrSvcID: "4420", HostIface: "eth3"},
			},
		},
		{
			name: "eight portals",
			m: func() map[string]string {
				m := minimal()
				for n := 2; n <= MaxPortals; n++ {
					m[PortalKey(KeyTrAddr, n)] = "192.0.2.10"
					m[PortalKey(KeyTrSvcID, n)] = strconvItoa(4420 + n)
				}
				return m
			}(),
			want: func() []Portal {
				out := []Portal{{TrAddr: "192.0.2.10", TrSvcID: "4420"}}
				for n := 2; n <= MaxPortals; n++ {
					out = append(out, Portal{TrAddr: "192.0.2.10", TrSvcID: strconvItoa(4420 + n)})
				}
				return out
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := ParseVolumeContext(tt.m)
			if err != nil {
				t.Fatal(err)
			}
			if got := v.Portals(); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Portals() = %+v\nwant %+v", got, tt.want)
			}
			targets := v.Targets()
			if len(targets) != len(tt.want) {
				t.Fatalf("Targets() has %d entries, want %d", len(targets), len(tt.want))
			}
			for i, target := range targets {
				if target.Portal() != tt.want[i] || target.NQN != testNQN || target.Transport != TransportTCP {
					t.Errorf("Targets()[%d] = %+v", i, target)
				}
				if err := target.Validate(NQNFreeForm); err != nil {
					t.Errorf("Targets()[%d] does not validate: %v", i, err)
				}
			}
		})
	}
}

func TestParseVolumeContextPortalErrors(t *testing.T) {
	tests := []struct {
		name string
		m    map[string]string
		want []string // every message, in order
	}{
		{
			name: "the first portal takes no suffix",
			m:    with(minimal(), "traddr_1", "192.0.2.11"),
			want: []string{`invalid traddr_1 "192.0.2.11": the first portal's keys take no suffix (traddr, trsvcid, host_traddr, host_iface); further portals are numbered from 2`},
		},
		{
			name: "portal zero",
			m:    with(minimal(), "trsvcid_0", "4420"),
			want: []string{`invalid trsvcid_0 "4420": portals are numbered from 1 (no suffix) to 8`},
		},
		{
			name: "too many portals",
			m:    with(minimal(), "traddr_9", "192.0.2.19"),
			want: []string{`invalid traddr_9 "192.0.2.19": a volume has at most 8 portals`},
		},
		{
			name: "a leading zero",
			m:    with(minimal(), "traddr_02", "192.0.2.11"),
			want: []string{`invalid traddr_02 "192.0.2.11": portal numbers are decimal, 2 to 8, without leading zeros`},
		},
		{
			name: "a number too big for an int",
			m:    with(minimal(), "hostIface99999999999999999999", "eth0"),
			want: []string{`invalid hostIface99999999999999999999 "eth0": portal numbers are decimal, 2 to 8, without leading zeros`},
		},
		{
			name: "a gap",
			m:    with(minimal(), "traddr_3", "192.0.2.13"),
			want: []string{`invalid traddr_2: is missing, but portal 3 is given; number the portals 2, 3, ... without gaps`},
		},
		{
			name: "a portal without its address",
			m:    with(minimal(), "trsvcid_2", "4421", "host_iface_2", "eth1"),
			want: []string{`invalid traddr_2: is required: trsvcid_2, host_iface_2 name portal 2, which needs an address`},
		},
		{
			name: "a key given twice, plain and as an alias",
			m:    with(minimal(), "traddr_2", "192.0.2.11", "traddr2", "192.0.2.12"),
			want: []string{`invalid traddr_2 "192.0.2.11": is set twice, as "traddr2" and as "traddr_2"; give it once`},
		},
		{
			name: "a per-portal key that is not one",
			m:    with(minimal(), "nsid_2", "2"),
			want: []string{`invalid nsid_2 (value redacted): is not a known volume context key; known keys: ` + strings.Join(volumeContextKeys, ", ") + portalNote},
		},
		{
			name: "a typo keeps its portal number",
			m:    with(minimal(), "trsvid_2", "4421"),
			want: []string{`invalid trsvid_2 (value redacted): is not a known volume context key (did you mean "trsvcid_2"?); known keys: ` + strings.Join(volumeContextKeys, ", ") + portalNote},
		},
		{
			name: "the same portal twice",
			m:    with(minimal(), "traddr_2", "192.0.2.10"),
			want: []string{`invalid traddr_2 "192.0.2.10": portal 2 (192.0.2.10:4420) is portal 1 again; give each path once`},
		},
		{
			name: "the same portal twice, spelt differently",
			m:    with(minimal(), "traddr", "2001:db8::1", "traddr_2", "2001:DB8:0::1", "trsvcid_2", "4420"),
			want: []string{`invalid traddr_2 "2001:DB8:0::1": portal 2 ([2001:DB8:0::1]:4420) is portal 1 again; give each path once`},
		},
		{
			name: "one address and port from two interfaces is two paths",
			m:    with(minimal(), "host_iface", "eth0", "traddr_2", "192.0.2.10", "host_iface_2", "eth1", "traddr_3", "192.0.2.10", "host_iface_3", "eth1"),
			want: []string{`invalid traddr_3 "192.0.2.10": portal 3 (192.0.2.10:4420 from eth1) is portal 2 again; give each path once`},
		},
		{
			name: "every field of a further portal is checked",
			m:    with(minimal(), "traddr_2", "not an address", "trsvcid_2", "0", "host_traddr_2", "host.example", "host_iface_2", "a/b"),
			want: []string{
				`invalid traddr_2 "not an address": must be an IPv4 or IPv6 address or a host name`,
				`invalid trsvcid_2 "0": must be a port number from 1 to 65535, in decimal without leading zeros`,
				`invalid host_traddr_2 "host.example": must be an IPv4 or IPv6 address`,
				`invalid host_iface_2 "a/b": must be a network interface name of 1 to 15 bytes without '/', ':' or white space`,
			},
		},
		{
			name: "iopolicy",
			m:    with(minimal(), "iopolicy", "service-time"),
			want: []string{`invalid iopolicy "service-time": ` + ioPolicyAllowed},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseVolumeContext(tt.m)
			var got []string
			for _, e := range AsFieldErrors(err) {
				got = append(got, e.Error())
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("messages\n got: %q\nwant: %q", got, tt.want)
			}
		})
	}
}

// TestNoPortalFieldCanInject tries every separator and control character
// in every field of every portal: the parse refuses each, so no path's
// option string can carry an option the user did not mean.
func TestNoPortalFieldCanInject(t *testing.T) {
	evil := []string{",ctrl_loss_tmo=0", "\nctrl_loss_tmo=0", "\x00", "\r", ",hostnqn=x", "\x7f", "\u0085", "\xff"}
	base := map[string]string{
		KeyTrAddr: "192.0.2.20", KeyTrSvcID: "4420", KeyHostTrAddr: "192.0.2.1", KeyHostIface: "eth0",
	}
	for n := 1; n <= 3; n++ {
		for _, field := range portalKeys {
			for _, s := range evil {
				m := twoPortals()
				m["traddr_3"] = "203.0.113.10"
				key := PortalKey(field, n)
				m[key] = base[field] + s
				v, err := ParseVolumeContext(m)
				if err == nil {
					t.Errorf("%s = %q accepted: %+v", key, m[key], v.Portals())
					continue
				}
				if errs := AsFieldErrors(err); len(errs) == 0 || errs[0].Key != key {
					t.Errorf("%s = %q: error names %v, want the key", key, m[key], err)
				}
			}
		}
	}
}

func TestPortalsRoundTrip(t *testing.T) {
	m := with(twoPortals(), "traddr_3", "2001:db8::3", "trsvcid_3", "4421", "host_traddr_3", "2001:db8::1", "iopolicy", "round-robin")
	v, err := ParseVolumeContext(m)
	if err != nil {
		t.Fatal(err)
	}
	got := v.ToVolumeContext()
	want := map[string]string{
		"transport": "tcp", "traddr": "192.0.2.10", "trsvcid": "4420", "nqn": testNQN, "nsid": "1", "host_iface": "eth0",
		"ctrl_loss_tmo": "-1", "reconnect_delay": "5",
		"traddr_2": "198.51.100.10", "trsvcid_2": "4420", "host_iface_2": "eth1",
		"traddr_3": "2001:db8::3", "trsvcid_3": "4421", "host_traddr_3": "2001:db8::1",
		"iopolicy": "round-robin",
	}
	if !maps.Equal(got, want) {
		t.Fatalf("ToVolumeContext()\n got %v\nwant %v", got, want)
	}
	again, err := ParseVolumeContext(got)
	if err != nil || !reflect.DeepEqual(again, v) {
		t.Fatalf("round trip: %v\n%+v\n%+v", err, again, v)
	}
	if v.ExternalID() != testNQN+"/nsid:1" {
		t.Errorf("ExternalID() = %q: the portals must not change the volume's identity", v.ExternalID())
	}
}

func TestValidateRefusesTooManyPortals(t *testing.T) {
	v, err := ParseVolumeContext(minimal())
	if err != nil {
		t.Fatal(err)
	}
	for n := 2; n <= MaxPortals+1; n++ {
		v.MorePortals = append(v.MorePortals, Portal{TrAddr: "192.0.2.10", TrSvcID: strconvItoa(5000 + n)})
	}
	err = v.Validate(NQNFreeForm)
	if errs := AsFieldErrors(err); len(errs) != 1 || !strings.Contains(errs[0].Reason, "at most 8 portals") {
		t.Fatalf("Validate() = %v", err)
	}
}

func TestIOPolicy(t *testing.T) {
	for _, p := range IOPolicies() {
		v, err := ParseVolumeContext(with(minimal(), "ioPolicy", string(p)))
		if err != nil || v.IOPolicy != p {
			t.Errorf("iopolicy %q: %v, %q", p, err, v.IOPolicy)
		}
	}
	v, err := ParseVolumeContext(minimal())
	if err != nil || v.IOPolicy != "" {
		t.Errorf("no iopolicy: %v, %q; want the kernel's left alone", err, v.IOPolicy)
	}
}

func TestPortalString(t *testing.T) {
	tests := []struct {
		p    Portal
		want string
	}{
		{Portal{TrAddr: "192.0.2.10", TrSvcID: "4420"}, "192.0.2.10:4420"},
		{Portal{TrAddr: "2001:db8::1", TrSvcID: "4421", HostIface: "eth1"}, "[2001:db8::1]:4421 from eth1"},
		{Portal{TrAddr: "target.example", TrSvcID: "4420", HostTrAddr: "192.0.2.1"}, "target.example:4420 from 192.0.2.1"},
		{Portal{TrAddr: "192.0.2.10", TrSvcID: "4420", HostTrAddr: "192.0.2.1", HostIface: "eth0"}, "192.0.2.10:4420 from 192.0.2.1%eth0"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

// with returns a copy of m with the key/value pairs set.
func with(m map[string]string, kv ...string) map[string]string {
	out := maps.Clone(m)
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func strconvItoa(n int) string { return strconv.Itoa(n) }
