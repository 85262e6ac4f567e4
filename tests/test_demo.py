# This file is part of meas_contextnet.
#
# See the COPYRIGHT file at the top-level directory of this distribution
# for details of code ownership.
#
# This program is free software: you can redistribute it and/or modify
# it under the terms of the GNU General Public License as published by
# the Free Software Foundation, either version 3 of the License, or
# (at your option) any later version.
#
# This program is distributed in the hope that it will be useful,
# but WITHOUT ANY WARRANTY; without even the implied warranty of
# MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
# GNU General Public License for more details.
#
# You should have received a copy of the GNU General Public License
# along with this program.  If not, see <https://www.gnu.org/licenses/>.

"""Tests of ``contextnet demo``: argument checks, discovery of pipeline/pipetask, and end to end."""

import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table
from lsst.meas.contextnet.cli import demo as cli_demo
from lsst.meas.contextnet.cli.main import build_parser, main
from lsst.meas.contextnet.evaluation.scoring import evaluate_catalog
from lsst.meas.contextnet.pipelinefiles import find_pipeline, pipeline_uri
from lsst.meas.contextnet.tools import demo
from lsst.meas.contextnet.tools.demo import (
    DEMO_COLLECTION,
    DEMO_MARKER,
    DemoSettings,
    build_pipetask_command,
    find_pipetask,
    format_table2,
    resolve_model,
    run_demo,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


# --- Arguments ---------------------------------------------------------------------------------


def test_parser_defaults() -> None:
    args = build_parser().parse_args(["demo", "--output", "out"])
    assert (args.size, args.visits, args.detectors, args.seed, args.processes) == (2048, 2, 1, 42, 2)
    assert args.jobs == 1
    assert args.model is None and args.keep is False
    assert args.func is cli_demo._run
    settings = cli_demo.settings_from_args(args)
    assert settings.repo == Path("out") / "repo" and settings.eval_dir == Path("out") / "eval"


def test_output_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo"])
    assert "--output" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--size", "32"),
        ("--size", "100000"),
        ("--visits", "0"),
        ("--detectors", "0"),
        ("--detectors", "10"),
        ("--processes", "0"),
        ("--jobs", "0"),
        ("--seed", "-1"),
    ],
)
def test_bad_arguments_fail_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    output = tmp_path / "out"
    assert main(["demo", "--output", str(output), option, value]) == 2
    err = capsys.readouterr().err
    assert err.startswith("contextnet demo: error:") and option in err and value in err
    assert not output.exists()


def test_output_that_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        DemoSettings(output=path).validate()


