# Going further (2): the Distributed Map. Each ItemBatcher batch of 10 tickets runs as a
# child execution with its own history (no 25,000-event ceiling for the batch, no single
# history writer to wait on), up to 10,000 at once; the load harness writes each batch to
# the map bucket (JSON Lines) and the execution's input names it, so a 20,000-ticket batch
# is one execution. A child runs its 10 tickets one after another, so max_concurrency is
# still the number of tickets in flight; batching cuts the child executions (their starts,
# their state transitions, the histories to read) tenfold. Standard children, nothing
# tolerated: the Map fails as soon as a ticket fails, as the inline Map does. Results go to
# the same bucket (results/). docs/distributed-map.md. `sof sweep --map-mode distributed`
# deploys one ticket per child instead, to compare ticket by ticket with the inline Map.
#
#   terraform -chdir=terraform apply -var-file=../examples/distributed.tfvars
#   sof deploy --target local --var-file examples/distributed.tfvars

map_mode = "distributed"
distributed_map = {
  execution_type               = "STANDARD"
  max_items_per_batch          = 10
  tolerated_failure_percentage = 0
  write_results                = true
}
