"""tinyser: speech emotion recognition that runs on microcontrollers."""
__version__ = "0.1.0"
