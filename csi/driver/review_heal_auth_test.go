package driver_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nvmeof/nvmeof/csi/driver"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
)

// The healer keeps DH-HMAC-CHAP secrets in memory only; after a restart
// its warning tells the operator to "stage the volume again". A repeated
// NodeStageVolume with the secrets must hand them to the healer, or the
// advice cannot work and the missing path stays down until an unstage.
func TestRepeatStageAfterRestartGivesTheHealerItsSecrets(t *testing.T) {
	e, clk := newMultipathEnv(t)
	req := e.twoPortalReq("vol", "1", mountCap("", rwo))
	req.Secrets = map[string]string{"dhchap_secret": testHostKey}
	if _, err := e.drv.NodeStageVolume(context.Background(), req); err != nil {
		t.Fatalf("stage: %v", err)
	}
	// The plugin restarts: the secrets are gone from memory.
	e.drv = e.driverWith(func(c *driver.Config) {
		c.Connector = e.fake
		c.Now = clk.Now
		c.HealInterval = 10 * time.Second
		c.HealJitter = 0
	})
	cs, _ := e.fake.Controllers()
	if err := e.fake.RemoveController(cs[1].Name); err != nil {
		t.Fatal(err)
	}
	if n, err := e.drv.HealPaths(context.Background()); n != 0 || err != nil {
		t.Fatalf("HealPaths without secrets = %d, %v; want 0, nil", n, err)
	}
	if !strings.Contains(e.log.String(), "stage the volume again") {
		t.Fatalf("no advice to stage again:\n%s", e.log)
	}
	// The operator follows the advice.
	if _, err := e.drv.NodeStageVolume(context.Background(), req); err != nil {
		t.Fatalf("repeat stage: %v", err)
	}
	clk.advance(time.Hour) // past any backoff
	if n, err := e.drv.HealPaths(context.Background()); n != 1 || err != nil {
		t.Fatalf("HealPaths after the repeated stage with secrets = %d, %v; want the missing path healed", n, err)
	}
	if got := e.ports(kernel.StateLive); !slices.Equal(got, []string{"4420", "4421"}) {
		t.Fatalf("live paths %v after healing", got)
	}
}
