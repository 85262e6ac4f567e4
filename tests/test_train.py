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

"""Tests of training: data loading, augmentation, optimization, checkpoints and the CLI."""

import argparse
import dataclasses
import json

import h5py
import numpy as np
import pytest
import torch
from lsst.meas.contextnet.cli.train import add_subcommand
from lsst.meas.contextnet.cutouts import normalize_cutouts
from lsst.meas.contextnet.model import ContextNetConfig
from lsst.meas.contextnet.modelio import load_model
from lsst.meas.contextnet.training.data import combine_training_data, load_training_data
from lsst.meas.contextnet.training.shards import FORMAT_VERSION
from lsst.meas.contextnet.training.trainer import (
    TrainingOptions,
    _split_visits,
    object_weights,
    run_training,
    train_model,
)

SIZE = 28
TINY = {"conv_channels": (4, 8), "n_local": 6, "global_widths": (16,), "predict_widths": (16,)}


def write_shards(directory, n_sets=24, m=8, n_shards=2, seed=0, noise=10.0):
    """Write tiny shards: round Gaussian blobs, narrow (stars) or wide (galaxies), plus noise."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    per_shard = np.array_split(np.arange(n_sets), n_shards)
    names = []
    for k, sets in enumerate(per_shard):
        s = len(sets)
        labels = rng.integers(0, 2, size=(s, m)).astype(np.uint8)
        width = np.where(labels == 1, 2.6, 1.1)
        flux = rng.uniform(400, 3000, size=(s, m))
        dx, dy = rng.uniform(-0.5, 0.5, size=(2, s, m))
        r2 = (xx - 14 - dx[..., None, None]) ** 2 + (yy - 14 - dy[..., None, None]) ** 2
        blob = (
            flux[..., None, None]
            * np.exp(-r2 / (2 * width[..., None, None] ** 2))
            / (2 * np.pi * width[..., None, None] ** 2)
        )
        cutouts = (blob + rng.normal(0, noise, size=blob.shape)).astype(np.float32)
        name = f"shard_{k:05d}.h5"
        with h5py.File(directory / name, "w") as h5:
            h5["cutouts"] = cutouts
            h5["noise_sigma"] = np.full(s, noise, np.float32)
            h5["positions"] = rng.uniform(-1, 1, size=(s, m, 2)).astype(np.float32)
            h5["labels"] = labels
            h5["mag"] = (25 - 2.5 * np.log10(flux)).astype(np.float32)
            h5["snr"] = (flux / (noise * 4 * width)).astype(np.float32)
            h5["blended"] = (np.random.default_rng([seed, k]).uniform(size=(s, m)) < 0.3).astype(np.uint8)
            h5.attrs["cutout_size"] = SIZE
            h5.attrs["m"] = m
            h5.attrs["band"] = "r"
            h5.attrs["seed"] = seed
            h5.attrs["psf_variation"] = "none"
            h5.attrs["config"] = json.dumps({"test": True})
        names.append({"file": name, "n_sets": s})
    manifest = {"format_version": FORMAT_VERSION, "shards": names, "seed": seed, "m": m, "cutout_size": SIZE}
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_shards(tmp_path_factory.mktemp("shards"))


def options(**overrides):
    base = {
        "epochs": 3,
        "batch_sets": 4,
        "lr": 3e-3,
        "seed": 0,
        "device": "cpu",
        "val_fraction": 0.25,
        "progress": False,
    }
    return TrainingOptions(**{**base, **overrides})


def config(m=8, name="light"):
    return ContextNetConfig.preset(name, m=m, **TINY)


def test_load_training_data(data_dir):
    data = load_training_data(data_dir, softening=2.0)
    assert data.n_visits == 24 and data.m == 8 and data.cutout_size == SIZE
    assert data.cutouts.dtype == np.float32 and data.labels.dtype == np.float32
    with h5py.File(data_dir / "shard_00001.h5") as h5:
        np.testing.assert_allclose(
            data.cutouts[12:, :, 0], normalize_cutouts(h5["cutouts"][...], 10.0, 2.0), rtol=1e-6
        )
        np.testing.assert_array_equal(data.positions[12:], h5["positions"][...])
    assert data.description["shards"] == ["shard_00000.h5", "shard_00001.h5"]
    assert data.description["manifest"]["seed"] == 0
    assert data.description["attrs"]["band"] == "r"
    assert data.description["n_objects"] == 24 * 8


def test_load_training_data_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_training_data(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="no shard"):
        load_training_data(tmp_path)
    write_shards(tmp_path / "a", n_sets=4, n_shards=1)
    with h5py.File(tmp_path / "a" / "shard_00000.h5", "a") as h5:
        del h5["labels"]
    with pytest.raises(ValueError, match="lacks the datasets"):
        load_training_data(tmp_path / "a")
    write_shards(tmp_path / "b", n_sets=4, m=8, n_shards=1)
    other = write_shards(tmp_path / "c", n_sets=4, m=6, n_shards=1)
    (other / "shard_00000.h5").rename(tmp_path / "b" / "shard_00001.h5")
    # A shard the manifest does not list is not read ...
    assert load_training_data(tmp_path / "b").m == 8
    # ... one it lists, with another set size, is an error.
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    manifest["shards"].append({"file": "shard_00001.h5", "n_sets": 4})
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="earlier shards"):
        load_training_data(tmp_path / "b")
    # A manifest of another format version is refused.
    manifest["format_version"] = 1
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="unsupported format_version 1"):
        load_training_data(tmp_path / "b")


def test_training_lowers_loss_and_classifies(data_dir):
    data = load_training_data(data_dir)
    result = train_model(data, config(), options(epochs=10, patience=20))
    history = result.history
    assert len(history) == 10
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    assert history[-1]["val_loss"] < 0.5 * history[0]["val_loss"]
    validation = result.metrics["validation"]
    assert validation["accuracy"] > 0.9
    assert validation["n"] == 6 * 8
    assert not result.model.training
    assert result.training["n_val_sets"] == 6 and result.training["n_train_sets"] == 18


def test_training_is_deterministic(data_dir):
    data = load_training_data(data_dir)
    first = train_model(data, config(m=4), options(epochs=2)).model.state_dict()
    second = train_model(data, config(m=4), options(epochs=2)).model.state_dict()
    other = train_model(data, config(m=4), options(epochs=2, seed=1)).model.state_dict()
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=0)
    assert any(not torch.equal(first[key], other[key]) for key in first)


def test_resume_continues_exactly(data_dir, tmp_path):
    data = load_training_data(data_dir)
    straight = train_model(data, config(), options(epochs=4, patience=10))
    train_model(data, config(), options(epochs=2, patience=10, checkpoint_dir=tmp_path))
    assert (tmp_path / "checkpoint.pt").is_file()
    resumed = train_model(
        data, config(), options(epochs=4, patience=10, checkpoint_dir=tmp_path, resume=True)
    )
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    for key, value in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=0, atol=0)
    with pytest.raises(RuntimeError, match="other data or options"):
        train_model(data, config(), options(epochs=4, lr=1e-2, checkpoint_dir=tmp_path, resume=True))
    # The same shards normalized otherwise are other data.
    softer = load_training_data(data_dir, softening=5.0)
    with pytest.raises(RuntimeError, match="other data or options"):
        train_model(softer, config(), options(epochs=4, patience=10, checkpoint_dir=tmp_path, resume=True))
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train_model(data, config(), options(checkpoint_dir=tmp_path / "empty", resume=True))


def test_early_stopping_and_time_limit(data_dir, tmp_path):
    data = load_training_data(data_dir)
    # A huge learning rate makes the validation loss stop improving quickly.
    stopped = train_model(data, config(), options(epochs=30, lr=1.0, patience=1, checkpoint_dir=tmp_path))
    assert stopped.training["stopped"] == "patience"
    assert len(stopped.history) < 30
    assert stopped.training["best_epoch"] == len(stopped.history) - 1
    # Resuming a run that stopped early trains no further.
    again = train_model(
        data, config(), options(epochs=30, lr=1.0, patience=1, checkpoint_dir=tmp_path, resume=True)
    )
    assert again.history == stopped.history and again.training["stopped"] == "patience"
    for key, value in stopped.model.state_dict().items():
        torch.testing.assert_close(again.model.state_dict()[key], value, rtol=0, atol=0)
    limited = train_model(data, config(), options(epochs=30, max_minutes=1e-6))
    assert limited.training["stopped"] == "max_minutes"
    assert len(limited.history) == 1 and not limited.history[0]["complete"]


def test_bad_requests(data_dir):
    data = load_training_data(data_dir)
    with pytest.raises(ValueError, match="exceeds"):
        train_model(data, config(m=9), options())
    with pytest.raises(ValueError, match="cutout_size"):
        train_model(data, ContextNetConfig.preset("light", m=8, cutout_size=30, **TINY), options())
    with pytest.raises(ValueError, match="val_fraction"):
        options(val_fraction=1.0)
    with pytest.raises(ValueError, match="resume"):
        options(resume=True)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            train_model(data, config(), options(device="cuda"))


def test_run_training_writes_model_card(data_dir, tmp_path):
    output = tmp_path / "model.pt"
    metadata = run_training(
        data_dir,
        output,
        config(name="local-only"),
        options(epochs=2),
        softening=2.5,
        command="contextnet train --x",
    )
    loaded = load_model(output, "cpu")
    assert loaded.metadata == metadata
    assert metadata["architecture"] == "local-only" and metadata["m"] == 8
    assert metadata["normalization"] == {"kind": "asinh_noise", "softening": 2.5}
    training = metadata["training"]
    assert training["command"] == "contextnet train --x"
    assert training["seed"] == 0 and training["epochs"] == 2
    assert [shard["file"] for shard in training["data"]["manifest"]["shards"]] == [
        "shard_00000.h5",
        "shard_00001.h5",
    ]
    assert len(training["data"]["manifest_sha256"]) == 64
    assert training["timings"]["total_s"] > 0
    assert 0 <= metadata["metrics"]["validation"]["accuracy"] <= 1


def test_cli(data_dir, tmp_path):
    parser = argparse.ArgumentParser(prog="contextnet")
    add_subcommand(parser.add_subparsers(dest="command"))
    output = tmp_path / "cli.pt"
    argv = [
        "train", "--data", str(data_dir), "--output", str(output), "--arch", "light", "--m", "4",
        "--conv-channels", "4,8", "--n-local", "6", "--global-widths", "16", "--predict-widths", "16",
        "--epochs", "1", "--batch-sets", "4", "--device", "cpu", "--no-progress",
        "--weights-dtype", "float16",
    ]  # fmt: skip
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    loaded = load_model(output, "cpu")
    assert loaded.metadata["m"] == 4 and loaded.metadata["weights_dtype"] == "float16"
    assert loaded.metadata["config"]["global_widths"] == [16]
    with pytest.raises(FileExistsError, match="--overwrite"):
        args.func(parser.parse_args(argv))
    with pytest.raises(SystemExit):
        parser.parse_args([*argv, "--conv-channels", "4,x"])
    with pytest.raises(SystemExit):
        parser.parse_args([*argv, "--inputs", "image", "mask"])
    # --inputs replaces the preset's channels; these shards hold no PSF data for them.
    peak = parser.parse_args([*argv, "--overwrite", "--inputs", "image", "psf_peak"])
    assert peak.inputs == ["image", "psf_peak"]
    with pytest.raises(ValueError, match="needed by a PSF-aware model"):
        peak.func(peak)


def test_several_directories_are_joined_and_recorded(data_dir, tmp_path):
    other = write_shards(tmp_path / "other", n_sets=8, n_shards=1, seed=5)
    parts = [load_training_data(data_dir), load_training_data(other)]
    joined = combine_training_data(parts)
    assert joined.n_visits == 24 + 8
    np.testing.assert_array_equal(joined.cutouts[24:], parts[1].cutouts)
    np.testing.assert_array_equal(joined.labels[:24], parts[0].labels)
    assert [part["directory"] for part in joined.description["parts"]] == [
        str(data_dir.resolve()),
        str(other.resolve()),
    ]
    assert combine_training_data(parts[:1]) is parts[0]
    with pytest.raises(ValueError, match="has m 4"):
        combine_training_data(
            [parts[0], load_training_data(write_shards(tmp_path / "m4", 4, m=4, n_shards=1))]
        )
    with pytest.raises(ValueError, match="no training data"):
        combine_training_data([])
    with pytest.raises(ValueError, match="more than once"):
        combine_training_data([parts[0], parts[1], parts[0]])
    # The command line takes --data more than once and the model card records both directories.
    parser = argparse.ArgumentParser(prog="contextnet")
    add_subcommand(parser.add_subparsers(dest="command"))
    output = tmp_path / "joined.pt"
    args = parser.parse_args(
        ["train", "--data", str(data_dir), "--data", str(other), "--output", str(output), "--arch", "light",
         "--m", "8", "--conv-channels", "4,8", "--n-local", "6", "--global-widths", "16",
         "--predict-widths", "16", "--epochs", "1", "--batch-sets", "4", "--device", "cpu", "--no-progress"]
    )  # fmt: skip
    assert args.func(args) == 0
    card = load_model(output, "cpu").metadata["training"]["data"]
    assert card["n_sets"] == 32 and len(card["parts"]) == 2


def test_training_on_simulated_sets_lowers_the_loss(tmp_path):
    """A short run on sets from the package's own simulator (not toy blobs) learns something."""
    from lsst.meas.contextnet.sim.generator import TrainingDataConfig, write_training_data

    sim_config = TrainingDataConfig(m=32, sets_per_shard=8)
    write_training_data(tmp_path / "sim", 24, sim_config, seed=11, progress=False)
    data = load_training_data(tmp_path / "sim")
    result = train_model(data, config(m=32), options(epochs=6, patience=20, lr=3e-3))
    losses = [record["train_loss"] for record in result.history]
    assert losses[-1] < 0.85 * losses[0]
    # Better than always answering the majority class of the validation sets.
    validation = result.metrics["validation"]
    majority = max(validation["n_galaxy"], validation["n_star"]) / validation["n"]
    assert validation["accuracy"] > majority


