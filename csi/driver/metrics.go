package driver

import (
	"context"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nvmeof/nvmeof/shared/nvme"
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

	pathState       *prometheus.GaugeVec
	pathANA         *prometheus.GaugeVec
	pathReconnects  *prometheus.CounterVec
	pathNotLive     *prometheus.CounterVec
	pathHeals       *prometheus.CounterVec
	volumePaths     *prometheus.GaugeVec
	volumeLivePaths *prometheus.GaugeVec
	volumesDegraded prometheus.Gauge
}

// Labels naming a path: the subsystem, the target address and port it
// goes to, and the source it leaves from (host_traddr, host_iface; "" when
// unset). Two NICs to one target port are two paths that differ only in
// their source: without it their series would be one.
var portalLabels = []string{"subsystem", "address", "port", "host_traddr", "host_iface"}

// Labels of the per-path gauges: the path and the controller serving it
// ("" for a portal of a staged volume that has none).
var pathLabels = slices.Concat(portalLabels, []string{"controller"})

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
		pathState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nvmeof_csi_path_state",
			Help: "1 for the state each NVMe-oF path of this node is in, 0 for the others: the kernel's controller state (live, connecting, resetting, ...) or missing, a portal of a staged volume with no controller.",
		}, slices.Concat(pathLabels, []string{"state"})),
		pathANA: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nvmeof_csi_path_ana_state",
			Help: "1 for the ANA state the target gives each path to a staged namespace (optimized, non-optimized, inaccessible, persistent-loss, change), 0 for the others.",
		}, slices.Concat(pathLabels, []string{"nsid", "state"})),
		pathReconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nvmeof_csi_path_reconnects_total", Help: "Paths seen not live (or missing) and then live again, by path.",
		}, portalLabels),
		pathNotLive: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nvmeof_csi_path_not_live_seconds_total", Help: "Seconds each path was seen not live (or missing), by path.",
		}, portalLabels),
		pathHeals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nvmeof_csi_path_heals_total", Help: "Missing paths of staged volumes the healer connected again (reconnected) or found back and took over (adopted).",
		}, slices.Concat(portalLabels, []string{"result"})),
		volumePaths: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nvmeof_csi_volume_paths", Help: "Portals of each staged volume.",
		}, []string{"volume_id", "subsystem"}),
		volumeLivePaths: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nvmeof_csi_volume_live_paths", Help: "Paths of each staged volume that can take I/O now (controller live, ANA optimized or non-optimized).",
		}, []string{"volume_id", "subsystem"}),
		volumesDegraded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nvmeof_csi_volumes_degraded", Help: "Staged volumes with fewer live paths than portals (none live included).",
		}),
	}
	m.registry.MustRegister(m.rpcs, m.rpcSeconds, m.controllers, m.reconnects, m.fsErrors,
		m.pathState, m.pathANA, m.pathReconnects, m.pathNotLive, m.pathHeals, m.volumePaths, m.volumeLivePaths, m.volumesDegraded)
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

// pathHealed counts a path the healer connected (or adopted).
func (m *Metrics) pathHealed(t nvme.Target, adopted bool) {
	result := "reconnected"
	if adopted {
		result = "adopted"
	}
	m.pathHeals.WithLabelValues(append(targetPortal(t).values(), result)...).Inc()
}

// monitorState is what the monitor remembers between two looks: the last
// state of each controller, to count reconnects; when each portal was last
// seen and whether it was live, to count the time it was not; and the
// label sets of the gauges it set, to drop those that went away.
type monitorState struct {
	last   map[string]string
	portal map[portalID]portalSeen
	series map[*prometheus.GaugeVec]map[string][]string
	// observing serialises Observe: two at once would count the same
	// seconds twice.
	observing chan struct{}
}

// portalID names a path as the per-path metrics label it.
type portalID struct{ subsystem, address, port, hostTrAddr, hostIface string }

func (p portalID) values() []string {
	return []string{p.subsystem, p.address, p.port, p.hostTrAddr, p.hostIface}
}

func controllerPortal(c kernel.Controller) portalID {
	return portalID{c.Subsystem, labelAddr(c.TrAddr), c.TrSvcID, labelAddr(c.HostTrAddr), c.HostIface}
}

