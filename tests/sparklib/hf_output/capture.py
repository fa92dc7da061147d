"""Capture what `hf download` writes to a pipe, through huggingface_hub's own progress bars.

The .txt files next to this script are its output (stderr and stdout merged, as the
integration reads them over SSH). The bars are huggingface_hub's and tqdm's own code, built
with the arguments `snapshot_download` gives them; only the network is replaced by a loop that
feeds them a typical repo's files (the simulator's: seven small files and three shards), up
to eight files at a time as the CLI's workers do. Run it with a huggingface_hub installed:

    python capture.py > hub-2.4-tqdm-position.txt 2>&1       (with TQDM_POSITION=-1 set)
    python capture.py > hub-1.22-no-terminal.txt 2>&1        (without it)

Captured with huggingface_hub 1.22.0 and 2.4.0, tqdm 4.70.1. With no terminal and without
TQDM_POSITION=-1 only the "Fetching N files" bar is drawn: the bytes bars hide themselves.
"""

import logging
import time

import huggingface_hub
from huggingface_hub.utils.tqdm import _create_progress_bar, tqdm
from tqdm.contrib.concurrent import thread_map

FILES = {
    ".gitattributes": 1_570,
    "README.md": 8_812,
    "config.json": 1_644,
    "generation_config.json": 239,
    "tokenizer.json": 11_422_654,
    "tokenizer_config.json": 5_404,
    "model.safetensors.index.json": 62_311,
    "model-00001-of-00003.safetensors": 40_000_000,
    "model-00002-of-00003.safetensors": 40_000_000,
    "model-00003-of-00003.safetensors": 38_000_000,
}
SNAPSHOT = "/home/spark/.cache/huggingface/hub/models--org--small/snapshots/" + "8ab5b2a3" * 5
LOG_LEVEL = logging.getLogger("huggingface_hub._snapshot_download").getEffectiveLevel()
MODERN = int(huggingface_hub.__version__.split(".")[0]) >= 2  # 1.24+ draws the same bars


def _bar(name: str, desc: str, **kwargs: object) -> tqdm:
    return _create_progress_bar(
        cls=tqdm,
        log_level=LOG_LEVEL,
        name=name,
        desc=desc,
        total=0,
        initial=0,
        unit="B",
        unit_scale=True,
        **kwargs,
    )


if MODERN:
    from huggingface_hub.cli._output import out
    from huggingface_hub.utils import _xet_progress_reporting as xet

    transfer = _bar(
        "huggingface_hub.snapshot_download.transfer",
        "Downloading bytes",
        bar_format=xet.XET_TRANSFER_BAR_FORMAT,
    )
    written = _bar(
        "huggingface_hub.snapshot_download",
        "Reconstructing (incomplete total...)",
        bar_format=xet.XET_BYTES_BAR_FORMAT,
    )
else:
    written = _bar("huggingface_hub.snapshot_download", "Downloading (incomplete total...)")


def fetch(name: str) -> None:
    """One file as `hf_hub_download` reports it to the aggregated bars."""
    size = FILES[name]
    written.total = (written.total or 0) + size
    if MODERN:
        transfer.total = (transfer.total or 0) + size
    written.refresh()
    step, done = max(1, size // 4), 0
    while done < size:
        chunk = min(step, size - done)
        time.sleep(0.15)
        written.update(chunk)
        if MODERN:
            xet._update_transfer_bar(transfer, chunk)
            xet._set_aggregate_rate_postfix(written)
            xet._set_aggregate_rate_postfix(transfer)
        done += chunk


thread_map(fetch, list(FILES), desc=f"Fetching {len(FILES)} files", max_workers=8, tqdm_class=tqdm)
if MODERN:
    xet._finish_transfer_bar(transfer)
    transfer.set_description_str("Download complete")
    written.set_description("Reconstruction complete")
    out.result("Downloaded", path=SNAPSHOT)
else:
    written.set_description("Download complete")
    print(SNAPSHOT)
