"""The voiceprint library (files in the data folder) and name matching."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import numpy as np
import pytest

from spark_gateway.speakers.chunking import Chunk
from spark_gateway.speakers.linking import Linking, LocalSpeaker
from spark_gateway.speakers.parsing import Diarization
from spark_gateway.speakers.pipeline import SpeakerOptions, link_and_merge
from spark_gateway.speakers.records import SpeakerSegment, Word
from spark_gateway.speakers.voiceprints import (
    VoiceAlreadyEnrolled,
    VoiceMismatch,
    Voiceprint,
    VoiceprintError,
    VoiceprintLibrary,
    check_name,
    combine,
    match_names,
    name_local_speakers,
    odd_clip_out,
)

RNG = np.random.default_rng(3)


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


A, B, C = (unit(RNG.standard_normal(192)) for _ in range(3))


def near(vector: np.ndarray, noise: float) -> np.ndarray:
    return unit(vector + RNG.standard_normal(192) * noise / np.sqrt(192))


def test_enrol_list_merge_and_forget(tmp_path: Path) -> None:
    library = VoiceprintLibrary(tmp_path / "voiceprints")
    assert library.list() == []
    alice = library.enrol("Alice", [(near(A, 0.2), 8.0), (near(A, 0.2), 4.0)])
    assert alice.clips == 2
    assert alice.speech_s == 12.0
    path = tmp_path / "voiceprints" / f"{alice.id}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(json.loads(path.read_text())) >= {"name", "vector", "clips"}
    # The same name (any case) adds clips to the same person.
    again = library.enrol(" alice ", [(near(A, 0.2), 6.0)])
    assert again.id == alice.id
    assert again.clips == 3
    assert again.name == "Alice"
    bob = library.enrol("Bob", [(B, 5.0)])
    assert [p.name for p in library.list()] == ["Alice", "Bob"]
    assert "vector" not in bob.summary()
    gone = library.forget(alice.id)
    assert gone.name == "Alice"
    assert not path.exists()
    assert [p.name for p in library.list()] == ["Bob"]
    with pytest.raises(VoiceprintError):
        library.forget(alice.id)
    with pytest.raises(VoiceprintError):
        library.forget("../../etc/passwd")


def test_a_name_enrolled_again_must_keep_its_voice(tmp_path: Path) -> None:
    library = VoiceprintLibrary(tmp_path)
    alice = library.enrol("Alice", [(near(A, 0.2), 8.0)], threshold=0.10)
    path = tmp_path / f"{alice.id}.json"
    before = path.read_bytes()
    with pytest.raises(VoiceMismatch) as info:
        library.enrol("ALICE", [(near(B, 0.2), 8.0)], threshold=0.10)
    assert info.value.clip is None
    assert path.read_bytes() == before
    # From scratch: the same person (id, creation), the new voice and clips only.
    again = library.enrol("Alice", [(B, 5.0), (near(B, 0.2), 5.0)], threshold=0.10,
                          replace_print=True)  # fmt: skip
    assert (again.id, again.created, again.clips, again.speech_s) == (
        alice.id, alice.created, 2, 10.0)  # fmt: skip
    assert 1 - float(library.get(alice.id).vector @ B) < 0.02


def test_one_voice_is_one_person(tmp_path: Path) -> None:
    """A voice enrolled under one name cannot be enrolled under another (its speech would be
    split between the two names), neither as a new person nor by replacing someone's print."""
    library = VoiceprintLibrary(tmp_path)
    alice = library.enrol("Alice", [(near(A, 0.2), 8.0)], threshold=0.10)
    bob = library.enrol("Bob", [(near(B, 0.2), 8.0)], threshold=0.10)
    with pytest.raises(VoiceAlreadyEnrolled) as info:
        library.enrol("Al", [(near(A, 0.2), 8.0)], threshold=0.10)
    assert info.value.other.id == alice.id
    with pytest.raises(VoiceAlreadyEnrolled) as info:
        library.enrol("Bob", [(near(A, 0.2), 8.0)], threshold=0.10, replace_print=True)
    assert info.value.other.id == alice.id
    assert library.enrol("Bob", [(B, 5.0)], threshold=0.10, replace_print=True).id == bob.id
    assert [p.name for p in library.list()] == ["Alice", "Bob"]


