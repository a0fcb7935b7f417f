"""``simreal faces`` end to end: extract from real video and labelled layouts (records, tracks,
resume, no-face and bad-input errors), rendered expressions surviving extract -> chip, ADDA on faces,
and a live session on a real video writing WAVs and a timeline."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from simreal.datasets.contract import Dataset
from simreal.faces.align import template_points

from .faces_fixtures import CLASSES, cli


def test_extract_video_records_and_resume(target_chips: Path, media: dict[str, Path],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    ds = Dataset.open(target_chips)
    assert len(ds) == 10 and ds.categories == []  # 2.4 s at 4 frames/s, one face each
    rec = ds.images[0]
    assert rec["source"].endswith("single_face.mp4") and rec["track_id"] == "s0-t0" and rec["label"] is None
    assert [r["timestamp"] for r in ds.images[:3]] == pytest.approx([0.0, 0.25, 0.5], abs=0.02)
    x, y, w, h = rec["box"]
    lm = np.array(rec["landmarks"])
    assert (lm[:, 0] > x).all() and (lm[:, 0] < x + w).all() and (lm[:, 1] > y).all() and (lm[:, 1] < y + h).all()
    assert np.abs(np.array(rec["chip_landmarks"]) - template_points(112, 0.3)).max() < 6
    assert ds.load_image(rec).shape == (112, 112, 3)
    info = json.loads((target_chips / "dataset.json").read_text())
    assert info["faces"]["frames"] == 10 and info["faces"]["frames_without_face"] == 0
    assert cli("faces", "extract", str(media["single_face.mp4"]), "-o", str(target_chips), "--fps", "4", "-q") == 0
    assert "1 sources already done" in capsys.readouterr().out
    assert cli("faces", "extract", str(media["single_face.mp4"]), "-o", str(target_chips), "--fps", "3", "-q") == 2
    assert "other inputs or settings; use a new --out" in capsys.readouterr().err


def test_extract_labelled_layouts_and_picking_one_person(media: dict[str, Path], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    for label, name in (("surprise", "0-f1-su-ph.jpg"), ("disgust", "45-m7-di-ph.jpg")):
        (tmp_path / "set" / label).mkdir(parents=True)
        shutil.copy(media[name], tmp_path / "set" / label / name)
    shutil.copy(media["single_face.mp4"], tmp_path / "set" / "surprise" / "clip.mp4")
    out = tmp_path / "labelled"
    assert cli("faces", "extract", str(tmp_path / "set"), "-o", str(out), "--fps", "2", "-q",
               "--detect-scale", "1", "--upsample", "1") == 0
    ds = Dataset.open(out)
    assert ds.class_names == ["disgust", "surprise"]
    names = {r["source"].rsplit("/", 1)[-1]: ds.class_names[r["label"] - 1] for r in ds.images}
    assert names == {"45-m7-di-ph.jpg": "disgust", "0-f1-su-ph.jpg": "surprise", "clip.mp4": "surprise"}
    (tmp_path / "list.csv").write_text("path,label,start,end\nset/surprise/clip.mp4,smile,0.5,1.5\n"
                                       f"{media['multi_face.jpg']},,,\n")
    out2 = tmp_path / "csv"
    assert cli("faces", "extract", str(tmp_path / "list.csv"), "-o", str(out2), "--fps", "2", "-q",
               "--detect-scale", "1") == 0
    ds2 = Dataset.open(out2)
    clip = [r for r in ds2.images if r["source"].endswith("clip.mp4")]
    assert len(clip) == 3 and all(0.5 <= r["timestamp"] <= 1.5 and r["label"] == 1 for r in clip)
    group = [r for r in ds2.images if r["source"].endswith("multi_face.jpg")]
    assert len(group) >= 2 and len({r["track_id"] for r in group}) == len(group)  # one track per person
    out3 = tmp_path / "largest"
    assert cli("faces", "extract", str(media["multi_face.jpg"]), "-o", str(out3), "--keep", "largest", "-q",
               "--detect-scale", "1") == 0
    (only,) = Dataset.open(out3).images
    assert only["box"][2] == max(r["box"][2] for r in group)
    capsys.readouterr()
    (tmp_path / "bad.csv").write_text("path,label\nnothere.mp4,smile\n")
    assert cli("faces", "extract", str(tmp_path / "bad.csv"), "-o", str(tmp_path / "x")) == 2
    assert capsys.readouterr().err.strip() == (f"simreal: error: {tmp_path / 'bad.csv'}: line 2: file "
                                               "'nothere.mp4' not found")


def test_video_without_faces_is_one_line_and_writes_nothing(media: dict[str, Path], tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "none"
    assert cli("faces", "extract", str(media["no_face.mp4"]), "-o", str(out), "-q") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no_face.mp4: no face found in 20 frames (nothing written" in err[0]
    assert not out.exists()


def test_rendered_expression_survives_extract_to_chip(tmp_path: Path) -> None:
    """The same rendered person and pose, neutral vs jaw open vs eyes closed: after detection and
    alignment the chip's mouth is darker (open mouth) and its eyes lose their dark irises (closed)."""
    pytest.importorskip("anny")
    from PIL import Image

    from simreal.faces.render import FaceRenderConfig, render_frame, sample_frame

    from .faces_fixtures import RENDER

    cfg = FaceRenderConfig.model_validate({**RENDER, "spp": 8})
    params = sample_frame(cfg, 0, CLASSES)
    params["head"] = {"yaw": 0.0, "pitch": 0.0, "roll": 0.0}
    params["camera"].update(noise=0.0, blur=0.0, jpeg=95)
    (tmp_path / "frames").mkdir()
    for i, expr in enumerate(({}, {"jawOpen": 1.0}, {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0})):
        frame, _ = render_frame(cfg, {**params, "expression": expr})
        Image.fromarray(frame).save(tmp_path / "frames" / f"{i}.png")
    assert cli("faces", "extract", str(tmp_path / "frames"), "-o", str(tmp_path / "chips"), "-q",
               "--detect-scale", "1", "--upsample", "1") == 0
    ds = Dataset.open(tmp_path / "chips")
    assert len(ds) == 3
    grey = [ds.load_image(r, "L").astype(float) for r in sorted(ds.images, key=lambda r: r["source"])]
    tpl = template_points(112, 0.3)
    eye_y, nose = tpl[:4, 1].mean(), tpl[4]
    eyes = (slice(int(eye_y - 6), int(eye_y + 7)), slice(int(tpl[2, 0] - 4), int(tpl[0, 0] + 5)))
    mouth = (slice(int(nose[1] + 8), int(nose[1] + 26)), slice(int(nose[0] - 12), int(nose[0] + 13)))

    def change(i: int, region: tuple[slice, slice]) -> float:
        """Mean absolute change from the neutral chip, the best over shifts of up to 3 px: jaw opening moves the
        detector's box and so the 5 landmarks by a pixel or two (by how much differs between CPUs), and a shift
        of a high-contrast eye region alone must not count as a change of the eyes."""
        (r, c), g0 = region, grey[0][region]
        return min(float(np.abs(grey[i][r.start + dy:r.stop + dy, c.start + dx:c.stop + dx] - g0).mean())
                   for dy in range(-3, 4) for dx in range(-3, 4))

    assert grey[1][mouth].mean() < grey[0][mouth].mean() - 15  # the open mouth is dark
    assert change(1, mouth) > 3 * change(1, eyes)  # jaw open changes the mouth, not the eyes
    assert change(2, eyes) > 2 * change(2, mouth) and change(2, eyes) > 8  # closed eyes change mainly the eyes


