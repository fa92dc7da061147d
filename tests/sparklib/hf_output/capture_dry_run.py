"""Capture what `hf download --dry-run` prints, through huggingface_hub's own CLI.

The .txt files named `*-dry-run-*` next to this script are its output (stderr and stdout
merged, as the integration reads them over SSH). The CLI runs unchanged against a local
stand-in for the Hub (HF_ENDPOINT): the repo's revision, its file tree, and a HEAD answer per
file, as huggingface.co gives them. Run it with a huggingface_hub 2.x installed:

    python capture_dry_run.py known > hub-2.4-dry-run-known-size.txt 2>&1
    python capture_dry_run.py unknown > hub-2.4-dry-run-unknown-size.txt 2>&1

`unknown`: one file's HEAD answer carries neither Content-Length nor X-Linked-Size (a proxy
that strips them), so the CLI sums no total and says "an unknown size". Captured with
huggingface_hub 2.4.0.
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = "org/small"
SHA = "8ab5b2a3" * 5
FILES = {
    "config.json": 1_644,
    "tokenizer.json": 11_422_654,
    "model-00001-of-00002.safetensors": 4_000_000_000,
    "model-00002-of-00002.safetensors": 3_800_000_000,
}
SIZELESS = "model-00002-of-00002.safetensors"  # its HEAD answer has no size in `unknown`


class Hub(BaseHTTPRequestHandler):
    """The three answers a dry run asks the Hub for."""

    sizeless: set[str] = set()

    def _json(self, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path.startswith(f"/api/models/{REPO}/revision/"):
            siblings = [{"rfilename": name} for name in FILES]
            self._json({"id": REPO, "sha": SHA, "siblings": siblings, "private": False})
        elif path.startswith(f"/api/models/{REPO}/tree/"):
            self._json(
                [
                    {"type": "file", "path": name, "size": size, "oid": f"{n:040x}"}
                    for n, (name, size) in enumerate(FILES.items())
                ]
            )
        else:
            self.send_error(404)

    def do_HEAD(self) -> None:
        name = self.path.split(f"/resolve/{SHA}/", 1)[-1]
        if name not in FILES:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("X-Repo-Commit", SHA)
        self.send_header("ETag", f'"{hash(name) & 0xFFFFFFFF:08x}"')
        if name not in self.sizeless:
            self.send_header("Content-Length", str(FILES[name]))
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: only the CLI's output is the capture."""


def main() -> None:
    Hub.sizeless = {SIZELESS} if sys.argv[1:] == ["unknown"] else set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with tempfile.TemporaryDirectory() as cache:
            env = {
                **os.environ,
                "HF_ENDPOINT": f"http://127.0.0.1:{server.server_port}",
                "HF_HOME": cache,
                "HF_HUB_DISABLE_TELEMETRY": "1",
            }
            hf = Path(sys.executable).with_name("hf")
            subprocess.run([str(hf), "download", REPO, "--dry-run"], env=env, check=False)
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
