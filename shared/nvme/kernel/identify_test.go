package kernel

import (
	"reflect"
	"testing"

	"github.com/nvmeof/nvmeof/shared/nvme/kernel/kerneltest"
)

// Identify is NamespaceOf without the controllers: the same namespace,
// and the same refusals.
func TestIdentify(t *testing.T) {
	tests := []struct {
		name    string
		fixture func(*testing.T) *kerneltest.Host
		device  string
	}{
		{name: "head disk reached by two controllers", fixture: multipathHost, device: "/dev/nvme1n2"},
		{name: "head disk reached by one controller", fixture: multipathHost, device: "nvme1n3"},
		{name: "plain disk", fixture: plainHost, device: "/dev/nvme1n1"},
		{name: "a path disk is no device", fixture: multipathHost, device: "nvme1c3n1"},
		{name: "unknown disk", fixture: plainHost, device: "nvme9n9"},
		{name: "not nvme", fixture: plainHost, device: "/dev/sda"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newTestConnector(t, tt.fixture(t))
			want, _, wantErr := k.NamespaceOf(tt.device)
			got, err := k.Identify(tt.device)
			if (err != nil) != (wantErr != nil) || !reflect.DeepEqual(got, want) {
				t.Fatalf("Identify = %+v, %v; NamespaceOf says %+v, %v", got, err, want, wantErr)
			}
		})
	}
}
