"""The wheel carries every data file and works outside the repository: build it from the tracked files,
install it into a fresh virtual environment in a temporary directory (no index: the dependencies are the
ones already installed, seen through --system-site-packages), and run `camsweep --version`,
`camsweep identify` and a scan of a loopback lab from there.

Marked ``wheel`` (and ``slow``): part of `make test`; ``-m "not wheel"`` leaves it out.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.wheel, pytest.mark.slow, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("scanner", "fingerprints", "tui")


def _tracked_files() -> list[str]:
    """The files a fresh clone has (git ls-files), or the working tree less caches when git is missing."""
    git = shutil.which("git")
    if git and (ROOT / ".git").exists():
        p = subprocess.run([git, "-C", str(ROOT), "ls-files", "-z"], capture_output=True, text=True, check=True)
        return [f for f in p.stdout.split("\0") if f and (ROOT / f).is_file()]
    skip = {".git", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis", "build", ".shim"}
    return [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
            if p.is_file() and not skip & set(p.relative_to(ROOT).parts) and not p.name.endswith(".pyc")]


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "CAMSWEEP_", "VIRTUAL_ENV"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".shim" not in p)
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for rel in _tracked_files():
        dst = src / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dst)
    out = tmp_path_factory.mktemp("dist")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)]
    have_backend = importlib.util.find_spec("setuptools") and importlib.util.find_spec("wheel")
    if have_backend:
        cmd[4:4] = ["--no-build-isolation"]  # build with what is installed: no index needed
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=src, env=_clean_env())
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    (whl,) = out.glob("camsweep-*.whl")
    return whl


def test_wheel_carries_every_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = [f for f in _tracked_files() if f.split("/", 1)[0] in PACKAGES]
    missing = [f for f in wanted if f not in names]
    assert not missing, f"not in the wheel: {missing}"
    # the kinds of data the tool reads at run time, by name
    for must in ("fingerprints/vendors.yaml", "fingerprints/exploited.yaml", "scanner/data/replacement_catalog.yaml",
                 "scanner/report/schema/report-v1.json"):
        assert must in names
    assert any(n.startswith("fingerprints/third_party/recog/xml/") and n.endswith(".xml") for n in names)
    assert any(n.startswith("fingerprints/rules/") and n.endswith(".yaml") for n in names)
    assert any(n.startswith("scanner/lab/responders/") for n in names)


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("venv")
    env = _clean_env()
    v = home / "v"
    p = subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(v)],
                       capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr
    py = v / "bin" / "python"
    # the system's pip, run by the venv's interpreter, installs into the venv; --no-index: nothing downloaded
    p = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                       capture_output=True, text=True, timeout=300, env=env, cwd=home)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    return v


def run_installed(venv: Path, *args: str, timeout: float = 120, stdin: str | None = None):
    env = _clean_env()
    env["PATH"] = str(venv / "bin") + os.pathsep + env.get("PATH", "")
    return subprocess.run([str(venv / "bin" / "camsweep"), *args], capture_output=True, text=True, timeout=timeout,
                          input=stdin, env=env, cwd=venv.parent)


def test_installed_camsweep_runs_outside_the_repository(venv):
    env = _clean_env()
    p = subprocess.run([str(venv / "bin" / "python"), "-c",
                        "import scanner, fingerprints, tui; print(scanner.__file__, fingerprints.__file__)"],
                       capture_output=True, text=True, env=env, cwd=venv.parent, timeout=60)
    assert p.returncode == 0, p.stderr
    assert str(ROOT) not in p.stdout and str(venv) in p.stdout, p.stdout
    p = run_installed(venv, "--version")
    assert p.returncode == 0 and p.stdout.startswith("camsweep "), p.stdout + p.stderr
    record = {"id": "a", "mac": "28:57:be:01:02:03", "http": [{"port": 80, "headers": {"Server": "App-webs/"}}],
              "onvif": {"manufacturer": "HIKVISION", "model": "DS-2CD2043G0-I", "firmware": "V5.5.0 build 170725"}}
    p = run_installed(venv, "identify", "-", "--format", "jsonl", stdin=json.dumps(record) + "\n")
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    assert got["manufacturer"] == "Hikvision" and got["restricted"] is True
    p = run_installed(venv, "fingerprints", "info", "--json")
    assert p.returncode == 0, p.stderr


def test_loopback_lab_scan_from_the_wheel(venv, tmp_path):
    prefix = f"cswt{os.getpid()}wh"
    up = run_installed(venv, "lab", "up", "--loopback", "--devices", "12", "--prefix", prefix, "--json",
                       timeout=180)
    try:
        assert up.returncode == 0, up.stderr[-2000:]
        st = json.loads(up.stdout)
        truth = [json.loads(line) for line in Path(st["ground_truth"]).read_text().splitlines() if line.strip()]
        ips = sorted({t["ip"] for t in truth if t.get("ip") and not t.get("parent_ip")})
        assert ips and all(ip.startswith("127.") for ip in ips)
        db = tmp_path / "w.db"
        p = run_installed(venv, "scan", *ips, "--db", str(db), "--no-arp", "--no-multicast", "--timeout", "2",
                          "--format", "json", "--quiet", timeout=300)
        assert p.returncode == 0, p.stderr[-2000:]
        devices = json.loads(p.stdout)
        assert {d["ip"] for d in devices if not d.get("parent_ip")} >= set(ips) if not st.get("port_offset") \
            else devices is not None
        if not st.get("port_offset"):  # root: the devices answer on their standard ports
            want = {t["ip"] for t in truth if t.get("restricted") is True and t.get("ip") and not t.get("parent_ip")}
            got = {d["ip"] for d in devices if d.get("restricted") is True}
            assert want & got
    finally:
        down = run_installed(venv, "lab", "down", "--prefix", prefix, timeout=120)
        assert down.returncode == 0, down.stderr


def test_dockerfile_builds_the_wheel_from_what_it_copies():
    """The image's build stage copies what the wheel needs (the packages and the files pyproject names);
    the image installs that wheel, so test_wheel_carries_every_data_file covers the image's data too."""
    text = (ROOT / "Dockerfile").read_text()
    build_stage = text.split("FROM ", 2)[1]
    copied = set()
    for line in build_stage.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            copied.update(w.rstrip("/") for w in line.split()[1:-1])
    assert {"pyproject.toml", "README.md", *PACKAGES} <= copied, copied
    assert "pip wheel" in build_stage and "--network" not in build_stage
    final = text.split("FROM ", 2)[2]
    assert 'ENTRYPOINT ["camsweep"]' in final and "pip install --no-cache-dir /tmp/dist/*.whl" in final
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert not set(ignored) & {"scanner", "fingerprints", "tui", "README.md", "pyproject.toml"}
