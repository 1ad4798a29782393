# The AWS provider. On AWS it uses your usual credentials chain (profile, SSO, env).
#
# Pointing it at the embedded emulator instead (for users who have Terraform):
#   sof local up
#   AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
#     terraform -chdir=terraform apply -var emulator_endpoint=http://127.0.0.1:4566
# Every service the pipeline uses is then sent to that endpoint and the credential and
# account look-ups that only make sense on AWS are skipped.
provider "aws" {
  region = var.region

  skip_credentials_validation = local.use_emulator
  skip_metadata_api_check     = local.use_emulator
  s3_use_path_style           = local.use_emulator

  dynamic "endpoints" {
    for_each = local.use_emulator ? [var.emulator_endpoint] : []
    content {
      cloudwatch = endpoints.value
      iam        = endpoints.value
      lambda     = endpoints.value
      logs       = endpoints.value
      s3         = endpoints.value
      sagemaker  = endpoints.value
      sfn        = endpoints.value
      sns        = endpoints.value
      sts        = endpoints.value
    }
  }

  default_tags {
    tags = local.tags
  }
}
