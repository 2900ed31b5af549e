package kernel

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// loadSample reads a captured attribute directory from testdata/sysfs
// into attribute → text, trailing newline removed as readAttr does.
func loadSample(t *testing.T, name string) map[string]string {
	t.Helper()
	dir := filepath.Join("testdata", "sysfs", name)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = strings.TrimRight(string(b), "\n")
	}
	return out
}

func TestParseController(t *testing.T) {
	tests := []struct {
		sample  string
		name    string
		want    Controller
		wantErr string
	}{
		{sample: "ctrl-tcp-live", name: "nvme0", want: Controller{
			Name: "nvme0", Instance: 0, State: StateLive, Subsystem: "nqn.2026-01.io.nvmeof.lab:one", Transport: "tcp",
			TrAddr: "127.0.0.1", TrSvcID: "4420", HostNQN: "nqn.2026-01.io.nvmeof.lab:host-1",
			HostID: "0aaaaaaa-0000-4000-8000-00000000000a", CntlID: 1, CtrlLossTmo: -1, ReconnectDelay: 5, FastIOFailTmo: -1, KeepAliveTmo: 5,
		}},
		{sample: "ctrl-tcp-connecting", name: "nvme12", want: Controller{
			Name: "nvme12", Instance: 12, State: StateConnecting, Subsystem: "nqn.2026-01.io.nvmeof.lab:two", Transport: "tcp",
			TrAddr: "fd00::10", TrSvcID: "4420", HostTrAddr: "fd00::2", HostIface: "eth1",
			HostNQN: "nqn.2014-08.org.nvmexpress:uuid:5b4c7a8e-0f3e-4c55-9b7e-8f1d3b1f0c11",
			HostID:  "5b4c7a8e-0f3e-4c55-9b7e-8f1d3b1f0c11", CntlID: 7, CtrlLossTmo: 6, ReconnectDelay: 2, FastIOFailTmo: 4, KeepAliveTmo: 10,
		}},
		{sample: "ctrl-tcp-deleting", name: "nvme2", want: Controller{
			Name: "nvme2", Instance: 2, State: StateDeletingIO, Subsystem: "nqn.2026-01.io.nvmeof.lab:one", Transport: "tcp",
			TrAddr: "127.0.0.1", TrSvcID: "4420", HostNQN: "nqn.2026-01.io.nvmeof.lab:host-1",
			HostID: "0aaaaaaa-0000-4000-8000-00000000000a", CntlID: 2, CtrlLossTmo: 5, ReconnectDelay: 5, FastIOFailTmo: -1, KeepAliveTmo: 5,
		}},
		{sample: "ctrl-pcie", name: "nvme1", want: Controller{
			Name: "nvme1", Instance: 1, State: StateLive, Subsystem: "nqn.2019-08.org.qemu:deadbeef", Transport: "pcie",
			HostNQN: "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-000000000000", FastIOFailTmo: -1,
		}},
		{sample: "ctrl-bad-address", name: "nvme3", wantErr: "has no traddr"},
		{sample: "ctrl-bad-tmo", name: "nvme3", wantErr: `ctrl_loss_tmo "forever"`},
		{sample: "ctrl-tcp-live", name: "nvme-subsys0", wantErr: "not an NVMe controller name"},
	}
	for _, tt := range tests {
		t.Run(tt.sample+"/"+tt.name, func(t *testing.T) {
			got, err := parseController(tt.name, loadSample(t, tt.sample))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			if got.Usable() != (tt.want.State != StateDeletingIO) {
				t.Errorf("Usable() = %v for state %q", got.Usable(), got.State)
			}
		})
	}
}

