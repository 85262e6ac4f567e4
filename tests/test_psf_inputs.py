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

"""Tests of the PSF-aware inputs: one path for training and the task, and the task's PSF checks."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from astropy.time import Time
from lsst.images import MaskedImage
from lsst.meas.contextnet.classifier import ContextNetClassifierTask
from lsst.meas.contextnet.errors import MissingPsfError
from lsst.meas.contextnet.model import ContextNetConfig, build_model
from lsst.meas.contextnet.modelio import export_model
from lsst.meas.contextnet.psfinputs import (
    embed_kernel,
    evaluate_psf_grid,
    interpolate_psf,
    model_inputs,
    needs_psf,
    psf_fit_offsets,
    psf_flux,
    psf_grid_images,
    shift_images,
    subpixel_offsets,
)
from lsst.meas.contextnet.sim.exposure import SimulationConfig, simulate_exposure
from lsst.meas.contextnet.sim.psf import PSF_MODEL_STAMP_SIZE, PsfField
from lsst.meas.contextnet.sim.repo import LEGACY_MASK_PLANE_NAMES, MASK_PLANES, make_visit_image

NORMALIZATION = {"kind": "asinh_noise", "softening": 3.0}
TINY_PSF = {
    "architecture": "tiny-psf",
    "cutout_size": 16,
    "m": 8,
    "conv_channels": (3,),
    "kernel_size": 3,
    "n_local": 4,
    "global_widths": (8,),
    "predict_widths": (4,),
    "inputs": ("image", "psf"),
    "global_kind": "pool",
}


def _visit_image(exposure, psf_field: PsfField):
    masks = {
        name: (exposure.mask & (1 << bit)) != 0
        for name, bit in exposure.mask_planes.items()
        if name in MASK_PLANES or name in LEGACY_MASK_PLANE_NAMES
    }
    return make_visit_image(
        exposure.image,
        exposure.variance,
        masks,
        exposure.wcs,
        psf_field.to_piff(),
        visit=1,
        detector=0,
        band="r",
        exposure_time_s=30.0,
        begin=Time("2026-03-01T03:00:00", scale="tai"),
    )


@pytest.fixture(scope="module")
def simulated():
    exposure = simulate_exposure(SimulationConfig(size=512, density_scale=4.0), 1, 0, 21)
    return exposure, _visit_image(exposure, exposure.psf_field)


@pytest.fixture(scope="module")
def psf_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with torch.random.fork_rng():
        torch.manual_seed(4)
        module = build_model(ContextNetConfig(**TINY_PSF))
    path = tmp_path_factory.mktemp("psfmodel") / "tiny_psf.pt"
    export_model(module, path, {"training": {"data": "none: random initialization for tests"}, "psf_grid": 5})
    return path


def test_embed_kernel_centres_and_normalizes():
    kernel = np.zeros((5, 5))
    kernel[2, 2] = 2.0
    kernel[2, 3] = 2.0
    image = embed_kernel(kernel, 8)
    assert image.shape == (8, 8) and image.sum() == pytest.approx(1.0)
    assert image[4, 4] == pytest.approx(0.5) and image[4, 5] == pytest.approx(0.5)
    cropped = embed_kernel(np.ones((25, 25)), 12)
    assert cropped.shape == (12, 12) and np.allclose(cropped, 1 / 144)
    with pytest.raises(ValueError, match="odd side"):
        embed_kernel(np.ones((4, 4)), 8)


def test_grid_interpolation_reproduces_nodes_and_is_accurate_between():
    field = PsfField.from_rng(np.random.default_rng(3), 1024, 1024, fwhm_range=(0.6, 1.0))
    half = PSF_MODEL_STAMP_SIZE // 2
    grid = evaluate_psf_grid(lambda x, y: field.kernel_image(x, y, half), 1024, 1024, 28, 5)
    nodes = np.linspace(0, 1023, 5)
    at_nodes = interpolate_psf(grid, nodes[[0, 2, 4]], nodes[[1, 3, 0]], 1024, 1024)
    np.testing.assert_allclose(at_nodes[0], grid[1, 0], atol=1e-7)
    np.testing.assert_allclose(at_nodes[2], grid[0, 4], atol=1e-7)
    x, y = np.array([100.0, 600.0, 900.0]), np.array([300.0, 50.0, 1000.0])
    between = interpolate_psf(grid, x, y, 1024, 1024)
    direct = np.stack([embed_kernel(field.kernel_image(a, b, half), 28) for a, b in zip(x, y)])
    assert np.max(np.abs(between - direct)) < 0.01 * direct.max()


def test_shift_and_flux_fit():
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(3, 16, 16)).astype(np.float32)
    shifted = shift_images(images, np.array([1.0, 0.0, -2.0]), np.array([0.0, 1.0, 0.0]))
    np.testing.assert_allclose(shifted[0], np.roll(images[0], 1, axis=1), atol=1e-5)
    np.testing.assert_allclose(shifted[1], np.roll(images[1], 1, axis=0), atol=1e-5)
    np.testing.assert_allclose(shifted[2], np.roll(images[2], -2, axis=1), atol=1e-5)
    psf = images / images.sum(axis=(1, 2), keepdims=True)
    bad = np.zeros(psf.shape, dtype=bool)
    bad[:, 0, :] = True
    cutouts = np.where(bad, 0.0, 250.0 * psf)
    np.testing.assert_allclose(psf_flux(cutouts, bad, psf), 250.0, rtol=1e-6)
    dx, dy = subpixel_offsets(np.array([3.4, 7.5]), np.array([-0.6, 2.0]))
    np.testing.assert_allclose(dx, [0.4, -0.5]) and np.testing.assert_allclose(dy, [0.4, 0.0])


def test_psf_channel_matches_stars_not_galaxies(simulated):
    exposure, _ = simulated
    field = exposure.psf_field
    grid = evaluate_psf_grid(lambda x, y: field.kernel_image(x, y, 12), 512, 512, 28, 5)
    truth = exposure.truth
    detected = truth[truth["sourceId"] >= 0]
    src = exposure.src
    index = {int(s): i for i, s in enumerate(src["sourceId"])}
    rows = np.array([index[int(s)] for s in detected["sourceId"]])
    x, y = np.asarray(src["x"])[rows], np.asarray(src["y"])[rows]
    from lsst.meas.contextnet.cutouts import extract_cutouts

    cut = extract_cutouts(exposure.image, x, y, 28, variance=exposure.variance)
    dx, dy = subpixel_offsets(x, y)
    inputs = model_inputs(
        cut.cutouts,
        exposure.noise_sigma,
        NORMALIZATION,
        ("image", "psf"),
        bad=cut.bad,
        psf=interpolate_psf(grid, x, y, 512, 512),
        dx=dx,
        dy=dy,
    )
    assert inputs.shape == (len(rows), 2, 28, 28) and inputs.dtype == np.float32
    core = (inputs[:, 0, 11:17, 11:17] - inputs[:, 1, 11:17, 11:17]) ** 2
    residual = core.mean(axis=(1, 2))
    bright = (np.asarray(detected["mag"]) < 22) & ~cut.edge
    galaxy = np.asarray(detected["is_galaxy"], dtype=bool)
    assert np.count_nonzero(bright & galaxy) >= 3 and np.count_nonzero(bright & ~galaxy) >= 3
    assert np.median(residual[bright & ~galaxy]) < 0.5 * np.median(residual[bright & galaxy])
    with pytest.raises(ValueError, match="PSF images"):
        model_inputs(cut.cutouts, exposure.noise_sigma, NORMALIZATION, ("image", "psf"))


def test_task_psf_grid_equals_the_training_path(simulated, psf_model):
    exposure, visit_image = simulated
    task = ContextNetClassifierTask(config=_config(psf_model))
    loaded = task.load_model()
    x = np.array([10.0, 128.3, 250.0])
    y = np.array([5.0, 99.7, 200.0])
    from_task = psf_grid_images(
        task._psf_kernels(visit_image.psf, visit_image.detector.bbox, loaded), loaded.cutout_size
    )
    half = PSF_MODEL_STAMP_SIZE // 2
    grid = evaluate_psf_grid(
        lambda px, py: exposure.psf_field.kernel_image(px, py, half), 512, 512, loaded.cutout_size, 5
    )
    np.testing.assert_allclose(
        interpolate_psf(from_task, x, y, 512, 512), interpolate_psf(grid, x, y, 512, 512), atol=2e-6
    )


def _config(model: Path):
    config = ContextNetClassifierTask.ConfigClass()
    config.modelPath = str(model)
    config.device = "cpu"
    return config


def test_psf_reaches_the_model_and_a_missing_psf_is_an_error(simulated, psf_model):
    exposure, visit_image = simulated
    task = ContextNetClassifierTask(config=_config(psf_model))
    first = task.run(visit_image, exposure.src, seed=1).classification
    probability = np.asarray(first["classification_galaxyProb"])
    assert len(first) == len(exposure.src) and np.all(np.isfinite(probability[~first["classification_flag"]]))
    assert task.metadata["timing.psf"] > 0.0 and task.metadata["n_sets"] == 1
    wider = PsfField(512, 512, *(exposure.psf_field.coefficients * np.array([[1.6], [1], [1]])))
    other = task.run(_visit_image(exposure, wider), exposure.src, seed=1).classification
    assert not np.allclose(probability, np.asarray(other["classification_galaxyProb"]))
    no_psf = MaskedImage(visit_image.image, mask=visit_image.mask, variance=visit_image.variance)
    with pytest.raises(MissingPsfError, match="needs the exposure's PSF model"):
        task.run(no_psf, exposure.src, seed=1)


def test_shift_commutes_with_transposition():
    # Even side: the Nyquist frequencies of both axes are shifted alike, so shifting by (dx, dy)
    # and transposing is shifting the transposed images by (dy, dx).
    rng = np.random.default_rng(1)
    images = rng.uniform(size=(4, 28, 28)).astype(np.float32)
    dx, dy = np.array([0.3, -0.45, 0.5, 0.1]), np.array([-0.2, 0.25, 0.0, 0.4])
    shifted = shift_images(images, dx, dy)
    transposed = shift_images(images.transpose(0, 2, 1), dy, dx).transpose(0, 2, 1)
    np.testing.assert_allclose(shifted, transposed, atol=1e-5)


def test_psf_flux_of_a_star_at_the_edge_counts_the_zeros_beyond_it(simulated, psf_model):
    # A noiseless star drawn as the PSF model, 2 px from the left edge (10 of its cutout's 16
    # columns in the image) and inside. Inside, the PSF channel equals the image channel; at the
    # edge the fit counts the cutout's zeros beyond the image, so the PSF image is scaled by
    # sum(p**2 in the image) / sum(p**2): the choice that classified edge sources best on the
    # validation split (psfinputs.psf_channel, results page "Sources at the image's edge").
    exposure, _ = simulated
    field = exposure.psf_field
    half = PSF_MODEL_STAMP_SIZE // 2
    image = np.zeros_like(exposure.image)
    xs, y = (2, 256), 200
    for x in xs:
        stamp = 5000.0 * field.kernel_image(x, y, half)
        left = x - half
        image[y - half : y + half + 1, max(left, 0) : x + half + 1] = stamp[:, max(-left, 0) :]
    clean = SimpleNamespace(
        image=image,
        variance=np.ones_like(exposure.variance),
        mask=np.zeros_like(exposure.mask),
        mask_planes=exposure.mask_planes,
        wcs=exposure.wcs,
    )
    task = ContextNetClassifierTask(config=_config(psf_model))
    loaded = task.load_model()
    table = exposure.src[:2].copy()
    table["x"], table["y"] = np.array(xs, dtype=float), np.full(2, float(y))
    prepared = task.prepare_inputs(_visit_image(clean, field), table, loaded)
    assert prepared.valid.all() and prepared.cutouts.n_inside.tolist() == [160, 256]
    image_channel, psf_channel = prepared.inputs[1]
    assert np.max(np.abs(image_channel - psf_channel)) < 0.01 * image_channel.max()
    # Undo the stretch: the PSF images times the fitted fluxes.
    model = np.sinh(prepared.inputs[:, 1]) * prepared.noise_sigma * NORMALIZATION["softening"]
    psf = model[1] / model[1].sum()
    expected = np.sum(psf[:, 6:] ** 2) / np.sum(psf**2)
    assert expected < 0.95
    assert model[0].sum() / model[1].sum() == pytest.approx(expected, abs=0.01)


def test_model_inputs_are_their_channels_exactly() -> None:
    from lsst.meas.contextnet.cutouts import normalize_cutouts
    from lsst.meas.contextnet.psfinputs import psf_channel

    rng = np.random.default_rng(21)
    for n in (0, 7):
        cutouts = rng.normal(0.0, 5.0, (n, 15, 15)).astype(np.float32)
        bad = rng.uniform(size=cutouts.shape) < 0.05
        psf = rng.uniform(0.0, 1.0, cutouts.shape).astype(np.float32)
        psf /= psf.sum(axis=(1, 2), keepdims=True) if n else 1.0
        dx, dy = rng.uniform(-0.5, 0.5, n), rng.uniform(-0.5, 0.5, n)
        kept = psf.copy()
        for sigma in (3.0, rng.uniform(1.0, 4.0, n)):
            image_only = model_inputs(cutouts, sigma, NORMALIZATION, ("image",))
            assert image_only.shape == (n, 1, 15, 15)
            np.testing.assert_array_equal(image_only[:, 0], normalize_cutouts(cutouts, sigma, 3.0))
            both = model_inputs(
                cutouts, sigma, NORMALIZATION, ("image", "psf"), bad=bad, psf=psf, dx=dx, dy=dy
            )
            np.testing.assert_array_equal(both[:, 0], image_only[:, 0])
            np.testing.assert_array_equal(both[:, 1], psf_channel(cutouts, bad, psf, dx, dy, sigma, 3.0))
        np.testing.assert_array_equal(psf, kept)  # the PSF images are left as they were
        for inputs in (("image", "psf", "psf_peak"), ("image", "psf_peak")):
            channels = model_inputs(cutouts, 3.0, NORMALIZATION, inputs, bad=bad, psf=psf, dx=dx, dy=dy)
            assert channels.shape == (n, len(inputs), 15, 15)
            px, py = psf_fit_offsets(cutouts, psf)
            peak = psf_channel(cutouts, bad, psf, px, py, 3.0, 3.0)
            np.testing.assert_array_equal(channels[:, -1], peak)
            if n:
                assert not np.array_equal(peak, psf_channel(cutouts, bad, psf, dx, dy, 3.0, 3.0))
    unordered = (("image", "psf_peak", "psf"), ("image", "x"))
    for wrong in (("image", "image"), ("psf",), ("psf", "image"), *unordered, ()):
        with pytest.raises(ValueError, match="model inputs"):
            model_inputs(cutouts, 3.0, NORMALIZATION, wrong)
    assert needs_psf(("image", "psf_peak")) and needs_psf(("image", "psf")) and not needs_psf(("image",))


def test_psf_fit_stays_on_a_blended_star_where_the_centroid_moves() -> None:
    field = PsfField.from_rng(np.random.default_rng(5), 1024, 1024, fwhm_range=(0.9, 1.0))
    kernel = embed_kernel(field.kernel_image(500, 500, PSF_MODEL_STAMP_SIZE // 2), 28).astype(np.float32)
    shifts = np.array([[0.0, 0.0], [1.3, -0.7], [-2.6, 2.2], [0.45, 3.0]])
    psf = np.repeat(kernel[None], len(shifts), axis=0)
    stars = 1000.0 * shift_images(psf, shifts[:, 0], shifts[:, 1])
    px, py = psf_fit_offsets(stars, psf)
    np.testing.assert_allclose(px, shifts[:, 0], atol=0.05)
    np.testing.assert_allclose(py, shifts[:, 1], atol=0.05)
    # A star at the centre with a neighbour of 60% of its flux, broader and 6 px away: the flux
    # centroid moves 2.2 px towards it, the PSF's best fit less than half as far.
    yy, xx = np.mgrid[:28, :28]
    neighbour = np.exp(-((xx - 20.0) ** 2 + (yy - 14.0) ** 2) / (2 * 3.0**2))
    blend = (stars[0] + 600.0 * neighbour / neighbour.sum())[None].astype(np.float32)
    centroid = float(np.sum(blend[0] * xx) / blend[0].sum()) - 14.0
    fx, fy = psf_fit_offsets(blend, psf[:1])
    assert centroid > 2.0 and 0.0 < fx[0] < 0.5 * centroid and abs(fy[0]) < 0.05
    # A source beyond the search radius: the fit ends at the radius (plus half a pixel at most).
    far = 1000.0 * shift_images(psf[:1], np.array([6.0]), np.array([0.0]))
    fx, _ = psf_fit_offsets(far, psf[:1], radius=2)
    assert 2.0 <= fx[0] <= 2.5
    assert [len(a) for a in psf_fit_offsets(stars[:0], psf[:0])] == [0, 0]
    # No flux (or only bad pixels, which the cutouts hold as 0): the centre, not a corner.
    fx, fy = psf_fit_offsets(np.zeros_like(stars[:2]), psf[:2])
    assert fx.tolist() == [0.0, 0.0] and fy.tolist() == [0.0, 0.0]
    # The best-fitting placement needs no centroid offsets.
    channels = model_inputs(stars, 3.0, NORMALIZATION, ("image", "psf_peak"), psf=psf)
    assert channels.shape == (4, 2, 28, 28)
    with pytest.raises(ValueError, match="sub-pixel offsets"):
        model_inputs(stars, 3.0, NORMALIZATION, ("image", "psf"), psf=psf)
    with pytest.raises(ValueError, match="radius"):
        psf_fit_offsets(stars, psf, radius=14)
