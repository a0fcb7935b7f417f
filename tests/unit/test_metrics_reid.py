import numpy as np
from sklearn.metrics import average_precision_score

from simreal.metrics.reid import evaluate_reid


def test_market_cmc_and_map_on_toy_ranking() -> None:
    # query 0: id 1 cam 0. gallery by distance: [g0 id1 cam0 (same cam: removed), g1 id2, g2 id1 cam1, g3 id1 cam2]
    # query 1: id 3 cam 0 -> only match is same camera -> skipped
    g_pids = np.array([1, 2, 1, 1, 3])
    g_cams = np.array([0, 1, 1, 2, 0])
    dist = np.array([[0.1, 0.2, 0.3, 0.4, 0.9], [0.5, 0.4, 0.3, 0.2, 0.1]])
    r = evaluate_reid(dist, np.array([1, 3]), g_pids, np.array([0, 0]), g_cams, max_rank=4)
    assert r["num_valid_queries"] == 1
    # kept ranking for q0: [id2, id1, id1, id3] -> first hit at rank 2
    assert list(r["cmc"]) == [0.0, 1.0, 1.0, 1.0]
    assert np.isclose(r["mAP"], (1 / 2 + 2 / 3) / 2)
    assert np.isclose(r["mAP"], average_precision_score([0, 1, 1, 0], -np.array([0.2, 0.3, 0.4, 0.9])))


def test_cuhk03_single_shot_repeats() -> None:
    # gallery: id1 at ranks 2 and 3 (cams 1, 2), id2 at rank 1; single shot keeps one id1 -> always rank 2
    dist = np.array([[0.2, 0.3, 0.4]])
    r = evaluate_reid(dist, np.array([1]), np.array([2, 1, 1]), np.array([0]), np.array([1, 1, 2]),
                      max_rank=3, protocol="cuhk03", repeats=5)
    assert list(r["cmc"]) == [0.0, 1.0, 1.0]
