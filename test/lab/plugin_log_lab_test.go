//go:build lab

package lab

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// fileLog reads the JSON lines a plugin wrote to a file.
type fileLog string

// lines counts the lines so far, a mark for entries.
func (f fileLog) lines(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(string(f))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// entries parses the lines written since the mark.
func (f fileLog) entries(t *testing.T, since int) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(string(f))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	sc.Buffer(nil, 1<<20)
	for i := 0; sc.Scan(); i++ {
		var m map[string]any
		if i >= since && json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}
