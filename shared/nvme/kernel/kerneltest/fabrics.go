package kerneltest

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strconv"
	"syscall"
)

// maxWrite is PAGE_SIZE: nvmf_dev_write refuses longer writes with ENOMEM.
const maxWrite = 4096

// OpenFabrics opens the simulated /dev/nvme-fabrics read-write. It is the
// ControlFiles method the connector creates controllers through.
func (h *Host) OpenFabrics(path string) (io.ReadWriteCloser, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, &fs.PathError{Op: "open", Path: path, Err: errClosed}
	}
	if !h.cfg.fabrics || filepath.Clean(path) != h.FabricsPath() {
		return nil, pathError("open", path, syscall.ENOENT)
	}
	h.openFiles++
	return &fabricsFile{h: h, path: path}, nil
}

// fabricsFile is one open descriptor of /dev/nvme-fabrics: a seq_file
// whose content is the option list until a write creates a controller,
// and that controller's "instance=N,cntlid=M" after. Host.mu guards it.
type fabricsFile struct {
	h       *Host
	path    string
	created bool
	reply   string
	readOff int
	closed  bool
}

// Write is one connect: the whole option string in one write(2).
func (f *fabricsFile) Write(p []byte) (int, error) {
	h := f.h
	h.mu.Lock()
	switch {
	case f.closed:
		h.mu.Unlock()
		return 0, &fs.PathError{Op: "write", Path: f.path, Err: fs.ErrClosed}
	case h.closed:
		h.mu.Unlock()
		return 0, &fs.PathError{Op: "write", Path: f.path, Err: errClosed}
	}
	opts := string(p)
	h.written = append(h.written, opts)
	if len(p) > maxWrite {
		h.mu.Unlock()
		return 0, pathError("write", f.path, syscall.ENOMEM)
	}
	h.writes.Add(1)
	before := h.faults.takeBefore()
	h.mu.Unlock()
	defer h.writes.Done()

	if before != nil {
		before()
	}
	res, err := h.connect(opts, fromCodeUnderTest, &f.created)
	if err != nil {
		return 0, &fs.PathError{Op: "write", Path: f.path, Err: err}
	}
	h.mu.Lock()
	f.reply = fmt.Sprintf("instance=%d,cntlid=%d\n", res.instance, res.cntlid)
	h.mu.Unlock()
	return len(p), nil
}

// Read returns the seq_file's content from the descriptor's offset: the
// option list before a controller was created through it, the reply after.
func (f *fabricsFile) Read(p []byte) (int, error) {
	h := f.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if f.closed {
		return 0, &fs.PathError{Op: "read", Path: f.path, Err: fs.ErrClosed}
	}
	content := f.reply
	if !f.created {
		content = OptionList()
	}
	if f.readOff >= len(content) {
		return 0, io.EOF
	}
	n := copy(p, content[f.readOff:])
	f.readOff += n
	return n, nil
}

// Close releases the descriptor.
func (f *fabricsFile) Close() error {
	h := f.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if f.closed {
		return &fs.PathError{Op: "close", Path: f.path, Err: fs.ErrClosed}
	}
	f.closed = true
	h.openFiles--
	close(h.fdClosed)
	h.fdClosed = make(chan struct{})
	return nil
}

// ConnectError is the error AdminConnect returns: the errno the write to
// /dev/nvme-fabrics failed with.
type ConnectError struct {
	Options string
	Errno   syscall.Errno
}

func (e *ConnectError) Error() string {
	return "kerneltest: connect " + strconv.Quote(e.Options) + ": " + e.Errno.Error()
}

func (e *ConnectError) Unwrap() error { return e.Errno }

// AdminConnect creates a controller the way an administrator's `nvme
// connect` outside the code under test does: same kernel, same rules (an
// error unwraps to the errno), but neither counted in Connects nor listed
// in Writes, and untouched by FailNextConnect and the next-connect hooks.
// It returns the controller's name. Held connects and latency apply.
func (h *Host) AdminConnect(options string) (string, error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return "", errClosed
	}
	h.writes.Add(1)
	h.mu.Unlock()
	defer h.writes.Done()
	res, err := h.connect(options, fromAdmin, nil)
	if err != nil {
		var errno syscall.Errno
		if !errors.As(err, &errno) {
			errno = syscall.EIO
		}
		return "", &ConnectError{Options: options, Errno: errno}
	}
	return res.name, nil
}