def test_warm_start_begins_from_the_file_weights(data_dir, tmp_path):
    first = tmp_path / "first.pt"
    run_training(data_dir, first, config(), options(epochs=2), command="contextnet train --first")
    start = load_model(first, "cpu").module.state_dict()
    # With a vanishing learning rate one warm-started epoch leaves the weights where they began.
    result = train_model(load_training_data(data_dir), config(), options(epochs=1, lr=1e-12, init_from=first))
    for key, value in start.items():
        torch.testing.assert_close(result.model.state_dict()[key], value, rtol=0, atol=1e-9)
    assert result.training["init_from"]["command"] == "contextnet train --first"
    assert len(result.training["init_from"]["sha256"]) == 64
    # The same data and seed hold out the same sets: none of them was trained on.
    assert result.training["init_from"]["held_out_overlap"] == 0
    cold = train_model(load_training_data(data_dir), config(), options(epochs=1, lr=1e-12))
    assert any(not torch.allclose(cold.model.state_dict()[k], v) for k, v in start.items())
    with pytest.raises(ValueError, match="nor a narrower local network"):
        train_model(load_training_data(data_dir), config(m=4), options(epochs=1, init_from=first))


def test_warm_start_widens_a_narrower_local_network(data_dir, tmp_path):
    first = tmp_path / "first.pt"
    run_training(data_dir, first, config(), options(epochs=1), command="contextnet train --first")
    narrow = load_model(first, "cpu")
    wide = dataclasses.replace(config(), conv_channels=(6, 12), n_local=9)
    result = train_model(load_training_data(data_dir), wide, options(epochs=1, lr=1e-12, init_from=first))
    widened_from = result.training["init_from"]["widened_from"]
    assert widened_from == {"conv_channels": [4, 8], "n_local": 6, "inputs": ["image"]}
    rng = np.random.default_rng(3)
    cutouts = torch.from_numpy(rng.normal(size=(2, 8, 1, SIZE, SIZE)).astype(np.float32))
    positions = torch.from_numpy(rng.uniform(-1, 1, size=(2, 8, 2)).astype(np.float32))
    with torch.no_grad():
        before = narrow.module.forward_logits(cutouts, positions)
        after = result.model.forward_logits(cutouts, positions)
    # The copies' 1% noise moves the logits a little; a fresh model would be far off.
    torch.testing.assert_close(after, before, rtol=0, atol=0.05)


