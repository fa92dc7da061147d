"""`python -m parakeet_server`: serve on the GPU with the NeMo models (settings from env)."""

from __future__ import annotations

import logging

from aiohttp import web

from .config import config_from_env
from .models import ModelRegistry, nemo_loaders
from .server import create_app


def main() -> None:  # pragma: no cover - runs in the GPU container
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = config_from_env()
    app = create_app(config, ModelRegistry(nemo_loaders(config)))
    web.run_app(app, host=config.host, port=config.port)


if __name__ == "__main__":
    main()
