"""Feature frontends: audio ``(..., samples)`` → features ``(..., frames, n)``.

>>> from tinyser.features import Frontend, get_config
>>> fe = Frontend(get_config("mfcc"))
"""
from .base import FRONTENDS, Frontend, FrontendConfig, Standardizer, config_from_dict, get_config
from .cmsis import CmsisMfccConfig
from .pipeline import FeatureSet, extract, file_features
from .spectral import LogmelConfig, MfccConfig, SpectrogramConfig, power_spectrogram
from .stats import StatsConfig

__all__ = ["FeatureSet", "extract", "file_features", "FRONTENDS", "Frontend", "FrontendConfig", "Standardizer",
           "config_from_dict", "get_config",
           "SpectrogramConfig", "LogmelConfig", "MfccConfig", "power_spectrogram",
           "CmsisMfccConfig", "StatsConfig"]
