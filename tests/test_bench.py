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

"""Tests of ``contextnet bench``: helpers, exposure builders, errors and a quick end-to-end run."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import export_tiny_model
from lsst.meas.contextnet.cli.main import main
from lsst.meas.contextnet.model import ContextNetConfig, count_flops
from lsst.meas.contextnet.tools import bench
from lsst.meas.contextnet.tools.bench import BenchSettings, format_summary
from lsst.meas.contextnet.tools.benchinputs import make_bench_exposure
from lsst.meas.contextnet.tools.benchtiming import (
    Timing,
    cpu_model_name,
    hardware_info,
    paired_ratio,
    time_call,
    time_interleaved,
)

TOP_KEYS = {
    "format_version",
    "created_utc",
    "hardware",
    "settings",
    "model",
    "exposure",
    "classification",
    "ensemble",
    "local_network",
    "cutouts",
    "psf_inputs",
    "quantum",
    "scaling",
    "training",
    "flops",
    "seconds_total",
}
HARDWARE_KEYS = {
    "cpu_model",
    "cpu_count",
    "cpu_count_usable",
    "torch_version",
    "torch_threads",
    "torch_interop_threads",
    "omp_num_threads",
    "cuda_available",
    "gpu_name",
    "gpu_count",
    "cuda_version",
    "cudnn_version",
    "python_version",
    "numpy_version",
    "platform",
}
# Entries that may legitimately be null (no GPU, variable unset, CPU-only build).
NULLABLE = {"gpu_name", "cudnn_version", "omp_num_threads", "cuda_version", "code_version"}


@pytest.fixture(scope="module")
def light_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialized light ContextNet with a small m (a test fixture, not a trained model)."""
    config = ContextNetConfig.preset("light", m=16, global_widths=(32,), predict_widths=(8,))
    return export_tiny_model(tmp_path_factory.mktemp("bench-model") / "tiny.pt", config=config)


def test_cpu_model_name(tmp_path: Path) -> None:
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Example CPU @ 2.0GHz\n\n")
    assert cpu_model_name(x86) == "Example CPU @ 2.0GHz"
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nBogoMIPS\t: 50.00\nCPU part\t: 0xd0c\n")
    assert cpu_model_name(arm) == "0xd0c"
    assert cpu_model_name(tmp_path / "missing")  # falls back to a non-empty description


def test_hardware_info() -> None:
    info = hardware_info()
    assert set(info) == HARDWARE_KEYS
    assert info["torch_version"] == torch.__version__
    assert info["torch_threads"] == torch.get_num_threads()
    assert info["cuda_available"] == torch.cuda.is_available()
    assert (info["gpu_name"] is None) == (not torch.cuda.is_available())
    assert info["cpu_count_usable"] >= 1


def test_time_call_counts_calls_and_synchronizes() -> None:
    calls, syncs = [], []
    timing, result = time_call(
        lambda: calls.append(1) or len(calls), repeat=3, warmup=2, synchronize=lambda: syncs.append(1)
    )
    assert len(calls) == 5
    assert result == 5  # the last call's result
    assert len(timing.seconds) == 3 and all(t >= 0 for t in timing.seconds)
    assert len(syncs) == 1 + 3  # once before the clock starts, once per timed call
    assert timing.to_dict() == {"median_s": timing.median, "seconds": list(timing.seconds)}
    assert Timing((3.0, 1.0, 2.0)).median == 2.0
    with pytest.raises(ValueError, match="repeat"):
        time_call(lambda: None, repeat=0)


def test_time_interleaved_calls_in_rounds_and_pairs_ratios() -> None:
    order: list[str] = []
    timings, results = time_interleaved(
        {"a": lambda: order.append("a") or "ra", "b": lambda: order.append("b") or "rb"}, repeat=3, warmup=1
    )
    # One call of each per round, the warm-up round included, each round starting one later.
    assert order == ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert results == {"a": "ra", "b": "rb"}
    assert set(timings) == {"a", "b"} and all(len(t.seconds) == 3 for t in timings.values())
    # Round by round: ratios 3, 2 and 0.25, median 2 (the ratio of the medians would be 1.5).
    assert paired_ratio(Timing((3.0, 4.0, 1.0)), Timing((1.0, 2.0, 4.0))) == 2.0
    with pytest.raises(ValueError, match="paired"):
        paired_ratio(Timing((1.0,)), Timing((1.0, 2.0)))
    with pytest.raises(ValueError, match="repeat"):
        time_interleaved({"a": lambda: None}, repeat=0)


def test_settings() -> None:
    quick = BenchSettings.quick_settings()
    assert quick.quick and quick.size < BenchSettings().size and quick.sources < BenchSettings().sources
    assert BenchSettings.quick_settings(size=256).size == 256
    assert BenchSettings().sources == 2000 and BenchSettings().size == 4096
    with pytest.raises(ValueError, match="repeat"):
        BenchSettings(repeat=0)
    with pytest.raises(ValueError, match="exposure"):
        BenchSettings(exposure="real")


def test_synthetic_exposure_is_seeded_and_complete() -> None:
    first = make_bench_exposure(128, 20, "synthetic", seed=3)
    again = make_bench_exposure(128, 20, "synthetic", seed=3)
    other = make_bench_exposure(128, 20, "synthetic", seed=4)
    assert first.calexp.image.array.shape == (128, 128)
    np.testing.assert_array_equal(first.calexp.image.array, again.calexp.image.array)
    assert not np.array_equal(first.calexp.image.array, other.calexp.image.array)
    assert len(first.src) == 20 and first.description["kind"] == "synthetic"
    for column in ("sourceId", "coord_ra", "coord_dec", "x", "y", "extendedness", "sizeExtendedness"):
        assert column in first.src.colnames
    assert first.description["n_sources"] == 20
    assert np.all(first.calexp.variance.array > 0)
    with pytest.raises(ValueError, match="kind"):
        make_bench_exposure(128, 20, "drawn", seed=3)


