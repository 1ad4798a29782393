# Going further (2): the Distributed Map. Each ticket runs as a child execution with its own
# history (no 25,000-event ceiling for the batch, no single history writer to wait on), up
# to 10,000 at once; the load harness writes each batch to the map bucket (JSON Lines) and
# the execution's input names it, so a 20,000-ticket batch is one execution. The results
# go to the same bucket (results/). Standard children, one ticket each, nothing tolerated:
# the Map fails as soon as one ticket fails, as the inline Map does. docs/distributed-map.md.
#
#   terraform -chdir=terraform apply -var-file=../examples/distributed.tfvars
#   sof deploy --target local --var-file examples/distributed.tfvars

map_mode = "distributed"
distributed_map = {
  execution_type               = "STANDARD"
  max_items_per_batch          = 0
  tolerated_failure_percentage = 0
  write_results                = true
}
