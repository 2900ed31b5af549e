package kerneltest

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Where objects live in the simulated sysfs (Debian 6.1 layout).

func (h *Host) ctrlDir(c *controller) string {
	return filepath.Join(h.sysRoot, "devices/virtual/nvme-fabrics/ctl", c.name())
}

func (h *Host) subsysDir(s *subsystem) string {
	return filepath.Join(h.sysRoot, "devices/virtual/nvme-subsystem", s.name())
}

// ctrlDynamic are the controller attributes that change after creation,
// as the kernel renders them.
func (h *Host) ctrlDynamic(c *controller) []file {
	o := c.opts
	nqn := o.nqn
	if c.sub != nil {
		nqn = c.sub.nqn
	}
	tmo := "off"
	if o.maxReconnects >= 0 {
		tmo = strconv.Itoa(o.maxReconnects * o.reconnectDelay)
	}
	delay := strconv.Itoa(o.reconnectDelay)
	if o.reconnectDelay == -1 {
		delay = "off"
	}
	fastFail := "off"
	if o.fastIOFailTmo != -1 {
		fastFail = strconv.Itoa(o.fastIOFailTmo)
	}
	return []file{
		{"state", c.state, modeRO},
		{"subsysnqn", nqn, modeRO},
		{"address", address(c), modeRO},
		{"cntlid", strconv.Itoa(c.cntlid), modeRO},
		{"hostid", c.host.id, modeRO},
		{"ctrl_loss_tmo", tmo, modeRW},
		{"reconnect_delay", delay, modeRW},
		{"fast_io_fail_tmo", fastFail, modeRW},
	}
}

// address is the controller's address attribute: src_addr only while the
// admin queue is live.
func address(c *controller) string {
	o := c.opts
	a := "traddr=" + o.traddr + ",trsvcid=" + o.trsvcid
	if o.given["host_traddr"] {
		a += ",host_traddr=" + o.hostTrAddr
	}
	if o.given["host_iface"] {
		a += ",host_iface=" + o.hostIface
	}
	if c.state == stateLive && c.srcAddr != "" {
		a += ",src_addr=" + c.srcAddr
	}
	return a
}

// installController makes nvmeN appear under class/nvme, as nvme_init_ctrl
// does before the connect to the target starts.
func (h *Host) installController(c *controller) {
	o := c.opts
	cntrltype := "io"
	if o.discovery {
		cntrltype = "discovery"
	}
	files := append(h.ctrlDynamic(c),
		file{"transport", o.transport, modeRO},
		file{"hostnqn", c.host.nqn, modeRO},
		file{"kato", strconv.Itoa(o.kato), modeRO},
		file{"queue_count", strconv.Itoa(o.nrIOQueues + o.nrWriteQueues + o.nrPollQueues + 1), modeRO},
		file{"sqsize", strconv.Itoa(o.queueSize - 1), modeRO},
		file{"cntrltype", cntrltype, modeRO},
		file{"dctype", "none", modeRO},
		file{"delete_controller", "", modeWO},
		file{"reset_controller", "", modeWO},
		file{"rescan_controller", "", modeWO},
	)
	dir := h.ctrlDir(c)
	h.tree.install(dir, files)
	h.tree.link(dir, filepath.Join(h.sysRoot, "class/nvme", c.name()))
}

// syncController rewrites what changed of a controller's attributes.
func (h *Host) syncController(c *controller) {
	if c.removed {
		return
	}
	dir := h.ctrlDir(c)
	for _, f := range h.ctrlDynamic(c) {
		h.tree.attr(filepath.Join(dir, f.name), f.value, f.mode)
	}
}

// firmwareRev is what nvmet reports: the target kernel's release.
const firmwareRev = "6.1.0"

// removeControllerTree takes nvmeN out of sysfs: class link, subsystem
// link, device directory.
func (h *Host) removeControllerTree(c *controller) {
	h.tree.remove(filepath.Join(h.sysRoot, "class/nvme", c.name()))
	if c.sub != nil {
		h.tree.remove(filepath.Join(h.subsysDir(c.sub), c.name()))
	}
	h.tree.remove(h.ctrlDir(c))
}

// installSubsystem makes nvme-subsysK appear.
func (h *Host) installSubsystem(s *subsystem) {
	subsystype := "nvm"
	if s.discovery {
		subsystype = "discovery"
	}
	dir := h.subsysDir(s)
	h.tree.install(dir, []file{
		{"subsysnqn", s.nqn, modeRO},
		{"subsystype", subsystype, modeRO},
		{"iopolicy", s.iopolicy, modeRW},
		{"model", "Linux", modeRO},
		{"serial", s.serial, modeRO},
		{"firmware_rev", firmwareRev, modeRO},
	})
	h.tree.link(dir, filepath.Join(h.sysRoot, "class/nvme-subsystem", s.name()))
}

