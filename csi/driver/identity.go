package driver

import (
	"context"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func (d *Driver) GetPluginInfo(context.Context, *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	return &csi.GetPluginInfoResponse{Name: d.cfg.DriverName, VendorVersion: d.cfg.Version}, nil
}

// GetPluginCapabilities advertises no controller service: Nomad would then
// demand a healthy controller for every volume, and there is none.
func (d *Driver) GetPluginCapabilities(context.Context, *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	return &csi.GetPluginCapabilitiesResponse{}, nil
}

// Probe is ready when the kernel can make NVMe/TCP controllers. The reason
// it is not is logged when it changes, not at every probe.
func (d *Driver) Probe(context.Context, *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	reason := ""
	if err := d.cfg.KernelCheck(); err != nil {
		reason = err.Error()
	}
	d.probeMu.Lock()
	changed := reason != d.lastProbe
	d.lastProbe = reason
	d.probeMu.Unlock()
	if changed && reason != "" {
		d.log.Warn("not ready: the kernel cannot connect NVMe/TCP", "reason", reason)
	} else if changed {
		d.log.Info("ready: the kernel can connect NVMe/TCP")
	}
	return &csi.ProbeResponse{Ready: wrapperspb.Bool(reason == "")}, nil
}