def test_adda_on_faces_end_to_end(adda_run: Path, rendered: Path, capsys: pytest.CaptureFixture[str]) -> None:
    meta = json.loads((adda_run / "checkpoints" / "final.json").read_text())
    assert meta["classes"] == CLASSES and meta["method"] == "adda"
    assert meta["selection"]["policy"] == "im" and meta["selection"]["uses_target_labels"] is False
    phases = {json.loads(x)["phase"] for x in (adda_run / "metrics.jsonl").read_text().splitlines()}
    assert "adapt" in phases  # the ADDA phase ran after the source pretraining
    assert cli("eval", "--run", str(adda_run), "--data", str(rendered)) == 0
    res = json.loads((adda_run / "eval" / rendered.name / "metrics.json").read_text())
    assert set(res["per_class_accuracy"]) == set(CLASSES) and len(res["confusion_matrix"]) == 3
    for png in ("confusion.png", "roc.png"):
        assert (adda_run / "eval" / rendered.name / png).is_file()


def test_live_run_writes_words_timeline_and_latency(adda_run: Path, media: dict[str, Path], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    from simreal.faces.speech import wav_stats

    # every class is "on" from the first frame and never "off": exactly one word, after the hold time
    (tmp_path / "sam.yaml").write_text("child: Sam\ntiming: {on_score: 0.01, off_score: 0.0, hold_s: 0.5}\n"
                                       "words: {neutral: hello, mouth_open: water, eyes_closed: tired}\n")
    out = tmp_path / "session"
    assert cli("faces", "run", "--run", str(adda_run), "--words", str(tmp_path / "sam.yaml"), "--video",
               str(media["single_face.mp4"]), "--out", str(out), "--audio", "files", "-q", "--device", "cpu") == 0
    text = capsys.readouterr().out
    assert "72 frames (72 with a face)" in text and "latency frame in -> word decided: median" in text
    rows = list(csv.DictReader(open(out / "timeline.csv")))
    assert len(rows) == 1 and rows[0]["word"] in ("hello", "water", "tired")
    assert float(rows[0]["time_s"]) == pytest.approx(0.5, abs=0.04)
    st = wav_stats(out / rows[0]["wav"])
    assert st["rms"] > 0.02 and 0.2 < st["duration_s"] < 2.0
    frames = list(csv.DictReader(open(out / "frames.csv")))
    assert len(frames) == 72 and all(f["top"] in CLASSES for f in frames)


def test_live_run_bad_input(adda_run: Path, media: dict[str, Path], tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "w.yaml").write_text("words: {happy: yes}\n")
    base = ["faces", "run", "--run", str(adda_run), "--words", str(tmp_path / "w.yaml"), "--out", str(tmp_path / "o")]
    assert cli(*base, "--video", str(media["single_face.mp4"])) == 2
    err = capsys.readouterr().err
    assert "w.yaml: words.happy: the model does not know the expression 'happy'" in err
    assert not (tmp_path / "o").exists()
    (tmp_path / "w.yaml").write_text("words: {neutral: yes}\n")
    assert cli(*base, "--camera", "97") == 2
    assert capsys.readouterr().err.startswith("simreal: error: camera 97: could not be opened")
    assert cli(*base) == 2
    assert "give exactly one of --video FILE or --camera N" in capsys.readouterr().err
