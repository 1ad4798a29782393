data "aws_partition" "current" {}

locals {
  use_emulator  = var.emulator_endpoint != null
  use_sagemaker = var.embed_backend == "sagemaker"
  distributed   = var.map_mode == "distributed"

  tags = merge({ Project = "scale-or-fail", Stack = var.name_prefix }, var.tags)

  # The three pipeline steps: one deployment package, one function each.
  functions = {
    preprocess = {
      handler              = "pipeline.preprocess.handler"
      description          = "Validates a support ticket, normalises its text and counts tokens."
      memory_size          = var.preprocess_memory_mb
      timeout              = var.preprocess_timeout_seconds
      reserved_concurrency = null
      environment = {
        MAX_TEXT_CHARS = tostring(var.max_text_chars)
      }
    }
    embed = {
      handler              = "pipeline.embed.handler"
      description          = "The model step: simulated MiniLM embedding and routing, with fault knobs."
      memory_size          = var.embed_memory_mb
      timeout              = var.embed_timeout_seconds
      reserved_concurrency = var.embed_reserved_concurrency
      environment = {
        MAX_TEXT_CHARS        = tostring(var.max_text_chars)
        SIMULATED_INFER_MS    = tostring(var.simulated_infer_ms)
        INFER_JITTER_SIGMA_MS = tostring(var.infer_jitter_sigma_ms)
        INFER_JITTER_CLAMP_MS = tostring(var.infer_jitter_clamp_ms)
        INFER_SEED            = var.infer_seed
        MODEL_MEMORY_MB       = tostring(var.model_memory_mb)
        DEPENDENCY_LATENCY_MS = tostring(var.dependency_latency_ms)
        DEPENDENCY_TIMEOUT_MS = tostring(var.dependency_timeout_ms)
      }
    }
    postprocess = {
      handler              = "pipeline.postprocess.handler"
      description          = "Sets priority and action from the route and its score."
      memory_size          = var.postprocess_memory_mb
      timeout              = var.postprocess_timeout_seconds
      reserved_concurrency = null
      environment = {
        PRIORITY_SCORE_THRESHOLD = tostring(var.priority_score_threshold)
      }
    }
  }

  # Retry and Catch rules shared by the three Lambda tasks of the state machine.
  lambda_retry = var.lambda_retry.max_attempts == 0 ? [] : [{
    ErrorEquals     = var.lambda_retry.errors
    IntervalSeconds = var.lambda_retry.interval_seconds
    BackoffRate     = var.lambda_retry.backoff_rate
    MaxAttempts     = var.lambda_retry.max_attempts
    MaxDelaySeconds = var.lambda_retry.max_delay_seconds
    JitterStrategy  = var.lambda_retry.jitter_strategy
  }]

  # Embed as a SageMaker endpoint: a throttled request fails at once (no queue); retrying is opt-in.
  sagemaker_retry = var.sagemaker_throttle_retry_attempts == 0 ? [] : [{
    ErrorEquals     = ["SageMakerRuntime.ThrottlingException"]
    IntervalSeconds = 1
    BackoffRate     = 2
    MaxAttempts     = var.sagemaker_throttle_retry_attempts
    MaxDelaySeconds = 20
    JitterStrategy  = "FULL"
  }]

  # The functions deployed: with the SageMaker backend, Embed is the endpoint instead.
  lambda_steps = { for key, step in local.functions : key => step if !(local.use_sagemaker && key == "embed") }

  quarantine_catch = [{
    ErrorEquals = var.quarantine_errors
    ResultPath  = "$"
    Next        = "Quarantine"
  }]

  # The Distributed Map (map_mode = "distributed"): tickets read from the map bucket's batches/,
  # results written to its results/; with ItemBatcher, each child runs an inline Map over its Items.
  map_items_prefix   = "batches/"
  map_results_prefix = "results/"
  item_batcher = merge(
    var.distributed_map.max_items_per_batch > 0 ? { MaxItemsPerBatch = var.distributed_map.max_items_per_batch } : {},
    var.distributed_map.max_input_bytes_per_batch > 0 ? { MaxInputBytesPerBatch = var.distributed_map.max_input_bytes_per_batch } : {},
  )
  distributed_options = {
    execution_type               = var.distributed_map.execution_type
    item_batcher                 = local.item_batcher
    tolerated_failure_percentage = var.distributed_map.tolerated_failure_percentage
    tolerated_failure_count      = var.distributed_map.tolerated_failure_count
    write_results                = var.distributed_map.write_results
    results_prefix               = trimsuffix(local.map_results_prefix, "/")
  }
  default_max_concurrency = local.distributed && var.distributed_map.max_concurrency != null ? var.distributed_map.max_concurrency : var.default_max_concurrency

  # What the state machine template needs, in two parts: the settings, known before apply
  # (Terraform and the local target render these identically - tests/test_tf_differential.py) ...
  definition_settings = {
    embed_backend           = var.embed_backend
    default_max_concurrency = local.default_max_concurrency
    map_mode                = var.map_mode
    distributed             = local.distributed_options
    execution_timeout       = var.execution_timeout_seconds
    bad_input_policy        = var.bad_input_policy
    lambda_retry            = local.lambda_retry
    sagemaker_retry         = local.sagemaker_retry
    quarantine_catch        = local.quarantine_catch
  }
  # ... and what AWS assigns: the partition and the ARN or name of each step.
  definition_resources = {
    partition                = data.aws_partition.current.partition
    preprocess_function_arn  = module.step["preprocess"].function_arn
    postprocess_function_arn = module.step["postprocess"].function_arn
    embed_function_arn       = local.use_sagemaker ? "" : module.step["embed"].function_arn
    embed_endpoint_name      = local.use_sagemaker ? module.embed_endpoint[0].endpoint_name : ""
    map_bucket               = local.distributed ? module.map_bucket[0].bucket : ""
  }
}

