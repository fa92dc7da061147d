"""The OpenAPI document stays true to the router, and schemathesis finds no unmapped 5xx."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp

from spark_gateway.openapi import routed_operations
from tests.gateway.conftest import RunningGateway

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


async def fetch_document(gateway: RunningGateway) -> dict[str, object]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{gateway.url}/openapi.json") as resp,
    ):
        assert resp.status == 200
        return await resp.json()  # type: ignore[no-any-return]


async def test_document_lists_exactly_the_routes(gateway: RunningGateway) -> None:
    document = await fetch_document(gateway)
    assert document["openapi"] == "3.1.0"
    paths = document["paths"]
    assert isinstance(paths, dict)
    documented = {(path, method) for path, item in paths.items() for method in item}
    # Every route came in through add_route (which carries its operation), none around it.
    assert documented == routed_operations(gateway.app)
    for path, method in documented:
        assert paths[path][method]["summary"], (path, method)
    # Open endpoints say so; everything else inherits the bearer requirement.
    assert paths["/health"]["get"]["security"] == []
    assert paths["/v1/models"]["get"]["security"] == []  # Open WebUI lists without a key
    assert "security" not in paths["/v1/chat/completions"]["post"]


async def test_schemathesis_finds_no_server_errors(gateway: RunningGateway, tmp_path: Path) -> None:
    """Property-based requests from the document: only documented statuses, never a 500.

    Upstream failures (502/503/504) are documented and mapped; with a healthy simulator none
    should happen, so any 5xx fails the run.
    """
    process = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS),
        "run",
        f"{gateway.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {gateway.api_key}",
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,"
        "response_schema_conformance",
        "--max-examples",
        "12",
        "--workers",
        "1",
        "--seed",
        "1234",
        "--phases",
        "examples,coverage,fuzzing",
        "--request-timeout",
        "30",
        "--no-color",
        "--generation-database",
        "none",
        "--report-dir",
        str(tmp_path),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=240)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-6000:]
    assert "No issues found" in text or "passed" in text, text[-2000:]
