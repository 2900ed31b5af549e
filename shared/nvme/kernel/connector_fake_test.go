package kernel

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
)

// fakeFabrics stands in for /dev/nvme-fabrics: each write parses the
// option string like the kernel does and adds the controller to the
// fixture, or fails with the next queued error.
type fakeFabrics struct {
	fx *sysfsFixture

	mu       sync.Mutex
	writes   []string // option strings received
	failures []error  // returned by the next writes, in order
	// beforeWrite runs inside the write, before the controller is made;
	// tests use it to act "at the same time" as the kernel.
	beforeWrite func()
	next        int // next controller instance
	subsys      map[string]int
	// onCreate adds namespaces to a new controller, as the kernel's scan
	// would; nil adds none.
	onCreate func(instance, subsys int)
	// writeStarted and release, when set, make the write block until
	// release is closed; closed is closed when the device is.
	writeStarted chan struct{}
	release      chan struct{}
	closed       chan struct{}
}

func newFakeFabrics(fx *sysfsFixture) *fakeFabrics {
	return &fakeFabrics{fx: fx, subsys: map[string]int{}}
}

func (k *fakeFabrics) open(string) (io.ReadWriteCloser, error) {
	return &fakeDevice{k: k}, nil
}

func (k *fakeFabrics) writeCount() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.writes)
}

type fakeDevice struct {
	k       *fakeFabrics
	written bool
	reply   string
}

func (d *fakeDevice) Write(p []byte) (int, error) {
	k := d.k
	if k.writeStarted != nil {
		close(k.writeStarted)
		<-k.release
	}
	if d.written {
		return 0, &os.PathError{Op: "write", Path: "/dev/nvme-fabrics", Err: syscall.EINVAL}
	}
	d.written = true
	k.mu.Lock()
	defer k.mu.Unlock()
	k.writes = append(k.writes, string(p))
	if k.beforeWrite != nil {
		k.beforeWrite()
	}
	if len(k.failures) > 0 {
		err := k.failures[0]
		k.failures = k.failures[1:]
		return 0, &os.PathError{Op: "write", Path: "/dev/nvme-fabrics", Err: err}
	}
	opts := map[string]string{}
	for o := range strings.SplitSeq(string(p), ",") {
		key, v, _ := strings.Cut(o, "=")
		if _, dup := opts[key]; dup {
			return 0, &os.PathError{Op: "write", Path: "/dev/nvme-fabrics", Err: syscall.EINVAL}
		}
		opts[key] = v
	}
	sub, ok := k.subsys[opts["nqn"]]
	if !ok {
		sub = len(k.subsys)
		k.subsys[opts["nqn"]] = sub
		k.fx.addSubsystem(sub, opts["nqn"])
	}
	n := k.next
	k.next++
	tmo := opts["ctrl_loss_tmo"]
	if tmo == "-1" {
		tmo = "off"
	}
	k.fx.addController(fixtureCtrl{
		Instance: n, Subsys: sub, NQN: opts["nqn"],
		Address:        fmt.Sprintf("traddr=%s,trsvcid=%s,src_addr=127.0.0.1", opts["traddr"], opts["trsvcid"]),
		HostNQN:        opts["hostnqn"],
		HostID:         opts["hostid"],
		CtrlLossTmo:    tmo,
		ReconnectDelay: opts["reconnect_delay"],
	})
	if k.onCreate != nil {
		k.onCreate(n, sub)
	}
	d.reply = fmt.Sprintf("instance=%d,cntlid=%d\n", n, n+1)
	return len(p), nil
}

func (d *fakeDevice) Read(p []byte) (int, error) {
	if d.reply == "" {
		return 0, errors.New("fake: read before a successful write")
	}
	return copy(p, d.reply), nil
}

func (d *fakeDevice) Close() error {
	if d.k.closed != nil {
		close(d.k.closed)
	}
	return nil
}
