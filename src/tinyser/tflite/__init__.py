"""TFLite models: conversion, the flatbuffer and its metadata, LiteRT, TFLite Micro.

* :mod:`~tinyser.tflite.convert`: Keras -> float32, float16, dynamic-range or
  FULL-int8 flatbuffers (:func:`convert`; needs the ``train`` extra).
* :mod:`~tinyser.tflite.flatbuffer`: what a flatbuffer holds, read without
  running it (:func:`model_ops`).
* :mod:`~tinyser.tflite.metadata`: the model file's schema,
  :class:`ModelMetadata`, and its one writer and reader (:func:`embed_metadata`,
  :func:`read_model`).
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
from .metadata import (
    CHECKSUM_KEY,
    METADATA_FORMAT,
    METADATA_NAME,
    Evaluation,
    MetadataError,
    ModelMetadata,
    TensorSpec,
    TrainingSummary,
    checksum_ok,
    embed_metadata,
    embed_unchecked,
    read_metadata,
    read_metadata_dict,
    read_model,
)
from .micro import ARENA_LIMIT, DYNAMIC_RANGE_REASON, TFLMModel, arena_fits, find_arena_size, is_tflm_compatible

__all__ = ["ARENA_LIMIT", "CHECKSUM_KEY", "DYNAMIC_RANGE_REASON", "MAX_REPRESENTATIVE", "METADATA_FORMAT",
           "METADATA_NAME", "QUANT_MODES", "Evaluation", "LiteRTModel", "MetadataError", "ModelMetadata",
           "TFLMModel", "TensorSpec", "TrainingSummary", "arena_fits", "checksum_ok", "convert", "embed_metadata",
           "embed_unchecked", "find_arena_size", "is_tflm_compatible", "model_ops", "read_metadata",
           "read_metadata_dict", "read_model"]
