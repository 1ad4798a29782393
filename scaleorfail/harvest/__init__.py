"""Harvest: turn a run manifest into a cached record of what happened (histories, statuses, metrics)."""
