"""The evidence: everything that reads harvest records and explains them.

- :mod:`.analysis` - per-run statistics from a record (step durations, throttles, concurrency).
- :mod:`.compare` - the comparison table of runs (terminal, Markdown, CSV, JSON).
- :mod:`.report` - the HTML/Markdown report with its plots.
- :mod:`.rca` - root-cause classification of a run (the leaves and their evidence).
- :mod:`.portfolio` - the one-page portfolio of a set of runs.
- :mod:`.scaling` - the Universal Scalability Law fit across concurrency levels.
- :mod:`.insights` - `sof insights`: the saved Logs Insights queries run on a target.

They read the record (:mod:`scaleorfail.record`), never the harness, the harvest's
collectors or the emulator (tests/test_architecture.py).
"""
