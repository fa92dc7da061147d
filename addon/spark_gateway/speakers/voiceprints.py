"""Enrolled speakers: a small library of named voiceprints, and matching voices to it.

A voiceprint is the mean of the unit fingerprints (TitaNet on the GPU node) of one person's
enrolment clips, weighted by the clean speech behind each. The library keeps one JSON file
per person in the add-on's data folder (`<data>/voiceprints/<id>.json`, mode 0600); nothing
here logs a vector or a name. Forgetting a person deletes the file.

Matching is one-to-one (the Hungarian method): two voices of one chunk never get the same
name, and a name is given only when the voice is closer than `threshold` to the print, so a
voice nobody enrolled stays `Speaker_N`. In a transcript every local speaker with a reliable
fingerprint is named by its own voice, not by the global speaker it was linked into: a link
that joined two people then cannot carry one person's name over the other's speech. The
default threshold was chosen on the CAM++ stand-in encoder's tuning voices and waits for a
sweep on TitaNet prints (docs/diarization.md).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from .linking import Linking, LocalKey, LocalSpeaker

# Cosine distance within which a voice takes an enrolled name; chosen with the link threshold on
# the CAM++ stand-in's tuning voices, to be chosen again on TitaNet prints (see the link one).
DEFAULT_NAME_THRESHOLD = 0.35
# A reliable voice that misses the threshold by at most this much still takes the name its
# linked speaker matched: two pieces of evidence agree (chosen on CAM++'s tuning voices too).
DEFAULT_CONFIRM_MARGIN = 0.30
# A diarizer segment of at least this long is named by a print of its own audio when that print
# lies within the name threshold plus this margin of an enrolled person's (a short stretch's
# print is noisier than a whole slot's). Chosen on the CAM++ stand-in's tuning voices
# (benchmarks/eval_diarization.py).
DEFAULT_SEGMENT_NAME_MIN_S = 1.0
DEFAULT_SEGMENT_NAME_MARGIN = 0.05
MAX_NAME_LENGTH = 64
MAX_VOICEPRINTS = 200
_ID = re.compile(r"^[a-f0-9]{16}$")
_JOINERS = frozenset("\u200c\u200d")  # ZERO WIDTH NON-JOINER, ZERO WIDTH JOINER
_EMOJI_TAG = re.compile("[\U000e0020-\U000e007f]")
_FILE_SUFFIX = ".json"
_SPACE_RUN = re.compile(" {2,}")


class VoiceprintError(ValueError):
    """A bad name, an unknown person, or a print that cannot be used."""


class NameTaken(VoiceprintError):
    """Another enrolled person already has the name (names are told apart in any case)."""


class LibraryFull(VoiceprintError):
    """`MAX_VOICEPRINTS` people are enrolled: someone must be forgotten before a new person."""


class VoiceAlreadyEnrolled(VoiceprintError):
    """A new person's clips sound like someone enrolled under another name: two prints of one
    voice would split that person's speech between two names."""

    def __init__(self, other: Voiceprint) -> None:
        super().__init__(
            f"the clips sound like {other.name} (id {other.id}), who is already enrolled:"
            " enrol them under that name, or forget that person first"
        )
        self.other = other


class VoiceMismatch(VoiceprintError):
    """Enrolment clips that do not sound like one person, or not like the person already
    enrolled under the name. `clip` is the 0-based index of the odd clip out, None when the
    clips together disagree with the stored print."""

    def __init__(self, message: str, *, clip: int | None = None) -> None:
        super().__init__(message)
        self.clip = clip


@dataclass(frozen=True, slots=True)
class Voiceprint:
    """One enrolled person (the vector is unit length)."""

    id: str
    name: str
    vector: np.ndarray
    speech_s: float
    clips: int
    created: str
    updated: str

    def summary(self) -> dict[str, object]:
        """What the API shows: never the vector."""
        return {
            "id": self.id,
            "name": self.name,
            "clips": self.clips,
            "speech_s": round(self.speech_s, 1),
            "created": self.created,
            "updated": self.updated,
        }


@dataclass(frozen=True, slots=True)
class NameMatch:
    """A voice given a person's name, with how close it came."""

    voiceprint: Voiceprint
    similarity: float  # cosine similarity, 1 - distance
    # False when the name came through the linking (a weak slot's global speaker, or a slot
    # confirming its global speaker's match): then the link's doubt is the name's doubt too.
    own_voice: bool = True

    @property
    def confidence(self) -> float:
        return round(max(0.0, min(1.0, self.similarity)), 4)


