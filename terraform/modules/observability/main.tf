locals {
  steps   = [for step in ["preprocess", "embed", "postprocess"] : step if contains(keys(var.function_names), step)]
  backend = var.embed_endpoint_name == null ? "lambda" : "sagemaker"
  queries = jsondecode(file("${var.queries_dir}/queries.json"))

  query_log_groups = {
    lambda        = var.step_log_group_names
    state_machine = [var.state_machine_log_group]
  }

  # What "Embed" means on the dashboard and in the alarms: the function, or the endpoint.
  embed_lambda   = { FunctionName = lookup(var.function_names, "embed", "") }
  embed_endpoint = { EndpointName = coalesce(var.embed_endpoint_name, "none"), VariantName = "AllTraffic" }
  embed_metrics = {
    lambda = {
      title = "Embed Duration p95 and ConcurrentExecutions (max)"
      metrics = [
        ["AWS/Lambda", "Duration", "FunctionName", local.embed_lambda.FunctionName, { stat = "p95", label = "Duration p95 (ms)" }],
        ["AWS/Lambda", "ConcurrentExecutions", "FunctionName", local.embed_lambda.FunctionName, { stat = "Maximum", label = "ConcurrentExecutions max", yAxis = "right" }],
      ]
      throttles = "Embed: AWS/Lambda Throttles"
    }
    sagemaker = {
      title = "Embed endpoint ModelLatency p95 (us) and Invocations"
      metrics = [
        ["AWS/SageMaker", "ModelLatency", "EndpointName", local.embed_endpoint.EndpointName, "VariantName", "AllTraffic", { stat = "p95", label = "ModelLatency p95 (us)" }],
        ["AWS/SageMaker", "Invocations", "EndpointName", local.embed_endpoint.EndpointName, "VariantName", "AllTraffic", { stat = "Sum", label = "Invocations", yAxis = "right" }],
      ]
      throttles = "Embed endpoint: AWS/SageMaker Invocation4XXErrors (throttled requests)"
    }
  }[local.backend]
  embed_alarms = {
    lambda = {
      throttle_namespace = "AWS/Lambda"
      throttle_metric    = "Throttles"
      latency_namespace  = "AWS/Lambda"
      latency_metric     = "Duration"
      dimensions         = local.embed_lambda
      threshold          = var.embed_p95_threshold_ms
    }
    sagemaker = {
      throttle_namespace = "AWS/SageMaker"
      throttle_metric    = "Invocation4XXErrors"
      latency_namespace  = "AWS/SageMaker"
      latency_metric     = "ModelLatency"
      dimensions         = local.embed_endpoint
      threshold          = var.embed_p95_threshold_ms * 1000 # ModelLatency is in microseconds
    }
  }[local.backend]

  alarm_actions = var.alarm_email == null ? [] : [aws_sns_topic.alarms[0].arn]

  lambda_metric_by_step = { for metric in ["Invocations", "Errors", "Throttles"] : metric => [
    for step in local.steps : ["AWS/Lambda", metric, "FunctionName", var.function_names[step], { label = step }]
  ] }

  dashboard = {
    widgets = [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title   = "Lambda Invocations by step"
          region  = var.region, view = "timeSeries", stat = "Sum", period = var.period_seconds
          metrics = local.lambda_metric_by_step["Invocations"]
        }
      },
      {
        type = "metric", x = 12, y = 0, width = 12, height = 6
        properties = {
          title   = local.embed_metrics.title
          region  = var.region, view = "timeSeries", period = var.period_seconds
          metrics = local.embed_metrics.metrics
        }
      },
      {
        type = "metric", x = 0, y = 6, width = 12, height = 6
        properties = {
          title  = "Step Functions executions"
          region = var.region, view = "timeSeries", stat = "Sum", period = var.period_seconds
          metrics = [for metric in ["ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed"] :
            ["AWS/States", metric, "StateMachineArn", var.state_machine_arn, { label = metric }]
          ]
        }
      },
      {
        type = "metric", x = 12, y = 6, width = 12, height = 6
        properties = {
          title   = "Lambda Errors by step"
          region  = var.region, view = "timeSeries", stat = "Sum", period = var.period_seconds
          metrics = local.lambda_metric_by_step["Errors"]
        }
      },
      {
        type = "metric", x = 0, y = 12, width = 12, height = 6
        properties = {
          title  = "Throttles by step (Lambda 429 TooManyRequests; endpoint ThrottlingException as 4XX)"
          region = var.region, view = "timeSeries", stat = "Sum", period = var.period_seconds
          metrics = concat(local.lambda_metric_by_step["Throttles"], local.backend == "sagemaker" ? [
            ["AWS/SageMaker", "Invocation4XXErrors", "EndpointName", local.embed_endpoint.EndpointName, "VariantName", "AllTraffic", { label = "embed endpoint 4XX (throttled)" }],
          ] : [])
        }
      },
      {
        type = "metric", x = 12, y = 12, width = 12, height = 6
        properties = {
          title   = "Step Functions ExecutionThrottled"
          region  = var.region, view = "timeSeries", stat = "Sum", period = var.period_seconds
          metrics = [["AWS/States", "ExecutionThrottled", "StateMachineArn", var.state_machine_arn, { label = "ExecutionThrottled" }]]
        }
      },
    ]
  }
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = "${var.name_prefix}-pipeline"
  dashboard_body = jsonencode(local.dashboard)
}

resource "aws_sns_topic" "alarms" {
  count             = var.alarm_email == null ? 0 : 1
  name              = "${var.name_prefix}-alarms"
  kms_master_key_id = "alias/aws/sns"
}

resource "aws_sns_topic_subscription" "email" {
  count     = var.alarm_email == null ? 0 : 1
  topic_arn = aws_sns_topic.alarms[0].arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

resource "aws_cloudwatch_metric_alarm" "embed_throttles" {
  alarm_name          = "${var.name_prefix}-embed-throttles"
  alarm_description   = "Embed was throttled (${local.embed_metrics.throttles}): concurrency limit reached. See the RCA tree, leaf THROTTLED."
  namespace           = local.embed_alarms.throttle_namespace
  metric_name         = local.embed_alarms.throttle_metric
  dimensions          = local.embed_alarms.dimensions
  statistic           = "Sum"
  period              = var.period_seconds
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "executions_failed" {
  alarm_name          = "${var.name_prefix}-executions-failed"
  alarm_description   = "A pipeline execution FAILED. Look at its history for the failing state and error name."
  namespace           = "AWS/States"
  metric_name         = "ExecutionsFailed"
  dimensions          = { StateMachineArn = var.state_machine_arn }
  statistic           = "Sum"
  period              = var.period_seconds
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "embed_p95_duration" {
  alarm_name          = "${var.name_prefix}-embed-p95-duration"
  alarm_description   = "Embed p95 ${local.embed_alarms.latency_metric} is above ${var.embed_p95_threshold_ms} ms: the model step is slow (resource or dependency)."
  namespace           = local.embed_alarms.latency_namespace
  metric_name         = local.embed_alarms.latency_metric
  dimensions          = local.embed_alarms.dimensions
  extended_statistic  = "p95"
  period              = var.period_seconds
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.embed_alarms.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_query_definition" "this" {
  for_each = local.queries

  name            = "${var.name_prefix}/${each.key}"
  query_string    = file("${var.queries_dir}/${each.value.file}")
  log_group_names = local.query_log_groups[each.value.log_groups]
}
