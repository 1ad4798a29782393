"""Locust entry point for loading the scale-or-fail pipeline.

    locust -f loadtest/locustfile.py --headless --profile burst --rate 5 --batch-size 10
    locust -f loadtest/locustfile.py --headless --config loadtest/workshop-burst.conf

Every option of the harness: `sof load-options` (Locust prints --help before it loads this file).
The harness itself lives in scaleorfail/load/.
"""

from scaleorfail.load.locust_plugin import PipelineLoad, RunShape

__all__ = ["PipelineLoad", "RunShape"]
