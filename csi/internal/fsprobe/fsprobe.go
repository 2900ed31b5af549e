// Package fsprobe recognises an ext2/3/4 or xfs file system from the start
// and the end of its device, conservatively: it says "this is a clean ext4
// file system, and nothing that could be live stands beside it" only when
// the superblock says so and none of the signatures blkid(8) would also
// report is where blkid looks for them (partition tables, RAID and LVM
// metadata, LUKS, swap, the other file system). Anything else it leaves to
// blkid, which stays the authority whenever a device may be formatted.
//
// It exists because a stage of a formatted volume otherwise starts three
// processes (blkid, fsck, fsck.ext4) that cost far more than the mount.
package fsprobe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// What Probe reads: the first 8 KiB (the superblocks, and what may stand
// beside them there) and the last 12 KiB (RAID metadata kept at the end:
// md 1.0, DDF, Intel; the backup GPT), plus md 0.90's block. Reads of the
// device are the dearest part of a stage after the kernel's connect (1 MiB
// cost 30-50 ms in the lab VM, 8 KiB a few), so it reads no more.
const (
	headSize = 8 << 10
	tailSize = 12 << 10
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

// Probe reads the device of size bytes through dev and says what file
// system it holds. now is the clock of ext's periodic-check test. A read
// that fails is an error: nothing is decided from a device that cannot be
// read.
//
// What it does not look for, and why that is safe: signatures that cannot
// be live on a device whose first 8 KiB show an ext or xfs superblock. A
// live ZFS vdev, btrfs or ISO 9660 image keeps other data (or zeros) where
// the superblock would be; found beside one, they are leftovers of the
// device's former life that mkfs did not wipe, and the file system written
// after them is the live one. What can
// be live around a file system at offset 0 is metadata at the device's end
// (md 0.90 and 1.0 RAID members, DDF and Intel firmware RAID), and that is
// read.
func Probe(dev io.ReaderAt, size int64, now time.Time) (Result, error) {
	// The three reads go out together: over a network each costs a round
	// trip, and the device answers them side by side. The end is read
	// even when the start shows no file system; it is a few KiB.
	tailStart := max(size-tailSize, 0)
	md090At := md090Offset(size)
	var head, tail, md090 []byte
	var headErr, tailErr, mdErr error
	var wg sync.WaitGroup
	wg.Go(func() { head, headErr = readAt(dev, 0, min(headSize, size)) })
	wg.Go(func() { tail, tailErr = readAt(dev, tailStart, size-tailStart) })
	if md090At >= 0 && md090At < tailStart {
		wg.Go(func() { md090, mdErr = readAt(dev, md090At, 4) })
	}
	wg.Wait()
	if err := errors.Join(headErr, tailErr, mdErr); err != nil {
		return Result{}, fmt.Errorf("read the superblock's and the RAID metadata's places: %w", err)
	}
	r := probeHead(head, now)
	if r.FSType == "" {
		return r, nil
	}
	if md090At >= tailStart {
		md090 = tail[md090At-tailStart:]
	}
	if other := foreignAtTheEnd(tail, size, md090); other != "" {
		return Result{Why: other + " found: blkid decides"}, nil
	}
	return r, nil
}

// readAt reads n bytes at off.
func readAt(dev io.ReaderAt, off, n int64) ([]byte, error) {
	b := make([]byte, n)
	got, err := dev.ReadAt(b, off)
	if errors.Is(err, io.EOF) && int64(got) == n {
		err = nil
	}
	if err != nil {
		return nil, err //nolint:wrapcheck // Probe says what it read
	}
	return b, nil
}

// probeHead decides from the first bytes of the device alone.
func probeHead(head []byte, now time.Time) Result {
	if other := foreignAtTheStart(head); other != "" {
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
	lvmMagic    = []byte("LABELONE")
	luksMagic   = []byte("LUKS\xba\xbe")
	swapMagics  = [][]byte{[]byte("SWAPSPACE2"), []byte("SWAP-SPACE")}
	bcacheMagic = []byte{0xc6, 0x85, 0x73, 0xf6, 0x4e, 0x1a, 0x45, 0xca, 0x82, 0x65, 0xf5, 0x7f, 0x48, 0xba, 0x6d, 0x81}
	imsmMagic   = []byte("Intel Raid ISM Cfg Sig. ")
)

const (
	mdMagic  = 0xa92b4efc // Linux MD, little-endian in v1.x, host order (LE here) in v0.90
	ddfMagic = 0xde11de11 // SNIA DDF RAID anchor, big-endian
)

func at(b []byte, off int, magic []byte) bool {
	return off >= 0 && off+len(magic) <= len(b) && bytes.Equal(b[off:off+len(magic)], magic)
}

func u32(b []byte, off int, order binary.ByteOrder) uint32 {
	if off < 0 || off+4 > len(b) {
		return 0
	}
	return order.Uint32(b[off:])
}

// foreignAtTheStart names the first signature of something else than a
// plain file system in the head, "" when none.
func foreignAtTheStart(head []byte) string {
	switch {
	case len(head) >= 512 && head[510] == 0x55 && head[511] == 0xaa:
		return "a partition table or boot sector (0x55aa at 510)"
	case at(head, 512, gptMagic) || at(head, 4096, gptMagic):
		return "a GPT partition table"
	case at(head, 0, lvmMagic) || at(head, 512, lvmMagic) || at(head, 1024, lvmMagic) || at(head, 1536, lvmMagic):
		return "an LVM physical volume"
	case at(head, 0, luksMagic):
		return "a LUKS header"
	case u32(head, 0, binary.LittleEndian) == mdMagic || u32(head, 4096, binary.LittleEndian) == mdMagic: // md 1.1, 1.2
		return "Linux RAID (md) metadata"
	case at(head, 4096+24, bcacheMagic):
		return "a bcache superblock"
	case at(head, 4096-10, swapMagics[0]) || at(head, 4096-10, swapMagics[1]):
		return "a swap signature"
	}
	return ""
}

// md090Offset is where md 0.90 keeps its superblock on a device of size
// bytes: the last 64 KiB-aligned 64 KiB; negative when the device is too
// small to hold it.
func md090Offset(size int64) int64 {
	const reserved = 64 << 10
	return size&^(reserved-1) - reserved
}

// md10Offset is where md 1.0 keeps its superblock: 8 KiB from the end,
// 4 KiB-aligned.
func md10Offset(size int64) int64 {
	return ((size>>9 - 16) &^ 7) << 9
}

// foreignAtTheEnd names the first RAID metadata or backup GPT at the end
// of a device of size bytes (tail: its last bytes; md090: the 4 bytes at
// md 0.90's place), "" when none.
func foreignAtTheEnd(tail []byte, size int64, md090 []byte) string {
	n := len(tail)
	rel := func(off int64) int { return int(off - (size - int64(n))) }
	switch {
	case u32(md090, 0, binary.LittleEndian) == mdMagic:
		return "Linux RAID (md 0.90) metadata"
	case u32(tail, rel(md10Offset(size)), binary.LittleEndian) == mdMagic:
		return "Linux RAID (md 1.0) metadata"
	case u32(tail, n-512, binary.BigEndian) == ddfMagic:
		return "SNIA DDF RAID metadata"
	case at(tail, n-1024, imsmMagic):
		return "Intel Matrix RAID metadata"
	case at(tail, n-512, gptMagic) || at(tail, n-4096, gptMagic):
		return "a backup GPT partition table"
	}
	return ""
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
