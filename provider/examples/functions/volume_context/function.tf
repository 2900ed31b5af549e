# A volume context without a resource, e.g. for a Nomad volume written by
# hand. Invalid settings fail the plan with the plugin's own message.
locals {
  scratch_context = provider::nvme::volume_context({
    traddr        = "192.0.2.10"
    nqn           = "nqn.2014-08.org.example:scratch"
    nsid          = 2
    ctrl_loss_tmo = 600
  })
}

output "scratch_context" {
  value = local.scratch_context
}
