# The Distributed Map's bucket: ticket batches the ItemReader reads (batches/) and the
# Map Runs' results the ResultWriter writes (results/). Private and encrypted; everything
# in it is rebuilt by the next run, so nothing is versioned or replicated.

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:Access logs of a bucket of transient lab batches would need a second bucket; CloudTrail covers reads.
  #checkov:skip=CKV_AWS_21:Versioning: every batch and result object is written once under a unique key and rebuilt by a new run.
  #checkov:skip=CKV_AWS_144:Cross-region replication does not apply to a per-lab scratch bucket.
  #checkov:skip=CKV2_AWS_61:No lifecycle rules: destroy removes the bucket and everything in it.
  #checkov:skip=CKV2_AWS_62:No event notifications: Step Functions reads and writes the objects itself.
  bucket_prefix = "${substr(lower(var.name), 0, 29)}-" # at most 37 characters
  force_destroy = true                                 # `terraform destroy` must not fail on the runs' objects
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket                  = aws_s3_bucket.this.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    bucket_key_enabled = true

    apply_server_side_encryption_by_default {
      sse_algorithm = "aws:kms" # the AWS-managed aws/s3 key: no key to pay for or to grant
    }
  }
}
