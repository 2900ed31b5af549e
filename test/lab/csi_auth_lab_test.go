//go:build lab

package lab

import (
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
	"github.com/nvmeof/nvmeof/test/lab/labtarget"
)

// DH-HMAC-CHAP through the real nvmeof-csi binary: keys come as CSI
// secrets, as Nomad passes a volume's `secrets`.

func authSecrets(host, ctrl string) map[string]string {
	s := map[string]string{"dhchap_secret": host}
	if ctrl != "" {
		s["dhchap_ctrl_secret"] = ctrl
	}
	return s
}

func authVolume(t *testing.T, id string, nsid uint32, capability *csi.VolumeCapability, secrets map[string]string) csiVolume {
	t.Helper()
	uuid := labtarget.AuthNS1UUID
	if nsid == 2 {
		uuid = labtarget.AuthNS2UUID
	}
	v := newCSIVolume(t, id, capability, volumeContext(labtarget.SubsystemAuth, nsid, uuid))
	v.secrets = secrets
	return v
}

// freeLoopbackAddr is a 127.0.0.1 address with a port nothing listens on.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// The right keys stage, serve I/O and unstage, unidirectional and
// bidirectional. The nvme-cli connector refuses keys (they would be in its
// world-readable argument vector): InvalidArgument before anything runs.
func TestCSIAuthStagesWithTheRightKeys(t *testing.T) {
	requireAuth(t)
	forEachBackend(t, func(t *testing.T, backend string) {
		for _, tt := range []struct {
			name    string
			secrets map[string]string
		}{
			{"unidirectional", authSecrets(labtarget.HostKey, "")},
			{"bidirectional", authSecrets(labtarget.HostKey, labtarget.CtrlKey)},
		} {
			t.Run(tt.name, func(t *testing.T) {
				nqn := labtarget.SubsystemAuth
				disconnectAtEnd(t, nqn)
				wipeNamespace(t, nqn, 1)
				socket, state := pluginDirs(t)
				p := startPluginWith(t, socket, state, pluginOptions{connector: backend})
				v := authVolume(t, "lab-auth-"+tt.name, 1, mountCapability("ext4"), tt.secrets)
				p.unstageAtEnd(t, v)
				if backend == kernel.BackendNVMeCLI {
					_, err := p.node.NodeStageVolume(rpcContext(t), v.stageRequest())
					wantCSICode(t, err, codes.InvalidArgument, "use the fabrics connector")
					assertNoKeyIn(t, "the error", err.Error())
					if ctrls := usableControllers(t, nqn); len(ctrls) != 0 || p.childNamed("nvme") != 0 {
						t.Errorf("controllers after the refusal: %+v", ctrls)
					}
					return
				}
				p.stage(t, v)
				p.stage(t, v)
				ctrls := usableControllers(t, nqn)
				if len(ctrls) != 1 {
					t.Fatalf("controllers of %s: %+v, want one", nqn, ctrls)
				}
				if got := ctrlSysfs(t, ctrls[0], "dhchap_secret"); got != labtarget.HostKey {
					t.Error("the controller does not hold the volume's dhchap_secret")
				}
				p.publish(t, v)
				sum := writeRandomFile(t, filepath.Join(v.target, "data"), 1<<20)
				dropCaches(t)
				if got := fileSum(t, filepath.Join(v.target, "data")); got != sum {
					t.Errorf("read back: sha256 %x, want %x", got, sum)
				}
				p.unpublish(t, v)
				p.unstage(t, v)
				assertNothingLeft(t, nqn, filepath.Dir(v.staging))
				assertNoKeyIn(t, "the plugin's log", p.log.String())
			})
		}
	})
}

// A wrong key is refused at once with a clear message, never retried,
// and leaves no controller.
func TestCSIAuthWrongKeysRefused(t *testing.T) {
	requireAuth(t)
	const backend = kernel.BackendFabrics // nvme-cli refuses keys: TestCSIAuthStagesWithTheRightKeys
	nqn := labtarget.SubsystemAuth
	disconnectAtEnd(t, nqn)
	socket, state := pluginDirs(t)
	p := startPluginWith(t, socket, state, pluginOptions{connector: backend})
	for _, tt := range []struct {
		name    string
		secrets map[string]string
	}{
		{"wrong host key", authSecrets(labtarget.WrongHostKey, "")},
		{"wrong controller key", authSecrets(labtarget.HostKey, labtarget.WrongCtrlKey)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := authVolume(t, "lab-auth-wrong", 1, blockCapability(), tt.secrets)
			p.unstageAtEnd(t, v)
			start := time.Now()
			_, err := p.node.NodeStageVolume(rpcContext(t), v.stageRequest())
			t.Logf("%s: refused after %s: %v", backend, time.Since(start).Round(time.Millisecond), err)
			wantCSICode(t, err, codes.FailedPrecondition, "DH-HMAC-CHAP")
			if !strings.Contains(err.Error(), "after 1 attempt(s)") {
				t.Errorf("the refusal was retried: %v", err)
			}
			assertNoKeyIn(t, "the error", err.Error())
			if ctrls := usableControllers(t, nqn); len(ctrls) != 0 {
				t.Errorf("controllers after a refused stage: %+v", ctrls)
			}
		})
	}
	assertNoKeyIn(t, "the plugin's log", p.log.String())
}

