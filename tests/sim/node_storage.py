"""A node's disk and its Hugging Face cache: what `df`, `hf download` and `hf cache rm` see.

Bytes are counted, not written: a 20 GB model costs nothing here, but the disk fills up and
empties exactly as it would (partial downloads keep their bytes until resumed or removed).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

# Files a typical safetensors model repo holds besides its weight shards (name, bytes).
_SMALL_FILES = (
    (".gitattributes", 1_570),
    ("README.md", 8_812),
    ("config.json", 1_644),
    ("generation_config.json", 239),
    ("tokenizer.json", 11_422_654),
    ("tokenizer_config.json", 5_404),
    ("model.safetensors.index.json", 62_311),
)
_SHARD_BYTES = 5_000_000_000  # hub shards are at most ~5 GB


@dataclass(frozen=True, slots=True)
class RepoFile:
    name: str
    size: int


def repo_files(total_bytes: int) -> list[RepoFile]:
    """The files of a model repo of roughly `total_bytes`: small files plus weight shards."""
    files = [RepoFile(name, size) for name, size in _SMALL_FILES]
    weights = max(1, total_bytes - sum(f.size for f in files))
    shards = max(1, -(-weights // _SHARD_BYTES))
    base, extra = divmod(weights, shards)
    for index in range(shards):
        size = base + (1 if index < extra else 0)
        files.append(RepoFile(f"model-{index + 1:05d}-of-{shards:05d}.safetensors", size))
    return files


def snapshot_revision(repo_id: str) -> str:
    return hashlib.sha1(repo_id.encode(), usedforsecurity=False).hexdigest()


@dataclass
class CachedRepo:
    """One repo in `~/.cache/huggingface/hub`: files done, and bytes of the file in progress."""

    repo_id: str
    files: list[RepoFile]
    done: set[str] = field(default_factory=set)
    partial: dict[str, int] = field(default_factory=dict)  # blobs/<sha>.incomplete sizes

    @property
    def total(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def stored(self) -> int:
        return sum(f.size for f in self.files if f.name in self.done) + sum(self.partial.values())

    @property
    def complete(self) -> bool:
        return len(self.done) == len(self.files)


@dataclass
class NodeStorage:
    """The filesystem holding the node's home directory."""

    size: int
    free: int
    hf_cache: dict[str, CachedRepo] = field(default_factory=dict)

    def write(self, repo: CachedRepo, file: RepoFile, nbytes: int) -> int:
        """Append up to `nbytes` to `file`'s blob; returns how many fit on the disk."""
        written = min(nbytes, self.free)
        self.free -= written
        repo.partial[file.name] = repo.partial.get(file.name, 0) + written
        if repo.partial[file.name] >= file.size:
            del repo.partial[file.name]
            repo.done.add(file.name)
        return written

    def remove(self, repo_id: str) -> int:
        """Delete a cached repo (as `hf cache rm`); returns the bytes freed."""
        repo = self.hf_cache.pop(repo_id)
        freed = repo.stored
        self.free += freed
        return freed
