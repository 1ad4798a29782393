output "endpoint_name" {
  description = "Name of the serverless endpoint (InvokeEndpoint target)."
  value       = aws_sagemaker_endpoint.this.name
}

output "endpoint_arn" {
  description = "ARN of the serverless endpoint."
  value       = aws_sagemaker_endpoint.this.arn
}

output "endpoint_config_name" {
  description = "Name of the endpoint configuration in use."
  value       = aws_sagemaker_endpoint_configuration.serverless.name
}

output "model_name" {
  description = "Name of the SageMaker model (changes with the bundle and its settings)."
  value       = aws_sagemaker_model.model.name
}

output "bucket_name" {
  description = "Name of the private bucket holding the model bundle."
  value       = aws_s3_bucket.artifacts.id
}

output "log_group_name" {
  description = "Name of the endpoint's log group (/aws/sagemaker/Endpoints/<name>)."
  value       = aws_cloudwatch_log_group.endpoint.name
}

output "log_group_arn" {
  description = "ARN of the endpoint's log group."
  value       = aws_cloudwatch_log_group.endpoint.arn
}

output "image_uri" {
  description = "Serving container image."
  value       = local.image_uri
}

output "max_concurrency" {
  description = "Serverless MaxConcurrency of the endpoint."
  value       = var.max_concurrency
}
