package kerneltest

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"syscall"
)

const eio = syscall.EIO

// isErrno reports whether err carries errno.
func isErrno(err error, errno syscall.Errno) bool {
	var e syscall.Errno
	return errors.As(err, &e) && e == errno
}

// pathError is how the os package reports a failed system call on a file:
// callers unwrap it to the errno with errors.Is.
func pathError(op, path string, errno syscall.Errno) error {
	return &fs.PathError{Op: op, Path: path, Err: errno}
}

// errnoOf returns the errno err carries, EIO when it carries none.
func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return eio
}

// randomUUID is a version 4 UUID, as the kernel makes its default host ID.
func randomUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// strerror is glibc's text for the errnos a connect can end with: what
// nvme-cli prints. Go's own texts are lower case and sometimes differ.
func strerror(errno syscall.Errno) string {
	switch errno {
	case syscall.ECONNREFUSED:
		return "Connection refused"
	case syscall.EINVAL:
		return "Invalid argument"
	case syscall.EALREADY:
		return "Operation already in progress"
	case syscall.EIO:
		return "Input/output error"
	case syscall.ENODEV:
		return "No such device"
	case syscall.EADDRINUSE:
		return "Address already in use"
	case syscall.EADDRNOTAVAIL:
		return "Cannot assign requested address"
	case syscall.ENOMEM:
		return "Cannot allocate memory"
	case syscall.ETIMEDOUT:
		return "Connection timed out"
	case syscall.EHOSTUNREACH:
		return "No route to host"
	case syscall.ENETUNREACH:
		return "Network is unreachable"
	case syscall.ENOENT:
		return "No such file or directory"
	case syscall.EACCES:
		return "Permission denied"
	case syscall.EPERM:
		return "Operation not permitted"
	case syscall.EBUSY:
		return "Device or resource busy"
	case syscall.EINTR:
		return "Interrupted system call"
	case syscall.EAGAIN:
		return "Resource temporarily unavailable"
	}
	s := errno.Error()
	if s != "" && s[0] >= 'a' && s[0] <= 'z' {
		s = string(s[0]-'a'+'A') + s[1:]
	}
	return s
}