def test_odd_clip_out() -> None:
    one_voice = [(near(A, 0.2), 5.0), (near(A, 0.2), 5.0), (near(A, 0.2), 5.0)]
    assert odd_clip_out(one_voice, threshold=0.10) is None
    assert odd_clip_out(one_voice[:1], threshold=0.0) is None  # nothing to compare
    odd = odd_clip_out([*one_voice[:2], (B, 5.0), one_voice[2]], threshold=0.10)
    assert odd is not None
    assert odd[0] == 2
    assert odd[1] > 0.5
    # Two clips that disagree: the second is the odd one (the first sets the voice).
    assert odd_clip_out([(A, 5.0), (B, 5.0)], threshold=0.10) == (1, pytest.approx(1 - A @ B))
    with pytest.raises(VoiceMismatch) as info:
        VoiceprintLibrary(Path("/nonexistent")).enrol("Bob", [(A, 5.0), (B, 5.0)])
    assert info.value.clip == 1


def test_damaged_file_is_skipped(tmp_path: Path) -> None:
    library = VoiceprintLibrary(tmp_path)
    library.enrol("Carol", [(C, 3.0)])
    (tmp_path / "0123456789abcdef.json").write_text("{not json")
    (tmp_path / "fedcba9876543210.json").write_text(json.dumps({"name": "x", "vector": [0, 0]}))
    assert [p.name for p in library.list()] == ["Carol"]


@pytest.mark.parametrize(
    "name",
    [
        "", "   ", "x" * 65, "tab\there", "new\nline", None,
        "\u202eevil", "Al\u202aice", "x\u2066y\u2069",  # bidi overrides and isolates
        "\u200d", "\u200c\u200d", "\ufe0f", "\u0301", "\u200b",  # nothing that shows
        "\u200dAl", "Al\u200d", "A\u200d\u200dB",  # a joiner joins two characters
        "\U000e0067Al", "Al\u200bice", "Al\u00adice", "\u200fAl",  # stray tag, ZWSP, SHY, RLM
    ],
)  # fmt: skip
def test_bad_names(name: str | None) -> None:
    with pytest.raises(VoiceprintError):
        check_name(name)


SCOTLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"


@pytest.mark.parametrize(
    "name",
    [
        "Zo\u00eb \U0001f469\u200d\U0001f4bb",  # woman technologist: a ZWJ sequence
        "\u2764\ufe0f\u200d\U0001f525 Sam",  # variation selector, then the joiner
        "\U0001f44d\U0001f3fd Kim",  # skin tone modifier
        f"{SCOTLAND} Iain",  # a subdivision flag's tag characters
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0645",  # Persian with ZERO WIDTH NON-JOINER
        "\U0001f469\u200d\U0001f4bb" * 21,  # 63 characters: within the cap
    ],
)
def test_names_written_with_joiners(name: str) -> None:
    assert check_name(f"  {name} ") == name


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("Alice\u00a0Smith", "Alice Smith"),  # a no-break space pasted from a document
        ("\u3000\u5c71\u7530\u3000\u592a\u90ce\u3000", "\u5c71\u7530 \u592a\u90ce"),  # ideographic
        ("M.\u202fDupont", "M. Dupont"),  # French narrow no-break space
        ("Ann \u00a0\u2003 Lee", "Ann Lee"),  # a run of spaces is one
        ("Ann  Lee", "Ann Lee"),
        ("\u00a0" * 3 + "x" * 64 + "\u2009", "x" * 64),  # spaces around do not count
    ],
)
def test_unicode_spaces_are_plain_spaces(raw: str, name: str) -> None:
    assert check_name(raw) == name


@pytest.mark.parametrize(
    "name", ["Ann\u00a0\tLee", "Ann\u2028Lee", "Ann\u2029Lee", "\u00a0\u3000", "Ann\u200bLee"]
)
def test_spaces_that_are_not_space_separators_stay_refused(name: str) -> None:
    """Tabs and line or paragraph separators are control characters, ZWSP shows nothing."""
    with pytest.raises(VoiceprintError):
        check_name(name)


