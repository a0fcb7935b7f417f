"""Frame sampling with PyAV: every sampled frame is the first frame presented at or after its target
time, reported with its true timestamp — checked on videos whose frames carry their own index as a
visible binary code, for H.264, VP9 and MPEG-4; seeking gives the same frames while decoding fewer;
media sniffing by content."""

from __future__ import annotations

import math
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from simreal.triage.config import FramesConfig
from simreal.triage.frames import MediaError, VideoSampler, frame_at, jpeg_roundtrip, open_image
from simreal.triage.media import media_kind, sniff

NATIVE = 10  # fps of the test videos
BITS = 8


def coded_frame(n: int) -> np.ndarray:
    img = np.zeros((48, 16 * BITS, 3), np.uint8)
    for b in range(BITS):
        if n >> b & 1:
            img[:, 16 * b:16 * (b + 1)] = 255
    return img


def read_code(img: Image.Image) -> int:
    a = np.asarray(img.convert("L"), dtype=np.float64)
    return sum(1 << b for b in range(BITS) if a[8:40, 16 * b + 4:16 * b + 12].mean() > 128)


def coded_video(path: Path, seconds: float, codec: str, gop: int = 20) -> Path:
    import av

    with av.open(str(path), "w") as out:
        st = out.add_stream(codec, rate=Fraction(NATIVE))
        st.width, st.height, st.pix_fmt = 16 * BITS, 48, "yuv420p"
        st.codec_context.gop_size = gop
        if codec == "libx264":
            st.options = {"preset": "ultrafast", "bf": "2"}  # B-frames: decode order differs from display order
        for n in range(int(seconds * NATIVE)):
            for pkt in st.encode(av.VideoFrame.from_ndarray(coded_frame(n), format="rgb24")):
                out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("frames")
    return {"h264": coded_video(d / "v.mp4", 12, "libx264"), "vp9": coded_video(d / "v.mkv", 6, "libvpx-vp9"),
            "mpeg4": coded_video(d / "v.avi", 6, "mpeg4")}


def expected(fps: float, seconds: float, start: float = 0.0) -> list[int]:
    """Frame indices the sampling rule gives: the first frame at or after each target, once."""
    out: list[int] = []
    k = 0
    while (t := start + k / fps) < seconds:
        n = math.ceil((t - 1e-3) * NATIVE - 1e-9)
        if n < seconds * NATIVE and (not out or n > out[-1]):
            out.append(n)
        k += 1
    return out


@pytest.mark.parametrize("codec, fps, seek, threads", [
    ("h264", 1.0, "never", 1), ("h264", 2.5, "never", 1), ("h264", 0.3, "never", 1), ("h264", 0.3, "always", 1),
    ("h264", 25.0, "never", 1), ("h264", 1.0, "never", 3), ("h264", 0.3, "auto", 3), ("vp9", 0.5, "auto", 1),
    ("vp9", 1.0, "never", 2), ("mpeg4", 3.0, "auto", 1)])
def test_samples_are_first_frames_at_targets_with_true_times(videos: dict[str, Path], codec: str, fps: float,
                                                            seek: str, threads: int) -> None:
    path = videos[codec]
    seconds = 12 if codec == "h264" else 6
    with VideoSampler(path, FramesConfig(fps=fps, seek=seek), threads) as s:  # type: ignore[arg-type]
        got = [(t, read_code(img)) for t, img in s]
        if codec == "h264" and fps <= 1.0 and seek == "never":  # non-reference B-frames between samples skipped
            assert s.info.decoded < seconds * NATIVE * 0.85
        assert s.info.width == 16 * BITS and s.info.height == 48 and s.info.native_fps == pytest.approx(NATIVE)
    idx = expected(fps, seconds)
    assert [n for _, n in got] == idx
    assert [t for t, _ in got] == pytest.approx([n / NATIVE for n in idx], abs=1e-6)


def test_seeking_gives_the_same_frames_and_decodes_fewer(videos: dict[str, Path]) -> None:
    cfg = FramesConfig(fps=0.2, start=1.0, max_frames=3)
    with VideoSampler(videos["h264"], cfg.model_copy(update={"seek": "never"})) as a:
        seq = [(t, np.asarray(img)) for t, img in a]
    with VideoSampler(videos["h264"], cfg.model_copy(update={"seek": "auto", "seek_min_interval": 2.0})) as b:
        sk = [(t, np.asarray(img)) for t, img in b]
    assert [t for t, _ in seq] == [t for t, _ in sk] == pytest.approx([1.0, 6.0, 11.0])
    assert all(np.array_equal(x, y) for (_, x), (_, y) in zip(seq, sk, strict=True))
    assert b.info.seeks >= 2 and b.info.decoded < a.info.decoded / 2


