"""Cross-chunk speaker linking: clustering, cannot-link, unreliable and missing fingerprints.

These pin the algorithm with controlled vectors; the route tests and
benchmarks/eval_diarization.py run it on fingerprints of real recordings.
"""

from __future__ import annotations

import numpy as np

from spark_gateway.speakers.linking import (
    DEFAULT_REJOIN_THRESHOLD,
    LocalSpeaker,
    link_local_speakers,
    link_speakers,
)

RNG = np.random.default_rng(7)
VOICES = {name: RNG.standard_normal(192) for name in "ABCDEF"}


def noisy(name: str, noise: float = 0.3) -> np.ndarray:
    base = VOICES[name] / np.linalg.norm(VOICES[name])
    vec = base + RNG.standard_normal(192) * noise / np.sqrt(192)
    return vec / np.linalg.norm(vec)


def local(chunk: int, label: str, voice: str | None, clean: float = 20.0,
          at: float | None = None, vector: np.ndarray | None = None) -> LocalSpeaker:  # fmt: skip
    fingerprint = vector if vector is not None else (noisy(voice) if voice else None)
    return LocalSpeaker(chunk, label, fingerprint, clean, at if at is not None else chunk * 300.0)


def groups(mapping: dict[tuple[int, str], str]) -> set[frozenset[tuple[int, str]]]:
    by_label: dict[str, set[tuple[int, str]]] = {}
    for key, label in mapping.items():
        by_label.setdefault(label, set()).add(key)
    return {frozenset(v) for v in by_label.values()}


def test_same_voice_linked_across_chunks_labels_in_time_order() -> None:
    speakers = [
        local(0, "Speaker_0", "B", at=0.0), local(0, "Speaker_1", "A", at=5.0),
        local(1, "Speaker_0", "A", at=300.0), local(1, "Speaker_1", "B", at=301.0),
        local(2, "Speaker_0", "C", at=600.0), local(2, "Speaker_1", "B", at=610.0),
    ]  # fmt: skip
    mapping = link_speakers(speakers, threshold=0.5)
    assert mapping[(0, "Speaker_0")] == mapping[(1, "Speaker_1")] == mapping[(2, "Speaker_1")]
    assert mapping[(0, "Speaker_1")] == mapping[(1, "Speaker_0")]
    assert mapping[(0, "Speaker_0")] == "Speaker_0"
    assert mapping[(0, "Speaker_1")] == "Speaker_1"
    assert mapping[(2, "Speaker_0")] == "Speaker_2"


def test_two_speakers_of_one_chunk_never_merged() -> None:
    # Two similar voices in one chunk (about 0.35 apart, too far to be re-joined as one): AHC
    # at 0.5 alone would merge them.
    a = noisy("A", 0.05)
    b = a + 1.2 * noisy("B", 0.05)
    b /= np.linalg.norm(b)
    assert DEFAULT_REJOIN_THRESHOLD < 1 - float(a @ b) < 0.5
    speakers = [
        local(0, "Speaker_0", None, vector=a),
        local(0, "Speaker_1", None, vector=b, at=1.0),
        local(1, "Speaker_0", None, vector=noisy("A", 0.05)),
    ]
    mapping = link_speakers(speakers, threshold=0.5)
    assert mapping[(0, "Speaker_0")] != mapping[(0, "Speaker_1")]


def test_one_voice_split_inside_a_chunk_is_rejoined() -> None:
    # The diarizer gave one person two slots: their prints nearly coincide.
    speakers = [
        local(0, "Speaker_0", "A"), local(0, "Speaker_1", "B", at=1.0),
        local(0, "Speaker_2", None, clean=6.0, vector=noisy("A", 0.1), at=2.0),
        local(1, "Speaker_0", "B", at=300.0),
    ]  # fmt: skip
    linking = link_local_speakers(speakers, threshold=0.5, rejoin_threshold=0.12)
    assert linking.labels[(0, "Speaker_2")] == linking.labels[(0, "Speaker_0")] == "Speaker_0"
    assert linking.labels[(1, "Speaker_0")] == linking.labels[(0, "Speaker_1")] == "Speaker_1"
    # Without re-joining the copy is a person of its own.
    apart = link_speakers(speakers, threshold=0.5, rejoin_threshold=0.0)
    assert apart[(0, "Speaker_2")] not in {apart[(0, "Speaker_0")], apart[(0, "Speaker_1")]}


