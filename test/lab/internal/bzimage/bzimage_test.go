package bzimage

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"os/exec"
	"testing"
)

// fakeKernel stands in for vmlinux: what matters is the ELF magic and size.
var fakeKernel = append([]byte{0x7f, 'E', 'L', 'F'}, bytes.Repeat([]byte("kernel text "), 300)...)

// buildImage lays out a minimal bzImage: setup sectors with the header
// fields Locate reads, then the payload followed by its size trailer.
func buildImage(t *testing.T, version uint16, payload []byte, size uint32) []byte {
	t.Helper()
	const setupSects = 3
	const payloadOffset = 64
	img := make([]byte, (setupSects+1)*sectorSize+payloadOffset)
	img[offSetupSects] = setupSects
	copy(img[offHeaderMagic:], headerMagic)
	binary.LittleEndian.PutUint16(img[offVersion:], version)
	binary.LittleEndian.PutUint32(img[offPayloadOffset:], payloadOffset)
	binary.LittleEndian.PutUint32(img[offPayloadLength:], uint32(len(payload)+sizeTrailer))
	img = append(img, payload...)
	img = binary.LittleEndian.AppendUint32(img, size)
	return append(img, make([]byte, 100)...) // what follows the payload in a real image
}

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestLocate(t *testing.T) {
	gz := gzipped(t, fakeKernel)
	tests := []struct {
		name    string
		image   []byte
		want    Format
		wantErr error
	}{
		{name: "gzip payload", image: buildImage(t, 0x020f, gz, uint32(len(fakeKernel))), want: Gzip},
		{name: "zstd magic", image: buildImage(t, 0x020f, []byte{0x28, 0xb5, 0x2f, 0xfd, 1, 2}, 10), want: Zstd},
		{name: "old boot protocol", image: buildImage(t, 0x0207, gz, 1), wantErr: ErrNotBzImage},
		{name: "not a kernel", image: bytes.Repeat([]byte{0}, 4096), wantErr: ErrNotBzImage},
		{name: "too short", image: []byte("HdrS"), wantErr: ErrNotBzImage},
		{name: "unknown compression", image: buildImage(t, 0x020f, []byte("BZh91AY"), 1), wantErr: ErrUnknownFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Locate(tt.image)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Locate() error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Locate() error = %v", err)
			}
			if p.Format != tt.want {
				t.Errorf("Format = %q, want %q", p.Format, tt.want)
			}
		})
	}
}

func TestLocateTruncatedPayload(t *testing.T) {
	img := buildImage(t, 0x020f, gzipped(t, fakeKernel), uint32(len(fakeKernel)))
	binary.LittleEndian.PutUint32(img[offPayloadLength:], uint32(len(img)))
	if _, err := Locate(img); !errors.Is(err, ErrNotBzImage) {
		t.Fatalf("Locate() error = %v, want %v", err, ErrNotBzImage)
	}
}

func TestDecompressGzip(t *testing.T) {
	tests := []struct {
		name    string
		data    []byte
		size    uint32
		wantErr bool
	}{
		{name: "elf of recorded size", data: fakeKernel, size: uint32(len(fakeKernel))},
		{name: "size differs from trailer", data: fakeKernel, size: 7, wantErr: true},
		{name: "not an elf", data: []byte("plain text"), size: 10, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Locate(buildImage(t, 0x020f, gzipped(t, tt.data), tt.size))
			if err != nil {
				t.Fatalf("Locate() error = %v", err)
			}
			got, err := p.Decompress(context.Background())
			if tt.wantErr {
				if err == nil {
					t.Fatal("Decompress() succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Decompress() error = %v", err)
			}
			if !bytes.Equal(got, tt.data) {
				t.Errorf("Decompress() returned %d bytes that differ from the input", len(got))
			}
		})
	}
}

// TestDecompressXZ covers the format Debian's kernels use, through the xz
// tool the lab installs; the stream is made the way the kernel build makes it.
func TestDecompressXZ(t *testing.T) {
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("xz (xz-utils) is not installed; `make lab` installs it")
	}
	xzData, err := runFilter(context.Background(), fakeKernel, "xz", "--check=crc32", "--stdout")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Locate(buildImage(t, 0x020f, xzData, uint32(len(fakeKernel))))
	if err != nil {
		t.Fatalf("Locate() error = %v", err)
	}
	if p.Format != XZ {
		t.Fatalf("Format = %q, want %q", p.Format, XZ)
	}
	got, err := p.Decompress(context.Background())
	if err != nil {
		t.Fatalf("Decompress() error = %v", err)
	}
	if !bytes.Equal(got, fakeKernel) {
		t.Error("Decompress() output differs from the input")
	}
}
