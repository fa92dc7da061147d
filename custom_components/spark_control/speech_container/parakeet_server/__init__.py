"""GPU-side speech server: Parakeet ASR, Sortformer diarization, TitaNet voice fingerprints."""

__version__ = "0.1.0"
