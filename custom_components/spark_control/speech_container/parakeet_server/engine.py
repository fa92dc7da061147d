"""The speech work itself (blocking; the server runs it on one worker thread).

Long inputs are split into windows at pauses so memory stays bounded by the window, not the
file: ASR windows of `asr_window_s`, diarization windows of `diar_window_s` whose local
speakers are linked by TitaNet fingerprint.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from .audio import SAMPLE_RATE, Window, plan_windows, write_wav
from .config import ServerConfig
from .diarization import (
    ModelOutputError,
    Segment,
    WindowDiarization,
    attach_confidence,
    clean_masks,
    link_windows,
    parse_lines,
    unit,
    unpack_diarize_output,
)
from .models import ModelRegistry, to_numpy

T = TypeVar("T")  # the container runs Python 3.11: no PEP 695 generics


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Transcription:
    text: str
    words: list[Word]
    duration: float


@dataclass(frozen=True, slots=True)
class Diarization:
    duration: float
    segments: list[Segment]  # global speaker indices, sorted by time
    fingerprints: dict[int, list[float] | None]
    clean_speech_s: dict[int, float]


class SpeechEngine:
    """ASR, diarization and fingerprints over the models in a `ModelRegistry`."""

    def __init__(self, config: ServerConfig, registry: ModelRegistry) -> None:
        self.config = config
        self.registry = registry

    def _with_file(self, samples: np.ndarray, work: Callable[[str], T]) -> T:
        # NeMo's transcribe()/diarize() read files; the file lives only for this call.
        with tempfile.TemporaryDirectory(prefix="parakeet-") as tmp:
            path = Path(tmp) / "window.wav"
            write_wav(path, samples)
            with self.registry.inference():
                return work(str(path))

    # -- transcription ---------------------------------------------------------------------

    def transcribe(self, samples: np.ndarray) -> Transcription:
        duration = len(samples) / SAMPLE_RATE
        texts: list[str] = []
        words: list[Word] = []
        windows = plan_windows(
            samples, window_s=self.config.asr_window_s, search_s=self.config.window_search_s
        )
        for window in windows:
            text, window_words = self._transcribe_window(window.slice(samples))
            if text:
                texts.append(text)
            words.extend(
                Word(w.word, w.start + window.start_s, w.end + window.start_s) for w in window_words
            )
        return Transcription(" ".join(texts), words, duration)

    def _transcribe_window(self, samples: np.ndarray) -> tuple[str, list[Word]]:
        model = self.registry.asr()
        output = self._with_file(
            samples,
            lambda path: model.transcribe([path], batch_size=1, timestamps=True, verbose=False),
        )
        if isinstance(output, tuple):  # older NeMo: (best hypotheses, all hypotheses)
            output = output[0]
        if not isinstance(output, list) or not output:
            raise ModelOutputError("transcribe() returned no hypothesis")
        hypothesis = output[0]
        text = str(getattr(hypothesis, "text", hypothesis if isinstance(hypothesis, str) else ""))
        stamps: Any = getattr(hypothesis, "timestamp", None) or {}
        # A TDT token's duration can reach past the last frame: keep words inside the window.
        length = len(samples) / SAMPLE_RATE
        words = []
        for entry in stamps.get("word", []) if isinstance(stamps, dict) else []:
            try:
                word, start, end = (
                    str(entry["word"]).strip(),
                    float(entry["start"]),
                    float(entry["end"]),
                )
            except (KeyError, TypeError, ValueError) as err:
                raise ModelOutputError(f"unexpected word timestamp {entry!r}") from err
            if word:
                words.append(Word(word, min(start, length), min(end, length)))
        return text.strip(), words

    # -- diarization -----------------------------------------------------------------------

    def diarize(self, samples: np.ndarray, *, fingerprints: bool) -> Diarization:
        duration = len(samples) / SAMPLE_RATE
        windows = plan_windows(
            samples, window_s=self.config.diar_window_s, search_s=self.config.window_search_s
        )
        # Linking windows needs fingerprints even when the caller did not ask for them;
        # segment prints are for the caller only.
        need_prints = fingerprints or len(windows) > 1
        results = [
            self._diarize_window(
                w.slice(samples), speaker_prints=need_prints, segment_prints=fingerprints
            )
            for w in windows
        ]
        maps = (
            link_windows(results)
            if len(results) > 1
            else [{s.speaker: s.speaker for s in results[0].segments}]
        )
        return self._merge_windows(windows, results, maps, duration)

    def _diarize_window(
        self, samples: np.ndarray, *, speaker_prints: bool, segment_prints: bool
    ) -> WindowDiarization:
        model = self.registry.diarization()
        output = self._with_file(
            samples,
            lambda path: model.diarize(
                audio=path, batch_size=1, include_tensor_outputs=True, verbose=False
            ),
        )
        lines, probs = unpack_diarize_output(output)
        duration = len(samples) / SAMPLE_RATE
        # The last 80 ms frame may end past the audio: keep segments inside the window.
        segments = [
            Segment(s.start_s, min(s.end_s, duration), s.speaker)
            for s in parse_lines(lines)
            if s.start_s < duration
        ]
        segments = attach_confidence(segments, probs, duration)
        if segment_prints:
            segments = self._print_segments(samples, segments)
        result = WindowDiarization(segments, probs)
        if speaker_prints:
            self._fingerprint(samples, result)
        return result

    def _embed(self, samples: np.ndarray) -> np.ndarray:
        """TitaNet's unit embedding of `samples` (at most `max_fingerprint_speech_s` of them)."""
        limit = int(self.config.max_fingerprint_speech_s * SAMPLE_RATE)
        with self.registry.inference():
            embedding, _ = self.registry.embedding().infer_segment(samples[:limit])
        vector = to_numpy(embedding).reshape(-1)
        if vector.size == 0 or not np.all(np.isfinite(vector)):
            raise ModelOutputError(f"embedding has shape {vector.shape} or is not finite")
        return unit(vector.astype(np.float64))

    def _print_segments(self, samples: np.ndarray, segments: list[Segment]) -> list[Segment]:
        """Each segment of `segment_fingerprint_min_s` or more with a print of all its audio
        (one TitaNet pass each), so the gateway can name a person whom the diarizer folded
        into another person's slot; shorter segments get None."""
        # NeMo writes times in whole milliseconds; float subtraction must not drop a 1.000 s one.
        shortest = self.config.segment_fingerprint_min_s - 1e-6
        printed = []
        for s in segments:
            fingerprint = None
            if s.end_s - s.start_s >= shortest:
                audio = samples[round(s.start_s * SAMPLE_RATE) : round(s.end_s * SAMPLE_RATE)]
                fingerprint = tuple(round(float(x), 6) for x in self._embed(audio))
            printed.append(replace(s, fingerprint=fingerprint))
        return printed

    def _fingerprint(self, samples: np.ndarray, result: WindowDiarization) -> None:
        masks = clean_masks(
            result.segments, result.probs, len(samples), self.config.speaker_activity_threshold
        )
        for speaker, mask in masks.items():
            clean = samples[mask]
            seconds = len(clean) / SAMPLE_RATE
            result.clean_speech_s[speaker] = round(seconds, 2)
            if seconds < self.config.min_fingerprint_speech_s:
                result.fingerprints[speaker] = None  # flagged, not guessed
                continue
            result.fingerprints[speaker] = self._embed(clean)

    @staticmethod
    def _merge_windows(
        windows: list[Window],
        results: list[WindowDiarization],
        maps: list[dict[int, int]],
        duration: float,
    ) -> Diarization:
        segments: list[Segment] = []
        prints: dict[int, list[tuple[np.ndarray, float]]] = {}
        clean: dict[int, float] = {}
        for window, result, mapping in zip(windows, results, maps, strict=True):
            segments.extend(
                replace(
                    s,
                    start_s=s.start_s + window.start_s,
                    end_s=s.end_s + window.start_s,
                    speaker=mapping[s.speaker],
                )
                for s in result.segments
            )
            for local, global_k in mapping.items():
                seconds = result.clean_speech_s.get(local, 0.0)
                clean[global_k] = clean.get(global_k, 0.0) + seconds
                fp = result.fingerprints.get(local)
                if fp is not None:
                    prints.setdefault(global_k, []).append((fp, seconds))
        segments.sort(key=lambda s: (s.start_s, s.end_s, s.speaker))
        # Renumber by first appearance, as Sortformer does within one input.
        order = {k: n for n, k in enumerate(dict.fromkeys(s.speaker for s in segments))}
        segments = [replace(s, speaker=order[s.speaker]) for s in segments]
        fingerprints: dict[int, list[float] | None] = {}
        for old, new in order.items():
            pieces = prints.get(old)
            if pieces:
                mean = unit(sum(w * v for v, w in pieces) / max(sum(w for _, w in pieces), 1e-9))
                fingerprints[new] = [round(float(x), 6) for x in mean]
            else:
                fingerprints[new] = None
        return Diarization(
            duration,
            segments,
            fingerprints,
            {order[k]: round(v, 2) for k, v in clean.items() if k in order},
        )
