package cpio

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriterHeaderLayout(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.File("ab", 0o755, 3, strings.NewReader("xyz")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out := buf.Bytes()
	// 110-byte header + "ab\0" padded to 116, then 3 data bytes padded to 120.
	wantHeader := "070701" + "00000001" + "000081ed" + "00000000" + "00000000" + "00000001" +
		"00000000" + "00000003" + "00000000" + "00000000" + "00000000" + "00000000" + "00000003" + "00000000"
	if got := string(out[:headerSize]); got != wantHeader {
		t.Errorf("header = %q\nwant     %q", got, wantHeader)
	}
	if got := string(out[headerSize:120]); got != "ab\x00\x00\x00\x00xyz\x00" {
		t.Errorf("name and data = %q", got)
	}
	if len(out)%4 != 0 {
		t.Errorf("archive length %d is not 4-byte aligned", len(out))
	}
	if !bytes.Contains(out[120:], []byte(trailer+"\x00")) {
		t.Error("trailer missing")
	}
}

func TestWriterRejectsBadNames(t *testing.T) {
	tests := []string{"", "/abs", "a//b", "a/../b", "./a", trailer, "a\x00b"}
	for _, name := range tests {
		t.Run(name, func(t *testing.T) {
			w := NewWriter(&bytes.Buffer{})
			if err := w.Dir(name, 0o755); !errors.Is(err, ErrBadName) {
				t.Errorf("Dir(%q) error = %v, want %v", name, err, ErrBadName)
			}
		})
	}
}

func TestWriterShortData(t *testing.T) {
	w := NewWriter(&bytes.Buffer{})
	if err := w.File("f", 0o644, 10, strings.NewReader("short")); err == nil {
		t.Fatal("File() with less data than its size succeeded")
	}
}

// TestArchiveReadsBackWithCpio checks the archive against GNU cpio, the tool
// that builds the base image, so both halves of the initramfs agree.
func TestArchiveReadsBackWithCpio(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("cpio is not installed; `make lab` installs it")
	}
	var buf bytes.Buffer
	w := NewWriter(&buf)
	files := map[string]string{"lab/bin/one": "first file", "lab/args": "-test.v\n-test.run=^TestX$\n"}
	for _, step := range []func() error{
		func() error { return w.Dir("lab", 0o755) },
		func() error { return w.Dir("lab/bin", 0o755) },
		func() error {
			return w.File("lab/bin/one", 0o755, int64(len(files["lab/bin/one"])), strings.NewReader(files["lab/bin/one"]))
		},
		func() error {
			return w.File("lab/args", 0o644, int64(len(files["lab/args"])), strings.NewReader(files["lab/args"]))
		},
		w.Close,
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	cmd := exec.CommandContext(t.Context(), "cpio", "-i", "-d", "--quiet", "-H", "newc")
	cmd.Dir = dir
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v: %s", err, out)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	info, err := os.Stat(filepath.Join(dir, "lab/bin/one"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o755 {
		t.Errorf("lab/bin/one mode = %v, want 0755", info.Mode().Perm())
	}
}
