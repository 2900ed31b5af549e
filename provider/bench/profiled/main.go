// Command profiled serves the nvme provider like terraform-provider-nvme and
// writes a CPU profile of its whole life to $NVME_CPU_PROFILE, to see where
// a real `terraform plan` spends the provider's time (provider/bench/plan.sh
// with PROFILE=1). It is a bench tool, never shipped.
package main

import (
	"context"
	"log"
	"os"
	"runtime/pprof"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/nvmeof/nvmeof/provider"
)

func main() {
	if err := provider.QuietSDKLogs(os.LookupEnv, os.Setenv); err != nil {
		log.Fatal(err)
	}
	if out := os.Getenv("NVME_CPU_PROFILE"); out != "" {
		f, err := os.CreateTemp(out, "cpu-*.pprof")
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = f.Close()
		}()
	}
	opts := providerserver.ServeOpts{Address: provider.Address, ProtocolVersion: 6}
	if err := providerserver.Serve(context.Background(), provider.New("bench"), opts); err != nil {
		log.Print(err)
	}
}
