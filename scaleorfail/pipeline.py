"""What the pipeline is, as the tooling names it: its states, its steps, the Map's limit.

The state machine definition (terraform/templates/pipeline.asl.json.tftpl) is the source;
these names are its states, defined here once for every Python reader (the harvest, the
analysis, the reports, the emulator's Map cap). tests/test_architecture.py checks that
they agree with the template. A base module: it imports nothing of the package.
"""

from __future__ import annotations

APPLY_DEFAULTS = "ApplyDefaults"  # Choice: an input without max_concurrency gets the default
DEFAULT_MAX_CONCURRENCY = "DefaultMaxConcurrency"  # Pass: writes the deployment's default knob
PROCESS_TICKETS = "ProcessTickets"  # the Map: one inline iteration, or one child execution, per ticket
PROCESS_BATCH = "ProcessBatch"  # map_mode = distributed with ItemBatcher: a child's inline Map over its batch
PREPROCESS = "Preprocess"
EMBED = "Embed"
POSTPROCESS = "Postprocess"
QUARANTINE = "Quarantine"  # bad_input_policy = "quarantine": a bad ticket is set aside here
REJECTED = "Rejected"

STEPS = (PREPROCESS, EMBED, POSTPROCESS)  # the Lambda steps of every ticket, in order
TOP_STATES = (APPLY_DEFAULTS, DEFAULT_MAX_CONCURRENCY, PROCESS_TICKETS)
STEP_FUNCTIONS = {PREPROCESS: "preprocess", EMBED: "embed", POSTPROCESS: "postprocess"}  # stack output keys

# An inline Map runs at most 40 iterations at once, whatever MaxConcurrency says (0 = "no limit": 40).
MAP_LIMIT = 40
# A Distributed Map (map_mode = "distributed") runs up to 10,000 child executions at once (0 = "no limit": 10,000).
DISTRIBUTED_LIMIT = 10_000
HISTORY_EVENT_LIMIT = 25_000  # Step Functions' hard quota of events per execution history
MAP_RUN_LABEL = "Tickets"  # the Distributed Map's Label: its Map Runs and child executions are named <machine>/Tickets
BATCHES_PREFIX = "batches/"  # the map bucket's ticket batches (JSON Lines), one object per execution

TERMINAL_STATUSES = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


def map_slots(max_concurrency: int | None, map_mode: str = "inline") -> int:
    """Items the Map lets run at once for this knob: the knob, or the Map's own cap (40 inline, 10,000
    distributed) when unset, 0 or above it."""
    cap = DISTRIBUTED_LIMIT if map_mode == "distributed" else MAP_LIMIT
    if not max_concurrency or max_concurrency > cap:
        return cap
    return max_concurrency