def test_blended_star_weight_multiplies_the_bright_star_weight(data_dir):
    data = load_training_data(data_dir)
    assert data.blended is not None and data.blended.shape == data.labels.shape
    weighted = options(bright_star_weight=5.0, bright_star_mag=20.0, blended_star_weight=3.0)
    weights = object_weights(data, weighted)
    bright_star = (data.labels == 0) & (data.mag < 20.0)
    assert (bright_star & data.blended).any() and (bright_star & ~data.blended).any()
    np.testing.assert_array_equal(weights[bright_star & data.blended], 15.0)
    np.testing.assert_array_equal(weights[bright_star & ~data.blended], 5.0)
    np.testing.assert_array_equal(weights[~bright_star], 1.0)
    assert "weighted 5, 15 when blended" in weighted.loss_description()
    # Alone, it weights the blended bright stars only.
    alone = object_weights(data, options(bright_star_mag=20.0, blended_star_weight=3.0))
    np.testing.assert_array_equal(alone, np.where(bright_star & data.blended, 3.0, 1.0))
    # Flags given as the shards store them (uint8) are a mask, not indices.
    as_stored = dataclasses.replace(data, blended=data.blended.astype(np.uint8))
    assert as_stored.blended.dtype == bool
    np.testing.assert_array_equal(object_weights(as_stored, weighted), weights)
    with pytest.raises(ValueError, match="blended_star_weight needs the blend flags"):
        object_weights(dataclasses.replace(data, blended=None), weighted)
    with pytest.raises(ValueError, match="blended_star_weight must be positive"):
        options(blended_star_weight=float("inf"))