def test_link_confidence_follows_the_margin() -> None:
    speakers = [
        local(0, "Speaker_0", "A"), local(0, "Speaker_1", "B", at=1.0),
        local(1, "Speaker_0", None, vector=noisy("A", 0.1), at=300.0),
        # a short sliver about halfway between A and B: a close call
        local(2, "Speaker_0", None, clean=1.0, at=600.0,
              vector=(noisy("A", 0.05) + noisy("B", 0.05)) / 2 + 0.05 * noisy("A", 0.05)),
    ]  # fmt: skip
    linking = link_local_speakers(speakers, threshold=0.6)
    clear, close = linking.confidence[(1, "Speaker_0")], linking.confidence[(2, "Speaker_0")]
    assert clear > 0.8
    assert close < 0.4
    assert set(linking.fingerprints) == {"Speaker_0", "Speaker_1"}
    for vector in linking.fingerprints.values():
        assert abs(np.linalg.norm(vector) - 1) < 1e-9


def test_unreliable_speaker_joins_nearest_cluster_when_near() -> None:
    speakers = [
        local(0, "Speaker_0", "A"), local(0, "Speaker_1", "B", at=2.0),
        # little clean speech, a noisy print, still near B
        local(1, "Speaker_0", None, clean=0.8, vector=noisy("B", 0.5)),
        # little clean speech, and near nobody: no label on a guess
        local(2, "Speaker_0", None, clean=0.8, vector=noisy("B", 6.0), at=600.0),
    ]  # fmt: skip
    mapping = link_speakers(speakers, threshold=0.3, min_reliable_speech_s=3.0)
    assert mapping[(1, "Speaker_0")] == mapping[(0, "Speaker_1")]
    assert (2, "Speaker_0") not in mapping
    assert len(set(mapping.values())) == 2


def test_missing_fingerprint_is_not_given_a_label_on_a_guess() -> None:
    speakers = [
        local(0, "Speaker_0", "A"), local(0, "Speaker_1", "B", at=1.0),
        local(1, "Speaker_0", "A"), local(1, "Speaker_1", None, clean=0.0, at=305.0),
    ]  # fmt: skip
    mapping = link_speakers(speakers)
    assert (1, "Speaker_1") not in mapping
    assert mapping[(1, "Speaker_0")] == mapping[(0, "Speaker_0")]


def test_missing_fingerprint_without_free_cluster_is_dropped() -> None:
    # A spurious third slot with no clean speech in a chunk whose two voices are known.
    speakers = [
        local(0, "Speaker_0", "A"), local(0, "Speaker_1", "B", at=1.0),
        local(1, "Speaker_0", "A", at=300.0), local(1, "Speaker_1", "B", at=301.0),
        local(1, "Speaker_2", None, clean=0.0, at=302.0),
    ]  # fmt: skip
    mapping = link_speakers(speakers)
    assert (1, "Speaker_2") not in mapping
    assert set(mapping.values()) == {"Speaker_0", "Speaker_1"}


def test_weak_slots_without_free_cluster_are_dropped() -> None:
    speakers = [
        local(0, "Speaker_0", "A"), local(0, "Speaker_1", "B", at=1.0),
        # chunk 1: A, B, a 1.6 s sliver of A again (a split), and a short new voice D
        local(1, "Speaker_0", "A", at=300.0), local(1, "Speaker_1", "B", at=301.0),
        local(1, "Speaker_2", None, clean=1.6, at=302.0, vector=noisy("A", 0.5)),
        local(1, "Speaker_3", None, clean=1.6, at=303.0, vector=noisy("D", 0.5)),
    ]  # fmt: skip
    # Re-joining off: the sliver lies within the default re-join distance of A's slot.
    mapping = link_speakers(speakers, threshold=0.5, rejoin_threshold=0.0)
    assert (1, "Speaker_2") not in mapping
    assert (1, "Speaker_3") not in mapping  # too little speech to tell a newcomer from a split
    assert len(set(mapping.values())) == 2
    # At the default the split is re-joined to A's slot first, and so labelled as A.
    rejoined = link_speakers(speakers, threshold=0.5)
    assert rejoined[(1, "Speaker_2")] == rejoined[(1, "Speaker_0")] == rejoined[(0, "Speaker_0")]
    assert (1, "Speaker_3") not in rejoined


