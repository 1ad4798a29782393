"""The harvest record of a run: a typed, frozen, versioned model (model.py) and its JSON form (codec.py)."""
