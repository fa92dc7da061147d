"""Audio conversion speed of the gateway on one core, against the ffmpeg CLI doing the same job.

    .venv/bin/python benchmarks/gateway_audio.py [--seconds 60] [--repeat 5]

Builds a real-speech recording (flite, repeated to the wanted length), encodes it as a browser
would upload it (webm/opus, 48 kHz) and measures, pinned to one CPU core:
- upload → 16 kHz mono WAV (`decode_to_wav16k`, what every transcription does), goal ≥ 200x
  real time;
- 22.05 kHz speech → mp3 (`encode_audio`, the default speech format), goal ≥ 100x real time.
The baseline is the `ffmpeg` CLI doing the same conversion (same LAME quality), alternating
with the gateway's code in the same run; the CLI's figure includes its process start. Times are
CPU seconds (process + children), so other load on a shared machine does not count.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "addon"))
sys.path.insert(0, str(ROOT))

from spark_gateway.audio_codec import (  # noqa: E402
    decode_to_wav16k,
    encode_audio,
    pcm_to_wav,
    wav_to_pcm,
)
from tests.gateway.audio_files import encode_with_pyav  # noqa: E402

TEXT = (
    "Spark Control turns a home lab into one address on the network. Chat goes to the language "
    "model, speech is transcribed by Parakeet and answers are spoken by Magpie. "
)


def speech(seconds: float, rate: int, work: Path) -> np.ndarray:
    wav = work / "speech.wav"
    subprocess.run(["flite", "-voice", "slt", "-t", TEXT, "-o", str(wav)], check=True)
    samples, source_rate = wav_to_pcm(wav.read_bytes())
    if source_rate != rate:
        resampled = decode_to_wav16k(pcm_to_wav(samples, source_rate))  # 16 kHz reference
        samples = resampled.samples
    repeats = int(np.ceil(seconds * rate / len(samples)))
    return np.tile(samples, repeats)[: int(seconds * rate)]


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the ffmpeg runs)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_pair(
    ours: Callable[[], object], theirs: Callable[[], object], repeat: int
) -> tuple[float, float]:
    """Median CPU seconds of alternating runs.

    CPU time, not wall time: on a shared box, waiting for a core says nothing about the code.
    Alternating keeps cache and frequency effects alike for both sides.
    """
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for func, bucket in ((ours, times[0]), (theirs, times[1])):
            start = cpu_seconds()
            func()
            bucket.append(cpu_seconds() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def ffmpeg(args: list[str]) -> None:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-threads", "1", "-y", *args], check=True
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as stated
    work = Path(tempfile.mkdtemp(prefix="gateway-audio-"))

    samples16 = speech(args.seconds, 16000, work)
    webm = encode_with_pyav(samples16, 16000, "webm", "libopus")
    (work / "in.webm").write_bytes(webm)
    decoded = decode_to_wav16k(webm)
    assert abs(decoded.duration_s - args.seconds) < 0.1, decoded.duration_s

    ours, theirs = timed_pair(
        lambda: decode_to_wav16k(webm),
        lambda: ffmpeg(
            ["-i", str(work / "in.webm"), "-ar", "16000", "-ac", "1", str(work / "out.wav")]
        ),
        args.repeat,
    )

    # 22.05 kHz mono speech, Magpie's rate, to mp3.
    tts = np.repeat(samples16, 2)[: int(args.seconds * 22050)]  # level-preserving stand-in
    (work / "tts.wav").write_bytes(pcm_to_wav(tts, 22050))
    mp3_ours, mp3_theirs = timed_pair(
        lambda: encode_audio(tts, 22050, "mp3"),
        lambda: ffmpeg(
            [
                "-i",
                str(work / "tts.wav"),
                "-c:a",
                "libmp3lame",
                "-b:a",
                "64k",
                "-compression_level",
                "7",
                str(work / "out.mp3"),
            ]
        ),
        args.repeat,
    )

    print(f"{args.seconds:.0f} s of speech, one core, median CPU time of {args.repeat} runs")
    print(
        f"webm/opus -> 16 kHz WAV  gateway {ours * 1000:.1f} ms = {args.seconds / ours:.0f}x "
        f"real time   ffmpeg CLI {theirs * 1000:.1f} ms = {args.seconds / theirs:.0f}x   "
        f"gateway/ffmpeg speed {theirs / ours:.2f}x  (goal >= 200x real time)"
    )
    print(
        f"22 kHz speech -> mp3     gateway {mp3_ours * 1000:.1f} ms = "
        f"{args.seconds / mp3_ours:.0f}x real time   ffmpeg CLI {mp3_theirs * 1000:.1f} ms = "
        f"{args.seconds / mp3_theirs:.0f}x   gateway/ffmpeg speed {mp3_theirs / mp3_ours:.2f}x"
        f"  (goal >= 100x real time)"
    )


if __name__ == "__main__":
    main()