def test_missing_fingerprint_with_nothing_to_compare_keeps_own_label() -> None:
    speakers = [local(0, "Speaker_0", None, clean=0.0), local(0, "Speaker_1", None, clean=0.0,
                                                              at=3.0)]  # fmt: skip
    mapping = link_speakers(speakers)
    assert mapping == {(0, "Speaker_0"): "Speaker_0", (0, "Speaker_1"): "Speaker_1"}


def test_six_speakers_over_many_chunks_exact_count() -> None:
    speakers = []
    for chunk in range(20):
        present = [v for i, v in enumerate("ABCDEF") if (chunk + i) % 3 != 0][:4]
        for n, voice in enumerate(present):
            speakers.append(local(chunk, f"Speaker_{n}", voice, at=chunk * 300.0 + n))
    mapping = link_speakers(speakers, threshold=0.5)
    assert len(set(mapping.values())) == 6
    assert len(groups(mapping)) == 6


def test_single_and_empty_inputs() -> None:
    assert link_speakers([]) == {}
    assert link_speakers([local(0, "Speaker_0", "A")]) == {(0, "Speaker_0"): "Speaker_0"}
    zero = local(0, "Speaker_0", None, vector=np.zeros(192))
    assert link_speakers([zero]) == {(0, "Speaker_0"): "Speaker_0"}


def test_new_voice_far_from_all_clusters_starts_its_own() -> None:
    speakers = [local(0, "Speaker_0", "A"), local(1, "Speaker_0", "D", at=300.0)]
    mapping = link_speakers(speakers, threshold=0.5)
    assert mapping[(1, "Speaker_0")] != mapping[(0, "Speaker_0")]


def mixture(*names: str) -> np.ndarray:
    """The print of a slot into which the diarizer folded several people."""
    return mixture_of(*(noisy(name, 0.05) for name in names))


def mixture_of(*prints: np.ndarray) -> np.ndarray:
    vec = np.sum(prints, axis=0)
    return vec / np.linalg.norm(vec)


def test_mixed_slots_never_bridge_two_people_into_one_speaker() -> None:
    # A and B lie 0.5 apart (two people), and two chunks folded them into one slot each: the
    # mixtures lie ~0.13 from both. As plain voices they cluster first and their cluster
    # then joins A, and with them B (average linkage 0.27 < 0.35). As mixed ones they never
    # seed the clusters: A and B stay apart, and each mixture follows one of them.
    a = noisy("A", 0.05)
    b = 0.5 * a + np.sqrt(0.75) * noisy("B", 0.05)
    b /= np.linalg.norm(b)
    assert 0.45 < 1 - float(a @ b) < 0.55

    def slots(mixed: bool) -> list[LocalSpeaker]:
        return [
            LocalSpeaker(0, "Speaker_0", a, 20.0, 0.0),
            LocalSpeaker(1, "Speaker_0", b, 20.0, 300.0),
            LocalSpeaker(2, "Speaker_0", mixture_of(a, b), 20.0, 600.0, mixed=mixed),
            LocalSpeaker(3, "Speaker_0", mixture_of(a, b), 20.0, 900.0, mixed=mixed),
        ]

    plain = link_speakers(slots(False), threshold=0.35)
    assert plain[(0, "Speaker_0")] == plain[(1, "Speaker_0")]  # two people, one label
    mapping = link_speakers(slots(True), threshold=0.35)
    assert mapping[(0, "Speaker_0")] != mapping[(1, "Speaker_0")]
    for chunk in (2, 3):
        assert mapping[(chunk, "Speaker_0")] in {
            mapping[(0, "Speaker_0")],
            mapping[(1, "Speaker_0")],
        }


def test_mixed_slot_far_from_everyone_still_opens_a_speaker() -> None:
    # A one-chunk recording: the diarizer was unsure of its second slot throughout. Nothing
    # else is near it, so it is somebody else than A: a speaker of its own, not dropped.
    speakers = [
        local(0, "Speaker_0", "A"),
        LocalSpeaker(0, "Speaker_1", mixture("B", "C"), 20.0, 1.0, mixed=True),
    ]
    mapping = link_speakers(speakers, threshold=0.2)
    assert mapping == {(0, "Speaker_0"): "Speaker_0", (0, "Speaker_1"): "Speaker_1"}
