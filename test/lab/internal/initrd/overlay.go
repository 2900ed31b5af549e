// Package initrd assembles the initramfs of one lab run: the cached base
// image (kernel modules, busybox, mkfs tools, /init) followed by a small
// overlay archive holding this run's binaries and the instructions for /init.
package initrd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/nvmeof/nvmeof/test/lab/internal/cpio"
)

// Modes /init understands (the "mode" key of /lab/env).
const (
	ModeTest  = "test"  // run /lab/bin/lab.test, print LAB-RESULT, power off
	ModeShell = "shell" // set the target up, then give a shell on the console
)

// Binary is a host file placed at /lab/bin/<Name> in the guest.
type Binary struct {
	Name string
	Path string
}

// Overlay is what one run adds to the base image.
type Overlay struct {
	Binaries []Binary
	// TestArgs go to the test binary, one per line in /lab/args, so no
	// quoting is involved on either side.
	TestArgs []string
	Mode     string
	// Share tells /init to mount the 9p share (vm.ShareTag) at /lab/share.
	Share bool
}

var binaryName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ErrInvalidOverlay wraps every Overlay validation failure.
var ErrInvalidOverlay = errors.New("invalid initrd overlay")

// Validate checks what /init will read back line by line.
func (o Overlay) Validate() error {
	var errs []error
	if o.Mode != ModeTest && o.Mode != ModeShell {
		errs = append(errs, fmt.Errorf("mode %q is neither %q nor %q", o.Mode, ModeTest, ModeShell))
	}
	for _, b := range o.Binaries {
		if !binaryName.MatchString(b.Name) {
			errs = append(errs, fmt.Errorf("binary name %q is not a plain file name", b.Name))
		}
	}
	for _, a := range o.TestArgs {
		if strings.ContainsAny(a, "\n\x00") {
			errs = append(errs, fmt.Errorf("test argument %q holds a newline or NUL", a))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidOverlay, err)
	}
	return nil
}

// env renders /lab/env: fixed keys, values /init matches with case, never
// evaluates.
func (o Overlay) env() string {
	share := "0"
	if o.Share {
		share = "1"
	}
	return "mode=" + o.Mode + "\nshare=" + share + "\n"
}

func (o Overlay) args() string {
	if len(o.TestArgs) == 0 {
		return ""
	}
	return strings.Join(o.TestArgs, "\n") + "\n"
}

// WriteArchive writes the overlay as a newc cpio archive.
func (o Overlay) WriteArchive(w io.Writer) error {
	if err := o.Validate(); err != nil {
		return err
	}
	cw := cpio.NewWriter(w)
	if err := cw.Dir("lab", 0o755); err != nil {
		return fmt.Errorf("overlay: %w", err)
	}
	if err := cw.Dir("lab/bin", 0o755); err != nil {
		return fmt.Errorf("overlay: %w", err)
	}
	for _, b := range o.Binaries {
		if err := addFile(cw, "lab/bin/"+b.Name, b.Path); err != nil {
			return err
		}
	}
	for name, content := range map[string]string{"lab/env": o.env(), "lab/args": o.args()} {
		if err := cw.File(name, 0o644, int64(len(content)), strings.NewReader(content)); err != nil {
			return fmt.Errorf("overlay: %w", err)
		}
	}
	if err := cw.Close(); err != nil {
		return fmt.Errorf("overlay: %w", err)
	}
	return nil
}

func addFile(cw *cpio.Writer, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("overlay binary: %w", err)
	}
	defer func() { _ = f.Close() }() // read-only: closing cannot lose data
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("overlay binary: %w", err)
	}
	if err := cw.File(name, 0o755, info.Size(), f); err != nil {
		return fmt.Errorf("overlay binary %s: %w", path, err)
	}
	return nil
}

// Compose writes base followed by the overlay to dst. The kernel unpacks
// concatenated archives, compressed or not, when each starts 4-byte aligned;
// zero bytes in between are skipped.
func Compose(base string, o Overlay, dst string) (err error) {
	if err := o.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return fmt.Errorf("initrd directory: %w", err)
	}
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("create initrd: %w", err)
	}
	defer func() {
		if cerr := out.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close initrd: %w", cerr)
		}
	}()
	in, err := os.Open(base)
	if err != nil {
		return fmt.Errorf("base image: %w", err)
	}
	defer func() { _ = in.Close() }() // read-only: closing cannot lose data
	n, err := io.Copy(out, in)
	if err != nil {
		return fmt.Errorf("copy base image: %w", err)
	}
	if rem := n % 4; rem != 0 {
		if _, err := out.Write(make([]byte, 4-rem)); err != nil {
			return fmt.Errorf("pad base image: %w", err)
		}
	}
	return o.WriteArchive(out)
}
