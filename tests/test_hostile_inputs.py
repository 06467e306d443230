"""Issue 18: nothing a user types or points tunesmith at destroys data, hangs, or crashes with a traceback.

The contract every case checks, on the real CLI in a separate process:
  exit 0 ok; 1 an internal error (a bug: the only case with a traceback, saying 'please report'); 2 bad input or a
  refusal, with an `error:` line on stderr naming the file / line / field; 130 on SIGINT, 143 on SIGTERM; and the
  user's folders (every file's relative path, size and sha256) are exactly as they were, nothing half-written.

Speed: starting `python -m tunesmith` costs ~5 s of imports (torch, transformers) on a 2-core machine, which would
make this file take minutes. So by default `run_cli` asks a preloaded *fork server*: one Python process that has
imported tunesmith and its libraries once and, for every command, forks a child that runs `tunesmith/__main__.py`
exactly as `python -m tunesmith` would (argv, cwd, stdin/stdout/stderr, exit status, signals; a child killed by a
signal reports -signum, as subprocess does). `TUNESMITH_TEST_SUBPROCESS=1` runs every command as a plain
`[sys.executable, '-m', 'tunesmith', ...]` subprocess instead (slow, literal). Either way each child runs with an
address-space limit (CHILD_MEMORY_BYTES above what the imports take), so a case that would eat memory without bound
(/dev/zero, a YAML alias bomb) fails fast instead of taking the machine down, and each has a timeout.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import select
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.conftest import VARIED_CHATS, write_jsonl

# --------------------------------------------------------------------------------------------------------------------
# helpers: snapshot of the user's folders, and the CLI in a separate process
# --------------------------------------------------------------------------------------------------------------------

TIMEOUT = 30.0  # a command that should answer at once
HANG = 2.0  # a case that hangs on the current code: this long (plus the imports, in subprocess mode), then it is hung
CHILD_MEMORY_BYTES = 2 << 30  # address space a command may take beyond what the imports took
ENV = os.environ | {
    "HF_HUB_OFFLINE": "1",  # never wait on the network
    "TOKENIZERS_PARALLELISM": "false",  # no fork warning from the tokenizers library
    "COLUMNS": "400",  # rich wraps at 80 columns otherwise, splitting the names the assertions look for
    "PYTHONUNBUFFERED": "1",
}
ENV.pop("PYTHONHASHSEED", None)


def snapshot(root: Path, skip: tuple[str, ...] = ()) -> dict[str, tuple]:
    """Every entry under root (root included) by relative path: kind, and size + sha256 of a file, the target of a
    link, the type of a special file. Never opens a special file (a FIFO would block); `skip` names relative paths
    (and everything under them) that a command is allowed to write."""
    root = Path(root)
    if not root.exists() and not root.is_symlink():
        return {}
    entries: dict[str, tuple] = {}

    def record(path: Path) -> None:
        rel = path.relative_to(root).as_posix()
        if any(rel == s or rel.startswith(s + "/") for s in skip):
            return
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            entries[rel] = ("link", os.readlink(path))
        elif stat.S_ISDIR(info.st_mode):
            entries[rel] = ("dir",)
        elif stat.S_ISREG(info.st_mode):
            digest = hashlib.sha256()
            try:
                with path.open("rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
                entries[rel] = ("file", info.st_size, digest.hexdigest())
            except OSError as err:
                entries[rel] = ("file", info.st_size, f"unreadable: {err.strerror}")
        else:
            entries[rel] = ("special", stat.S_IFMT(info.st_mode))

    record(root)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in sorted(dirnames + filenames):
            record(Path(dirpath, name))
    return entries


def snapshot_diff(before: dict, after: dict) -> str:
    """What changed, in one line (for the assertion message)."""
    removed = sorted(set(before) - set(after))
    added = sorted(set(after) - set(before))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    parts = [
        f"{label}: {', '.join(items[:6])}{' ...' if len(items) > 6 else ''}"
        for label, items in (("removed", removed), ("added", added), ("changed", changed))
        if items
    ]
    return "; ".join(parts)


@dataclass
class Result:
    args: list[str]
    returncode: int | None  # -N: killed by signal N (as subprocess reports it)
    stdout: str
    stderr: str
    timed_out: bool = False
    timeout: float = 0.0
    seconds: float = 0.0

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def error_lines(self) -> list[str]:
        """`error: ...` lines (also click's `Error: ...` of a usage error, boxed or not)."""
        return [line for line in self.stderr.splitlines() if re.match(r"[\s│╭╰─]*error\b", line, re.IGNORECASE)]

    def last_line(self) -> str:
        lines = [line for line in self.output.splitlines() if line.strip()]
        return lines[-1].strip()[:160] if lines else "(no output)"


# The fork server: preloads what `python -m tunesmith` imports, then forks one child per command. Requests and
# replies are JSON lines on its stdin / stdout; the child's own stdio go to the files the request names.
FORK_SERVER = textwrap.dedent(
    r"""
    import atexit, importlib, io, json, os, resource, runpy, signal, sys, traceback
    for name in ("tunesmith.cli", "transformers", "torch", "peft", "accelerate", "tunesmith.config",
                 "tunesmith.base.load", "tunesmith.data.audit", "tunesmith.data.prepare", "tunesmith.data.splits",
                 "tunesmith.runs", "tunesmith.render", "tunesmith.render_data", "tunesmith.chat",
                 "tunesmith.training.loop", "tunesmith.evaluate.run", "tunesmith.compare", "tunesmith.tune.search"):
        try:
            importlib.import_module(name)
        except BaseException:
            pass  # a module that does not import fails in the child too, where the command reports it
    status = open("/proc/self/status").read().split("VmSize:")[1].split()[0]
    baseline = int(status) * 1024
    requests = os.fdopen(0, "rb", buffering=0)
    replies = os.fdopen(int(sys.argv[1]), "w", buffering=1)
    replies.write(json.dumps({"ready": os.getpid()}) + "\n")

    def child(request):
        os.setpgid(0, 0)
        stdin = os.open(request["stdin"] or os.devnull, os.O_RDONLY)
        os.dup2(stdin, 0)
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
        replies.close()  # only the server's own pipe: fds that libraries opened at import stay as they are
        sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8")
        sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8")
        sys.stderr = io.TextIOWrapper(
            io.BufferedWriter(io.FileIO(2, "w", closefd=False)), encoding="utf-8", errors="backslashreplace",
            line_buffering=True,
        )
        os.chdir(request["cwd"])
        os.environ.update(request["env"])
        sys.argv = [os.path.join(os.path.dirname(sys.modules["tunesmith"].__file__), "__main__.py"), *request["args"]]
        sys.path[0] = request["cwd"]
        limit = baseline + request["memory"]
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        code, interrupted = 0, False
        try:
            runpy.run_module("tunesmith", run_name="__main__", alter_sys=True)
        except SystemExit as done:
            code = done.code
            if code is None:
                code = 0
            elif not isinstance(code, int):
                print(code, file=sys.stderr)
                code = 1
        except KeyboardInterrupt:
            sys.excepthook(*sys.exc_info())
            interrupted = True
        except BaseException:
            sys.excepthook(*sys.exc_info())
            code = 1
        try:
            atexit._run_exitfuncs()
        except BaseException:
            pass
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        if interrupted:  # what the interpreter does with an uncaught KeyboardInterrupt
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        os._exit(code & 0xFF)

    buffer = b""
    while True:
        while b"\n" not in buffer:
            chunk = requests.read(65536)
            if not chunk:
                sys.exit(0)
            buffer += chunk
        line, buffer = buffer.split(b"\n", 1)
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            try:
                child(request)
            finally:
                os._exit(99)
        replies.write(json.dumps({"pid": pid}) + "\n")
        _, status = os.waitpid(pid, 0)
        replies.write(json.dumps({"status": os.waitstatus_to_exitcode(status)}) + "\n")
    """
)


class LineReader:
    """JSON lines from a pipe, with a timeout (select on the raw fd; no buffered reader hiding a ready line)."""

    def __init__(self, fd: int):
        self.fd, self.buffer = fd, b""

    def next(self, timeout: float | None) -> dict | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = None if deadline is None else max(deadline - time.monotonic(), 0)
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise RuntimeError("the fork server died")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)