def check_name(raw: str | None) -> str:
    """A display name: 1-64 printable characters, surrounding space removed.

    Every Unicode space (a no-break space pasted from a document, an ideographic space) is a
    plain one, and a run of spaces one, so "Alice\u00a0Smith" is the person "Alice Smith".
    Printable as Python means it, plus the invisible joiners that emoji and some scripts
    are written with ("Zoë 👩\u200d💻", a flag's tag characters, Persian's ZWNJ), each
    between two other characters; never control characters or bidi overrides, and at
    least one character that shows.
    """
    name = _folded_spaces(raw or "").strip()
    if not name or len(name) > MAX_NAME_LENGTH or not _displayable(name):
        raise VoiceprintError(
            f"the name must be 1-{MAX_NAME_LENGTH} printable characters"
            " (no control characters or text-direction marks)"
        )
    return name


def _folded_spaces(text: str) -> str:
    """Each Unicode space separator (category Zs) as " ", and each run of them as one."""
    plain = "".join(" " if unicodedata.category(char) == "Zs" else char for char in text)
    return _SPACE_RUN.sub(" ", plain)


def _displayable(name: str) -> bool:
    for n, char in enumerate(name):
        if char in _JOINERS:  # joins two characters: never first, last or doubled
            if n == 0 or n == len(name) - 1 or name[n + 1] in _JOINERS:
                return False
        elif _EMOJI_TAG.fullmatch(char):  # a subdivision flag's letters, after its 🏴
            if n == 0:
                return False
        elif not char.isprintable():
            return False
    # Combining marks, variation selectors and joiners alone show nothing.
    return any(unicodedata.category(char)[0] in "LNPS" for char in name)


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or norm == 0:
        raise VoiceprintError("the voice fingerprint is empty")
    return vector / norm


def combine(prints: Sequence[tuple[np.ndarray, float]]) -> tuple[np.ndarray, float]:
    """Unit fingerprints weighted by their clean speech → one unit print and its seconds."""
    if not prints:
        raise VoiceprintError("no usable voice in the clips")
    total = sum(max(seconds, 0.1) for _, seconds in prints)
    mean = sum(_unit(np.asarray(v, np.float64)) * max(s, 0.1) for v, s in prints) / total
    return _unit(np.asarray(mean)), float(sum(s for _, s in prints))