func (h *Host) removeSubsystemTree(s *subsystem) {
	h.tree.remove(filepath.Join(h.sysRoot, "class/nvme-subsystem", s.name()))
	h.tree.remove(h.subsysDir(s))
}

// diskAttrs renders a namespace disk's attributes as nvme_ns_id_attrs and
// the block layer show them.
func diskAttrs(d *disk, size int64) []file {
	ns := d.head.ns.Namespace
	files := []file{
		{"nsid", strconv.FormatUint(uint64(ns.NSID), 10), modeRO},
		{"size", strconv.FormatInt(size/512, 10), modeRO},
		{"dev", d.dev(), modeRO},
		{"hidden", "0", modeRO},
		{"wwid", wwid(d.head), modeRO},
	}
	if d.node == "" {
		files[3].value = "1"
		files = append(files, file{"ana_state", d.anaState, modeRO})
	}
	// uuid shows the NGUID when the namespace has no UUID; both are
	// hidden when the namespace has neither.
	switch {
	case ns.UUID != "":
		files = append(files, file{"uuid", ns.UUID, modeRO})
	case ns.NGUID != "":
		files = append(files, file{"uuid", uuidLayout(ns.NGUID), modeRO})
	}
	if ns.NGUID != "" {
		files = append(files, file{"nguid", uuidLayout(ns.NGUID), modeRO})
	}
	return files
}

// wwid is the kernel's: uuid, else NGUID, else vendor, serial, model and
// nsid of the subsystem.
func wwid(hd *head) string {
	ns := hd.ns.Namespace
	switch {
	case ns.UUID != "":
		return "uuid." + ns.UUID
	case ns.NGUID != "":
		return "eui." + ns.NGUID
	}
	return fmt.Sprintf("nvme.0000-%s-%s-%08x", hex.EncodeToString([]byte(hd.sub.serial)),
		hex.EncodeToString([]byte("Linux")), ns.NSID)
}

// uuidLayout prints 32 hex digits as the kernel's %pU does.
func uuidLayout(g string) string {
	return g[0:8] + "-" + g[8:12] + "-" + g[12:16] + "-" + g[16:20] + "-" + g[20:]
}

// installDisk makes a disk appear: its directory, the block links, then
// its /dev node (udev makes the node after the kernel's uevent).
func (h *Host) installDisk(d *disk, parent string) {
	d.dir = filepath.Join(parent, d.name)
	h.tree.install(d.dir, diskAttrs(d, d.head.ns.SizeBytes))
	h.tree.link(d.dir, filepath.Join(h.sysRoot, "dev/block", d.dev()))
	h.tree.link(d.dir, filepath.Join(h.sysRoot, "block", d.name))
	h.tree.link(d.dir, filepath.Join(h.sysRoot, "class/block", d.name))
	if d.node == "" {
		return
	}
	tmp := h.tree.tmp()
	if err := os.Link(d.head.ns.backing, tmp); err != nil {
		h.tree.check(err)
		return
	}
	h.tree.check(os.Rename(tmp, d.node))
	// As the kernel does: the uevent goes out once the /dev node exists.
	h.events.announce()
}

// removeDiskTree takes a disk away: /dev node first, then the links and
// its directory.
func (h *Host) removeDiskTree(d *disk) {
	h.removePartitions(d)
	if d.node != "" {
		h.tree.remove(d.node)
	}
	for _, l := range []string{"class/block/" + d.name, "block/" + d.name, "dev/block/" + d.dev()} {
		h.tree.remove(filepath.Join(h.sysRoot, l))
	}
	h.tree.remove(d.dir)
}

// syncDiskSize rewrites the size of every disk of a namespace.
func (h *Host) syncDiskSize(d *disk) {
	if d == nil || d.removed {
		return
	}
	h.tree.attr(filepath.Join(d.dir, "size"), strconv.FormatInt(d.head.ns.SizeBytes/512, 10), modeRO)
}

// canonicalNGUID brings "1111...", "1111-...-..." or upper case to 32 lower
// hex digits.
func canonicalNGUID(s string) (string, bool) {
	g := strings.ToLower(strings.ReplaceAll(s, "-", ""))
	if len(g) != 32 {
		return "", false
	}
	if _, err := hex.DecodeString(g); err != nil {
		return "", false
	}
	return g, true
}
