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

"""Tests of the Table 1 reproduction (``contextnet reproduce-table1``)."""

import csv
import json
import math
import shlex

import numpy as np
import pytest
from lsst.meas.contextnet.cli.main import build_parser, main
from lsst.meas.contextnet.cli.table1 import _settings_from_args
from lsst.meas.contextnet.tools.table1 import ROWS, Table1Settings, _pattern, reproduce_table1

TINY = {"conv_channels": (4, 8), "n_local": 6, "global_widths": (16,), "predict_widths": (16,)}


def tiny_settings(**overrides):
    base = {
        "train_sets": 4,
        "test_sets": 2,
        "m": 20,
        "epochs": 1,
        "processes": 1,
        "device": "cpu",
        "progress": False,
        "model_overrides": TINY,
    }
    return Table1Settings(**{**base, **overrides})


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    output = tmp_path_factory.mktemp("table1")
    result = reproduce_table1(output, tiny_settings(), log=lambda text: None)
    return output, result


def test_tiny_run_writes_all_files(tiny_run):
    output, result = tiny_run
    for name in ("table1.json", "table1.csv", "table1.md", "table1.rst", "predictions.npz"):
        assert (output / name).is_file(), name
    # Generated data are removed unless kept.
    assert not (output / "data").exists()
    assert json.loads((output / "table1.json").read_text()) == result


def test_tiny_run_rows_and_values(tiny_run):
    _, result = tiny_run
    rows = result["rows"]
    assert [row["key"] for row in rows] == ["a", "b", "c", "d"]
    assert [row["psf_variation"] for row in rows] == ["none", "spatial", "full", "full"]
    assert [row["model"] for row in rows] == ["local-only", "local-only", "local-only", "contextnet"]
    assert [row["n_p"] for row in rows] == [1, 1, 1, 5]
    assert [row["model_config"]["context"] for row in rows] == [False, False, False, True]
    # Same local CNN in every row.
    assert len({tuple(row["model_config"]["conv_channels"]) for row in rows}) == 1
    for row in rows:
        metrics = row["metrics"]
        assert metrics["n"] == 2 * 20
        assert metrics["n_galaxy"] + metrics["n_star"] == metrics["n"]
        assert 0.0 <= metrics["accuracy"] <= 1.0
        assert 0.0 <= metrics["balanced_accuracy"] <= 1.0
        assert metrics["auc"] is None or 0.0 <= metrics["auc"] <= 1.0
        assert [b["key"] for b in row["by_mag"]] == ["lt22", "22-23", "23-24", "ge24"]
        assert sum(b["n"] for b in row["by_mag"]) == metrics["n"]
        assert sum(b["n"] for b in row["by_psf_fwhm"]) == metrics["n"]
        assert row["train"]["n_sets"] == 4 and row["train"]["m"] == 20
        assert row["test"]["seed"] != row["train"]["seed"]
        assert row["training"]["epochs_run"] == 1
    # Rows c and d are tested on the same objects.
    assert rows[2]["metrics"]["n_galaxy"] == rows[3]["metrics"]["n_galaxy"]
    assert [b["n"] for b in rows[2]["by_mag"]] == [b["n"] for b in rows[3]["by_mag"]]
    # Without variation every source has the same PSF FWHM.
    assert sum(1 for b in rows[0]["by_psf_fwhm"] if b["n"] > 0) == 1
    pattern = result["pattern"]
    assert math.isclose(
        pattern["local_only_drop_a_to_c"], rows[0]["metrics"]["accuracy"] - rows[2]["metrics"]["accuracy"]
    )
    assert isinstance(pattern["holds"], bool)


def test_tiny_run_csv_markdown_predictions(tiny_run):
    output, result = tiny_run
    with open(output / "table1.csv", newline="") as stream:
        lines = list(csv.DictReader(stream))
    assert [line["row"] for line in lines] == ["a", "b", "c", "d"]
    for line, row in zip(lines, result["rows"], strict=True):
        assert float(line["accuracy"]) == pytest.approx(row["metrics"]["accuracy"])
        assert int(line["n"]) == row["metrics"]["n"]
        assert int(line["n_mag_lt22"]) == row["by_mag"][0]["n"]
    text = (output / "table1.md").read_text()
    assert result["command"] in text
    assert result["command"].startswith("contextnet reproduce-table1 --output ")
    table_lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert sum(line.startswith(("| a |", "| b |", "| c |", "| d |")) for line in table_lines) == 8
    assert "Acc. < 22" in text and "Acc. >= 24" in text
    rst = (output / "table1.rst").read_text()
    assert rst.startswith("+---") and ".. code-block:: bash" in rst
    with np.load(output / "predictions.npz") as npz:
        assert npz["d_score"].shape == (2, 20)
        assert npz["full_labels"].shape == (2, 20)
        assert np.all((npz["a_score"] >= 0) & (npz["a_score"] <= 1))
        # Local-only predictions do not depend on the set: one prediction, no spread.
        assert np.all(npz["a_score_std"] == 0)