// Volumes of one subsystem share one controller and so one set of keys:
// a stage with other keys is refused, naming neither key.
func TestCSIAuthOtherKeysThanTheStagedController(t *testing.T) {
	requireAuth(t)
	nqn := labtarget.SubsystemAuth
	disconnectAtEnd(t, nqn)
	socket, state := pluginDirs(t)
	p := startPlugin(t, socket, state)
	first := authVolume(t, "lab-auth-first", 1, blockCapability(), authSecrets(labtarget.HostKey, ""))
	p.unstageAtEnd(t, first)
	p.stage(t, first)
	for _, tt := range []struct {
		name    string
		secrets map[string]string
		says    string
	}{
		{"another host key", authSecrets(labtarget.RotatedHostKey, ""), "another dhchap_secret"},
		{"a controller key the controller lacks", authSecrets(labtarget.HostKey, labtarget.CtrlKey), "another dhchap_ctrl_secret"},
		{"no key", nil, "another dhchap_secret"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			second := authVolume(t, "lab-auth-second", 2, blockCapability(), tt.secrets)
			p.unstageAtEnd(t, second)
			_, err := p.node.NodeStageVolume(rpcContext(t), second.stageRequest())
			wantCSICode(t, err, codes.FailedPrecondition, tt.says)
			assertNoKeyIn(t, "the error", err.Error())
			if left := mountsUnder(t, filepath.Dir(second.staging)); len(left) != 0 {
				t.Errorf("the refused stage mounted: %+v", left)
			}
		})
	}
	if ctrls := usableControllers(t, nqn); len(ctrls) != 1 || ctrlSysfs(t, ctrls[0], "state") != kernel.StateLive {
		t.Fatalf("the staged volume's controller after the refusals: %+v", ctrls)
	}
	p.unstage(t, first)
	assertNothingLeft(t, nqn, filepath.Dir(first.staging))
}

// A 15 s outage under an authenticated, published volume: the kernel
// authenticates again when it reconnects, and the writer sees no error.
func TestCSIAuthOutageReauthenticates(t *testing.T) {
	requireAuth(t)
	nqn := labtarget.SubsystemAuth
	disconnectAtEnd(t, nqn)
	wipeNamespace(t, nqn, 1)
	socket, state := pluginDirs(t)
	p := startPlugin(t, socket, state)
	v := authVolume(t, "lab-auth-outage", 1, mountCapability("ext4"), authSecrets(labtarget.HostKey, labtarget.CtrlKey))
	p.unstageAtEnd(t, v)
	p.stage(t, v)
	p.publish(t, v)
	ctrls := usableControllers(t, nqn)
	if len(ctrls) != 1 {
		t.Fatalf("controllers of %s: %+v", nqn, ctrls)
	}
	mark := kernelLogMark(t)
	writeAcrossOutage(t, v, ctrls[0])
	n := authenticatedSince(t, mark)
	t.Logf("kernel log lines saying a queue authenticated since the outage began: %d", n)
	if n == 0 {
		t.Errorf("no authentication in the kernel log since the outage began: the reconnect did not authenticate")
	}
	p.unpublish(t, v)
	p.unstage(t, v)
	assertNothingLeft(t, nqn, filepath.Dir(v.staging))
}

// kernelLogMark writes a line of its own into the kernel log and returns
// it. Counting what the kernel logged after the mark stays right when the
// ring buffer drops its oldest lines, which a long lab run does: totals
// taken before and after can even go down.
func kernelLogMark(t *testing.T) string {
	t.Helper()
	mark := fmt.Sprintf("nvmeof-lab mark %s %d", t.Name(), time.Now().UnixNano())
	if err := os.WriteFile("/dev/kmsg", []byte(mark+"\n"), 0); err != nil {
		t.Fatalf("write a mark into the kernel log: %v", err)
	}
	return mark
}

