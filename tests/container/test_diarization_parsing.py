"""Pure parsing and confidence: lines grouped by speaker, frame rate from the tensor."""

from __future__ import annotations

import numpy as np
import pytest

from parakeet_server.diarization import (
    ModelOutputError,
    Segment,
    WindowDiarization,
    attach_confidence,
    clean_masks,
    link_windows,
    parse_lines,
    unpack_diarize_output,
)


def test_lines_grouped_by_speaker_come_out_sorted() -> None:
    lines = [
        "0.000 1.200 speaker_0",
        "3.000 4.000 speaker_0",
        "1.200 3.000 speaker_1",
        "2.500 2.600 speaker_2",
        "5.0 5.0 speaker_1",
    ]
    segments = parse_lines(lines)
    assert [(s.start_s, s.speaker) for s in segments] == [(0.0, 0), (1.2, 1), (2.5, 2), (3.0, 0)]


@pytest.mark.parametrize("line", ["0.0 1.0", "a b speaker_0", "0 1 spk_0", "0 1 speaker_x"])
def test_bad_lines_rejected(line: str) -> None:
    with pytest.raises(ModelOutputError):
        parse_lines([line])


def test_confidence_uses_frame_rate_from_tensor_shape() -> None:
    # 63 frames over 5.0 s: 12.6 fps (the shape the predecessor measured), not 12.5.
    probs = np.zeros((63, 4), np.float32)
    probs[:, 0] = 0.2
    probs[38:, 0] = 0.9  # frames from 3.016 s on
    segment = Segment(3.1, 5.0, 0)
    (result,) = attach_confidence([segment], probs, 5.0)
    lo, hi = int(np.floor(3.1 * 12.6)), int(np.ceil(5.0 * 12.6))
    assert result.confidence == pytest.approx(float(probs[lo:hi, 0].mean()), abs=1e-4)
    assert result.confidence == pytest.approx(0.9, abs=1e-4)


def test_confidence_null_without_tensor_or_duration() -> None:
    seg = Segment(0.0, 1.0, 0)
    assert attach_confidence([seg], None, 1.0)[0].confidence is None
    assert attach_confidence([seg], np.ones((10, 4)), 0.0)[0].confidence is None


def test_unpack_variants() -> None:
    lines, probs = unpack_diarize_output(([["0 1 speaker_0"]], [np.ones((1, 5, 4))]))
    assert lines == ["0 1 speaker_0"]
    assert probs is not None
    assert probs.shape == (5, 4)
    _, probs = unpack_diarize_output([["0 1 speaker_0"]])
    assert probs is None
    with pytest.raises(ModelOutputError):
        unpack_diarize_output([])
    with pytest.raises(ModelOutputError):
        unpack_diarize_output(([["0 1 speaker_0"]], [np.ones((4,))]))


def test_clean_mask_excludes_overlap() -> None:
    # 1 s at 10 fps: speaker 0 alone 0-0.5, both 0.5-0.7, speaker 1 alone 0.7-1.0
    probs = np.zeros((10, 4), np.float32)
    probs[:7, 0] = 0.9
    probs[5:, 1] = 0.9
    segments = [Segment(0.0, 0.7, 0), Segment(0.5, 1.0, 1)]
    masks = clean_masks(segments, probs, 16000, 0.5)
    assert masks[0].sum() == 8000
    assert masks[1].sum() == 4800
    # Without the tensor, the overlap is found from the segments themselves.
    masks = clean_masks(segments, None, 16000, 0.5)
    assert masks[0].sum() == 8000
    assert masks[1].sum() == 4800


def test_link_windows_cannot_link_and_new_speakers() -> None:
    a, b, c = np.eye(3)
    w1 = WindowDiarization([Segment(0, 1, 0), Segment(1, 2, 1)], None, {0: a, 1: b})
    w2 = WindowDiarization([Segment(0, 1, 0), Segment(1, 2, 1)], None, {0: b, 1: c})
    w3 = WindowDiarization([Segment(0, 1, 0)], None, {0: None})
    maps = link_windows([w1, w2, w3])
    assert maps[0] == {0: 0, 1: 1}
    assert maps[1] == {0: 1, 1: 2}  # b linked, c is new
    assert maps[2] == {0: 0}  # no fingerprint: takes the best free slot rather than inventing one
