"""The embedded AWS emulator: moto in server mode plus what the lab needs that moto lacks.

- :mod:`.runtime` / :mod:`.worker` - a Docker-free Lambda runtime (one process per
  execution environment, concurrency limits, timeouts, memory limits, logs, metrics);
- :mod:`.insights` - the Logs Insights query language;
- :mod:`.cwstats` - CloudWatch statistics (percentiles included);
- :mod:`.moto_ext` - the only module that touches moto's internals;
- :mod:`.server` / :mod:`.control` - the server process and `sof local up|status|down`.
"""
