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
