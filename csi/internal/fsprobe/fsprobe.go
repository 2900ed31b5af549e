// Package fsprobe recognises an ext2/3/4 or xfs file system from the head
// and the tail of its device, conservatively: it says "this is an ext4
// file system, clean, and nothing else is on the device" only when the
// superblock says so and none of the other signatures blkid(8) would also
// report is where it would look for them (partition tables, RAID and LVM
// metadata, LUKS, swap, other file systems). Anything else it leaves to
// blkid, which stays the authority whenever a device may be formatted.
//
// It exists because a stage of a formatted volume otherwise starts three
// processes (blkid, fsck, fsck.ext4) that cost far more than the mount.
package fsprobe

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"
)

// HeadSize is how much of the start of a device Probe wants, TailSize how
// much of its end.
const (
	HeadSize = 1 << 20
	TailSize = 512 << 10
)

// Result is what Probe found.
type Result struct {
	// FSType is "ext2", "ext3", "ext4" or "xfs" as blkid names them; "" when
	// no superblock of these was found, or something else was too.
	FSType string
	// Clean reports that `fsck -a` would find nothing to do that the
	// kernel's mount does not do itself: for ext*, the superblock shows a
	// cleanly unmounted file system without errors, without a journal to
	// replay or orphans to release, and not due for a periodic check; xfs
	// is always clean (fsck.xfs does nothing: xfs checks itself at mount).
	Clean bool
	// Why says, for a person, why FSType is empty or Clean is false.
	Why string
}

// Probe looks at head (the first HeadSize bytes of the device, or all of a
// smaller one) and tail (the last TailSize bytes). now is the clock of the
// periodic-check test.
func Probe(head, tail []byte, now time.Time) Result {
	if other := foreign(head, tail); other != "" {
		return Result{Why: other + " found: blkid decides"}
	}
	extMagicThere := len(head) >= extOffset+extMagicOff+2 && binary.LittleEndian.Uint16(head[extOffset+extMagicOff:]) == extMagic
	if probeXFS(head) {
		if extMagicThere {
			return Result{Why: "both ext and xfs superblocks found: blkid decides"}
		}
		return Result{FSType: "xfs", Clean: true}
	}
	ext, why := probeExt(head)
	if ext.FSType == "" {
		return Result{Why: why}
	}
	if why := extUnclean(ext, now); why != "" {
		return Result{FSType: ext.FSType, Why: why}
	}
	return Result{FSType: ext.FSType, Clean: true}
}

// Signatures of what may stand on a device beside (or around) a file
// system, where blkid looks for them.
var (
	gptMagic    = []byte("EFI PART")
	luks2Backup = []byte("SKUL\xba\xbe")
	swapMagics  = [][]byte{[]byte("SWAPSPACE2"), []byte("SWAP-SPACE")}
	btrfsMagic  = []byte("_BHRfS_M")
	isoMagic    = []byte("CD001")
	bcacheMagic = []byte{0xc6, 0x85, 0x73, 0xf6, 0x4e, 0x1a, 0x45, 0xca, 0x82, 0x65, 0xf5, 0x7f, 0x48, 0xba, 0x6d, 0x81}
	imsmMagic   = []byte("Intel Raid ISM Cfg Sig. ")
)

const (
	mdMagic     = 0xa92b4efc // Linux MD, little-endian in v1.x, host order (LE here) in v0.90
	zfsMagic    = 0x00bab10c // ZFS uberblock, either byte order
	ddfMagic    = 0xde11de11 // SNIA DDF RAID anchor, big-endian
	reiserMagic = "ReIsEr"
)

// foreign names the first signature of something else than a plain file
// system that head or tail shows, "" when none.
func foreign(head, tail []byte) string {
	at := func(b []byte, off int, magic []byte) bool {
		return off >= 0 && off+len(magic) <= len(b) && bytes.Equal(b[off:off+len(magic)], magic)
	}
	u32 := func(b []byte, off int, order binary.ByteOrder) (uint32, bool) {
		if off < 0 || off+4 > len(b) {
			return 0, false
		}
		return order.Uint32(b[off:]), true
	}
	if len(head) >= 512 && head[510] == 0x55 && head[511] == 0xaa {
		return "a partition table or boot sector (0x55aa at 510)"
	}
	for _, off := range []int{512, 4096} {
		if at(head, off, gptMagic) {
			return "a GPT partition table"
		}
	}
	for _, off := range []int{0, 512, 1024, 1536} {
		if at(head, off, []byte("LABELONE")) {
			return "an LVM physical volume"
		}
	}
	if at(head, 0, []byte("LUKS\xba\xbe")) || at(head, 16384, luks2Backup) {
		return "a LUKS header"
	}
	for _, off := range []int{0, 4096} { // md 1.1, 1.2
		if v, ok := u32(head, off, binary.LittleEndian); ok && v == mdMagic {
			return "Linux RAID (md) metadata"
		}
	}
	if at(head, 4096+24, bcacheMagic) {
		return "a bcache superblock"
	}
	for _, page := range []int{4096, 8192, 16384, 32768, 65536} {
		for _, m := range swapMagics {
			if at(head, page-10, m) {
				return "a swap signature"
			}
		}
	}
	if at(head, 65536+64, btrfsMagic) {
		return "a btrfs superblock"
	}
	if at(head, 32769, isoMagic) {
		return "an ISO 9660 image"
	}
	if at(head, 65536+52, []byte(reiserMagic)) {
		return "a ReiserFS superblock"
	}
	// ZFS keeps two labels at the start and two at the end, each with an
	// array of 1 KiB uberblocks in its second half.
	for _, label := range [][]byte{slice(head, 0, 256<<10), slice(head, 256<<10, 256<<10), slice(tail, len(tail)-512<<10, 256<<10), slice(tail, len(tail)-256<<10, 256<<10)} {
		for off := 128 << 10; off+8 <= len(label); off += 1 << 10 {
			le, _ := u32(label, off, binary.LittleEndian)
			be, _ := u32(label, off, binary.BigEndian)
			if le == zfsMagic || be == zfsMagic {
				return "a ZFS label"
			}
		}
	}
	n := len(tail)
	// md 1.0 sits 8-12 KiB from the end, md 0.90 64-128 KiB from it, each
	// on a sector boundary that depends on the device's size: every sector
	// of the last 128 KiB is looked at.
	for off := max(n-128<<10, 0); off+4 <= n; off += 512 {
		if v, _ := u32(tail, off, binary.LittleEndian); v == mdMagic {
			return "Linux RAID (md) metadata"
		}
	}
	for _, sector := range []int{512, 4096} {
		if at(tail, n-sector, gptMagic) {
			return "a backup GPT partition table"
		}
		if v, ok := u32(tail, n-sector, binary.BigEndian); ok && v == ddfMagic {
			return "SNIA DDF RAID metadata"
		}
	}
	if at(tail, n-1024, imsmMagic) {
		return "Intel Matrix RAID metadata"
	}
	return ""
}

// slice returns b[off:off+n], clipped to b; nil when off is outside it.
func slice(b []byte, off, n int) []byte {
	if off < 0 || off >= len(b) {
		return nil
	}
	return b[off:min(off+n, len(b))]
}

// String is for logs.
func (r Result) String() string {
	switch {
	case r.FSType == "":
		return "no file system recognised (" + r.Why + ")"
	case r.Clean:
		return r.FSType + ", clean"
	}
	return fmt.Sprintf("%s, not clean (%s)", r.FSType, r.Why)
}
