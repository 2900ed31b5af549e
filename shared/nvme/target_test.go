package nvme

import (
	"strings"
	"testing"
)

func TestValidateNQN(t *testing.T) {
	long := "nqn.2014-08.org.example:" + strings.Repeat("x", MaxNQNLength-24)
	tests := []struct {
		name    string
		nqn     string
		mode    NQNMode
		wantErr string
	}{
		{name: "domain form strict", nqn: "nqn.2016-06.io.spdk:cnode1", mode: NQNStrict},
		{name: "uuid form strict", nqn: "nqn.2014-08.org.nvmexpress:uuid:0aaaaaaa-0000-4000-8000-00000000000a", mode: NQNStrict},
		{name: "discovery strict", nqn: DiscoveryNQN, mode: NQNStrict},
		{name: "free form", nqn: "testnqn", mode: NQNFreeForm},
		{name: "free form with space inside", nqn: "my target", mode: NQNFreeForm},
		{name: "longest", nqn: long, mode: NQNStrict},
		{name: "empty", nqn: "", wantErr: `invalid nqn: is required`},
		{name: "too long", nqn: long + "y", wantErr: `invalid nqn "` + long + `y": is 223 bytes long; at most 222 are allowed`},
		{name: "injection", nqn: "nqn.2014-08.org.example:a,ctrl_loss_tmo=0", wantErr: `invalid nqn "nqn.2014-08.org.example:a,ctrl_loss_tmo=0": must not contain ',' (the kernel splits its options on it)`},
		{name: "newline", nqn: "a\nhostnqn=x", wantErr: `invalid nqn "a\nhostnqn=x": must not contain a newline (the kernel splits its options on it)`},
		{name: "nul", nqn: "a\x00b", wantErr: `invalid nqn "a\x00b": must not contain NUL`},
		{name: "tab", nqn: "a\tb", wantErr: `invalid nqn "a\tb": must not contain control characters`},
		{name: "not utf8", nqn: "a\xffb", wantErr: `invalid nqn "a\xffb": must be valid UTF-8`},
		{name: "leading space", nqn: " nqn", wantErr: `invalid nqn " nqn": must not start or end with white space`},
		{name: "strict free form", nqn: "testnqn", mode: NQNStrict, wantErr: `invalid nqn "testnqn": must have the form ` + strictNQNForms},
		{name: "strict bad month", nqn: "nqn.2016-13.io.spdk:cnode1", mode: NQNStrict, wantErr: `invalid nqn "nqn.2016-13.io.spdk:cnode1": must have the form ` + strictNQNForms},
		{name: "strict no name", nqn: "nqn.2016-06.io.spdk:", mode: NQNStrict, wantErr: `invalid nqn "nqn.2016-06.io.spdk:": must have the form ` + strictNQNForms},
		{name: "strict short uuid", nqn: "nqn.2014-08.org.nvmexpress:uuid:1234", mode: NQNStrict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkOneError(t, ValidateNQN(KeyNQN, tt.nqn, tt.mode), tt.wantErr, nil)
		})
	}
}

func TestTargetValidate(t *testing.T) {
	good := Target{Transport: TransportTCP, TrAddr: "192.0.2.10", TrSvcID: "4420", NQN: "nqn.2016-06.io.spdk:cnode1"}
	with := func(f func(*Target)) Target {
		tg := good
		f(&tg)
		return tg
	}
	tests := []struct {
		name    string
		target  Target
		wantErr string
	}{
		{name: "ipv4", target: good},
		{name: "ipv6", target: with(func(t *Target) { t.TrAddr = "2001:db8::10" })},
		{name: "ipv6 zone", target: with(func(t *Target) { t.TrAddr = "fe80::1%eth0" })},
		{name: "host name", target: with(func(t *Target) { t.TrAddr = "array-1.storage.example" })},
		{name: "source address and iface", target: with(func(t *Target) { t.HostTrAddr, t.HostIface = "192.0.2.1", "eth1" })},
		{name: "rdma", target: with(func(t *Target) { t.Transport = "rdma" }), wantErr: `invalid transport "rdma": must be one of: tcp`},
		{name: "empty traddr", target: with(func(t *Target) { t.TrAddr = "" }), wantErr: `invalid traddr: is required; must be an IPv4 or IPv6 address or a host name`},
		{name: "traddr injection", target: with(func(t *Target) { t.TrAddr = "10.0.0.1,hostnqn=evil" }), wantErr: `invalid traddr "10.0.0.1,hostnqn=evil": must not contain ',' (the kernel splits its options on it)`},
		{name: "traddr bad name", target: with(func(t *Target) { t.TrAddr = "under_score.example" }), wantErr: `invalid traddr "under_score.example": must be an IPv4 or IPv6 address or a host name`},
		{name: "traddr bad ipv4", target: with(func(t *Target) { t.TrAddr = "10.0.0.256" }), wantErr: `invalid traddr "10.0.0.256": must be an IPv4 or IPv6 address or a host name`},
		{name: "traddr bad zone", target: with(func(t *Target) { t.TrAddr = "fe80::1%a/b" }), wantErr: `invalid traddr "fe80::1%a/b": has an invalid IPv6 zone: must be a network interface name of 1 to 15 bytes without '/', ':' or white space`},
		{name: "port zero", target: with(func(t *Target) { t.TrSvcID = "0" }), wantErr: `invalid trsvcid "0": must be a port number from 1 to 65535, in decimal without leading zeros`},
		{name: "port leading zero", target: with(func(t *Target) { t.TrSvcID = "04420" }), wantErr: `invalid trsvcid "04420": must be a port number from 1 to 65535, in decimal without leading zeros`},
		{name: "port hex", target: with(func(t *Target) { t.TrSvcID = "0x1144" }), wantErr: `invalid trsvcid "0x1144": must be a port number from 1 to 65535, in decimal without leading zeros`},
		{name: "port too big", target: with(func(t *Target) { t.TrSvcID = "65536" }), wantErr: `invalid trsvcid "65536": must be a port number from 1 to 65535, in decimal without leading zeros`},
		{name: "host_traddr name", target: with(func(t *Target) { t.HostTrAddr = "myhost" }), wantErr: `invalid host_traddr "myhost": must be an IPv4 or IPv6 address`},
		{name: "host_iface too long", target: with(func(t *Target) { t.HostIface = "abcdefghijklmnop" }), wantErr: `invalid host_iface "abcdefghijklmnop": must be a network interface name of 1 to 15 bytes without '/', ':' or white space`},
		{name: "host_iface injection", target: with(func(t *Target) { t.HostIface = "e\nx" }), wantErr: `invalid host_iface "e\nx": must not contain a newline (the kernel splits its options on it)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkOneError(t, tt.target.Validate(NQNFreeForm), tt.wantErr, nil)
		})
	}
}
