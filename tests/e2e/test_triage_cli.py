"""End to end: ``simreal triage`` on videos made here (an object in known time spans, H.264 / VP9 /
MPEG-4, images, a corrupt file) with a classifier trained here; resume after SIGKILL; chains that
differ in one parameter; detector boxes; dropped frames; review marks exported as a dataset that
``simreal train`` accepts; bad input."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image

from simreal.cli.main import main
from simreal.datasets.coco import image_file

from .triage_helpers import make_video, object_at, saved_run, scene, train_classifier

SPANS = {"pos1.mp4": [(3.0, 7.0)], "pos2.mkv": [(8.0, 11.0)], "more/pos3": [(0.0, 2.0)], "neg1.mp4": [],
         "neg2.avi": []}
CODECS = {"pos1.mp4": "libx264", "pos2.mkv": "libvpx-vp9", "more/pos3": "libx264", "neg1.mp4": "libx264",
          "neg2.avi": "mpeg4"}
POSITIVE = {"pos1.mp4", "pos2.mkv", "pos3", "photo_obj.jpg"}
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "src/simreal/triage/schema/element-1.json").read_text())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("triage")
    media = d / "media"
    for i, (name, spans) in enumerate(SPANS.items()):
        make_video(media / name, 12, spans, seed=10 + i, codec=CODECS[name])  # "more/pos3" has no extension
    Image.fromarray(scene(30, 2.0, object_at(2.0, 30))).save(media / "photo_obj.jpg", quality=95)
    Image.fromarray(scene(31, 2.0, None)).save(media / "photo_bg.png")
    (media / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    (media / "readme.txt").write_text("not media")
    run = train_classifier(d)
    return {"dir": d, "media": media, "run": run}


def _config(w: dict[str, Any], folder: Path, fps: float = 1.0, extra_stages: list[Any] | None = None,
            run: Path | None = None, **top: Any) -> Path:
    cfg = {"folder": str(folder), "select": {"name": "Local", "config": {"paths": [str(w["media"])]}},
           "analyse": [{"name": "Frames", "config": {"fps": fps}}, {"name": "Dedup", "config": {"threshold": 2}},
                       {"name": "Score", "config": {"models": [{"run": str(run or w["run"]), "name": "clf"}]}},
                       *(extra_stages or [{"name": "Rank", "config": {"by": "count", "threshold": 0.5}}])], **top}
    p = folder.parent / f"{folder.name}.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def _elements(folder: Path) -> dict[str, dict[str, Any]]:
    (chain,) = [c for c in (folder / "results").iterdir() if c.is_dir()]
    return {Path(r["source"]).name: r for r in
            (json.loads(p.read_text()) for p in sorted((chain / "elements").glob("*.json")))}


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file() and p.name not in ("log.txt", ".lock")}


@pytest.fixture(scope="module")
def reference(world: dict[str, Any]) -> Path:
    """The uninterrupted run every other test compares with (2 decoding workers, CLI)."""
    folder = world["dir"] / "ref"
    assert main(["triage", "run", str(_config(world, folder)), "--workers", "2", "-q"]) == 0
    return folder


def test_triage_finds_the_object_videos_and_the_spans(world: dict[str, Any], reference: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import jsonschema

    els = _elements(reference)
    assert set(els) == {"pos1.mp4", "pos2.mkv", "pos3", "neg1.mp4", "neg2.avi", "photo_obj.jpg", "photo_bg.png"}
    for r in els.values():
        jsonschema.validate(r, SCHEMA)
        if r["kind"] == "video":
            assert r["duration"] == pytest.approx(12.0, abs=0.15) and (r["width"], r["height"]) == (128, 72)
            assert r["sampled"] == 12 and [f["t"] for f in r["frames"]][:2] == [0.0, 1.0]
        for f in r["frames"]:
            with Image.open(reference / f["file"]) as im:
                im.load()
            assert set(f["scores"]["clf"]) == {"background", "canister"}
    ranking = json.loads(next((reference / "results").glob("*/ranking.json")).read_text())
    order = [Path(e["source"]).name for e in ranking["elements"]]
    assert set(order[:4]) == POSITIVE, order  # every medium with the object ranks above every one without
    for name, spans in SPANS.items():
        r = els[Path(name).name]
        scores = {f["t"]: f["scores"]["clf"]["canister"] for f in r["frames"]}
        if spans:
            best = max(scores, key=scores.get)  # type: ignore[arg-type]
            assert any(a <= best < b for a, b in spans), (name, best)
            inside = [s for t, s in scores.items() if any(a <= t < b for a, b in spans)]
            assert np.mean(np.asarray(inside) >= 0.5) >= 0.75, (name, scores)
        assert all(s < 0.5 for t, s in scores.items() if not any(a <= t < b for a, b in spans)), (name, scores)
    summary = json.loads(next((reference / "results").glob("*/summary.json")).read_text())
    assert len(summary["done"]) == 7 and summary["reused"] == 0
    assert [Path(f["source"]).name for f in summary["failed"]] == ["broken.mp4"]
    assert "cannot open as media" in summary["failed"][0]["reason"]
    csv_rows = next((reference / "results").glob("*/frames.csv")).read_text().splitlines()
    assert len(csv_rows) == 1 + 2 * sum(len(r["frames"]) for r in els.values())
    # the same command again: everything reused, no output rewritten
    elements_dir = next((reference / "results").glob("*/elements"))
    before = _snapshot(reference / "stages") | _snapshot(elements_dir)
    t0 = time.perf_counter()
    capsys.readouterr()
    assert main(["triage", "run", str(reference.parent / "ref.yaml"), "--workers", "2", "-q"]) == 0
    assert time.perf_counter() - t0 < 5
    out = capsys.readouterr().out
    assert "7 done (7 already done), 0 skipped, 1 failed" in out and "simreal view" in out
    assert _snapshot(reference / "stages") | _snapshot(elements_dir) == before
    assert main(["triage", "status", str(reference)]) == 0
    status = capsys.readouterr().out
    assert "8 elements, 1 chain(s)" in status and "failed frames-" in status and "broken.mp4: cannot open" in status
    # rank from the command line by another metric
    assert main(["triage", "rank", str(reference), "--by", "max", "--json"]) == 0
    rk = json.loads(capsys.readouterr().out)
    vals = [e["value"] for e in rk["elements"]]
    assert rk["by"] == "max" and vals == sorted(vals, reverse=True) and vals[0] == max(
        f["scores"]["clf"]["canister"] for r in els.values() for f in r["frames"])


def _complete_outputs(folder: Path) -> None:
    """Everything outside temporaries is whole: JSON parses, JPEGs decode, frames folders are complete."""
    for p in list((folder / "stages").rglob("*")) + list((folder / "results").rglob("*")):
        if ".tmp" in str(p.relative_to(folder)):
            continue
        if p.suffix == ".json":
            json.loads(p.read_text())
        elif p.suffix == ".jpg":
            with Image.open(p) as im:
                im.load()
        elif p.is_dir() and p.parent.name.startswith("frames-"):
            meta = json.loads((p / "frames.json").read_text())
            assert all((p / f["file"]).is_file() for f in meta["frames"])


def _done_tasks(folder: Path) -> dict[tuple[str, str], float]:
    db = folder / "triage.sqlite"
    if not db.is_file():
        return {}
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            rows = con.execute("SELECT stage, input, finished FROM tasks WHERE status='done'").fetchall()
    except sqlite3.OperationalError:  # the run is still creating its tables
        return {}
    return {(s, i): f for s, i, f in rows}


@pytest.mark.slow
def test_resume_after_sigkill_does_only_the_missing_work(world: dict[str, Any], reference: Path) -> None:
    folder = world["dir"] / "killed"
    cfg = _config(world, folder)
    cmd = [sys.executable, "-m", "simreal.cli.main", "triage", "run", str(cfg), "--workers", "2", "-q"]
    rng = random.Random(7)
    kills = 0
    for _ in range(3):
        target, extra = rng.randint(0, 5), rng.uniform(0.0, 0.4)
        proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while proc.poll() is None and len([k for k in _done_tasks(folder) if k[0].startswith("frames")]) < target:
            time.sleep(0.05)
        time.sleep(extra)
        if proc.poll() is not None:
            break
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, mid-flight
        proc.wait()
        kills += 1
        _complete_outputs(folder)
    assert kills >= 1
    done_before = _done_tasks(folder)
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    after = _done_tasks(folder)
    assert all(after[k] == v for k, v in done_before.items())  # finished work was not redone
    n_before = len([k for k in done_before if k[0].startswith("score")])
    assert f"({n_before} already done)" in res.stdout
    assert not [p for p in folder.rglob("*") if ".tmp" in p.name]
    got, want = _elements(folder), _elements(reference)
    assert set(got) == set(want)
    for name in want:
        a, b = got[name]["frames"], want[name]["frames"]
        assert [f["t"] for f in a] == [f["t"] for f in b]
        for fa, fb in zip(a, b, strict=True):
            assert (folder / fa["file"]).read_bytes() == (reference / fb["file"]).read_bytes()
            assert fa["scores"]["clf"]["canister"] == pytest.approx(fb["scores"]["clf"]["canister"], abs=1e-5)


def test_two_chains_with_different_fps_keep_separate_outputs(world: dict[str, Any], tmp_path: Path) -> None:
    folder = tmp_path / "chains"
    assert main(["triage", "run", str(_config(world, folder, fps=1.0)), "--workers", "0", "-q"]) == 0
    (first,) = (folder / "results").iterdir()
    snap = _snapshot(folder / "results") | _snapshot(folder / "stages")
    assert main(["triage", "run", str(_config(world, folder, fps=0.5)), "--workers", "0", "-q"]) == 0
    chains = sorted((folder / "results").iterdir())
    assert len(chains) == 2 and len(list((folder / "stages").glob("frames-*"))) == 2
    assert {k: v for k, v in (_snapshot(folder / "results") | _snapshot(folder / "stages")).items() if k in snap} \
        == snap  # the first chain's outputs were not touched
    (second,) = [c for c in chains if c != first]
    r = json.loads(next((second / "elements").glob("*.json")).read_text())
    if r["kind"] == "video":
        assert [f["t"] % 2.0 for f in r["frames"]] == [0.0] * len(r["frames"])
    assert json.loads((second / "chain.json").read_text())["sampling"]["fps"] == 0.5


def test_detector_boxes_survive_to_the_json(world: dict[str, Any], tmp_path: Path) -> None:
    from simreal.triage.config import ModelSpec
    from simreal.triage.scoring import Scorer, describe_model, prepare

    run = saved_run(tmp_path / "det", "detect", "squeezedet_tiny", (32, 48), ["canister"],
                    extra="detect: {num_anchors: 2, keep_threshold: 0.0}",
                    task_state={"fitted_anchors": [[10.0, 12.0], [20.0, 22.0]]})
    folder = tmp_path / "det_triage"
    cfg = yaml.safe_load(_config(world, folder, run=run).read_text())
    cfg["select"]["config"]["paths"] = [str(world["media"] / "pos1.mp4")]
    cfg["analyse"][2]["config"]["models"][0].update(box_threshold=0.0, max_boxes=3)
    (tmp_path / "det.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["triage", "run", str(tmp_path / "det.yaml"), "--workers", "0", "-q"]) == 0
    (r,) = _elements(folder).values()
    info = describe_model(ModelSpec(run=str(run), box_threshold=0.0, max_boxes=3), lambda p: "")
    sc = Scorer(info, "cpu")
    for f in r["frames"][:4]:
        want = sc.score([prepare(Image.open(folder / f["file"]), info.spec)])[0]
        boxes = f["boxes"]["clf"]
        assert len(boxes) == len(want["boxes"]) == 3
        for b, w in zip(boxes, want["boxes"], strict=True):  # model input 48 x 32 -> frame 128 x 72
            assert b["box"] == pytest.approx([w[0] * 128 / 48, w[1] * 72 / 32, w[2] * 128 / 48, w[3] * 72 / 32],
                                             abs=0.02)
            assert b["score"] == pytest.approx(w[4], abs=1e-6) and b["label"] == "canister"
        assert f["scores"]["clf"]["canister"] == pytest.approx(max(b["score"] for b in boxes), abs=1e-6)
    # reviewed as relevant: the boxes scoring at least the mark's threshold become the dataset's boxes
    # (clipped to the frame, COCO x, y, w, h); this untrained detector scores every box 0.5
    from simreal.datasets.contract import Dataset
    from simreal.triage.reviews import save_mark

    fa, fb = r["frames"][1], r["frames"][2]
    save_mark(folder, r["element"], fa["t"], "relevant", "", r["chain"], "clf", "canister", 0.5)
    save_mark(folder, r["element"], fb["t"], "relevant", "", r["chain"], "clf", "canister", 0.9)
    ds = tmp_path / "det_reviewed"
    assert main(["triage", "export", str(folder), "--reviewed", "--out", str(ds)]) == 0
    d = Dataset.open(ds)
    by_t = {img["triage"]["t"]: img for img in d.images}
    want = []
    for b in fa["boxes"]["clf"]:
        x1, y1 = max(0.0, b["box"][0]), max(0.0, b["box"][1])
        x2, y2 = min(128.0, b["box"][2]), min(72.0, b["box"][3])
        want.append(([round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)], 1))
    assert sorted((a["bbox"], a["category_id"]) for a in d.anns(by_t[fa["t"]])) == sorted(want)
    assert len(want) == 3 and d.anns(by_t[fb["t"]]) == []
    assert [img["label"] for img in d.images] == [1, 1] and d.class_names == ["canister"]
    assert {(img["width"], img["height"]) for img in d.images} == {(128, 72)}


def test_dropped_frames_score_the_same_and_export_identically(world: dict[str, Any], reference: Path,
                                                              tmp_path: Path) -> None:
    from simreal.datasets.contract import Dataset
    from simreal.triage.reviews import save_mark

    folder = tmp_path / "dropped"
    assert main(["triage", "run", str(_config(world, folder)), "--workers", "0", "--drop-frames", "-q"]) == 0
    assert not list(folder.rglob("*.jpg"))
    got, want = _elements(folder), _elements(reference)
    for name in want:
        assert all(f["file"] is None for f in got[name]["frames"])
        assert [f["scores"] for f in got[name]["frames"]] == [f["scores"] for f in want[name]["frames"]]
    pos1 = want["pos1.mp4"]
    for f in (folder, reference):
        save_mark(f, pos1["element"], 4.0, "relevant", "seen", pos1["chain"], "clf", "canister", 0.5)
    a, b = tmp_path / "ds_dropped", tmp_path / "ds_kept"
    assert main(["triage", "export", str(folder), "--reviewed", "--out", str(a)]) == 0
    assert main(["triage", "export", str(reference), "--reviewed", "--out", str(b)]) == 0
    (ia,), (ib,) = Dataset.open(a).images, Dataset.open(b).images
    assert image_file(a, ia).read_bytes() == image_file(b, ib).read_bytes()  # re-extracted == kept
    (reference / "reviews.json").unlink()
    # frames wanted after all: decoded again, scores not recomputed
    scored = {k: v for k, v in _done_tasks(folder).items() if k[0].startswith("score")}
    assert main(["triage", "run", str(folder.parent / "dropped.yaml"), "--workers", "0", "--keep-frames", "-q"]) == 0
    assert {k: v for k, v in _done_tasks(folder).items() if k[0].startswith("score")} == scored
    got = _elements(folder)
    for name in want:
        assert [(folder / f["file"]).read_bytes() for f in got[name]["frames"]] == [
            (reference / f["file"]).read_bytes() for f in want[name]["frames"]]


def test_review_marks_become_a_dataset_that_trains(world: dict[str, Any], reference: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from simreal.datasets.contract import Dataset
    from simreal.triage.reviews import save_mark

    els = _elements(reference)
    pos, neg = els["pos1.mp4"], els["neg1.mp4"]
    for t in (3.0, 5.0):
        save_mark(reference, pos["element"], t, "relevant", "canister, left", pos["chain"], "clf", "canister", 0.5)
    for t in (1.0, 9.0):
        save_mark(reference, neg["element"], t, "not_relevant", "", neg["chain"], "clf", "canister", 0.5)
    ds = tmp_path / "reviewed"
    csv_path = tmp_path / "hits.csv"
    capsys.readouterr()
    assert main(["triage", "export", str(reference), "--reviewed", "--out", str(ds), "--csv", str(csv_path)]) == 0
    assert "4 images (2 negatives)" in capsys.readouterr().out
    d = Dataset.open(ds)
    assert d.class_names == ["canister"] and d.domain == "real"
    labels = {(r["triage"]["element"], r["triage"]["t"]): r["label"] for r in d.images}
    assert labels == {(pos["element"], 3.0): 1, (pos["element"], 5.0): 1, (neg["element"], 1.0): 0,
                      (neg["element"], 9.0): 0}
    rows = csv_path.read_text().splitlines()
    assert len(rows) == 5 and "file://" in rows[1] and "#t=" in rows[1] and "canister, left" in csv_path.read_text()
    cfg = tmp_path / "ft.yaml"
    cfg.write_text(f"""task: classify
