"""The load harness behind loadtest/locustfile.py: profiles, batches, the Step Functions
starter, completion tracking and the run manifest. Locust-specific glue is in
:mod:`scaleorfail.load.locust_plugin`; everything else is plain Python and tested alone."""
