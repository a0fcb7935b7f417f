"""``simreal faces review``: a local page (FastAPI on 127.0.0.1) showing the target person's chips
grouped by predicted expression. The therapist corrects or confirms a few labels by clicking (they
become a labelled target test set, a dataset in the contract that ``simreal eval`` reads) and
edits the expression -> word mapping of the child's words file.

The server reads only the chips dataset and writes only ``labels.json`` and ``test_set/`` in the
review folder and the words file; chips are served by record id, never by a path from the client.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from simreal.datasets.contract import Dataset, DatasetWriter
from simreal.faces.errors import FacesError
from simreal.faces.words import WordEntry, WordsConfig, check_names, load_words, save_words
from simreal.runtime.io import atomic_write_json

STATIC = Path(__file__).with_name("static")
UNLABELLED = "(no prediction)"


class ReviewState:
    """Chips, predictions, the therapist's labels and the words file of one review folder."""

    def __init__(self, data: str | Path, out: str | Path, words: str | Path | None = None,
                 run: str | Path | None = None, device: str = "auto", classes: list[str] | None = None) -> None:
        self.ds = Dataset.open(data)
        self.out = Path(out)
        self.words_path = Path(words) if words else None
        self.words: WordsConfig | None = load_words(self.words_path)[0] if self.words_path else None
        self.preds: dict[int, tuple[str, float]] = {}
        if run is not None:
            from simreal.faces.classify import ChipClassifier

            clf = ChipClassifier(run, device)
            self.classes = clf.classes
            self.preds = self._predict(clf)
        else:
            self.classes = classes or self.ds.class_names or (list(self.words.words) if self.words else [])
        if not self.classes:
            raise FacesError(f"{data}: no classes known (give --run, or a labelled dataset, or --classes)")
        if self.words is not None:
            check_names(self.words, self.classes, str(self.words_path))
        self.by_id = {int(r["id"]): r for r in self.ds.images}
        self.labels: dict[int, str] = self._read_labels()

    # ------------------------------------------------------------------ data
    def _predict(self, clf: Any) -> dict[int, tuple[str, float]]:
        chips = [self.ds.load_image(r) for r in self.ds.images]
        probs = clf.probs(chips)
        return {int(r["id"]): (self.classes[int(p.argmax())], float(p.max()))
                for r, p in zip(self.ds.images, probs, strict=True)}

    def _read_labels(self) -> dict[int, str]:
        p = self.out / "labels.json"
        if not p.is_file():
            return {}
        try:
            raw = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise FacesError(f"{p}: not valid JSON ({exc})") from None
        return {int(k): v for k, v in raw.get("labels", {}).items() if int(k) in self.by_id and v in self.classes}

    def state(self) -> dict[str, Any]:
        chips = []
        for rid, rec in self.by_id.items():
            pred, score = self.preds.get(rid, (None, None))
            if pred is None and rec.get("label"):
                names = {c["id"]: c["name"] for c in self.ds.categories}
                pred = names.get(rec["label"])
            chips.append({"id": rid, "pred": pred or UNLABELLED, "score": score, "label": self.labels.get(rid),
                          "t": rec.get("timestamp"), "track": rec.get("track_id")})
        w = self.words
        words = {k: v.word for k, v in w.words.items()} if w else {}
        return {"dataset": self.ds.name, "child": w.child if w else None, "classes": self.classes,
                "gestures": list(w.gestures) if w else [], "words": words,
                "chips": chips, "n_labelled": len(self.labels), "test_set": str(self.out / "test_set")}

    def chip_path(self, rid: int) -> Path:
        if rid not in self.by_id:
            raise KeyError(rid)
        return self.ds.image_path(self.by_id[rid])

    # ---------------------------------------------------------------- writes
    def set_label(self, rid: int, label: str | None) -> int:
        """Set (or clear, with None) the therapist's label of chip ``rid``; saves and exports."""
        if rid not in self.by_id:
            raise FacesError(f"chip {rid}: no such chip")
        if label is not None and label not in self.classes:
            raise FacesError(f"label {label!r}: not a class ({', '.join(self.classes)})")
        if label is None:
            self.labels.pop(rid, None)
        else:
            self.labels[rid] = label
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.out / "labels.json", {"dataset": str(self.ds.root), "classes": self.classes,
                                                     "labels": {str(k): v for k, v in sorted(self.labels.items())}})
        self.export_test_set()
        return len(self.labels)

    def export_test_set(self) -> Path:
        """The labelled chips as a dataset (``test_set/``), classes in the model's order."""
        root = self.out / "test_set"
        cats = [{"id": i + 1, "name": c} for i, c in enumerate(self.classes)]
        cid = {c["name"]: c["id"] for c in cats}
        writer = DatasetWriter(root, f"{self.ds.name}-test", "real", cats,
                               {"stage": "faces review", "parent": str(self.ds.root)})
        images = []
        for rid, lab in sorted(self.labels.items()):
            rec = self.by_id[rid]
            rel = f"images/{Path(rec['file_name']).name}"
            if not (root / rel).is_file():
                shutil.copyfile(self.ds.image_path(rec), root / rel)
            images.append({**{k: v for k, v in rec.items() if k != "label"}, "id": len(images) + 1,
                           "file_name": rel, "label": cid[lab], "review_of": rid})
        writer.finalize(images, [])
        return root

    def set_words(self, mapping: dict[str, str]) -> dict[str, str]:
        """Replace the expression -> word mapping (an empty word removes the expression); saves the file."""
        if self.words is None or self.words_path is None:
            raise FacesError("no words file was given (--words)")
        words: dict[str, WordEntry] = {}
        for name, word in mapping.items():
            word = (word or "").strip()
            if not word:
                continue
            old = self.words.words.get(name)
            words[name] = old.model_copy(update={"word": word}) if old else WordEntry(word=word)
        if not words:
            raise FacesError("words: at least one expression needs a word")
        new = self.words.model_copy(update={"words": words})
        check_names(new, self.classes, str(self.words_path))
        save_words(self.words_path, new)
        self.words = new
        return {k: v.word for k, v in words.items()}


def create_app(state: ReviewState) -> Any:
    """The FastAPI app of the review page."""
    from fastapi import Body, FastAPI, HTTPException
    from fastapi.responses import FileResponse, HTMLResponse

    app = FastAPI(title="simreal faces review", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return (STATIC / "review.html").read_text(encoding="utf-8")

    @app.get("/api/state")
    def get_state() -> dict[str, Any]:
        return state.state()

    @app.get("/chip/{rid}")
    def chip(rid: int) -> FileResponse:
        try:
            return FileResponse(state.chip_path(rid))
        except KeyError:
            raise HTTPException(404, f"no chip {rid}") from None

    @app.post("/api/label")
    def label(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        try:
            n = state.set_label(int(body.get("id", -1)), body.get("label"))
        except (FacesError, ValueError, TypeError) as exc:
            raise HTTPException(400, str(exc)) from None
        return {"ok": True, "n_labelled": n}

    @app.post("/api/words")
    def words(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        mapping = body.get("words")
        if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
            raise HTTPException(400, "expected {'words': {expression: word}}")
        try:
            return {"ok": True, "words": state.set_words(mapping)}
        except FacesError as exc:
            raise HTTPException(400, str(exc)) from None

    return app


def serve(state: ReviewState, port: int = 8765, quiet: bool = False) -> None:
    """Serve the review page on 127.0.0.1 until interrupted."""
    import uvicorn

    uvicorn.run(create_app(state), host="127.0.0.1", port=port, log_level="warning" if quiet else "info")
