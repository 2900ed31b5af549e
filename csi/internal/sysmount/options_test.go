package sysmount

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseOptions(t *testing.T) {
	tests := []struct {
		name      string
		opts      []string
		set       uintptr
		clear     uintptr
		data      string
		errSubstr string
	}{
		{name: "nothing", opts: nil},
		{name: "defaults alone", opts: []string{"defaults"}},
		{name: "per-mount flags", opts: []string{"ro", "nosuid", "nodev", "noexec"}, set: unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{name: "a list in one item, spaces trimmed", opts: []string{"nosuid, noatime"}, set: unix.MS_NOSUID | unix.MS_NOATIME, clear: unix.MS_RELATIME | unix.MS_STRICTATIME},
		{name: "the last of opposites wins", opts: []string{"ro", "rw"}, clear: unix.MS_RDONLY},
		{name: "rw then ro", opts: []string{"rw", "ro"}, set: unix.MS_RDONLY},
		{name: "atime options exclude each other", opts: []string{"noatime", "relatime"}, set: unix.MS_RELATIME, clear: unix.MS_NOATIME | unix.MS_STRICTATIME},
		{name: "file-system data", opts: []string{"ro", "noload", "errors=remount-ro", "data=ordered"}, set: unix.MS_RDONLY, data: "noload,errors=remount-ro,data=ordered"},
		{name: "userspace options are dropped", opts: []string{"_netdev", "nofail", "auto", "noauto", "nouser", "x-systemd.automount", "X-foo", "comment=x", "discard"}, data: "discard"},
		{name: "a quoted context keeps its comma", opts: []string{`context="system_u:object_r:svirt_sandbox_file_t:s0:c1,c2",nosuid`}, set: unix.MS_NOSUID, data: `context="system_u:object_r:svirt_sandbox_file_t:s0:c1,c2"`},
		{name: "empty items are skipped", opts: []string{"", ",,", "nodev,"}, set: unix.MS_NODEV},
		{name: "bind is refused", opts: []string{"bind"}, errSubstr: `"bind" is not allowed`},
		{name: "remount inside a list is refused", opts: []string{"nosuid,remount"}, errSubstr: `"remount" is not allowed`},
		{name: "propagation is refused", opts: []string{"make-shared"}, errSubstr: "not allowed"},
		{name: "user implies flags mount(8) would add", opts: []string{"user"}, errSubstr: "not allowed"},
		{name: "a loop device is refused", opts: []string{"loop=/dev/loop0"}, errSubstr: "not allowed"},
		{name: "mount(8)'s mkdir is refused", opts: []string{"X-mount.mkdir"}, errSubstr: "not allowed"},
		{name: "a newline is refused", opts: []string{"nosuid\nnodev"}, errSubstr: "control character"},
		{name: "NUL is refused", opts: []string{"a\x00b"}, errSubstr: "control character"},
		{name: "data longer than a page", opts: []string{"x=" + strings.Repeat("a", maxData)}, errSubstr: "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOptions(tt.opts)
			if tt.errSubstr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errSubstr) {
					t.Fatalf("ParseOptions(%q) = %+v, %v; want an error saying %q", tt.opts, got, err, tt.errSubstr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseOptions(%q): %v", tt.opts, err)
			}
			want := Options{Set: tt.set, Clear: tt.clear, Data: tt.data}
			if got != want {
				t.Fatalf("ParseOptions(%q) = %+v, want %+v", tt.opts, got, want)
			}
		})
	}
}

func TestErrorsDoNotEchoAWholeOption(t *testing.T) {
	_, err := ParseOptions([]string{"bind=" + strings.Repeat("a", 1<<20)})
	if err == nil || len(err.Error()) > 1024 {
		t.Fatalf("error of %d bytes: want a short one", len(err.Error()))
	}
}

func TestInherited(t *testing.T) {
	got := inherited(int64(unix.ST_RDONLY | unix.ST_NOSUID | unix.ST_RELATIME | stNoSymFollow | unix.ST_MANDLOCK))
	want := uintptr(unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_RELATIME | unix.MS_NOSYMFOLLOW)
	if got != want {
		t.Fatalf("inherited = %#x, want %#x", got, want)
	}
}