def test_range_limits_and_frame_at(videos: dict[str, Path]) -> None:
    with VideoSampler(videos["h264"], FramesConfig(fps=1, start=2.0, end=5.0)) as s:
        assert [read_code(img) for _, img in s] == [20, 30, 40]
    with VideoSampler(videos["h264"], FramesConfig(fps=4, max_frames=3)) as s:
        assert [read_code(img) for _, img in s] == [0, 3, 5]
    assert read_code(frame_at(videos["vp9"], 3.33)) == 34
    assert read_code(frame_at(videos["h264"], 0.0)) == 0


def test_max_side_and_jpeg_roundtrip(videos: dict[str, Path]) -> None:
    with VideoSampler(videos["h264"], FramesConfig(fps=1, max_side=64, max_frames=1)) as s:
        (_, img), = list(s)
    assert img.size == (64, 24)
    data, back = jpeg_roundtrip(img, 90)
    assert data[:3] == b"\xff\xd8\xff" and back.size == img.size
    assert np.abs(np.asarray(back, float) - np.asarray(img, float)).mean() < 8


def test_bad_media_is_a_media_error(tmp_path: Path, videos: dict[str, Path]) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    with pytest.raises(MediaError, match="bad.mp4: cannot open as media"):
        VideoSampler(bad, FramesConfig())
    import wave

    audio = tmp_path / "sound.wav"
    with wave.open(str(audio), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(16000))
    with pytest.raises(MediaError, match="sound.wav: no video stream"):
        VideoSampler(audio, FramesConfig())
    with pytest.raises(MediaError, match="cannot read as an image"):
        open_image(bad)
    # a file cut in half: the frames before the cut come out (or the error names the file), never garbage
    half = tmp_path / "half.mp4"
    data = videos["h264"].read_bytes()
    half.write_bytes(data[: len(data) // 2])
    try:
        with VideoSampler(half, FramesConfig(fps=1)) as s:
            codes = [read_code(img) for _, img in s]
        assert codes == [10 * i for i in range(len(codes))]
    except MediaError as exc:
        assert "half.mp4" in str(exc)


def test_media_kind_by_extension_and_by_content(tmp_path: Path, videos: dict[str, Path]) -> None:
    arr = coded_frame(5)
    for fmt in ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF"):
        p = tmp_path / f"img_{fmt}"  # no extension: content decides
        Image.fromarray(arr).save(p, format=fmt)
        assert media_kind(p) == "image", fmt
        assert media_kind(p, sniff_content=False) is None
    for name, v in videos.items():
        p = tmp_path / f"vid_{name}"
        p.write_bytes(v.read_bytes())
        assert media_kind(p) == "video", name
    txt = tmp_path / "notes"
    txt.write_text("hello " * 50)
    assert media_kind(txt) is None
    assert media_kind(videos["h264"], extensions=(".png",)) is None
    assert sniff(b"\x00\x00\x00\x1cftypavif" + bytes(20)) is None  # AVIF stills are not videos
    assert sniff(bytes([0x47]) + bytes(187) + bytes([0x47]) + bytes(20)) == "video"  # MPEG-TS


@pytest.mark.skipif(shutil.which("ffmpeg") is None,
                    reason="needs Debian's ffmpeg to tag a rotation (.ci/run installs it)")
@pytest.mark.parametrize("angle", [90, 180, 270])
def test_phone_videos_come_out_upright_as_ffmpeg_shows_them(videos: dict[str, Path], tmp_path: Path,
                                                            angle: int) -> None:
    rot = tmp_path / f"r{angle}.mp4"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(videos["h264"]), "-c", "copy",
                    "-metadata:s:v:0", f"rotate={angle}", str(rot)], check=True)
    ref = tmp_path / "ref.png"  # ffmpeg applies the display matrix (autorotate) when decoding
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(rot), "-vf", r"select=eq(n\,30)",
                    "-frames:v", "1", str(ref)], check=True)
    with VideoSampler(rot, FramesConfig(fps=1, start=3.0, max_frames=1)) as s:
        (_, img), = list(s)
        assert (s.info.width, s.info.height) == img.size
    want = np.asarray(Image.open(ref).convert("RGB"), dtype=np.int16)
    assert img.size == (want.shape[1], want.shape[0])
    assert np.abs(np.asarray(img, dtype=np.int16) - want).mean() < 2.0
