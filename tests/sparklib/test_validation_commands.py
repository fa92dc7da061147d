"""Validation patterns and command builders: everything quoted, injections refused."""

from __future__ import annotations

import shlex
from datetime import datetime, timedelta, timezone

import pytest

from custom_components.spark_control.sparklib import commands, validation
from custom_components.spark_control.sparklib.catalog import Catalog, load_bundled_models
from custom_components.spark_control.sparklib.errors import InvalidInput

INJECTIONS = [
    "x; rm -rf /",
    "`reboot`",
    "$(reboot)",
    "name\nreboot",
    "a && b",
    "a|b",
    "../etc",
    "",
    " ",
    "-rf",
]


@pytest.mark.parametrize("bad", INJECTIONS)
def test_container_rejects_injection(bad: str) -> None:
    with pytest.raises(InvalidInput) as err:
        commands.docker_action("restart", bad)
    assert err.value.field == "container"


@pytest.mark.parametrize("bad", [*INJECTIONS, "owner", "owner/", "/name", "a/b/c", "o/..", "o/n x"])
def test_repo_id_rejects_injection(bad: str) -> None:
    with pytest.raises(InvalidInput) as err:
        commands.hf_download(bad)
    assert err.value.field == "repo_id"


@pytest.mark.parametrize(
    "good", ["RedHatAI/Qwen3.6-35B-A3B-NVFP4", "Qwen/Qwen2.5-72B-Instruct", "a/b", "org_1/m.v2"]
)
def test_repo_id_accepts_real_ids(good: str) -> None:
    assert commands.hf_download(good).render() == f"env TQDM_POSITION=-1 hf download {good}"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("spark-1", "spark-1"),
        ("spark-1.lan.", "spark-1.lan"),
        ("192.168.1.20", "192.168.1.20"),
        ("fe80::1", "fe80::1"),
        ("[2001:db8::5]", "2001:db8::5"),
        ("a" * 63 + ".example", "a" * 63 + ".example"),
    ],
)
def test_host_accepts(value: str, expected: str) -> None:
    assert validation.validate_host(value) == expected


@pytest.mark.parametrize(
    "bad",
    [*INJECTIONS, "300.1.1.1", "-lead.lan", "trail-.lan", "a" * 64, "host name", "h_1", "1.2.3"],
)
def test_host_rejects(bad: str) -> None:
    with pytest.raises(InvalidInput):
        validation.validate_host(bad)


@pytest.mark.parametrize(
    "bad", ["relative/path", "~/../etc", "/opt/../etc", "/a b", "~/x;y", "$HOME"]
)
def test_path_rejects(bad: str) -> None:
    with pytest.raises(InvalidInput) as err:
        commands.stop_cluster(bad)
    assert err.value.field == "repo_path"


@pytest.mark.parametrize("bad", ["Qwen", "UPPER", "-lead", "a" * 65, "a b", "x;y"])
def test_catalog_key_rejects(bad: str) -> None:
    with pytest.raises(InvalidInput):
        validation.validate_catalog_key(bad)


@pytest.mark.parametrize("bad", [0, 65536, -1, True, "22", 22.0])
def test_port_rejects(bad: object) -> None:
    with pytest.raises(InvalidInput):
        validation.validate_port(bad)


@pytest.mark.parametrize("bad", [0, 0.0, 1.01, -0.5, float("nan"), float("inf"), "0.5", True])
def test_fraction_rejects(bad: object) -> None:
    with pytest.raises(InvalidInput):
        validation.validate_fraction(bad)


def test_fraction_accepts() -> None:
    assert validation.validate_fraction(1) == 1.0
    assert validation.validate_fraction(0.85) == 0.85


def test_docker_commands_match_contract() -> None:
    assert commands.docker_action("restart", "parakeet-asr").render() == (
        "docker restart parakeet-asr"
    )
    assert commands.docker_ps().render() == "docker ps -a --format '{{json .}}'"
    assert commands.docker_inspect("vllm_node").render() == "docker inspect vllm_node"
    assert commands.probe().render() == "uname -srm"
    assert commands.nvidia_smi_query().render() == (
        "nvidia-smi --query-gpu=index,name,utilization.gpu,memory.used,memory.total,"
        "temperature.gpu,power.draw,enforced.power.limit --format=csv,noheader,nounits"
    )


def test_docker_action_rejects_unknown_action() -> None:
    with pytest.raises(InvalidInput) as err:
        commands.docker_action("kill", "vllm_node")  # type: ignore[arg-type]
    assert err.value.field == "action"


