data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

# The SageMaker scikit-learn serving image of the region, as the provider knows it (its
# registry accounts per region). Read only when no image_uri is given.
data "aws_sagemaker_prebuilt_ecr_image" "sklearn" {
  count = var.image_uri == null ? 1 : 0

  repository_name = "sagemaker-scikit-learn"
  image_tag       = "1.2-1-cpu-py3"
}

locals {
  region    = data.aws_region.current.region
  image_uri = var.image_uri != null ? var.image_uri : one(data.aws_sagemaker_prebuilt_ecr_image.sklearn[*].registry_path)
  # account, region and repository of the image, for the pull permission
  image_parts    = regex("^([0-9]{12})\\.dkr\\.ecr\\.([a-z0-9-]+)\\.[^/]+/([^:@]+)", local.image_uri)
  repository_arn = "arn:${data.aws_partition.current.partition}:ecr:${local.image_parts[1]}:${local.image_parts[0]}:repository/${local.image_parts[2]}"

  # The bundle's key carries its hash: a new bundle is a new object and a new model.
  bundle_md5 = fileexists(var.bundle_path) ? filemd5(var.bundle_path) : "not-built"
  container_environment = merge(var.environment, {
    SAGEMAKER_PROGRAM             = "inference.py"
    SAGEMAKER_SUBMIT_DIRECTORY    = "/opt/ml/model/code"
    SAGEMAKER_CONTAINER_LOG_LEVEL = "20"
    SAGEMAKER_REGION              = local.region
  })
  # Models and endpoint configurations are immutable: their names change with their content.
  model_name  = "${var.name}-${substr(sha256(jsonencode([local.image_uri, local.bundle_md5, local.container_environment])), 0, 10)}"
  config_name = "${var.name}-${substr(sha256(jsonencode([local.model_name, var.max_concurrency, var.memory_size_mb])), 0, 10)}"
}

# -- the model bundle: a private, encrypted bucket ------------------------------------------

resource "aws_s3_bucket" "artifacts" {
  #checkov:skip=CKV_AWS_18:Access logs of a bucket holding one rebuilt code bundle would need a second bucket; CloudTrail covers reads.
  #checkov:skip=CKV_AWS_21:Versioning: the bundle is rebuilt from git and stored under its own hash, so nothing is overwritten.
  #checkov:skip=CKV_AWS_144:Cross-region replication does not apply to a per-lab artefact bucket.
  #checkov:skip=CKV2_AWS_61:No lifecycle rules: destroy removes the bucket and its one object.
  #checkov:skip=CKV2_AWS_62:No event notifications are needed for a deployment artefact.
  bucket_prefix = "${substr(lower(var.name), 0, 29)}-model-" # at most 37 characters
  force_destroy = true                                       # `terraform destroy` must not fail on the bundle it uploaded
}

resource "aws_s3_bucket_public_access_block" "artifacts" {
  bucket                  = aws_s3_bucket.artifacts.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  rule {
    bucket_key_enabled = true

    apply_server_side_encryption_by_default {
      sse_algorithm = "aws:kms" # the AWS-managed aws/s3 key: no key to pay for or to grant
    }
  }
}

resource "aws_s3_object" "bundle" {
  bucket = aws_s3_bucket.artifacts.id
  key    = "model/${local.bundle_md5}/model.tar.gz"
  source = var.bundle_path

  lifecycle {
    precondition {
      condition     = fileexists(var.bundle_path)
      error_message = "The model bundle is not built: run `make package` (or `sof package`) before terraform apply."
    }
  }

  depends_on = [
    aws_s3_bucket_public_access_block.artifacts,
    aws_s3_bucket_server_side_encryption_configuration.artifacts,
  ]
}

# -- the role SageMaker runs the model with ------------------------------------------------

resource "aws_cloudwatch_log_group" "endpoint" {
  #checkov:skip=CKV_AWS_158:Lab logs hold synthetic tickets only; the AWS-owned key encrypts them at rest.
  #checkov:skip=CKV_AWS_338:Retention is a variable (default 7 days) so a lab leaves nothing behind for a year.
  name              = "/aws/sagemaker/Endpoints/${var.name}"
  retention_in_days = var.log_retention_days
}

data "aws_iam_policy_document" "assume" {
  statement {
    sid     = "SageMakerAssumesThisRole"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["sagemaker.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${var.name}-sagemaker"
  description        = "Execution role of the ${var.name} endpoint: reads its model bundle, pulls its image, writes its logs."
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "ReadModelBundle"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.artifacts.arn}/${aws_s3_object.bundle.key}"]
  }

  statement {
    sid       = "PullServingImage"
    effect    = "Allow"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = [local.repository_arn]
  }

  # ECR's GetAuthorizationToken has no resource-level permission: AWS requires "*".
  statement {
    sid       = "EcrAuthorizationToken"
    effect    = "Allow"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "WriteEndpointLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.endpoint.arn}:*"]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "least-privilege"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# -- model, serverless configuration, endpoint ----------------------------------------------

resource "aws_sagemaker_model" "model" {
  name                     = local.model_name
  execution_role_arn       = aws_iam_role.execution.arn
  enable_network_isolation = true # the model calls nothing: its dependency is simulated in-process

  primary_container {
    image          = local.image_uri
    model_data_url = "s3://${aws_s3_bucket.artifacts.id}/${aws_s3_object.bundle.key}"
    environment    = local.container_environment
  }

  lifecycle {
    create_before_destroy = true
  }

  depends_on = [aws_iam_role_policy.execution]
}

resource "aws_sagemaker_endpoint_configuration" "serverless" {
  #checkov:skip=CKV_AWS_98:Serverless endpoints have no storage volume to encrypt with kms_key_arn.
  name = local.config_name

  production_variants {
    variant_name = "AllTraffic"
    model_name   = aws_sagemaker_model.model.name

    serverless_config {
      max_concurrency   = var.max_concurrency
      memory_size_in_mb = var.memory_size_mb
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_sagemaker_endpoint" "this" {
  name                 = var.name
  endpoint_config_name = aws_sagemaker_endpoint_configuration.serverless.name

  depends_on = [aws_cloudwatch_log_group.endpoint]
}
