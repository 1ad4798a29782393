variable "name" {
  description = "Name of the endpoint (also names its model, configuration, role, bucket prefix and log group). Letters, digits and hyphens, 1-40 characters."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9](-?[a-zA-Z0-9]){0,39}$", var.name))
    error_message = "name must be 1-40 letters, digits or single hyphens, starting and ending with a letter or digit."
  }
}

variable "bundle_path" {
  description = "Path of the model bundle (model.tar.gz with code/inference.py) built by `sof package`."
  type        = string
}

variable "image_uri" {
  description = "Serving container image. null uses the SageMaker scikit-learn 1.2-1 CPU image of the region (from the provider's aws_sagemaker_prebuilt_ecr_image; its inference toolkit runs code/inference.py)."
  type        = string
  default     = null

  validation {
    condition     = var.image_uri == null || can(regex("^[0-9]{12}\\.dkr\\.ecr\\.[a-z0-9-]+\\.amazonaws\\.com(\\.cn)?/[a-z0-9._/-]+(:[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})$", var.image_uri))
    error_message = "image_uri must be an ECR image URI such as 683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3."
  }
}

variable "max_concurrency" {
  description = "Serverless MaxConcurrency: requests the endpoint serves at once; the next one is throttled (1-200)."
  type        = number
  default     = 2

  validation {
    condition     = var.max_concurrency >= 1 && var.max_concurrency <= 200 && floor(var.max_concurrency) == var.max_concurrency
    error_message = "max_concurrency must be a whole number between 1 and 200."
  }
}

variable "memory_size_mb" {
  description = "Serverless memory size in MB: 1024, 2048, 3072, 4096, 5120 or 6144."
  type        = number
  default     = 1024

  validation {
    condition     = contains([1024, 2048, 3072, 4096, 5120, 6144], var.memory_size_mb)
    error_message = "memory_size_mb must be 1024, 2048, 3072, 4096, 5120 or 6144."
  }
}

variable "environment" {
  description = "Environment of the serving container: the Embed step's knobs (SIMULATED_INFER_MS, MODEL_MEMORY_MB, ...)."
  type        = map(string)
  default     = {}
}

variable "log_retention_days" {
  description = "Retention of the endpoint's log group, in days."
  type        = number
}