def test_empty_prints_refused(tmp_path: Path) -> None:
    with pytest.raises(VoiceprintError):
        combine([])
    with pytest.raises(VoiceprintError):
        VoiceprintLibrary(tmp_path).enrol("Dan", [(np.zeros(192), 3.0)])


def print_of(name: str, vector: np.ndarray) -> Voiceprint:
    return Voiceprint(name.lower() * 4, name, vector, 10.0, 1, "", "")


def test_match_names_one_to_one_and_only_when_close() -> None:
    prints = [print_of("Alice", A), print_of("Bob", B)]
    voices = {
        "Speaker_0": near(A, 0.3),
        "Speaker_1": near(A, 0.6),  # also like Alice, but farther: Alice is taken
        "Speaker_2": C,  # nobody enrolled
        "Speaker_3": near(B, 0.3),
    }
    matches = match_names(voices, prints, threshold=0.25)
    assert {label: m.voiceprint.name for label, m in matches.items()} == {
        "Speaker_0": "Alice",
        "Speaker_3": "Bob",
    }
    assert 0.75 <= matches["Speaker_0"].confidence <= 1.0
    assert match_names(voices, [], threshold=0.25) == {}
    assert match_names({}, prints) == {}


THRESHOLDS = {"threshold": 0.25, "min_reliable_speech_s": 3.0}


def local(chunk: int, label: str, vector: np.ndarray | None, clean_s: float) -> LocalSpeaker:
    return LocalSpeaker(chunk, label, vector, clean_s, float(chunk))


def test_each_reliable_local_voice_is_named_by_its_own_print() -> None:
    """A link that joined Alice and a stranger (C) into one global speaker: the global print
    lies between them, yet Alice's own chunks carry her name and the stranger's never do."""
    prints = [print_of("Alice", A), print_of("Bob", B)]
    speakers = [
        local(0, "s0", near(A, 0.2), 20.0),
        local(0, "s1", near(B, 0.2), 12.0),
        local(1, "s0", near(C, 0.2), 20.0),  # the stranger, linked into Alice's cluster
        local(1, "s1", near(B, 0.2), 1.0),  # too little speech for a print of its own
        local(2, "s0", near(B, 0.2), 1.0),
        local(2, "s1", near(B, 0.2), 15.0),  # Bob's reliable slot takes his name first
    ]
    linking = Linking(
        labels={(0, "s0"): "Speaker_0", (0, "s1"): "Speaker_1", (1, "s0"): "Speaker_0",
                (1, "s1"): "Speaker_1", (2, "s0"): "Speaker_1", (2, "s1"): "Speaker_2"},
        fingerprints={"Speaker_0": unit(A + C), "Speaker_1": B, "Speaker_2": near(B, 0.2)},
    )  # fmt: skip
    named = name_local_speakers(speakers, linking, prints, **THRESHOLDS)
    assert {key: m.voiceprint.name for key, m in named.items()} == {
        (0, "s0"): "Alice",
        (0, "s1"): "Bob",
        (1, "s1"): "Bob",  # weak: its global speaker's name (Speaker_1 is Bob)
        # (2, "s0") is weak too, but Bob's reliable slot of chunk 2 already carries his name
        (2, "s1"): "Bob",
    }
    assert not named[(1, "s1")].own_voice  # weak: the name came through the link
    assert named[(0, "s0")].own_voice
    assert named[(2, "s1")].own_voice
    assert name_local_speakers(speakers, linking, [], **THRESHOLDS) == {}
    # A slot the linker left unmapped is never named.
    unmapped = Linking(labels={}, fingerprints={})
    assert name_local_speakers(speakers, unmapped, prints, **THRESHOLDS) == {}


def at_distance(vector: np.ndarray, distance: float, away: np.ndarray) -> np.ndarray:
    """A unit vector exactly `distance` (cosine) from `vector`, turned towards `away`."""
    side = unit(away - (away @ vector) * vector)
    return (1.0 - distance) * vector + np.sqrt(1.0 - (1.0 - distance) ** 2) * side


