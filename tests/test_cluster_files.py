"""The ready cluster definitions in cluster/ parse and agree with each other and with synthgen.

Static checks only (no Kubernetes, Docker or AWS): kinds and API versions, GPUs where they belong,
one image everywhere, the Ray version synthgen pins, an entrypoint that runs a shipped spec, and
no secrets.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster"
PYPROJECT = ROOT / "pyproject.toml"

RAYCLUSTER = "kuberay-raycluster.yaml"
RAYJOB = "kuberay-rayjob.yaml"
LAUNCHER = "ray-cluster-launcher.yaml"
YAML_FILES = (RAYCLUSTER, RAYJOB, LAUNCHER)
ALL_FILES = (*YAML_FILES, "Dockerfile", "README.md")

GPU = "nvidia.com/gpu"
SECRET_NAMES = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SESSION_TOKEN",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "GOOGLE_APPLICATION_CREDENTIALS",
)
SECRETISH = re.compile(r"SECRET|TOKEN|PASSWORD|ACCESS_KEY|CREDENTIAL", re.IGNORECASE)
# Every "ray==X" / "ray[default]==X" pin written anywhere in a file.
RAY_PIN = re.compile(r"\bray(?:\[[\w,\s-]*\])?\s*==\s*([0-9][\w.+-]*)")


# ---------------------------------------------------------------------------------------------
# helpers


def ray_pin_from_pyproject(path: Path) -> str:
    """The exact Ray version pinned in [project].dependencies (e.g. "ray[default]==2.60.0")."""
    project = tomllib.loads(path.read_text(encoding="utf-8")).get("project", {})
    for dep in project.get("dependencies", []):
        req = Requirement(dep)
        if req.name.lower() != "ray":
            continue
        exact = [spec.version for spec in req.specifier if spec.operator in ("==", "===")]
        assert len(exact) == 1, f"ray must be pinned to one exact version in {path}: {dep!r}"
        return exact[0]
    raise AssertionError(f"no ray dependency in [project].dependencies of {path}")


@functools.cache
def load(name: str) -> Any:
    docs = list(yaml.safe_load_all((CLUSTER / name).read_text(encoding="utf-8")))
    assert len(docs) == 1, f"{name} must hold exactly one YAML document"
    assert isinstance(docs[0], dict), f"{name} must be a mapping"
    return docs[0]


def text(name: str) -> str:
    return (CLUSTER / name).read_text(encoding="utf-8")


def cluster_specs() -> dict[str, dict]:
    """Every RayCluster spec: the RayCluster's own and the RayJob's inline rayClusterSpec."""
    return {RAYCLUSTER: load(RAYCLUSTER)["spec"], RAYJOB: load(RAYJOB)["spec"]["rayClusterSpec"]}


def head_containers(spec: dict) -> list[dict]:
    return spec["headGroupSpec"]["template"]["spec"]["containers"]


def worker_groups(spec: dict) -> list[dict]:
    return spec.get("workerGroupSpecs") or []


def ray_containers(spec: dict) -> list[dict]:
    containers = list(head_containers(spec))
    for group in worker_groups(spec):
        containers.extend(group["template"]["spec"]["containers"])
    return containers


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, comments dropped, continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text("Dockerfile").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        out.append((keyword.upper(), args.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return out


def image_repository(image: str) -> str:
    """'registry:5000/team/synthgen:1.0' -> 'synthgen'."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


@pytest.fixture(scope="module")
def ray_pin() -> str:
    if not PYPROJECT.is_file():
        pytest.skip("pyproject.toml not written yet")
    return ray_pin_from_pyproject(PYPROJECT)


@pytest.fixture(scope="module")
def image() -> str:
    """The one synthgen image every cluster file runs."""
    images = set()
    for spec in cluster_specs().values():
        images.update(c["image"] for c in ray_containers(spec))
    docker = load(LAUNCHER)["docker"]
    images.update(docker[k] for k in ("image", "head_image", "worker_image") if k in docker)
    assert len(images) == 1, f"cluster files run different images: {sorted(images)}"
    (only,) = images
    assert image_repository(only) == "synthgen", only
    return only


