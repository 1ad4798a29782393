variable "name_prefix" {
  description = "Prefix of the dashboard, alarm, topic and saved-query names."
  type        = string
}

variable "region" {
  description = "Region the dashboard's widgets read metrics from."
  type        = string
}

variable "function_names" {
  description = "Lambda function names by step: preprocess and postprocess, and embed unless embed_endpoint_name is set."
  type        = map(string)

  validation {
    condition     = contains(keys(var.function_names), "preprocess") && contains(keys(var.function_names), "postprocess")
    error_message = "function_names must have the keys preprocess and postprocess (and embed for the Lambda backend)."
  }
}

variable "embed_endpoint_name" {
  description = "The SageMaker endpoint serving Embed (embed_backend = \"sagemaker\"); null when Embed is a Lambda function."
  type        = string
  default     = null
}

variable "step_log_group_names" {
  description = "Log groups of the pipeline steps - the functions and the Embed endpoint (targets of the saved Logs Insights queries)."
  type        = list(string)
}

variable "state_machine_arn" {
  description = "ARN of the pipeline state machine (AWS/States metric dimension)."
  type        = string
}

variable "state_machine_log_group" {
  description = "Log group of the state machine's execution logs."
  type        = string
}

variable "embed_p95_threshold_ms" {
  description = "The Embed p95 Duration alarm fires above this many milliseconds."
  type        = number
}

variable "alarm_email" {
  description = "E-mail subscribed to the alarm topic; null creates no topic."
  type        = string
  default     = null
}

variable "queries_dir" {
  description = "Folder holding queries.json and the *.logsinsights query files."
  type        = string
}

variable "period_seconds" {
  description = "Period of the dashboard widgets and alarms, in seconds."
  type        = number
  default     = 60

  validation {
    condition     = contains([10, 30, 60, 300], var.period_seconds)
    error_message = "period_seconds must be 10, 30, 60 or 300."
  }
}
