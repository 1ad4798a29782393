data "aws_caller_identity" "current" {}

# Explicit log group with retention, created before the function can write to it.
resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_158:Lab logs hold synthetic tickets only; the AWS-owned key encrypts them at rest.
  #checkov:skip=CKV_AWS_338:Retention is a variable (default 7 days) so a lab leaves nothing behind for a year.
  name              = "/aws/lambda/${var.function_name}"
  retention_in_days = var.log_retention_days
}

data "aws_iam_policy_document" "assume" {
  statement {
    sid     = "LambdaAssumesThisRole"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = "${var.function_name}-exec"
  description        = "Execution role of ${var.function_name}: writes its own log group only."
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "WriteOwnLogGroup"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  dynamic "statement" {
    for_each = var.enable_xray ? [1] : []
    content {
      sid       = "XRayTraces"
      effect    = "Allow"
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "least-privilege"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_117:The pipeline calls no VPC resource; a VPC would add ENI cold starts to a scaling lab.
  #checkov:skip=CKV_AWS_116:Invoked synchronously by Step Functions, whose Retry/Catch handle failures; a DLQ applies to async invokes only.
  #checkov:skip=CKV_AWS_173:Environment variables hold tuning knobs, no secrets; the AWS-managed key encrypts them.
  #checkov:skip=CKV_AWS_272:Code signing needs a signing profile per account; the lab deploys from a local zip it just built.
  function_name                  = var.function_name
  description                    = var.description
  role                           = aws_iam_role.this.arn
  handler                        = var.handler
  runtime                        = var.runtime
  architectures                  = ["x86_64"]
  filename                       = var.package_path
  source_code_hash               = var.package_hash
  memory_size                    = var.memory_size
  timeout                        = var.timeout
  reserved_concurrent_executions = var.reserved_concurrency == null ? -1 : var.reserved_concurrency

  environment {
    variables = var.environment
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.this.name
  }

  tracing_config {
    mode = var.enable_xray ? "Active" : "PassThrough"
  }

  depends_on = [aws_iam_role_policy.this, aws_cloudwatch_log_group.this]
}
