"""Photos attached to field reports (上报照片): checked, stored by content, thumbnailed, EXIF read.

Inspectors upload photos from phones. An upload is judged by its bytes only — never by its file
name or declared content type: it must be a JPEG, PNG, WebP or HEIC image that Pillow decodes in
full, within a byte and a pixel limit. It is kept under the SHA-256 of its bytes
(``directory/ab/abcd….jpg``) next to a 320 px JPEG thumbnail (``abcd….thumb.jpg``), so storing the
same photo twice changes nothing. Capture time and GPS position are read from EXIF when present.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import math
import os
import re
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError

MB = 1024 * 1024
MAX_BYTES = 10 * MB
MAX_PIXELS = 80_000_000  # a 48 MP phone photo fits; a decompression bomb does not
THUMBNAIL_SIDE = 320

_HEIF_BRANDS = frozenset({"heic", "heix", "hevc", "heim", "heis", "hevm", "mif1", "msf1"})
_AVIF_BRANDS = frozenset({"avif", "avis"})  # AVIF also declares mif1, but is not HEIC
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Decoders raise many kinds of error on hostile or damaged input; all mean "cannot be decoded".
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, RuntimeError, struct.error)

_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_DATETIME, _DATETIME_ORIGINAL, _OFFSET_TIME, _OFFSET_TIME_ORIGINAL = 0x0132, 0x9003, 0x9010, 0x9011
_GPS_LATITUDE_REF, _GPS_LATITUDE, _GPS_LONGITUDE_REF, _GPS_LONGITUDE = 1, 2, 3, 4
_ORIENTATION, _QUARTER_TURNS = 0x0112, (5, 6, 7, 8)  # orientations that swap width and height


class PhotoRejected(ValueError):
    """The upload is not a photo that can be kept; the message names the file and says why."""

    status = 422


class PhotoTooLarge(PhotoRejected):
    """The upload is bigger than the byte limit."""

    status = 413


class PhotoNotFound(LookupError):
    """No stored photo has this hash, or the hash is malformed."""

    status = 404


@dataclass(frozen=True)
class PhotoKind:
    """An accepted image type: its media type, file extension and Pillow format name."""

    media_type: str
    extension: str
    pillow_format: str
    name: str


JPEG = PhotoKind("image/jpeg", "jpg", "JPEG", "JPEG")
PNG = PhotoKind("image/png", "png", "PNG", "PNG")
WEBP = PhotoKind("image/webp", "webp", "WEBP", "WebP")
HEIC = PhotoKind("image/heic", "heic", "HEIF", "HEIC")
KINDS = (JPEG, PNG, WEBP, HEIC)


@dataclass(frozen=True)
class StoredPhoto:
    """A stored photo: its content hash, type, size, upright pixel size and EXIF time and position."""

    sha256: str
    media_type: str
    extension: str
    size: int
    width: int
    height: int
    taken_at: datetime | None = None
    lon: float | None = None
    lat: float | None = None

    def as_dict(self) -> dict[str, object]:
        """Return JSON-ready values (``taken_at`` as an ISO 8601 string)."""
        values = dataclasses.asdict(self)
        values["taken_at"] = self.taken_at.isoformat() if self.taken_at else None
        return values


def store_photo(data: bytes, *, directory: Path, filename: str = "photo", max_bytes: int = MAX_BYTES,
                max_pixels: int = MAX_PIXELS) -> StoredPhoto:
    """Check an uploaded photo, store it by content with a thumbnail, and read its EXIF.

    Parameters
    ----------
    data
        The uploaded bytes.
    directory
        Root of the photo store; created when missing.
    filename
        The name the client gave the file, used only in messages.
    max_bytes, max_pixels
        Largest upload accepted, in bytes and in decoded pixels.

    Returns
    -------
    StoredPhoto
        The same value every time the same bytes are stored; the files are written once.

    Raises
    ------
    PhotoTooLarge
        The upload exceeds ``max_bytes``.
    PhotoRejected
        The upload is empty, not a JPEG/PNG/WebP/HEIC image, corrupt, or has too many pixels.
    """
    label = _label(filename)
    _check_size(data, label, max_bytes)
    kind = sniff_photo(data, label)
    image, size = _decode(data, kind, label, max_pixels)
    exif = _exif(image)
    upright, turned = _upright(image)
    width, height = size[::-1] if turned else size
    sha256 = hashlib.sha256(data).hexdigest()
    original, thumbnail = _paths(directory, sha256, kind)
    if not original.exists():
        _write_atomically(original, lambda out: out.write(data))
    if not thumbnail.exists():
        _write_atomically(thumbnail, lambda out: _thumbnail(upright).save(out, "JPEG", quality=80))
    lon, lat = gps_position(exif)
    return StoredPhoto(sha256=sha256, media_type=kind.media_type, extension=kind.extension, size=len(data),
                       width=width, height=height, taken_at=taken_at(exif), lon=lon, lat=lat)


def photo_file(directory: Path, sha256: str, *, thumbnail: bool = False) -> tuple[Path, str]:
    """Return the stored file of a photo (or of its thumbnail) and its media type.

    Raises
    ------
    PhotoNotFound
        ``sha256`` is not 64 lowercase hexadecimal characters, or no such photo is stored.
    """
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise PhotoNotFound(f"{sha256!r:.80} is not a photo id (64 lowercase hexadecimal characters)")
    folder = directory / sha256[:2]
    if thumbnail:
        candidates = [(folder / f"{sha256}.thumb.jpg", "image/jpeg")]
    else:
        candidates = [(folder / f"{sha256}.{kind.extension}", kind.media_type) for kind in KINDS]
    for path, media_type in candidates:
        if path.is_file():
            return path, media_type
    raise PhotoNotFound(f"no {'thumbnail' if thumbnail else 'photo'} is stored for {sha256}")


def sniff_photo(data: bytes, label: str = "photo") -> PhotoKind:
    """Tell the image type from the leading bytes; refuse anything but JPEG, PNG, WebP and HEIC."""
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    brands = _ftyp_brands(data)
    if brands & _HEIF_BRANDS and not brands & _AVIF_BRANDS:
        return HEIC
    looks = describe_content(data)
    hint = f"it looks like {looks}" if looks else "unknown content"
    raise PhotoRejected(f"{label} is not a JPEG, PNG, WebP or HEIC image ({hint})")


def describe_content(data: bytes) -> str | None:
    """Say what a refused upload looks like ("a PDF document", "text" …), or None when unknown."""
    signatures = [(b"GIF87a", "a GIF image"), (b"GIF89a", "a GIF image"), (b"%PDF", "a PDF document"),
                  (b"II*\x00", "a TIFF image"), (b"MM\x00*", "a TIFF image"), (b"BM", "a BMP image"),
                  (b"PK\x03\x04", "a ZIP archive or office document"), (b"\x1f\x8b", "a gzip archive"),
                  (b"RIFF", "a RIFF file (audio or video)")]
    for signature, looks in signatures:
        if data.startswith(signature):
            return looks
    brands = _ftyp_brands(data)
    if brands & _AVIF_BRANDS:
        return "an AVIF image"
    if brands:
        return "a video or other ISO media file"
    return _describe_text(data[:2048])


def taken_at(exif: Image.Exif) -> datetime | None:
    """Return the capture time (DateTimeOriginal, else DateTime); aware when EXIF gives the offset."""
    details = _ifd(exif, _EXIF_IFD)
    for stamp, offset in ((details.get(_DATETIME_ORIGINAL), details.get(_OFFSET_TIME_ORIGINAL)),
                          (exif.get(_DATETIME), details.get(_OFFSET_TIME))):
        moment = _parse_stamp(_text(stamp), _text(offset))
        if moment is not None:
            return moment
    return None


def gps_position(exif: Image.Exif) -> tuple[float | None, float | None]:
    """Return (lon, lat) in signed decimal degrees from the GPS IFD, or (None, None)."""
    gps = _ifd(exif, _GPS_IFD)
    lat = _degrees(gps.get(_GPS_LATITUDE), gps.get(_GPS_LATITUDE_REF), "N", "S", 90)
    lon = _degrees(gps.get(_GPS_LONGITUDE), gps.get(_GPS_LONGITUDE_REF), "E", "W", 180)
    # 0, 0 is what some cameras write when they have no fix.
    if lat is None or lon is None or (lat == 0 and lon == 0):
        return None, None
    return lon, lat


def _label(filename: str) -> str:
    name = "".join(char for char in str(filename) if char.isprintable())[:100]
    return f"photo '{name or 'photo'}'"


def _check_size(data: bytes, label: str, max_bytes: int) -> None:
    if not data:
        raise PhotoRejected(f"{label} is empty")
    if len(data) > max_bytes:
        tenths = -(-len(data) * 10 // MB)  # round up, so a photo just over the limit never reads as equal
        raise PhotoTooLarge(f"{label} is {tenths / 10:.1f} MB; the limit is {max_bytes / MB:g} MB")


def _ftyp_brands(data: bytes) -> frozenset[str]:
    """Major and compatible brands of an ISO-BMFF ``ftyp`` box at the start of ``data``."""
    if data[4:8] != b"ftyp" or len(data) < 12:
        return frozenset()
    declared = int.from_bytes(data[:4], "big")
    end = min(declared if declared >= 16 else len(data), len(data), 256)
    raw = [data[8:12]] + [data[start:start + 4] for start in range(16, end - 3, 4)]
    return frozenset(brand.decode("latin-1") for brand in raw)


def _describe_text(sample: bytes) -> str | None:
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(sample) - 3:  # not just a character cut at the sample's end
            return None
        text = sample[:error.start].decode("utf-8")
    if not text.strip() or not all(char.isprintable() or char in "\r\n\t" for char in text.lstrip("\ufeff")):
        return None
    start = text.lstrip("\ufeff \r\n\t").lower()
    if start.startswith(("<!doctype html", "<html")):
        return "an HTML page"
    if start.startswith("<svg") or (start.startswith("<?xml") and "<svg" in start):
        return "an SVG drawing"
    return "text"


@functools.cache
def _open_heif() -> None:
    """Teach Pillow to read HEIC (iPhone photos); done once, at the first HEIC upload."""
    from pillow_heif import register_heif_opener

    register_heif_opener()


def _decode(data: bytes, kind: PhotoKind, label: str, max_pixels: int) -> tuple[Image.Image, tuple[int, int]]:
    """Decode the whole image with the sniffed format only, refusing corrupt data and bombs; return it and its
    size in the file. Only the thumbnail needs the pixels: a JPEG is decoded at the smallest DCT scale (1/2,
    1/4, 1/8) that still covers it (``draft``), several times faster; the decoder still reads every byte of
    the stream, so a damaged or cut photo is refused all the same."""
    if kind is HEIC:
        _open_heif()
    try:
        image = Image.open(io.BytesIO(data), formats=[kind.pillow_format])
    except Image.DecompressionBombError:
        raise PhotoRejected(f"{label} has too many pixels to decode safely; the limit is "
                            f"{max_pixels / 1e6:g} megapixels") from None
    except _DECODE_ERRORS as error:
        reason = "corrupt header" if isinstance(error, UnidentifiedImageError) else _reason(error)
        raise PhotoRejected(f"{label} looks like a {kind.name} but cannot be decoded ({reason})") from None
    size = image.size
    if image.width * image.height > max_pixels:
        raise PhotoRejected(f"{label} is {image.width}×{image.height} pixels; the limit is "
                            f"{max_pixels / 1e6:g} megapixels")
    try:
        if kind is JPEG:
            image.draft(None, _thumbnail_size(size))
        image.load()
    except _DECODE_ERRORS as error:
        raise PhotoRejected(f"{label} looks like a {kind.name} but cannot be decoded "
                            f"({_reason(error)})") from None
    return image, size


def _thumbnail_size(size: tuple[int, int]) -> tuple[int, int]:
    """At least the size of the thumbnail of an image of ``size`` (``Image.thumbnail`` rounds either way)."""
    return tuple(math.ceil(side * min(1.0, THUMBNAIL_SIDE / max(size))) for side in size)


def _reason(error: Exception) -> str:
    """The decoder's message on one line, or the error's name when it has none."""
    return " ".join(str(error).split()) or type(error).__name__


def _exif(image: Image.Image) -> Image.Exif:
    try:
        return image.getexif()
    except _DECODE_ERRORS:  # damaged EXIF is ignored, not a reason to refuse the photo
        return Image.Exif()


def _ifd(exif: Image.Exif, tag: int) -> dict:
    try:
        return dict(exif.get_ifd(tag))
    except _DECODE_ERRORS + (TypeError, KeyError):
        return {}


def _upright(image: Image.Image) -> tuple[Image.Image, bool]:
    """The image as it should be shown (EXIF orientation applied), and whether that turned it a quarter."""
    try:
        turned = image.getexif().get(_ORIENTATION) in _QUARTER_TURNS
        return ImageOps.exif_transpose(image), turned
    except _DECODE_ERRORS + (TypeError, KeyError):
        return image, False


def _thumbnail(image: Image.Image) -> Image.Image:
    """An RGB copy whose longest side is at most THUMBNAIL_SIDE; transparency becomes white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.new("RGB", rgba.size, "white")
        image.paste(rgba, mask=rgba.getchannel("A"))
    thumb = image.convert("RGB")
    thumb.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    return thumb


