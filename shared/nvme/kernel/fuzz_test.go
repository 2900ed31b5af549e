package kernel

import (
	"strings"
	"testing"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// The kernel's texts are parsed without trusting them: any input gives a
// value or an error, never a panic, and what parses is what was written.
func FuzzParseCtrlAddress(f *testing.F) {
	for _, s := range []string{
		"traddr=127.0.0.1,trsvcid=4420,src_addr=127.0.0.1",
		"traddr=fe80::1%eth0,trsvcid=4420,host_traddr=fe80::2,host_iface=eth0",
		"traddr=,trsvcid=", "=,=", "traddr", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := parseCtrlAddress(s)
		if err != nil {
			return
		}
		if a.TrAddr == "" || strings.Contains(a.TrAddr, ",") {
			t.Fatalf("parseCtrlAddress(%q) = %+v", s, a)
		}
	})
}

func FuzzParseFabricsReply(f *testing.F) {
	for _, s := range []string{"instance=3,cntlid=7\n", "instance=-1,cntlid=-1,", "cntlid=1", "instance=x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseFabricsReply(s)
		if err == nil && r.Instance < 0 {
			t.Fatalf("parseFabricsReply(%q) = %+v without an error", s, r)
		}
	})
}

// nvme-cli's stderr never shows a secret through cliFailure, and a value
// of the connection never decides the errno.
func FuzzCLIFailure(f *testing.F) {
	for _, s := range []string{"Failed to write to /dev/nvme-fabrics: Connection refused", "already connected", ""} {
		f.Add(s, "nqn.2026-01.io.example:x")
	}
	secret := nvme.Secret("DHHC-1:00:c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0eHh4eA==:")
	f.Fuzz(func(t *testing.T, stderr, nqn string) {
		c := connectionTo(nqn)
		c.Auth.HostSecret = secret
		msg, _ := cliFailure(stderr+secret.Reveal(), c)
		if strings.Contains(msg, secret.Reveal()) {
			t.Fatalf("message shows the secret: %q", msg)
		}
		_, alone := cliFailure(stderr, connectionTo(""))
		if nqn != "" && !strings.Contains(stderr, nqn) {
			if _, with := cliFailure(stderr, connectionTo(nqn)); with != alone {
				t.Fatalf("errno depends on an NQN that is not in the text: %v vs %v", with, alone)
			}
		}
	})
}
