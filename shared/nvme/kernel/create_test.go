package kernel

import (
	"errors"
	"testing"

	"github.com/nvmeof/nvmeof/shared/nvme/kernel/kerneltest"
)

// Create never adopts: a matching controller that exists, someone else's
// or its own earlier one, is ErrControllerExists, and none is added. The
// fabrics backend learns it from the kernel's EALREADY, nvme-cli's from
// its own look.
func TestCreateNeverAdopts(t *testing.T) {
	for _, backend := range []string{BackendFabrics, BackendNVMeCLI} {
		t.Run(backend, func(t *testing.T) {
			h := kerneltest.New(t)
			h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne)
			var c Connector = newTestConnector(t, h)
			if backend == BackendNVMeCLI {
				c = newCLIConnector(t, h)
			}
			conn := valid(t, connectionTo(nqnOne))
			admin := adminConnect(t, h, adminOptions(nqnOne))
			if _, err := c.Create(t.Context(), conn); !errors.Is(err, ErrControllerExists) {
				t.Fatalf("Create beside %s: %v, want ErrControllerExists", admin, err)
			}
			if n := len(h.Controllers()); n != 1 {
				t.Fatalf("%d controllers, want the admin's alone", n)
			}
			if err := c.Disconnect(t.Context(), Controller{Name: admin}); err != nil {
				t.Fatal(err)
			}
			ctrl, err := c.Create(t.Context(), conn)
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if _, err := c.Create(t.Context(), conn); !errors.Is(err, ErrControllerExists) {
				t.Fatalf("Create beside its own %s: %v, want ErrControllerExists", ctrl.Name, err)
			}
			if n := len(h.Controllers()); n != 1 {
				t.Fatalf("%d controllers, want one", n)
			}
		})
	}
}
