"""TFLite models: conversion, the flatbuffer and its metadata, LiteRT, TFLite Micro.

* :mod:`~tinyser.tflite.convert`: Keras -> float32, float16, dynamic-range or
  FULL-int8 flatbuffers (:func:`convert`; needs the ``train`` extra).
* :mod:`~tinyser.tflite.flatbuffer`: what a flatbuffer holds, read without
  running it (:func:`model_ops`).
* :mod:`~tinyser.tflite.litert`: :class:`LiteRTModel`, running a model on the
  host (core install).
* :mod:`~tinyser.tflite.micro`: :class:`TFLMModel`, :func:`find_arena_size`,
  :func:`is_tflm_compatible`, :func:`arena_fits`: the real TFLite Micro
  interpreter (the ``micro`` extra).

Nothing here imports TensorFlow until :func:`convert` is called.
"""
from .convert import MAX_REPRESENTATIVE, QUANT_MODES, convert
from .flatbuffer import model_ops
from .litert import LiteRTModel
from .micro import ARENA_LIMIT, DYNAMIC_RANGE_REASON, TFLMModel, arena_fits, find_arena_size, is_tflm_compatible

__all__ = ["ARENA_LIMIT", "DYNAMIC_RANGE_REASON", "MAX_REPRESENTATIVE", "QUANT_MODES", "LiteRTModel", "TFLMModel",
           "arena_fits", "convert", "find_arena_size", "is_tflm_compatible", "model_ops"]
