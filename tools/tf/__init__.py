"""Terraform tooling for tests and make targets, beside the evaluator in scaleorfail/tf/.

- :mod:`.schemagen` - `make tf-schema`: the provider schema reference from the pinned cdktn wheels.
- :mod:`.schema` - checks terraform/ against that reference (tests/test_terraform_static.py).
- :mod:`.docs` - `make tf-docs`: the inputs/outputs tables of the Terraform READMEs.
- :mod:`.oracle` / :mod:`.differential` - real Terraform as the oracle of the evaluator
  (tests/test_tf_differential.py).
"""