def test_a_voice_just_past_the_threshold_confirms_the_name_its_link_matched() -> None:
    """Alice's global speaker matches her print; her slot of chunk 1 lies 0.28 from it, past
    the 0.25 threshold: it takes her name only with a confirm threshold of 0.30, and a slot
    0.35 away, or a slot whose global speaker matched nobody (a stranger's, or Alice's second
    label) never does."""
    prints = [print_of("Alice", A)]
    speakers = [
        local(0, "s0", A, 20.0),
        local(1, "s0", at_distance(A, 0.28, C), 10.0),
        local(2, "s0", at_distance(A, 0.35, C), 10.0),
        local(3, "s0", at_distance(A, 0.28, C), 10.0),  # linked into the stranger's speaker
        local(4, "s0", A, 10.0),
        # Alice split across two global speakers: her name goes to one of them (one-to-one),
        # and in this chunk s0 carries it already.
        local(4, "s1", at_distance(A, 0.28, B), 10.0),
    ]
    linking = Linking(
        labels={(0, "s0"): "Speaker_0", (1, "s0"): "Speaker_0", (2, "s0"): "Speaker_0",
                (3, "s0"): "Speaker_1", (4, "s0"): "Speaker_0", (4, "s1"): "Speaker_2"},
        fingerprints={"Speaker_0": A, "Speaker_1": C, "Speaker_2": at_distance(A, 0.1, B)},
    )  # fmt: skip
    plain = name_local_speakers(speakers, linking, prints, **THRESHOLDS)
    assert set(plain) == {(0, "s0"), (4, "s0")}
    confirmed = name_local_speakers(speakers, linking, prints, confirm_threshold=0.30,
                                    **THRESHOLDS)  # fmt: skip
    assert set(confirmed) == {(0, "s0"), (1, "s0"), (4, "s0")}
    # Only the name its own voice earned stands on its own; the confirmed one needed the link.
    assert [confirmed[key].own_voice for key in ((0, "s0"), (1, "s0"), (4, "s0"))] == [
        True, False, True,
    ]  # fmt: skip
    assert confirmed[(1, "s0")].voiceprint.name == "Alice"
    assert confirmed[(1, "s0")].similarity == pytest.approx(0.72, abs=1e-4)


def test_a_name_is_shown_only_where_its_evidence_is_sure() -> None:
    """Alice is named by her slot's own voice in chunk 0 and by her global speaker's print in
    chunk 1 (her slot there is too short for a print). A name from her own voice is kept
    where only the link was unsure (which `Speaker_N` her slot joins is beside the point),
    but not where the diarizer was; a name that came through the link goes with the link's
    doubt; an unlinked slot's speech given to her stretch never takes her name."""
    chunks = [Chunk(0, 0.0, 20.0, 0.0, 20.0), Chunk(1, 20.0, 40.0, 20.0, 40.0)]
    diarizations = [
        Diarization(
            segments=[
                SpeakerSegment(0.0, 4.0, "Speaker_0", 0.9),
                SpeakerSegment(4.5, 7.5, "Speaker_1", 0.9),
                SpeakerSegment(8.0, 9.5, "Speaker_0", 0.4),  # under the `?` mark
                SpeakerSegment(12.2, 13.0, "Speaker_2", 0.9),  # no print: never linked
            ],
            speakers=["Speaker_0", "Speaker_1", "Speaker_2"],
            duration_s=20.0,
            fingerprints={
                "Speaker_0": near(A, 0.2),
                "Speaker_1": near(C, 0.2),
                "Speaker_2": None,
            },
            clean_speech_s={"Speaker_0": 5.5, "Speaker_1": 3.0, "Speaker_2": 0.8},
        ),
        Diarization(
            segments=[SpeakerSegment(1.0, 2.5, "Speaker_0", 0.9)],
            speakers=["Speaker_0"],
            duration_s=20.0,
            fingerprints={"Speaker_0": near(A, 0.4)},
            clean_speech_s={"Speaker_0": 1.5},  # weak: named through its global speaker
        ),
    ]
    words = [Word(0.5, 1.0, "hello"), Word(5.0, 5.5, "stranger"), Word(8.5, 9.0, "unsure"),
             Word(12.4, 12.8, "filled"), Word(21.5, 22.0, "later")]  # fmt: skip

    def shown(link_confidence: float) -> list[tuple[str, str, bool]]:
        def linker(speakers: object) -> Linking:
            return Linking(
                labels={(0, "Speaker_0"): "Speaker_0", (0, "Speaker_1"): "Speaker_1",
                        (1, "Speaker_0"): "Speaker_0"},
                confidence={(0, "Speaker_0"): link_confidence,
                            (1, "Speaker_0"): link_confidence},
                fingerprints={"Speaker_0": A, "Speaker_1": C},
            )  # fmt: skip

        result = link_and_merge(
            chunks, diarizations, words, options=SpeakerOptions(), language="en", models={},
            duration_s=40.0, voiceprints=[print_of("Alice", A)], linker=linker,
        )  # fmt: skip
        assert set(result.names) == {"Alice"}
        return [(t.speaker, t.text, t.low_confidence) for t in result.turns]

    assert shown(1.0) == [
        ("Alice", "hello", False), ("Speaker_1", "stranger", False),
        ("Speaker_0", "unsure", True), ("Speaker_0", "filled", True), ("Alice", "later", False),
    ]  # fmt: skip
    # The link unsure of both of her slots: her own voice keeps its name (the turn still
    # shows the doubt), the weak slot named through the link does not.
    assert shown(0.5)[0] == ("Alice", "hello", True)
    assert shown(0.5)[4] == ("Speaker_0", "later", True)


