"""The use cases: what `sof`'s commands do, as functions that tests, benchmarks and other commands call.

scaleorfail.commands only turns arguments into these calls and prints their results; the
work (harvest, compare, report, diagnose, scenario, sweep, portfolio, demo) is here, built
on the domain modules (harvest, analysis, compare, rca, report, portfolio, load, deploy ...).
"""