# ---------------------------------------------------------------------------------------------
# the pin synthgen declares


def test_ray_pin_parser_reads_the_dependency_string(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "x"\ndependencies = ["torch>=2.3", "ray[default]==2.60.0", "rich"]\n',
        encoding="utf-8",
    )
    assert ray_pin_from_pyproject(pyproject) == "2.60.0"
    pyproject.write_text(
        "[project]\ndependencies = [\"ray[default,data] == 2.61.1 ; python_version >= '3.10'\"]\n",
        encoding="utf-8",
    )
    assert ray_pin_from_pyproject(pyproject) == "2.61.1"
    pyproject.write_text('[project]\ndependencies = ["ray>=2.60"]\n', encoding="utf-8")
    with pytest.raises(AssertionError, match="pinned"):
        ray_pin_from_pyproject(pyproject)


def test_all_files_exist() -> None:
    missing = [name for name in ALL_FILES if not (CLUSTER / name).is_file()]
    assert not missing, f"missing in cluster/: {missing}"


# ---------------------------------------------------------------------------------------------
# KubeRay


def test_kuberay_kinds_and_api_versions() -> None:
    assert load(RAYCLUSTER)["apiVersion"] == "ray.io/v1"
    assert load(RAYCLUSTER)["kind"] == "RayCluster"
    assert load(RAYJOB)["apiVersion"] == "ray.io/v1"
    assert load(RAYJOB)["kind"] == "RayJob"
    for name in (RAYCLUSTER, RAYJOB):
        assert load(name)["metadata"]["name"], f"{name}: metadata.name is empty"


def test_rayjob_inlines_the_same_cluster_spec() -> None:
    specs = cluster_specs()
    assert specs[RAYJOB] == specs[RAYCLUSTER], (
        "rayClusterSpec in kuberay-rayjob.yaml drifted from spec in kuberay-raycluster.yaml"
    )


@pytest.mark.parametrize("name", [RAYCLUSTER, RAYJOB])
def test_ray_version_is_synthgens_pin(name: str, ray_pin: str) -> None:
    assert str(cluster_specs()[name]["rayVersion"]) == ray_pin


@pytest.mark.parametrize("name", [RAYCLUSTER, RAYJOB])
def test_head_has_no_gpu_and_serves_the_dashboard(name: str) -> None:
    head = cluster_specs()[name]["headGroupSpec"]
    params = head["rayStartParams"]
    assert params.get("num-gpus") == "0"
    assert params.get("dashboard-host") == "0.0.0.0"
    for container in head_containers(cluster_specs()[name]):
        resources = container.get("resources", {})
        for section in ("requests", "limits"):
            gpus = [k for k in resources.get(section, {}) if "gpu" in k.lower()]
            assert not gpus, f"{name}: head {section} ask for GPUs: {gpus}"
        ports = {p["containerPort"] for p in container.get("ports", [])}
        assert 8265 in ports, f"{name}: head does not expose the dashboard / Jobs API port"


@pytest.mark.parametrize("name", [RAYCLUSTER, RAYJOB])
def test_gpu_worker_group_requests_and_limits_one_gpu(name: str) -> None:
    spec = cluster_specs()[name]
    groups = worker_groups(spec)
    assert groups, f"{name}: no worker group"
    for group in groups:
        lo, n, hi = group["minReplicas"], group["replicas"], group["maxReplicas"]
        assert all(isinstance(v, int) for v in (lo, n, hi)), group["groupName"]
        assert 0 <= lo <= n <= hi and hi > 0, (lo, n, hi)
        pod = group["template"]["spec"]
        for container in pod["containers"]:
            resources = container["resources"]
            for section in ("requests", "limits"):
                assert str(resources[section].get(GPU)) == "1", (
                    f"{name}: worker {section} must hold {GPU}: 1 (one actor per GPU)"
                )
            assert {"cpu", "memory"} <= set(resources["requests"]), resources["requests"]
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            assert "/dev/shm" in mounts, f"{name}: workers need a shared-memory /dev/shm"
            volumes = {v["name"]: v for v in pod.get("volumes", [])}
            shm = volumes[mounts["/dev/shm"]]
            assert shm.get("emptyDir", {}).get("medium") == "Memory", shm


