package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

func TestBadFlagsExitTwo(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--nope"}, "flag provided but not defined"},
		{"no endpoint", []string{"--hostnqn=nqn.x:y", "--hostid-file=" + filepath.Join(dir, "none")}, "--endpoint"},
		{"bad connector", []string{"--endpoint=unix:///x.sock", "--connector=spdk"}, "--connector"},
		{"bad max volumes", []string{"--endpoint=unix:///x.sock", "--max-volumes=-1"}, "--max-volumes"},
		{"bad log level", []string{"--endpoint=unix:///x.sock", "--log-level=loud"}, "--log-level"},
		{"zero heal interval", []string{"--endpoint=unix:///x.sock", "--heal-interval=0s"}, "--heal-interval"},
		{"heal jitter above 1", []string{"--endpoint=unix:///x.sock", "--heal-jitter=1.5"}, "--heal-jitter"},
		{"negative heal jitter", []string{"--endpoint=unix:///x.sock", "--heal-jitter=-0.1"}, "--heal-jitter"},
		{"zero health interval", []string{"--endpoint=unix:///x.sock", "--health-interval=0s"}, "--health-interval 0s must be positive"},
		{"negative health interval", []string{"--endpoint=unix:///x.sock", "--health-interval=-1s"}, "--health-interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CSI_ENDPOINT", "")
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, &stdout, &stderr); code != 2 {
				t.Fatalf("exit %d, want 2; stderr: %s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tt.want)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--version"}, &stdout, &stderr); code != 0 || !strings.HasPrefix(stdout.String(), "nvmeof-csi ") {
		t.Fatalf("exit %d, output %q", code, stdout.String())
	}
}

// A host ID file named on the command line must exist: falling back to an
// ID derived from the host NQN would connect as another host than the one
// the target allows.
func TestMissingHostIDFileIsAnError(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	args := []string{"--endpoint=unix://" + filepath.Join(dir, "csi.sock"), "--state-dir=" + filepath.Join(dir, "state"),
		"--hostnqn=nqn.2014-08.org.nvmexpress:uuid:0aaaaaaa-0000-4000-8000-00000000000a",
		"--hostid-file=" + filepath.Join(dir, "missing-hostid")}
	if code := run(args, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1; stderr: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "missing-hostid") || !strings.Contains(stderr.String(), "no such file") {
		t.Errorf("stderr %q does not name the missing file", stderr.String())
	}
}