// authenticatedSince counts the kernel log's lines saying an NVMe queue
// authenticated, after mark.
func authenticatedSince(t *testing.T, mark string) int {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "dmesg").Output()
	if err != nil {
		t.Fatalf("dmesg: %v", err)
	}
	i := strings.LastIndex(string(out), mark)
	if i < 0 {
		t.Fatalf("the kernel log no longer holds the mark %q: more was logged since than its ring buffer keeps", mark)
	}
	n := 0
	for line := range strings.Lines(string(out[i:])) {
		if strings.Contains(line, "authenticated") && strings.Contains(line, "nvme") {
			n++
		}
	}
	return n
}

// The keys reach no log line, no error, no state file and no metric:
// everything the plugin wrote or answered over a run with right, wrong
// and mismatched keys is searched for every lab key and its base64 body.
func TestCSIAuthKeysShownNowhere(t *testing.T) {
	requireAuth(t)
	nqn := labtarget.SubsystemAuth
	disconnectAtEnd(t, nqn)
	socket, state := pluginDirs(t)
	addr := freeLoopbackAddr(t)
	p := startPluginWith(t, socket, state, pluginOptions{metricsAddr: addr})
	var answers []string
	record := func(err error) {
		if err != nil {
			answers = append(answers, err.Error(), status.Convert(err).Message())
		}
	}
	good := authVolume(t, "lab-auth-good", 1, blockCapability(), authSecrets(labtarget.HostKey, labtarget.CtrlKey))
	p.unstageAtEnd(t, good)
	for _, v := range []csiVolume{
		authVolume(t, "lab-auth-bad-host", 1, blockCapability(), authSecrets(labtarget.WrongHostKey, "")),
		authVolume(t, "lab-auth-bad-ctrl", 1, blockCapability(), authSecrets(labtarget.HostKey, labtarget.WrongCtrlKey)),
		authVolume(t, "lab-auth-malformed", 1, blockCapability(), authSecrets(labtarget.HostKey[:30], "")),
		good,
		authVolume(t, "lab-auth-other", 2, blockCapability(), authSecrets(labtarget.RotatedHostKey, "")),
	} {
		_, err := p.node.NodeStageVolume(rpcContext(t), v.stageRequest())
		record(err)
	}
	if len(answers) != 2*4 {
		t.Fatalf("%d refusals, want 4 (two wrong keys, a malformed one, a mismatch): %q", len(answers)/2, answers)
	}
	p.publish(t, good)
	_, err := p.node.NodeGetVolumeStats(rpcContext(t), &csi.NodeGetVolumeStatsRequest{VolumeId: good.id, VolumePath: good.target})
	record(err)

	resp, err := http.Get("http://" + addr + "/metrics") //nolint:noctx // bounded by the default client's dial; loopback
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	metrics, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil || len(metrics) == 0 {
		t.Fatalf("metrics: %v, %d bytes", err, len(metrics))
	}
	// The state dir while the volume is staged and published (its stage,
	// publish and controller records), and after.
	searchState := func() int {
		files := 0
		if err := filepath.WalkDir(state, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files++
			assertNoKeyIn(t, "state file "+path, string(b))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return files
	}
	staged := searchState()
	if staged < 3 {
		t.Errorf("%d state files with the volume staged and published, want its stage, publish and controller records", staged)
	}
	p.unpublish(t, good)
	p.unstage(t, good)
	after := searchState()

	assertNoKeyIn(t, "the errors", strings.Join(answers, "\n"))
	assertNoKeyIn(t, "the metrics", string(metrics))
	assertNoKeyIn(t, "the plugin's log", p.log.String())
	t.Logf("searched %d answers, %d bytes of metrics, %d bytes of log, %d state files (staged) and %d (after) for %d key forms",
		len(answers), len(metrics), len(p.log.String()), staged, after, len(labKeys()))
}

// On a kernel without host DH-HMAC-CHAP the stage is refused before any
// connect, naming the kernel and the missing option. The lab's target on
// such a kernel admits the host without authentication, so a connect that
// was tried would have made a controller.
func TestCSIAuthRefusedWithoutKernelSupport(t *testing.T) {
	caps := labCapabilities(t)
	if caps.HostAuth.Support != kernel.Missing {
		t.Skipf("kernel %s has host DH-HMAC-CHAP (%s): the refusal is for kernels without it", caps.Release, caps.HostAuth)
	}
	nqn := labtarget.SubsystemAuth
	disconnectAtEnd(t, nqn)
	socket, state := pluginDirs(t)
	p := startPlugin(t, socket, state)
	// Logged before the plugin serves; the pipe into p.log may lag behind.
	waitFor(t, "the start-up log's kernel capabilities", 10*time.Second, func() bool {
		return strings.Contains(p.log.String(), "kernel capabilities")
	})
	v := authVolume(t, "lab-auth-nokernel", 1, blockCapability(), authSecrets(labtarget.HostKey, ""))
	p.unstageAtEnd(t, v)
	mark := p.log.lines()
	_, err := p.node.NodeStageVolume(rpcContext(t), v.stageRequest())
	wantCSICode(t, err, codes.FailedPrecondition, caps.Release)
	for _, want := range []string{caps.HostAuth.Option, "DH-HMAC-CHAP"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not name %s: %v", want, err)
		}
	}
	if ctrls := usableControllers(t, nqn); len(ctrls) != 0 {
		t.Errorf("controllers after the refusal: %+v", ctrls)
	}
	for _, e := range p.log.entries(mark) {
		if msg, _ := e["@message"].(string); strings.Contains(msg, "connect") && e["@module"] != "nvmeof-csi.grpc" {
			t.Errorf("the plugin logged %q: it tried to connect", msg)
		}
	}
	assertNoKeyIn(t, "the error", err.Error())
	t.Logf("refused on %s: %v", caps.Release, err)
}

