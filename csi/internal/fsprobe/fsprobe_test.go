package fsprobe

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The samples in testdata are the first 8 KiB of file systems made by
// mke2fs 1.47.0 (64 MiB, the -t ext2/ext3/ext4 defaults; one ext4 without
// a journal) and mkfs.xfs 6.1.0 (320 MiB), on sparse files.

var now = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

// device returns a head and a tail as Probe gets them, with sample at the
// start of the head.
func device(t *testing.T, sample string) (head, tail []byte) {
	t.Helper()
	head, tail = make([]byte, HeadSize), make([]byte, TailSize)
	if sample != "" {
		b, err := os.ReadFile(filepath.Join("testdata", sample))
		if err != nil {
			t.Fatal(err)
		}
		copy(head, b)
	}
	return head, tail
}

// patchExt changes the ext superblock in head and fixes its checksum, as
// the kernel would have written it.
func patchExt(head []byte, patch func(sb []byte)) {
	sb := head[extOffset : extOffset+extSize]
	patch(sb)
	binary.LittleEndian.PutUint32(sb[extChecksum:], ^crc32.Checksum(sb[:extChecksum], castagnoli))
}

func setU32(b []byte, off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }

func TestProbe(t *testing.T) {
	le := binary.LittleEndian
	tests := []struct {
		name   string
		sample string
		change func(head, tail []byte)
		fsType string
		clean  bool
		why    string // a part of Result.Why
	}{
		{name: "ext4", sample: "ext4.head", fsType: "ext4", clean: true},
		{name: "ext4 without a journal", sample: "ext4-nojournal.head", fsType: "ext4", clean: true},
		{name: "ext3", sample: "ext3.head", fsType: "ext3", clean: true},
		{name: "ext2", sample: "ext2.head", fsType: "ext2", clean: true},
		{name: "xfs", sample: "xfs.head", fsType: "xfs", clean: true},
		{name: "blank", why: "no ext or xfs superblock"},
		{name: "raw data", change: func(h, _ []byte) { copy(h, "someone's data") }, why: "no ext or xfs superblock"},

		{name: "ext4 that recorded errors", sample: "ext4.head", fsType: "ext4", why: "recorded errors",
			change: func(h, _ []byte) {
				patchExt(h, func(sb []byte) { le.PutUint16(sb[extState:], extStateValid|extStateError) })
			}},
		{name: "ext4 with an error count", sample: "ext4.head", fsType: "ext4", why: "recorded errors",
			change: func(h, _ []byte) { patchExt(h, func(sb []byte) { setU32(sb, extErrorCount, 3) }) }},
		{name: "ext4 not cleanly unmounted", sample: "ext4.head", fsType: "ext4", why: "not cleanly unmounted",
			change: func(h, _ []byte) { patchExt(h, func(sb []byte) { le.PutUint16(sb[extState:], 0) }) }},
		{name: "ext4 whose journal needs recovery", sample: "ext4.head", fsType: "ext4", why: "journal needs recovery",
			change: func(h, _ []byte) {
				patchExt(h, func(sb []byte) { setU32(sb, extIncompat, le.Uint32(sb[extIncompat:])|extIncompatRecover) })
			}},
		{name: "ext4 with orphans", sample: "ext4.head", fsType: "ext4", why: "orphaned inodes",
			change: func(h, _ []byte) { patchExt(h, func(sb []byte) { setU32(sb, extLastOrphan, 12) }) }},
		{name: "ext4 at its mount-count limit", sample: "ext4.head", fsType: "ext4", why: "mounted 20 times",
			change: func(h, _ []byte) {
				patchExt(h, func(sb []byte) { le.PutUint16(sb[extMntCount:], 20); le.PutUint16(sb[extMaxMntCount:], 20) })
			}},
		{name: "ext4 under its mount-count limit", sample: "ext4.head", fsType: "ext4", clean: true,
			change: func(h, _ []byte) {
				patchExt(h, func(sb []byte) { le.PutUint16(sb[extMntCount:], 19); le.PutUint16(sb[extMaxMntCount:], 20) })
			}},
		{name: "ext4 due for its periodic check", sample: "ext4.head", fsType: "ext4", why: "periodic check is due",
			change: func(h, _ []byte) {
				patchExt(h, func(sb []byte) {
					setU32(sb, extLastCheck, uint32(now.Add(-48*time.Hour).Unix()))
					setU32(sb, extCheckIntvl, 24*3600)
				})
			}},
		{name: "ext4 checked within its interval", sample: "ext4.head", fsType: "ext4", clean: true,
			change: func(h, _ []byte) {
				patchExt(h, func(sb []byte) {
					setU32(sb, extLastCheck, uint32(now.Add(-time.Hour).Unix()))
					setU32(sb, extCheckIntvl, 24*3600)
				})
			}},
		{name: "ext4 checked in the future", sample: "ext4.head", fsType: "ext4", why: "in the future",
			change: func(h, _ []byte) {
				patchExt(h, func(sb []byte) {
					setU32(sb, extLastCheck, uint32(now.Add(time.Hour).Unix()))
					setU32(sb, extCheckIntvl, 24*3600)
				})
			}},
		{name: "ext4 whose checksum fails", sample: "ext4.head", why: "checksum",
			change: func(h, _ []byte) { h[extOffset+extMntCount]++ }},
		{name: "an external journal", sample: "ext4.head", why: "external ext journal",
			change: func(h, _ []byte) {
				patchExt(h, func(sb []byte) { setU32(sb, extIncompat, le.Uint32(sb[extIncompat:])|extIncompatJournalDev) })
			}},
		{name: "ext4dev", sample: "ext4.head", why: "ext4dev",
			change: func(h, _ []byte) {
				patchExt(h, func(sb []byte) { setU32(sb, extFlags, le.Uint32(sb[extFlags:])|extFlagsTestFS) })
			}},
		{name: "ext4 behind a boot sector's bytes", sample: "ext4.head", why: "first KiB",
			change: func(h, _ []byte) { h[100] = 1 }},

		// What blkid would also report, or report instead.
		{name: "ext4 in an MBR", sample: "ext4.head", why: "partition table", change: func(h, _ []byte) { h[510], h[511] = 0x55, 0xaa }},
		{name: "ext4 with a GPT", sample: "ext4.head", why: "GPT", change: func(h, _ []byte) { copy(h[4096:], "EFI PART") }},
		{name: "ext4 with a backup GPT", sample: "ext4.head", why: "backup GPT", change: func(_, tl []byte) { copy(tl[len(tl)-512:], "EFI PART") }},
		{name: "ext4 on md 1.0", sample: "ext4.head", why: "RAID", change: func(_, tl []byte) { setU32(tl, len(tl)-8192, mdMagic) }},
		{name: "ext4 on md 0.90", sample: "ext4.head", why: "RAID", change: func(_, tl []byte) { setU32(tl, len(tl)-65536-3*512, mdMagic) }},
		{name: "ext4 beside md 1.2", sample: "ext4.head", why: "RAID", change: func(h, _ []byte) { setU32(h, 4096, mdMagic) }},
		{name: "ext4 with a ZFS label at the end", sample: "ext4.head", why: "ZFS",
			change: func(_, tl []byte) { binary.BigEndian.PutUint32(tl[len(tl)-256<<10+128<<10+5<<10:], zfsMagic) }},
		{name: "ext4 with a ZFS label at the start", sample: "ext4.head", why: "ZFS",
			change: func(h, _ []byte) { setU32(h, 256<<10+130<<10, zfsMagic) }},
		{name: "ext4 with DDF RAID", sample: "ext4.head", why: "DDF",
			change: func(_, tl []byte) { binary.BigEndian.PutUint32(tl[len(tl)-512:], ddfMagic) }},
		{name: "ext4 with Intel RAID", sample: "ext4.head", why: "Intel", change: func(_, tl []byte) { copy(tl[len(tl)-1024:], imsmMagic) }},
		{name: "ext4 with LUKS2's second header", sample: "ext4.head", why: "LUKS", change: func(h, _ []byte) { copy(h[16384:], luks2Backup) }},
		{name: "ext4 with a swap signature", sample: "ext4.head", why: "swap", change: func(h, _ []byte) { copy(h[4096-10:], "SWAPSPACE2") }},
		{name: "ext4 with btrfs", sample: "ext4.head", why: "btrfs", change: func(h, _ []byte) { copy(h[65536+64:], btrfsMagic) }},
		{name: "ext4 with bcache", sample: "ext4.head", why: "bcache", change: func(h, _ []byte) { copy(h[4096+24:], bcacheMagic) }},
		{name: "ext4 in an ISO image", sample: "ext4.head", why: "ISO", change: func(h, _ []byte) { copy(h[32769:], isoMagic) }},
		{name: "LVM", sample: "", why: "LVM", change: func(h, _ []byte) { copy(h[512:], "LABELONE") }},
		{name: "LUKS", sample: "", why: "LUKS", change: func(h, _ []byte) { copy(h, "LUKS\xba\xbe") }},
		{name: "xfs with an ext superblock too", sample: "xfs.head", why: "both",
			change: func(h, _ []byte) { le.PutUint16(h[extOffset+extMagicOff:], extMagic) }},
		{name: "xfs whose checksum fails", sample: "xfs.head", why: "no ext or xfs superblock", change: func(h, _ []byte) { h[8]++ }},
		{name: "xfs with an impossible block size", sample: "xfs.head", why: "no ext or xfs superblock",
			change: func(h, _ []byte) { binary.BigEndian.PutUint32(h[xfsBlockSize:], 3000) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head, tail := device(t, tt.sample)
			if tt.change != nil {
				tt.change(head, tail)
			}
			got := Probe(head, tail, now)
			if got.FSType != tt.fsType || got.Clean != tt.clean || !strings.Contains(got.Why, tt.why) || (tt.clean && got.Why != "") {
				t.Fatalf("Probe = %+v (%s); want type %q, clean %v, why containing %q", got, got, tt.fsType, tt.clean, tt.why)
			}
		})
	}
}

// A small device gives short buffers: nothing is read past them.
func TestProbeShortDevice(t *testing.T) {
	full, _ := device(t, "ext4.head")
	for _, n := range []int{0, 100, 511, 1024, 2047, 2048, 8192, 200 << 10} {
		head := full[:n]
		got := Probe(head, head, now)
		if n >= 8192 && (got.FSType != "ext4" || !got.Clean) {
			t.Errorf("a %d-byte device: %+v, want a clean ext4", n, got)
		}
		if n < extOffset+extSize && got.FSType != "" {
			t.Errorf("a %d-byte device: %+v, want nothing", n, got)
		}
	}
}

func FuzzProbe(f *testing.F) {
	for _, s := range []string{"ext4.head", "xfs.head", "ext2.head"} {
		b, err := os.ReadFile(filepath.Join("testdata", s))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:4096], []byte{}) // the superblocks; short inputs keep the fuzzer quick
	}
	f.Fuzz(func(t *testing.T, head, tail []byte) {
		r := Probe(head, tail, now)
		if r.Clean && r.FSType == "" {
			t.Fatalf("clean without a file system: %+v", r)
		}
	})
}
