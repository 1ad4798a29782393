data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  # Built from the name, not read from the resource: the role's policy must not depend on the state machine it serves.
  arn_prefix        = "arn:${data.aws_partition.current.partition}:states:${data.aws_region.current.region}:${data.aws_caller_identity.current.account_id}"
  state_machine_arn = "${local.arn_prefix}:stateMachine:${var.name}"
}

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_158:Lab logs hold synthetic tickets only; the AWS-owned key encrypts them at rest.
  #checkov:skip=CKV_AWS_338:Retention is a variable (default 7 days) so a lab leaves nothing behind for a year.
  name              = "/aws/vendedlogs/states/${var.name}"
  retention_in_days = var.log_retention_days
}

data "aws_iam_policy_document" "assume" {
  statement {
    sid     = "StepFunctionsAssumesThisRole"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["states.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = "${var.name}-sfn"
  description        = "Role of the ${var.name} state machine: invokes the pipeline functions (and endpoint) and writes its logs."
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "InvokePipelineFunctions"
    effect    = "Allow"
    actions   = ["lambda:InvokeFunction"]
    resources = concat(var.lambda_function_arns, [for arn in var.lambda_function_arns : "${arn}:*"])
  }

  dynamic "statement" {
    for_each = length(var.sagemaker_endpoint_arns) > 0 ? [1] : []
    content {
      sid       = "InvokeEmbedEndpoint"
      effect    = "Allow"
      actions   = ["sagemaker:InvokeEndpoint"]
      resources = var.sagemaker_endpoint_arns
    }
  }

  # The Distributed Map (map_mode = "distributed"): its Map Run starts child executions of this very
  # state machine, describes and stops them, reads the ticket batches and writes the results.
  dynamic "statement" {
    for_each = var.distributed_map == null ? [] : [var.distributed_map]
    content {
      sid       = "StartChildExecutions"
      effect    = "Allow"
      actions   = ["states:StartExecution"]
      resources = [local.state_machine_arn]
    }
  }

  dynamic "statement" {
    for_each = var.distributed_map == null ? [] : [var.distributed_map]
    content {
      sid       = "ManageChildExecutions"
      effect    = "Allow"
      actions   = ["states:DescribeExecution", "states:StopExecution"]
      resources = ["${local.arn_prefix}:execution:${var.name}/*"]
    }
  }

  dynamic "statement" {
    for_each = var.distributed_map == null ? [] : [var.distributed_map]
    content {
      sid       = "ReadTicketBatches"
      effect    = "Allow"
      actions   = ["s3:GetObject"]
      resources = ["${statement.value.bucket_arn}/${statement.value.items_prefix}*"]
    }
  }

  dynamic "statement" {
    for_each = var.distributed_map == null ? [] : [var.distributed_map]
    content {
      sid       = "WriteMapRunResults"
      effect    = "Allow"
      actions   = ["s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"]
      resources = ["${statement.value.bucket_arn}/${statement.value.results_prefix}*"]
    }
  }

  # CloudWatch Logs delivery for Step Functions: these actions do not support
  # resource-level permissions, so AWS requires "*" here.
  statement {
    sid    = "DeliverExecutionLogs"
    effect = "Allow"
    actions = [
      "logs:CreateLogDelivery",
      "logs:DeleteLogDelivery",
      "logs:DescribeLogGroups",
      "logs:DescribeResourcePolicies",
      "logs:GetLogDelivery",
      "logs:ListLogDeliveries",
      "logs:PutResourcePolicy",
      "logs:UpdateLogDelivery",
    ]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = var.enable_xray ? [1] : []
    content {
      sid       = "XRayTraces"
      effect    = "Allow"
      actions   = ["xray:GetSamplingRules", "xray:GetSamplingTargets", "xray:PutTelemetryRecords", "xray:PutTraceSegments"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "least-privilege"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

resource "aws_sfn_state_machine" "this" {
  #checkov:skip=CKV_AWS_284:X-Ray is the enable_xray variable, off by default to keep the lab free of tracing costs.
  name       = var.name
  type       = "STANDARD"
  role_arn   = aws_iam_role.this.arn
  definition = var.definition

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.this.arn}:*"
    include_execution_data = var.include_execution_data
    level                  = var.log_level
  }

  tracing_configuration {
    enabled = var.enable_xray
  }

  depends_on = [aws_iam_role_policy.this]
}