def _paths(directory: Path, sha256: str, kind: PhotoKind) -> tuple[Path, Path]:
    folder = directory / sha256[:2]
    return folder / f"{sha256}.{kind.extension}", folder / f"{sha256}.thumb.jpg"


def _write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write through a temporary file in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _text(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return value.strip("\x00 ") if isinstance(value, str) else ""


def _parse_stamp(stamp: str, offset: str) -> datetime | None:
    """Parse EXIF ``YYYY:MM:DD HH:MM:SS`` (blank or zeroed stamps give None) with ``±HH:MM``."""
    try:
        moment = datetime.strptime(stamp[:10].replace("-", ":") + stamp[10:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    match = re.fullmatch(r"([+-])(\d\d):(\d\d)", offset)
    if not match or int(match[2]) > 23 or int(match[3]) > 59:
        return moment
    sign = -1 if match[1] == "-" else 1
    return moment.replace(tzinfo=timezone(sign * timedelta(hours=int(match[2]), minutes=int(match[3]))))


def _degrees(value: object, ref: object, positive: str, negative: str, limit: float) -> float | None:
    """Degrees, minutes, seconds rationals and an N/S or E/W reference to signed degrees."""
    hemisphere = _text(ref).upper()
    if hemisphere not in (positive, negative):
        return None
    try:
        parts = [float(part) for part in value]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not 1 <= len(parts) <= 3 or not all(math.isfinite(part) and part >= 0 for part in parts):
        return None
    degrees = sum(part / 60 ** place for place, part in enumerate(parts))
    if degrees > limit:
        return None
    return -degrees if hemisphere == negative else degrees
