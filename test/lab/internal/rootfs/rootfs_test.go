package rootfs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hostELF is a small dynamically linked program of the host, whose needs
// (libc and the loader) a test tree provides.
const hostELF = "/usr/bin/true"

func write(t *testing.T, root, p string, data []byte, mode os.FileMode) {
	t.Helper()
	full := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, data, mode); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, root, p, target string) {
	t.Helper()
	full := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, full); err != nil {
		t.Fatal(err)
	}
}

// debianTree lays out a tree the way libc6's .deb unpacks: the loader in
// the multiarch dir, /lib64's name for it an absolute link, and a program
// reached through a relative link (mkfs.ext4 -> mke2fs style).
func debianTree(t *testing.T, withLibc bool) string {
	t.Helper()
	prog, err := os.ReadFile(hostELF)
	if err != nil {
		t.Skipf("host program %s: %v", hostELF, err)
	}
	interp, needed, err := elfDeps(hostELF)
	if err != nil || interp == "" || len(needed) == 0 {
		t.Skipf("%s is not a dynamically linked ELF program here (%v)", hostELF, err)
	}
	root := t.TempDir()
	write(t, root, "/usr/bin/real-true", prog, 0o755)
	symlink(t, root, "/usr/sbin/true-link", "../bin/real-true")
	loader, err := os.ReadFile(interp)
	if err != nil {
		t.Fatal(err)
	}
	write(t, root, "/lib/x86_64-linux-gnu/"+filepath.Base(interp), loader, 0o755)
	symlink(t, root, interp, "/lib/x86_64-linux-gnu/"+filepath.Base(interp))
	if withLibc {
		for _, lib := range needed {
			data, err := os.ReadFile(filepath.Join("/lib/x86_64-linux-gnu", lib))
			if err != nil {
				t.Skipf("host library %s: %v", lib, err)
			}
			write(t, root, "/usr/lib/x86_64-linux-gnu/"+lib, data, 0o644)
		}
	}
	write(t, root, "/usr/sbin/fsck.fake", []byte("#!/bin/sh\nexit 0\n"), 0o755)
	return root
}

func TestCopyProgramBringsLibrariesAndLoader(t *testing.T) {
	root := debianTree(t, true)
	dest := t.TempDir()
	c := Copier{Tree: Tree{Root: root}, Dest: dest}
	for _, name := range []string{"true-link", "fsck.fake", "/usr/bin/real-true"} {
		p, err := c.Tree.FindProgram(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.CopyProgram(p); err != nil {
			t.Fatalf("CopyProgram(%s) = %v", p, err)
		}
	}
	interp, needed, err := elfDeps(hostELF)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/usr/sbin/true-link", "/usr/bin/real-true", "/usr/sbin/fsck.fake", interp}
	for _, lib := range needed {
		want = append(want, "/usr/lib/x86_64-linux-gnu/"+lib)
	}
	for _, p := range want {
		info, err := os.Lstat(filepath.Join(dest, p))
		if err != nil {
			t.Errorf("%s not copied: %v", p, err)
			continue
		}
		if !info.Mode().IsRegular() {
			t.Errorf("%s is %v, want a regular file (links dereferenced)", p, info.Mode())
		}
	}
	if info, err := os.Stat(filepath.Join(dest, "/usr/sbin/true-link")); err == nil && info.Mode().Perm()&0o111 == 0 {
		t.Errorf("program copied without its exec bits: %v", info.Mode())
	}
}

func TestCopyProgramNamesAMissingLibrary(t *testing.T) {
	root := debianTree(t, false)
	c := Copier{Tree: Tree{Root: root}, Dest: t.TempDir()}
	err := c.CopyProgram("/usr/bin/real-true")
	_, needed, _ := elfDeps(hostELF)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), needed[0]) {
		t.Fatalf("CopyProgram without libc = %v, want ErrNotFound naming %s", err, needed[0])
	}
}

func TestResolve(t *testing.T) {
	root := t.TempDir()
	write(t, root, "/usr/lib/x/libz.so.1.3", []byte("z"), 0o644)
	symlink(t, root, "/usr/lib/x/libz.so.1", "libz.so.1.3")
	symlink(t, root, "/lib", "usr/lib")
	symlink(t, root, "/abs", "/usr/lib/x/libz.so.1")
	symlink(t, root, "/loop1", "/loop2")
	symlink(t, root, "/loop2", "/loop1")
	symlink(t, root, "/escape", "../../../../etc/passwd")
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"/usr/lib/x/libz.so.1", "/usr/lib/x/libz.so.1.3", false},
		{"/lib/x/libz.so.1", "/usr/lib/x/libz.so.1.3", false},
		{"/abs", "/usr/lib/x/libz.so.1.3", false},
		{"/loop1", "", true},
		// ".." never climbs out of the tree.
		{"/escape", "", true},
		{"relative", "", true},
	}
	tree := Tree{Root: root}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := tree.Resolve(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("Resolve(%s) = %q, %v; want %q (error %v)", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestFindProgramMissing(t *testing.T) {
	_, err := Tree{Root: t.TempDir()}.FindProgram("nvme")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "nvme") {
		t.Errorf("FindProgram = %v, want ErrNotFound naming nvme", err)
	}
}
