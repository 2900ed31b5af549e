// Command rootcopy copies programs, with their shared libraries and loader,
// from an unpacked Debian tree into the lab's image root (see
// internal/rootfs). Programs are named on the command line or, one a line,
// in a list file (# comments).
//
//	rootcopy -tree userland/root -dest image/rootfs -list image/binaries nvme
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/nvmeof/nvmeof/test/lab/internal/rootfs"
)

func main() {
	tree := flag.String("tree", "", "unpacked tree (dpkg -x of a release's packages)")
	dest := flag.String("dest", "", "image root to copy into")
	list := flag.String("list", "", "file naming programs, one a line")
	flag.Parse()
	if *tree == "" || *dest == "" {
		fmt.Fprintln(os.Stderr, "rootcopy: -tree and -dest are required")
		os.Exit(2)
	}
	names := flag.Args()
	if *list != "" {
		more, err := readList(*list)
		if err != nil {
			fmt.Fprintln(os.Stderr, "rootcopy:", err)
			os.Exit(1)
		}
		names = append(names, more...)
	}
	c := rootfs.Copier{Tree: rootfs.Tree{Root: *tree}, Dest: *dest}
	for _, name := range names {
		p, err := c.Tree.FindProgram(name)
		if err == nil {
			err = c.CopyProgram(p)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "rootcopy:", err)
			os.Exit(1)
		}
	}
}

func readList(file string) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("program list: %w", err)
	}
	defer func() { _ = f.Close() }()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			names = append(names, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("program list %s: %w", file, err)
	}
	return names, nil
}
