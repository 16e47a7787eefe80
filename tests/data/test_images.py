import io

import numpy as np
import pytest
from PIL import Image

from itsacat.data import ImageError, decode_image, to_input_column


def _decode(cases, name, **kwargs):
    return decode_image((cases / name).read_bytes(), name, **kwargs)


def _error(cases, name, **kwargs) -> ImageError:
    with pytest.raises(ImageError) as caught:
        _decode(cases, name, **kwargs)
    return caught.value


def test_exif_orientation_applied_before_resizing(cases):
    rotated = _decode(cases, "exif_rotated_6.jpg").pixels.astype(float)
    upright = _decode(cases, "exif_upright_reference.jpg").pixels.astype(float)
    assert np.abs(rotated - upright).mean() < 3.0
    # Without the rotation the picture would be transposed and differ widely.
    assert np.abs(np.transpose(rotated, (1, 0, 2)) - upright).mean() > 10.0


@pytest.mark.parametrize("name", ["gray_L.png", "palette_P_trns.png", "rgba_hidden_green.png",
                                  "cmyk.jpg", "gray16_ramp.png", "valid.webp"])
def test_every_mode_becomes_8bit_rgb(cases, name):
    decoded = _decode(cases, name)
    assert decoded.pixels.shape == (64, 64, 3)
    assert decoded.pixels.dtype == np.uint8


def test_transparent_pixels_show_white_not_hidden_colour(cases):
    source = Image.open(cases / "rgba_hidden_green.png")
    alpha = np.asarray(source.getchannel("A"))
    pixels = _decode(cases, "rgba_hidden_green.png").pixels
    hidden = alpha == 0
    assert hidden.any()
    assert (pixels[hidden] == 255).all()


def test_16bit_gray_is_scaled_not_clipped(cases):
    pixels = _decode(cases, "gray16_ramp.png").pixels
    assert pixels.min() == 0
    assert pixels.max() == 255
    # A clipped conversion would saturate most of the ramp at 255.
    assert (pixels == 255).mean() < 0.05


def test_truncated_jpeg_is_undecodable(cases):
    error = _error(cases, "truncated.jpg")
    assert (error.code, error.http_status) == ("undecodable_image", 400)
    assert error.message.startswith("truncated.jpg: the JPEG image is corrupt or truncated (")


def test_bomb_header_refused_before_decoding(cases):
    error = _error(cases, "bomb_header_65535x65535.png")
    assert (error.code, error.http_status) == ("too_many_pixels", 413)
    assert error.message == ("bomb_header_65535x65535.png: the image header declares "
                             "4,294,836,225 pixels, over the limit of 50,000,000; send a "
                             "smaller picture")


def test_pixel_limit_is_the_callers(cases):
    error = _error(cases, "exif_upright_reference.jpg", max_pixels=1000)
    assert error.message == ("exif_upright_reference.jpg: 96×64 is 6,144 pixels, over the "
                             "limit of 1,000; send a smaller picture")


def test_animated_gif_uses_first_frame_and_says_so(cases):
    decoded = _decode(cases, "animated_first_frame_blank.gif")
    assert decoded.frames == 4
    assert (decoded.pixels == decoded.pixels[0, 0]).all()


def test_format_decided_by_content_not_name(cases):
    assert _decode(cases, "valid.webp").format == "WEBP"
    renamed = decode_image((cases / "valid.webp").read_bytes(), "photo.png")
    assert renamed.format == "WEBP"


def test_heic_is_unsupported_naming_format(cases):
    error = _error(cases, "heic_named_as.png")
    assert (error.code, error.http_status) == ("unsupported_format", 415)
    assert error.message == ("heic_named_as.png: HEIC images are not supported; send one of "
                             "JPEG, PNG, GIF, WEBP, BMP, TIFF")


def test_not_an_image_is_undecodable(cases):
    error = _error(cases, "not_an_image.jpg")
    assert error.code == "undecodable_image"
    assert error.message == ("not_an_image.jpg: not a recognised image format; send one of "
                             "JPEG, PNG, GIF, WEBP, BMP, TIFF")


def test_empty_upload_says_empty(cases):
    error = _error(cases, "empty.jpg")
    assert (error.code, error.http_status) == ("empty_image", 400)
    assert error.message == ("empty.jpg: the image is empty (0 bytes); check that the file or "
                             "upload is complete")


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "GIF", "JPEG", "PNG", "WEBP"])
def test_supported_formats_decode(fmt):
    buffer = io.BytesIO()
    Image.new("RGB", (30, 20), (10, 200, 30)).save(buffer, format=fmt)
    decoded = decode_image(buffer.getvalue(), f"x.{fmt.lower()}")
    assert decoded.format == fmt
    assert decoded.original_size == (30, 20)
    assert np.abs(decoded.pixels.astype(int) - [10, 200, 30]).max() <= 8


def test_to_input_column_scales_and_flattens(cases):
    pixels = _decode(cases, "probe_gray64.png").pixels
    column = to_input_column(pixels)
    assert column.shape == (12288, 1)
    assert column == pytest.approx(np.full((12288, 1), 128 / 255))
    assert to_input_column(pixels, "float32").dtype == np.float32
