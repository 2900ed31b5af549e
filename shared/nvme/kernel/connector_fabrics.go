package kernel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// controllerCreator asks the kernel for a new controller; the connector
// does everything around it (matching, adoption, retries).
type controllerCreator interface {
	// create returns the new controller's name (nvmeN). An error matching
	// syscall.EALREADY means the kernel already has a matching controller.
	create(ctx context.Context, c nvme.ValidConnection) (string, error)
}

// openFabrics opens /dev/nvme-fabrics through open, saying what a missing
// device means.
func openFabrics(open func(string) (io.ReadWriteCloser, error), path string) (io.ReadWriteCloser, error) {
	f, err := open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %w (load the modules with `modprobe nvme-tcp`)", ErrFabricsUnavailable, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return f, nil
}

// fabricsBackend creates controllers by writing the option string to
// /dev/nvme-fabrics: open read-write, one write, read the reply from the
// same descriptor.
type fabricsBackend struct {
	path string
	open func(path string) (io.ReadWriteCloser, error)
	log  hclog.Logger
}

// fabricsResult is the outcome of one write to /dev/nvme-fabrics.
type fabricsResult struct {
	reply fabricsReply
	took  time.Duration // the kernel's share: open, write and read
	err   error
}

// create runs the write on its own goroutine. The kernel does the whole
// controller setup inside write(2), under a global mutex, and the write
// cannot be interrupted; when ctx ends first, create returns an
// *InFlightError at once, and the goroutine keeps the outcome for its Wait
// and closes the descriptor when the kernel lets go.
func (f *fabricsBackend) create(ctx context.Context, vc nvme.ValidConnection) (string, error) {
	c := vc.Connection()
	// Once started, the write runs to its end: do not start one for a
	// caller that has already left.
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("connect to subsystem %q: %w", c.Target.NQN, err)
	}
	opts := vc.FabricsOptions()
	var r fabricsResult
	done := make(chan struct{}) // closed once r holds the kernel's answer
	go func() { r = f.connectOnce(opts); close(done) }()
	outcome := func() (string, error) {
		if r.err != nil {
			return "", newConnectError(c, r.err)
		}
		name := "nvme" + strconv.Itoa(r.reply.Instance)
		f.log.Debug("kernel created controller", "controller", name, "nqn", c.Target.NQN,
			"cntlid", r.reply.CntlID, "kernel_write_ms", float64(r.took.Microseconds())/1000)
		return name, nil
	}
	select {
	case <-done:
		return outcome()
	case <-ctx.Done():
		return "", &InFlightError{
			target: fmt.Sprintf("subsystem %q at %s:%s", c.Target.NQN, c.Target.TrAddr, c.Target.TrSvcID),
			cause:  ctx.Err(),
			wait: func(wctx context.Context) (string, error) {
				select {
				case <-done:
					return outcome()
				case <-wctx.Done():
					return "", fmt.Errorf("wait for the kernel's connect to subsystem %q: %w", c.Target.NQN, wctx.Err())
				}
			},
		}
	}
}

// connectOnce is one open-write-read-close of the device. The option string
// holds DH-HMAC-CHAP secrets when there are any: it never reaches an error.
func (f *fabricsBackend) connectOnce(opts string) fabricsResult {
	start := time.Now()
	dev, err := openFabrics(f.open, f.path)
	if err != nil {
		return fabricsResult{err: err}
	}
	defer func() { _ = dev.Close() }()
	if _, err := io.WriteString(dev, opts); err != nil {
		return fabricsResult{err: fmt.Errorf("write options to %s: %w", f.path, err), took: time.Since(start)}
	}
	buf := make([]byte, 256)
	n, err := dev.Read(buf)
	took := time.Since(start)
	if err != nil && !errors.Is(err, io.EOF) {
		return fabricsResult{err: fmt.Errorf("read reply from %s: %w", f.path, err), took: took}
	}
	reply, err := parseFabricsReply(string(buf[:n]))
	if err != nil {
		return fabricsResult{err: err, took: took}
	}
	return fabricsResult{reply: reply, took: took}
}
