package nvme

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/nvmeof/nvmeof/shared/nvme/nvmetest"
)

func TestParseSecretsRejectsSettingGivenTwice(t *testing.T) {
	keyA := nvmetest.DHCHAPKey(bytes.Repeat([]byte{1}, 32))
	keyB := nvmetest.DHCHAPKey(bytes.Repeat([]byte{2}, 32))
	tests := []struct {
		name    string
		m       map[string]string
		wantErr string
	}{
		{
			name:    "host secret snake and camel",
			m:       map[string]string{"dhchap_secret": keyA, "dhchapSecret": keyB},
			wantErr: `invalid dhchap_secret (value redacted): is set twice, as "dhchapSecret" and as "dhchap_secret"; give it once`,
		},
		{
			name:    "ctrl secret snake and camel",
			m:       map[string]string{"dhchap_secret": keyA, "dhchap_ctrl_secret": keyA, "dhchapCtrlSecret": keyB},
			wantErr: `invalid dhchap_ctrl_secret (value redacted): is set twice, as "dhchapCtrlSecret" and as "dhchap_ctrl_secret"; give it once`,
		},
		{
			name:    "given twice with the same value",
			m:       map[string]string{"dhchap_secret": keyA, "DHCHAPSecret": keyA},
			wantErr: `invalid dhchap_secret (value redacted): is set twice, as "DHCHAPSecret" and as "dhchap_secret"; give it once`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSecrets(tt.m)
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("ParseSecrets = %v, %v; want error %q", got, err, tt.wantErr)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v is not ErrInvalid", err)
			}
			for _, v := range tt.m {
				if strings.Contains(err.Error(), v) {
					t.Fatalf("error shows a secret value: %v", err)
				}
			}
		})
	}
}
