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

"""Tests of the word-at-a-time mask merge against the plane-by-plane merge of ``lsst.images``."""

import numpy as np
import pytest
from lsst.images import Box, Mask, MaskPlane, MaskSchema, get_legacy_visit_image_mask_planes
from lsst.meas.contextnet.maskmerge import install_mask_merge, merge_masks


def plane_by_plane(target: Mask, source: Mask) -> None:
    """The merge of ``lsst.images``: one plane at a time."""
    install_mask_merge()
    Mask._update_plane_by_plane(target, source)


def stored_words(schema: MaskSchema, bbox: Box, rng: np.random.Generator) -> list[Mask]:
    """Random masks in the 32-bit words a FITS file stores (one 2-d mask per word)."""
    words = []
    for schema_2d in schema.split(np.int32):
        array = rng.integers(0, 2**31, size=bbox.shape + (1,), dtype=np.int64).astype(np.int32)
        array[rng.random(bbox.shape) < 0.3] = -1  # every bit set, the sign bit included
        words.append(Mask(array, schema=schema_2d, bbox=bbox))
    return words


def merged(
    schema: MaskSchema, bbox: Box, sources: list[Mask], merge, start: np.ndarray | None = None
) -> Mask:
    target = Mask(0, schema=schema, bbox=bbox)
    if start is not None:
        target.array[...] = start
    for source in sources:
        merge(target, source)
    return target


LEGACY = MaskSchema(get_legacy_visit_image_mask_planes().values())
# 40 planes: several source words, planes that change word and shift.
WIDE = MaskSchema([MaskPlane(f"P{i}", f"plane {i}") for i in range(40)])


@pytest.mark.parametrize("schema", [LEGACY, WIDE], ids=["visit-image planes", "40 planes"])
def test_merge_equals_plane_by_plane(schema):
    rng = np.random.default_rng(3)
    bbox = Box.factory[0:37, 0:53]
    sources = stored_words(schema, bbox, rng)
    start = rng.integers(0, 256, size=bbox.shape + (schema.mask_size,)).astype(schema.dtype)
    expected = merged(schema, bbox, sources, plane_by_plane, start)
    result = merged(schema, bbox, sources, merge_masks, start)
    np.testing.assert_array_equal(result.array, expected.array)
    # Bits only set, never cleared; the random words set every plane somewhere.
    assert np.all(result.array & start == start)
    assert all(result.get(name).any() for name in schema.names)


def test_merge_of_overlapping_and_disjoint_boxes():
    rng = np.random.default_rng(4)
    target_box = Box.factory[10:40, 20:50]
    source_box = Box.factory[0:25, 35:70]
    sources = stored_words(LEGACY, source_box, rng)
    expected = merged(LEGACY, target_box, sources, plane_by_plane)
    result = merged(LEGACY, target_box, sources, merge_masks)
    np.testing.assert_array_equal(result.array, expected.array)
    assert result.array[:15, 15:].any() and not result.array[15:].any() and not result.array[:, :15].any()
    far = stored_words(LEGACY, Box.factory[100:110, 100:110], rng)
    np.testing.assert_array_equal(merged(LEGACY, target_box, far, merge_masks).array, 0)


def test_planes_in_one_mask_only_are_left_alone():
    rng = np.random.default_rng(5)
    bbox = Box.factory[0:8, 0:9]
    source_schema = MaskSchema([MaskPlane("A", "a"), MaskPlane("ONLY_SOURCE", "x"), MaskPlane("B", "b")])
    target_schema = MaskSchema([MaskPlane("B", "b"), MaskPlane("ONLY_TARGET", "y"), MaskPlane("A", "a")])
    sources = stored_words(source_schema, bbox, rng)
    result = merged(target_schema, bbox, sources, merge_masks)
    np.testing.assert_array_equal(result.array, merged(target_schema, bbox, sources, plane_by_plane).array)
    assert not result.get("ONLY_TARGET").any()
    np.testing.assert_array_equal(result.get("A"), sources[0].get("A"))


def test_install_makes_update_merge_by_words():
    install_mask_merge()
    install_mask_merge()  # idempotent: the original stays reachable
    assert Mask._update_plane_by_plane is not Mask.update
    rng = np.random.default_rng(6)
    bbox = Box.factory[0:16, 0:16]
    sources = stored_words(LEGACY, bbox, rng)
    np.testing.assert_array_equal(
        merged(LEGACY, bbox, sources, Mask.update).array, merged(LEGACY, bbox, sources, plane_by_plane).array
    )


def test_merge_into_stored_words():
    """Writing splits a mask into 32-bit words with the same merge: one-byte words into wider ones."""
    rng = np.random.default_rng(8)
    bbox = Box.factory[0:12, 0:10]
    for schema in (LEGACY, WIDE):
        source = Mask(0, schema=schema, bbox=bbox)
        source.array[...] = rng.integers(0, 256, size=source.array.shape).astype(source.array.dtype)
        for schema_2d in schema.split(np.int32):
            result = merged(schema_2d, bbox, [source], merge_masks)
            np.testing.assert_array_equal(
                result.array, merged(schema_2d, bbox, [source], plane_by_plane).array
            )
            assert all(np.array_equal(result.get(name), source.get(name)) for name in schema_2d.names)


def test_words_not_in_native_byte_order():
    rng = np.random.default_rng(7)
    bbox = Box.factory[0:9, 0:11]
    sources = stored_words(LEGACY, bbox, rng)
    swapped = [Mask(m.array.astype(">i4"), schema=m.schema, bbox=bbox) for m in sources]
    np.testing.assert_array_equal(
        merged(LEGACY, bbox, swapped, merge_masks).array, merged(LEGACY, bbox, sources, plane_by_plane).array
    )


def test_placeholders_and_non_contiguous_words():
    """Placeholders move planes off byte boundaries (the shift path); strided words are not viewed."""
    rng = np.random.default_rng(9)
    bbox = Box.factory[0:7, 0:1]
    planes = [MaskPlane(f"P{i}", f"plane {i}") for i in range(12)]
    target_schema = MaskSchema([None, None, *planes[:5], None, *planes[5:]])
    sources = stored_words(LEGACY, bbox, rng) + stored_words(MaskSchema(planes), bbox, rng)
    sources.append(
        Mask(np.asfortranarray(sources[-1].array[::-1])[::-1], schema=sources[-1].schema, bbox=bbox)
    )
    for schema in (target_schema, LEGACY):
        expected = merged(schema, bbox, sources, plane_by_plane)
        np.testing.assert_array_equal(merged(schema, bbox, sources, merge_masks).array, expected.array)
