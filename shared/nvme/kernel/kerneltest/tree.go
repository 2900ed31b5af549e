package kerneltest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// tree writes the simulated sysfs and /dev. A reader never sees a half-made
// object: files, links and directories are made in a staging directory on
// the same file system and renamed into place, and removed by renaming
// them away first. (Real sysfs has short windows where a device directory
// exists without its attributes; tests hammering the tree with -race would
// turn those into flakes that say nothing about the code under test.)
//
// Methods are called with Host.mu held. An error here is a broken test
// machine, not a kernel answer: it fails the test.
type tree struct {
	h     *Host
	stage string // staging directory, beside sys and dev
	grave string // where removed objects go, beside sys and dev
	seq   int
	// values holds the last value written to each attribute file, so that
	// syncing an object rewrites only what changed.
	values map[string]string
	// broken are attributes BreakAttr made unreadable, by real path, with
	// their modes; their values are kept in values and written back by
	// the repair.
	broken map[string]os.FileMode
}

func (t *tree) tmp() string {
	t.seq++
	return filepath.Join(t.stage, strconv.Itoa(t.seq))
}

func (t *tree) check(err error) {
	if err != nil {
		t.h.tb.Errorf("kerneltest: %v", err)
	}
}

// mkdir makes dir and its parents.
func (t *tree) mkdir(dir string) {
	t.check(os.MkdirAll(dir, 0o750))
}

// attr writes an attribute as the kernel shows it: value and a newline.
// Attributes that did not change are not rewritten; broken ones keep
// their breakage and get the value when repaired.
func (t *tree) attr(path, value string, mode os.FileMode) {
	if old, ok := t.values[path]; ok && old == value {
		return
	}
	t.values[path] = value
	if _, broken := t.broken[path]; broken {
		return
	}
	content := value + "\n"
	if mode&0o444 == 0 {
		content = "" // write-only attributes read as nothing here
	}
	t.replaceFile(path, content, mode)
}

func (t *tree) replaceFile(path, content string, mode os.FileMode) {
	tmp := t.tmp()
	if err := os.WriteFile(tmp, []byte(content), mode); err != nil {
		t.check(err)
		return
	}
	t.check(os.Rename(tmp, path))
}

// link makes path a relative symbolic link to target, as sysfs links are.
func (t *tree) link(target, path string) {
	rel, err := filepath.Rel(filepath.Dir(path), target)
	if err != nil {
		t.check(err)
		return
	}
	tmp := t.tmp()
	if err := os.Symlink(rel, tmp); err != nil {
		t.check(err)
		return
	}
	t.check(os.Rename(tmp, path))
}

// file is an attribute to install: a name (which may hold one directory,
// as "queue/logical_block_size"), its value and its mode.
type file struct {
	name, value string
	mode        os.FileMode
}

// Modes of sysfs attributes. Root reads and writes whatever the mode says;
// they are here for a person looking at the tree.
const (
	modeRO = 0o400
	modeRW = 0o600
	modeWO = 0o200
)

// install makes directory dir appear at once with its attribute files:
// they are made in a staging directory, which is then renamed to dir.
func (t *tree) install(dir string, files []file) {
	tmp := t.tmp()
	t.mkdir(tmp)
	for _, f := range files {
		p := filepath.Join(tmp, f.name)
		t.mkdir(filepath.Dir(p))
		content := f.value + "\n"
		if f.mode&0o444 == 0 {
			content = ""
		}
		t.check(os.WriteFile(p, []byte(content), f.mode))
	}
	t.check(os.Rename(tmp, dir))
	for _, f := range files {
		t.values[filepath.Join(dir, f.name)] = f.value
	}
}

// remove makes path (a file, link or directory) disappear at once, and
// forgets the attribute values under it.
func (t *tree) remove(path string) {
	t.seq++
	tmp := filepath.Join(t.grave, strconv.Itoa(t.seq))
	if err := os.Rename(path, tmp); err != nil {
		if !os.IsNotExist(err) {
			t.check(err)
		}
		return
	}
	// What was removed stays, out of sight, in the grave: its inode
	// numbers are then never given to a new object. sysfs (kernfs) does not
	// reuse them either, and the connector tells a controller from a new one
	// under the same name by its directory's inode.
	prefix := path + string(filepath.Separator)
	for p := range t.values {
		if p == path || len(p) > len(prefix) && p[:len(prefix)] == prefix {
			delete(t.values, p)
			delete(t.broken, p)
		}
	}
}

// breakAttr replaces the attribute at path with a link to /proc/self/mem:
// open succeeds and read fails with EIO, whoever runs the test (root reads
// any file, so permissions cannot do this). Where /proc is missing the
// attribute becomes a directory, whose read fails with EISDIR.
func (t *tree) breakAttr(path string) error {
	if _, ok := t.values[path]; !ok {
		return fmt.Errorf("%s is not an attribute of this host", path)
	}
	if _, ok := t.broken[path]; ok {
		return nil
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("break %s: %w", path, err)
	}
	t.broken[path] = fi.Mode().Perm()
	tmp := t.tmp()
	if procMemReadsEIO() {
		if err := os.Symlink("/proc/self/mem", tmp); err != nil {
			return fmt.Errorf("break %s: %w", path, err)
		}
	} else if err := os.Mkdir(tmp, 0o750); err != nil {
		return fmt.Errorf("break %s: %w", path, err)
	}
	// A directory cannot replace a file by rename: remove the file first.
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("break %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("break %s: %w", path, err)
	}
	return nil
}

// repairAttr writes a broken attribute's current value back.
func (t *tree) repairAttr(path string) {
	mode, broken := t.broken[path]
	if !broken {
		return
	}
	delete(t.broken, path)
	v, ok := t.values[path]
	if !ok {
		return // its object is gone
	}
	if fi, err := os.Lstat(path); err == nil && fi.IsDir() {
		t.check(os.Remove(path))
	}
	content := v + "\n"
	if mode&0o444 == 0 {
		content = ""
	}
	t.replaceFile(path, content, mode)
}

// procMemReadsEIO reports whether reading /proc/self/mem at offset 0 fails
// with EIO here (address 0 is never mapped).
func procMemReadsEIO() bool {
	f, err := os.Open("/proc/self/mem")
	if err != nil {
		return false
	}
	defer func() { _ = f.Close() }()
	var b [1]byte
	_, err = f.ReadAt(b[:], 0)
	return isErrno(err, eio)
}
