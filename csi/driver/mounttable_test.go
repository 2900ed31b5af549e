package driver

import (
	"path/filepath"
	"slices"
	"testing"
)

// The samples in testdata follow the kernel's mountinfo lines as the lab
// VM shows them: a staged and a published file system share their
// source; a block volume's device node bind-mounted onto a file shows as
// devtmpfs with the node's name as root.
func TestProcMountTable(t *testing.T) {
	entries, err := ProcMountTable{Path: filepath.Join("testdata", "mountinfo-staged"), DevDir: "/dev"}.Mounts()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want []string
	}{
		{"/tmp/csi/vol-fs/staging", []string{"/dev/nvme0n1"}},
		{"/tmp/csi/vol-fs/pods/target/", []string{"/dev/nvme0n1"}},
		{"/tmp/csi/vol-block/staging/block", []string{"/dev/nvme1n2"}},
		{"/tmp/csi/vol-block/pods/target", []string{"/dev/nvme1n2"}},
		{"/tmp/csi/with space/staging", []string{"/dev/nvme2n1"}},
		// devtmpfs itself, and a bind of a deeper path: not a device node.
		{"/dev", []string{"devtmpfs"}},
		{"/tmp/csi/nested", []string{"devtmpfs"}},
		{"/tmp/csi/stacked", []string{"/dev/nvme0n1", "/dev/nvme0n2"}},
		{"/tmp/csi/not-mounted", nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := devices(mountsAt(entries, tt.path)); !slices.Equal(got, tt.want) {
				t.Errorf("mountsAt(%s) = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
	if len(entries) != 14 {
		t.Errorf("%d entries, want one per line (14)", len(entries))
	}
}

func TestProcMountTableDevDir(t *testing.T) {
	entries, err := ProcMountTable{Path: filepath.Join("testdata", "mountinfo-staged"), DevDir: "/host/dev"}.Mounts()
	if err != nil {
		t.Fatal(err)
	}
	if got := devices(mountsAt(entries, "/tmp/csi/vol-block/staging/block")); !slices.Equal(got, []string{"/host/dev/nvme1n2"}) {
		t.Errorf("block staging = %q, want the node under DevDir", got)
	}
}

func TestProcMountTableErrors(t *testing.T) {
	tests := []struct {
		name, file string
		wantErr    bool
	}{
		{"empty", "mountinfo-empty", false},
		{"truncated line", "mountinfo-truncated", true},
		{"missing file", "no-such-file", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries, err := ProcMountTable{Path: filepath.Join("testdata", tt.file), DevDir: "/dev"}.Mounts()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Mounts() = %v, %v; want error %v", entries, err, tt.wantErr)
			}
		})
	}
}

func TestIsNVMeDevice(t *testing.T) {
	tests := []struct {
		dev  string
		want bool
	}{
		{"/dev/nvme0n1", true},
		{"/host/dev/nvme12n3", true},
		{"/dev/sda", false},
		{"devtmpfs", false},
		{"tmpfs", false},
	}
	for _, tt := range tests {
		if got := isNVMeDevice(tt.dev); got != tt.want {
			t.Errorf("isNVMeDevice(%q) = %v, want %v", tt.dev, got, tt.want)
		}
	}
}