def test_a_segment_is_named_by_its_own_voice() -> None:
    """Bob was folded into Alice's slot: the slot is named Alice by its print, but the
    segments whose own print is Bob's show Bob, also in a slot never linked; a segment too
    short for the minimum keeps its slot's name, and a stranger's segment stays unnamed."""
    chunks = [Chunk(0, 0.0, 20.0, 0.0, 20.0)]
    diarization = Diarization(
        segments=[
            SpeakerSegment(0.0, 4.0, "Speaker_0", 0.9, near(A, 0.2)),
            SpeakerSegment(5.0, 8.0, "Speaker_0", 0.8, near(B, 0.2)),
            SpeakerSegment(9.0, 9.6, "Speaker_0", 0.9, near(B, 0.2)),  # under a second
            SpeakerSegment(11.0, 13.0, "Speaker_2", 0.4, near(B, 0.2)),  # slot without a print
            SpeakerSegment(14.0, 16.0, "Speaker_1", 0.9, near(C, 0.2)),
        ],
        speakers=["Speaker_0", "Speaker_1", "Speaker_2"],
        duration_s=20.0,
        fingerprints={"Speaker_0": near(A, 0.2), "Speaker_1": near(C, 0.2), "Speaker_2": None},
        clean_speech_s={"Speaker_0": 7.0, "Speaker_1": 2.0, "Speaker_2": 0.5},
    )
    words = [Word(1.0, 1.5, "alice"), Word(6.0, 6.5, "bob"), Word(9.1, 9.4, "short"),
             Word(11.5, 12.0, "unlinked"), Word(14.5, 15.0, "stranger")]  # fmt: skip

    def linker(speakers: object) -> Linking:
        return Linking(labels={(0, "Speaker_0"): "Speaker_0", (0, "Speaker_1"): "Speaker_1"},
                       confidence={}, fingerprints={"Speaker_0": A, "Speaker_1": C})  # fmt: skip

    def shown(options: SpeakerOptions) -> tuple[list[tuple[str, str]], set[str]]:
        result = link_and_merge(
            chunks, [diarization], words, options=options, language="en", models={},
            duration_s=20.0, voiceprints=[print_of("Alice", A), print_of("Bob", B)],
            linker=linker,
        )  # fmt: skip
        return [(t.speaker, t.text) for t in result.turns], set(result.names)

    turns, names = shown(SpeakerOptions())
    assert turns == [("Alice", "alice"), ("Bob", "bob"), ("Alice", "short"),
                     ("Bob", "unlinked"), ("Speaker_1", "stranger")]  # fmt: skip
    assert names == {"Alice", "Bob"}
    # Without segment naming (a minimum no segment reaches) Bob's speech keeps Alice's name,
    # and the unlinked slot's is given its nearest neighbour's label (the stranger's), unnamed.
    turns, names = shown(SpeakerOptions(segment_name_min_s=60.0))
    assert [speaker for speaker, _ in turns] == [
        "Alice", "Alice", "Alice", "Speaker_1", "Speaker_1",
    ]  # fmt: skip
    assert names == {"Alice"}
