"""Locust entry point for loading the scale-or-fail pipeline (headless only).

    locust -f loadtest/locustfile.py --headless --profile single-batch --batch-size 500 --max-concurrency 2
    locust -f loadtest/locustfile.py --headless --profile steady --rate 2 -t 30s --batch-size 10
    locust -f loadtest/locustfile.py --config loadtest/workshop-burst.conf

Locust's -t/--run-time is the profile's duration; -u/-r do not apply (the profile schedules
the starts) and are refused. Every option of the harness: `sof load-options` (Locust prints
--help before it loads this file, so its --help cannot list them). The harness itself lives
in scaleorfail/load/.
"""

from scaleorfail.load.locust_plugin import PipelineLoad, RunShape

__all__ = ["PipelineLoad", "RunShape"]
