// Package rootfs copies programs out of an unpacked Debian tree (the .debs
// of one release, dpkg -x'd into one directory) into the lab's image, with
// the shared libraries and the loader they need, found in that same tree.
// The host's ldd cannot do this: it resolves against the host's libraries,
// and the lab's userspace must come from the release of the kernel it runs
// with (bookworm's for 6.1, trixie's for 6.12).
package rootfs

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// ErrNotFound: a program or a library it needs is not in the tree.
var ErrNotFound = errors.New("not in the unpacked tree")

// programDirs are searched, in order, for a program given by name.
var programDirs = []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// libraryDirs are where the Debian loader looks by default (multiarch
// first); no ld.so.cache is involved.
var libraryDirs = []string{
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib",
}

// maxLinks bounds symbolic link chains, as the kernel's ELOOP does.
const maxLinks = 40

// Tree is an unpacked root directory. Absolute symbolic links inside it
// point into it, not into the host.
type Tree struct {
	Root string
}

// Resolve follows the symbolic links of p (absolute, inside the tree)
// component by component and returns the real path inside the tree.
func (t Tree) Resolve(p string) (string, error) {
	if !path.IsAbs(p) {
		return "", fmt.Errorf("%q is not an absolute path", p)
	}
	resolved := "/"
	pending := strings.Split(strings.TrimPrefix(path.Clean(p), "/"), "/")
	links := 0
	for len(pending) > 0 {
		name := pending[0]
		pending = pending[1:]
		if name == "" || name == "." {
			continue
		}
		if name == ".." {
			resolved = path.Dir(resolved)
			continue
		}
		next := path.Join(resolved, name)
		info, err := os.Lstat(t.host(next))
		if err != nil {
			return "", fmt.Errorf("%s: %w", p, err)
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		links++
		if links > maxLinks {
			return "", fmt.Errorf("%s: too many levels of symbolic links", p)
		}
		target, err := os.Readlink(t.host(next))
		if err != nil {
			return "", fmt.Errorf("%s: %w", p, err)
		}
		if path.IsAbs(target) {
			resolved = "/"
		}
		pending = append(strings.Split(target, "/"), pending...)
	}
	return resolved, nil
}

// host is the host path of a path inside the tree.
func (t Tree) host(p string) string { return filepath.Join(t.Root, filepath.FromSlash(p)) }

// FindProgram returns where a program named name is in the tree (the
// path as packaged, links not followed), searching programDirs.
func (t Tree) FindProgram(name string) (string, error) {
	if strings.Contains(name, "/") {
		if _, err := os.Lstat(t.host(name)); err != nil {
			return "", fmt.Errorf("program %s: %w", name, ErrNotFound)
		}
		return path.Clean(name), nil
	}
	for _, dir := range programDirs {
		p := path.Join(dir, name)
		if _, err := os.Lstat(t.host(p)); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("program %s (looked in %s): %w", name, strings.Join(programDirs, ", "), ErrNotFound)
}

// findLibrary returns the path of a DT_NEEDED library in the tree.
func (t Tree) findLibrary(soname string) (string, error) {
	for _, dir := range libraryDirs {
		p := path.Join(dir, soname)
		if _, err := os.Stat(t.host(p)); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("library %s: %w", soname, ErrNotFound)
}

// Copier copies files of a Tree into Dest at the same paths, each once.
type Copier struct {
	Tree Tree
	Dest string
	done map[string]bool
}

// CopyProgram copies the program at p (a path in the tree, as FindProgram
// returns it) to the same path under Dest, dereferenced, then every shared
// library it needs and its loader, recursively. A file that is not ELF (a
// shell script such as fsck.xfs) is copied alone.
func (c *Copier) CopyProgram(p string) error {
	if c.done == nil {
		c.done = map[string]bool{}
	}
	return c.copyWithDeps(p, p)
}

// copyWithDeps copies the file at src (in the tree) to dst (in Dest) and
// what it needs.
func (c *Copier) copyWithDeps(src, dst string) error {
	if c.done[dst] {
		return nil
	}
	real, err := c.Tree.Resolve(src)
	if err != nil {
		return err
	}
	if err := c.copyFile(real, dst); err != nil {
		return err
	}
	c.done[dst] = true
	interp, needed, err := elfDeps(c.Tree.host(real))
	if errors.Is(err, errNotELF) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	if interp != "" {
		// The loader must be at the very path the program names.
		if err := c.copyWithDeps(interp, interp); err != nil {
			return fmt.Errorf("%s: loader: %w", src, err)
		}
	}
	for _, soname := range needed {
		lib, err := c.Tree.findLibrary(soname)
		if err != nil {
			return fmt.Errorf("%s needs %w", src, err)
		}
		if err := c.copyWithDeps(lib, lib); err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
	}
	return nil
}

func (c *Copier) copyFile(real, dst string) error {
	in, err := os.Open(c.Tree.host(real))
	if err != nil {
		return fmt.Errorf("copy %s: %w", real, err)
	}
	defer func() { _ = in.Close() }() // read-only: closing cannot lose data
	info, err := in.Stat()
	if err != nil {
		return fmt.Errorf("copy %s: %w", real, err)
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("copy %s: not a regular file", real)
	}
	out := filepath.Join(c.Dest, filepath.FromSlash(dst))
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil { //nolint:gosec // an image's /usr/lib is world-readable
		return fmt.Errorf("copy %s: %w", real, err)
	}
	f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm())
	if err != nil {
		return fmt.Errorf("copy %s: %w", real, err)
	}
	if _, err := io.Copy(f, in); err != nil {
		return fmt.Errorf("copy %s: %w", real, errors.Join(err, f.Close()))
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("copy %s: %w", real, err)
	}
	return nil
}

var errNotELF = errors.New("not an ELF file")

// elfDeps returns the loader (PT_INTERP) and the DT_NEEDED libraries of an
// ELF file; errNotELF for anything else.
func elfDeps(file string) (string, []string, error) {
	f, err := elf.Open(file)
	if err != nil {
		var fe *elf.FormatError
		if errors.As(err, &fe) {
			return "", nil, errNotELF
		}
		return "", nil, fmt.Errorf("read ELF: %w", err)
	}
	defer func() { _ = f.Close() }()
	var interp string
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b, err := io.ReadAll(p.Open())
		if err != nil {
			return "", nil, fmt.Errorf("read PT_INTERP: %w", err)
		}
		interp = strings.TrimRight(string(b), "\x00")
	}
	needed, err := f.ImportedLibraries()
	if err != nil {
		return "", nil, fmt.Errorf("read DT_NEEDED: %w", err)
	}
	return interp, needed, nil
}
