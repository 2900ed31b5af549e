package kerneltest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// WriteAttr writes value to the sysfs attribute at path in one write, and
// the simulated kernel acts on it as its store function would. It is the
// ControlFiles method the connector tunes and deletes controllers with.
// Errors are *fs.PathError with the errno: ENOENT for an attribute or
// controller that does not exist (any more), EACCES for a read-only
// attribute, EINVAL for a value the store refuses.
func (h *Host) WriteAttr(path, value string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return &fs.PathError{Op: "open", Path: path, Err: errClosed}
	}
	c, s, name, err := h.attrTarget(path)
	switch {
	case err != nil:
		return err
	case s != nil:
		return h.storeIOPolicy(s, path, value)
	}
	if err := h.storeCtrl(c, path, name, value, true); err != nil {
		return err
	}
	if rule, ok := h.faults.rewrites[name]; ok && !c.removed {
		h.logf("udev: rewrote %s of %s to %s", name, c.name(), rule)
		_ = h.storeCtrl(c, path, name, rule, false) // a rule's failure is the rule's business
	}
	return nil
}

// attrTarget finds what a write to path acts on: a controller's
// attribute, or a subsystem's iopolicy. Anything else that exists is
// read-only.
func (h *Host) attrTarget(path string) (*controller, *subsystem, string, error) {
	clean := filepath.Clean(path)
	if !strings.HasPrefix(clean, h.sysRoot+string(filepath.Separator)) {
		return nil, nil, "", fmt.Errorf("kerneltest: write to %s, outside the simulated sysfs %s", path, h.sysRoot)
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(clean))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, "", pathError("open", path, syscall.ENOENT)
	}
	if err != nil {
		return nil, nil, "", fmt.Errorf("kerneltest: resolve %s: %w", path, err)
	}
	name := filepath.Base(clean)
	if _, err := os.Lstat(filepath.Join(dir, name)); err != nil {
		return nil, nil, "", pathError("open", path, syscall.ENOENT)
	}
	for _, c := range h.k.ctrls {
		if h.ctrlDir(c) == dir {
			return c, nil, name, nil
		}
	}
	for _, s := range h.k.subsys {
		if h.subsysDir(s) == dir && name == "iopolicy" {
			return nil, s, name, nil
		}
	}
	return nil, nil, "", pathError("open", path, syscall.EACCES)
}

// storeCtrl is the store function of a controller attribute. counted says
// the code under test wrote it (a delete counts as its disconnect).
func (h *Host) storeCtrl(c *controller, path, name, v string, counted bool) error {
	o := c.opts
	refuse := func(errno syscall.Errno) error { return pathError("write", path, errno) }
	switch name {
	case "delete_controller":
		// Any value deletes; a controller already being deleted, or dead,
		// stays as it is and the write still succeeds.
		switch c.state {
		case stateDeleting, stateDeletingIO, stateDead:
			return nil
		}
		if counted {
			h.disconnect++
		}
		h.deleteController(c, "deleted through sysfs")
		return nil
	case "reset_controller":
		if c.state != stateLive && c.state != stateNew {
			return refuse(syscall.EBUSY)
		}
		if c.target != nil {
			delete(c.target.cntlids, c.cntlid)
			c.cntlid = c.target.allocCntlid()
		}
		h.syncController(c)
		return nil
	case "rescan_controller":
		h.scan(c)
		return nil
	case "reconnect_delay":
		n, ok := kstrtoInt(v, 10, false)
		if !ok {
			return refuse(syscall.EINVAL)
		}
		// Stored as an int: 4294967295 reads "off". 0 is accepted too, and
		// makes the kernel reconnect without pause.
		o.reconnectDelay = int(int32(uint32(n))) //nolint:gosec // the kernel's own conversion
		if o.reconnectDelay == 0 {
			h.logf("nvme %s: reconnect_delay set to 0", c.name())
		}
	case "ctrl_loss_tmo":
		n, ok := kstrtoInt(v, 10, true)
		if !ok {
			return refuse(syscall.EINVAL)
		}
		if n >= 0 && o.reconnectDelay <= 0 {
			// DIV_ROUND_UP by reconnect_delay: a kernel oops.
			h.tb.Errorf("kerneltest: ctrl_loss_tmo written to %s while its reconnect_delay is %d: "+
				"the kernel divides by it and oopses", c.name(), o.reconnectDelay)
			return refuse(syscall.EIO)
		}
		o.maxReconnects = maxReconnects(int(n), o.reconnectDelay)
	case "fast_io_fail_tmo":
		n, ok := kstrtoInt(v, 10, true)
		if !ok {
			return refuse(syscall.EINVAL)
		}
		o.fastIOFailTmo = max(int(n), -1)
	default:
		return pathError("open", path, syscall.EACCES)
	}
	h.syncController(c)
	return nil
}

// storeIOPolicy is the subsystem's iopolicy store: numa or round-robin
// (queue-depth came with 6.11).
func (h *Host) storeIOPolicy(s *subsystem, path, v string) error {
	v = strings.TrimSuffix(v, "\n")
	if v != "numa" && v != "round-robin" {
		return pathError("write", path, syscall.EINVAL)
	}
	s.iopolicy = v
	h.tree.attr(filepath.Join(h.subsysDir(s), "iopolicy"), v, modeRW)
	return nil
}