// Rotation as docs/nomad.md describes it: the target takes the new key
// first; the staged controller is given it through sysfs (the kernel
// authenticates again at once); new stages bring the new key in their
// secrets; an outage reconnects with it. The other way, unstage and stage
// again, is proven last.
func TestCSIAuthRotation(t *testing.T) {
	requireAuth(t)
	restoreTargetKeysAtEnd(t)
	nqn := labtarget.SubsystemAuth
	disconnectAtEnd(t, nqn)
	wipeNamespace(t, nqn, 1)
	socket, state := pluginDirs(t)
	p := startPlugin(t, socket, state)
	v1 := authVolume(t, "lab-rot-1", 1, mountCapability("ext4"), authSecrets(labtarget.HostKey, ""))
	p.unstageAtEnd(t, v1)
	p.stage(t, v1)
	p.publish(t, v1)
	ctrls := usableControllers(t, nqn)
	if len(ctrls) != 1 {
		t.Fatalf("controllers: %+v", ctrls)
	}
	ctrl := ctrls[0]

	// 1. The target first.
	rotated := labtarget.LabHostAuth()
	rotated.Key = labtarget.RotatedHostKey
	if err := labtarget.SetHostAuth(labtarget.HostNQN, rotated); err != nil {
		t.Fatal(err)
	}
	// 2. The staged controller, through sysfs.
	reauthenticate(t, ctrl, labtarget.RotatedHostKey)
	if err := writeAndSync(filepath.Join(v1.target, "after-rotation"), []byte("written with the rotated key")); err != nil {
		t.Fatal(err)
	}
	// 3. New stages carry the new key; one with the old key is refused.
	v2 := authVolume(t, "lab-rot-2", 2, blockCapability(), authSecrets(labtarget.RotatedHostKey, ""))
	p.unstageAtEnd(t, v2)
	p.stage(t, v2)
	old := authVolume(t, "lab-rot-old", 2, blockCapability(), authSecrets(labtarget.HostKey, ""))
	_, err := p.node.NodeStageVolume(rpcContext(t), old.stageRequest())
	wantCSICode(t, err, codes.FailedPrecondition, "another dhchap_secret")
	// 4. An outage reconnects with the rotated key.
	writeAcrossOutage(t, v1, ctrl)

	// The other way: unstage everything, stage again with the new key.
	p.unstage(t, v2)
	p.unpublish(t, v1)
	p.unstage(t, v1)
	assertNothingLeft(t, nqn, filepath.Dir(v1.staging))
	v1.secrets = authSecrets(labtarget.RotatedHostKey, "")
	p.stage(t, v1)
	p.publish(t, v1)
	if b, err := os.ReadFile(filepath.Join(v1.target, "after-rotation")); err != nil || string(b) != "written with the rotated key" {
		t.Errorf("data written after the rotation: %q, %v", b, err)
	}
	p.unpublish(t, v1)
	p.unstage(t, v1)
	assertNothingLeft(t, nqn, filepath.Dir(v1.staging))
	assertNoKeyIn(t, "the plugin's log", p.log.String())
}