def test_tiny_run_models(tiny_run):
    from lsst.meas.contextnet.modelio import file_sha256, load_model

    output, result = tiny_run
    for row in result["rows"]:
        path = output / row["model_file"]
        assert file_sha256(path) == row["model_sha256"]
    loaded = load_model(output / result["rows"][3]["model_file"], device="cpu")
    assert loaded.m == 20
    assert loaded.metadata["training"]["command"] == result["command"]
    assert loaded.metadata["metrics"]["test"]["accuracy"] == result["rows"][3]["metrics"]["accuracy"]


def test_cli_run_is_deterministic(tiny_run, tmp_path, capsys):
    """The recorded command, run again, reproduces the metrics."""
    _, first = tiny_run
    argv = shlex.split(first["command"])[1:]
    argv[argv.index("--output") + 1] = str(tmp_path / "again")
    assert main([*argv, "--no-save-models", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "| d | ContextNet |" in printed
    second = json.loads((tmp_path / "again" / "table1.json").read_text())
    for row1, row2 in zip(first["rows"], second["rows"], strict=True):
        assert row1["metrics"] == row2["metrics"]
        assert row1["by_mag"] == row2["by_mag"]


def test_refuses_to_overwrite(tmp_path):
    (tmp_path / "table1.json").write_text("{}")
    with pytest.raises(FileExistsError, match="table1.json"):
        reproduce_table1(tmp_path, tiny_settings())
    assert main(["reproduce-table1", "--output", str(tmp_path)]) == 2


@pytest.mark.parametrize(
    "overrides",
    [
        {"train_sets": 1},
        {"test_sets": 0},
        {"m": 1},
        {"epochs": 0},
        {"max_minutes_per_model": 0},
        {"max_minutes_per_model": float("inf")},
        {"seed": -1},
        {"processes": 0},
        {"n_p": 0},
        {"arch": "alexnet"},
        {"lr": 0.0},
        {"threads": 0},
        {"train_sets": 2.5},
        {"train_sets": True},
        {"mag_edges": (23.0, 22.0)},
        {"mag_edges": ()},
        {"psf_fwhm_edges": (0.5, float("nan"))},
        {"model_overrides": {"m": 5}},
        {"model_overrides": {"conv_channels": (0, 8)}},
    ],
)
def test_settings_validation(overrides):
    with pytest.raises(ValueError):
        tiny_settings(**overrides)


def test_seeds_and_model_configs():
    for seed in (0, 1, 7, 123456):
        settings = tiny_settings(seed=seed)
        assert settings.train_seed != settings.test_seed
    settings = Table1Settings(arch="paper")
    local = settings.model_config(ROWS[0])
    context = settings.model_config(ROWS[3])
    assert not local.context and context.context
    assert local.conv_channels == context.conv_channels == (64, 128)
    assert local.pool is False and context.pool is False
    light = Table1Settings()
    assert light.model_config(ROWS[0]).conv_channels == light.model_config(ROWS[3]).conv_channels == (16, 32)
    assert light.model_config(ROWS[3]).m == light.m


def parse(argv):
    return build_parser().parse_args(["reproduce-table1", *argv])


def test_cli_defaults_match_settings():
    args = parse(["--output", "out"])
    assert _settings_from_args(args) == Table1Settings()


def test_cli_command_round_trip():
    settings = tiny_settings(seed=5, max_minutes_per_model=None, threads=1, keep_data=True, progress=True)
    argv = shlex.split(settings.command("out"))
    assert argv[:2] == ["contextnet", "reproduce-table1"]
    assert _settings_from_args(build_parser().parse_args(argv[1:])) == settings


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--output", "out", "--arch", "alexnet"],
        ["--output", "out", "--max-minutes-per-model", "-1"],
        ["--output", "out", "--max-minutes-per-model", "soon"],
        ["--output", "out", "--mag-edges", "a,b"],
        ["--output", "out", "--conv-channels", "8,0"],
        ["--output", "out", "--train-sets", "many"],
    ],
)
def test_cli_rejects_bad_arguments(argv):
    with pytest.raises(SystemExit):
        parse(argv)


@pytest.mark.parametrize("argv", [["--train-sets", "1"], ["--m", "1"], ["--mag-edges", "24,22"]])
def test_cli_reports_invalid_settings(argv, tmp_path, capsys):
    assert main(["reproduce-table1", "--output", str(tmp_path / "out"), *argv]) == 2
    assert "reproduce-table1: error:" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_max_minutes_none():
    assert parse(["--output", "o", "--max-minutes-per-model", "none"]).max_minutes_per_model is None


def pattern_rows(acc):
    return [{"key": k, "metrics": {"accuracy": float(np.mean(acc[k])), "accuracy_se": 0.005}} for k in "abcd"]


def test_pattern_summary():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.01, 20)
    per_visit = {"a": 0.95 + noise, "b": 0.94 + noise, "c": 0.80 + noise, "d": 0.93 + noise}
    pattern = _pattern(pattern_rows(per_visit), per_visit)
    assert pattern["holds"]
    assert pattern["local_only_drop_a_to_c"] == pytest.approx(0.15)
    assert pattern["recovered_fraction"] == pytest.approx(0.13 / 0.15)
    # ContextNet no better than the local-only CNN on (c): the pattern does not hold.
    per_visit["d"] = per_visit["c"] + rng.normal(0, 0.01, 20)
    assert not _pattern(pattern_rows(per_visit), per_visit)["holds"]