def voice_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine distance between two prints: what naming compares to its threshold."""
    return 1.0 - float(_unit(np.asarray(a, np.float64)) @ _unit(np.asarray(b, np.float64)))


def odd_clip_out(
    prints: Sequence[tuple[np.ndarray, float]],
    *,
    threshold: float,
    enrolled: np.ndarray | None = None,
) -> tuple[int, float] | None:
    """The clip (0-based) whose voice lies farthest from the print of the other clips, with
    that distance, when it is farther than `threshold`: a clip of someone else (another
    person, the TV) in one person's enrolment. Of two clips that disagree, each is as far from
    the other: the odd one is then the one farther from the `enrolled` print, or the second."""
    if len(prints) < 2:
        return None
    distances = [
        voice_distance(vector, combine([p for j, p in enumerate(prints) if j != i])[0])
        for i, (vector, _seconds) in enumerate(prints)
    ]
    farthest = max(range(len(distances)), key=distances.__getitem__)
    if distances[farthest] <= threshold:
        return None
    if len(prints) == 2:
        farthest = 1 if enrolled is None else max(
            (0, 1), key=lambda i: voice_distance(prints[i][0], enrolled))  # fmt: skip
    return farthest, distances[farthest]


def nearest_name(
    voice: np.ndarray, prints: Sequence[Voiceprint], *, threshold: float
) -> NameMatch | None:
    """The enrolled person whose print lies nearest to one voice, if within `threshold`."""
    if not prints or not np.any(voice):
        return None
    distance = 1.0 - np.stack([p.vector for p in prints]) @ _unit(np.asarray(voice, np.float64))
    best = int(np.argmin(distance))
    if distance[best] > threshold:
        return None
    return NameMatch(prints[best], round(1.0 - float(distance[best]), 4))


def match_names(
    voices: Mapping[str, np.ndarray],
    prints: Sequence[Voiceprint],
    *,
    threshold: float = DEFAULT_NAME_THRESHOLD,
) -> dict[str, NameMatch]:
    """Give enrolled names to voices (label → print), one name per voice at most.

    This is the matching the gateway's transcripts use; `diarized_json` requests with their
    own `known_speaker_references` can call it with prints made for the request.
    """
    labels = [label for label, v in voices.items() if v is not None and np.any(v)]
    if not labels or not prints:
        return {}
    voice_matrix = np.stack([_unit(np.asarray(voices[label], np.float64)) for label in labels])
    print_matrix = np.stack([p.vector for p in prints])
    distance = 1.0 - voice_matrix @ print_matrix.T
    # A pair farther than the threshold may as well not exist: it can never be chosen.
    cost = np.where(distance <= threshold, distance, 1e6)
    rows, cols = linear_sum_assignment(cost)
    return {
        labels[r]: NameMatch(prints[c], round(1.0 - float(distance[r, c]), 4))
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True)
        if distance[r, c] <= threshold
    }


def name_local_speakers(
    speakers: Sequence[LocalSpeaker],
    linking: Linking,
    prints: Sequence[Voiceprint],
    *,
    threshold: float = DEFAULT_NAME_THRESHOLD,
    min_reliable_speech_s: float,
    confirm_threshold: float | None = None,
) -> dict[LocalKey, NameMatch]:
    """Which local speakers (chunk, label) carry an enrolled name.

    A local speaker with a reliable fingerprint is matched on that fingerprint, one-to-one
    among the reliable speakers of its chunk. When it matches nobody, it takes the name its
    global speaker matched only if its own print lies within `confirm_threshold` of that
    person's (the link and its own voice agree), and no other speaker of its chunk has the
    name; otherwise it stays unnamed. A weak one (too little clean speech for a print of its
    own) takes its global speaker's match, unless a speaker of the same chunk already
    carries that name.
    """
    if not prints:
        return {}
    by_global = match_names(linking.fingerprints, prints, threshold=threshold)
    reliable: dict[int, dict[str, np.ndarray]] = {}
    weak: list[LocalSpeaker] = []
    for s in speakers:
        if (s.chunk, s.label) not in linking.labels:
            continue
        if s.fingerprint is not None and s.clean_speech_s >= min_reliable_speech_s:
            reliable.setdefault(s.chunk, {})[s.label] = s.fingerprint
        else:
            weak.append(s)
    named: dict[LocalKey, NameMatch] = {}
    for chunk, voices in reliable.items():
        for label, match in match_names(voices, prints, threshold=threshold).items():
            named[(chunk, label)] = match
    if confirm_threshold is not None:
        for chunk, voices in reliable.items():
            taken = {m.voiceprint.id for (c, _), m in named.items() if c == chunk}
            for label, vector in voices.items():
                match = by_global.get(linking.labels[(chunk, label)])
                if (chunk, label) in named or match is None or match.voiceprint.id in taken:
                    continue
                similarity = float(_unit(np.asarray(vector, np.float64)) @ match.voiceprint.vector)
                if 1.0 - similarity <= confirm_threshold:
                    named[(chunk, label)] = NameMatch(
                        match.voiceprint, round(similarity, 4), own_voice=False
                    )
                    taken.add(match.voiceprint.id)
    for s in weak:
        match = by_global.get(linking.labels[(s.chunk, s.label)])
        taken = {m.voiceprint.id for (c, _), m in named.items() if c == s.chunk}
        if match is not None and match.voiceprint.id not in taken:
            named[(s.chunk, s.label)] = replace(match, own_voice=False)
    return named


class VoiceprintLibrary:
    """The enrolled people, one JSON file each under `folder` (created on first enrolment)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()

    def _path(self, voiceprint_id: str) -> Path:
        if not _ID.match(voiceprint_id):
            raise VoiceprintError("unknown speaker id")
        return self.folder / f"{voiceprint_id}{_FILE_SUFFIX}"

    def list(self) -> list[Voiceprint]:
        """Everyone enrolled, by name (a damaged file is skipped, not fatal)."""
        if not self.folder.is_dir():
            return []
        prints = []
        for path in self.folder.glob(f"*{_FILE_SUFFIX}"):
            loaded = _load(path)
            if loaded is not None:
                prints.append(loaded)
        return sorted(prints, key=lambda p: (p.name.casefold(), p.id))

    def get(self, voiceprint_id: str) -> Voiceprint:
        loaded = _load(self._path(voiceprint_id))
        if loaded is None:
            raise VoiceprintError("unknown speaker id")
        return loaded

    def enrol(
        self,
        name: str,
        prints: Sequence[tuple[np.ndarray, float]],
        *,
        threshold: float = DEFAULT_NAME_THRESHOLD,
        replace_print: bool = False,
    ) -> Voiceprint:
        """Add a person, or add clips to the person already enrolled under `name` (any case).

        The clips must sound like one voice, and like the person's stored print: each lies
        within `threshold` (the naming threshold) of the others, and together within it of
        the print; otherwise `VoiceMismatch` and nothing is stored, so a wrong clip cannot
        poison a print. `replace_print` starts the person's print again from these clips alone
        (same id, so automations keyed on it keep working). A new print (a new person, or one
        replaced) must not lie within `threshold` of another person's: `VoiceAlreadyEnrolled`.
        """
        name = check_name(name)
        with self._lock:
            everyone = self.list()
            existing = next((p for p in everyone if p.name.casefold() == name.casefold()), None)
            keep = existing if existing is not None and not replace_print else None
            _check_one_voice(prints, keep, threshold=threshold)
            vector, seconds = combine(prints)
            if keep is not None:
                _check_same_voice(vector, keep, threshold=threshold)
            else:
                others = [p for p in everyone if existing is None or p.id != existing.id]
                _check_new_voice(vector, others, threshold=threshold)
            now = datetime.now(UTC).isoformat(timespec="seconds")
            if keep is not None:
                merged, total = combine([(keep.vector, keep.speech_s), (vector, seconds)])
                voiceprint = Voiceprint(keep.id, keep.name, merged, total,
                                        keep.clips + len(prints), keep.created, now)  # fmt: skip
            elif existing is not None:  # replaced: the same person, a print from these clips
                voiceprint = Voiceprint(existing.id, name, vector, seconds, len(prints),
                                        existing.created, now)  # fmt: skip
            else:
                if len(everyone) >= MAX_VOICEPRINTS:
                    raise LibraryFull(f"at most {MAX_VOICEPRINTS} people can be enrolled:"
                                      " forget someone first")  # fmt: skip
                voiceprint = Voiceprint(secrets.token_hex(8), name, vector, seconds,
                                        len(prints), now, now)  # fmt: skip
            self._write(voiceprint)
        return voiceprint

    def rename(self, voiceprint_id: str, name: str) -> Voiceprint:
        """Give a person another name (their print unchanged); `NameTaken` when someone else
        has it already, since enrolling under a name finds its person by the name."""
        name = check_name(name)
        with self._lock:
            voiceprint = self.get(voiceprint_id)
            if any(p.name.casefold() == name.casefold() and p.id != voiceprint_id
                   for p in self.list()):  # fmt: skip
                raise NameTaken("another enrolled person has this name")
            now = datetime.now(UTC).isoformat(timespec="seconds")
            renamed = replace(voiceprint, name=name, updated=now)
            self._write(renamed)
        return renamed

    def forget(self, voiceprint_id: str) -> Voiceprint:
        """Delete a person's voiceprint file; the summary of what was removed comes back."""
        with self._lock:
            voiceprint = self.get(voiceprint_id)
            self._path(voiceprint_id).unlink()
        return voiceprint

    def _write(self, voiceprint: Voiceprint) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        body = json.dumps({
            **voiceprint.summary(),
            "speech_s": voiceprint.speech_s,
            "vector": [round(float(v), 6) for v in voiceprint.vector],
        })  # fmt: skip
        path = self._path(voiceprint.id)
        temporary = path.with_suffix(".tmp")
        # Written whole, readable by the add-on only, then moved into place.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(body)
        temporary.replace(path)


