// Package sysmount makes and takes off mounts with the mount(2) and
// umount2(2) system calls, without starting mount(8) or umount(8): under
// emulation and on a loaded host, a process start costs far more than the
// mount itself. It takes mount(8)-style option lists and splits them the
// way mount(8) does: per-mount flags (ro, nosuid, noatime, ...) become
// MS_* flags, options meant for mount(8) itself are dropped, and the rest
// is the file system's data string.
package sysmount

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// maxData is the most a file system's option string may hold: the kernel
// copies one page of it.
const maxData = 4095

// Options is an option list split for mount(2).
type Options struct {
	// Set are the MS_* flags the options ask for; Clear the ones they turn
	// off (rw, suid, exec, ...), which matters for a bind's remount.
	Set, Clear uintptr
	// Data is what goes to the file system, comma-separated.
	Data string
}

// flagOptions are the options mount(8) turns into mount flags: name → (set,
// clear). The atime options are exclusive: each clears the others.
var flagOptions = map[string][2]uintptr{
	"ro":            {unix.MS_RDONLY, 0},
	"rw":            {0, unix.MS_RDONLY},
	"nosuid":        {unix.MS_NOSUID, 0},
	"suid":          {0, unix.MS_NOSUID},
	"nodev":         {unix.MS_NODEV, 0},
	"dev":           {0, unix.MS_NODEV},
	"noexec":        {unix.MS_NOEXEC, 0},
	"exec":          {0, unix.MS_NOEXEC},
	"sync":          {unix.MS_SYNCHRONOUS, 0},
	"async":         {0, unix.MS_SYNCHRONOUS},
	"dirsync":       {unix.MS_DIRSYNC, 0},
	"noatime":       {unix.MS_NOATIME, atimeFlags &^ unix.MS_NOATIME},
	"atime":         {0, unix.MS_NOATIME},
	"relatime":      {unix.MS_RELATIME, atimeFlags &^ unix.MS_RELATIME},
	"norelatime":    {0, unix.MS_RELATIME},
	"strictatime":   {unix.MS_STRICTATIME, atimeFlags &^ unix.MS_STRICTATIME},
	"nostrictatime": {0, unix.MS_STRICTATIME},
	"nodiratime":    {unix.MS_NODIRATIME, 0},
	"diratime":      {0, unix.MS_NODIRATIME},
	"lazytime":      {unix.MS_LAZYTIME, 0},
	"nolazytime":    {0, unix.MS_LAZYTIME},
	"silent":        {unix.MS_SILENT, 0},
	"loud":          {0, unix.MS_SILENT},
	"nosymfollow":   {unix.MS_NOSYMFOLLOW, 0},
	"iversion":      {unix.MS_I_VERSION, 0},
	"noiversion":    {0, unix.MS_I_VERSION},
	"mand":          {unix.MS_MANDLOCK, 0},
	"nomand":        {0, unix.MS_MANDLOCK},
	"defaults":      {0, 0}, // rw,suid,dev,exec,auto,nouser,async: the kernel's own defaults
}

const atimeFlags = unix.MS_NOATIME | unix.MS_RELATIME | unix.MS_STRICTATIME

// userspaceOptions are fstab options for mount(8) alone: it never passes
// them to the kernel, and neither does this package.
var userspaceOptions = map[string]bool{"auto": true, "noauto": true, "nofail": true, "_netdev": true, "nouser": true}

// refused are options whose meaning is an action of mount(8) this package
// does not take (a loop device, a helper, an implied nosuid,nodev,noexec)
// or a kind of mount the caller must ask for by its own call (bind,
// remount, move, propagation changes): passed on, they would mean
// something else than the caller meant.
var refused = []string{
	"bind", "rbind", "remount", "move", "rec", "private", "rprivate", "shared", "rshared", "slave", "rslave",
	"unbindable", "runbindable", "make-private", "make-rprivate", "make-shared", "make-rshared", "make-slave",
	"make-rslave", "make-unbindable", "make-runbindable", "user", "users", "owner", "group", "loop",
}

// refusedPrefixes are option names with a value that are refused likewise.
var refusedPrefixes = []string{"loop=", "offset=", "sizelimit=", "encryption=", "helper=", "uhelper=", "user=", "x-mount.", "X-mount."}

// ParseOptions splits opts, each of which may itself be a comma-separated
// list, as mount(8) does: commas inside double quotes (SELinux contexts)
// do not split. An option it must refuse, or one holding a control
// character, is an error naming it; an empty one is skipped.
func ParseOptions(opts []string) (Options, error) {
	var o Options
	var data []string
	for _, item := range opts {
		for _, opt := range splitOptions(item) {
			if opt == "" {
				continue
			}
			if err := checkOption(opt); err != nil {
				return Options{}, err
			}
			if f, ok := flagOptions[opt]; ok {
				o.Set = o.Set&^f[1] | f[0]
				o.Clear = o.Clear&^f[0] | f[1]
				continue
			}
			if userspaceOptions[opt] || strings.HasPrefix(opt, "comment=") || strings.HasPrefix(opt, "x-") || strings.HasPrefix(opt, "X-") {
				continue
			}
			data = append(data, opt)
		}
	}
	o.Data = strings.Join(data, ",")
	if len(o.Data) > maxData {
		return Options{}, fmt.Errorf("mount options: the file system's options are %d bytes, more than the %d the kernel takes", len(o.Data), maxData)
	}
	return o, nil
}

// checkOption refuses what must not reach mount(2).
func checkOption(opt string) error {
	for _, r := range opt {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("mount option %q holds a control character", truncate(opt))
		}
	}
	name, _, _ := strings.Cut(opt, "=")
	for _, r := range refused {
		if name == r {
			return fmt.Errorf("mount option %q is not allowed: it asks mount(8) for another kind of mount or for a step of its own (refused: %s)", truncate(opt), strings.Join(refused, ", "))
		}
	}
	for _, p := range refusedPrefixes {
		if strings.HasPrefix(opt, p) {
			return fmt.Errorf("mount option %q is not allowed: it asks mount(8) for a step of its own (a loop device, a helper)", truncate(opt))
		}
	}
	return nil
}

// splitOptions splits at commas outside double quotes, and trims spaces
// around each option.
func splitOptions(s string) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

// truncate caps what an error echoes of a user's option.
func truncate(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// ErrNotMounted says an unmount found nothing mounted at its path.
var ErrNotMounted = errors.New("not a mount point")
