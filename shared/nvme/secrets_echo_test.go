package nvme_test

import (
	"strings"
	"testing"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// A secret key is its snake_case name or its camelCase spelling, nothing
// else; what an error repeats of a key is capped (nvme.MaxEcho).
func TestDuplicateSecretKeyIsNotEchoedWhole(t *testing.T) {
	long := "d" + strings.Repeat("_", 1<<20) + "hchap_secret"
	_, err := nvme.ParseSecrets(map[string]string{"dhchap_secret": "x", long: "y"})
	if err == nil {
		t.Fatal("a secret given twice was accepted")
	}
	if n := len(err.Error()); n > 4*nvme.MaxEcho {
		t.Fatalf("error is %d bytes long: it echoes a 1 MiB key", n)
	}
}

func TestSecretKeySpellings(t *testing.T) {
	for k, ok := range map[string]bool{
		"dhchap_secret": true, "dhchapSecret": true, "DHCHAPSECRET": true, "dhchapCtrlSecret": true, "dhchap_ctrl_secret": true,
		"dhchap__secret": false, "d_hchap_secret": false, "Dhchap_Secret": false, "dhchap_ctrlSecret": false,
	} {
		_, err := nvme.ParseSecrets(map[string]string{k: "x"})
		known := err == nil || !strings.Contains(err.Error(), "is not a known secret")
		if known != ok {
			t.Errorf("%q accepted as a secret key: %v, want %v (%v)", k, known, ok, err)
		}
	}
}
