variable "function_name" {
  description = "Name of the Lambda function (also names its role and log group)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,58}$", var.function_name))
    error_message = "function_name must be 1-58 characters of letters, digits, '-' and '_' (the role name adds 6)."
  }
}

variable "description" {
  description = "Human description of the function."
  type        = string
  default     = ""
}

variable "handler" {
  description = "Handler in module.function form, e.g. pipeline.embed.handler."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z_][A-Za-z0-9_.]*\\.[A-Za-z_][A-Za-z0-9_]*$", var.handler))
    error_message = "handler must look like package.module.function."
  }
}

variable "runtime" {
  description = "Lambda runtime identifier."
  type        = string
}

variable "memory_size" {
  description = "Memory of the function in MB (128-10240)."
  type        = number

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be between 128 and 10240 MB."
  }
}

variable "timeout" {
  description = "Timeout of the function in seconds (1-900)."
  type        = number

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900
    error_message = "timeout must be between 1 and 900 seconds."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions; null leaves the function unreserved."
  type        = number
  default     = null
}

variable "environment" {
  description = "Environment variables of the function."
  type        = map(string)
  default     = {}
}

variable "package_path" {
  description = "Path of the deployment zip."
  type        = string
}

variable "package_hash" {
  description = "Base64 SHA-256 of the deployment zip, so a code change redeploys the function."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the function's log group, in days."
  type        = number
}

variable "enable_xray" {
  description = "Active X-Ray tracing (true) or pass-through (false)."
  type        = bool
  default     = false
}
