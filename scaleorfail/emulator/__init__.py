"""The embedded AWS emulator: moto in server mode plus what the lab needs that moto lacks.

- :mod:`.runtime` / :mod:`.worker` - a Docker-free Lambda runtime (one process per
  execution environment, concurrency limits, timeouts, memory limits, logs, metrics);
- :mod:`.logs_insights` - the CloudWatch Logs Insights query engine (language and commands);
- :mod:`.cwstats` - CloudWatch statistics (percentiles included);
- :mod:`.moto_ext` - the only package that touches moto's internals, one module per moto service;
- :mod:`.server` / :mod:`.control` - the server process and `sof local up|status|down`.
"""
