"""tqdm's own formatting (sizes, intervals, bars), so simulated progress reads like the real one."""

from __future__ import annotations

_BLOCKS = " ▏▎▍▌▋▊▉█"
BAR_WIDTH = 10  # tqdm's bar width when it cannot measure the terminal (no TTY over SSH)


def format_sizeof(num: float) -> str:
    """tqdm.format_sizeof with divisor 1000: 2.67G, 140M, 0.00."""
    for unit in ("", "k", "M", "G", "T", "P"):
        if abs(num) < 999.5:
            if abs(num) < 99.95:
                if abs(num) < 9.995:
                    return f"{num:1.2f}{unit}"
                return f"{num:2.1f}{unit}"
            return f"{num:3.0f}{unit}"
        num /= 1000
    return f"{num:3.1f}E"


def format_interval(seconds: float) -> str:
    """tqdm.format_interval: 02:13 or 1:02:13."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def bar(fraction: float) -> str:
    """The unicode bar tqdm draws for a fraction done."""
    fraction = min(1.0, max(0.0, fraction))
    eighths = int(fraction * BAR_WIDTH * 8)
    full, part = divmod(eighths, 8)
    text = "█" * full + (_BLOCKS[part] if full < BAR_WIDTH else "")
    return text.ljust(BAR_WIDTH)


def byte_bar(desc: str, done: int, total: int, elapsed: float, rate: float) -> str:
    """A `unit="B", unit_scale=True` bar:
    `desc:  12%|█▏        | 2.67G/21.3G [00:19<02:13, 140MB/s]`."""
    rate_text = f"{format_sizeof(rate)}B/s" if rate > 0 else "?B/s"
    if total <= 0:
        return f"{desc}: {format_sizeof(done)}B [{format_interval(elapsed)}, {rate_text}]"
    remaining = format_interval((total - done) / rate) if rate > 0 else "?"
    return (
        f"{desc}: {100 * done / total:3.0f}%|{bar(done / total)}| "
        f"{format_sizeof(done)}/{format_sizeof(total)} "
        f"[{format_interval(elapsed)}<{remaining}, {rate_text}]"
    )


def count_bar(desc: str, done: int, total: int, elapsed: float) -> str:
    """A plain counting bar: `Fetching 12 files:  42%|████▏     | 5/12 [00:10<00:14,  2.10it/s]`."""
    rate = done / elapsed if elapsed > 0 else 0.0
    rate_text = f"{rate:5.2f}it/s" if rate > 0 else "?it/s"
    remaining = format_interval((total - done) / rate) if rate > 0 else "?"
    return (
        f"{desc}: {100 * done / total:3.0f}%|{bar(done / total)}| {done}/{total} "
        f"[{format_interval(elapsed)}<{remaining}, {rate_text}]"
    )


def hub_size(num: float) -> str:
    """huggingface_hub's `_format_size` (used by `--dry-run`): 21.3G, 655.2M, 0.0."""
    for unit in ("", "K", "M", "G", "T", "P"):
        if abs(num) < 1000.0:
            return f"{num:.1f}{unit}"
        num /= 1000.0
    return f"{num:.1f}E"
