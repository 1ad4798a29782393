# ---------------------------------------------------------------------------------------
# Naming and placement
# ---------------------------------------------------------------------------------------

variable "name_prefix" {
  description = "Prefix of every resource name (functions, state machine, log groups, dashboard). Lower-case letters, digits and hyphens, 3-24 characters, starting with a letter."
  type        = string
  default     = "scale-or-fail"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,23}$", var.name_prefix))
    error_message = "name_prefix must be 3-24 characters of a-z, 0-9 and '-', starting with a letter."
  }
}

variable "region" {
  description = "AWS region to deploy into (also the region the local emulator reports)."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must look like an AWS region code, e.g. us-east-1 or eu-west-2."
  }
}

variable "tags" {
  description = "Extra tags added to every resource (the provider's default_tags)."
  type        = map(string)
  default     = {}
}

variable "emulator_endpoint" {
  description = "Only for running this module against the embedded emulator: its URL (e.g. http://127.0.0.1:4566). null (the default) means real AWS."
  type        = string
  default     = null

  validation {
    condition     = var.emulator_endpoint == null || can(regex("^https?://(127\\.0\\.0\\.1|localhost|\\[::1\\])(:[0-9]+)?/?$", var.emulator_endpoint))
    error_message = "emulator_endpoint must be a loopback URL such as http://127.0.0.1:4566, or null for AWS."
  }
}

# ---------------------------------------------------------------------------------------
# Lambda functions
# ---------------------------------------------------------------------------------------

variable "lambda_runtime" {
  description = "Python runtime of the three functions."
  type        = string
  default     = "python3.12"

  validation {
    condition     = contains(["python3.11", "python3.12", "python3.13"], var.lambda_runtime)
    error_message = "lambda_runtime must be python3.11, python3.12 or python3.13."
  }
}

variable "preprocess_memory_mb" {
  description = "Memory size of the Preprocess function, in MB (128-10240)."
  type        = number
  default     = 128

  validation {
    condition     = var.preprocess_memory_mb >= 128 && var.preprocess_memory_mb <= 10240 && floor(var.preprocess_memory_mb) == var.preprocess_memory_mb
    error_message = "preprocess_memory_mb must be a whole number of MB between 128 and 10240."
  }
}

variable "embed_memory_mb" {
  description = "Memory size of the Embed (model) function, in MB (128-10240). Lambda gives CPU in proportion to memory."
  type        = number
  default     = 256

  validation {
    condition     = var.embed_memory_mb >= 128 && var.embed_memory_mb <= 10240 && floor(var.embed_memory_mb) == var.embed_memory_mb
    error_message = "embed_memory_mb must be a whole number of MB between 128 and 10240."
  }
}

variable "postprocess_memory_mb" {
  description = "Memory size of the Postprocess function, in MB (128-10240)."
  type        = number
  default     = 128

  validation {
    condition     = var.postprocess_memory_mb >= 128 && var.postprocess_memory_mb <= 10240 && floor(var.postprocess_memory_mb) == var.postprocess_memory_mb
    error_message = "postprocess_memory_mb must be a whole number of MB between 128 and 10240."
  }
}

variable "preprocess_timeout_seconds" {
  description = "Timeout of the Preprocess function, in seconds (1-900)."
  type        = number
  default     = 3

  validation {
    condition     = var.preprocess_timeout_seconds >= 1 && var.preprocess_timeout_seconds <= 900
    error_message = "preprocess_timeout_seconds must be between 1 and 900."
  }
}

variable "embed_timeout_seconds" {
  description = "Timeout of the Embed function, in seconds (1-900)."
  type        = number
  default     = 6

  validation {
    condition     = var.embed_timeout_seconds >= 1 && var.embed_timeout_seconds <= 900
    error_message = "embed_timeout_seconds must be between 1 and 900."
  }
}

