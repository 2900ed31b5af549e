package kerneltest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Writers connect, delete, take targets down and add namespaces while
// readers walk the tree as the connector does. A reader sees a controller
// or a disk whole, or not at all: never an attribute that is empty or half
// written. At the end the tree matches the model.
func TestConcurrentUse(t *testing.T) {
	h := newHost(t)
	nqns := []string{nqnA, nqnB}
	const writers, readers, rounds = 4, 2, 25
	var wg sync.WaitGroup
	var mu sync.Mutex
	var problems []string
	report := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) < 10 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	stop := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				nqn := nqns[(w+i)%2]
				switch i % 5 {
				case 0, 1, 2:
					// Refused while the target is down, EINVAL when another
					// writer deleted the controller while it connected.
					_, err := write(h, opts(nqn, "duplicate_connect"))
					if err != nil && !errnoIs(err, syscall.ECONNREFUSED) && !errnoIs(err, syscall.EINVAL) {
						report("connect: %v", err)
					}
				case 3:
					for _, c := range h.Controllers() {
						err := h.WriteAttr(filepath.Join(h.SysfsRoot(), "class/nvme", c.Name, "delete_controller"), "1")
						if err != nil && !errors.Is(err, fs.ErrNotExist) {
							report("delete %s: %v", c.Name, err)
						}
						break
					}
				case 4:
					h.SetDown(nqn, i%10 == 4)
				}
			}
		}()
	}
	var rwg sync.WaitGroup
	for range readers {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				readTree(h, report)
			}
		}()
	}
	wg.Wait()
	close(stop)
	rwg.Wait()
	for _, p := range problems {
		t.Error(p)
	}
	h.SetDown(nqnA, false)
	h.SetDown(nqnB, false)
	checkTree(t, h)
	if h.Connects() == 0 || h.Disconnects() == 0 {
		t.Errorf("%d connects, %d disconnects: the test did not exercise both", h.Connects(), h.Disconnects())
	}
}

// readTree reads every controller and disk the way the connector does.
func readTree(h *Host, report func(string, ...any)) {
	sys := h.SysfsRoot()
	read := func(path string) (string, bool) {
		b, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", false
		case err != nil:
			report("read %s: %v", path, err)
			return "", false
		case len(b) == 0 || b[len(b)-1] != '\n':
			report("read %s: %q is not a whole value", path, b)
		}
		return strings.TrimSuffix(string(b), "\n"), true
	}
	ctrls, _ := os.ReadDir(filepath.Join(sys, "class/nvme"))
	for _, c := range ctrls {
		dir := filepath.Join(sys, "class/nvme", c.Name())
		state, ok := read(filepath.Join(dir, "state"))
		if !ok {
			continue // gone since listed
		}
		if state == "" {
			report("%s: empty state", c.Name())
		}
		for _, a := range []string{"address", "subsysnqn", "hostnqn", "ctrl_loss_tmo"} {
			if v, ok := read(filepath.Join(dir, a)); ok && v == "" {
				report("%s/%s: empty", c.Name(), a)
			}
		}
	}
	disks, _ := os.ReadDir(filepath.Join(sys, "block"))
	for _, d := range disks {
		for _, a := range []string{"nsid", "dev", "size"} {
			read(filepath.Join(sys, "block", d.Name(), a))
		}
	}
}
