package fsprobe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The samples in testdata are the first 8 KiB of file systems made by
// mke2fs 1.47.0 (64 MiB, the -t ext2/ext3/ext4 defaults; one ext4 without
// a journal) and mkfs.xfs 6.1.0 (320 MiB), on sparse files.

var now = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

// imageSize is the size of the simulated devices: 128 MiB and a sector,
// so that md 0.90's place (64 KiB-aligned) is not where md 1.0's is.
const imageSize = 128<<20 + 512

// image is a sparse simulated device: zeros but for what was put there.
// It counts the bytes read.
type image struct {
	size   int64
	extent map[int64][]byte
	read   atomic.Int64
	fail   error
}

func newImage(t *testing.T, sample string) *image {
	t.Helper()
	im := &image{size: imageSize, extent: map[int64][]byte{}}
	if sample != "" {
		b, err := os.ReadFile(filepath.Join("testdata", sample))
		if err != nil {
			t.Fatal(err)
		}
		im.put(0, b)
	}
	return im
}

// put writes b at off; an offset below zero counts from the end.
func (im *image) put(off int64, b []byte) {
	if off < 0 {
		off += im.size
	}
	for o, e := range im.extent { // overlapping writes land in the extent they hit
		if off >= o && off+int64(len(b)) <= o+int64(len(e)) {
			copy(e[off-o:], b)
			return
		}
	}
	im.extent[off] = slices.Clone(b)
}

// head is the extent at 0 (the sample), for edits of the superblock.
func (im *image) head() []byte { return im.extent[0] }

