"""`response_format=diarized_json`: the speaker pipeline's turns in OpenAI's diarized shape.

Speakers are labelled `A`, `B`, ... in order of first speech, as OpenAI does. With
`known_speaker_names[]` + `known_speaker_references[]` (short clips as data URLs), each
reference clip and up to `SPEAKER_SAMPLE_S` of each detected speaker's own turns are embedded by
the Parakeet container's diarize-chunk call (the voice fingerprints the long-audio path links
chunks with); a detected speaker takes the name of the nearest reference within the linking
threshold (cosine distance), each name at most once. Speakers left unmatched keep their letter.
"""

from __future__ import annotations

import base64
import binascii
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from .audio_codec import TARGET_RATE, pcm_to_wav
from .errors import ApiError
from .speakers.parsing import parse_diarization
from .speakers.pipeline import SpeakerTranscript, SpeechUpstream
from .speakers.voiceprints import Voiceprint, match_names
from .transcript_formats import usage

MAX_KNOWN_SPEAKERS: Final = 4  # OpenAI's limit
MAX_REFERENCE_BYTES: Final = 4 * 1024 * 1024  # decoded; OpenAI asks for 2-10 s clips
MAX_NAME_CHARS: Final = 64
SPEAKER_SAMPLE_S: Final = 10.0
_DATA_URL: Final = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?:;[^,;]*)*;base64,(?P<data>.*)$", re.S
)


@dataclass(frozen=True, slots=True)
class KnownSpeaker:
    """A name and its reference clip's bytes (any format the gateway decodes)."""

    name: str
    audio: bytes


def parse_known_speakers(names: Sequence[str], references: Sequence[str]) -> list[KnownSpeaker]:
    """Validate the two lists (same length, at most four, data URLs); 400 naming the fault."""
    if len(names) != len(references):
        raise _invalid("known_speaker_names[] and known_speaker_references[] differ in length")
    if len(names) > MAX_KNOWN_SPEAKERS:
        raise _invalid(f"at most {MAX_KNOWN_SPEAKERS} known speakers")
    known: list[KnownSpeaker] = []
    for raw_name, reference in zip(names, references, strict=True):
        name = raw_name.strip()
        if not name or len(name) > MAX_NAME_CHARS or name in {k.name for k in known}:
            raise _invalid(f"known speaker name {name!r} is empty, too long or repeated")
        known.append(KnownSpeaker(name, _data_url_bytes(reference)))
    return known


def _invalid(message: str, param: str = "known_speaker_names") -> ApiError:
    return ApiError(400, message, code="invalid_known_speakers", param=param)


def _data_url_bytes(reference: str) -> bytes:
    param = "known_speaker_references"
    match = _DATA_URL.match(reference.strip())
    if match is None:
        raise _invalid("known_speaker_references[] must be data:audio/...;base64 URLs", param)
    encoded = match.group("data")
    if len(encoded) > MAX_REFERENCE_BYTES * 4 // 3 + 4:
        raise ApiError(413, f"a reference clip is over {MAX_REFERENCE_BYTES} bytes",
                       code="request_too_large", param=param)  # fmt: skip
    try:
        audio = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as err:
        raise _invalid("a reference clip is not valid base64", param) from err
    if not audio:
        raise _invalid("a reference clip is empty", param)
    return audio


def diarized_body(result: SpeakerTranscript, names: Mapping[str, str]) -> dict[str, Any]:
    """OpenAI's TranscriptionDiarized from the pipeline's turns; `names` maps speakers to names."""
    labels = _labels([turn.speaker for turn in result.turns], names)
    segments = [
        {
            "type": "transcript.text.segment",
            "id": f"seg_{index}",
            "start": round(turn.start, 3),
            "end": round(turn.end, 3),
            "text": turn.text,
            "speaker": labels[turn.speaker],
        }
        for index, turn in enumerate(result.turns)
    ]
    return {
        "task": "transcribe",
        "duration": round(result.duration_s, 3),
        "text": " ".join(turn.text for turn in result.turns if turn.text),
        "segments": segments,
        "usage": usage(result.duration_s),
    }


def _labels(speakers: Sequence[str], names: Mapping[str, str]) -> dict[str, str]:
    letters = iter(_letter_labels())
    labels: dict[str, str] = {}
    for speaker in dict.fromkeys(speakers):
        labels[speaker] = names.get(speaker) or next(letters)
    return labels


def _letter_labels() -> list[str]:
    single = list(string.ascii_uppercase)
    return single + [a + b for a in single for b in single]


async def name_speakers(
    upstream: SpeechUpstream,
    samples: npt.NDArray[np.int16],
    result: SpeakerTranscript,
    references: Sequence[tuple[str, npt.NDArray[np.int16]]],
    *,
    threshold: float,
) -> dict[str, str]:
    """Detected speaker -> known name, for the speakers whose voice matches a reference."""
    if not references:
        return {}
    reference_prints = [await _fingerprint(upstream, clip) for _, clip in references]
    speakers = list(dict.fromkeys(turn.speaker for turn in result.turns))
    speaker_prints = [
        await _fingerprint(upstream, _speaker_sample(samples, result, speaker))
        for speaker in speakers
    ]
    # The same one-to-one, within-threshold matching as enrolled voiceprints.
    known = [
        Voiceprint(str(n), name, vector, 0.0, 1, "", "")
        for n, ((name, _clip), vector) in enumerate(zip(references, reference_prints, strict=True))
        if vector is not None
    ]
    voices = {
        speaker: vector
        for speaker, vector in zip(speakers, speaker_prints, strict=True)
        if vector is not None
    }
    matches = match_names(voices, known, threshold=threshold)
    return {speaker: match.voiceprint.name for speaker, match in matches.items()}


def _speaker_sample(
    samples: npt.NDArray[np.int16], result: SpeakerTranscript, speaker: str
) -> npt.NDArray[np.int16]:
    """Up to SPEAKER_SAMPLE_S of the speaker's own turns, joined."""
    parts: list[npt.NDArray[np.int16]] = []
    budget = int(SPEAKER_SAMPLE_S * TARGET_RATE)
    for turn in result.turns:
        if turn.speaker != speaker or budget <= 0:
            continue
        piece = np.asarray(samples[round(turn.start * TARGET_RATE) : round(turn.end * TARGET_RATE)])
        parts.append(piece[:budget])
        budget -= len(parts[-1])
    return np.concatenate(parts) if parts else np.zeros(0, np.int16)


async def _fingerprint(
    upstream: SpeechUpstream, samples: npt.NDArray[np.int16]
) -> npt.NDArray[np.float64] | None:
    """The unit voice fingerprint of the main speaker in `samples`, or None (too little speech)."""
    if samples.size < TARGET_RATE // 2:
        return None
    diarization = parse_diarization(await upstream.diarize_chunk(pcm_to_wav(samples, TARGET_RATE)))
    spoken: dict[str, float] = {}
    for segment in diarization.segments:
        spoken[segment.speaker] = spoken.get(segment.speaker, 0.0) + segment.end - segment.start
    for speaker in sorted(spoken, key=lambda s: -spoken[s]):
        vector = diarization.fingerprints.get(speaker)
        if vector is not None and np.linalg.norm(vector) > 0:
            return np.asarray(vector, dtype=np.float64) / float(np.linalg.norm(vector))
    return None