class ForkServer:
    def __init__(self, log: Path):
        read_fd, write_fd = os.pipe()
        self.log = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-c", FORK_SERVER, str(write_fd)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            env=ENV,
            pass_fds=(write_fd,),
        )
        os.close(write_fd)
        self.replies, self.ready, self.log_path = LineReader(read_fd), False, log

    def start(self, args, cwd, stdin, stdout, stderr, env, memory) -> int:
        if not self.ready:  # it preloads while the fixtures build the tiny model
            if not self.replies.next(timeout=300):
                raise RuntimeError(f"the fork server did not start; see {self.log_path}")
            self.ready = True
        request = {
            "args": args,
            "cwd": str(cwd),
            "stdin": stdin and str(stdin),
            "stdout": str(stdout),
            "stderr": str(stderr),
            "env": env,
            "memory": memory,
        }
        self.process.stdin.write((json.dumps(request) + "\n").encode())
        self.process.stdin.flush()
        return self.replies.next(timeout=60)["pid"]

    def wait(self, timeout: float | None) -> int | None:
        reply = self.replies.next(timeout)
        return None if reply is None else reply["status"]

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)
        self.log.close()


SUBPROCESS = os.environ.get("TUNESMITH_TEST_SUBPROCESS") == "1"
_server: ForkServer | None = None


@pytest.fixture(scope="module", autouse=True)
def fork_server(tmp_path_factory):
    global _server
    if not SUBPROCESS:
        _server = ForkServer(tmp_path_factory.mktemp("fork-server") / "server.log")
    yield _server
    if _server is not None:
        _server.close()
        _server = None


class Running:
    """A started command: its pid (to signal it), its output so far, and its end."""

    def __init__(self, args, cwd: Path, stdin=None, env=None, memory=CHILD_MEMORY_BYTES):
        self.args = [str(a) for a in args]
        self.started, self.status = time.monotonic(), None
        out_dir = Path(os.environ.get("TMPDIR", "/tmp"))
        tag = f"{os.getpid()}-{time.monotonic_ns()}"
        self.stdout_path, self.stderr_path = out_dir / f"hostile-{tag}.out", out_dir / f"hostile-{tag}.err"
        env = {k: str(v) for k, v in (env or {}).items()}
        if SUBPROCESS:
            limit = memory + (3 << 29)  # the imports (torch: ~1 GiB of address space) happen inside the limit here

            def limit_memory():
                import resource

                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

            with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
                self.popen = subprocess.Popen(
                    [sys.executable, "-m", "tunesmith", *self.args],
                    cwd=cwd,
                    stdin=open(stdin, "rb") if stdin else subprocess.DEVNULL,  # noqa: SIM115
                    stdout=out,
                    stderr=err,
                    env=ENV | env,
                    start_new_session=True,
                    preexec_fn=limit_memory,
                )
            self.pid = self.popen.pid
        else:
            self.pid = _server.start(self.args, cwd, stdin, self.stdout_path, self.stderr_path, env, memory)

    def read(self, which: str = "stdout") -> str:
        path = self.stdout_path if which == "stdout" else self.stderr_path
        return path.read_bytes().decode("utf-8", "replace") if path.exists() else ""

    def signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def poll(self) -> int | None:
        """The exit status if the command has ended, else None (never blocks)."""
        if self.status is None:
            self.status = self.popen.poll() if SUBPROCESS else _server.wait(0)
        return self.status

    def wait(self, timeout: float) -> Result:
        status = self.status
        if status is None and SUBPROCESS:
            try:
                status = self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                status = None
        elif status is None:
            status = _server.wait(timeout)
        timed_out = status is None
        if timed_out:
            try:
                os.killpg(self.pid, signal.SIGKILL)  # the child and anything it started
            except ProcessLookupError:
                pass
            status = self.popen.wait() if SUBPROCESS else _server.wait(None)
        result = Result(
            self.args,
            status,
            self.read("stdout"),
            self.read("stderr"),
            timed_out,
            timeout,
            time.monotonic() - self.started,
        )
        self.stdout_path.unlink(missing_ok=True)
        self.stderr_path.unlink(missing_ok=True)
        return result


_import_seconds: float | None = None


def budget(seconds: float, imports: float = 1.5) -> float:
    """A wait measured from the start of the command: in subprocess mode the imports come first."""
    global _import_seconds
    if not SUBPROCESS:
        return seconds
    if _import_seconds is None:
        started = time.monotonic()
        probe = "import tunesmith.cli, transformers, tunesmith.data.audit, tunesmith.runs, tunesmith.training.loop"
        subprocess.run([sys.executable, "-c", probe], env=ENV, check=True, timeout=300)
        _import_seconds = time.monotonic() - started
    return seconds + imports * _import_seconds


