"""Near-duplicate removal agrees with ImageHash distances; ranking metrics against hand-computed values."""

from __future__ import annotations

import imagehash
import numpy as np
import pytest
from PIL import Image

from simreal.errors import ConfigError
from simreal.triage.config import DedupConfig
from simreal.triage.dedup import Deduper
from simreal.triage.ranking import check_target, metric, rank


def _img(seed: int, noise: float = 0.0, base: np.ndarray | None = None) -> Image.Image:
    rng = np.random.default_rng(seed)
    a = base if base is not None else rng.uniform(0, 255, (8, 8, 3)).repeat(8, 0).repeat(8, 1)
    a = np.clip(a + rng.normal(0, noise, a.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(a)


def test_duplicates_follow_hamming_distance_of_imagehash() -> None:
    a = _img(1)
    near = _img(2, noise=2.0, base=np.asarray(a, float))
    other = _img(3)
    assert imagehash.phash(a) - imagehash.phash(near) <= 3 < imagehash.phash(a) - imagehash.phash(other)
    d = Deduper(DedupConfig(threshold=3))
    assert [d.add(0, a), d.add(1, near), d.add(2, other), d.add(3, a)] == [True, False, True, True]
    out = d.result()
    assert out["kept"] == [0, 2, 3] and out["dup_of"] == {"1": 0}
    assert out["hashes"][0] == str(imagehash.phash(a))
    # scope "all": the return of the first scene is a duplicate of frame 0, not a new frame
    d = Deduper(DedupConfig(threshold=3, scope="all"))
    assert [d.add(i, im) for i, im in enumerate([a, near, other, a])] == [True, False, True, False]
    assert d.result()["dup_of"] == {"1": 0, "3": 0}
    # threshold 0 keeps everything not bit-identical in hash; dry marks but keeps
    d = Deduper(DedupConfig(threshold=3, dry=True))
    assert all(d.add(i, im) for i, im in enumerate([a, near, other]))
    assert d.result()["kept"] == [0, 1, 2] and d.result()["dup_of"] == {"1": 0}


@pytest.mark.parametrize("method", ["dhash", "ahash", "whash"])
def test_every_hash_method_runs(method: str) -> None:
    d = Deduper(DedupConfig(method=method, threshold=0))  # type: ignore[arg-type]
    assert d.add(0, _img(1)) and not d.add(1, _img(1))


def test_metrics_by_hand() -> None:
    s = np.array([0.1, 0.7, 0.9, 0.4, 0.6])
    w = np.array([1, 1, 3, 1, 2])  # frame 2 stands for 3 sampled frames (2 duplicates), frame 4 for 2
    assert metric(s, w, "count", 0.5) == 1 + 3 + 2
    assert metric(s, w, "max", 0.5) == 0.9
    assert metric(s, w, "topk-mean", 0.5, k=2) == pytest.approx((0.9 + 0.7) / 2)
    assert metric(s, w, "topk-mean", 0.5, k=10) == pytest.approx(s.mean())
    assert metric(s, w, "fraction", 0.5) == pytest.approx(6 / 8)
    assert metric(np.array([]), np.array([]), "max", 0.5) == 0.0
    assert metric(s, w, "count", 0.9) == 3  # at the threshold counts
    with pytest.raises(ConfigError, match="--by"):
        metric(s, w, "median", 0.5)


def _res(eid: str, scores: list[float]) -> dict:
    return {"element": eid, "title": eid, "source": eid, "kind": "video", "frames": [
        {"i": i, "t": float(i), "dups": 0, "scores": {"m": {"obj": v, "background": 1 - v}}}
        for i, v in enumerate(scores)]}


def test_rank_orders_by_each_metric_with_ties_broken() -> None:
    els = [_res("a", [0.6, 0.6, 0.6, 0.1]), _res("b", [0.99, 0.1, 0.1, 0.1]), _res("c", [0.8, 0.7, 0.1, 0.1]),
           _res("d", [0.8, 0.7, 0.1, 0.1])]
    assert [r["element"] for r in rank(els, "m", "obj", "count", 0.5)] == ["a", "c", "d", "b"]
    assert [r["element"] for r in rank(els, "m", "obj", "max", 0.5)] == ["b", "c", "d", "a"]
    assert [r["element"] for r in rank(els, "m", "obj", "topk-mean", 0.5, k=2)] == ["c", "d", "a", "b"]
    top = rank(els, "m", "obj", "fraction", 0.5)[0]
    assert top["element"] == "a" and top["fraction"] == 0.75 and top["best_t"] == 0.0 and top["rank"] == 1


def test_check_target_defaults_and_errors() -> None:
    models = {"clf": {"labels": ["background", "canister"]}, "det": {"labels": ["red"]}}
    assert check_target(models, None, None) == ("clf", "canister")
    assert check_target(models, "det", None) == ("det", "red")
    with pytest.raises(ConfigError, match="--model: 'x'"):
        check_target(models, "x", None)
    with pytest.raises(ConfigError, match="--label: 'red' is not a label of model 'clf'"):
        check_target(models, "clf", "red")


def test_vectorised_metrics_equal_brute_force_per_element() -> None:
    from simreal.triage.ranking import Series, metrics

    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 9, 200)
    lengths[:3] = 0  # elements without frames
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    s = rng.uniform(0, 1, offsets[-1]).round(2)  # rounding makes ties
    s[rng.uniform(size=s.size) < 0.1] = np.nan  # frames a model did not score
    w = rng.integers(1, 4, s.size).astype(float)
    vals = metrics(Series(offsets, np.arange(s.size, dtype=float), s, w), 0.5, 3)
    for e in range(len(lengths)):
        a, b = offsets[e], offsets[e + 1]
        ok = ~np.isnan(s[a:b])
        se, we = s[a:b][ok], w[a:b][ok]
        top = np.sort(se)[::-1][:3]
        assert vals["count"][e] == pytest.approx(we[se >= 0.5].sum())
        assert vals["max"][e] == pytest.approx(se.max() if se.size else 0.0)
        assert vals["topk-mean"][e] == pytest.approx(top.mean() if se.size else 0.0)
        assert vals["fraction"][e] == pytest.approx(we[se >= 0.5].sum() / we.sum() if se.size else 0.0)
        assert vals["best"][e] == (a + int(np.nanargmax(s[a:b])) if se.size else -1)


def test_chain_index_round_trip_and_staleness(tmp_path) -> None:  # noqa: ANN001
    from simreal.triage.results import ChainIndex

    els = [_res("a", [0.6, 0.1]), _res("b", [0.9]), {"element": "c", "kind": "image", "frames": []}]
    idx = ChainIndex.build(els)
    idx.save(tmp_path / "index", stamp=7)
    back = ChainIndex.load(tmp_path / "index", stamp=7)
    assert back is not None and [e["element"] for e in back.elements] == ["a", "b", "c"]
    assert back.offsets.tolist() == [0, 2, 3, 3]
    assert back.series("m", "obj").s.tolist() == pytest.approx([0.6, 0.1, 0.9])
    assert ChainIndex.load(tmp_path / "index", stamp=8) is None  # written for another state of the results
