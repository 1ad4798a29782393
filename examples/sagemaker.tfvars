# Activity 9: Embed served by a SageMaker serverless endpoint (MaxConcurrency 2,
# 1024 MB), called from Step Functions through aws-sdk:sagemakerruntime:invokeEndpoint.
# With Map concurrency 4 above the endpoint's 2, executions fail with
# SageMakerRuntime.ThrottlingException instead of queueing. Build the model bundle
# first (`make package`); the serving image is the region's SageMaker scikit-learn
# image unless sagemaker_image_uri is set.
#
#   make package
#   terraform -chdir=terraform apply -var-file=../examples/sagemaker.tfvars
#   sof deploy --target local --var-file examples/sagemaker.tfvars

embed_backend                     = "sagemaker"
sagemaker_max_concurrency         = 2
sagemaker_memory_mb               = 1024
sagemaker_throttle_retry_attempts = 0
