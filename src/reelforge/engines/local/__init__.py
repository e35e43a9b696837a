"""The built-in engine: CPU only, ffmpeg + numpy/OpenCV."""

from .engine import LocalEngine

__all__ = ["LocalEngine"]