@pytest.mark.parametrize("name", [RAYCLUSTER, RAYJOB])
def test_autoscaler_enabled(name: str) -> None:
    assert cluster_specs()[name]["enableInTreeAutoscaling"] is True


@pytest.mark.parametrize("name", [RAYCLUSTER, RAYJOB])
def test_ray_start_params_are_strings(name: str) -> None:
    spec = cluster_specs()[name]
    params = [spec["headGroupSpec"]["rayStartParams"]]
    params += [group.get("rayStartParams", {}) for group in worker_groups(spec)]
    for mapping in params:
        bad = {k: v for k, v in mapping.items() if not isinstance(v, str)}
        assert not bad, f"{name}: KubeRay needs string rayStartParams values, got {bad}"


@pytest.mark.parametrize("name", [RAYCLUSTER, RAYJOB])
def test_credentials_come_from_a_secret(name: str) -> None:
    for container in ray_containers(cluster_specs()[name]):
        refs = [e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e]
        assert refs, f"{name}: container {container['name']} gets no Secret via envFrom"
        for env in container.get("env", []):
            if SECRETISH.search(env["name"]):
                assert "valueFrom" in env and "value" not in env, (
                    f"{name}: {env['name']} must come from a Secret, not a literal value"
                )


@pytest.mark.parametrize("name", [RAYCLUSTER, RAYJOB])
def test_ray_containers_run_from_the_image_repo_copy(name: str) -> None:
    # Ray job entrypoints run in the directory Ray was started from: /app holds pipelines/.
    for container in ray_containers(cluster_specs()[name]):
        assert container.get("workingDir") == "/app", container["name"]


def test_rayjob_runs_a_shipped_pipeline() -> None:
    spec = load(RAYJOB)["spec"]
    entrypoint = spec["entrypoint"]
    assert entrypoint.startswith("synthgen run "), entrypoint
    argv = shlex.split(entrypoint)
    pipeline = argv[2]
    assert re.fullmatch(r"pipelines/[\w.-]+\.ya?ml", pipeline), pipeline
    assert (ROOT / pipeline).is_file(), f"the RayJob runs {pipeline}, which the repo lacks"
    assert "--output" in argv, "the RayJob must say where the dataset goes"
    assert "://" in argv[argv.index("--output") + 1]


def test_rayjob_lifecycle_fields() -> None:
    spec = load(RAYJOB)["spec"]
    assert spec["shutdownAfterJobFinishes"] is True
    assert isinstance(spec["ttlSecondsAfterFinished"], int)
    assert spec["ttlSecondsAfterFinished"] >= 0
    assert spec.get("submissionMode", "K8sJobMode") in {
        "K8sJobMode",
        "HTTPMode",
        "SidecarMode",
        "InteractiveMode",
    }
    assert isinstance(spec.get("backoffLimit", 0), int) and spec.get("backoffLimit", 0) >= 0


# ---------------------------------------------------------------------------------------------
# Ray cluster launcher


def test_launcher_layout() -> None:
    config = load(LAUNCHER)
    assert config["cluster_name"]
    assert isinstance(config["max_workers"], int) and config["max_workers"] > 0
    provider = config["provider"]
    assert provider["type"] == "aws"
    assert provider["region"]
    assert isinstance(provider["cache_stopped_nodes"], bool)
    types = config["available_node_types"]
    assert config["head_node_type"] in types


def test_launcher_head_is_cpu_and_gpu_workers_autoscale() -> None:
    config = load(LAUNCHER)
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    assert head.get("resources", {}).get("GPU", 0) == 0, "the head must have no GPU"
    workers = {k: v for k, v in types.items() if k != config["head_node_type"]}
    gpu = {k: v for k, v in workers.items() if v.get("resources", {}).get("GPU", 0) >= 1}
    assert gpu, "no worker node type with GPU resources"
    for name, node in gpu.items():
        assert node["max_workers"] > 0, name
        assert 0 <= node.get("min_workers", 0) <= node["max_workers"], name
        assert node["max_workers"] <= config["max_workers"], name
        assert node["node_config"]["InstanceType"], name


