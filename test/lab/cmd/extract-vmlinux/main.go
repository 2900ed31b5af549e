// Command extract-vmlinux writes the uncompressed kernel ELF found inside a
// bzImage (vmlinuz), so the lab can boot it through QEMU's PVH entry.
//
//	extract-vmlinux -in /boot/vmlinuz-6.1.0-56-amd64 -out vmlinux
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/nvmeof/nvmeof/test/lab/internal/bzimage"
)

func main() {
	in := flag.String("in", "", "bzImage (vmlinuz) to read")
	out := flag.String("out", "", "where to write the uncompressed ELF kernel")
	flag.Parse()
	if *in == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "extract-vmlinux: -in and -out are required")
		os.Exit(2)
	}
	if err := extract(context.Background(), *in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "extract-vmlinux:", err)
		os.Exit(1)
	}
}

func extract(ctx context.Context, in, out string) error {
	image, err := os.ReadFile(in)
	if err != nil {
		return fmt.Errorf("read kernel image: %w", err)
	}
	payload, err := bzimage.Locate(image)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	elf, err := payload.Decompress(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	// Written beside the target and renamed, so an interrupted run never
	// leaves a truncated kernel that a later run would boot.
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, elf, 0o600); err != nil {
		return fmt.Errorf("write kernel: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("rename kernel into place: %w", err)
	}
	fmt.Printf("extract-vmlinux: %s payload, %d bytes -> %s\n", payload.Format, len(elf), out)
	return nil
}
