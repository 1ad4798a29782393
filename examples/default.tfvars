# The workshop as written: Lambda Embed, Map max_concurrency 2 when the input has none,
# throttled tasks retried, a bad ticket fails its execution. These are the defaults of
# terraform/variables.tf, spelled out so they can be changed in one place.
#
#   terraform -chdir=terraform apply -var-file=../examples/default.tfvars
#   sof deploy --target local --var-file examples/default.tfvars

name_prefix             = "scale-or-fail"
region                  = "us-east-1"
default_max_concurrency = 2
embed_backend           = "lambda"
bad_input_policy        = "fail"
simulated_infer_ms      = 250
log_retention_days      = 7
