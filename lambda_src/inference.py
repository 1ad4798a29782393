"""Entry script of the SageMaker model (``SAGEMAKER_PROGRAM=inference.py``).

The model bundle (``build/model.tar.gz``) holds this file and the ``pipeline`` package
under ``code/``; the handler functions live in :mod:`pipeline.serve`, next to the
Lambda handlers whose Embed code they reuse.
"""

from pipeline.serve import input_fn, model_fn, output_fn, predict_fn

__all__ = ["input_fn", "model_fn", "output_fn", "predict_fn"]