variable "postprocess_timeout_seconds" {
  description = "Timeout of the Postprocess function, in seconds (1-900)."
  type        = number
  default     = 3

  validation {
    condition     = var.postprocess_timeout_seconds >= 1 && var.postprocess_timeout_seconds <= 900
    error_message = "postprocess_timeout_seconds must be between 1 and 900."
  }
}

variable "embed_reserved_concurrency" {
  description = "Reserved concurrency of the Embed function. null leaves it unreserved (shares the account pool); 0 throttles every invocation. AWS keeps min(100, account limit) unreserved, so on the default 1,000 account at most 900 can be reserved, and on a sandbox account limited to 10 only 0 (or null)."
  type        = number
  default     = null

  validation {
    condition     = var.embed_reserved_concurrency == null || (try(var.embed_reserved_concurrency >= 0 && var.embed_reserved_concurrency <= 900 && floor(var.embed_reserved_concurrency) == var.embed_reserved_concurrency, false))
    error_message = "embed_reserved_concurrency must be null or a whole number between 0 and 900: AWS keeps at least 100 of the default 1,000 account concurrency unreserved (a sandbox account limited to 10 accepts only 0)."
  }
}

variable "max_text_chars" {
  description = "Longest ticket text accepted, in characters; longer texts fail with PayloadTooLarge (the workshop uses 5000)."
  type        = number
  default     = 5000

  validation {
    condition     = var.max_text_chars >= 1 && var.max_text_chars <= 100000
    error_message = "max_text_chars must be between 1 and 100000."
  }
}

variable "priority_score_threshold" {
  description = "Lowest route score (cosine similarity) at which a billing or delivery ticket becomes P1."
  type        = number
  default     = 0.15

  validation {
    condition     = var.priority_score_threshold >= -1 && var.priority_score_threshold <= 1
    error_message = "priority_score_threshold must be between -1 and 1."
  }
}

# ---------------------------------------------------------------------------------------
# The model step's fault knobs (Embed environment variables)
# ---------------------------------------------------------------------------------------

variable "simulated_infer_ms" {
  description = "Mean simulated inference latency of the Embed step, in milliseconds (the workshop uses 250)."
  type        = number
  default     = 250

  validation {
    condition     = var.simulated_infer_ms >= 0 && var.simulated_infer_ms <= 60000
    error_message = "simulated_infer_ms must be between 0 and 60000."
  }
}

variable "infer_jitter_sigma_ms" {
  description = "Standard deviation of the normal jitter added to the inference latency, in milliseconds."
  type        = number
  default     = 25

  validation {
    condition     = var.infer_jitter_sigma_ms >= 0 && var.infer_jitter_sigma_ms <= 10000
    error_message = "infer_jitter_sigma_ms must be between 0 and 10000."
  }
}

variable "infer_jitter_clamp_ms" {
  description = "The jitter is clamped to +/- this many milliseconds."
  type        = number
  default     = 50

  validation {
    condition     = var.infer_jitter_clamp_ms >= 0 && var.infer_jitter_clamp_ms <= 10000
    error_message = "infer_jitter_clamp_ms must be between 0 and 10000."
  }
}

variable "infer_seed" {
  description = "Seed for the inference latency jitter (the same seed gives the same latency per ticket); empty means random."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{0,32}$", var.infer_seed))
    error_message = "infer_seed must be up to 32 letters, digits, '-' or '_' (empty for random)."
  }
}

variable "model_memory_mb" {
  description = "Memory the simulated model allocates and touches per Embed invocation, in MB. Above what the function has, invocations fail out of memory (the EXHAUSTED scenario)."
  type        = number
  default     = 16

  validation {
    condition     = var.model_memory_mb >= 0 && var.model_memory_mb <= 10240 && floor(var.model_memory_mb) == var.model_memory_mb
    error_message = "model_memory_mb must be a whole number between 0 and 10240."
  }
}

variable "dependency_latency_ms" {
  description = "Latency of the simulated external feature service Embed calls, in milliseconds; 0 means no call."
  type        = number
  default     = 0

  validation {
    condition     = var.dependency_latency_ms >= 0 && var.dependency_latency_ms <= 900000
    error_message = "dependency_latency_ms must be between 0 and 900000."
  }
}

