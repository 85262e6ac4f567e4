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

"""Tests of model export and loading."""

import hashlib
import json
import warnings

import numpy as np
import pytest
import torch
from lsst.meas.contextnet.cutouts import DEFAULT_NORMALIZATION
from lsst.meas.contextnet.ensemble import ensemble_predict
from lsst.meas.contextnet.model import ContextNetConfig, build_model
from lsst.meas.contextnet.modelio import (
    FORMAT_VERSION,
    METADATA_NAME,
    LoadedModel,
    ModelFileError,
    code_version,
    export_model,
    load_model,
    resolve_device,
)
from lsst.meas.contextnet.version import __version__

TINY = {"m": 7, "global_widths": (16, 16), "predict_widths": (8,), "n_local": 5, "conv_channels": (4, 6)}


def make_model(name: str = "light", seed: int = 0):
    torch.manual_seed(seed)
    return build_model(ContextNetConfig.preset(name, **TINY)).eval()


def inputs(n_sets: int = 2, m: int = 7):
    gen = torch.Generator().manual_seed(3)
    return torch.randn(n_sets, m, 1, 28, 28, generator=gen), torch.rand(n_sets, m, 2, generator=gen) * 2 - 1


def save_raw(path, extra_files):
    """Write a scripted model with arbitrary extra files (bypassing export_model's checks)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(make_model()), str(path), _extra_files=extra_files)


@pytest.mark.parametrize("name", ["paper", "light", "local-only"])
def test_round_trip_matches_eager(tmp_path, name):
    model = make_model(name)
    path = tmp_path / "sub" / "model.pt"
    written = export_model(
        model, path, {"training": {"seed": 5}, "metrics": {"validation": {"accuracy": 0.9}}}
    )
    loaded = load_model(path, device="cpu")
    assert isinstance(loaded, LoadedModel)
    assert loaded.device == torch.device("cpu")
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.metadata == written
    meta = loaded.metadata
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["cutout_size"] == 28 and meta["m"] == 7 and loaded.m == 7 and loaded.cutout_size == 28
    assert meta["architecture"] == name
    assert ContextNetConfig.from_dict(meta["config"]) == model.config
    assert meta["normalization"] == DEFAULT_NORMALIZATION
    assert meta["training"] == {"seed": 5}
    assert meta["metrics"]["validation"]["accuracy"] == 0.9
    assert meta["weights_dtype"] == "float32"
    assert meta["code_version"].startswith(__version__)
    cutouts, positions = inputs()
    with torch.no_grad():
        torch.testing.assert_close(
            loaded.module(cutouts, positions), model(cutouts, positions), rtol=0, atol=0
        )
        features = loaded.module.local_features(cutouts.reshape(-1, 1, 28, 28), positions.reshape(-1, 2))
        expected = model.local_features(cutouts.reshape(-1, 1, 28, 28), positions.reshape(-1, 2))
        torch.testing.assert_close(features, expected, rtol=0, atol=0)
        sets = features.reshape(2, 7, -1)
        torch.testing.assert_close(loaded.module.predict_sets(sets), model.predict_sets(sets), rtol=0, atol=0)
    assert not loaded.module.training


def test_export_does_not_modify_module_and_metadata_overrides(tmp_path):
    model = make_model().train()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    custom = {"kind": "asinh_noise", "softening": 2.0}
    export_model(model, tmp_path / "m.pt", {"normalization": custom}, weights_dtype="float16")
    assert model.training
    for key, value in model.state_dict().items():
        assert value.dtype == torch.float32
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    assert load_model(tmp_path / "m.pt", "cpu").metadata["normalization"] == custom


def test_float16_storage(tmp_path):
    torch.manual_seed(0)
    model = build_model(ContextNetConfig.preset("light", **{**TINY, "global_widths": (256, 256)})).eval()
    export_model(model, tmp_path / "f32.pt")
    export_model(model, tmp_path / "f16.pt", weights_dtype="float16")
    size32 = (tmp_path / "f32.pt").stat().st_size
    size16 = (tmp_path / "f16.pt").stat().st_size
    assert size16 < 0.6 * size32
    loaded = load_model(tmp_path / "f16.pt", "cpu")
    assert loaded.metadata["weights_dtype"] == "float16"
    assert all(p.dtype == torch.float32 for p in loaded.module.parameters())
    cutouts, positions = inputs()
    with torch.no_grad():
        torch.testing.assert_close(
            loaded.module(cutouts, positions), model(cutouts, positions), rtol=0, atol=2e-3
        )


def test_loaded_model_works_with_ensemble(tmp_path):
    model = make_model()
    export_model(model, tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt", "auto")
    rng = np.random.default_rng(0)
    cutouts = rng.normal(size=(20, 28, 28)).astype(np.float32)
    positions = rng.uniform(-1, 1, (20, 2)).astype(np.float32)
    from_file = ensemble_predict(loaded, cutouts, positions, 2, seed=4)
    eager = ensemble_predict(model, cutouts, positions, 2, seed=4)
    np.testing.assert_allclose(from_file.mean, eager.mean, rtol=0, atol=1e-6)


def test_no_torchscript_warning_escapes(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        export_model(make_model(), tmp_path / "m.pt")
        load_model(tmp_path / "m.pt", "cpu")
    assert not [w for w in caught if issubclass(w.category, FutureWarning)]


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="not found") as info:
        load_model(tmp_path / "absent.pt", "cpu")
    assert "absent.pt" in str(info.value)
    assert isinstance(info.value, RuntimeError)


@pytest.mark.parametrize("content", [b"", b"not a model at all" * 50])
def test_corrupt_file(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match="not a readable TorchScript model") as info:
        load_model(path, "cpu")
    assert str(path) in str(info.value)


def test_truncated_file(tmp_path):
    path = tmp_path / "m.pt"
    export_model(make_model(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="not a readable TorchScript model"):
        load_model(path, "cpu")


def test_missing_metadata(tmp_path):
    path = tmp_path / "m.pt"
    save_raw(path, {})
    with pytest.raises(ModelFileError, match=f"no {METADATA_NAME} metadata"):
        load_model(path, "cpu")


def test_invalid_metadata(tmp_path):
    path = tmp_path / "m.pt"
    save_raw(path, {METADATA_NAME: "{not json"})
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load_model(path, "cpu")
    save_raw(path, {METADATA_NAME: "[1, 2]"})
    with pytest.raises(ModelFileError, match="JSON object"):
        load_model(path, "cpu")
    good = {"format_version": 1, "cutout_size": 28, "m": 7, "normalization": dict(DEFAULT_NORMALIZATION)}
    save_raw(path, {METADATA_NAME: json.dumps({**good, "m": 0})})
    with pytest.raises(ModelFileError, match="'m' must be a positive integer"):
        load_model(path, "cpu")
    save_raw(path, {METADATA_NAME: json.dumps({key: v for key, v in good.items() if key != "normalization"})})
    with pytest.raises(ModelFileError, match="normalization"):
        load_model(path, "cpu")
    for inputs, message in ((["image", "mask"], "unknown channels"), (["image", "psf_peak", "psf"], "order")):
        save_raw(path, {METADATA_NAME: json.dumps({**good, "inputs": inputs})})
        with pytest.raises(ModelFileError, match=message):
            load_model(path, "cpu")
    save_raw(path, {METADATA_NAME: json.dumps(good)})
    assert load_model(path, "cpu").m == 7


@pytest.mark.parametrize("version", [2, 0, None, "1"])
def test_unsupported_format_version(tmp_path, version):
    path = tmp_path / "m.pt"
    metadata = {
        "format_version": version,
        "cutout_size": 28,
        "m": 7,
        "normalization": {"kind": "asinh_noise"},
    }
    save_raw(path, {METADATA_NAME: json.dumps(metadata)})
    with pytest.raises(ModelFileError, match="unsupported model format_version"):
        load_model(path, "cpu")


def test_module_without_required_methods(tmp_path):
    path = tmp_path / "m.pt"
    metadata = {"format_version": 1, "cutout_size": 28, "m": 7, "normalization": {"kind": "asinh_noise"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(
            torch.jit.script(torch.nn.Linear(2, 2)),
            str(path),
            _extra_files={METADATA_NAME: json.dumps(metadata)},
        )
    with pytest.raises(ModelFileError, match="lacks the required methods"):
        load_model(path, "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_requested_without_gpu(tmp_path, device):
    path = tmp_path / "m.pt"
    export_model(make_model(), path)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        load_model(path, device)
    assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_load_on_cuda(tmp_path):
    path = tmp_path / "m.pt"
    model = make_model()
    export_model(model, path)
    loaded = load_model(path, "cuda")
    assert loaded.device.type == "cuda"
    assert next(loaded.module.parameters()).is_cuda
    cutouts, positions = inputs()
    with torch.no_grad():
        torch.testing.assert_close(
            loaded.module(cutouts.cuda(), positions.cuda()).cpu(),
            model(cutouts, positions),
            rtol=1e-4,
            atol=1e-5,
        )


def test_bad_device_and_export_arguments(tmp_path):
    with pytest.raises(ValueError, match="device"):
        resolve_device("gpu")
    with pytest.raises(ValueError, match="unsupported device"):
        resolve_device("meta")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="weights_dtype"):
        export_model(make_model(), tmp_path / "m.pt", weights_dtype="int8")
    with pytest.raises(ValueError, match="JSON-serializable"):
        export_model(make_model(), tmp_path / "m.pt", {"training": {"when": object()}})
    with pytest.raises(ValueError, match="format_version|positive integer"):
        export_model(torch.nn.Linear(2, 2), tmp_path / "m.pt")
    assert not (tmp_path / "m.pt").exists()


def test_code_version_names_package_version():
    assert code_version().startswith(__version__)
