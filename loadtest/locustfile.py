"""Locust entry point for loading the scale-or-fail pipeline.

    locust -f loadtest/locustfile.py --headless --profile burst --rate 5 --batch-size 10
    locust -f loadtest/locustfile.py --headless --config loadtest/workshop-burst.conf

Run `locust -f loadtest/locustfile.py --help` for every option (the scale-or-fail group).
The harness itself lives in scaleorfail/load/.
"""

from scaleorfail.load.locust_plugin import PipelineLoad, RunShape

__all__ = ["PipelineLoad", "RunShape"]