def _check_one_voice(
    prints: Sequence[tuple[np.ndarray, float]], kept: Voiceprint | None, *, threshold: float
) -> None:
    odd = odd_clip_out(prints, threshold=threshold,
                       enrolled=kept.vector if kept is not None else None)  # fmt: skip
    if odd is not None:
        clip, distance = odd
        others = f"clip {2 - clip}" if len(prints) == 2 else "the other clips"
        raise VoiceMismatch(
            f"clip {clip + 1} does not sound like {others} (voice distance {distance:.2f},"
            f" at most {threshold:.2f} for one person)",
            clip=clip,
        )


def _check_same_voice(vector: np.ndarray, kept: Voiceprint, *, threshold: float) -> None:
    distance = voice_distance(vector, kept.vector)
    if distance > threshold:
        raise VoiceMismatch(
            "the clips do not sound like the person already enrolled under this name (voice"
            f" distance {distance:.2f}, at most {threshold:.2f}); send replace=true to enrol"
            " them again from these clips alone"
        )


def _check_new_voice(vector: np.ndarray, others: Sequence[Voiceprint], *, threshold: float
                     ) -> None:  # fmt: skip
    distances = [(voice_distance(vector, other.vector), other) for other in others]
    nearest = min(distances, key=lambda pair: pair[0], default=None)
    if nearest is not None and nearest[0] <= threshold:
        raise VoiceAlreadyEnrolled(nearest[1])


def _load(path: Path) -> Voiceprint | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        vector = _unit(np.asarray(raw["vector"], np.float64))
        return Voiceprint(
            id=str(raw["id"]),
            name=check_name(raw["name"]),
            vector=vector,
            speech_s=float(raw["speech_s"]),
            clips=int(raw["clips"]),
            created=str(raw["created"]),
            updated=str(raw.get("updated", raw["created"])),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
