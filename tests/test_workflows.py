"""The GitHub Actions workflows, checked here because they cannot run here.

``.github/workflows/pages.yml`` publishes the book (``make book``, then
``_build/html`` to GitHub Pages); ``.github/workflows/upgrade.yml`` builds and
tests the book every week with the newest release of every dependency and
reports what breaks. No actionlint on these machines: the files are parsed with
a YAML loader, their structure is checked, and every ``run:`` script is parsed
by ``bash -n``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
PAGES = WORKFLOWS / "pages.yml"
UPGRADE = WORKFLOWS / "upgrade.yml"
# actions the workflows may use, with the major version they are pinned to
PINNED = {
    "actions/checkout": "v4",
    "actions/setup-python": "v5",
    "actions/upload-pages-artifact": "v3",
    "actions/deploy-pages": "v4",
}
EXPRESSION = re.compile(r"\$\{\{.*?\}\}")


def _load(path: Path) -> dict:
    workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(workflow, dict), f"{path.name} is not a mapping"
    # YAML 1.1 reads the key `on` as the boolean True
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


def _steps(workflow: dict) -> list[tuple[str, dict]]:
    return [(job, step) for job, spec in workflow["jobs"].items() for step in spec["steps"]]


def _runs(workflow: dict) -> list[str]:
    return [step["run"] for _, step in _steps(workflow) if "run" in step]


@pytest.fixture(params=[PAGES, UPGRADE], ids=lambda p: p.name)
def workflow_file(request) -> Path:
    return request.param


def test_workflows_parse_and_have_a_name_triggers_and_jobs(workflow_file):
    workflow = _load(workflow_file)
    assert workflow.get("name")
    assert workflow.get("on"), f"{workflow_file.name}: no trigger"
    assert workflow.get("jobs")
    for name, job in workflow["jobs"].items():
        assert job.get("runs-on") == "ubuntu-latest", name
        assert job.get("steps"), name
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), f"{name}: a step needs one of uses/run: {step}"


def test_actions_are_known_and_pinned_to_a_major_version(workflow_file):
    for job, step in _steps(_load(workflow_file)):
        if "uses" not in step:
            continue
        action, _, version = step["uses"].partition("@")
        assert action in PINNED, f"{workflow_file.name}/{job}: unexpected action {action}"
        assert version == PINNED[action], f"{workflow_file.name}/{job}: {step['uses']}"


def test_run_scripts_are_valid_bash(workflow_file, tmp_path):
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    for i, script in enumerate(_runs(_load(workflow_file))):
        path = tmp_path / f"step{i}.sh"
        path.write_text(EXPRESSION.sub("EXPR", script), encoding="utf-8")
        result = subprocess.run([bash, "-n", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, f"{workflow_file.name}, step {i}:\n{script}\n{result.stderr}"


def test_python_is_3_11(workflow_file):
    setups = [
        s for _, s in _steps(_load(workflow_file)) if s.get("uses", "").startswith("actions/setup-python")
    ]
    assert setups, f"{workflow_file.name}: no actions/setup-python"
    assert all(str(s["with"]["python-version"]) == "3.11" for s in setups)


# ---------------------------------------------------------------- pages.yml
def test_pages_runs_on_push_to_main():
    on = _load(PAGES)["on"]
    assert on["push"]["branches"] == ["main"]
    assert "workflow_dispatch" in on


def test_pages_builds_with_make_book_and_uploads_the_html():
    workflow = _load(PAGES)
    build = workflow["jobs"]["build"]["steps"]
    runs = [s["run"].strip() for s in build if "run" in s]
    assert "make book" in runs, runs  # the same command as on a laptop, nothing else
    uploads = [s for s in build if s.get("uses", "").startswith("actions/upload-pages-artifact")]
    assert len(uploads) == 1
    assert uploads[0]["with"]["path"] == "_build/html"
    # upload after the build
    assert build.index(uploads[0]) > next(
        i for i, s in enumerate(build) if s.get("run", "").strip() == "make book"
    )
    # the make targets it names exist in the Makefile
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^book:", makefile, re.M)


def test_pages_deploys_with_the_permissions_pages_needs():
    workflow = _load(PAGES)
    permissions = workflow["permissions"]
    assert permissions["pages"] == "write"
    assert permissions["id-token"] == "write"
    assert permissions.get("contents") == "read"
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "build"
    assert deploy["environment"]["name"] == "github-pages"
    assert [s["uses"] for s in deploy["steps"]] == ["actions/deploy-pages@" + PINNED["actions/deploy-pages"]]
    step = deploy["steps"][0]
    assert "steps." + step["id"] + ".outputs.page_url" in deploy["environment"]["url"]


def test_pages_passes_the_launch_settings_the_extension_reads():
    env = next(
        s["env"] for s in _load(PAGES)["jobs"]["build"]["steps"] if s.get("run", "").strip() == "make book"
    )
    source = (ROOT / "_ext" / "dlbook_publish.py").read_text(encoding="utf-8")
    for name in env:
        if name.startswith("DLBOOK_"):
            assert f'"{name}"' in source, f"{name} is not read by _ext/dlbook_publish.py"
    assert "DLBOOK_REPOSITORY_URL" in env and "DLBOOK_BINDERHUB_URL" in env


# ---------------------------------------------------------------- upgrade.yml
def test_upgrade_runs_weekly_and_by_hand():
    on = _load(UPGRADE)["on"]
    assert "workflow_dispatch" in on
    (schedule,) = on["schedule"]
    fields = schedule["cron"].split()
    assert len(fields) == 5
    assert fields[2] == "*" and fields[3] == "*" and fields[4] not in ("*", ""), "not weekly"


def _install_script() -> str:
    steps = _load(UPGRADE)["jobs"]["newest"]["steps"]
    return next(s["run"] for s in steps if s.get("id") == "install")


def test_upgrade_installs_the_newest_release_of_every_requirement(tmp_path):
    """Run the lines of the install step that make the list of names, on the real requirements.txt."""
    script = _install_script()
    lines = script.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("sed "))
    end = next(i for i, line in enumerate(lines) if "jupyter-book<2" in line)
    shutil.copy(ROOT / "requirements.txt", tmp_path / "requirements.txt")
    subprocess.run(["bash", "-e", "-c", "\n".join(lines[start : end + 1])], cwd=tmp_path, check=True)
    names = (tmp_path / "newest-names.txt").read_text(encoding="utf-8").split()

    pinned = {}
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line:
            pinned[re.split(r"[=<>!~;\s]", line)[0].lower()] = line
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", n) for n in names if n != "jupyter-book<2"), names
    assert {n.lower() for n in names} == (set(pinned) - {"jupyter-book"}) | {"jupyter-book<2"}
    assert "pip install --upgrade -r newest-names.txt" in script
    # the package itself, and the .venv marked as installed so `make` keeps it
    assert "--no-deps --no-build-isolation -e ." in script
    assert "touch .venv/.installed" in script
    assert "pip freeze" in script


def test_upgrade_runs_the_steps_of_make_test():
    """Every command of `make test` has a step of its own (the report names the one that broke)."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^test:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    runs = [r.strip() for r in _runs(_load(UPGRADE))]
    expected = {
        "$(VENV)/bin/ruff check code tests benchmarks _ext": "make lint",
        '$(PY) -m pytest tests -m "not book"': '.venv/bin/python -m pytest tests -m "not book"',
        "$(MAKE) book-strict": "make book-strict",
        "$(PY) -m pytest tests -m book": ".venv/bin/python -m pytest tests -m book",
    }
    commands = [line.strip() for line in recipe.splitlines()]
    assert commands == list(expected), f"`make test` changed: update upgrade.yml and this test: {commands}"
    for command in expected.values():
        assert command in runs, command
    lint = re.search(r"^lint:.*\n\t(.*)\n", makefile, re.M).group(1).strip()
    assert lint == "$(VENV)/bin/ruff check code tests benchmarks _ext"


def test_upgrade_reports_what_broke():
    workflow = _load(UPGRADE)
    assert workflow["permissions"]["issues"] == "write"
    steps = workflow["jobs"]["newest"]["steps"]
    checks = [s for s in steps if s.get("id") in ("lint", "unit", "build", "site")]
    assert len(checks) == 4
    assert all(s.get("continue-on-error") is True for s in checks)
    report = next(s for s in steps if s.get("name") == "Report")
    assert report["if"] == "always()"
    for step in checks:
        assert f"steps.{step['id']}.outcome" in str(report["env"].values())
    script = report["run"]
    assert "GITHUB_STEP_SUMMARY" in script
    assert "freeze.diff" in script
    assert "gh issue create" in script and "gh issue comment" in script
    assert "exit 1" in script  # the run is red when something broke
    assert report["env"]["GH_TOKEN"] == "${{ github.token }}"
    diff = next(s for s in steps if s.get("name") == "What changed against the pins")
    assert "requirements.txt" in diff["run"] and "newest-freeze.txt" in diff["run"]
