"""Speaker-attributed transcription: pure algorithms plus the long-audio orchestration.

Modules, one job each:
- `records`: the typed records passed between the steps.
- `parsing`: upstream JSON (transcription words, diarization segments) into records.
- `tokens`: joining ASR tokens into readable text.
- `assignment`: words to speakers by time overlap.
- `turns`: attributed words into speaker turns with a confidence.
- `formats`: turns into the JSON contract, SRT, WebVTT and plain text.
- `chunking`: long audio cut at silences into overlapping chunks.
- `dedupe`: keeping each word and segment once when chunks overlap.
- `linking`: local speakers of every chunk linked into one global set.
- `pipeline`: the async orchestration of the short and long paths.
"""
