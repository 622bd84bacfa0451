"""Image loading: EXIF orientation, mode conversion and readable errors."""

import io

import numpy as np
import pytest
from PIL import Image

from ml.core.imageio import ImageLoadError, encode_jpeg, encode_png, load_image

RED, BLUE = (220, 20, 20), (20, 20, 220)


def _left_red_right_blue(width: int = 40, height: int = 20) -> Image.Image:
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:, : width // 2] = RED
    pixels[:, width // 2 :] = BLUE
    return Image.fromarray(pixels)


def _encode(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def test_exif_rotated_jpeg_comes_out_upright(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the stored image must be rotated 90° clockwise for display.
    path = tmp_path / "rotated.jpg"
    path.write_bytes(_encode(_left_red_right_blue(), "JPEG", exif=exif, quality=95))

    image = load_image(path)

    assert image.shape == (40, 20, 3) and image.dtype == np.uint8
    # Rotating clockwise puts the stored left (red) half on top.
    assert image[2, 10, 0] > 180 and image[2, 10, 2] < 80
    assert image[-3, 10, 2] > 180 and image[-3, 10, 0] < 80


def test_bytes_and_path_give_the_same_pixels(tmp_path):
    data = _encode(_left_red_right_blue(), "PNG")
    path = tmp_path / "plain.png"
    path.write_bytes(data)
    np.testing.assert_array_equal(load_image(data), load_image(path))


def test_cmyk_jpeg_converts_to_rgb():
    cmyk = Image.new("CMYK", (16, 8), (0, 255, 255, 0))  # pure red in CMYK
    image = load_image(_encode(cmyk, "JPEG", quality=95))
    assert image.shape == (8, 16, 3)
    assert image[..., 0].mean() > 200 and image[..., 1].mean() < 60 and image[..., 2].mean() < 60


def test_sixteen_bit_greyscale_png_is_scaled_to_eight_bits():
    values = np.array([[0, 32768, 65535]], dtype=np.uint16)
    image = load_image(_encode(Image.fromarray(values), "PNG"))
    assert image.shape == (1, 3, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[0, :, 0], [0, 128, 255])
    assert np.all(image[..., 0] == image[..., 2])


def test_sixteen_bit_colour_png_keeps_its_colours():
    import cv2

    bgr16 = np.zeros((4, 4, 3), dtype=np.uint16)
    bgr16[..., 2] = 65535  # red, in OpenCV's BGR order
    bgr16[..., 0] = 257 * 100
    ok, encoded = cv2.imencode(".png", bgr16)
    assert ok
    image = load_image(encoded.tobytes())
    np.testing.assert_array_equal(image[0, 0], [255, 0, 100])


def test_greyscale_becomes_three_equal_channels():
    image = load_image(_encode(Image.new("L", (5, 4), 77), "PNG"))
    assert image.shape == (4, 5, 3)
    assert np.all(image == 77)


def test_rgba_is_composited_on_white():
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    rgba.putpixel((0, 0), (10, 200, 30, 255))
    image = load_image(_encode(rgba, "PNG"))
    np.testing.assert_array_equal(image[0, 0], [10, 200, 30])
    np.testing.assert_array_equal(image[3, 3], [255, 255, 255])


def test_empty_input_is_refused(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageLoadError, match="empty"):
        load_image(path)
    with pytest.raises(ImageLoadError, match="empty"):
        load_image(b"")


def test_truncated_jpeg_is_refused():
    data = _encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)), "JPEG")
    with pytest.raises(ImageLoadError, match="damaged or truncated"):
        load_image(data[: len(data) // 2])


def test_non_image_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("this is not a photo")
    with pytest.raises(ImageLoadError, match="not an image"):
        load_image(path)


def test_missing_file_and_folder_are_refused(tmp_path):
    with pytest.raises(ImageLoadError, match="does not exist"):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(ImageLoadError, match="folder"):
        load_image(tmp_path)


def test_too_many_pixels_is_refused():
    data = _encode(Image.new("RGB", (200, 100)), "PNG")
    with pytest.raises(ImageLoadError, match="megapixels"):
        load_image(data, max_pixels=10_000)
    assert load_image(data, max_pixels=20_000).shape == (100, 200, 3)


def test_decompression_bomb_far_over_the_limit_is_refused():
    data = _encode(Image.new("L", (300, 300)), "PNG")
    with pytest.raises(ImageLoadError, match="megapixels"):
        load_image(data, max_pixels=1_000)


def test_encoders_round_trip():
    pixels = np.random.default_rng(1).integers(0, 255, (12, 10, 3), np.uint8)
    np.testing.assert_array_equal(load_image(encode_png(pixels)), pixels)
    decoded = load_image(encode_jpeg(pixels, quality=100))
    assert decoded.shape == pixels.shape
    with pytest.raises(ValueError, match="RGB uint8"):
        encode_jpeg(pixels.astype(np.float32))


def _smooth_photo(width: int, height: int) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    red = 128 + 100 * np.sin(xs / 97.0) * np.cos(ys / 131.0)
    green = 128 + 90 * np.cos(xs / 61.0 + ys / 173.0)
    blue = np.full_like(xs, 90.0) + 60 * (xs / width)
    return np.clip(np.stack([red, green, blue], axis=-1), 0, 255).astype(np.uint8)


def test_a_large_jpeg_is_decoded_at_reduced_size_with_the_same_content():
    import cv2

    from ml.core.imageio import load_image_reduced

    photo = _smooth_photo(2400, 1800)
    encoded = encode_jpeg(photo, quality=92)
    reduced, scale = load_image_reduced(encoded, min_side=400)
    assert scale == 0.25 and reduced.shape == (450, 600, 3)  # 1/4: the shorter side stays ≥ 400
    full = load_image(encoded)
    resized = cv2.resize(full, (600, 450), interpolation=cv2.INTER_AREA)
    assert np.abs(reduced.astype(int) - resized.astype(int)).mean() < 2.0
    # Photos already small, and formats without DCT scaling, come back whole.
    assert load_image_reduced(encoded, min_side=1000)[1] == 1.0
    png = _encode(Image.fromarray(photo), "PNG")
    image, scale = load_image_reduced(png, min_side=400)
    assert scale == 1.0 and image.shape == photo.shape
