"""Report photos: type judged by content, full decode, content-addressed storage, thumbnails, EXIF."""

import io
import json
from datetime import datetime, timedelta, timezone

import pillow_heif
import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from gridmap.cases.photos import (
    MB,
    PhotoNotFound,
    PhotoRejected,
    PhotoTooLarge,
    photo_file,
    store_photo,
)


def encode(image: Image.Image, fmt: str, exif: Image.Exif | None = None) -> bytes:
    if fmt == "HEIF":
        pillow_heif.register_heif_opener()
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"exif": exif} if exif is not None else {}))
    return buffer.getvalue()


def photo(size=(640, 480), colour=(120, 160, 200)) -> Image.Image:
    return Image.new("RGB", size, colour)


def dms(degrees: int, minutes: int, seconds: float) -> tuple[IFDRational, ...]:
    return IFDRational(degrees), IFDRational(minutes), IFDRational(round(seconds * 100), 100)


def exif_with(*, original=None, offset=None, stamp=None, gps=None, orientation=None) -> Image.Exif:
    exif = Image.Exif()
    details = exif.get_ifd(0x8769)
    if original:
        details[0x9003] = original
    if offset:
        details[0x9011] = offset
    if stamp:
        exif[0x0132] = stamp
    if orientation:
        exif[0x0112] = orientation
    if gps:
        exif.get_ifd(0x8825).update(gps)
    return exif


def stored_files(directory):
    return sorted(p.name for p in directory.rglob("*") if p.is_file())


def test_jpeg_exif_time_and_southern_western_position(tmp_path):
    exif = exif_with(original="2024:05:06 07:08:09", offset="+08:00",
                     gps={1: "S", 2: dms(33, 51, 54.0), 3: "W", 4: dms(151, 12, 36.0)})
    stored = store_photo(encode(photo(), "JPEG", exif), directory=tmp_path, filename="IMG_1.jpg")
    assert stored.media_type == "image/jpeg" and stored.extension == "jpg"
    assert (stored.width, stored.height) == (640, 480)
    assert stored.taken_at == datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=8)))
    assert stored.lat == pytest.approx(-(33 + 51 / 60 + 54 / 3600))
    assert stored.lon == pytest.approx(-(151 + 12 / 60 + 36 / 3600))
    values = stored.as_dict()
    assert values["taken_at"] == "2024-05-06T07:08:09+08:00"
    assert json.loads(json.dumps(values))["sha256"] == stored.sha256


def test_northern_eastern_position_and_naive_datetime_fallback(tmp_path):
    exif = exif_with(stamp="2023:12:31 23:59:58", gps={1: "N", 2: dms(25, 2, 0), 3: "E", 4: dms(121, 33, 0)})
    stored = store_photo(encode(photo(), "JPEG", exif), directory=tmp_path)
    assert stored.taken_at == datetime(2023, 12, 31, 23, 59, 58)
    assert (stored.lon, stored.lat) == pytest.approx((121 + 33 / 60, 25 + 2 / 60))


def test_malformed_exif_is_ignored(tmp_path):
    exif = exif_with(original="0000:00:00 00:00:00",
                     gps={1: "X", 2: dms(25, 2, 0), 3: "E", 4: (IFDRational(1, 0), IFDRational(0), IFDRational(0))})
    stored = store_photo(encode(photo(), "JPEG", exif), directory=tmp_path)
    assert (stored.taken_at, stored.lon, stored.lat) == (None, None, None)


def test_photo_without_exif(tmp_path):
    stored = store_photo(encode(photo(), "JPEG"), directory=tmp_path)
    assert (stored.taken_at, stored.lon, stored.lat) == (None, None, None)


@pytest.mark.parametrize(("fmt", "media_type", "extension"),
                         [("PNG", "image/png", "png"), ("WEBP", "image/webp", "webp"), ("HEIF", "image/heic", "heic")])