func TestParseCtrlAddress(t *testing.T) {
	tests := []struct {
		in      string
		want    ctrlAddress
		wantErr bool
	}{
		{in: "traddr=127.0.0.1,trsvcid=4420,src_addr=127.0.0.1\n", want: ctrlAddress{TrAddr: "127.0.0.1", TrSvcID: "4420", SrcAddr: "127.0.0.1"}},
		{in: "traddr=10.0.0.5,trsvcid=4420,host_traddr=10.0.0.9", want: ctrlAddress{TrAddr: "10.0.0.5", TrSvcID: "4420", HostTrAddr: "10.0.0.9"}},
		{in: "traddr=fe80::1%eth0,trsvcid=4420,host_iface=eth0,future=x", want: ctrlAddress{TrAddr: "fe80::1%eth0", TrSvcID: "4420", HostIface: "eth0"}},
		{in: "", wantErr: true},
		{in: "traddr", wantErr: true},
		{in: "trsvcid=4420", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseCtrlAddress(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseTimeoutAndRounding(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
	}{{"off", -1}, {"off\n", -1}, {"600", 600}, {"0", 0}} {
		t.Run("parse "+strings.TrimSpace(tt.in), func(t *testing.T) {
			got, err := parseTimeout(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("parseTimeout(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
	if _, err := parseTimeout("never"); err == nil {
		t.Error("parseTimeout(never) gave no error")
	}
	// The kernel stores ceil(tmo/delay) attempts and shows attempts*delay.
	for _, tt := range []struct{ tmo, delay, want int }{{-1, 5, -1}, {0, 5, 0}, {5, 2, 6}, {10, 5, 10}, {11, 5, 15}, {600, 10, 600}} {
		t.Run("round", func(t *testing.T) {
			if got := expectedCtrlLossTmo(tt.tmo, tt.delay); got != tt.want {
				t.Errorf("expectedCtrlLossTmo(%d, %d) = %d, want %d", tt.tmo, tt.delay, got, tt.want)
			}
		})
	}
}

func TestParseFabricsReply(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("testdata", "sysfs", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	tests := []struct {
		name    string
		in      string
		want    fabricsReply
		wantErr bool
	}{
		{name: "after connect", in: read("fabrics-reply-ok"), want: fabricsReply{Instance: 3, CntlID: 1}},
		{name: "read before write lists the options", in: read("fabrics-reply-before-write"), wantErr: true},
		{name: "empty", in: "", wantErr: true},
		{name: "negative instance", in: "instance=-1,cntlid=-1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFabricsReply(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestClassifyDisk(t *testing.T) {
	tests := []struct {
		name string
		want diskKind
	}{
		{"nvme0n1", diskPlain}, {"nvme12n345", diskPlain}, {"nvme0c0n1", diskPath}, {"nvme3c17n2", diskPath},
		{"nvme0", diskNone}, {"nvme0n1p1", diskNone}, {"ng0n1", diskNone}, {"nvme-subsys0", diskNone},
		{"nvmen1", diskNone}, {"nvme0c1", diskNone}, {"nvme0cn1", diskNone}, {"nvme0n", diskNone}, {"sda", diskNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classifyDisk(tt.name); got != tt.want {
				t.Errorf("classifyDisk(%q) = %d, want %d", tt.name, got, tt.want)
			}
		})
	}
}

func TestParseNSIdentity(t *testing.T) {
	tests := []struct {
		sample  string
		want    nsIdentity
		wantErr bool
	}{
		{sample: "ns-uuid", want: nsIdentity{NSID: 1, UUID: "11111111-1111-4111-8111-111111111111", NGUID: "11111111111111111111111111111111"}},
		// Without a UUID the kernel's uuid attribute shows the NGUID.
		{sample: "ns-nguid-only", want: nsIdentity{NSID: 3, NGUID: "33333333333333333333333333333333"}},
		{sample: "ns-eui-only", want: nsIdentity{NSID: 4}},
		{sample: "ns-bad-nsid", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.sample, func(t *testing.T) {
			a := loadSample(t, tt.sample)
			got, err := parseNSIdentity(a["nsid"], a["uuid"], a["nguid"])
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSubsystemHint(t *testing.T) {
	tests := []struct {
		entries []string
		want    string
	}{
		{[]string{"state", "address", "nvme4c7n1", "nvme4c7n2"}, "nvme-subsys4"},
		{[]string{"state", "nvme7n1"}, ""},
		{nil, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.entries, ","), func(t *testing.T) {
			if got := subsystemHint(tt.entries); got != tt.want {
				t.Errorf("subsystemHint = %q, want %q", got, tt.want)
			}
		})
	}
}
