package kernel

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

func TestLoadHost(t *testing.T) {
	const (
		nqn = "nqn.2014-08.org.nvmexpress:uuid:0AAAAAAA-0000-4000-8000-00000000000A"
		id  = "0aaaaaaa-0000-4000-8000-0000000000bb"
	)
	tests := []struct {
		name        string
		files       map[string]string // hostnqn, hostid
		src         HostSources       // file paths are filled in
		want        nvme.Host
		wantDerived bool
		wantErr     string
	}{
		{name: "both files", files: map[string]string{"hostnqn": nqn + "\n", "hostid": id + "\n"}, want: nvme.Host{NQN: nqn, ID: id}},
		{name: "id derived from uuid nqn", files: map[string]string{"hostnqn": nqn}, want: nvme.Host{NQN: nqn, ID: "0aaaaaaa-0000-4000-8000-00000000000a"}, wantDerived: true},
		{name: "value wins over its file", files: map[string]string{"hostnqn": nqn, "hostid": id}, src: HostSources{NQN: "nqn.2026-01.io.example:node-7"}, want: nvme.Host{NQN: "nqn.2026-01.io.example:node-7", ID: id}},
		{name: "only values", src: HostSources{NQN: "host-a", ID: id}, want: nvme.Host{NQN: "host-a", ID: id}},
		{name: "nothing", wantErr: "invalid hostnqn: is required"},
		{name: "no id", files: map[string]string{"hostnqn": "host-a"}, wantErr: "invalid hostid: is required"},
		{name: "a named id file that is missing is an error, not a derived id", files: map[string]string{"hostnqn": nqn}, src: HostSources{IDFileRequired: true}, wantErr: "no such file"},
		{name: "a named nqn file that is missing is an error", src: HostSources{ID: id, NQNFileRequired: true}, wantErr: "no such file"},
		{name: "bad id", files: map[string]string{"hostnqn": "host-a", "hostid": "not-a-uuid"}, wantErr: `invalid hostid "not-a-uuid": must be a UUID`},
		{name: "nqn injection", src: HostSources{NQN: "h,hostid=x", ID: id}, wantErr: `invalid hostnqn "h,hostid=x": must not contain ','`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			src := tt.src
			src.NQNFile, src.IDFile = filepath.Join(dir, "hostnqn"), filepath.Join(dir, "hostid")
			got, derived, err := LoadHost(src)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || derived != tt.wantDerived {
				t.Fatalf("LoadHost = %+v (derived %v), want %+v (derived %v)", got, derived, tt.want, tt.wantDerived)
			}
		})
	}
}
