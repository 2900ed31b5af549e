// Package cpio writes the "newc" cpio archives the Linux kernel unpacks as an
// initramfs. The lab appends a small uncompressed archive with the freshly
// built test binaries to the cached base image on every run; the kernel
// unpacks concatenated archives in order, later files overriding earlier ones.
package cpio

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

const (
	newcMagic  = "070701"
	headerSize = 110
	trailer    = "TRAILER!!!"
	// Mode bits of the cpio format (the same as st_mode).
	modeDir  = 0o040000
	modeFile = 0o100000
)

// ErrBadName means an entry name the kernel would misplace.
var ErrBadName = errors.New("cpio entry name must be relative, clean and non-empty")

// Writer writes one newc archive. Close writes the trailer; it does not
// close the underlying writer.
type Writer struct {
	w      io.Writer
	offset int64
	ino    uint32
}

// NewWriter starts an archive on w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w}
}

// Dir adds a directory with permissions perm (e.g. 0o755).
func (w *Writer) Dir(name string, perm uint32) error {
	if err := checkName(name); err != nil {
		return err
	}
	return w.header(name, modeDir|perm&0o7777, 2, 0)
}

// File adds a regular file of size bytes read from data.
func (w *Writer) File(name string, perm uint32, size int64, data io.Reader) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := w.header(name, modeFile|perm&0o7777, 1, size); err != nil {
		return err
	}
	n, err := io.CopyN(w.w, data, size)
	w.offset += n
	if err != nil {
		return fmt.Errorf("cpio %s: copy %d bytes: %w", name, size, err)
	}
	return w.pad()
}

// Close writes the trailer entry that ends the archive.
func (w *Writer) Close() error {
	w.ino = 0
	return w.header(trailer, 0, 1, 0)
}

func (w *Writer) header(name string, mode, nlink uint32, size int64) error {
	if size < 0 || size > 0xffffffff {
		return fmt.Errorf("cpio %s: size %d does not fit the newc format", name, size)
	}
	if name != trailer {
		w.ino++
	}
	// Fields in order: ino mode uid gid nlink mtime filesize devmajor
	// devminor rdevmajor rdevminor namesize check. Owner root, mtime 0:
	// the archive is reproducible.
	hdr := fmt.Sprintf("%s%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		newcMagic, w.ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name)+1, 0)
	if err := w.write(hdr + name + "\x00"); err != nil {
		return fmt.Errorf("cpio %s: header: %w", name, err)
	}
	return w.pad()
}

// pad aligns the stream to 4 bytes, after the name and after the data.
func (w *Writer) pad() error {
	if rem := w.offset % 4; rem != 0 {
		if err := w.write(strings.Repeat("\x00", int(4-rem))); err != nil {
			return fmt.Errorf("cpio padding: %w", err)
		}
	}
	return nil
}

func (w *Writer) write(s string) error {
	n, err := io.WriteString(w.w, s)
	w.offset += int64(n)
	return err //nolint:wrapcheck // callers add the entry name
}

func checkName(name string) error {
	if name == "" || name == trailer || strings.HasPrefix(name, "/") || strings.Contains(name, "\x00") {
		return fmt.Errorf("%q: %w", name, ErrBadName)
	}
	for _, part := range strings.Split(name, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("%q: %w", name, ErrBadName)
		}
	}
	return nil
}