def test_blended_galaxy_weight_weights_the_bright_blended_galaxies(data_dir):
    data = load_training_data(data_dir)
    # A cut that leaves sources of each class, blended and not, on both sides.
    cut = float(np.round(np.median(data.mag), 1))
    both = options(
        bright_star_weight=5.0, bright_star_mag=cut, blended_star_weight=3.0, blended_galaxy_weight=3.0
    )
    weights = object_weights(data, both)
    bright = data.mag < cut
    star = data.labels == 0
    bright_galaxy = bright & ~star
    assert (bright_galaxy & data.blended).any() and (bright_galaxy & ~data.blended).any()
    np.testing.assert_array_equal(weights[bright_galaxy & data.blended], 3.0)
    np.testing.assert_array_equal(weights[bright_galaxy & ~data.blended], 1.0)
    # Among the blends, as among the isolated sources, a bright star weighs 5 bright galaxies.
    np.testing.assert_array_equal(weights[bright & star & data.blended], 15.0)
    np.testing.assert_array_equal(weights[bright & star & ~data.blended], 5.0)
    assert (~bright & star & data.blended).any() and (~bright & ~star & data.blended).any()
    np.testing.assert_array_equal(weights[~bright], 1.0)
    assert both.loss_description().endswith(
        f"stars brighter than {cut:g} (true magnitude in the set's band) weighted 5, 15 when blended; "
        f"blended galaxies brighter than {cut:g} (true magnitude in the set's band) weighted 3"
    )
    # Alone, it weights the bright blended galaxies only, and the S/N floor applies to them.
    floor = float(np.median(data.snr[bright_galaxy & data.blended]))
    alone = object_weights(
        data, options(bright_star_mag=cut, bright_star_snr=floor, blended_galaxy_weight=2.0)
    )
    chosen = bright_galaxy & data.blended & (data.snr >= floor)
    assert chosen.any() and (bright_galaxy & data.blended & ~chosen).any()
    np.testing.assert_array_equal(alone, np.where(chosen, 2.0, 1.0))
    galaxies_only = options(bright_star_mag=cut, bright_star_snr=floor, blended_galaxy_weight=2.0)
    card = galaxies_only.loss_description()
    assert "stars" not in card
    assert card.endswith(f"band) with detection S/N >= {floor:g} weighted 2")
    assert card.startswith(
        f"binary cross-entropy on every object of every set, blended galaxies brighter than {cut:g}"
    )
    with pytest.raises(ValueError, match="blended_galaxy_weight needs the true magnitudes"):
        object_weights(dataclasses.replace(data, mag=None), galaxies_only)
    with pytest.raises(ValueError, match="blended_galaxy_weight needs the blend flags"):
        object_weights(dataclasses.replace(data, blended=None), options(blended_galaxy_weight=2.0))
    with pytest.raises(ValueError, match="blended_galaxy_weight must be positive"):
        options(blended_galaxy_weight=0.0)