def test_missing_shipped_model_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "data" / "contextnet.pt"
    monkeypatch.setattr("lsst.meas.contextnet.modelcheck.default_model_path", lambda: missing)
    with pytest.raises(FileNotFoundError, match="shipped model"):
        resolve_model(None)
    output = tmp_path / "out"
    assert main(["demo", "--output", str(output)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "--model" in err
    assert not output.exists()


def test_model_paths(tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        resolve_model(tmp_path / "nothing.pt")
    monkeypatch.setenv("DEMO_TEST_MODEL_DIR", str(tiny_model.parent))
    assert resolve_model("$DEMO_TEST_MODEL_DIR/tiny.pt") == tiny_model.resolve()
    monkeypatch.setattr("lsst.meas.contextnet.modelcheck.default_model_path", lambda: tiny_model)
    assert resolve_model(None) == tiny_model.resolve()


def test_invalid_model_file_fails_before_simulating(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    output = tmp_path / "out"
    assert main(["demo", "--output", str(output), "--model", str(bad)]) == 2
    assert str(bad) in capsys.readouterr().err
    assert not (output / "repo").exists()


# --- Discovery ---------------------------------------------------------------------------------


def test_find_pipeline_in_the_package() -> None:
    path = find_pipeline(environ={})
    assert path == (REPO_ROOT / "python/lsst/meas/contextnet/pipelines/ContextNet.yaml").resolve()
    assert path == (REPO_ROOT / "pipelines" / "ContextNet.yaml").resolve()  # the checkout's link
    assert "ContextNetClassifierTask" in path.read_text()
    assert pipeline_uri() == "resource://lsst.meas.contextnet/pipelines/ContextNet.yaml"


def test_find_pipeline_prefers_eups_product_dir(tmp_path: Path) -> None:
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "ContextNet.yaml").write_text("tasks: {}\n")
    found = find_pipeline(environ={"MEAS_CONTEXTNET_DIR": str(tmp_path)})
    assert found == (tmp_path / "pipelines" / "ContextNet.yaml").resolve()
    # A product directory without the file falls back to the package.
    empty = tmp_path / "empty"
    empty.mkdir()
    assert find_pipeline(environ={"MEAS_CONTEXTNET_DIR": str(empty)}) == find_pipeline(environ={})


def test_find_pipeline_not_found_lists_places(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        find_pipeline(environ={"MEAS_CONTEXTNET_DIR": str(tmp_path / "a")}, package_dir=tmp_path / "b")
    message = str(info.value)
    assert str(tmp_path / "a" / "pipelines" / "ContextNet.yaml") in message
    assert str(tmp_path / "b" / "ContextNet.yaml") in message
    assert "MEAS_CONTEXTNET_DIR" in message


def test_find_pipetask() -> None:
    path = find_pipetask()
    assert path.name == "pipetask" and os.access(path, os.X_OK)


def test_pipetask_command(tmp_path: Path) -> None:
    pipetask, repo, pipeline = Path("/bin/pipetask"), tmp_path / "repo", tmp_path / "p.yaml"
    command = build_pipetask_command(pipetask, repo, pipeline, jobs=3)
    assert command[:2] == ["/bin/pipetask", "run"]
    flags = dict(zip(command[2::2], command[3::2]))
    assert flags["-b"] == str(repo) and flags["-i"] == "sim" and flags["-o"] == DEMO_COLLECTION
    assert flags["-p"] == str(pipeline) and flags["-j"] == "3"
    assert "--register-dataset-types" in command
    assert "-c" not in command  # the task's default: the shipped model
    model = tmp_path / "m.pt"
    command = build_pipetask_command(pipetask, repo, pipeline, model=model)
    assert command[-2:] == ["-c", f"contextnetClassifier:modelPath={model}"]


# --- Output directory handling -------------------------------------------------------------------


def _marker(output: Path, simulation: dict, simulated: bool = True) -> None:
    record = {"format": "contextnet-demo", "version": 1, "simulation": simulation, "simulated": simulated}
    (output / DEMO_MARKER).write_text(json.dumps(record))


def test_refuses_repo_not_made_by_a_demo(tmp_path: Path, tiny_model: Path) -> None:
    (tmp_path / "repo").mkdir()
    precious = tmp_path / "repo" / "butler.yaml"
    precious.write_text("someone else's repository")
    with pytest.raises(FileExistsError, match="does not record a demo run"):
        run_demo(DemoSettings(output=tmp_path, model=tiny_model), progress=False)
    assert precious.read_text() == "someone else's repository"


def test_keep_refuses_other_simulation_settings(tmp_path: Path, tiny_model: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "butler.yaml").write_text("x")
    settings = DemoSettings(output=tmp_path, model=tiny_model, size=512, keep=True)
    _marker(tmp_path, settings.simulation() | {"size": 1024})
    with pytest.raises(FileExistsError, match="drop --keep"):
        run_demo(settings, progress=False)
    _marker(tmp_path, settings.simulation(), simulated=False)
    with pytest.raises(FileExistsError, match="complete: False"):
        run_demo(settings, progress=False)
    assert (tmp_path / "repo" / "butler.yaml").read_text() == "x"


def test_pipetask_failure_is_reported(
    tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "pipetask"
    fake.write_text("#!/bin/sh\necho 'quantum failed: boom'\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(demo, "find_pipetask", lambda: fake)
    output = tmp_path / "out"
    (output / "repo").mkdir(parents=True)
    (output / "repo" / "butler.yaml").write_text("x")
    settings = DemoSettings(output=output, model=tiny_model, keep=True)
    _marker(output, settings.simulation())
    with pytest.raises(RuntimeError, match="status 3") as info:
        run_demo(settings, progress=False, stream=io.StringIO())
    assert "boom" in str(info.value) and str(output.resolve() / "pipetask.log") in str(info.value)
    assert json.loads((output / DEMO_MARKER).read_text())["status"] == "pipetask failed"


def test_training_data_summary() -> None:
    card = {
        "training": {
            "data": {
                "n_sets": 900,
                "m": 1000,
                "attrs": {"band": "r", "psf_variation": "full"},
                "shards": ["x"],
            }
        }
    }
    assert demo._describe_training_data(card) == "900 sets of m = 1000, band r, psf_variation full"
    assert demo._describe_training_data({"training": {"data": "x" * 200}}).endswith("...")
    assert demo._describe_training_data({}) == "not recorded"


# --- Formatting ----------------------------------------------------------------------------------


def test_format_table2() -> None:
    # 4 galaxies, 4 stars. ContextNet: 1 galaxy missed -> accuracy 7/8, galaxy precision 1,
    # galaxy recall 3/4, star precision 4/5, star recall 1. extendedness: everything a galaxy.
    catalog = Table(
        {
            "classification_galaxyProb": [0.9, 0.8, 0.7, 0.2, 0.1, 0.1, 0.3, 0.4],
            "is_galaxy": [True, True, True, True, False, False, False, False],
            "mag": [20.0, 21.0, 22.0, 23.0, 20.0, 21.0, 22.0, 23.0],
            "extendedness": [1.0] * 8,
        }
    )
    result = evaluate_catalog(catalog, do_trivial=False, baseline_columns=["extendedness"])
    lines = format_table2(result).splitlines()
    assert lines[0].split()[:3] == ["classifier", "n", "accuracy"]
    contextnet = lines[2].split()
    assert contextnet[0] == "ContextNet" and contextnet[1] == "8"
    assert [float(v) for v in contextnet[2:]] == pytest.approx([7 / 8, 1.0, 3 / 4, 4 / 5, 1.0], abs=1e-3)
    extendedness = lines[3].split()
    assert extendedness[:3] == ["extendedness", "(DM)", "8"]
    assert extendedness[3:6] == ["0.500", "0.500", "1.000"]
    assert extendedness[7] == "0.000"  # star recall; star precision is undefined ("-")
    assert len(lines) == 4


# --- End to end ----------------------------------------------------------------------------------


def _demo(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).parent / "contextnet"), "demo", *args, "--no-progress"]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, (
        f"{' '.join(command)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result


@pytest.mark.slow
def test_demo_end_to_end(tmp_path: Path, tiny_model: Path) -> None:
    from lsst.daf.butler import Butler

    output = tmp_path / "demo"
    args = ["--output", str(output), "--size", "512", "--visits", "2", "--seed", "3", "--processes", "1"]
    first = _demo([*args, "--model", str(tiny_model)], tmp_path)
    stdout = first.stdout

    for name in ("repo/butler.yaml", "pipetask.log", DEMO_MARKER):
        assert (output / name).is_file(), name
    for name in ("metrics.csv", "metrics.json", "summary.txt", "accuracy_vs_magnitude.png"):
        assert (output / "eval" / name).stat().st_size > 0, name

    # The Table 2 comparison holds both classifiers, with numbers.
    table = stdout.split("Table 2)")[1].split("accuracy by true magnitude")[0].splitlines()
    rows = {line.split()[0]: line.split() for line in table if line.strip() and line[0].isalpha()}
    assert 0.0 < float(rows["ContextNet"][2]) < 1.0  # a random tiny model: a proportion, no floor
    assert rows["extendedness"][1] == "(DM)" and 0.8 < float(rows["extendedness"][3]) <= 1.0
    # The shipped catalog peer ("catalog GBDT peer"): trained, so it has a floor on these visits.
    assert rows["catalog"][1:3] == ["GBDT", "peer"] and float(rows["catalog"][4]) > 0.8
    assert "accuracy by true magnitude" in stdout
    for stage in ("simulate", "pipetask", "evaluate", "total"):
        assert f"{stage} " in stdout.split("Timing:")[1].splitlines()[0]
    assert f"butler query-datasets {output.resolve() / 'repo'} contextnet_classification" in stdout

    metrics = json.loads((output / "eval" / "metrics.json").read_text())
    summary = {row["classifier"]: row for row in metrics["summary"]}
    assert summary["ContextNet"]["n"] > 0 and summary["extendedness"]["n"] > 0
    record = json.loads((output / DEMO_MARKER).read_text())
    assert record["status"] == "done" and record["model"]["path"] == str(tiny_model.resolve())
    assert f"contextnetClassifier:modelPath={tiny_model.resolve()}" in record["pipetask_command"]

    butler = Butler.from_config(str(output / "repo"))
    src_refs = butler.query_datasets("src", collections="sim")
    assert len(src_refs) == 2
    for ref in src_refs:
        classification = butler.get("contextnet_classification", ref.dataId, collections=DEMO_COLLECTION)
        np.testing.assert_array_equal(classification["sourceId"], butler.get(ref)["sourceId"])
    first_run = butler.collections.get_info(DEMO_COLLECTION).children[0]
    butler.close()

    # --keep reuses the simulated data and adds a new run with identical classifications.
    second = _demo([*args, "--model", str(tiny_model), "--keep"], tmp_path)
    assert "reusing the simulated data" in second.stdout
    butler = Butler.from_config(str(output / "repo"))
    runs = butler.collections.get_info(DEMO_COLLECTION).children
    assert len(runs) == 3 and runs[1] == first_run and runs[2] == "sim"
    for ref in src_refs:
        new = butler.get("contextnet_classification", ref.dataId, collections=runs[0])
        old = butler.get("contextnet_classification", ref.dataId, collections=first_run)
        np.testing.assert_array_equal(new["classification_galaxyProb"], old["classification_galaxyProb"])
    butler.close()
    assert json.loads((output / "eval" / "metrics.json").read_text())["summary"] == metrics["summary"]


def test_a_missing_optional_dependency_names_its_extra(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from lsst.meas.contextnet.cli import evaluate as cli_evaluate

    def missing(args):
        raise ModuleNotFoundError("No module named 'sklearn'", name="sklearn")

    monkeypatch.setattr(cli_evaluate, "run_evaluate_command", missing)
    assert main(["evaluate", "--repo", "r", "--collections", "c", "--output", "o"]) == 2
    err = capsys.readouterr().err
    assert "needs the Python package 'sklearn'" in err and "lsst-meas-contextnet[eval]" in err
