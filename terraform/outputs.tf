# The stack-outputs contract: `sof deploy --target local` writes the same keys.
# See docs/stack-outputs.md. Add keys freely; never rename or remove one.

output "region" {
  description = "Region the stack lives in."
  value       = var.region
}

output "name_prefix" {
  description = "Prefix of every resource name."
  value       = var.name_prefix
}

output "state_machine_arn" {
  description = "ARN of the pipeline state machine (start executions here)."
  value       = module.state_machine.arn
}

output "state_machine_name" {
  description = "Name of the pipeline state machine."
  value       = module.state_machine.name
}

output "function_names" {
  description = "Lambda function names by step: preprocess, embed, postprocess (no embed when embed_backend is sagemaker)."
  value       = { for key, step in module.step : key => step.function_name }
}

output "function_arns" {
  description = "Lambda function ARNs by step: preprocess, embed, postprocess (no embed when embed_backend is sagemaker)."
  value       = { for key, step in module.step : key => step.function_arn }
}

output "log_group_names" {
  description = "CloudWatch log group names: one per step (preprocess, embed - the endpoint's with the SageMaker backend -, postprocess) and state_machine."
  value = merge(
    { for key, step in module.step : key => step.log_group_name },
    { for endpoint in module.embed_endpoint : "embed" => endpoint.log_group_name },
    { state_machine = module.state_machine.log_group_name },
  )
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = module.observability.dashboard_name
}

output "alarm_names" {
  description = "CloudWatch alarm names by purpose: embed_throttles, executions_failed, embed_p95_duration."
  value       = module.observability.alarm_names
}

output "query_definition_names" {
  description = "Saved Logs Insights query names by query key (see terraform/queries/queries.json)."
  value       = module.observability.query_definition_names
}

output "default_max_concurrency" {
  description = "Map MaxConcurrency applied when an execution's input has none."
  value       = local.default_max_concurrency
}

output "map_mode" {
  description = "How the Map runs the tickets: inline or distributed."
  value       = var.map_mode
}

output "map_bucket_name" {
  description = "The Distributed Map's bucket: ticket batches under batches/ (JSON Lines, the ItemReader's input), results under results/ (null with an inline Map)."
  value       = one(module.map_bucket[*].bucket)
}

output "map_execution_type" {
  description = "Type of the Distributed Map's child executions: STANDARD or EXPRESS (null with an inline Map)."
  value       = local.distributed ? var.distributed_map.execution_type : null
}

output "embed_reserved_concurrency" {
  description = "Reserved concurrency of the Embed function (null = unreserved)."
  value       = var.embed_reserved_concurrency
}

output "bad_input_policy" {
  description = "fail or quarantine: what a bad ticket does to its execution."
  value       = var.bad_input_policy
}

output "embed_backend" {
  description = "Where Embed runs: lambda or sagemaker."
  value       = var.embed_backend
}

output "embed_endpoint_name" {
  description = "The SageMaker serverless endpoint serving Embed (null with the Lambda backend)."
  value       = one(module.embed_endpoint[*].endpoint_name)
}

output "embed_endpoint_max_concurrency" {
  description = "MaxConcurrency of the Embed endpoint (null with the Lambda backend)."
  value       = one(module.embed_endpoint[*].max_concurrency)
}