def test_launcher_start_commands() -> None:
    config = load(LAUNCHER)
    head = " ".join(config["head_start_ray_commands"])
    assert "ray start --head" in head
    assert "--dashboard-host=0.0.0.0" in head
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in head
    assert "ray start --address=$RAY_HEAD_IP:6379" in " ".join(config["worker_start_ray_commands"])


def test_launcher_runs_synthgens_ray(ray_pin: str, image: str) -> None:
    config = load(LAUNCHER)
    if config.get("docker", {}).get("image"):
        # The image is built from cluster/Dockerfile, which pins Ray (checked below).
        assert config["docker"]["image"] == image
    else:
        setup = " ".join(config.get("setup_commands", []))
        assert ray_pin in RAY_PIN.findall(setup), "setup_commands must install synthgen's Ray"
    pins = set(RAY_PIN.findall(text(LAUNCHER)))
    assert pins <= {ray_pin}, f"launcher mentions other Ray versions: {pins}"


def test_launcher_matches_rays_schema() -> None:
    """Validate against the schema `ray up` itself uses, when Ray is installed (no import)."""
    spec = importlib.util.find_spec("ray")
    if spec is None or spec.origin is None:
        pytest.skip("ray is not installed")
    schema_path = Path(spec.origin).parent / "autoscaler" / "ray-schema.json"
    if not schema_path.is_file():
        pytest.skip("this Ray ships no autoscaler schema")
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    jsonschema.validate(load(LAUNCHER), schema)


# ---------------------------------------------------------------------------------------------
# Dockerfile


def test_dockerfile_base_is_cuda_with_python_311() -> None:
    froms = [args for kw, args in dockerfile_instructions() if kw == "FROM"]
    assert froms, "Dockerfile has no FROM"
    base = froms[-1].split()[0].lower()
    assert re.search(r"cuda|-gpu\b|-cu\d+", base), f"base image {base!r} has no CUDA"
    assert "py311" in base or "python3.11" in text("Dockerfile"), "Python 3.11 expected"


def test_dockerfile_installs_synthgens_ray(ray_pin: str) -> None:
    instructions = dockerfile_instructions()
    base = [args for kw, args in instructions if kw == "FROM"][-1].split()[0]
    runs = " ".join(args for kw, args in instructions if kw == "RUN")
    tagged = re.match(r"(?:docker\.io/)?rayproject/ray:([0-9][\w.]*?)(?:-|$)", base)
    if tagged:
        assert tagged.group(1) == ray_pin, f"base image {base} is not Ray {ray_pin}"
    assert tagged or ray_pin in RAY_PIN.findall(runs), f"the image does not install Ray {ray_pin}"
    pins = set(RAY_PIN.findall(text("Dockerfile")))
    assert pins <= {ray_pin}, f"Dockerfile mentions other Ray versions: {pins}"


def test_dockerfile_installs_synthgen_from_the_build_context() -> None:
    instructions = dockerfile_instructions()
    copies = [args.split() for kw, args in instructions if kw == "COPY"]
    assert any(parts[-2:] == [".", "/app"] for parts in copies), "expected `COPY . /app`"
    runs = " ".join(args for kw, args in instructions if kw == "RUN")
    assert "/app[s3]" in runs, "expected `pip install /app[s3]`"
    assert re.search(r"\btorch\b", runs), "torch is not installed"
    workdirs = [args for kw, args in instructions if kw == "WORKDIR"]
    assert workdirs and workdirs[-1] == "/app", "pipelines/ must resolve from the working dir"


