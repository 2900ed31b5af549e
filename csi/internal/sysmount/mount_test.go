package sysmount

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// inMountNamespace runs fn on an OS thread of its own in a new mount
// namespace whose mounts never propagate to the host's. The thread is
// never unlocked: it ends with its goroutine, and the namespace with it.
// Without CAP_SYS_ADMIN (an unprivileged test run) there is no namespace
// to make, and the test is skipped saying so; CI runs as root.
func inMountNamespace(t *testing.T, fn func()) {
	t.Helper()
	done := make(chan string, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			done <- "a mount namespace of its own needs CAP_SYS_ADMIN: " + err.Error()
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			t.Errorf("make the test's mounts private: %v", err)
			done <- ""
			return
		}
		fn()
		done <- ""
	}()
	if skip := <-done; skip != "" {
		t.Skip(skip)
	}
}

// mountFlags are the statfs flags of the mount at path.
func mountFlags(t *testing.T, path string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		t.Errorf("statfs %s: %v", path, err)
	}
	return st.Flags
}

// superOptions are the file system's options of the mount at path, read
// from this thread's mountinfo.
func superOptions(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		t.Errorf("read mountinfo: %v", err)
		return ""
	}
	for line := range strings.Lines(string(b)) {
		fields := strings.Fields(line)
		if len(fields) > 4 && fields[4] == path {
			_, after, _ := strings.Cut(line, " - ")
			if f := strings.Fields(after); len(f) >= 3 {
				return f[2]
			}
		}
	}
	t.Errorf("%s is not in mountinfo", path)
	return ""
}

func TestMountBindUnmountForReal(t *testing.T) {
	root := t.TempDir()
	dir := func(name string) string {
		p := filepath.Join(root, name)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fsDir, roBind, plainBind, flagBind := dir("fs"), dir("ro"), dir("plain"), dir("flags")
	link := filepath.Join(root, "link")
	if err := os.Symlink(roBind, link); err != nil {
		t.Fatal(err)
	}
	inMountNamespace(t, func() {
		if err := Mount("tmpfs", fsDir, "tmpfs", []string{"bind"}); err == nil {
			t.Errorf("a refused option mounted")
		}
		if err := Mount("tmpfs", fsDir, "tmpfs", []string{"nosuid,nodev", "size=1m", "_netdev", "defaults"}); err != nil {
			t.Errorf("Mount: %v", err)
			return
		}
		if f := mountFlags(t, fsDir); f&(unix.ST_NOSUID|unix.ST_NODEV) != unix.ST_NOSUID|unix.ST_NODEV || f&unix.ST_RDONLY != 0 {
			t.Errorf("tmpfs flags %#x: want nosuid,nodev, read-write", f)
		}
		if opts := superOptions(t, fsDir); !strings.Contains(opts, "size=1024k") {
			t.Errorf("tmpfs options %q: want size=1024k", opts)
		}

		if err := Bind(fsDir, roBind, []string{"ro", "discard"}); err != nil {
			t.Errorf("Bind ro: %v", err)
		}
		if f := mountFlags(t, roBind); f&unix.ST_RDONLY == 0 || f&unix.ST_NOSUID == 0 || f&unix.ST_NODEV == 0 {
			t.Errorf("ro bind flags %#x: want ro, and nosuid,nodev kept from its source", f)
		}
		if f := mountFlags(t, fsDir); f&unix.ST_RDONLY != 0 {
			t.Errorf("the source turned read-only (%#x) with its bind", f)
		}
		if err := Bind(fsDir, plainBind, nil); err != nil {
			t.Errorf("Bind: %v", err)
		}
		if f := mountFlags(t, plainBind); f&unix.ST_NOSUID == 0 || f&unix.ST_RDONLY != 0 {
			t.Errorf("plain bind flags %#x: want the source's", f)
		}
		if err := Bind(fsDir, flagBind, []string{"noexec", "noatime"}); err != nil {
			t.Errorf("Bind noexec,noatime: %v", err)
		}
		if f := mountFlags(t, flagBind); f&(unix.ST_NOEXEC|unix.ST_NOATIME|unix.ST_NOSUID) != unix.ST_NOEXEC|unix.ST_NOATIME|unix.ST_NOSUID || f&unix.ST_RELATIME != 0 {
			t.Errorf("flag bind flags %#x: want noexec,noatime,nosuid and not relatime", f)
		}

		// The link's target is mounted, the link itself is not.
		if err := Unmount(link); !errors.Is(err, ErrNotMounted) {
			t.Errorf("Unmount(link) = %v; want ErrNotMounted", err)
		}
		for _, p := range []string{flagBind, plainBind, roBind, fsDir} {
			if err := Unmount(p); err != nil {
				t.Errorf("Unmount(%s): %v", p, err)
			}
		}
		if err := Unmount(roBind); !errors.Is(err, ErrNotMounted) {
			t.Errorf("second Unmount = %v; want ErrNotMounted", err)
		}
	})
}
