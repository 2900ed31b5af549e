package sysmount

import (
	"testing"

	"golang.org/x/sys/unix"
)

// mount(8) (libmount's Linux flag map) turns these options into MS_*
// flags; passed on as file-system data instead, ext4 and xfs refuse the
// mount with EINVAL ("unrecognized mount option"), so a volume whose
// mount_flags name one stages with mount(8) and fails with mount(2).
func TestMountFlagsNeverBecomeFileSystemData(t *testing.T) {
	tests := []struct {
		opt        string
		set, clear uintptr
	}{
		{opt: "nostrictatime", clear: unix.MS_STRICTATIME},
		{opt: "iversion", set: unix.MS_I_VERSION},
		{opt: "noiversion", clear: unix.MS_I_VERSION},
		{opt: "mand", set: unix.MS_MANDLOCK},
		{opt: "nomand", clear: unix.MS_MANDLOCK},
	}
	for _, tt := range tests {
		t.Run(tt.opt, func(t *testing.T) {
			got, err := ParseOptions([]string{tt.opt})
			if err != nil {
				t.Fatal(err)
			}
			if got.Data != "" || got.Set != tt.set || got.Clear != tt.clear {
				t.Fatalf("ParseOptions(%q) = %+v; want set %#x clear %#x and no file-system data", tt.opt, got, tt.set, tt.clear)
			}
		})
	}
}