func targetPortal(t nvme.Target) portalID {
	return portalID{t.NQN, labelAddr(t.TrAddr), t.TrSvcID, labelAddr(t.HostTrAddr), t.HostIface}
}

// labelAddr writes an IP address one way (IPv6 has many spellings; an
// IPv4-mapped one is its IPv4 address), so that a path keeps its series
// whether the kernel's controller or the volume's portal names it. A host
// name is left as it is.
func labelAddr(s string) string {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().String()
	}
	return s
}

type portalSeen struct {
	live bool
	at   time.Time
}

var controllerStates = []string{kernel.StateLive, kernel.StateConnecting, kernel.StateResetting, kernel.StateDeleting, kernel.StateDeletingIO, kernel.StateDead, kernel.StateNew}

// pathStates are the states nvmeof_csi_path_state reports.
var pathStates = append(append([]string(nil), controllerStates...), pathMissing)

// observation is one look at the node, gathered before the gauges are set.
type observation struct {
	now        time.Time
	counts     map[string]int
	pathState  map[string][]string // label values by joined key; the state is the last value
	pathANA    map[string][]string
	portals    map[portalID]bool // seen now; live or not
	volumes    map[string][]string
	volumeLive map[string]float64
	volumeAll  map[string]float64
	degraded   int
}

func newObservation(now time.Time) *observation {
	return &observation{
		now: now, counts: map[string]int{}, pathState: map[string][]string{}, pathANA: map[string][]string{},
		portals: map[portalID]bool{}, volumes: map[string][]string{}, volumeLive: map[string]float64{}, volumeAll: map[string]float64{},
	}
}

func seriesKey(values []string) string { return strings.Join(values, "\x00") }

// Observe reads the controllers, the staged volumes' paths and their
// health once and updates the metrics; Monitor calls it on a ticker.
func (d *Driver) Observe() {
	d.monitor.observing <- struct{}{}
	defer func() { <-d.monitor.observing }()
	ctrls, err := d.cfg.Connector.Controllers()
	if err != nil {
		d.log.Warn("metrics: list controllers", "error", err)
		return
	}
	o := newObservation(d.cfg.Now())
	d.observeControllers(o, ctrls)
	d.observeVolumes(o, ctrls)
	for _, s := range controllerStates {
		d.metrics.controllers.WithLabelValues(s).Set(float64(o.counts[s]))
	}
	d.countPortals(o)
	d.setStateSet(d.metrics.pathState, o.pathState, pathStates)
	d.setStateSet(d.metrics.pathANA, o.pathANA, kernel.ANAStates())
	d.setGauges(d.metrics.volumePaths, o.volumes, o.volumeAll)
	d.setGauges(d.metrics.volumeLivePaths, o.volumes, o.volumeLive)
	d.metrics.volumesDegraded.Set(float64(o.degraded))
	d.metrics.fsErrors.Set(float64(d.volumesWithFSErrors()))
}

// observeControllers counts the controllers by state, logs and counts the
// reconnects, and notes every fabrics controller as a path.
func (d *Driver) observeControllers(o *observation, ctrls []kernel.Controller) {
	if d.monitor.last == nil {
		d.monitor.last = map[string]string{}
	}
	seen := map[string]bool{}
	for _, c := range ctrls {
		o.counts[c.State]++
		seen[c.Name] = true
		prev, known := d.monitor.last[c.Name]
		if known && prev != kernel.StateLive && c.State == kernel.StateLive {
			d.metrics.reconnects.Inc()
			d.log.Info("controller reconnected", "controller", c.Name, "nqn", c.Subsystem, "was", prev)
		} else if c.State != prev && c.State != kernel.StateLive {
			d.log.Warn("controller not live", "controller", c.Name, "nqn", c.Subsystem, "state", c.State)
		}
		d.monitor.last[c.Name] = c.State
		if c.Transport == "pcie" || c.TrAddr == "" {
			continue
		}
		id := controllerPortal(c)
		values := append(id.values(), c.Name, c.State)
		o.pathState[seriesKey(values[:len(values)-1])] = values
		o.portals[id] = o.portals[id] || c.State == kernel.StateLive
	}
	for name := range d.monitor.last {
		if !seen[name] {
			delete(d.monitor.last, name)
		}
	}
}

