"""Deploying terraform/ to a target: the emulator (local.py) or AWS with Terraform (aws.py)."""
