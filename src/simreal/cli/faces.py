"""``simreal faces``: extract face chips from video, run live (expression -> spoken word), review."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from simreal.cli.common import device_option, quiet_option, set_option

app = typer.Typer(name="faces", help="Faces: video -> aligned chips -> expressions -> spoken words.",
                  no_args_is_help=True)


def _extract_config(config: Path | None, fps: float | None, upsample: int | None, detect_scale: float | None,
                    chip_size: int | None, keep: str | None, classes: str | None, sets: list[str]) -> object:
    from simreal.config import load_config, parse_overrides
    from simreal.faces.extract import ExtractConfig

    over: dict[str, object] = parse_overrides(sets)
    for key, value in (("fps", fps), ("detector.upsample", upsample), ("detector.detect_scale", detect_scale),
                       ("chip_size", chip_size), ("keep", keep)):
        if value is not None:
            over[key] = value
    if classes:
        over["classes"] = [c.strip() for c in classes.split(",") if c.strip()]
    return load_config(ExtractConfig, config, over)


@app.command("extract")
def extract_cmd(
    inputs: list[str] = typer.Argument(..., help=(
        "Videos, images, image folders, a folder with one sub-folder per expression, a CSV (path,label[,start,end]) "
        "or camera:N.")),
    out: Path = typer.Option(..., "--out", "-o", help="Dataset folder to write (rerun to resume)."),
    config: Path | None = typer.Option(None, "--config", "-c", help="Extraction config YAML (see docs/faces.md)."),
    fps: float | None = typer.Option(None, "--fps", help="Frames sampled per second of video."),
    upsample: int | None = typer.Option(None, "--upsample", help="HOG detector upsampling steps (small faces)."),
    detect_scale: float | None = typer.Option(None, "--detect-scale", help="Detect on the frame scaled by this."),
    chip_size: int | None = typer.Option(None, "--chip-size", help="Chip side: 112 or 150."),
    keep: str | None = typer.Option(None, "--keep", help="all | largest (per frame) | longest (track per source)."),
    classes: str | None = typer.Option(None, "--classes", help="Comma-separated class names, in order."),
    name: str | None = typer.Option(None, "--name", help="Dataset name (default: the folder name)."),
    set_: list[str] = set_option("detector.threshold=0.2"),
    quiet: bool = quiet_option(),
) -> None:
    """Frames -> dlib faces -> 5-point aligned chips, as a dataset with one record per chip."""
    from simreal.faces.extract import extract_faces

    cfg = _extract_config(config, fps, upsample, detect_scale, chip_size, keep, classes, set_)
    s = extract_faces(inputs, out, cfg, name=name, quiet=quiet,  # type: ignore[arg-type]
                      command=" ".join(["simreal", *sys.argv[1:]]))
    typer.echo(f"{s.out}: {s.chips} chips from {s.frames} frames of {s.sources} sources "
               f"({s.frames_without_face} frames without a face, {s.tracks} tracks, "
               f"{s.resumed_sources} sources already done) in {s.seconds:.1f}s")
    if s.empty_sources:
        typer.echo(f"simreal: no face found in {len(s.empty_sources)} source(s): {', '.join(s.empty_sources)}",
                   err=True)


@app.command("run")
def run_cmd(
    run: Path = typer.Option(..., "--run", help="A finished classify run trained on face chips."),
    words: Path = typer.Option(..., "--words", help="The child's words file (expression -> word, voice, timing)."),
    video: Path | None = typer.Option(None, "--video", help="A video file to run on."),
    camera: int | None = typer.Option(None, "--camera", help="A camera index (/dev/videoN)."),
    out: Path = typer.Option(Path("faces_session"), "--out", "-o", help="Session folder: timeline, frames, WAVs."),
    audio: str = typer.Option("auto", "--audio", help="auto | speaker | files (write WAV files + timeline)."),
    fps: float | None = typer.Option(None, "--fps", help="Frames processed per second (default: every frame)."),
    seconds: float | None = typer.Option(None, "--seconds", help="Stop a camera session after this long."),
    realtime: bool = typer.Option(False, "--realtime", help="Pace a video at its own speed, as if live."),
    upsample: int = typer.Option(0, "--upsample", help="HOG detector upsampling steps."),
    detect_scale: float = typer.Option(0.5, "--detect-scale", help="Detect on the frame scaled by this."),
    device: str = device_option(),
    quiet: bool = quiet_option(),
) -> None:
    """Recognise held expressions and gestures and speak their words (or write WAVs + a timeline)."""
    from simreal.config import validate
    from simreal.faces.classify import ChipClassifier
    from simreal.faces.detect import DetectorConfig
    from simreal.faces.errors import FacesError
    from simreal.faces.live import Session, run_session
    from simreal.faces.media import camera_frames, video_frames
    from simreal.faces.speech import Speaker
    from simreal.faces.words import check_names, load_words

    if (video is None) == (camera is None):
        raise FacesError("give exactly one of --video FILE or --camera N")
    det = validate(DetectorConfig, {"upsample": upsample, "detect_scale": detect_scale}, "options")
    wcfg, wdir = load_words(words)
    clf = ChipClassifier(run, device)
    check_names(wcfg, clf.classes, str(words))  # before anything is written
    frames = video_frames(video, fps) if video is not None else camera_frames(int(camera), fps, seconds)  # type: ignore[arg-type]
    # the first frame is read before anything is written, so a camera that does not open fails cleanly
    first = next(iter(frames), None)
    if first is None:
        raise FacesError(f"{video if video is not None else f'camera {camera}'}: no frames")
    speaker = Speaker(wcfg, wdir, out, audio)  # checks espeak-ng / voice files before writing anything
    session = Session(clf, wcfg, speaker, det, str(words))
    speaker.prepare()

    def _all():  # type: ignore[no-untyped-def]
        yield first
        yield from frames

    try:
        s = run_session(session, _all(), out, realtime=realtime, quiet=quiet)
    finally:
        speaker.close()
    for w in s.words:
        typer.echo(f"{w['time_s']:8.2f}s  {w['expression']:>14} -> {w['word']}")
    typer.echo(f"{s.frames} frames ({s.frames_with_face} with a face) at {s.fps:.1f} frames/s; latency frame in -> "
               f"word decided: median {s.latency(50):.1f} ms, p95 {s.latency(95):.1f} ms; {len(s.words)} words "
               f"({s.audio}); timeline: {out / 'timeline.csv'}")


@app.command("review")
def review_cmd(
    data: Path = typer.Option(..., "--data", help="Chips dataset of the target person (from faces extract)."),
    run: Path | None = typer.Option(None, "--run", help="Run whose predictions group the chips."),
    words: Path | None = typer.Option(None, "--words", help="The child's words file, to edit on the page."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Review folder (default DATA/review)."),
    port: int = typer.Option(8765, "--port", help="Port on 127.0.0.1."),
    device: str = device_option(),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Less server logging."),
) -> None:
    """A local page to confirm/correct expression labels (-> a labelled test set) and edit the words."""
    from simreal.faces.review import ReviewState, serve

    state = ReviewState(data, out or data / "review", words, run, device)
    typer.echo(f"review page: http://127.0.0.1:{port}/  (labels -> {state.out / 'test_set'}; Ctrl-C to stop)")
    serve(state, port, quiet)


@app.command("render")
def render_cmd(
    config: Path = typer.Option(..., "--config", "-c", help="Face render config YAML (configs/faces/render_*.yaml)."),
    out: Path = typer.Option(..., "--out", "-o", help="Chips dataset folder to write (rerun to resume)."),
    count: int | None = typer.Option(None, "--count", "-n", help="Frames to render (overrides the config)."),
    seed: int | None = typer.Option(None, "--seed", help="Root seed (overrides the config)."),
    workers: int = typer.Option(1, "--workers", "-w", help="Parallel workers (one core each)."),
    keep_frames: bool = typer.Option(False, "--keep-frames", help="Also write the full frames (frames/)."),
    set_: list[str] = set_option("spp=32"),
    quiet: bool = quiet_option(),
) -> None:
    """Render labelled faces with anny (identities, expressions, pose, light, camera) -> detector -> chips."""
    from simreal.config import load_config, parse_overrides
    from simreal.faces.render import FaceRenderConfig, render_faces

    over: dict[str, object] = parse_overrides(set_)
    for key, value in (("count", count), ("seed", seed)):
        if value is not None:
            over[key] = value
    if keep_frames:
        over["keep_frames"] = True
    cfg = load_config(FaceRenderConfig, config, over)
    s = render_faces(cfg, out, workers, quiet, " ".join(["simreal", *sys.argv[1:]]))
    typer.echo(f"{s.out}: {s.chips} chips from {s.frames} rendered frames ({s.missed} without a detected face, "
               f"{s.failed} failed, {s.resumed} already done) in {s.seconds:.1f}s")
    if s.failed:
        typer.echo(f"simreal: {s.failed} frames failed (first: {s.first_error}); run the same command again",
                   err=True)
        raise typer.Exit(1)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="faces")