// observeVolumes notes each staged volume's paths: their count, how many
// are live, the ANA state of each path to its namespace, and portals
// without a controller.
func (d *Driver) observeVolumes(o *observation, ctrls []kernel.Controller) {
	recs, err := d.state.stages()
	if err != nil {
		d.log.Warn("metrics: read state", "error", err)
		return
	}
	entries, err := d.mounts.Mounts()
	if err != nil {
		d.log.Warn("metrics: read mounts", "error", err)
		return
	}
	counted := map[string]bool{}
	for _, r := range recs {
		at := mountsAt(entries, stagedPath(r))
		if len(at) == 0 {
			continue
		}
		var kpaths []kernel.PathState
		ns, _, err := d.cfg.Connector.NamespaceOf(at[0].Device)
		if err == nil {
			if kpaths, err = d.cfg.Connector.Paths(ns); err != nil {
				d.log.Debug("metrics: paths", "device", at[0].Device, "error", err)
			}
		}
		v := statusOf(r, kpaths, ctrls)
		for _, p := range kpaths {
			if p.ANAState == "" {
				continue
			}
			values := append(controllerPortal(p.Controller).values(), p.Controller.Name, strconv.FormatUint(uint64(ns.NSID), 10), p.ANAState)
			o.pathANA[seriesKey(values[:len(values)-1])] = values
		}
		for _, p := range v.paths {
			if p.state != pathMissing {
				continue
			}
			id := targetPortal(p.target)
			values := append(id.values(), "", pathMissing)
			o.pathState[seriesKey(values[:len(values)-1])] = values
			if !o.portals[id] {
				o.portals[id] = false
			}
		}
		// A volume staged at two paths (two usages) is one volume.
		if counted[r.VolumeID] {
			continue
		}
		counted[r.VolumeID] = true
		labels := []string{r.VolumeID, r.subsystem()}
		k := seriesKey(labels)
		o.volumes[k] = labels
		o.volumeAll[k] = float64(len(v.paths))
		o.volumeLive[k] = float64(v.live)
		if v.degraded() {
			o.degraded++
		}
	}
}

// countPortals adds the seconds each portal was not live since the last
// look, and counts a portal that is live again.
func (d *Driver) countPortals(o *observation) {
	if d.monitor.portal == nil {
		d.monitor.portal = map[portalID]portalSeen{}
	}
	for id, live := range o.portals {
		prev, known := d.monitor.portal[id]
		if known && !prev.live {
			if gap := o.now.Sub(prev.at); gap > 0 {
				d.metrics.pathNotLive.WithLabelValues(id.values()...).Add(gap.Seconds())
			}
			if live {
				d.metrics.pathReconnects.WithLabelValues(id.values()...).Inc()
			}
		}
		d.monitor.portal[id] = portalSeen{live: live, at: o.now}
	}
	for id := range d.monitor.portal {
		if _, ok := o.portals[id]; !ok {
			delete(d.monitor.portal, id)
		}
	}
}

// setStateSet sets a state-set gauge: for each series (its labels, the
// state last), 1 for its state and 0 for the other states; series that
// went away are deleted.
func (d *Driver) setStateSet(vec *prometheus.GaugeVec, series map[string][]string, states []string) {
	next := map[string][]string{}
	for _, values := range series {
		base, state := values[:len(values)-1], values[len(values)-1]
		for _, s := range states {
			labels := append(append([]string(nil), base...), s)
			v := 0.0
			if s == state {
				v = 1
			}
			vec.WithLabelValues(labels...).Set(v)
			next[seriesKey(labels)] = labels
		}
	}
	d.dropStale(vec, next)
}

// setGauges sets one value per label set and deletes the label sets of
// the last look that are gone.
func (d *Driver) setGauges(vec *prometheus.GaugeVec, labels map[string][]string, values map[string]float64) {
	next := map[string][]string{}
	for k, l := range labels {
		vec.WithLabelValues(l...).Set(values[k])
		next[k] = l
	}
	d.dropStale(vec, next)
}

func (d *Driver) dropStale(vec *prometheus.GaugeVec, next map[string][]string) {
	if d.monitor.series == nil {
		d.monitor.series = map[*prometheus.GaugeVec]map[string][]string{}
	}
	for k, l := range d.monitor.series[vec] {
		if _, ok := next[k]; !ok {
			vec.DeleteLabelValues(l...)
		}
	}
	d.monitor.series[vec] = next
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
