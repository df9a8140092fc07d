"""A built wheel works outside the repository: sql/ and migrations/ travel inside the package.

The wheel is built from a copy of the project, installed into a fresh virtualenv (its
dependencies come from the project's environment through a .pth line, so nothing is downloaded:
that line adds a directory to sys.path without running its .pth files, so the project's own
editable install stays out), and the installed `recsys-db` migrates a new database, loads events,
trains CF and serves `recsys.recommend` with a temporary directory as working directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import create_database, drop_database

ROOT = Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info", "__pycache__",
                              ".pytest_cache", ".ruff_cache", "tests", "bench")


def _build_wheel(out: Path) -> Path:
    src = out / "src"
    shutil.copytree(ROOT, src, ignore=SKIP)
    try:  # the environment's setuptools builds it offline; else pip fetches one
        import setuptools

        offline = int(setuptools.__version__.split(".")[0]) >= 68
    except ImportError:
        offline = False
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out),
                    *(["--no-build-isolation"] if offline else []), str(src)],
                   check=True, capture_output=True, text=True)
    (wheel,) = out.glob("recsys_db-*.whl")
    return wheel


def test_wheel_installs_and_runs_outside_the_repository(server_url: str, tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    in_repo = {f"recsys_db/{p.relative_to(ROOT / 'recsys_db')}"
               for p in (ROOT / "recsys_db").rglob("*.py")}
    in_repo |= {f"recsys_db/sql/{p.relative_to(ROOT / 'sql')}"
                for p in (ROOT / "sql").rglob("*.sql")}
    in_repo |= {f"recsys_db/migrations/{p.relative_to(ROOT / 'migrations')}"
                for p in (ROOT / "migrations").rglob("*") if p.suffix in (".py", ".mako")}
    assert in_repo - names == set()  # a subpackage missing from pyproject.toml shows here

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", str(wheel)], check=True, capture_output=True, text=True)
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          check=True, capture_output=True, text=True).stdout.strip()
    deps = [p for p in sys.path if p.endswith("site-packages")]  # this environment's
    Path(site, "zz_project_dependencies.pth").write_text("".join(p + "\n" for p in deps))

    name = f"recsys_wheel_{os.getpid()}"
    url = create_database(server_url, name)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(RECSYS_DATABASE_URL=url, RECSYS_HOME=str(tmp_path / "home"))

    def run(*args: str | Path) -> str:
        done = subprocess.run([str(a) for a in args], cwd=work, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, f"{args}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    recsys_db = venv / "bin" / "recsys-db"
    try:
        assert "-> 0" in run(recsys_db, "migrate")
        run(recsys_db, "generate", "--users", "50", "--items", "200", "--events", "2000",
            "--seed", "2", "--out", "synth.csv")
        run(recsys_db, "ingest", "synth.csv", "--format", "taobao")
        run(recsys_db, "jobs", "run", "train-cf")
        out = run(python, "-c", f"""
import sys, psycopg, recsys_db
assert recsys_db.__file__.startswith({str(venv)!r}), recsys_db.__file__
assert not [p for p in sys.path if p.startswith({str(ROOT)!r}) and p not in {deps!r}], sys.path
with psycopg.connect({url!r}) as c:
    print(len(c.execute("SELECT * FROM recsys.recommend('1', 10)").fetchall()), "rows")
""")
        assert out.strip() == "10 rows"
    finally:
        drop_database(server_url, name)

