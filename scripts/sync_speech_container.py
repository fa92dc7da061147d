"""Copy parakeet_container/'s build context into the integration (speech_container/).

HACS installs only custom_components/spark_control, so the integration carries the build
context it deploys. Run this after changing parakeet_container/; the test
tests/sparklib/test_speech_container.py fails while the two differ.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from custom_components.spark_control.sparklib.speech_container import (  # noqa: E402
    SPEECH_CONTEXT_DIR,
    context_files,
)

SOURCE = ROOT / "parakeet_container"


def main() -> None:
    if SPEECH_CONTEXT_DIR.exists():
        shutil.rmtree(SPEECH_CONTEXT_DIR)
    for name, content in context_files(SOURCE):
        target = SPEECH_CONTEXT_DIR / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        if name == "run.sh":
            target.chmod(0o755)
    print(f"{SPEECH_CONTEXT_DIR.relative_to(ROOT)}: {len(context_files(SOURCE))} files")


if __name__ == "__main__":
    main()
