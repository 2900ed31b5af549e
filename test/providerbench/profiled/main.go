// Command profiled serves the nvme provider like terraform-provider-nvme and
// writes a CPU profile of its whole life to $NVME_CPU_PROFILE, to see where
// a real `terraform plan` spends the provider's time (test/providerbench/plan.sh
// with PROFILE=1). It is a bench tool, never shipped.
package main

import (
	"log"
	"os"
	"runtime/pprof"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6/tf6server"

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
	if err := tf6server.Serve(provider.Address, provider.NewServer("bench")); err != nil {
		log.Print(err)
	}
}
