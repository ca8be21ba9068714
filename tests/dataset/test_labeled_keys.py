"""A labeled source by key: listings and fingerprints, local and on S3, and init image resizing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from synthgen.inputs.labeled_keys import fit, init_pixels, list_labeled, read_keyed
from tests.helpers.init_sources import digits_folder
from tests.helpers.s3server import BUCKET


def test_an_image_folder_on_s3_lists_and_reads_like_the_local_one(tmp_path: Path, s3) -> None:
    local = digits_folder(tmp_path / "real", per_class=3)
    s3.fs.put(str(local) + "/", f"{BUCKET}/real", recursive=True)
    here, there = list_labeled(str(local), {}), list_labeled(f"s3://{BUCKET}/real", {})
    assert there.class_names == here.class_names == ("0", "1", "2")
    assert there.keys == here.keys and here.keys[1] == ("1/000.png", "1/001.png", "1/002.png")
    assert there.fingerprint != here.fingerprint, "ETags on S3, mtimes here"
    keys = ["2/001.png", "0/000.png"]
    images_here, images_there = read_keyed(str(local), {}, keys), read_keyed(f"s3://{BUCKET}/real", {}, keys)
    assert images_here == images_there == {k: (local / k).read_bytes() for k in keys}


def test_a_changed_object_on_s3_changes_the_fingerprint(tmp_path: Path, s3) -> None:
    local = digits_folder(tmp_path / "real", per_class=2)
    s3.fs.put(str(local) + "/", f"{BUCKET}/real", recursive=True)
    before = list_labeled(f"s3://{BUCKET}/real", {}).fingerprint
    other = (local / "1" / "000.png").read_bytes()
    s3.fs.pipe(f"{BUCKET}/real/0/000.png", other)
    assert list_labeled(f"s3://{BUCKET}/real", {}).fingerprint != before


def test_resize_modes_keep_what_they_promise() -> None:
    wide = Image.fromarray(np.tile(np.arange(40, dtype=np.uint8)[None, :] * 6, (20, 1)))  # 40x20
    assert fit(wide, (10, 10), "center-crop").size == (10, 10)
    padded = np.asarray(fit(wide, (10, 10), "pad"))
    assert padded.shape == (10, 10) and padded[0].max() == 0 and padded[5].max() > 0, "black bands"
    assert fit(wide, (8, 16), "stretch").size == (8, 16)
    pixels = init_pixels([wide.convert("RGB"), wide], (8, 8), 1, "center-crop")
    assert pixels.shape == (2, 1, 8, 8) and pixels.dtype == np.float32
    assert pixels.min() >= -1.0 and pixels.max() <= 1.0
    assert np.allclose(pixels[0], pixels[1], atol=1 / 127.5)