seed: 0
data:
  image_size: [32, 32]
  source_val_fraction: 0.0
  domains:
    - {{path: {ds}, name: reviewed, role: source}}
model: {{arch: smallcnn, width: 8}}
optim: {{steps: 4, batch_per_domain: 4}}
selection: {{policy: last, eval_every: 4}}
checkpoint_every: 4
""")
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "ft_run"), "-q"]) == 0
    meta = json.loads((tmp_path / "ft_run/checkpoints/final.json").read_text())
    assert meta["classes"] == ["background", "canister"]
    (reference / "reviews.json").unlink()


@pytest.mark.parametrize("case", ["unknown_key", "wrong_type", "fps_zero", "missing_run", "other_task",
                                  "empty_selection", "not_a_triage_folder"])
def test_bad_input_is_one_line_and_exit_2(world: dict[str, Any], reference: Path, tmp_path: Path, case: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    cfg = yaml.safe_load(_config(world, reference).read_text())
    needle = {"unknown_key": "analyse[0].Frames.config.rate: unknown key", "wrong_type": "workers",
              "fps_zero": "fps: Input should be greater than 0", "missing_run": "run folder not found",
              "other_task": "run is of task 'reid'", "empty_selection": "no video or image files",
              "not_a_triage_folder": "is not a triage folder"}[case]
    if case == "unknown_key":
        cfg["analyse"][0]["config"]["rate"] = 2
    elif case == "wrong_type":
        cfg["workers"] = "many"
    elif case == "fps_zero":
        cfg["analyse"][0]["config"]["fps"] = 0
    elif case == "missing_run":
        cfg["analyse"][2]["config"]["models"][0]["run"] = str(tmp_path / "no_run")
    elif case == "other_task":
        run = saved_run(tmp_path / "r", "classify", "smallcnn", (16, 16), ["a", "b"])
        meta = json.loads((run / "checkpoints/final.json").read_text())
        (run / "checkpoints/final.json").write_text(json.dumps({**meta, "task": "reid"}))
        cfg["analyse"][2]["config"]["models"][0]["run"] = str(run)
    elif case == "empty_selection":
        (tmp_path / "empty").mkdir()
        cfg["select"]["config"]["paths"] = [str(tmp_path / "empty")]
    else:
        (tmp_path / "mine").mkdir()
        (tmp_path / "mine" / "thesis.tex").write_text("precious")
        cfg["folder"] = str(tmp_path / "mine")
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(cfg))
    before = _snapshot(reference)
    capsys.readouterr()
    assert main(["triage", "run", str(p), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("simreal: error:") and needle in err and "\n" not in err and "Traceback" not in err
    assert _snapshot(reference) == before
    if case == "not_a_triage_folder":
        assert sorted(x.name for x in (tmp_path / "mine").iterdir()) == ["thesis.tex"]


@pytest.mark.slow
def test_ray_executor_gives_the_same_results(world: dict[str, Any], reference: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    folder = tmp_path / "ray"
    cfg = yaml.safe_load(_config(world, folder).read_text())
    cfg["select"]["config"]["paths"] = [str(world["media"] / "pos1.mp4"), str(world["media"] / "photo_obj.jpg")]
    (tmp_path / "ray.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["triage", "run", str(tmp_path / "ray.yaml"), "--executor", "ray", "--workers", "2", "-q"]) == 0
    got, want = _elements(folder), _elements(reference)
    assert set(got) == {"pos1.mp4", "photo_obj.jpg"}
    for name, r in got.items():
        assert [f["t"] for f in r["frames"]] == [f["t"] for f in want[name]["frames"]]
        assert [f["scores"]["clf"]["canister"] for f in r["frames"]] == pytest.approx(
            [f["scores"]["clf"]["canister"] for f in want[name]["frames"]], abs=1e-5)