def test_png_webp_and_heic_are_accepted(tmp_path, fmt, media_type, extension):
    data = encode(photo((300, 200)), fmt)
    stored = store_photo(data, directory=tmp_path, filename="upload.bin")
    assert (stored.media_type, stored.extension, stored.size) == (media_type, extension, len(data))
    assert (stored.width, stored.height) == (300, 200)
    path, served_as = photo_file(tmp_path, stored.sha256)
    assert path == tmp_path / stored.sha256[:2] / f"{stored.sha256}.{extension}"
    assert path.read_bytes() == data and served_as == media_type


def test_heic_exif_is_read(tmp_path):
    exif = exif_with(original="2024:01:02 03:04:05", gps={1: "N", 2: dms(31, 14, 0), 3: "E", 4: dms(121, 28, 0)})
    stored = store_photo(encode(photo(), "HEIF", exif), directory=tmp_path)
    assert stored.taken_at == datetime(2024, 1, 2, 3, 4, 5)
    assert (stored.lon, stored.lat) == pytest.approx((121 + 28 / 60, 31 + 14 / 60))


@pytest.mark.parametrize(("data", "looks"), [
    (b"The bin on Zhongshan Road is overflowing.\n", "it looks like text"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "it looks like a PDF document"),
    (None, "it looks like a GIF image"),
    (b"\x00\x00\x00\x18ftypavif\x00\x00\x00\x00mif1miaf", "it looks like an AVIF image"),
    (b"\x00\x01\x02\x03\xfe\xfd", "unknown content"),
])
def test_other_content_named_jpg_is_refused(tmp_path, data, looks):
    data = data or encode(photo((10, 10)).convert("P"), "GIF")
    with pytest.raises(PhotoRejected) as refused:
        store_photo(data, directory=tmp_path, filename="IMG_2.jpg")
    assert str(refused.value) == f"photo 'IMG_2.jpg' is not a JPEG, PNG, WebP or HEIC image ({looks})"
    assert refused.value.status == 422
    assert stored_files(tmp_path) == []


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "HEIF"])
def test_truncated_image_is_refused(tmp_path, fmt):
    noisy = Image.effect_noise((400, 300), 60).convert("RGB")
    data = encode(noisy, fmt)
    with pytest.raises(PhotoRejected, match=r"^photo 'cut\.img' looks like a \w+ but cannot be decoded \(.+\)$"):
        store_photo(data[: len(data) // 2], directory=tmp_path, filename="cut.img")
    assert stored_files(tmp_path) == []


def test_empty_upload_is_refused(tmp_path):
    with pytest.raises(PhotoRejected, match="photo 'IMG_3.jpg' is empty"):
        store_photo(b"", directory=tmp_path, filename="IMG_3.jpg")


def test_oversized_upload_is_refused_before_decoding(tmp_path):
    data = encode(photo(), "JPEG")
    data += b"\x00" * (int(12.3 * MB) - len(data))
    with pytest.raises(PhotoTooLarge) as refused:
        store_photo(data, directory=tmp_path, filename="IMG_1.jpg")
    assert str(refused.value) == "photo 'IMG_1.jpg' is 12.3 MB; the limit is 10 MB"
    assert refused.value.status == 413 and isinstance(refused.value, PhotoRejected)
    assert stored_files(tmp_path) == []


def test_too_many_pixels_are_refused(tmp_path):
    data = encode(photo((200, 100)), "PNG")
    with pytest.raises(PhotoRejected, match=r"is 200×100 pixels; the limit is 0\.01 megapixels"):
        store_photo(data, directory=tmp_path, max_pixels=10_000)


def test_decompression_bomb_is_refused(tmp_path):
    bomb = encode(Image.new("1", (20_000, 10_000)), "PNG")  # 200 MP of zeros in a few kilobytes
    assert len(bomb) < 100_000
    with pytest.raises(PhotoRejected, match="too many pixels|megapixels"):
        store_photo(bomb, directory=tmp_path, filename="bomb.png")


def test_storing_the_same_bytes_twice_keeps_one_file(tmp_path):
    data = encode(photo(), "JPEG", exif_with(original="2024:05:06 07:08:09"))
    first = store_photo(data, directory=tmp_path, filename="a.jpg")
    second = store_photo(data, directory=tmp_path, filename="b.jpg")
    assert first == second
    assert stored_files(tmp_path) == [f"{first.sha256}.jpg", f"{first.sha256}.thumb.jpg"]


def test_thumbnail_is_a_small_jpeg(tmp_path):
    stored = store_photo(encode(photo((1000, 600)), "PNG"), directory=tmp_path)
    path, media_type = photo_file(tmp_path, stored.sha256, thumbnail=True)
    assert path.name == f"{stored.sha256}.thumb.jpg" and media_type == "image/jpeg"
    with Image.open(path) as thumbnail:
        assert thumbnail.format == "JPEG" and thumbnail.mode == "RGB"
        assert thumbnail.size == (320, 192)


def test_transparent_png_thumbnail_is_white_behind(tmp_path):
    stored = store_photo(encode(Image.new("RGBA", (50, 50), (0, 0, 0, 0)), "PNG"), directory=tmp_path)
    with Image.open(photo_file(tmp_path, stored.sha256, thumbnail=True)[0]) as thumbnail:
        assert min(thumbnail.getpixel((25, 25))) > 240


def test_rotated_photo_thumbnail_is_upright(tmp_path):
    stored_sideways = Image.new("RGB", (800, 400), "blue")
    stored_sideways.paste((255, 0, 0), (0, 0, 400, 400))  # left half red
    data = encode(stored_sideways, "JPEG", exif_with(orientation=6))  # 6: turn 90° clockwise to show
    stored = store_photo(data, directory=tmp_path)
    assert (stored.width, stored.height) == (400, 800)
    with Image.open(photo_file(tmp_path, stored.sha256, thumbnail=True)[0]) as thumbnail:
        assert thumbnail.size == (160, 320)
        top, bottom = thumbnail.getpixel((80, 40)), thumbnail.getpixel((80, 280))
    assert top[0] > 200 > top[2] and bottom[2] > 200 > bottom[0]  # the red half is now on top


@pytest.mark.parametrize("sha256", ["../etc/passwd", "../" * 21 + "a", "A" * 64, "a" * 63, "a" * 64 + "\n", ""])
def test_photo_file_refuses_malformed_hashes(tmp_path, sha256):
    with pytest.raises(PhotoNotFound, match="is not a photo id"):
        photo_file(tmp_path, sha256)


def test_photo_file_refuses_unknown_hashes(tmp_path):
    stored = store_photo(encode(photo(), "JPEG"), directory=tmp_path)
    unknown = "0" * 64
    for thumbnail in (False, True):
        with pytest.raises(PhotoNotFound, match="no (photo|thumbnail) is stored"):
            photo_file(tmp_path, unknown, thumbnail=thumbnail)
    assert photo_file(tmp_path, stored.sha256)[1] == "image/jpeg"


def test_a_big_jpeg_is_decoded_small_for_its_thumbnail_yet_checked_to_the_end(tmp_path):
    noisy = Image.effect_noise((1600, 1200), 60).convert("RGB")
    data = encode(noisy, "JPEG", exif_with(orientation=8))
    stored = store_photo(data, directory=tmp_path / "whole")
    assert (stored.width, stored.height) == (1200, 1600)  # the size in the file, upright, not the decoded one
    with Image.open(photo_file(tmp_path / "whole", stored.sha256, thumbnail=True)[0]) as thumbnail:
        assert thumbnail.size == (240, 320)
    for cut in (len(data) // 2, len(data) - 200):
        with pytest.raises(PhotoRejected, match="looks like a JPEG but cannot be decoded"):
            store_photo(data[:cut], directory=tmp_path / "cut", filename="cut.jpg")
    assert not (tmp_path / "cut").exists()
