// Command nomad-examples checks a directory of Nomad files without a
// nomad binary (see package examplecheck); `make nomad-examples` runs it
// on examples/nomad. It exits 1 when any file has a problem.
package main

import (
	"fmt"
	"os"

	"github.com/nvmeof/nvmeof/test/nomad/examplecheck"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: nomad-examples DIR")
		os.Exit(2)
	}
	results, err := examplecheck.Check(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "nomad-examples:", err)
		os.Exit(1)
	}
	for _, r := range results {
		state := "ok"
		if len(r.Problems) > 0 {
			state = "PROBLEM"
		}
		fmt.Printf("%-8s %s: %s\n", state, r.File, r.Summary)
		for _, p := range r.Problems {
			fmt.Printf("         problem: %s\n", p)
		}
		for _, n := range r.Notes {
			fmt.Printf("         note: %s\n", n)
		}
	}
	if err := examplecheck.Failed(results); err != nil {
		fmt.Fprintln(os.Stderr, "nomad-examples:", err)
		os.Exit(1)
	}
	fmt.Printf("nomad-examples: %d files formatted as nomad fmt writes them, decoded as Nomad decodes them, nothing Nomad or the plugin would refuse\n", len(results))
}
