package fsprobe

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// The ext2/3/4 superblock: 1024 bytes at offset 1024, little-endian.
const (
	extOffset       = 1024
	extSize         = 1024
	extMagic        = 0xef53
	extLogBlockSize = 0x18
	extMntCount     = 0x34
	extMaxMntCount  = 0x36
	extMagicOff     = 0x38
	extState        = 0x3a
	extLastCheck    = 0x40
	extCheckIntvl   = 0x44
	extCompat       = 0x5c
	extIncompat     = 0x60
	extROCompat     = 0x64
	extLastOrphan   = 0xe8
	extFlags        = 0x160
	extErrorCount   = 0x194
	extLastCheckHi  = 0x277
	extChecksum     = 0x3fc

	extStateValid = 0x1
	extStateError = 0x2

	extCompatHasJournal = 0x4

	extIncompatFiletype   = 0x2
	extIncompatRecover    = 0x4
	extIncompatJournalDev = 0x8
	extIncompatMetaBG     = 0x10

	extROCompatSparseSuper   = 0x1
	extROCompatLargeFile     = 0x2
	extROCompatBtreeDir      = 0x4
	extROCompatMetadataCsum  = 0x400
	extROCompatOrphanPresent = 0x10000

	extFlagsTestFS = 0x4
)

// What ext2 and ext3 understand; a file system with more is ext4 (the
// rules blkid classifies by).
const (
	ext2IncompatSupp = extIncompatFiletype | extIncompatMetaBG
	ext3IncompatSupp = extIncompatFiletype | extIncompatRecover | extIncompatMetaBG
	ext23ROSupp      = extROCompatSparseSuper | extROCompatLargeFile | extROCompatBtreeDir
)

// extSuper is the part of an ext superblock Probe decides from.
type extSuper struct {
	FSType                 string
	state                  uint16
	mntCount               uint16
	maxMntCount            int16
	lastCheck              int64
	checkInterval          uint32
	incompat, roCompat     uint32
	lastOrphan, errorCount uint32
}

// probeExt reads an ext superblock from head. It requires the bytes before
// it to be zero, as mke2fs leaves them: anything there (a boot sector, a
// partition table, another superblock) is for blkid to judge.
func probeExt(head []byte) (extSuper, string) {
	if len(head) < extOffset+extSize {
		return extSuper{}, "device too small for an ext superblock"
	}
	sb := head[extOffset : extOffset+extSize]
	le := binary.LittleEndian
	if le.Uint16(sb[extMagicOff:]) != extMagic {
		return extSuper{}, "no ext or xfs superblock"
	}
	if !allZero(head[:extOffset]) {
		return extSuper{}, "data in the first KiB before the ext superblock: blkid decides"
	}
	if le.Uint32(sb[extLogBlockSize:]) > 6 {
		return extSuper{}, "ext superblock with an impossible block size"
	}
	compat, incompat, ro := le.Uint32(sb[extCompat:]), le.Uint32(sb[extIncompat:]), le.Uint32(sb[extROCompat:])
	if ro&extROCompatMetadataCsum != 0 {
		// The kernel's crc32c without its final inversion.
		if want, got := le.Uint32(sb[extChecksum:]), ^crc32.Checksum(sb[:extChecksum], castagnoli); want != got {
			return extSuper{}, fmt.Sprintf("ext superblock checksum %#x does not match its contents (%#x)", want, got)
		}
	}
	s := extSuper{
		state:         le.Uint16(sb[extState:]),
		mntCount:      le.Uint16(sb[extMntCount:]),
		maxMntCount:   int16(le.Uint16(sb[extMaxMntCount:])), //nolint:gosec // the field is signed
		lastCheck:     int64(le.Uint32(sb[extLastCheck:])) | int64(sb[extLastCheckHi])<<32,
		checkInterval: le.Uint32(sb[extCheckIntvl:]),
		incompat:      incompat,
		roCompat:      ro,
		lastOrphan:    le.Uint32(sb[extLastOrphan:]),
		errorCount:    le.Uint32(sb[extErrorCount:]),
	}
	journal := compat&extCompatHasJournal != 0
	switch {
	case incompat&extIncompatJournalDev != 0:
		return extSuper{}, "an external ext journal, not a file system"
	case !journal && incompat&^ext2IncompatSupp == 0 && ro&^ext23ROSupp == 0:
		s.FSType = "ext2"
	case journal && incompat&^ext3IncompatSupp == 0 && ro&^ext23ROSupp == 0:
		s.FSType = "ext3"
	case incompat&^ext3IncompatSupp == 0 && ro&^ext23ROSupp == 0:
		return extSuper{}, "an ext superblock that is neither ext2, ext3 nor ext4 by blkid's rules"
	case le.Uint32(sb[extFlags:])&extFlagsTestFS != 0:
		return extSuper{}, "ext4dev (test_fs flag)"
	default:
		s.FSType = "ext4"
	}
	return s, ""
}

// extUnclean says why `fsck -a` (e2fsck -p) would do work on s, or ""
// when it would only print "clean": the tests of e2fsck's own decision to
// skip a check, and the steps it takes before it (journal replay, orphan
// release).
func extUnclean(s extSuper, now time.Time) string {
	switch {
	case s.state&extStateError != 0 || s.errorCount > 0:
		return "the file system recorded errors"
	case s.state&extStateValid == 0:
		return "not cleanly unmounted"
	case s.incompat&extIncompatRecover != 0:
		return "its journal needs recovery"
	case s.lastOrphan != 0 || s.roCompat&extROCompatOrphanPresent != 0:
		return "it has orphaned inodes to release"
	case s.maxMntCount > 0 && int(s.mntCount) >= int(s.maxMntCount):
		return fmt.Sprintf("mounted %d times, the limit for a check is %d", s.mntCount, s.maxMntCount)
	case s.checkInterval != 0 && time.Unix(s.lastCheck, 0).After(now):
		return "its last check is in the future"
	case s.checkInterval != 0 && now.Sub(time.Unix(s.lastCheck, 0)) >= time.Duration(s.checkInterval)*time.Second:
		return "a periodic check is due"
	}
	return ""
}

// The xfs superblock: sector 0, big-endian.
const (
	xfsMagic      = "XFSB"
	xfsBlockSize  = 4
	xfsVersionNum = 100
	xfsSectSize   = 102
	xfsCRC        = 224
	xfsVersion5   = 5
)

// probeXFS reports whether head holds a sane xfs superblock (and, for a
// version 5 one, with a good checksum).
func probeXFS(head []byte) bool {
	if len(head) < 512 || !bytes.Equal(head[:4], []byte(xfsMagic)) {
		return false
	}
	be := binary.BigEndian
	block, sect, version := be.Uint32(head[xfsBlockSize:]), int(be.Uint16(head[xfsSectSize:])), be.Uint16(head[xfsVersionNum:])&0xf
	if !powerOfTwo(int(block), 512, 65536) || !powerOfTwo(sect, 512, 32768) || (version != 4 && version != xfsVersion5) {
		return false
	}
	if version == xfsVersion5 {
		if len(head) < sect {
			return false
		}
		buf := bytes.Clone(head[:sect])
		want := binary.LittleEndian.Uint32(buf[xfsCRC:])
		clear(buf[xfsCRC : xfsCRC+4])
		if crc32.Checksum(buf, castagnoli) != want {
			return false
		}
	}
	return true
}

func powerOfTwo(n, lo, hi int) bool { return n >= lo && n <= hi && n&(n-1) == 0 }

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