def run_cli(
    *args, cwd: Path, timeout: float = TIMEOUT, stdin: Path | None = None, env=None, memory: int = CHILD_MEMORY_BYTES
) -> Result:
    """`python -m tunesmith ARGS` in cwd (see the module docstring), waited for at most `timeout` seconds."""
    return Running(args, cwd, stdin=stdin, env=env, memory=memory).wait(budget(timeout))


def interrupt(*args, cwd: Path, signum: int, after: float = 1.0, ready=None, stdin: Path | None = None) -> Result:
    """Start a command, send it `signum` once `ready(running)` holds (or `after` seconds), wait for its end."""
    running = Running(args, cwd, stdin=stdin)
    deadline = time.monotonic() + (budget(after, imports=1.0) if ready is None else budget(60.0))
    while time.monotonic() < deadline and running.poll() is None:
        if ready is not None and ready(running):
            break
        time.sleep(0.05)
    else:
        if running.poll() is not None:
            ended = running.wait(0)
            pytest.fail(f"the command ended (exit {ended.returncode}) before the signal: {ended.last_line()}")
        if ready is not None:
            running.signal(signal.SIGKILL)
            pytest.fail(f"never ready for the signal: {running.wait(budget(TIMEOUT)).last_line()}")
    running.signal(signum)
    return running.wait(budget(TIMEOUT))


def assert_contract(
    result: Result,
    code: int,
    *names: str | tuple[str, ...],
    before: dict | None = None,
    after: dict | None = None,
    hung: str = "hung",
):
    """The issue's contract: no hang, no traceback, the exit code, an `error:` line on stderr (exit 2), the names
    (file, line, field; a tuple: any one of them) in the output (`data check` lists its file:line problems in its
    report on stdout), and the user's files as they were. Every broken part is reported, in one line."""
    problems = []
    if result.timed_out:
        problems.append(f"{hung}: still running after {result.timeout:.0f} s (killed)")
    else:
        if "Traceback" in result.output:
            problems.append(f"traceback (exit {result.returncode}): {result.last_line()}")
        elif result.returncode != code:
            problems.append(f"exit {result.returncode}, expected {code}: {result.last_line()}")
        if code == 2 and not result.error_lines and "Traceback" not in result.output:
            problems.append("no 'error:' line on stderr")
        flat = " ".join(result.output.split())
        missing = [name for name in names if not any(n in flat for n in ((name,) if isinstance(name, str) else name))]
        if missing and result.returncode == code:
            shown = result.error_lines[0][:160] if result.error_lines else result.last_line()
            problems.append(f"the output does not name {', '.join(map(repr, missing))}: {shown}")
    if before is not None and after != before:
        problems.append(f"the user's files changed: {snapshot_diff(before, after)}")
    assert not problems, " | ".join(problems)


# --------------------------------------------------------------------------------------------------------------------
# fixtures: data, configs, a tiny finished LoRA run
# --------------------------------------------------------------------------------------------------------------------

MISSING_BASE = "./no-such-base"  # for cases about what must be checked before the base is: fails at once today


def write_config(path: Path, base, train="train.jsonl", eval=None, output_dir="runs", name="hostile", extra=""):
    data = f"train: {train}" + (f", eval: {eval}" if eval else "")
    path.write_text(
        f"name: {name}\nbase: {base}\noutput_dir: {output_dir}\n"
        "lora: {r: 2, target_modules: [q_proj]}\n"
        f"data: {{{data}, max_length: 64}}\n"
        "train: {max_steps: 1, batch_size: 4, precision: fp32, warmup_steps: 0}\n" + extra,
        encoding="utf-8",
    )
    return path


@pytest.fixture
def project(tmp_path):
    """A user's project folder: train.jsonl and a run.yaml next to it (base: a path that does not exist)."""
    write_jsonl(tmp_path / "train.jsonl", VARIED_CHATS)
    write_config(tmp_path / "run.yaml", MISSING_BASE)
    return tmp_path


EVAL_FAST = ["--limit", "1", "--mmlu", "1", "--passages", "1", "--few-shot", "1"]


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, tiny_model_dir, fork_server) -> Path:
    """A finished 1-step LoRA run of the tiny random Llama (no data.test), trained once by `tunesmith train`."""
    root = tmp_path_factory.mktemp("hostile-run")
    write_jsonl(root / "train.jsonl", VARIED_CHATS[:4])  # few rows: eval's memorisation probe answers each
    write_config(
        root / "run.yaml",
        tiny_model_dir,
        eval="train.jsonl",
        output_dir=root / "runs",
        extra="eval: {max_new_tokens: 2, limit: 1, batch_size: 2}\n",
    )
    trained = run_cli("train", "run.yaml", cwd=root, timeout=180)
    assert trained.returncode == 0, trained.output[-2000:]
    return root / "runs" / "hostile"


def copy_run(lora_run: Path, tmp_path: Path) -> Path:
    """The finished run without its checkpoints (generate and eval read adapter/ and the top-level files)."""
    target = tmp_path / "run"
    shutil.copytree(lora_run, target, ignore=shutil.ignore_patterns("checkpoints"))
    return target


def reseal(directory: Path, name: str) -> None:
    """Update MANIFEST.json for a file we changed on purpose (a consistent but bad artefact)."""
    manifest_path = directory / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text())
    data = (directory / name).read_bytes()
    files = manifest["files"] if "files" in manifest else manifest  # {"made_by", "files"}, or the older flat form
    files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True))


def alias_bomb(depth: int = 9) -> str:
    """A flow list whose anchors nest `depth` levels, each nine aliases of the one before: 9**depth strings."""
    parts, previous = ["&a [" + ",".join(['"lol"'] * 9) + "]"], "a"
    for name in "bcdefghijk"[: depth - 1]:
        parts.append(f"&{name} [" + ",".join([f"*{previous}"] * 9) + "]")
        previous = name
    return "[" + ", ".join(parts) + "]"


