# A short-lived workshop sandbox account, whose Lambda account concurrency is often
# capped at 10. Map concurrency above 10 there fails items with 429
# TooManyRequestsException unless the tasks retry, so retries stay on (the default
# policy: 6 attempts, exponential backoff with full jitter) and the default Map
# concurrency is the account's 10. No reserved concurrency: AWS keeps 100 of an
# account's concurrency unreserved, so a 10-capped account cannot reserve any.
# Logs are kept one day: the sandbox is gone tomorrow.
#
#   terraform -chdir=terraform apply -var-file=../examples/sandbox.tfvars
#   sof local up --profile sandbox && sof deploy --target local --var-file examples/sandbox.tfvars

name_prefix             = "sof-sandbox"
default_max_concurrency = 10
lambda_retry            = { max_attempts = 6, interval_seconds = 1, backoff_rate = 2, max_delay_seconds = 20, jitter_strategy = "FULL" }
log_retention_days      = 1
