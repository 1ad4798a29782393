# Bad input quarantined instead of failing the batch: a ticket that fails with
# PayloadTooLarge or InvalidTicket is recorded as REJECTED with its error, and the
# execution succeeds with the rest (the fix discussed after Activity 6).
#
#   terraform -chdir=terraform apply -var-file=../examples/quarantine.tfvars
#   sof deploy --target local --var-file examples/quarantine.tfvars

bad_input_policy  = "quarantine"
quarantine_errors = ["PayloadTooLarge", "InvalidTicket"]
