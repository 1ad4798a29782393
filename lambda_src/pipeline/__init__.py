"""The scale-or-fail inference pipeline: three Lambda handlers in one package.

Entry points (the ``handler`` setting of each function):

- ``pipeline.preprocess.handler`` - validate and normalise a ticket;
- ``pipeline.embed.handler`` - the simulated model step (latency, memory, dependency);
- ``pipeline.postprocess.handler`` - priority and action from the route;
- ``pipeline.serve`` - Embed as a SageMaker endpoint's handler functions (``inference.py``).
"""
