package initrd

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestOverlayValidate(t *testing.T) {
	tests := []struct {
		name    string
		overlay Overlay
		wantErr bool
	}{
		{name: "test mode", overlay: Overlay{Mode: ModeTest, TestArgs: []string{"-test.run=^TestA$|B"}}},
		{name: "shell mode", overlay: Overlay{Mode: ModeShell}},
		{name: "unknown mode", overlay: Overlay{Mode: "debug"}, wantErr: true},
		{name: "newline in argument", overlay: Overlay{Mode: ModeTest, TestArgs: []string{"-test.run=A\nB"}}, wantErr: true},
		{name: "path as binary name", overlay: Overlay{Mode: ModeTest, Binaries: []Binary{{Name: "../init", Path: "x"}}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.overlay.Validate()
			if tt.wantErr != (err != nil) {
				t.Fatalf("Validate() = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalidOverlay) {
				t.Errorf("Validate() = %v, want ErrInvalidOverlay", err)
			}
		})
	}
}

// TestComposeUnpacks checks the composed initrd the way the kernel reads
// it: the base archive, zero padding to 4 bytes, then the overlay.
func TestComposeUnpacks(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("cpio is not installed; `make lab` installs it")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "lab.test")
	if err := os.WriteFile(bin, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A base whose length is not a multiple of 4, as a compressed image is.
	base := filepath.Join(dir, "base")
	if err := os.WriteFile(base, []byte("base"+"xyz"), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "out", "initrd")
	o := Overlay{
		Mode:     ModeTest,
		Share:    true,
		Binaries: []Binary{{Name: "lab.test", Path: bin}},
		TestArgs: []string{"-test.v", "-test.run=Smoke|Target X"},
	}
	if err := Compose(base, o, dst); err != nil {
		t.Fatalf("Compose() = %v", err)
	}
	data, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("basexyz\x00")) || !bytes.HasPrefix(data[8:], []byte("070701")) {
		t.Fatalf("initrd starts %q, want the base, one zero byte, then a newc header", data[:min(len(data), 14)])
	}

	unpacked := t.TempDir()
	cmd := exec.CommandContext(t.Context(), "cpio", "-i", "-d", "--quiet", "-H", "newc")
	cmd.Dir = unpacked
	cmd.Stdin = bytes.NewReader(data[8:])
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v: %s", err, out)
	}
	want := map[string]string{
		"lab/bin/lab.test": "binary",
		"lab/env":          "mode=test\nshare=1\n",
		"lab/args":         "-test.v\n-test.run=Smoke|Target X\n",
	}
	for name, content := range want {
		got, err := os.ReadFile(filepath.Join(unpacked, name))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != content {
			t.Errorf("%s = %q, want %q", name, got, content)
		}
	}
}
