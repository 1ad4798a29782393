"""The record of a run - the contracts between the rooms.

- :mod:`.manifest` - the run manifest: what a load run was asked to do and every execution it
  started (written by the load harness, read by the harvest).
- :mod:`.model` / :mod:`.codec` - the harvest record: typed, frozen, versioned, and its JSON
  form (written by the harvest, read by the evidence).
"""