def test_dockerfile_runs_as_non_root_with_a_model_cache() -> None:
    instructions = dockerfile_instructions()
    users = [args for kw, args in instructions if kw == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, "the image must not run as root"
    envs = " ".join(args for kw, args in instructions if kw == "ENV")
    assert "HF_HOME" in envs


# Every "torch==X" pin in a file.
TORCH_PIN = re.compile(r"\btorch==([0-9][\w.]*)")


def test_dockerfile_pins_the_torch_that_ci_and_the_readme_install() -> None:
    """One torch for the image and the install line (.ci/run runs the README's, verbatim)."""
    runs = " ".join(args for kw, args in dockerfile_instructions() if kw == "RUN")
    ci = set(TORCH_PIN.findall((ROOT / ".ci" / "run").read_text()))
    assert len(ci) == 1 and set(TORCH_PIN.findall(runs)) == ci, (TORCH_PIN.findall(runs), ci)
    assert set(TORCH_PIN.findall((ROOT / "README.md").read_text())) <= ci
    assert not re.findall(r"\btorch\s*(?:>=|<=|~=|!=|>|<)", runs), "the image installs a loose torch"


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def in_build_context(path: str, patterns: list[str]) -> bool:
    """Whether Docker sends `path` (relative, with /): the last pattern that matches the path or
    one of its folders decides, `!` keeps it (Docker's .dockerignore rules)."""
    kept = True
    for pattern in patterns:
        body = pattern.removeprefix("!").strip("/")
        regex = re.compile("".join(
            "(?:.*/)?" if token == "**/" else ".*" if token == "**" else "[^/]*" if token == "*"
            else "[^/]" if token == "?" else re.escape(token)
            for token in re.findall(r"\*\*/|\*\*|\*|\?|[^*?]+", body)))
        parts = path.split("/")
        if any(regex.fullmatch("/".join(parts[:i])) for i in range(1, len(parts) + 1)):
            kept = pattern.startswith("!")
    return kept


def test_the_build_context_is_what_the_image_needs() -> None:
    """`COPY . /app` copies the build context: the package and what pip builds it from, the
    shipped specs; not .git, the tests, outputs, virtual environments or caches."""
    patterns = dockerignore()
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    needed = ["pyproject.toml", "setup.py", project["readme"], *project["license-files"]]
    needed += [str(p.relative_to(ROOT)) for folder in ("synthgen", "pipelines")
               for p in (ROOT / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert len(needed) > 100 and [p for p in needed if not in_build_context(p, patterns)] == []
    left_out = [".git/HEAD", "tests/conftest.py", "out/digits/_SUCCESS", ".venv/bin/python", "docs/format.md",
                "benchmarks/README.md", "synthgen/__pycache__/cli.cpython-311.pyc", "synthgen/cli/x.pyc",
                ".pytest_cache/README.md", "build/lib/synthgen/__init__.py", "BENCHMARKS.md"]
    assert [p for p in left_out if in_build_context(p, patterns)] == []


def test_the_build_context_rules_read_as_docker_reads_them() -> None:
    """The matcher above, on Docker's documented examples: a folder's pattern covers its files,
    the last match wins, `**` spans folders."""
    assert not in_build_context("a/b.txt", ["a"]) and in_build_context("ab/c", ["a"])
    assert in_build_context("x/keep.md", ["x", "!x/keep.md"])
    assert not in_build_context("x/y.md", ["x", "!x/*.md", "x/y.md"])
    assert not in_build_context("deep/er/f.pyc", ["**/*.pyc"]) and in_build_context("f.py", ["**/*.pyc"])


def test_dockerfile_bakes_in_no_secrets() -> None:
    content = text("Dockerfile")
    for name in SECRET_NAMES:
        assert name not in content, f"Dockerfile mentions {name}"
    for kw, args in dockerfile_instructions():
        if kw in {"ENV", "ARG"}:
            assert not SECRETISH.search(args), f"{kw} {args} looks like a secret"


@pytest.mark.parametrize("name", ALL_FILES)
def test_no_credentials_in_cluster_files(name: str) -> None:
    content = text(name)
    assert not re.search(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", content), f"{name}: AWS key id"
    for secret in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "HF_TOKEN"):
        # Placeholders ("...") in documentation are fine; real values are not.
        for value in re.findall(rf"{secret}\s*[=:]\s*[\"']?([^\s\"']*)", content):
            assert value in {"", "...", "CHANGE-ME"}, f"{name}: a value for {secret}"


def test_all_cluster_files_run_one_synthgen_image(image: str) -> None:
    assert image  # the fixture checks it: one image, repository "synthgen"
