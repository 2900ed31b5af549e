// Package nomadclient behaves as Nomad 1.11's client does towards a CSI
// node plugin, so that the plugin can be proven under Nomad's behaviour
// without Nomad (BUSL-licensed, never built or run by this project). Every
// behaviour comes from ../../../../shared/NOMAD-CLIENT.md, which cites the
// Nomad source line it was read from; comments here name the section.
//
// What it reproduces:
//   - plugin supervision (§1.1 A): Probe every 5 s until ready within the
//     csi_plugin health_timeout, else a PluginUnhealthy event and a task
//     restart; GetPluginInfo once (1 s) to register under the jobspec's
//     plugin id; then a Probe every 30 s that only emits events. A plugin
//     task that crashes is restarted in place by its restart policy, with
//     no re-registration and nothing re-staged (§4).
//   - fingerprinting (§1.1 B, §1.2): GetPluginCapabilities and NodeGetInfo
//     until they succeed once, Probe and NodeGetCapabilities on every pass
//     (30 s by default, each pass under one 30 s context), health as Nomad
//     decides it, staging decided once at the first good pass, and the
//     volume manager created only then.
//   - the path layout and the host/plugin split (§1.4, §2): host paths for
//     what the client creates and mount-checks, stage_publish_base_dir
//     paths in the RPCs; the staging dir created, only the target's parent
//     created, the target removed by the client after NodeUnpublish.
//   - claims (§3.1): requests filled exactly as Nomad fills them, NodeStage
//     skipped when the host staging dir is a mount point, NodePublish when
//     the target is, one operation per volume at a time (serializedOp), no
//     retries and no deadline on any mount RPC, the usage tracker claimed
//     before staging, a failed prerun followed by the postrun teardown.
//   - release (§3.3): NodeUnpublish, the target removed, NodeUnstage only
//     when the tracker says the last user of that usage is gone; a failed
//     unmount retried in the background with backoff (1 s doubling to
//     1 min); then the claim released on the server.
//   - the quirks (§3.3, §3.4, §4): server-driven NodeDetachVolume that
//     repeats NodeUnpublish and NodeUnstage; a tracker keyed on a mount
//     options pointer and emptied by a client restart, hence the early
//     NodeUnstage of Nomad issue 25813; a restored client that makes no
//     RPC for volumes still mounted.
//
// A minimal Server stands in for what the client asks of Nomad's servers:
// volume registration with the server's checks, claims with their limits,
// placement gated on plugin health and max_volumes_per_node, and the
// claim GC / `nomad volume detach` that re-send NodeDetachVolume.
//
// Tasks run through TaskDriver; the package ships none that touch the
// host: the lab (test/nomad) runs the plugin and consumers for real, and
// the unit tests use a fake plugin served in-process.
package nomadclient
