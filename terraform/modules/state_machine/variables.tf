variable "name" {
  description = "Name of the state machine (also names its role and log group)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,58}$", var.name))
    error_message = "name must be 1-58 characters of letters, digits, '-' and '_'."
  }
}

variable "definition" {
  description = "Amazon States Language definition (JSON), rendered by the root module."
  type        = string
}

variable "lambda_function_arns" {
  description = "The Lambda functions the state machine may invoke (and nothing else)."
  type        = list(string)

  validation {
    condition     = length(var.lambda_function_arns) > 0
    error_message = "lambda_function_arns must list at least one function."
  }
}

variable "sagemaker_endpoint_arns" {
  description = "SageMaker endpoints the state machine may invoke (the Embed endpoint variant); empty for none."
  type        = list(string)
  default     = []
}

variable "log_level" {
  description = "Execution logging level: ALL, ERROR, FATAL or OFF."
  type        = string
  default     = "ALL"

  validation {
    condition     = contains(["ALL", "ERROR", "FATAL", "OFF"], var.log_level)
    error_message = "log_level must be ALL, ERROR, FATAL or OFF."
  }
}

variable "include_execution_data" {
  description = "Whether the execution log carries each event's input, output and task parameters (here: every ticket's text). Off, the events keep their type, state, error name and cause - all the throttled-retried query reads."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Retention of the state machine's log group, in days."
  type        = number
}

variable "enable_xray" {
  description = "Turn on X-Ray tracing of executions."
  type        = bool
  default     = false
}

variable "distributed_map" {
  description = "The Distributed Map's bucket (ARN) and the prefixes of the ticket batches it reads and the results it writes; null for an inline Map (no such permissions)."
  type = object({
    bucket_arn     = string
    items_prefix   = string
    results_prefix = string
  })
  default = null
}
