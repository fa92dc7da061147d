"""Real NeMo models for the speech container's tests: published recipes, tiny sizes, random weights.

Each model is the NeMo class the container loads in production, built from NeMo's own example
configuration (verbatim copies in `conf/`, from NVIDIA/NeMo at commit 8cfedd72, 2025-09-20):

- ASR, `conf/parakeet_tdt.yaml` = examples/asr/conf/fastconformer/hybrid_transducer_ctc/
  fastconformer_hybrid_tdt_ctc_bpe.yaml without its auxiliary CTC head: the FastConformer + TDT
  transducer that parakeet-tdt-0.6b-v3 is, as an `EncDecRNNTBPEModel` with a SentencePiece BPE
  tokenizer trained here on a few sentences.
- Diarization, `conf/streaming_sortformer.yaml` = examples/speaker_tasks/diarization/conf/
  neural_diarizer/streaming_sortformer_diarizer_4spk-v2.yaml: `SortformerEncLabelModel` in
  streaming mode, as diar_streaming_sortformer_4spk-v2 (the default); and `conf/
  sortformer_v1.yaml` = .../neural_diarizer/sortformer_diarizer_hybrid_loss_4spk-v1.yaml, the
  offline diar_sortformer_4spk-v1 that PARAKEET_DIAR_MODEL may name instead.
- Fingerprints, `conf/titanet_large.yaml` = examples/speaker_tasks/recognition/conf/
  titanet-large.yaml: `EncDecSpeakerLabelModel` (TitaNet) with its 192-dim embedding.

Only layer counts and widths shrink (seconds on a CPU, not minutes). Two output layers are set
instead of random so the expected answer is known: the transducer's joint always emits one
word-initial token with duration 4 (one word every 4 encoder frames), and Sortformer's speaker
layer keeps slot 0 active (sigmoid 0.982) and the others silent (in the v1 model, slots 0 and
2 speak at once, an overlap that must yield no fingerprint; a third Sortformer has its speaker
layer fitted by least squares to two tone voices taking turns). Everything else, feature
extraction, subsampling, decoding, timestamps, streaming diarization, post-processing, pooling,
runs as NeMo ships it.

Each model is saved as a `.nemo` file and laid into a Hugging Face cache under the released
model's name, so the container's own loader (`nemo_loaders` → `from_pretrained`) restores it
offline: the production loading path, with no download.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before huggingface_hub reads it

import aiohttp
import numpy as np
import pytest
import torch
from aiohttp.test_utils import TestServer
from omegaconf import DictConfig, OmegaConf

from parakeet_server.config import ServerConfig
from parakeet_server.models import Loaders, ModelRegistry, nemo_loaders
from parakeet_server.server import create_app

CONF = Path(__file__).parent / "conf"
RATE = 16_000
TDT_DURATION = 4  # frames the forced token lasts (index 4 of durations [0, 1, 2, 3, 4])
SPEAKER_LOGITS = (4.0, -0.85, -6.0, -6.0)  # Sortformer slot 0 speaks, the others do not
# The v1 model: slots 0 and 2 speak at once throughout (overlap; slot 2 is not slot 1).
V1_SPEAKER_LOGITS = (4.0, -6.0, 2.2, -6.0)
CORPUS = [
    "turn on the kitchen lights",
    "what is the weather like tomorrow morning",
    "swap the model to the larger one please",
    "the meeting starts at nine thirty",
    "speaker recognition finds who said what",
    "parakeet transcribes long recordings with word timestamps",
    "sortformer tells the speakers apart",
    "titanet makes a fingerprint of each voice",
] * 4


@dataclass(frozen=True)
class TinyModels:
    """What the tests know about the checkpoints they published."""

    hf_home: Path  # HF_HOME, as the image sets it to /models/hf; the hub cache is its hub/
    word: str  # the one word the forced transducer says
    frame_s: float  # ASR encoder frame: window stride x subsampling factor
    speaker_probs: tuple[float, ...]  # Sortformer's constant per-slot sigmoid
    embedding_dim: int


def _model_section(name: str, **overrides: Any) -> DictConfig:
    root = OmegaConf.load(CONF / name)
    assert isinstance(root, DictConfig)
    for key, value in overrides.items():
        OmegaConf.update(root, key, value, merge=False)
    OmegaConf.resolve(root)
    model = root.model
    for key in ("train_ds", "validation_ds", "test_ds"):  # as in released checkpoints: no data
        if key in model:
            model[key].manifest_filepath = None
            model[key].pop("augmentor", None)
    return model


def _tokenizer(folder: Path) -> Path:
    from nemo.collections.common.tokenizers.sentencepiece_tokenizer import create_spt_model

    text = folder / "corpus.txt"
    text.write_text("\n".join(CORPUS) + "\n")
    create_spt_model(
        str(text), vocab_size=48, sample_size=-1, do_lower_case=True,
        tokenizer_type="bpe", output_dir=str(folder / "tokenizer"),
    )  # fmt: skip
    return folder / "tokenizer"


def _asr(folder: Path) -> tuple[Any, str, float]:
    from nemo.collections.asr.models import EncDecRNNTBPEModel

    cfg = _model_section(
        "parakeet_tdt.yaml",
        **{
            "model.tokenizer.dir": str(_tokenizer(folder)),
            "model.encoder.n_layers": 2,
            "model.encoder.d_model": 64,
            "model.encoder.n_heads": 2,
            "model.encoder.subsampling_conv_channels": 32,
            "model.model_defaults.pred_hidden": 64,
            "model.model_defaults.joint_hidden": 64,
        },
    )
    for key in ("aux_ctc", "interctc"):  # the hybrid recipe's CTC head; parakeet-tdt has none
        cfg.pop(key)
    model = EncDecRNNTBPEModel(cfg=cfg)
    vocabulary = model.tokenizer.vocab
    words = [i for i, p in enumerate(vocabulary) if p.startswith("▁") and p[1:].isalpha()]
    token = max(words, key=lambda i: (len(vocabulary[i]), -i))  # the longest whole-word piece
    out = model.joint.joint_net[-1]  # logits: vocabulary, blank, then the TDT durations
    durations = list(cfg.model_defaults.tdt_durations)
    with torch.no_grad():
        out.weight.zero_()
        out.bias.zero_()
        out.bias[token] = 10.0
        out.bias[len(vocabulary) + 1 + durations.index(TDT_DURATION)] = 10.0
    frame_s = cfg.preprocessor.window_stride * cfg.encoder.subsampling_factor
    return model, vocabulary[token][1:], frame_s


SORTFORMER_V1 = "nvidia/diar_sortformer_4spk-v1"


def _sortformer(conf: str, logits: tuple[float, ...]) -> Any:
    from nemo.collections.asr.models import SortformerEncLabelModel

    cfg = _model_section(
        conf,
        **{
            "model.model_defaults.fc_d_model": 64,
            "model.model_defaults.tf_d_model": 32,
            "model.encoder.n_layers": 2,
            "model.encoder.n_heads": 2,
            "model.encoder.subsampling_conv_channels": 32,
            "model.transformer_encoder.num_layers": 1,
            "model.transformer_encoder.inner_size": 64,
            "model.transformer_encoder.num_attention_heads": 2,
        },
    )
    model = SortformerEncLabelModel(cfg=cfg)
    layer = model.sortformer_modules.single_hidden_to_spks
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.copy_(torch.tensor(logits))
    return model


SORTFORMER_TURNS = "spark-control-tests/sortformer-turn-taking"
# Who speaks when in `dialogue()`: voice A in slot 0, voice B in slot 1 (seconds).
TURNS = {0: ((0.0, 3.0), (5.8, 7.8)), 1: ((3.4, 5.4), (8.2, 10.2))}


def dialogue() -> np.ndarray:
    """Two tone voices taking turns, as TURNS says, with 0.4 s pauses."""
    from tests.container.fakes import silence, tone

    pause = silence(0.4)
    a, b = tone("A", 3.0), tone("B", 2.0)
    return np.concatenate([a, pause, b, pause, a[: 2 * RATE], pause, b])


def _turn_taking_sortformer(work: Path) -> Any:
    """The offline Sortformer with its speaker layer fitted (least squares) to `dialogue()`'s
    turns: NeMo's whole pipeline then produces time-varying activity, several segments per
    speaker, and lines grouped by speaker, from a real input."""
    from parakeet_server.audio import write_wav

    model = _sortformer("sortformer_v1.yaml", (0.0, 0.0, 0.0, 0.0))
    model.eval()
    path = work / "dialogue.wav"
    write_wav(path, dialogue())
    features: list[torch.Tensor] = []
    hook = model.sortformer_modules.first_hidden_to_hidden.register_forward_hook(
        lambda _module, _inputs, output: features.append(torch.relu(output).detach().clone())
    )
    model.diarize(audio=str(path), batch_size=1, verbose=False)
    hook.remove()
    hidden = features[0][0].double().numpy()  # (T, hidden): what the speaker layer sees
    frames = (np.arange(hidden.shape[0]) + 0.5) * 0.08
    target = np.full((hidden.shape[0], 4), -5.0)
    for slot, spans in TURNS.items():
        for start, end in spans:
            target[(frames >= start) & (frames < end), slot] = 5.0
    design = np.hstack([hidden, np.ones((hidden.shape[0], 1))])
    solution = np.linalg.lstsq(design, target, rcond=None)[0]
    layer = model.sortformer_modules.single_hidden_to_spks
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(solution[:-1].T.copy()))
        layer.bias.copy_(torch.from_numpy(solution[-1].copy()))
    return model


def _titanet() -> Any:
    from nemo.collections.asr.models import EncDecSpeakerLabelModel

    cfg = _model_section(
        "titanet_large.yaml",
        **{
            "model.model_defaults.filters": 64,
            "model.model_defaults.repeat": 1,
            "model.encoder.jasper.4.filters": 128,
            "model.decoder.feat_in": 128,
            "model.decoder.num_classes": 8,
        },
    )
    return EncDecSpeakerLabelModel(cfg=cfg)


def _publish(cache: Path, repo_id: str, model: Any, work: Path) -> None:
    """Save `model` as `<name>.nemo` in the Hugging Face cache layout `hf_hub_download` uses."""
    nemo_file = work / f"{repo_id.split('/')[-1]}.nemo"
    model.save_to(str(nemo_file))
    folder = cache / f"models--{repo_id.replace('/', '--')}"
    revision = "0" * 40
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(revision)
    (folder / "snapshots" / revision).mkdir(parents=True)
    shutil.move(nemo_file, folder / "snapshots" / revision / nemo_file.name)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyModels]:
    """Build, save and publish the three models once per session; the cache is removed after."""
    import huggingface_hub.constants

    torch.manual_seed(0)
    work = tmp_path_factory.mktemp("nemo-build")
    hf_home = tmp_path_factory.mktemp("hf-home")
    cache = hf_home / "hub"
    names = ServerConfig()
    asr, word, frame_s = _asr(work)
    _publish(cache, names.asr_model, asr, work)
    streaming = _sortformer("streaming_sortformer.yaml", SPEAKER_LOGITS)
    _publish(cache, names.diarization_model, streaming, work)
    _publish(cache, SORTFORMER_V1, _sortformer("sortformer_v1.yaml", V1_SPEAKER_LOGITS), work)
    _publish(cache, SORTFORMER_TURNS, _turn_taking_sortformer(work), work)
    titanet = _titanet()
    _publish(cache, names.embedding_model, titanet, work)
    probs = tuple(1 / (1 + math.exp(-v)) for v in SPEAKER_LOGITS)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
        yield TinyModels(hf_home, word, frame_s, probs, int(titanet.cfg.decoder.emb_sizes))
    shutil.rmtree(hf_home, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def nemo_cpu_loaders(tiny_models: TinyModels) -> Loaders:
    """The container's own NeMo loaders (released names, CPU), each run once per session."""
    real = nemo_loaders(replace(ServerConfig(), device="cpu"))
    return Loaders(
        asr=functools.cache(real.asr),
        diarization=functools.cache(real.diarization),
        embedding=functools.cache(real.embedding),
        gpu_memory=real.gpu_memory,
        inference=real.inference,
    )


