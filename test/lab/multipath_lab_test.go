//go:build lab

package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
	"github.com/nvmeof/nvmeof/test/lab/labtarget"
)

// Volumes with two portals over the lab's multipath target (issue 12):
// SubsystemMulti on 127.0.0.2 and 127.0.0.3, two ANA groups, driven
// through the real plugin binary.

const multiReconnectDelay = 2 * time.Second

var nvmet = labtarget.Nvmet{Root: labtarget.ConfigfsRoot}

// multipathTarget builds the multipath target for one test and takes it
// down after, once the test's controllers are gone (its clean-up runs
// last: register it first).
func multipathTarget(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	backing := map[uint32]string{}
	for _, ns := range labtarget.MultiNamespaces() {
		file := filepath.Join(dir, fmt.Sprintf("multi%d.img", ns.NSID))
		f, err := os.Create(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := errors.Join(f.Truncate(labtarget.NamespaceSize), f.Close()); err != nil {
			t.Fatal(err)
		}
		backing[ns.NSID] = file
	}
	t.Cleanup(func() {
		if err := nvmet.RemoveMultipath(); err != nil {
			t.Errorf("remove the multipath target: %v", err)
		}
	})
	if err := nvmet.CreateMultipath(backing); err != nil {
		t.Fatal(err)
	}
	disconnectAtEnd(t, labtarget.SubsystemMulti)
}

// multipathContext is a two-portal volume context for a namespace of the
// multipath target.
func multipathContext(nsid uint32, uuid string) map[string]string {
	return map[string]string{
		"nqn": labtarget.SubsystemMulti, "nsid": strconv.FormatUint(uint64(nsid), 10), "uuid": uuid,
		"traddr": labtarget.PathA.TrAddr, "trsvcid": labtarget.MultiTrSvcID,
		"traddr_2": labtarget.PathB.TrAddr, "trsvcid_2": labtarget.MultiTrSvcID,
		"ctrl_loss_tmo": "-1", "reconnect_delay": strconv.Itoa(int(multiReconnectDelay / time.Second)),
	}
}

// livePaths returns the paths to the namespace mounted at mnt, by portal
// address, as the connector reads them.
func livePaths(t *testing.T, mnt string) (kernel.Namespace, map[string]kernel.PathState) {
	t.Helper()
	c, _ := newLabConnector(t)
	ns, _, err := c.NamespaceOf(mountAt(t, mnt).Source)
	if err != nil {
		t.Fatalf("namespace mounted at %s: %v", mnt, err)
	}
	paths, err := c.Paths(ns)
	if err != nil {
		t.Fatalf("paths of %s: %v", ns.Name, err)
	}
	out := map[string]kernel.PathState{}
	for _, p := range paths {
		out[p.Controller.TrAddr] = p
	}
	return ns, out
}

// writtenSectors reads the sectors written through a path disk
// (/sys/block/<disk>/stat, field 7).
func writtenSectors(t *testing.T, disk string) uint64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/block", disk, "stat"))
	if err != nil {
		t.Fatalf("stat of %s: %v", disk, err)
	}
	f := strings.Fields(string(b))
	if len(f) < 7 {
		t.Fatalf("stat of %s: %q", disk, b)
	}
	n, err := strconv.ParseUint(f[6], 10, 64)
	if err != nil {
		t.Fatalf("stat of %s: %v", disk, err)
	}
	return n
}

// syncWriter writes 4 KiB blocks to one file and fsyncs each, as a
// database's log does, keeping the time each write+fsync completed.
type syncWriter struct {
	path string
	stop chan struct{}
	done chan struct{}

	mu     sync.Mutex
	at     []time.Time
	err    error
	blocks int
}

func startSyncWriter(t *testing.T, path string) *syncWriter {
	t.Helper()
	w := &syncWriter{path: path, stop: make(chan struct{}), done: make(chan struct{})}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(w.done)
		defer func() { _ = f.Close() }()
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			_, err := f.WriteAt(block(i), int64(i)*4096)
			if err == nil {
				err = f.Sync()
			}
			w.mu.Lock()
			if err != nil {
				w.err = fmt.Errorf("block %d: %w", i, err)
				w.mu.Unlock()
				return
			}
			w.at = append(w.at, time.Now())
			w.blocks = i + 1
			w.mu.Unlock()
		}
	}()
	t.Cleanup(w.halt)
	return w
}