variable "dependency_timeout_ms" {
  description = "How long Embed waits for the feature service before failing with DependencyTimeout, in milliseconds."
  type        = number
  default     = 1000

  validation {
    condition     = var.dependency_timeout_ms >= 1 && var.dependency_timeout_ms <= 900000
    error_message = "dependency_timeout_ms must be between 1 and 900000."
  }
}

# ---------------------------------------------------------------------------------------
# The state machine
# ---------------------------------------------------------------------------------------

variable "default_max_concurrency" {
  description = "Map MaxConcurrency used when an execution's input has no max_concurrency (the scaling knob; the workshop starts at 2)."
  type        = number
  default     = 2

  validation {
    condition     = var.default_max_concurrency >= 1 && var.default_max_concurrency <= 40 && floor(var.default_max_concurrency) == var.default_max_concurrency
    error_message = "default_max_concurrency must be a whole number between 1 and 40 (inline Map runs at most 40 iterations at once)."
  }
}

variable "map_mode" {
  description = "How the Map runs the tickets: inline (the workshop: every iteration in the execution's one history, at most 40 at once, tickets in the input) or distributed (each ticket - or ItemBatcher batch - a child execution with its own history, up to 10,000 at once, tickets read from S3)."
  type        = string
  default     = "inline"

  validation {
    condition     = contains(["inline", "distributed"], var.map_mode)
    error_message = "map_mode must be \"inline\" or \"distributed\"."
  }
}

variable "distributed_map" {
  description = "The Distributed Map's options (map_mode = distributed): child execution_type STANDARD or EXPRESS; max_concurrency, the default child executions at once when the input has no max_concurrency (0 = no limit: 10,000; null = default_max_concurrency); ItemBatcher max_items_per_batch / max_input_bytes_per_batch (0 = one ticket per child); tolerated_failure_percentage / tolerated_failure_count (0 = none tolerated); write_results, the ResultWriter to S3."
  type = object({
    execution_type               = optional(string, "STANDARD")
    max_concurrency              = optional(number)
    max_items_per_batch          = optional(number, 0)
    max_input_bytes_per_batch    = optional(number, 0)
    tolerated_failure_percentage = optional(number, 0)
    tolerated_failure_count      = optional(number, 0)
    write_results                = optional(bool, true)
  })
  default = {}

  validation {
    condition     = contains(["STANDARD", "EXPRESS"], var.distributed_map.execution_type)
    error_message = "distributed_map.execution_type must be STANDARD or EXPRESS."
  }

  validation {
    condition     = var.distributed_map.max_concurrency == null || (try(var.distributed_map.max_concurrency >= 0 && var.distributed_map.max_concurrency <= 10000 && floor(var.distributed_map.max_concurrency) == var.distributed_map.max_concurrency, false))
    error_message = "distributed_map.max_concurrency must be null or a whole number between 0 and 10000 (0 = no limit)."
  }

  validation {
    condition     = var.distributed_map.max_items_per_batch >= 0 && var.distributed_map.max_items_per_batch <= 100000 && floor(var.distributed_map.max_items_per_batch) == var.distributed_map.max_items_per_batch
    error_message = "distributed_map.max_items_per_batch must be a whole number between 0 (no batching) and 100000."
  }

  validation {
    condition     = var.distributed_map.max_input_bytes_per_batch >= 0 && var.distributed_map.max_input_bytes_per_batch <= 262144 && floor(var.distributed_map.max_input_bytes_per_batch) == var.distributed_map.max_input_bytes_per_batch
    error_message = "distributed_map.max_input_bytes_per_batch must be a whole number between 0 (no limit) and 262144 (256 KiB)."
  }

  validation {
    condition     = var.distributed_map.tolerated_failure_percentage >= 0 && var.distributed_map.tolerated_failure_percentage <= 100
    error_message = "distributed_map.tolerated_failure_percentage must be between 0 and 100."
  }

  validation {
    condition     = var.distributed_map.tolerated_failure_count >= 0 && floor(var.distributed_map.tolerated_failure_count) == var.distributed_map.tolerated_failure_count
    error_message = "distributed_map.tolerated_failure_count must be a whole number, 0 or more."
  }
}

