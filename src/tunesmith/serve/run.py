"""`tunesmith serve`: start llama.cpp's llama-server (parallel slots, continuous batching, grammar-constrained JSON)
on the run's GGUF with the training chat template and default system message, wait until it is healthy, and hand
back a handle that stops it and its children. `--engine vllm` runs `vllm serve` with the LoRA adapter as it is."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, TunesmithError
from ..export.gguf import gguf_name
from ..export.options import ExportOptions
from ..export.run import export_run, source_digest
from ..files import verify_directory
from ..layout import EXPORT_DIR, EXPORT_JSON, SERVE_DIR, SERVE_LOG, read_default_system, read_json
from ..runs import exported_artefact, read_run_config
from .gateway import Limits, start_gateway

LLAMA_SERVER = Path(sys.prefix) / "share" / "tunesmith" / "bin" / "llama-server"
API_KEY_ENV = "TUNESMITH_API_KEY"


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    parallel: int = 4  # llama-server slots: requests answered at once, batched together
    api_key: str | None = None  # required to bind anywhere but loopback (or TUNESMITH_API_KEY)
    engine: str = "llamacpp"  # llamacpp | vllm
    quant: str = "q8_0"  # the GGUF type served (exported once, cached in RUN/serve)
    context: int = 4096  # tokens per slot: prompt + answer
    max_tokens: int = 1024  # the most tokens one request may generate
    timeout: int = 600  # seconds a request may take
    threads: int | None = None
    ready_timeout: float = 180.0


@dataclass
class ServeHandle:
    url: str  # the OpenAI base URL, e.g. http://127.0.0.1:8000/v1
    model: str  # the model name clients send
    process: subprocess.Popen
    command: list[str]
    log: Path
    scratch: Path | None = None
    api_key: str | None = field(default=None, repr=False)
    gateway: object | None = None  # gateway.py's server in front of llama-server (its request limits)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the engine's process group (it and its children), then SIGKILL what is left."""
        if self.gateway is not None:
            self.gateway.shutdown()
            self.gateway.server_close()
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> ServeHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_run(run_dir: Path | str, options: ServeOptions | None = None, on_event=None) -> ServeHandle:
    run_dir, options = Path(run_dir), options or ServeOptions()
    api_key = options.api_key or os.environ.get(API_KEY_ENV)
    check_exposure(options.host, api_key)
    config = read_run_config(run_dir)
    if config.task == "classify":
        raise ConfigError(
            f"{run_dir}: serve answers chat; a classifier is exported as merged weights (tunesmith export)"
        )
    if options.engine == "vllm":
        command = vllm_command(run_dir, config, options, api_key)
        return start(command, run_dir, options, config.name, api_key, None)
    if options.engine != "llamacpp":
        raise ConfigError(f"--engine {options.engine}: expected llamacpp or vllm")
    check_llama_server()
    gguf = served_gguf(run_dir, options.quant, on_event)
    scratch = Path(tempfile.mkdtemp(prefix="tunesmith-serve-"))
    gateway = None
    try:
        template = scratch / "chat_template.jinja"
        template.write_text(serving_template(run_dir), encoding="utf-8")
        engine_port = free_port()
        command = llama_server_command(gguf, template, config.name, options, engine_port, api_key)
        limits = Limits(config.name, options.max_tokens, options.parallel * 4, options.timeout, api_key)
        gateway = start_gateway(options.host, options.port, ("127.0.0.1", engine_port), limits)
        return start(command, run_dir, options, config.name, api_key, scratch, gateway)
    except BaseException:
        if gateway is not None:
            gateway.shutdown()
            gateway.server_close()
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def check_exposure(host: str, api_key: str | None) -> None:
    """Loopback by default; anywhere else only behind an API key."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not api_key:
        raise ConfigError(f"--host {host}: serving beyond this machine needs --api-key (or {API_KEY_ENV})")


def check_llama_server() -> None:
    if not LLAMA_SERVER.is_file():
        raise ConfigError(f"serve needs llama.cpp's llama-server ({LLAMA_SERVER}): install it with `make llama-server`")


def served_gguf(run_dir: Path, quant: str, on_event) -> Path:
    """The run's exported GGUF of this type if `tunesmith export` made one from the run's current artefact, else one
    exported now into RUN/serve (a run retrained since its export is not served from the old file)."""
    current = source_digest(exported_artefact(run_dir))
    for directory in (run_dir / EXPORT_DIR, run_dir / SERVE_DIR):
        candidate = directory / gguf_name(quant)
        made = (read_json(directory / EXPORT_JSON) or {}).get("source") if candidate.is_file() else None
        if made == current and verify_directory(directory) is None:
            return candidate
    options = ExportOptions(("gguf",), (quant,), run_dir / SERVE_DIR, verify=False)
    export_run(run_dir, options, on_event=on_event)
    return run_dir / SERVE_DIR / gguf_name(quant)


def serving_template(run_dir: Path) -> str:
    """The training chat template, with the run's default system message put first when a request has none
    (what `generate` and `chat` do; without it the template's own default, e.g. SmolLM2's, would be used)."""
    from transformers import AutoTokenizer

    template = AutoTokenizer.from_pretrained(exported_artefact(run_dir)).chat_template
    if not template:
        raise ConfigError(f"{run_dir}: the base has no chat template; serve needs one to answer chat requests")
    system = read_default_system(run_dir)
    if not system:
        return template
    default = json.dumps(system)
    head = (
        "{%- if not messages or messages[0]['role'] != 'system' %}"
        f"{{%- set messages = [{{'role': 'system', 'content': {default}}}] + messages %}}"
        "{%- endif %}"
    )
    return head + template


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def llama_server_command(gguf: Path, template: Path, name: str, options: ServeOptions, port: int, api_key) -> list:
    """The engine on an internal loopback port; clients reach it through the gateway."""
    command = [
        str(LLAMA_SERVER), "-m", str(gguf), "--host", "127.0.0.1", "--port", str(port), "-a", name,
        "-np", str(options.parallel), "-c", str(options.context * options.parallel), "-n", str(options.max_tokens),
        "-to", str(options.timeout), "--jinja", "--chat-template-file", str(template), "--no-webui",
    ]  # fmt: skip
    if options.threads:
        command += ["-t", str(options.threads)]
    if api_key:
        command += ["--api-key", api_key]
    return command


def vllm_command(run_dir: Path, config, options: ServeOptions, api_key) -> list[str]:
    if shutil.which("vllm") is None:
        raise ConfigError("--engine vllm: vLLM is not installed; on a CUDA machine: pip install vllm")
    from ..base.load import hf_dir_for

    artefact = exported_artefact(run_dir)
    if artefact.name == "adapter":
        base = hf_dir_for(config.base, allow_pickle=config.allow_pickle)
        command = ["vllm", "serve", base, "--enable-lora", "--lora-modules", f"{config.name}={artefact}"]
    else:
        command = ["vllm", "serve", str(artefact), "--served-model-name", config.name]
    command += ["--host", options.host, "--port", str(options.port), "--max-model-len", str(options.context)]
    return command + (["--api-key", api_key] if api_key else [])


def start(command, run_dir: Path, options: ServeOptions, name: str, api_key, scratch, gateway=None) -> ServeHandle:
    log = run_dir / SERVE_LOG
    with log.open("w", encoding="utf-8") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    host = "127.0.0.1" if options.host in ("0.0.0.0", "::") else options.host
    handle = ServeHandle(f"http://{host}:{options.port}/v1", name, process, command, log, scratch, api_key, gateway)
    try:
        wait_until_healthy(handle, options.ready_timeout)
    except BaseException:
        handle.gateway, handle.scratch = None, None  # serve_run cleans those up
        handle.stop()
        raise
    return handle


def wait_until_healthy(handle: ServeHandle, timeout: float) -> None:
    health = handle.url.removesuffix("/v1") + "/health"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if handle.process.poll() is not None:
            tail = handle.log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
            raise TunesmithError(f"the engine stopped (exit {handle.process.returncode}): {' | '.join(tail)}")
        try:
            with urllib.request.urlopen(health, timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise TunesmithError(f"the engine did not become healthy within {timeout:.0f} s (see {handle.log})")