@dataclass
class Running:
    server: TestServer
    registry: ModelRegistry

    async def post(self, path: str, data: bytes, **fields: str) -> tuple[int, Any]:
        form = aiohttp.FormData()
        form.add_field("file", data, filename="a.wav", content_type="audio/wav")
        for key, value in fields.items():
            form.add_field(key, value)
        url = str(self.server.make_url(path))
        async with aiohttp.ClientSession() as session, session.post(url, data=form) as resp:
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, await resp.text()

    async def get(self, path: str) -> Any:
        url = str(self.server.make_url(path))
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            assert resp.status == 200
            return await resp.json()


Factory = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start_server(nemo_cpu_loaders: Loaders) -> AsyncIterator[Factory]:
    """The container's HTTP server on a loopback port over the real models (settings per test)."""
    servers: list[TestServer] = []

    async def start(*, own_loaders: bool = False, **overrides: Any) -> Running:
        """`own_loaders`: the container's loaders for these settings (other model names),
        rather than the session's loaded default models."""
        config = replace(ServerConfig(), device="cpu", **overrides)
        registry = ModelRegistry(nemo_loaders(config) if own_loaders else nemo_cpu_loaders)
        server = TestServer(create_app(config, registry), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return Running(server, registry)

    yield start
    for server in servers:
        await server.close()


def speech_like(seconds: float, *, pauses: tuple[tuple[float, float], ...] = (), seed: int = 0):
    """Noise with a syllable-rate envelope (random-weight models need no real words), silent in
    `pauses` so long inputs have places to be cut."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    samples = (0.2 * envelope * rng.standard_normal(n)).astype(np.float32)
    for start, end in pauses:
        samples[int(start * RATE) : int(end * RATE)] = 0.0
    return samples