def big_chat_file(path: Path, rows: int = 40000 if SUBPROCESS else 10000) -> Path:
    """Distinct chat rows: `data check` / `data prepare` on them runs for seconds (time to send a signal)."""
    import random

    rng = random.Random(0)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma".split()
    with path.open("w", encoding="utf-8") as handle:
        for i in range(rows):
            user, answer = " ".join(rng.choices(words, k=12)) + f" {i}", " ".join(rng.choices(words, k=8))
            handle.write(
                json.dumps({"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]})
                + "\n"
            )
    return path


def tamper_byte(path: Path, at: int = -5) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


# --------------------------------------------------------------------------------------------------------------------
# paths: what --out, --output-dir, --name and data paths may name
# --------------------------------------------------------------------------------------------------------------------


class TestPaths:
    def test_prepare_out_naming_the_folder_that_holds_the_input_is_refused(self, tmp_path):
        (tmp_path / "mydata").mkdir()
        write_jsonl(tmp_path / "mydata" / "raw.jsonl", VARIED_CHATS)
        (tmp_path / "mydata" / "notes.txt").write_text("mine\n")
        before = snapshot(tmp_path)
        result = run_cli("data", "prepare", "mydata/raw.jsonl", "--out", "mydata", cwd=tmp_path)
        assert_contract(result, 2, "mydata", before=before, after=snapshot(tmp_path))

    def test_prepare_out_naming_a_folder_of_other_files_is_refused(self, tmp_path):
        write_jsonl(tmp_path / "raw.jsonl", VARIED_CHATS)
        (tmp_path / "photos").mkdir()
        (tmp_path / "photos" / "holiday.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
        before = snapshot(tmp_path)
        result = run_cli("data", "prepare", "raw.jsonl", "--out", "photos", cwd=tmp_path)
        assert_contract(result, 2, "photos", before=before, after=snapshot(tmp_path))

    def test_prepare_out_naming_an_existing_file_is_refused(self, tmp_path):
        write_jsonl(tmp_path / "raw.jsonl", VARIED_CHATS)
        (tmp_path / "notes.txt").write_text("mine\n")
        before = snapshot(tmp_path)
        result = run_cli("data", "prepare", "raw.jsonl", "--out", "notes.txt", cwd=tmp_path)
        assert_contract(result, 2, "notes.txt", before=before, after=snapshot(tmp_path))

    def test_prepare_out_dot_is_a_one_line_refusal(self, tmp_path):
        write_jsonl(tmp_path / "raw.jsonl", VARIED_CHATS)
        before = snapshot(tmp_path)
        result = run_cli("data", "prepare", "raw.jsonl", "--out", ".", cwd=tmp_path)
        assert_contract(result, 2, before=before, after=snapshot(tmp_path))

    def test_check_never_writes_its_report_over_an_input(self, tmp_path):
        (tmp_path / "data_report.json").write_text(json.dumps(VARIED_CHATS))  # the user's data, by that name
        before = snapshot(tmp_path)
        result = run_cli("data", "check", "data_report.json", cwd=tmp_path)  # --out defaults to .
        assert_contract(result, 2, "data_report.json", before=before, after=snapshot(tmp_path))

    def test_check_out_naming_a_file_is_a_one_line_error(self, tmp_path):
        write_jsonl(tmp_path / "train.jsonl", VARIED_CHATS)
        before = snapshot(tmp_path)
        result = run_cli("data", "check", "train.jsonl", "--out", "train.jsonl", cwd=tmp_path)
        assert_contract(result, 2, "train.jsonl", before=before, after=snapshot(tmp_path))

    def test_check_out_with_a_name_too_long_for_the_file_system(self, tmp_path):
        write_jsonl(tmp_path / "train.jsonl", VARIED_CHATS)
        before = snapshot(tmp_path)
        result = run_cli("data", "check", "train.jsonl", "--out", "x" * 300, cwd=tmp_path)
        assert_contract(result, 2, "x" * 40, before=before, after=snapshot(tmp_path))

    def test_run_named_dotdot_with_fresh_touches_nothing_outside_output_dir(self, project):
        (project / "checkpoints" / "step-1").mkdir(parents=True)  # the user's own folder of that name
        (project / "checkpoints" / "step-1" / "weights.bin").write_bytes(b"precious")
        (project / "metrics.jsonl").write_text('{"step": 1}\n')
        before = snapshot(project)
        result = run_cli("train", "run.yaml", "--name", "..", "--fresh", cwd=project)  # output_dir: runs
        assert_contract(result, 2, "name", before=before, after=snapshot(project))

    def test_run_named_dot_in_the_project_does_not_overwrite_its_run_yaml(self, project):
        before = snapshot(project)
        result = run_cli("train", "run.yaml", "--output-dir", ".", "--name", ".", cwd=project)
        assert_contract(result, 2, "name", before=before, after=snapshot(project))

    def test_output_dir_that_is_a_file_is_a_one_line_error(self, tmp_path, tiny_model_dir):
        write_jsonl(tmp_path / "train.jsonl", VARIED_CHATS)
        write_config(tmp_path / "run.yaml", tiny_model_dir)
        (tmp_path / "afile").write_text("mine\n")
        before = snapshot(tmp_path)
        result = run_cli("train", "run.yaml", "--output-dir", "afile", cwd=tmp_path)
        assert_contract(result, 2, "afile", before=before, after=snapshot(tmp_path))

    def test_a_missing_base_is_reported_before_anything_is_written(self, project):
        before = snapshot(project)
        result = run_cli("train", "run.yaml", cwd=project)
        assert_contract(result, 2, "no-such-base", before=before, after=snapshot(project))

    def test_an_invalid_record_is_reported_before_anything_is_written(self, tmp_path, tiny_model_dir):
        bad = {"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "hello"}]}
        write_jsonl(tmp_path / "train.jsonl", [VARIED_CHATS[0], bad])
        write_config(tmp_path / "run.yaml", tiny_model_dir)
        before = snapshot(tmp_path)
        result = run_cli("train", "run.yaml", cwd=tmp_path)
        assert_contract(result, 2, "train.jsonl:2", before=before, after=snapshot(tmp_path))

    def test_a_data_path_missing_next_to_the_config_is_not_read_from_the_cwd(self, tmp_path, tiny_model_dir):
        write_jsonl(tmp_path / "train.jsonl", VARIED_CHATS)  # in the cwd, not next to the config
        (tmp_path / "cfg").mkdir()
        write_config(tmp_path / "cfg" / "run.yaml", tiny_model_dir, output_dir=tmp_path / "runs")
        before = snapshot(tmp_path)
        result = run_cli("train", "cfg/run.yaml", cwd=tmp_path)
        assert_contract(result, 2, "cfg/train.jsonl", before=before, after=snapshot(tmp_path))


# --------------------------------------------------------------------------------------------------------------------
# special files where a regular file is expected: never block, never read without bound
# --------------------------------------------------------------------------------------------------------------------


def make_special(tmp_path: Path, kind: str, name: str) -> str:
    """A path of the given kind, as the user would type it (relative to tmp_path, or absolute for devices)."""
    path = tmp_path / name
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "dangling-symlink":
        path.symlink_to(tmp_path / "gone" / name)
    elif kind == "symlink-loop":
        path.symlink_to(path)
    elif kind == "symlink-to-dev-zero":
        path.symlink_to("/dev/zero")
    elif kind in ("/dev/zero", "/dev/null"):
        return kind
    elif kind == "unreadable":
        write_jsonl(path, VARIED_CHATS)
        path.chmod(0)
    return name


SPECIAL = [
    "fifo",
    "/dev/zero",
    "directory",
    "dangling-symlink",
    "symlink-loop",
    "/dev/null",
    pytest.param("unreadable", marks=pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")),
]


class TestSpecialFiles:
    @pytest.mark.parametrize("kind", SPECIAL)
    def test_data_check_on_a_special_file(self, tmp_path, kind):
        name = make_special(tmp_path, kind, "train.jsonl")
        before = snapshot(tmp_path)
        result = run_cli("data", "check", name, "--out", "rep", cwd=tmp_path, timeout=HANG, memory=512 << 20)
        assert_contract(result, 2, Path(name).name, before=before, after=snapshot(tmp_path, skip=("rep",)))

    @pytest.mark.parametrize("kind", ["/dev/zero", "directory"])  # a pipe stays allowed: train <(make-config)
    def test_train_config_that_is_a_special_file(self, tmp_path, kind):
        name = make_special(tmp_path, kind, "run.yaml")
        before = snapshot(tmp_path)
        result = run_cli("train", name, cwd=tmp_path, timeout=HANG, memory=512 << 20)
        assert_contract(result, 2, Path(name).name, before=before, after=snapshot(tmp_path))

    def test_train_data_that_is_a_fifo(self, tmp_path, tiny_model_dir):
        make_special(tmp_path, "fifo", "train.jsonl")
        write_config(tmp_path / "run.yaml", tiny_model_dir)
        before = snapshot(tmp_path)
        result = run_cli("train", "run.yaml", cwd=tmp_path, timeout=HANG + 1)
        assert_contract(result, 2, "train.jsonl", before=before, after=snapshot(tmp_path))

    def test_eval_data_that_is_a_fifo(self, tmp_path, lora_run):
        run = copy_run(lora_run, tmp_path)
        make_special(tmp_path, "fifo", "held_out.jsonl")
        before = snapshot(tmp_path)
        result = run_cli("eval", run, "--data", "held_out.jsonl", *EVAL_FAST, cwd=tmp_path, timeout=HANG)
        assert_contract(result, 2, "held_out.jsonl", before=before, after=snapshot(tmp_path))


# --------------------------------------------------------------------------------------------------------------------
# sizes: huge lines, deep nesting, absurd numbers
# --------------------------------------------------------------------------------------------------------------------


class TestSizes:
    def test_a_line_over_the_line_limit_is_a_problem_of_that_line(self, tmp_path):
        (tmp_path / "huge.jsonl").write_bytes(b'{"text": "' + b"a" * (17 << 20) + b'"}\n')
        before = snapshot(tmp_path)
        result = run_cli("data", "check", "huge.jsonl", "--out", "rep", cwd=tmp_path)
        assert_contract(result, 2, "huge.jsonl:1", before=before, after=snapshot(tmp_path, skip=("rep",)))

    @pytest.mark.parametrize(
        "line",
        [
            pytest.param('{"messages": ' + "[" * 100_000 + "}", id="nested-100k-deep"),
            pytest.param('{"messages": [], "n": ' + "7" * 5000 + "}", id="5000-digit-integer"),
        ],
    )
    def test_train_on_a_pathological_json_line(self, tmp_path, tiny_model_dir, line):
        (tmp_path / "train.jsonl").write_text(json.dumps(VARIED_CHATS[0]) + "\n" + line + "\n")
        write_config(tmp_path / "run.yaml", tiny_model_dir)
        before = snapshot(tmp_path)
        result = run_cli("train", "run.yaml", cwd=tmp_path)
        assert_contract(result, 2, "train.jsonl:2", before=before, after=snapshot(tmp_path))

    @pytest.mark.parametrize(
        "setting, field",
        [("lora.r=100000000000", "lora.r"), ("train.epochs=.inf", "train.epochs")],
        ids=["lora-rank-1e11", "epochs-inf"],
    )
    def test_absurd_training_sizes_are_refused(self, tmp_path, tiny_model_dir, setting, field):
        write_jsonl(tmp_path / "train.jsonl", VARIED_CHATS)
        write_config(tmp_path / "run.yaml", tiny_model_dir)
        before = snapshot(tmp_path)
        result = run_cli("train", "run.yaml", "--set", setting, "--set", "train.max_steps=null", cwd=tmp_path)
        assert_contract(result, 2, field, before=before, after=snapshot(tmp_path))

    def test_a_generation_budget_of_zero_is_refused(self, tmp_path, lora_run):
        run = copy_run(lora_run, tmp_path)
        before = snapshot(tmp_path)
        result = run_cli("generate", run, "-p", "hi", "--max-new-tokens", "0", cwd=tmp_path)
        assert_contract(result, 2, "--max-new-tokens", before=before, after=snapshot(tmp_path))

    @pytest.mark.parametrize(
        "option, value",
        [("--near-threshold", "5"), ("--near-threshold", "nan"), ("--max-length", "-5"), ("--slice-threshold", "nan")],
    )
    def test_data_check_numbers_out_of_range(self, tmp_path, option, value):
        write_jsonl(tmp_path / "train.jsonl", VARIED_CHATS)
        before = snapshot(tmp_path)
        result = run_cli("data", "check", "train.jsonl", option, value, "--out", "rep", cwd=tmp_path)
        assert_contract(result, 2, option, before=before, after=snapshot(tmp_path, skip=("rep",)))

    @pytest.mark.parametrize("fraction", ["1.5", "-0.1"])
    def test_prepare_eval_fraction_out_of_range(self, tmp_path, fraction):
        write_jsonl(tmp_path / "raw.jsonl", VARIED_CHATS)
        before = snapshot(tmp_path)
        result = run_cli("data", "prepare", "raw.jsonl", "--out", "ready", "--eval-fraction", fraction, cwd=tmp_path)
        assert_contract(result, 2, "--eval-fraction", before=before, after=snapshot(tmp_path))


# --------------------------------------------------------------------------------------------------------------------
# encodings: UTF-16, invalid UTF-8, NUL bytes
# --------------------------------------------------------------------------------------------------------------------

CONFIG_BYTES = {
    "invalid-utf8": lambda text: text.encode().replace(b"name: hostile", b"name: hostile # caf\xe9"),
    "utf16": lambda text: text.encode("utf-16"),
    "nul-byte": lambda text: text.encode().replace(b"name: hostile", b"name: host\x00ile"),
}


class TestEncodings:
    @pytest.mark.parametrize("encoding", list(CONFIG_BYTES))
    def test_run_yaml_bytes(self, project, encoding):
        (project / "run.yaml").write_bytes(CONFIG_BYTES[encoding]((project / "run.yaml").read_text()))
        before = snapshot(project)
        result = run_cli("train", "run.yaml", cwd=project)
        assert_contract(result, 2, "run.yaml", before=before, after=snapshot(project))

    @pytest.mark.parametrize("command", ["check", "train"])
    def test_utf16_data_names_the_file_and_line(self, tmp_path, tiny_model_dir, command):
        text = "".join(json.dumps(r) + "\n" for r in VARIED_CHATS)
        (tmp_path / "train.jsonl").write_bytes(text.encode("utf-16"))
        write_config(tmp_path / "run.yaml", tiny_model_dir)
        before = snapshot(tmp_path)
        args = ["data", "check", "train.jsonl", "--out", "rep"] if command == "check" else ["train", "run.yaml"]
        result = run_cli(*args, cwd=tmp_path)
        assert_contract(result, 2, "train.jsonl:1", before=before, after=snapshot(tmp_path, skip=("rep",)))

    def test_invalid_utf8_in_a_json_array(self, tmp_path):
        (tmp_path / "train.json").write_bytes(json.dumps(VARIED_CHATS).encode().replace(b"Blue.", b"Bl\xffue."))
        before = snapshot(tmp_path)
        result = run_cli("data", "check", "train.json", "--out", "rep", cwd=tmp_path)
        assert_contract(result, 2, "train.json:1", before=before, after=snapshot(tmp_path, skip=("rep",)))

    def test_chat_input_that_is_not_utf8(self, tmp_path, lora_run):
        run = copy_run(lora_run, tmp_path)
        (tmp_path / "typed.txt").write_bytes(b"hi \xff\xfe there\n")
        before = snapshot(tmp_path)
        result = run_cli("chat", run, "--max-new-tokens", "2", cwd=tmp_path, stdin=tmp_path / "typed.txt")
        assert_contract(result, 2, ("UTF-8", "utf-8", "stdin"), before=before, after=snapshot(tmp_path))

    def test_a_nul_byte_in_a_csv_row_is_a_problem_of_that_row(self, tmp_path):
        (tmp_path / "rows.csv").write_bytes(b"text,label\ngood day,pos\nbad\x00day,neg\nfine,pos\nawful,neg\n")
        before = snapshot(tmp_path)
        result = run_cli("data", "check", "rows.csv", "--out", "rep", cwd=tmp_path)
        assert_contract(result, 2, "rows.csv:3", before=before, after=snapshot(tmp_path, skip=("rep",)))


# --------------------------------------------------------------------------------------------------------------------
# YAML: alias bombs, duplicate keys, non-finite numbers, tags
# --------------------------------------------------------------------------------------------------------------------


class TestYaml:
    @pytest.mark.parametrize(
        "command, section, field",
        [
            ("train", "tune:\n  fixed:\n    train.seed: {bomb}\n", "tune.fixed"),
            ("compare", "compare:\n  overrides:\n    lora:\n      train.seed: {bomb}\n", "compare.overrides"),
        ],
        ids=["tune.fixed", "compare.overrides"],
    )
    def test_an_alias_bomb_in_a_free_form_section(self, project, command, section, field):
        """Refused with the file and line (aliases refused), or with the field (expansion bounded)."""
        config = project / "run.yaml"
        config.write_text(config.read_text() + section.format(bomb=alias_bomb(9)))
        assert config.stat().st_size < 1024  # a few hundred bytes that expand to 9**9 strings
        before = snapshot(project)
        result = run_cli(command, "run.yaml", cwd=project, timeout=HANG, memory=512 << 20)
        assert_contract(result, 2, ("run.yaml:", field), before=before, after=snapshot(project))

    def test_a_duplicate_key_is_an_error_not_a_silent_override(self, project):
        config = project / "run.yaml"
        config.write_text(config.read_text() + "train: {learning_rate: 0.5}\n")  # a second train: section
        before = snapshot(project)
        result = run_cli("train", "run.yaml", cwd=project)
        assert_contract(result, 2, "run.yaml:7", "train", before=before, after=snapshot(project))

    @pytest.mark.parametrize("value", [".inf", ".nan"])
    def test_a_non_finite_learning_rate_in_yaml(self, project, value):
        config = project / "run.yaml"
        config.write_text(config.read_text().replace("max_steps: 1,", f"max_steps: 1, learning_rate: {value},"))
        before = snapshot(project)
        result = run_cli("train", "run.yaml", cwd=project)
        assert_contract(result, 2, "train.learning_rate", "finite", before=before, after=snapshot(project))

    @pytest.mark.parametrize(
        "tail", ["---\nname: second\n", "x: !!python/object/apply:os.system ['touch PWNED']\n"], ids=["two-docs", "tag"]
    )
    def test_yaml_the_safe_loader_refuses(self, project, tail):
        config = project / "run.yaml"
        config.write_text(config.read_text() + tail)
        before = snapshot(project)
        result = run_cli("train", "run.yaml", cwd=project)
        assert_contract(result, 2, "run.yaml:7", before=before, after=snapshot(project))


# --------------------------------------------------------------------------------------------------------------------
# settings typed on the command line
# --------------------------------------------------------------------------------------------------------------------


class TestSettings:
    @pytest.mark.parametrize(
        "args, field",
        [
            (["--lr", "inf"], "train.learning_rate"),
            (["--set", "train.learning_rate=[1e-4"], "train.learning_rate"),
            (["--set", "train.seed=!!python/name:os.system"], "train.seed"),
        ],
        ids=["lr-inf", "unclosed-list", "python-tag"],
    )
    def test_a_bad_value_on_the_command_line_names_the_setting(self, project, args, field):
        before = snapshot(project)
        result = run_cli("train", "run.yaml", *args, cwd=project)
        assert_contract(result, 2, field, before=before, after=snapshot(project))

    def test_a_password_in_a_storage_url_is_never_written(self, tmp_path, tiny_model_dir):
        write_jsonl(tmp_path / "train.jsonl", VARIED_CHATS)
        write_config(tmp_path / "run.yaml", tiny_model_dir)
        before = snapshot(tmp_path, skip=("runs",))
        result = run_cli("train", "run.yaml", "--set", "tune.storage=postgresql://u:s3cr3tpw@h/db", cwd=tmp_path)
        assert_contract(result, 0, before=before, after=snapshot(tmp_path, skip=("runs",)))
        assert "s3cr3tpw" not in result.output
        leaked = [p.name for p in (tmp_path / "runs").rglob("*") if p.is_file() and b"s3cr3tpw" in p.read_bytes()]
        assert not leaked, f"the password is written in clear into {leaked}"

    def test_compare_checks_every_strategy_before_training_any(self, project):
        before = snapshot(project)
        result = run_cli("compare", "run.yaml", "--strategies", "full,bogus", cwd=project, timeout=HANG)
        assert_contract(
            result,
            2,
            "bogus",
            before=before,
            after=snapshot(project),
            hung="still busy with 'full' instead of refusing 'bogus' at once",
        )

    def test_tune_lr_range_upside_down(self, tmp_path, tiny_model_dir):
        write_jsonl(tmp_path / "train.jsonl", VARIED_CHATS)
        write_config(tmp_path / "run.yaml", tiny_model_dir)
        before = snapshot(tmp_path)
        args = ["--min-lr", "1", "--max-lr", "0.001", "--steps", "5"]
        result = run_cli("tune", "lr", "run.yaml", *args, cwd=tmp_path, timeout=HANG)
        assert_contract(
            result,
            2,
            ("min_lr", "min-lr"),
            before=before,
            after=snapshot(tmp_path),
            hung="still running a range test from 1 down to 0.001 instead of refusing it",
        )


# --------------------------------------------------------------------------------------------------------------------
# artefacts of a run: verified on load
# --------------------------------------------------------------------------------------------------------------------


def nan_adapter(run: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    path = run / "adapter" / "adapter_model.safetensors"
    tensors = load_file(path)
    save_file({k: torch.full_like(v, float("nan")) for k, v in tensors.items()}, path, metadata={"format": "pt"})
    reseal(run / "adapter", "adapter_model.safetensors")


def corrupt_and_reseal(relpath: str, text: str):
    def corrupt(run: Path) -> None:
        (run / relpath).write_text(text)
        if relpath.startswith("adapter/"):
            reseal(run / "adapter", relpath.split("/", 1)[1])

    return corrupt


ARTEFACT_DAMAGE = {
    "adapter-bytes-changed": (
        lambda run: tamper_byte(run / "adapter" / "adapter_model.safetensors"),
        "adapter_model.safetensors",
    ),
    "adapter-all-nan": (nan_adapter, "adapter_model.safetensors"),
    "adapter-weights-missing": (
        lambda run: (run / "adapter" / "adapter_model.safetensors").unlink(),
        "adapter_model.safetensors",
    ),
    "adapter-weights-truncated": (
        lambda run: (run / "adapter" / "adapter_model.safetensors").write_bytes(
            (run / "adapter" / "adapter_model.safetensors").read_bytes()[:1000]
        ),
        "adapter_model.safetensors",
    ),
    "manifest-missing": (lambda run: (run / "adapter" / "MANIFEST.json").unlink(), "MANIFEST.json"),
    "adapter-config-not-json": (corrupt_and_reseal("adapter/adapter_config.json", "{not json"), "adapter_config.json"),
    "run-yaml-not-yaml": (corrupt_and_reseal("run.yaml", "name: [unclosed\n"), "run.yaml"),
    "prompting-json-not-json": (corrupt_and_reseal("prompting.json", "{"), "prompting.json"),
}


class TestArtefacts:
    @pytest.mark.parametrize("damage", list(ARTEFACT_DAMAGE))
    def test_generate_refuses_a_damaged_run(self, tmp_path, lora_run, damage):
        run = copy_run(lora_run, tmp_path)
        hurt, name = ARTEFACT_DAMAGE[damage]
        hurt(run)
        before = snapshot(tmp_path)
        result = run_cli("generate", run, "-p", "Name a colour.", "--max-new-tokens", "2", cwd=tmp_path)
        assert_contract(result, 2, name, before=before, after=snapshot(tmp_path))

    def test_eval_refuses_an_adapter_that_does_not_match_its_manifest(self, tmp_path, lora_run):
        run = copy_run(lora_run, tmp_path)
        tamper_byte(run / "adapter" / "adapter_model.safetensors")
        before = snapshot(tmp_path)
        result = run_cli("eval", run, "--data", lora_run.parent.parent / "train.jsonl", *EVAL_FAST, cwd=tmp_path)
        assert_contract(result, 2, "adapter_model.safetensors", before=before, after=snapshot(tmp_path))

    def test_eval_without_a_test_split_says_it_scores_the_split_that_chose_the_checkpoint(self, tmp_path, lora_run):
        run = copy_run(lora_run, tmp_path)
        before = snapshot(tmp_path, skip=(run.name,))
        result = run_cli("eval", run, *EVAL_FAST, cwd=tmp_path, timeout=120)
        assert_contract(result, 0, before=before, after=snapshot(tmp_path, skip=(run.name,)))
        assert "data.eval" in result.stderr and "selected the checkpoint" in result.stderr, result.stderr[-800:]

    def test_a_run_whose_base_is_gone_is_a_one_line_error(self, tmp_path, lora_run):
        run = copy_run(lora_run, tmp_path)
        text = (run / "run.yaml").read_text()
        base = next(line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("base: "))
        (run / "run.yaml").write_text(text.replace(f"base: {base}", f"base: {tmp_path / 'gone'}"))
        before = snapshot(tmp_path)
        result = run_cli("generate", run, "-p", "hi", "--max-new-tokens", "2", cwd=tmp_path)
        assert_contract(result, 2, "gone", before=before, after=snapshot(tmp_path))


# --------------------------------------------------------------------------------------------------------------------
# data check, train and eval agree on what is valid
# --------------------------------------------------------------------------------------------------------------------


def chats_file(path: Path) -> Path:
    if path.suffix == ".json":
        path.write_text(json.dumps(VARIED_CHATS, indent=1))
    else:
        import csv

        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["prompt", "completion"])
            writer.writerows([c["messages"][0]["content"], c["messages"][1]["content"]] for c in VARIED_CHATS)
    return path


def system_turns(kind: str) -> list[dict]:
    s, u, a = ({"role": r, "content": c} for r, c in (("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello.")))
    later = {"role": "system", "content": "Now be formal."}
    if kind == "second-system":
        return [s, u, a, later, {"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Goodbye."}]
    return [s, a, later, {"role": "assistant", "content": "Good day."}]  # system + assistant turns only


class TestConsistency:
    @pytest.mark.parametrize("suffix", [".json", ".csv"])
    def test_data_check_and_train_agree_on_a_file_of_chats(self, tmp_path, tiny_model_dir, suffix):
        chats_file(tmp_path / f"chats{suffix}")
        write_config(tmp_path / "run.yaml", tiny_model_dir, train=f"chats{suffix}")
        before = snapshot(tmp_path, skip=("rep", "runs"))
        checked = run_cli("data", "check", f"chats{suffix}", "--out", "rep", cwd=tmp_path)
        trained = run_cli("train", "run.yaml", cwd=tmp_path)
        for result in (checked, trained):
            assert "Traceback" not in result.output, result.last_line()
        assert trained.returncode == checked.returncode, (
            f"data check exit {checked.returncode}, train exit {trained.returncode}: {trained.last_line()}"
        )
        assert snapshot(tmp_path, skip=("rep", "runs")) == before

    @pytest.mark.parametrize("kind", ["second-system", "system-and-assistant-only"])
    def test_system_turns_the_chat_template_renders_are_accepted(self, tmp_path, tiny_model_dir, kind):
        write_jsonl(tmp_path / "train.jsonl", [{"messages": system_turns(kind)}, *VARIED_CHATS])
        before = snapshot(tmp_path)
        result = run_cli("data", "check", "train.jsonl", "--base", tiny_model_dir, "--out", "rep", cwd=tmp_path)
        assert_contract(result, 0, before=before, after=snapshot(tmp_path, skip=("rep",)))

    def test_train_warns_when_eval_rows_leak_from_train(self, tmp_path, tiny_model_dir):
        write_jsonl(tmp_path / "train.jsonl", VARIED_CHATS)
        write_jsonl(tmp_path / "eval.jsonl", VARIED_CHATS[:3])
        write_config(tmp_path / "run.yaml", tiny_model_dir, eval="eval.jsonl")
        before = snapshot(tmp_path, skip=("runs",))
        result = run_cli("train", "run.yaml", cwd=tmp_path)
        assert_contract(result, 0, before=before, after=snapshot(tmp_path, skip=("runs",)))
        words = ("leak", "overlap", "also in train", "appear in train", "duplicate")
        said = [
            line
            for line in result.output.splitlines()
            if "eval.jsonl" in line and any(w in line.lower() for w in words)
        ]
        assert said, "no line names eval.jsonl and its 3 rows that are also train rows (leaked)"


# --------------------------------------------------------------------------------------------------------------------
# signals outside the training loop: 130 / 143, nothing half-written
# --------------------------------------------------------------------------------------------------------------------


class TestSignals:
    @pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
    def test_data_check(self, tmp_path, signum, code):
        big_chat_file(tmp_path / "big.jsonl")
        before = snapshot(tmp_path)
        result = interrupt("data", "check", "big.jsonl", "--out", "rep", cwd=tmp_path, signum=signum, after=0.8)
        assert_contract(result, code, before=before, after=snapshot(tmp_path))

    def test_data_prepare_leaves_no_half_written_output(self, tmp_path):
        big_chat_file(tmp_path / "big.jsonl")
        before = snapshot(tmp_path)
        result = interrupt(
            "data", "prepare", "big.jsonl", "--out", "ready", cwd=tmp_path, signum=signal.SIGINT, after=0.8
        )
        assert_contract(result, 130, before=before, after=snapshot(tmp_path))

    def test_generate_while_loading_or_generating(self, tmp_path, lora_run):
        run = copy_run(lora_run, tmp_path)
        before = snapshot(tmp_path)
        # Loading takes ~0.6 s and 470 tokens (the most the 512-position model takes after the prompt) ~0.5 s more:
        # the signal lands in one or the other, both outside the training loop.
        result = interrupt(
            "generate", run, "-p", "hi", "--max-new-tokens", "470", cwd=tmp_path, signum=signal.SIGINT, after=0.4
        )
        assert_contract(result, 130, before=before, after=snapshot(tmp_path))

    def test_chat_at_its_prompt(self, tmp_path, lora_run):
        run = copy_run(lora_run, tmp_path)
        os.mkfifo(tmp_path / "keyboard")
        keyboard = os.open(tmp_path / "keyboard", os.O_RDWR)  # held open: the prompt waits for a line
        try:
            before = snapshot(tmp_path)
            result = interrupt(
                "chat",
                run,
                cwd=tmp_path,
                signum=signal.SIGINT,
                stdin=tmp_path / "keyboard",
                ready=lambda running: "you> " in running.read("stdout"),
            )
        finally:
            os.close(keyboard)
        assert_contract(result, 130, before=before, after=snapshot(tmp_path))

    def test_eval_writes_no_report_when_interrupted(self, tmp_path, lora_run):
        run = copy_run(lora_run, tmp_path)
        before = snapshot(tmp_path)
        result = interrupt(
            "eval", run, "--data", lora_run.parent.parent / "train.jsonl", cwd=tmp_path, signum=signal.SIGINT, after=1.5
        )
        assert_contract(result, 130, before=before, after=snapshot(tmp_path))

    @pytest.mark.parametrize("after", [0.2, None], ids=["loading", "training"])  # None: once it has checkpointed
    def test_train_interrupted_anywhere_exits_130_and_the_next_run_works(self, tmp_path, tiny_model_dir, after):
        write_jsonl(tmp_path / "train.jsonl", VARIED_CHATS * 8)
        extra = "train: {max_steps: 60, batch_size: 2, precision: fp32, warmup_steps: 0, save_every: 5}\n"
        config = write_config(tmp_path / "run.yaml", tiny_model_dir, extra="")
        config.write_text(config.read_text().replace(config.read_text().splitlines()[-1], extra.strip()))
        before = snapshot(tmp_path, skip=("runs",))
        checkpoints = tmp_path / "runs" / "hostile" / "checkpoints"
        ready = (lambda running: checkpoints.is_dir()) if after is None else None  # noqa: E731
        result = interrupt("train", "run.yaml", cwd=tmp_path, signum=signal.SIGINT, after=after or 1.0, ready=ready)
        assert_contract(result, 130, before=before, after=snapshot(tmp_path, skip=("runs",)))
        leftovers = [p.name for p in tmp_path.rglob(".*") if ".tmp" in p.name or ".partial" in p.name]
        assert not leftovers, f"half-written files left behind: {leftovers}"
        again = run_cli("train", "run.yaml", cwd=tmp_path, timeout=120)
        assert again.returncode == 0, again.last_line()
        assert (tmp_path / "runs" / "hostile" / "adapter" / "MANIFEST.json").is_file()