variable "lambda_retry" {
  description = "Retry policy of the three Lambda tasks. max_attempts = 0 disables retries (throttled items then fail the execution). jitter_strategy is FULL or NONE."
  type = object({
    errors            = optional(list(string), ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.ClientExecutionTimeoutException", "Lambda.TooManyRequestsException", "DependencyTimeout"])
    interval_seconds  = optional(number, 1)
    backoff_rate      = optional(number, 2)
    max_attempts      = optional(number, 6)
    max_delay_seconds = optional(number, 20)
    jitter_strategy   = optional(string, "FULL")
  })
  default = {}

  validation {
    condition     = var.lambda_retry.max_attempts >= 0 && var.lambda_retry.max_attempts <= 20 && floor(var.lambda_retry.max_attempts) == var.lambda_retry.max_attempts
    error_message = "lambda_retry.max_attempts must be a whole number between 0 and 20."
  }

  validation {
    condition     = var.lambda_retry.interval_seconds >= 1 && var.lambda_retry.interval_seconds <= 3600 && floor(var.lambda_retry.interval_seconds) == var.lambda_retry.interval_seconds
    error_message = "lambda_retry.interval_seconds must be a whole number between 1 and 3600."
  }

  validation {
    condition     = var.lambda_retry.backoff_rate >= 1 && var.lambda_retry.backoff_rate <= 10
    error_message = "lambda_retry.backoff_rate must be between 1.0 and 10.0."
  }

  validation {
    condition     = var.lambda_retry.max_delay_seconds >= 1 && var.lambda_retry.max_delay_seconds <= 31622400 && floor(var.lambda_retry.max_delay_seconds) == var.lambda_retry.max_delay_seconds
    error_message = "lambda_retry.max_delay_seconds must be a whole number of seconds, at least 1."
  }

  validation {
    condition     = contains(["FULL", "NONE"], var.lambda_retry.jitter_strategy)
    error_message = "lambda_retry.jitter_strategy must be FULL or NONE."
  }

  validation {
    condition     = length(var.lambda_retry.errors) > 0
    error_message = "lambda_retry.errors must name at least one error (use max_attempts = 0 to disable retries)."
  }
}

variable "bad_input_policy" {
  description = "What a bad ticket does: 'fail' (the workshop: the execution FAILS with the error) or 'quarantine' (the item is recorded as REJECTED with its error and the batch succeeds)."
  type        = string
  default     = "fail"

  validation {
    condition     = contains(["fail", "quarantine"], var.bad_input_policy)
    error_message = "bad_input_policy must be 'fail' or 'quarantine'."
  }
}

variable "quarantine_errors" {
  description = "Errors that count as bad input under the quarantine policy."
  type        = list(string)
  default     = ["PayloadTooLarge", "InvalidTicket"]

  validation {
    condition     = length(var.quarantine_errors) > 0
    error_message = "quarantine_errors must name at least one error."
  }
}

variable "execution_timeout_seconds" {
  description = "An execution still running after this many seconds ends TIMED_OUT."
  type        = number
  default     = 3600

  validation {
    condition     = var.execution_timeout_seconds >= 60 && var.execution_timeout_seconds <= 86400
    error_message = "execution_timeout_seconds must be between 60 and 86400."
  }
}

variable "state_machine_log_level" {
  description = "Step Functions logging level: ALL (every history event, needed by the retry/throttle Logs Insights query), ERROR, FATAL or OFF."
  type        = string
  default     = "ALL"

  validation {
    condition     = contains(["ALL", "ERROR", "FATAL", "OFF"], var.state_machine_log_level)
    error_message = "state_machine_log_level must be ALL, ERROR, FATAL or OFF."
  }
}

variable "state_machine_include_execution_data" {
  description = "Write each execution event's input, output and task parameters (every ticket's text) to the execution log. Off by default: the log then holds event types, state names, error names and causes, which is all the throttled-retried Logs Insights query reads; turn it on only to debug payloads, and mind that ticket text then sits in CloudWatch Logs for log_retention_days."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------------------------------
# Going further: Embed served by a SageMaker serverless endpoint (Activity 9)
# ---------------------------------------------------------------------------------------

variable "embed_backend" {
  description = "Where Embed runs: \"lambda\" (the workshop) or \"sagemaker\" (a serverless endpoint called through aws-sdk:sagemakerruntime:invokeEndpoint; build the bundle first with `make package`)."
  type        = string
  default     = "lambda"

  validation {
    condition     = contains(["lambda", "sagemaker"], var.embed_backend)
    error_message = "embed_backend must be \"lambda\" or \"sagemaker\"."
  }
}

variable "sagemaker_max_concurrency" {
  description = "MaxConcurrency of the serverless endpoint (1-200). Above it InvokeEndpoint is throttled - rejected, not queued."
  type        = number
  default     = 2

  validation {
    condition     = var.sagemaker_max_concurrency >= 1 && var.sagemaker_max_concurrency <= 200 && floor(var.sagemaker_max_concurrency) == var.sagemaker_max_concurrency
    error_message = "sagemaker_max_concurrency must be a whole number between 1 and 200."
  }
}

variable "sagemaker_memory_mb" {
  description = "Memory of the serverless endpoint in MB: 1024, 2048, 3072, 4096, 5120 or 6144."
  type        = number
  default     = 1024

  validation {
    condition     = contains([1024, 2048, 3072, 4096, 5120, 6144], var.sagemaker_memory_mb)
    error_message = "sagemaker_memory_mb must be 1024, 2048, 3072, 4096, 5120 or 6144."
  }
}

variable "sagemaker_image_uri" {
  description = "Serving image of the endpoint. null uses the region's SageMaker scikit-learn 1.2-1 CPU image (the provider's aws_sagemaker_prebuilt_ecr_image data source)."
  type        = string
  default     = null

  validation {
    condition     = var.sagemaker_image_uri == null || can(regex("^[0-9]{12}\\.dkr\\.ecr\\.", var.sagemaker_image_uri))
    error_message = "sagemaker_image_uri must be an ECR image URI (<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>)."
  }
}

variable "sagemaker_throttle_retry_attempts" {
  description = "Retries of a throttled InvokeEndpoint (SageMakerRuntime.ThrottlingException), 0-10. 0 (the workshop) lets the execution fail, so the rejection is visible."
  type        = number
  default     = 0

  validation {
    condition     = var.sagemaker_throttle_retry_attempts >= 0 && var.sagemaker_throttle_retry_attempts <= 10 && floor(var.sagemaker_throttle_retry_attempts) == var.sagemaker_throttle_retry_attempts
    error_message = "sagemaker_throttle_retry_attempts must be a whole number between 0 and 10."
  }
}

# ---------------------------------------------------------------------------------------
# Observability
# ---------------------------------------------------------------------------------------

variable "log_retention_days" {
  description = "Retention of every log group, in days (a value CloudWatch Logs accepts)."
  type        = number
  default     = 7

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "enable_xray" {
  description = "Turn on AWS X-Ray tracing for the functions and the state machine."
  type        = bool
  default     = false
}

variable "alarm_email" {
  description = "E-mail address subscribed to the alarms through SNS; null creates no topic."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alarm_email))
    error_message = "alarm_email must be an e-mail address or null."
  }
}

variable "embed_p95_alarm_threshold_ms" {
  description = "The Embed p95 Duration alarm fires above this many milliseconds."
  type        = number
  default     = 1000

  validation {
    condition     = var.embed_p95_alarm_threshold_ms > 0
    error_message = "embed_p95_alarm_threshold_ms must be positive."
  }
}