def test_missing_model_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    output = tmp_path / "bench.json"
    assert main(["bench", "--output", str(output), "--model", str(tmp_path / "none.pt"), "--quick"]) == 2
    assert "none.pt" in capsys.readouterr().err
    from lsst.meas.contextnet import modelcheck

    monkeypatch.setattr(modelcheck, "default_model_path", lambda: tmp_path / "shipped" / "contextnet.pt")
    assert main(["bench", "--output", str(output), "--quick"]) == 2
    err = capsys.readouterr().err
    assert "shipped model" in err and "--model" in err
    assert not output.exists()


def _check_numbers(value, path: str = "") -> None:
    """Every number finite; every time, rate, size and FLOP count positive."""
    if isinstance(value, dict):
        for key, item in value.items():
            if item is None:
                assert key in NULLABLE, f"{path}.{key} is null"
            _check_numbers(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_numbers(item, f"{path}[{i}]")
    elif isinstance(value, float | int) and not isinstance(value, bool):
        assert math.isfinite(value), path
        leaf = path.rsplit(".", 1)[-1]
        positive = ("median_s", "seconds", "_per_s", "flops", "over", "ratio", "bytes", "per_source")
        if any(word in leaf for word in positive) or leaf.endswith("_s") or "seconds[" in path:
            if "diff" not in leaf and leaf != "other":
                assert value > 0, f"{path} = {value}"


def test_quick_benchmark_writes_every_key(tmp_path: Path, light_model: Path, capsys) -> None:
    output = tmp_path / "out" / "bench.json"
    assert (
        main(["bench", "--output", str(output), "--model", str(light_model), "--quick", "--device", "cpu"])
        == 0
    )
    err = capsys.readouterr().err
    assert "classification" in err and "wrote" in err  # progress and summary on stderr
    results = json.loads(output.read_text())
    assert set(results) == TOP_KEYS
    _check_numbers(results)
    assert set(results["hardware"]) == HARDWARE_KEYS
    assert results["settings"]["quick"] and results["settings"]["devices"] == ["cpu"]
    assert results["model"]["m"] == 16 and results["model"]["architecture"] == "light"

    exposure = results["exposure"]
    assert exposure["kind"] == "simulated" and exposure["size"] == 1024
    assert 0 < exposure["n_sources"] <= 300

    cpu = results["classification"]["cpu"]
    assert cpu["n_sources"] == exposure["n_sources"]
    assert set(cpu["split_median_s"]) == {"cutouts", "psf", "inputs", "model"}
    assert cpu["split_median_s"]["model"] < cpu["median_s"]
    assert cpu["prepare_inputs_s"] < cpu["median_s"]

    ensemble = results["ensemble"]["cpu"]
    assert ensemble["max_abs_diff_mean"] <= 1e-6 and ensemble["max_abs_diff_std"] <= 1e-6
    assert ensemble["same_n_sets"]
    assert ensemble["recompute"]["flops"] > ensemble["cached"]["flops"]

    assert results["cutouts"]["identical"] and results["cutouts"]["max_abs_diff"] == 0.0

    psf_inputs = results["psf_inputs"]
    assert psf_inputs["n_sources"] == exposure["n_sources"] and psf_inputs["grid_points"] == 25
    # The bench exposure's PSF varies smoothly: bilinear interpolation is within 2% of the peak.
    assert psf_inputs["max_abs_pixel_diff_over_peak"] < 0.02

    quantum = results["quantum"]
    assert set(quantum["split_median_s"]) == {"read", "cutouts", "psf", "inputs", "model", "write", "other"}
    assert quantum["quantum"]["median_s"] > quantum["split_median_s"]["model"]
    profile = quantum["read_profile"]
    for label in ("calexp", "lsst_images_default"):
        assert set(profile[label]["components"]) == {"image", "mask", "variance", "psf", "detector"}
        assert profile[label]["mask_plane_by_plane"] > 0.0
        assert profile[label]["butler_over_plain_native"] > 0.0
    # The simulated repositories store the planes uncompressed (image, variance): a bigger file.
    assert profile["calexp"]["file_bytes"] > profile["lsst_images_default"]["file_bytes"]

    rows = results["scaling"]["rows"]
    assert [row["n_sources"] for row in rows] == [50, 200]
    assert all(row["n_sets"] >= 1 for row in rows)

    training = results["training"]
    assert training["cutouts_per_step"] == 2 * 16 and training["steps"] == 2
    assert "generate_set" in training["data"]
    assert 0.0 < training["batch_building_share"] < 1.0

    flops = results["flops"]
    expected = count_flops(ContextNetConfig.preset("light", m=16, global_widths=(32,), predict_widths=(8,)))
    assert flops["per_source"] == pytest.approx(expected["per_source"])
    summary = format_summary(results)
    assert "classification run() on cpu" in summary and "quantum" in summary


def test_a_failed_check_fails_the_benchmark(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bench refuses to report timings of two cutout methods that disagree."""
    from lsst.meas.contextnet import cutouts

    exposure = make_bench_exposure(128, 20, "synthetic", seed=3)
    real = cutouts.extract_cutouts_loop

    def wrong(*args, **kwargs):
        result = real(*args, **kwargs)
        result.cutouts[0, 0, 0] += 1.0
        return result

    monkeypatch.setattr(cutouts, "extract_cutouts_loop", wrong)
    with pytest.raises(bench.BenchmarkCheckError, match="differ"):
        bench._bench_cutouts(exposure, 28, BenchSettings.quick_settings(), lambda message: None)