func (im *image) ReadAt(p []byte, off int64) (int, error) {
	if im.fail != nil {
		return 0, im.fail
	}
	if off >= im.size {
		return 0, io.EOF
	}
	n := min(int64(len(p)), im.size-off)
	clear(p[:n])
	for o, e := range im.extent {
		lo, hi := max(o, off), min(o+int64(len(e)), off+n)
		if lo < hi {
			copy(p[lo-off:hi-off], e[lo-o:hi-o])
		}
	}
	im.read.Add(n)
	if n < int64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

// patchExt changes the ext superblock in head and fixes its checksum, as
// the kernel would have written it.
func patchExt(head []byte, patch func(sb []byte)) {
	sb := head[extOffset : extOffset+extSize]
	patch(sb)
	binary.LittleEndian.PutUint32(sb[extChecksum:], ^crc32.Checksum(sb[:extChecksum], castagnoli))
}

func setU32(b []byte, off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }

func u32Bytes(v uint32, order binary.ByteOrder) []byte {
	b := make([]byte, 4)
	order.PutUint32(b, v)
	return b
}

func TestProbe(t *testing.T) {
	le := binary.LittleEndian
	ext := func(patch func(sb []byte)) func(im *image) { return func(im *image) { patchExt(im.head(), patch) } }
	tests := []struct {
		name   string
		sample string
		change func(im *image)
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
		{name: "raw data", change: func(im *image) { im.put(0, []byte("someone's data")) }, why: "no ext or xfs superblock"},

		{name: "ext4 that recorded errors", sample: "ext4.head", fsType: "ext4", why: "recorded errors",
			change: ext(func(sb []byte) { le.PutUint16(sb[extState:], extStateValid|extStateError) })},
		{name: "ext4 with an error count", sample: "ext4.head", fsType: "ext4", why: "recorded errors",
			change: ext(func(sb []byte) { setU32(sb, extErrorCount, 3) })},
		{name: "ext4 not cleanly unmounted", sample: "ext4.head", fsType: "ext4", why: "not cleanly unmounted",
			change: ext(func(sb []byte) { le.PutUint16(sb[extState:], 0) })},
		{name: "ext4 whose journal needs recovery", sample: "ext4.head", fsType: "ext4", why: "journal needs recovery",
			change: ext(func(sb []byte) { setU32(sb, extIncompat, le.Uint32(sb[extIncompat:])|extIncompatRecover) })},
		{name: "ext4 with orphans", sample: "ext4.head", fsType: "ext4", why: "orphaned inodes",
			change: ext(func(sb []byte) { setU32(sb, extLastOrphan, 12) })},
		{name: "ext4 at its mount-count limit", sample: "ext4.head", fsType: "ext4", why: "mounted 20 times",
			change: ext(func(sb []byte) { le.PutUint16(sb[extMntCount:], 20); le.PutUint16(sb[extMaxMntCount:], 20) })},
		{name: "ext4 under its mount-count limit", sample: "ext4.head", fsType: "ext4", clean: true,
			change: ext(func(sb []byte) { le.PutUint16(sb[extMntCount:], 19); le.PutUint16(sb[extMaxMntCount:], 20) })},
		{name: "ext4 due for its periodic check", sample: "ext4.head", fsType: "ext4", why: "periodic check is due",
			change: ext(func(sb []byte) {
				setU32(sb, extLastCheck, uint32(now.Add(-48*time.Hour).Unix()))
				setU32(sb, extCheckIntvl, 24*3600)
			})},
		{name: "ext4 checked within its interval", sample: "ext4.head", fsType: "ext4", clean: true,
			change: ext(func(sb []byte) {
				setU32(sb, extLastCheck, uint32(now.Add(-time.Hour).Unix()))
				setU32(sb, extCheckIntvl, 24*3600)
			})},
		{name: "ext4 checked in the future", sample: "ext4.head", fsType: "ext4", why: "in the future",
			change: ext(func(sb []byte) {
				setU32(sb, extLastCheck, uint32(now.Add(time.Hour).Unix()))
				setU32(sb, extCheckIntvl, 24*3600)
			})},
		{name: "ext4 whose checksum fails", sample: "ext4.head", why: "checksum",
			change: func(im *image) { im.head()[extOffset+extMntCount]++ }},
		{name: "an external journal", sample: "ext4.head", why: "external ext journal",
			change: ext(func(sb []byte) { setU32(sb, extIncompat, le.Uint32(sb[extIncompat:])|extIncompatJournalDev) })},
		{name: "ext4dev", sample: "ext4.head", why: "ext4dev",
			change: ext(func(sb []byte) { setU32(sb, extFlags, le.Uint32(sb[extFlags:])|extFlagsTestFS) })},
		{name: "ext4 behind a boot sector's bytes", sample: "ext4.head", why: "first KiB",
			change: func(im *image) { im.head()[100] = 1 }},

		// What blkid would also report, or report instead.
		{name: "ext4 in an MBR", sample: "ext4.head", why: "partition table", change: func(im *image) { im.put(510, []byte{0x55, 0xaa}) }},
		{name: "ext4 with a GPT", sample: "ext4.head", why: "GPT", change: func(im *image) { im.put(4096, gptMagic) }},
		{name: "ext4 with a backup GPT", sample: "ext4.head", why: "backup GPT", change: func(im *image) { im.put(-512, gptMagic) }},
		{name: "ext4 on md 1.0", sample: "ext4.head", why: "md 1.0", change: func(im *image) { im.put(md10Offset(imageSize), u32Bytes(mdMagic, le)) }},
		{name: "ext4 on md 0.90", sample: "ext4.head", why: "md 0.90", change: func(im *image) { im.put(md090Offset(imageSize), u32Bytes(mdMagic, le)) }},
		{name: "ext4 beside md 1.2", sample: "ext4.head", why: "RAID", change: func(im *image) { im.put(4096, u32Bytes(mdMagic, le)) }},
		{name: "ext4 with DDF RAID", sample: "ext4.head", why: "DDF", change: func(im *image) { im.put(-512, u32Bytes(ddfMagic, binary.BigEndian)) }},
		{name: "ext4 with Intel RAID", sample: "ext4.head", why: "Intel", change: func(im *image) { im.put(-1024, imsmMagic) }},
		{name: "ext4 with a swap signature", sample: "ext4.head", why: "swap", change: func(im *image) { im.put(4096-10, []byte("SWAPSPACE2")) }},
		{name: "ext4 with bcache", sample: "ext4.head", why: "bcache", change: func(im *image) { im.put(4096+24, bcacheMagic) }},
		{name: "LVM", why: "LVM", change: func(im *image) { im.put(512, lvmMagic) }},
		{name: "LUKS", why: "LUKS", change: func(im *image) { im.put(0, luksMagic) }},
		{name: "xfs with an ext superblock too", sample: "xfs.head", why: "both",
			change: func(im *image) { le.PutUint16(im.head()[extOffset+extMagicOff:], extMagic) }},
		{name: "xfs whose checksum fails", sample: "xfs.head", why: "no ext or xfs superblock", change: func(im *image) { im.head()[8]++ }},
		{name: "xfs with an impossible block size", sample: "xfs.head", why: "no ext or xfs superblock",
			change: func(im *image) { binary.BigEndian.PutUint32(im.head()[xfsBlockSize:], 3000) }},
		{name: "xfs on md 1.0", sample: "xfs.head", why: "md 1.0", change: func(im *image) { im.put(md10Offset(imageSize), u32Bytes(mdMagic, le)) }},
		// Leftovers of a former life, under a file system written after
		// them: that file system is the live one.
		{name: "ext4 over old ZFS labels", sample: "ext4.head", fsType: "ext4", clean: true,
			change: func(im *image) { im.put(-256<<10+130<<10, u32Bytes(0x00bab10c, le)) }},
		{name: "ext4 over an old btrfs", sample: "ext4.head", fsType: "ext4", clean: true,
			change: func(im *image) { im.put(65536+64, []byte("_BHRfS_M")) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			im := newImage(t, tt.sample)
			if tt.change != nil {
				tt.change(im)
			}
			got, err := Probe(im, im.size, now)
			if err != nil {
				t.Fatal(err)
			}
			if got.FSType != tt.fsType || got.Clean != tt.clean || !strings.Contains(got.Why, tt.why) || (tt.clean && got.Why != "") {
				t.Fatalf("Probe = %+v (%s); want type %q, clean %v, why containing %q", got, got, tt.fsType, tt.clean, tt.why)
			}
			if n := im.read.Load(); n > headSize+tailSize+4 {
				t.Errorf("read %d bytes, want at most %d", n, headSize+tailSize+4)
			}
		})
	}
}

// A read that fails is an error, never "nothing found".
func TestProbeReads(t *testing.T) {
	failing := newImage(t, "ext4.head")
	failing.fail = errors.New("EIO")
	if r, err := Probe(failing, failing.size, now); err == nil {
		t.Errorf("a device that cannot be read: %+v, want an error", r)
	}
}

// A small device: nothing is read past its end, and what fits is probed.
func TestProbeSmallDevice(t *testing.T) {
	for _, size := range []int64{0, 100, 511, 1024, 2047, 2048, 8192, 12 << 10, 20 << 10, 200 << 10} {
		im := newImage(t, "ext4.head")
		im.size = size
		got, err := Probe(im, size, now)
		if err != nil {
			t.Fatalf("a %d-byte device: %v", size, err)
		}
		if size >= headSize && (got.FSType != "ext4" || !got.Clean) {
			t.Errorf("a %d-byte device: %+v, want a clean ext4", size, got)
		}
		if size < extOffset+extSize && got.FSType != "" {
			t.Errorf("a %d-byte device: %+v, want nothing", size, got)
		}
	}
}

func FuzzProbe(f *testing.F) {
	for _, s := range []string{"ext4.head", "xfs.head", "ext2.head"} {
		b, err := os.ReadFile(filepath.Join("testdata", s))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:4096]) // the superblocks; short inputs keep the fuzzer quick
	}
	f.Fuzz(func(t *testing.T, dev []byte) {
		r, err := Probe(bytes.NewReader(dev), int64(len(dev)), now)
		if err != nil {
			t.Fatalf("Probe of a %d-byte device: %v", len(dev), err)
		}
		if r.Clean && r.FSType == "" {
			t.Fatalf("clean without a file system: %+v", r)
		}
	})
}