# One zip holds the `pipeline` package; each function points its handler at one module.
data "archive_file" "lambda" {
  type        = "zip"
  source_dir  = "${path.module}/../lambda_src"
  output_path = "${path.module}/../build/lambda.zip"
  excludes    = ["**/__pycache__/**", "**/*.pyc", "inference.py"] # inference.py: the SageMaker bundle's entry
}

module "step" {
  source   = "./modules/lambda_step"
  for_each = local.lambda_steps

  function_name        = "${var.name_prefix}-${each.key}"
  description          = each.value.description
  handler              = each.value.handler
  runtime              = var.lambda_runtime
  memory_size          = each.value.memory_size
  timeout              = each.value.timeout
  reserved_concurrency = each.value.reserved_concurrency
  environment          = each.value.environment
  package_path         = data.archive_file.lambda.output_path
  package_hash         = data.archive_file.lambda.output_base64sha256
  log_retention_days   = var.log_retention_days
  enable_xray          = var.enable_xray
}

# Activity 9: Embed served by a SageMaker serverless endpoint (embed_backend = "sagemaker").
module "embed_endpoint" {
  source = "./modules/sagemaker_endpoint"
  count  = local.use_sagemaker ? 1 : 0

  name               = "${var.name_prefix}-embed"
  bundle_path        = "${path.module}/../build/model.tar.gz"
  image_uri          = var.sagemaker_image_uri
  max_concurrency    = var.sagemaker_max_concurrency
  memory_size_mb     = var.sagemaker_memory_mb
  environment        = local.functions.embed.environment
  log_retention_days = var.log_retention_days
}

# The Distributed Map's bucket (map_mode = "distributed"): ticket batches in, Map Run results out.
module "map_bucket" {
  source = "./modules/map_bucket"
  count  = local.distributed ? 1 : 0

  name = "${var.name_prefix}-map"
}

module "state_machine" {
  source = "./modules/state_machine"

  name       = "${var.name_prefix}-pipeline"
  definition = templatefile("${path.module}/templates/pipeline.asl.json.tftpl", merge(local.definition_settings, local.definition_resources))

  lambda_function_arns    = [for step in module.step : step.function_arn]
  sagemaker_endpoint_arns = [for endpoint in module.embed_endpoint : endpoint.endpoint_arn]
  distributed_map = local.distributed ? {
    bucket_arn     = module.map_bucket[0].arn
    items_prefix   = local.map_items_prefix
    results_prefix = local.map_results_prefix
  } : null
  log_level              = var.state_machine_log_level
  include_execution_data = var.state_machine_include_execution_data
  log_retention_days     = var.log_retention_days
  enable_xray            = var.enable_xray
}

module "observability" {
  source = "./modules/observability"

  name_prefix             = var.name_prefix
  region                  = var.region
  function_names          = { for key, step in module.step : key => step.function_name }
  embed_endpoint_name     = one(module.embed_endpoint[*].endpoint_name)
  step_log_group_names    = concat([for step in module.step : step.log_group_name], [for endpoint in module.embed_endpoint : endpoint.log_group_name])
  state_machine_arn       = module.state_machine.arn
  state_machine_log_group = module.state_machine.log_group_name
  embed_p95_threshold_ms  = var.embed_p95_alarm_threshold_ms
  alarm_email             = var.alarm_email
  queries_dir             = "${path.module}/queries"
}
