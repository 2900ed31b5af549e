package driver

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
)

// Metrics is the plugin's Prometheus registry. Nomad never asks a node
// plugin about volume health, so these are how its users see it.
type Metrics struct {
	registry    *prometheus.Registry
	rpcs        *prometheus.CounterVec
	rpcSeconds  *prometheus.HistogramVec
	controllers *prometheus.GaugeVec
	reconnects  prometheus.Counter
	fsErrors    prometheus.Gauge
}

// NewMetrics registers the plugin's metrics on a registry of its own.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		rpcs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nvmeof_csi_rpc_total", Help: "CSI calls served, by method and gRPC code.",
		}, []string{"method", "code"}),
		rpcSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "nvmeof_csi_rpc_duration_seconds", Help: "Time to serve a CSI call, by method and gRPC code.",
			Buckets: []float64{.001, .005, .01, .03, .1, .3, 1, 3, 10, 30, 120},
		}, []string{"method", "code"}),
		controllers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nvmeof_csi_controllers", Help: "NVMe controllers on this node, by kernel state.",
		}, []string{"state"}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nvmeof_csi_controller_reconnects_total", Help: "Kernel reconnects observed: a controller seen not live and then live again.",
		}),
		fsErrors: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nvmeof_csi_volumes_fs_errors", Help: "Staged volumes whose file system recorded errors or turned read-only.",
		}),
	}
	m.registry.MustRegister(m.rpcs, m.rpcSeconds, m.controllers, m.reconnects, m.fsErrors)
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// Registry is for tests and callers adding their own collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

func (m *Metrics) observeRPC(method, code string, d time.Duration) {
	m.rpcs.WithLabelValues(method, code).Inc()
	m.rpcSeconds.WithLabelValues(method, code).Observe(d.Seconds())
}

// monitorState is what the monitor remembers between two looks: the last
// state of each controller, to count reconnects.
type monitorState struct {
	mu   sync.Mutex
	last map[string]string
}

var controllerStates = []string{kernel.StateLive, kernel.StateConnecting, kernel.StateResetting, kernel.StateDeleting, kernel.StateDeletingIO, kernel.StateDead, kernel.StateNew}

// Observe reads the controllers and the staged volumes' health once and
// updates the gauges; Monitor calls it on a ticker.
func (d *Driver) Observe() {
	ctrls, err := d.cfg.Connector.Controllers()
	if err != nil {
		d.log.Warn("metrics: list controllers", "error", err)
		return
	}
	counts := map[string]int{}
	d.monitor.mu.Lock()
	if d.monitor.last == nil {
		d.monitor.last = map[string]string{}
	}
	seen := map[string]bool{}
	for _, c := range ctrls {
		counts[c.State]++
		seen[c.Name] = true
		prev, known := d.monitor.last[c.Name]
		if known && prev != kernel.StateLive && c.State == kernel.StateLive {
			d.metrics.reconnects.Inc()
			d.log.Info("controller reconnected", "controller", c.Name, "nqn", c.Subsystem, "was", prev)
		} else if c.State != prev && c.State != kernel.StateLive {
			d.log.Warn("controller not live", "controller", c.Name, "nqn", c.Subsystem, "state", c.State)
		}
		d.monitor.last[c.Name] = c.State
	}
	for name := range d.monitor.last {
		if !seen[name] {
			delete(d.monitor.last, name)
		}
	}
	d.monitor.mu.Unlock()
	for _, s := range controllerStates {
		d.metrics.controllers.WithLabelValues(s).Set(float64(counts[s]))
	}
	d.metrics.fsErrors.Set(float64(d.volumesWithFSErrors()))
}

func (d *Driver) volumesWithFSErrors() int {
	recs, err := d.state.stages()
	if err != nil {
		d.log.Warn("metrics: read state", "error", err)
		return 0
	}
	entries, err := d.mounts.Mounts()
	if err != nil {
		d.log.Warn("metrics: read mounts", "error", err)
		return 0
	}
	n := 0
	for _, r := range recs {
		if d.volumes.inUse(r.VolumeID) {
			continue // an operation is under way: it may be unmounting the path
		}
		path := stagedPath(r)
		at := mountsAt(entries, path)
		if len(at) == 0 || r.Block {
			continue
		}
		h, err := d.deviceHealth(at[0].Device, path)
		if err == nil && (h.FSErrors > 0 || h.ReadOnly) {
			n++
			d.log.Warn("file system errors", "volume_id", r.VolumeID, "device", at[0].Device, "errors", h.FSErrors, "read_only", h.ReadOnly, "message", h.Message)
		}
	}
	return n
}

// Monitor runs Observe every interval until ctx ends.
func (d *Driver) Monitor(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		d.Observe()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