def test_docker_logs_options() -> None:
    moment = datetime(2026, 11, 21, 10, 0, 1, 250000, tzinfo=timezone(timedelta(hours=2)))
    command = commands.docker_logs("vllm_node", follow=True, since=moment, tail=50)
    assert command.render() == (
        "docker logs -f --since 2026-11-21T08:00:01.250000Z --tail 50 vllm_node"
    )
    assert commands.docker_logs("vllm_node", follow=False, since="10m", tail="all").render() == (
        "docker logs --since 10m --tail all vllm_node"
    )
    for bad_since in ("10m; reboot", "yesterday", "$(date)"):
        with pytest.raises(InvalidInput):
            commands.docker_logs("vllm_node", follow=False, since=bad_since)
    with pytest.raises(InvalidInput):
        commands.docker_logs("vllm_node", follow=False, since=datetime(2026, 1, 1))
    with pytest.raises(InvalidInput):
        commands.docker_logs("vllm_node", follow=False, tail=-1)


def test_repo_commands_keep_tilde_expandable() -> None:
    assert commands.stop_cluster("~/spark-vllm-docker").render() == (
        "cd ~/spark-vllm-docker && ./launch-cluster.sh stop"
    )
    assert commands.cluster_status("/opt/spark vllm".replace(" ", "-")).render() == (
        "cd /opt/spark-vllm && ./launch-cluster.sh status"
    )
    assert commands.update_check("~/spark-vllm-docker").render() == (
        "cd ~/spark-vllm-docker && git fetch --quiet && git rev-parse HEAD '@{u}' && "
        "git rev-list --count 'HEAD..@{u}' && "
        "git log --max-count=50 '--format=%h %s' 'HEAD..@{u}'"
    )
    assert commands.hf_download("org/m", dry_run=True).render() == "hf download org/m --dry-run"
    assert commands.hf_cache_remove("org/m").render() == "hf cache rm model/org/m --yes"
    assert commands.disk_space().render() == "df --output=size,avail -B1 ."
    assert commands.update_apply("~/repo").render() == (
        "cd ~/repo && git pull --ff-only && ./build-and-copy.sh -c"
    )


def test_launch_solo_and_cluster() -> None:
    catalog = Catalog(load_bundled_models())
    solo = commands.launch_model(
        catalog.get("qwen36"), port=8888, nodes=["spark-1", "spark-2"], repo_path="~/svd"
    )
    argv = shlex.split(solo.render())
    assert argv[:4] == ["cd", "~/svd", "&&", "./launch-cluster.sh"]
    assert "--solo" in argv
    assert "-n" not in argv
    serve = argv.index("serve")
    assert argv[serve + 1] == "RedHatAI/Qwen3.6-35B-A3B-NVFP4"
    assert argv[argv.index("-tp") + 1] == "1"
    assert argv[argv.index("--kv-cache-dtype") + 1] == "fp8"

    big = commands.launch_model(
        catalog.get("qwen3-235b-fp8"), port=8000, nodes=["spark-1", "10.0.0.2"], repo_path="~/svd"
    )
    argv = shlex.split(big.render())
    assert argv[argv.index("-n") + 1] == "spark-1,10.0.0.2"
    assert argv[argv.index("-tp") + 1] == "2"
    assert argv[argv.index("--port") + 1] == "8000"
    assert "--solo" not in argv

    with pytest.raises(InvalidInput) as err:
        commands.launch_model(
            catalog.get("qwen3-235b-fp8"), port=8888, nodes=["spark-1"], repo_path="~/svd"
        )
    assert err.value.field == "nodes"
    with pytest.raises(InvalidInput):
        commands.launch_model(
            catalog.get("qwen3-235b-fp8"),
            port=8888,
            nodes=["spark-1", "x;reboot"],
            repo_path="~/svd",
        )


def test_launch_flags_follow_overrides() -> None:
    from custom_components.spark_control.sparklib.catalog import ModelOptions

    catalog = Catalog(load_bundled_models())
    entry = catalog.set_options(
        "qwen36",
        ModelOptions(
            max_model_len=4096,
            gpu_memory_utilization=0.5,
            fastsafetensors=False,
            prefix_caching=False,
            fp8_kv_cache=False,
        ),
    )
    argv = shlex.split(
        commands.launch_model(entry, port=8888, nodes=["h"], repo_path="/srv/svd").render()
    )
    assert argv[argv.index("--max-model-len") + 1] == "4096"
    assert argv[argv.index("--gpu-memory-utilization") + 1] == "0.5"
    for flag in ("--enable-prefix-caching", "--kv-cache-dtype", "--load-format"):
        assert flag not in argv


def test_remote_command_quotes_hostile_arguments() -> None:
    # Even without validation, the renderer never lets an argument escape its quotes.
    hostile = ["echo", "x; rm -rf /", "`id`", "$(id)", "a\nb", "'q'"]
    rendered = commands.RemoteCommand.of(hostile).render()
    assert shlex.split(rendered) == hostile
