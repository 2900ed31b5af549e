package kerneltest

import (
	"os"
	"path/filepath"
	"strconv"
)

// partition is a partition of a visible disk, as a partition table read
// by the kernel makes one: nvmeKnIpP in sysfs below its disk, with a
// block device number and a /dev node of its own.
type partition struct {
	name  string
	minor int
	dir   string
	node  string
}

// AddPartition gives the visible disk called name (nvmeKnI) a partition,
// as if a partition table had been written and read, and returns its /dev
// path. Its number comes from the same pool as the disks'. It goes when
// the disk goes.
func (h *Host) AddPartition(name string) string {
	h.tb.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	d := h.visibleDisk(name)
	if d == nil {
		h.tb.Fatalf("kerneltest: AddPartition: no disk %s with a /dev node", name)
		return ""
	}
	n := len(d.parts) + 1
	p := &partition{name: d.name + "p" + strconv.Itoa(n)}
	p.minor = h.k.allocMinor(&disk{name: p.name})
	p.dir = filepath.Join(d.dir, p.name)
	p.node = filepath.Join(h.devRoot, p.name)
	h.tree.install(p.dir, []file{
		{"partition", strconv.Itoa(n), modeRO},
		{"dev", "259:" + strconv.Itoa(p.minor), modeRO},
		{"start", "2048", modeRO},
		{"size", strconv.FormatInt(d.head.ns.SizeBytes/512-2048, 10), modeRO},
	})
	h.tree.link(p.dir, filepath.Join(h.sysRoot, "block", p.name))
	h.tree.check(os.WriteFile(p.node, nil, 0o600))
	d.parts = append(d.parts, p)
	return p.node
}

// AddHolder makes name (a device-mapper or md device, say "dm-0") hold
// the visible disk named disk, as sysfs's holders/ directory shows.
func (h *Host) AddHolder(disk, name string) {
	h.tb.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	d := h.visibleDisk(disk)
	if d == nil {
		h.tb.Fatalf("kerneltest: AddHolder: no disk %s with a /dev node", disk)
		return
	}
	h.tree.mkdir(filepath.Join(d.dir, "holders", name))
}

// visibleDisk finds the disk with a /dev node named name.
func (h *Host) visibleDisk(name string) *disk {
	for _, d := range h.k.minors {
		if d.name == name && d.node != "" && !d.removed {
			return d
		}
	}
	return nil
}

// removePartitions takes d's partitions out of /dev and sysfs and frees
// their numbers.
func (h *Host) removePartitions(d *disk) {
	for _, p := range d.parts {
		h.tree.remove(p.node)
		h.tree.remove(filepath.Join(h.sysRoot, "block", p.name))
		delete(h.k.minors, p.minor)
	}
	d.parts = nil
}