def test_data_without_blend_flags_load_and_train_without_the_blend_weight(data_dir, tmp_path):
    # Data written before the flags were recorded: one directory lacks them, the other has them.
    old = write_shards(tmp_path / "old", n_sets=8, n_shards=1, seed=5)
    with h5py.File(old / "shard_00000.h5", "a") as h5:
        del h5["blended"]
    without = load_training_data(old)
    assert without.blended is None and without.mag is not None
    both = combine_training_data([load_training_data(data_dir), without])
    assert both.blended is None
    bright = options(bright_star_weight=5.0, bright_star_mag=20.0)
    assert object_weights(both, bright) is not None
    with pytest.raises(ValueError, match="blended_star_weight needs the blend flags"):
        object_weights(both, dataclasses.replace(bright, blended_star_weight=3.0))


def test_bright_star_weight_weights_the_loss(data_dir):
    data = load_training_data(data_dir)
    assert data.mag is not None and data.mag.shape == data.labels.shape
    weighted = options(bright_star_weight=5.0, bright_star_mag=20.0)
    weights = object_weights(data, weighted)
    bright_star = (data.labels == 0) & (data.mag < 20.0)
    assert 0 < bright_star.sum() < bright_star.size
    np.testing.assert_array_equal(weights[bright_star], 5.0)
    np.testing.assert_array_equal(weights[~bright_star], 1.0)
    assert object_weights(data, options()) is None
    # The weighted loss differs from the plain one from the first epoch, and the card says how.
    plain = train_model(data, config(), options(epochs=1))
    result = train_model(data, config(), dataclasses.replace(weighted, epochs=1))
    assert result.history[0]["train_loss"] != plain.history[0]["train_loss"]
    assert "weighted 5" in result.training["loss"]
    assert "weighted" not in plain.training["loss"]
    with pytest.raises(ValueError, match="bright_star_weight must be positive"):
        options(bright_star_weight=0.0)
    without = dataclasses.replace(data, mag=None)
    with pytest.raises(ValueError, match="true magnitudes"):
        train_model(without, config(), weighted)
    # An S/N floor leaves the stars below it at weight 1.
    floor = float(np.median(data.snr[bright_star]))
    with_floor = object_weights(data, dataclasses.replace(weighted, bright_star_snr=floor))
    np.testing.assert_array_equal(with_floor == 5.0, bright_star & (data.snr >= floor))
    assert "S/N >= " in dataclasses.replace(weighted, bright_star_snr=floor).loss_description()
    with pytest.raises(ValueError, match="detection S/N"):
        object_weights(
            dataclasses.replace(data, snr=None), dataclasses.replace(weighted, bright_star_snr=floor)
        )


def test_warm_start_names_held_out_sets_the_start_was_trained_on(data_dir, tmp_path):
    first = tmp_path / "first.pt"
    run_training(data_dir, first, config(), options(epochs=1))
    data = load_training_data(data_dir)
    messages = []
    # Another seed draws another hold-out from the same 24 sets, mostly sets the start trained on.
    result = train_model(data, config(), options(epochs=1, seed=3, init_from=first), log=messages.append)
    overlap = result.training["init_from"]["held_out_overlap"]
    held_out = set(_split_visits(24, 0.25, 3)[1]) - set(_split_visits(24, 0.25, 0)[1])
    assert overlap == len(held_out) > 0
    assert any(f"{overlap} of the 6 held-out sets" in message for message in messages)