// block is the content of block i: its number, then a pattern of it.
func block(i int) []byte {
	b := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, 2048)
	copy(b, fmt.Sprintf("block %08d", i))
	return b
}

func (w *syncWriter) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// completions is how many blocks are written so far.
func (w *syncWriter) completions() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.at)
}

// finish stops the writer and fails the test on any write error.
func (w *syncWriter) finish(t *testing.T) []time.Time {
	t.Helper()
	w.halt()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		t.Fatalf("the writer got an I/O error: %v", w.err)
	}
	return slices.Clone(w.at)
}

// verify reads every block back from the device, not the page cache.
func (w *syncWriter) verify(t *testing.T) {
	t.Helper()
	dropCaches(t)
	b, err := os.ReadFile(w.path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range w.blocks {
		if got := b[i*4096 : (i+1)*4096]; !bytes.Equal(got, block(i)) {
			t.Fatalf("block %d reads %q..., want %q...", i, got[:16], block(i)[:16])
		}
	}
}

// longestGap is the longest time between two completions within [from,
// to], counting from from: the longest a writer waited.
func longestGap(at []time.Time, from, to time.Time) time.Duration {
	var gap time.Duration
	prev := from
	for _, a := range at {
		if a.Before(from) {
			continue
		}
		if a.After(to) {
			break
		}
		gap = max(gap, a.Sub(prev))
		prev = a
	}
	return gap
}

// firstAfter is the first completion after t.
func firstAfter(at []time.Time, t time.Time) (time.Time, bool) {
	for _, a := range at {
		if a.After(t) {
			return a, true
		}
	}
	return time.Time{}, false
}

// stagePublished stages and publishes v, and takes both back at the end.
func stagePublished(t *testing.T, p *csiPlugin, v csiVolume) {
	t.Helper()
	p.unstageAtEnd(t, v)
	p.stage(t, v)
	p.publish(t, v)
}

func (p *csiPlugin) volumeHealth(t *testing.T, v csiVolume) []*csi.VolumeHealth_VolumeHealthEntry {
	t.Helper()
	resp, err := p.node.NodeGetVolumeHealth(rpcContext(t), &csi.NodeGetVolumeHealthRequest{VolumeId: v.id})
	if err != nil {
		t.Fatalf("NodeGetVolumeHealth(%s): %v", v.id, err)
	}
	return resp.GetVolumeHealth().GetHealthStatuses()
}

// 1. A two-portal stage: two controllers, one namespace head with a path
// through each, fsync'd writes flow, the metrics show both paths.
func TestMultipathStage(t *testing.T) {
	multipathTarget(t)
	socket, state := pluginDirs(t)
	const metricsAddr = "127.0.0.1:9812"
	p := startPluginWith(t, socket, state, pluginOptions{metricsAddr: metricsAddr, healthInterval: "500ms"})
	v := newCSIVolume(t, "lab-mp", mountCapability("ext4"), multipathContext(1, labtarget.MultiNS1UUID))
	stagePublished(t, p, v)

	ctrls := usableControllers(t, labtarget.SubsystemMulti)
	var addrs []string
	for _, c := range ctrls {
		addrs = append(addrs, c.TrAddr)
		if c.State != kernel.StateLive || ctrlSysfs(t, c, "ctrl_loss_tmo") != "off" || ctrlSysfs(t, c, "reconnect_delay") != "2" {
			t.Errorf("controller %s: %s, ctrl_loss_tmo %s, reconnect_delay %s", c.Name, c.State, ctrlSysfs(t, c, "ctrl_loss_tmo"), ctrlSysfs(t, c, "reconnect_delay"))
		}
	}
	slices.Sort(addrs)
	if !slices.Equal(addrs, []string{labtarget.PathA.TrAddr, labtarget.PathB.TrAddr}) {
		t.Fatalf("controllers to %v, want one per portal", addrs)
	}
	ns, paths := livePaths(t, v.staging)
	if len(paths) != 2 {
		t.Fatalf("%s has paths %+v, want two", ns.Name, paths)
	}
	for addr, path := range paths {
		if !path.Live() || path.ANAState != kernel.ANAOptimized {
			t.Errorf("path to %s: %s", addr, path)
		}
	}
	heads, _ := filepath.Glob("/dev/nvme*n1")
	t.Logf("head %s over %s and %s; /dev has %v", ns.DevicePath, paths[labtarget.PathA.TrAddr].Disk, paths[labtarget.PathB.TrAddr].Disk, heads)

	sum := writeRandomFile(t, filepath.Join(v.target, "data"), 4<<20)
	dropCaches(t)
	if got := fileSum(t, filepath.Join(v.target, "data")); got != sum {
		t.Errorf("read back sha256 %x, want %x", got, sum)
	}
	if st := p.volumeHealth(t, v); len(st) != 0 {
		t.Errorf("health of a volume with both paths live: %v", st)
	}
	staged := false
	for _, e := range p.log.entries(0) {
		if e["@message"] != "staged" {
			continue
		}
		up, _ := e["paths_up"].([]any)
		down, _ := e["paths_down"].([]any)
		staged = len(up) == 2 && len(down) == 0
	}
	if !staged {
		t.Errorf("no log line says the volume is staged with both paths up")
	}
	body := scrapePlugin(t, p, metricsAddr)
	for _, want := range []string{
		`nvmeof_csi_volume_live_paths{subsystem="` + labtarget.SubsystemMulti + `",volume_id="lab-mp"} 2`,
		`nvmeof_csi_path_ana_state{address="127.0.0.3",controller="`,
		`nvmeof_csi_volumes_degraded 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	p.unpublish(t, v)
	p.unstage(t, v)
	assertNothingLeft(t, labtarget.SubsystemMulti, filepath.Dir(v.staging))
}

// scrapePlugin reads the plugin's metrics once they show a look at the
// node (the monitor's first pass runs at start).
func scrapePlugin(t *testing.T, p *csiPlugin, addr string) string {
	t.Helper()
	var body string
	waitFor(t, "metrics with the volume's paths", 30*time.Second, func() bool {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+"/metrics", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		body = string(b)
		return err == nil && strings.Contains(body, "nvmeof_csi_volume_live_paths{")
	})
	return body
}

// activePath is the path disk the writer's I/O goes down now: the one
// whose written sectors grow.
func activePath(t *testing.T, paths map[string]kernel.PathState) labtarget.Path {
	t.Helper()
	before := map[string]uint64{}
	for addr, p := range paths {
		before[addr] = writtenSectors(t, p.Disk)
	}
	time.Sleep(time.Second)
	best, most := labtarget.PathA, uint64(0)
	for _, lp := range labtarget.MultipathPaths() {
		if d := writtenSectors(t, paths[lp.TrAddr].Disk) - before[lp.TrAddr]; d > most {
			best, most = lp, d
		}
	}
	if most == 0 {
		t.Fatal("no path took the writer's I/O for a second")
	}
	return best
}

// 2. The path carrying the I/O is cut during fsync'd writes: no error,
// the data intact, and the longest write stall is far below
// reconnect_delay (I/O moves to the other path; it does not wait for the
// cut one to come back).
func TestMultipathFailoverStall(t *testing.T) {
	multipathTarget(t)
	socket, state := pluginDirs(t)
	p := startPlugin(t, socket, state)
	v := newCSIVolume(t, "lab-mp-failover", mountCapability("ext4"), multipathContext(1, labtarget.MultiNS1UUID))
	stagePublished(t, p, v)
	_, paths := livePaths(t, v.staging)

	w := startSyncWriter(t, filepath.Join(v.target, "log"))
	waitFor(t, "writes flowing", 10*time.Second, func() bool { return w.completions() > 20 })
	cut := activePath(t, paths)
	t.Cleanup(func() { _ = nvmet.RestorePath(cut) })
	if err := nvmet.CutPath(cut); err != nil {
		t.Fatal(err)
	}
	cutAt := time.Now()
	waitFor(t, "the cut path reconnecting", 10*time.Second, func() bool {
		_, ps := livePaths(t, v.staging)
		return ps[cut.TrAddr].Controller.State != kernel.StateLive
	})
	time.Sleep(4 * time.Second)
	at := w.finish(t)
	stall := longestGap(at, cutAt, time.Now())
	after := 0
	for _, a := range at {
		if a.After(cutAt) {
			after++
		}
	}
	t.Logf("LAB-FIGURE: failover_stall=%s writes_after_cut=%d cut=%s reconnect_delay=%s",
		stall.Round(time.Millisecond), after, cut.TrAddr, multiReconnectDelay)
	if after < 10 {
		t.Errorf("only %d writes completed in the 4 s after the cut: I/O did not move to the other path", after)
	}
	if stall >= multiReconnectDelay {
		t.Errorf("the longest write stall after the cut is %s, not below reconnect_delay %s: I/O waited for the cut path", stall, multiReconnectDelay)
	}
	w.verify(t)
	st := p.volumeHealth(t, v)
	if len(st) != 1 || st[0].GetStatus() != csi.VolumeHealthErrorType_DEGRADED || !strings.Contains(st[0].GetMessage(), cut.TrAddr) {
		t.Errorf("health with one path cut: %v, want degraded naming %s", st, cut.TrAddr)
	}
	if err := nvmet.RestorePath(cut); err != nil {
		t.Fatal(err)
	}
	restored := time.Now()
	waitFor(t, "the cut path live again", 3*multiReconnectDelay, func() bool {
		_, ps := livePaths(t, v.staging)
		return ps[cut.TrAddr].Live()
	})
	t.Logf("LAB-FIGURE: path_back_live=%s", time.Since(restored).Round(time.Millisecond))
}

// 3. ANA: the target makes one path inaccessible, then the other: I/O
// follows the accessible path, with no error.
func TestMultipathANA(t *testing.T) {
	multipathTarget(t)
	socket, state := pluginDirs(t)
	p := startPlugin(t, socket, state)
	v := newCSIVolume(t, "lab-mp-ana", mountCapability("ext4"), multipathContext(1, labtarget.MultiNS1UUID))
	stagePublished(t, p, v)
	_, paths := livePaths(t, v.staging)
	t.Cleanup(func() {
		for _, lp := range labtarget.MultipathPaths() {
			_ = nvmet.SetANAState(lp, 1, "optimized")
		}
	})
	w := startSyncWriter(t, filepath.Join(v.target, "log"))
	waitFor(t, "writes flowing", 10*time.Second, func() bool { return w.completions() > 20 })

	for _, step := range []struct {
		optimized, inaccessible labtarget.Path
	}{
		{optimized: labtarget.PathB, inaccessible: labtarget.PathA},
		{optimized: labtarget.PathA, inaccessible: labtarget.PathB},
	} {
		if err := nvmet.SetANAState(step.optimized, 1, "optimized"); err != nil {
			t.Fatal(err)
		}
		if err := nvmet.SetANAState(step.inaccessible, 1, "inaccessible"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the host to see "+step.inaccessible.TrAddr+" inaccessible", 10*time.Second, func() bool {
			_, ps := livePaths(t, v.staging)
			return ps[step.inaccessible.TrAddr].ANAState == kernel.ANAInaccessible && ps[step.optimized.TrAddr].ANAState == kernel.ANAOptimized
		})
		before := w.completions()
		if got := activePath(t, paths); got != step.optimized {
			t.Errorf("with %s inaccessible, I/O goes to %s", step.inaccessible.TrAddr, got.TrAddr)
		}
		if w.completions() == before {
			t.Errorf("no write completed with %s inaccessible", step.inaccessible.TrAddr)
		}
		st := p.volumeHealth(t, v)
		if len(st) != 1 || st[0].GetReason() != "PathsDegraded" || !strings.Contains(st[0].GetMessage(), "ANA inaccessible") {
			t.Errorf("health with %s inaccessible: %v", step.inaccessible.TrAddr, st)
		}
		t.Logf("%s inaccessible: writes go to %s", step.inaccessible.TrAddr, step.optimized.TrAddr)
	}
	w.finish(t)
	w.verify(t)
}

// 4. Both paths cut for 15 s with ctrl_loss_tmo=-1: the writer sees no
// error, only a pause, and writes again within reconnect_delay + 0.5 s of
// the target's return.
func TestMultipathBothPathsCut(t *testing.T) {
	multipathTarget(t)
	socket, state := pluginDirs(t)
	p := startPlugin(t, socket, state)
	v := newCSIVolume(t, "lab-mp-outage", mountCapability("ext4"), multipathContext(1, labtarget.MultiNS1UUID))
	stagePublished(t, p, v)
	t.Cleanup(func() {
		for _, lp := range labtarget.MultipathPaths() {
			_ = nvmet.RestorePath(lp)
		}
	})
	w := startSyncWriter(t, filepath.Join(v.target, "log"))
	waitFor(t, "writes flowing", 10*time.Second, func() bool { return w.completions() > 20 })
	for _, lp := range labtarget.MultipathPaths() {
		if err := nvmet.CutPath(lp); err != nil {
			t.Fatal(err)
		}
	}
	cutAt := time.Now()
	waitFor(t, "both paths reconnecting", 10*time.Second, func() bool {
		_, ps := livePaths(t, v.staging)
		return !ps[labtarget.PathA.TrAddr].Live() && !ps[labtarget.PathB.TrAddr].Live()
	})
	st := p.volumeHealth(t, v)
	if len(st) != 1 || st[0].GetStatus() != csi.VolumeHealthErrorType_INACCESSIBLE {
		t.Errorf("health with both paths cut: %v, want abnormal", st)
	}
	time.Sleep(15*time.Second - time.Since(cutAt))
	stalled := w.completions()
	for _, lp := range labtarget.MultipathPaths() {
		if err := nvmet.RestorePath(lp); err != nil {
			t.Fatal(err)
		}
	}
	restored := time.Now()
	waitFor(t, "writes again", 3*multiReconnectDelay, func() bool { return w.completions() > stalled })
	time.Sleep(time.Second)
	at := w.finish(t)
	first, ok := firstAfter(at, restored)
	if !ok {
		t.Fatal("no write after the restore")
	}
	recovery := first.Sub(restored)
	var during int
	for _, a := range at {
		if a.After(cutAt.Add(time.Second)) && a.Before(restored) {
			during++
		}
	}
	t.Logf("LAB-FIGURE: both_paths_outage=%s recovery_after_restore=%s writes_during_outage=%d reconnect_delay=%s",
		restored.Sub(cutAt).Round(time.Millisecond), recovery.Round(time.Millisecond), during, multiReconnectDelay)
	if during != 0 {
		t.Errorf("%d writes completed while both paths were cut: did the cut reach the writer?", during)
	}
	if limit := multiReconnectDelay + 500*time.Millisecond; recovery > limit {
		t.Errorf("writes resumed %s after the target returned, want within reconnect_delay + 0.5 s = %s", recovery, limit)
	}
	w.verify(t)
	// Writes resume on the first path back; the volume is healthy again
	// once the other has reconnected too (at its own reconnect_delay).
	waitFor(t, "the volume healthy again (both paths live)", 3*multiReconnectDelay, func() bool {
		return len(p.volumeHealth(t, v)) == 0
	})
}

// 5. A path deleted while staged (nvme disconnect -d) is brought back by
// the plugin's healer, and released with the rest at unstage.
func TestMultipathHealsDeletedPath(t *testing.T) {
	multipathTarget(t)
	socket, state := pluginDirs(t)
	p := startPluginWith(t, socket, state, pluginOptions{extra: []string{"--heal-interval=1s"}})
	v := newCSIVolume(t, "lab-mp-heal", mountCapability("ext4"), multipathContext(1, labtarget.MultiNS1UUID))
	stagePublished(t, p, v)
	_, paths := livePaths(t, v.staging)
	gone := paths[labtarget.PathB.TrAddr].Controller
	if err := os.WriteFile(filepath.Join("/sys/class/nvme", gone.Name, "delete_controller"), []byte("1"), 0o200); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	waitFor(t, "the healer reconnecting the deleted path", 30*time.Second, func() bool {
		_, ps := livePaths(t, v.staging)
		back, ok := ps[labtarget.PathB.TrAddr]
		return ok && back.Live() && back.Controller.ID != gone.ID
	})
	t.Logf("LAB-FIGURE: healed_after=%s (heal interval 1s)", time.Since(deleted).Round(time.Millisecond))
	// The healer logs once its connect has returned, which can be after
	// sysfs shows the controller live.
	waitFor(t, "the plugin's log of the healing", 10*time.Second, func() bool {
		return strings.Contains(p.log.String(), "path reconnected")
	})
	sum := writeRandomFile(t, filepath.Join(v.target, "after-heal"), 1<<20)
	dropCaches(t)
	if got := fileSum(t, filepath.Join(v.target, "after-heal")); got != sum {
		t.Errorf("read back sha256 %x, want %x", got, sum)
	}
	p.unpublish(t, v)
	p.unstage(t, v)
	assertNothingLeft(t, labtarget.SubsystemMulti, filepath.Dir(v.staging))
}

// 6. Two volumes of one subsystem, two paths each: unstaging one disturbs
// neither path of the other, whose writer goes on.
func TestMultipathTwoVolumesOneSubsystem(t *testing.T) {
	multipathTarget(t)
	socket, state := pluginDirs(t)
	p := startPlugin(t, socket, state)
	one := newCSIVolume(t, "lab-mp-one", mountCapability("ext4"), multipathContext(1, labtarget.MultiNS1UUID))
	two := newCSIVolume(t, "lab-mp-two", mountCapability("ext4"), multipathContext(2, labtarget.MultiNS2UUID))
	stagePublished(t, p, one)
	stagePublished(t, p, two)
	before := usableControllers(t, labtarget.SubsystemMulti)
	if len(before) != 2 {
		t.Fatalf("%d controllers for two volumes over two portals, want 2: %+v", len(before), before)
	}
	w := startSyncWriter(t, filepath.Join(two.target, "log"))
	waitFor(t, "writes flowing", 10*time.Second, func() bool { return w.completions() > 20 })
	p.unpublish(t, one)
	p.unstage(t, one)
	mark := w.completions()
	waitFor(t, "writes after the other volume's unstage", 10*time.Second, func() bool { return w.completions() > mark+20 })
	after := usableControllers(t, labtarget.SubsystemMulti)
	if len(after) != 2 {
		t.Fatalf("after unstaging one volume, controllers %+v", after)
	}
	for i := range before {
		if after[i].ID != before[i].ID || after[i].State != kernel.StateLive {
			t.Errorf("path %s changed: %+v -> %+v", before[i].TrAddr, before[i], after[i])
		}
	}
	w.finish(t)
	w.verify(t)
	if st := p.volumeHealth(t, two); len(st) != 0 {
		t.Errorf("health of the remaining volume: %v", st)
	}
	p.unpublish(t, two)
	p.unstage(t, two)
	assertNothingLeft(t, labtarget.SubsystemMulti, filepath.Dir(two.staging))
}

// 7. SIGKILL of the plugin mid-stage of a two-portal volume (after its
// first path connected): the retried stage converges on two paths, and
// nothing leaks.
func TestMultipathKilledMidStage(t *testing.T) {
	multipathTarget(t)
	socket, state := pluginDirs(t)
	p := startPlugin(t, socket, state)
	v := newCSIVolume(t, "lab-mp-killed", mountCapability("ext4"), multipathContext(1, labtarget.MultiNS1UUID))
	mark := p.log.lines()
	inFlight := make(chan error, 1)
	go func() {
		_, err := p.node.NodeStageVolume(context.WithoutCancel(t.Context()), v.stageRequest())
		inFlight <- err
	}()
	waitFor(t, "the first path connected", 60*time.Second, func() bool {
		for _, e := range p.log.entries(mark) {
			if e["@message"] == "connected" && e["portal"] != nil {
				return true
			}
		}
		return false
	})
	p.kill()
	<-inFlight
	t.Logf("killed mid-stage with %d controller(s) of the subsystem and %d mount(s) under the volume",
		len(usableControllers(t, labtarget.SubsystemMulti)), len(mountsUnder(t, filepath.Dir(v.staging))))

	p = startPlugin(t, socket, state)
	p.unstageAtEnd(t, v)
	p.stage(t, v)
	ctrls := usableControllers(t, labtarget.SubsystemMulti)
	if len(ctrls) != 2 {
		t.Errorf("controllers after the retried stage: %+v, want one per portal", ctrls)
	}
	if n := len(mountsUnder(t, filepath.Dir(v.staging))); n != 1 {
		t.Errorf("%d mounts under the volume's dirs, want 1", n)
	}
	p.unstage(t, v)
	assertNothingLeft(t, labtarget.SubsystemMulti, filepath.Dir(v.staging))
}
