"""Re-identification: embedding net with an identity softmax (+ optional batch-hard triplet loss),
retrieval evaluated with CMC and mAP (Market-1501 and CUHK03 single-shot protocols).

Identity data: an image record's ``identity`` (int) and ``camera`` (int, default 0) and optional
``split`` ("train" | "query" | "gallery"); a plain folder with one sub-folder per identity also works
(identity = sub-folder, camera from a ``_c<N>`` in the file name, else 0). Training uses the records of
the labelled domains whose split is "train" or missing; the classifier has one output per (dataset,
identity). Evaluation: records with split "query" against those with "gallery"; without splits every
image is a query against all the others.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from simreal.errors import DatasetError
from simreal.nn.reid import ReidNet, batch_hard_triplet
from simreal.tasks.base import Task, TaskModel

_CAMERA = re.compile(r"_c(\d+)")


def identity_of(dataset: Any, rec: dict[str, Any]) -> int | None:
    """The record's identity: its ``identity`` field, or its sub-folder (class) in a plain image folder."""
    if rec.get("identity") is not None:
        return int(rec["identity"])
    if dataset.info.get("kind") == "folder" and rec.get("label") is not None:
        return int(rec["label"])
    return None


def camera_of(rec: dict[str, Any]) -> int:
    """The record's ``camera`` field, else the first ``_c<N>`` of the file name (Market-1501 style), else 0."""
    if rec.get("camera") is not None:
        return int(rec["camera"])
    m = _CAMERA.search(Path(str(rec.get("file_name", ""))).name)
    return int(m.group(1)) if m else 0


class ReidModel(TaskModel):
    """``encode`` = pooled backbone features (what DANN/ADDA see), ``decode`` = neck + classifier."""

    def __init__(self, net: ReidNet) -> None:
        super().__init__()
        self.net = net
        self.feature_dim = net.feature_dim
        self.network_prefix = "net.backbone."

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.backbone.features(x)

    def decode(self, enc: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.net.head(enc)

    def head_modules(self) -> list[nn.Module]:
        return [self.net.classifier]


def embedding_distance(q: np.ndarray, g: np.ndarray, distance: str = "euclidean", normalize: bool = True) -> np.ndarray:
    """Distance matrix (Q, G): Euclidean (on L2-normalised embeddings when ``normalize``) or 1 - cosine."""
    q, g = np.asarray(q, np.float64), np.asarray(g, np.float64)
    if distance == "cosine" or normalize:
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        g = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
    if distance == "cosine":
        return 1.0 - q @ g.T
    d2 = (q**2).sum(1)[:, None] + (g**2).sum(1)[None] - 2.0 * q @ g.T
    return np.sqrt(np.clip(d2, 0.0, None))


def query_gallery(targets: list[Any]) -> dict[str, np.ndarray | str]:
    """Query and gallery positions, ids and cameras. With ``split`` fields: query vs gallery records;
    without: every image against all (same id + same camera removed, so a query never finds itself; with
    a single camera, only the query itself is removed)."""
    pos = np.array([i for i, t in enumerate(targets) if t is not None], dtype=np.int64)
    pids = np.array([targets[i]["pid"] for i in pos], dtype=np.int64)
    cams = np.array([targets[i]["cam"] for i in pos], dtype=np.int64)
    split = np.array([str(targets[i].get("split")) for i in pos])
    if (split == "query").any():
        q = split == "query"
        g = (split == "gallery") if (split == "gallery").any() else ~q
        return {"q": pos[q], "g": pos[g], "q_pids": pids[q], "g_pids": pids[g], "q_cams": cams[q],
                "g_cams": cams[g], "mode": "query/gallery splits"}
    if len(np.unique(cams)) <= 1:
        cams = np.arange(len(pos))  # one camera: only the query itself is removed from its gallery
    return {"q": pos, "g": pos, "q_pids": pids, "g_pids": pids, "q_cams": cams, "g_cams": cams,
            "mode": "all vs all"}


class ReidTask(Task):
    name = "reid"
    shared_classes = False

    def __init__(self, num_classes: int = 0, class_names: list[str] | None = None, num_ids: int = 0,
                 triplet_weight: float = 0.0, triplet_margin: float = 0.3, label_smoothing: float = 0.1,
                 instances_per_identity: int = 4, distance: str = "euclidean", normalize: bool = True) -> None:
        super().__init__(num_classes, class_names or [])
        self.num_ids = int(num_ids)
        self.triplet_weight, self.margin = float(triplet_weight), float(triplet_margin)
        self.label_smoothing, self.k = float(label_smoothing), int(instances_per_identity)
        self.distance, self.normalize = distance, bool(normalize)
        self._ids: dict[tuple[str, int], int] = {}

    # ------------------------------------------------------------------ identities
    def state(self) -> dict[str, Any]:
        """What a loaded run needs to rebuild the model (stored in checkpoints/final.json)."""
        return {"num_ids": self.num_ids}

    def check_labels(self, dataset: Any, where: str) -> None:
        if not any(identity_of(dataset, r) is not None for r in dataset.images):
            raise DatasetError(f"{where}: no identities for task 'reid' (need an integer 'identity' field on "
                               "image records, or one sub-folder per identity)")

    def register_domains(self, datasets: list[Any]) -> None:
        """One classifier output per (dataset, identity) of the training records of ``datasets``."""
        for ds in datasets:
            for rec in ds.images:
                pid = identity_of(ds, rec)
                if pid is not None and rec.get("split") in (None, "train"):
                    self._ids.setdefault((str(ds.root), pid), len(self._ids))
            if not any(k[0] == str(ds.root) for k in self._ids):
                raise DatasetError(f"{ds.root}: no training identities (records with split 'train' or no split)")
        self.num_ids = len(self._ids)

    def validation_split(self, ds: Any, fraction: float, seed: int) -> tuple[list[int], list[int]] | None:
        """Hold out whole identities (at least two, each with two or more images) for source validation,
        so validation queries are unseen people whose gallery holds a match, as in a real re-id test."""
        by_id: dict[int, list[int]] = {}
        for i, rec in enumerate(ds.images):
            pid = identity_of(ds, rec)
            if pid is not None and rec.get("split") in (None, "train"):
                by_id.setdefault(pid, []).append(i)
        eligible = sorted(pid for pid, idx in by_id.items() if len(idx) >= 2)
        n_val = max(2, int(round(fraction * len(by_id))))
        if len(eligible) < n_val + 2:  # keep at least two identities to train on
            return None
        rng = np.random.default_rng(seed)
        held = {eligible[j] for j in rng.permutation(len(eligible))[:n_val]}
        val = sorted(i for pid in held for i in by_id[pid])
        keep = sorted(set(range(len(ds))) - set(val))
        return keep, val

    def target(self, dataset: Any, rec: dict[str, Any], size: tuple[int, int]) -> Any:
        pid = identity_of(dataset, rec)
        if pid is None:
            return None
        split = rec.get("split")
        label = self._ids.get((str(dataset.root), pid), -1) if split in (None, "train") else -1
        return {"pid": pid, "cam": camera_of(rec), "split": split, "label": label}

    def wrap_source(self, src: Any) -> Any:
        """P x K identity batches for labelled training sources when the triplet loss is on."""
        if self.triplet_weight <= 0 or not src.labelled or not hasattr(src, "dataset"):
            return src
        from simreal.datasets.pk_sampler import PKSource

        ds = src.dataset
        groups = []
        for i in src.indices:
            rec = ds.record(i)
            pid = identity_of(ds, rec)
            ok = pid is not None and rec.get("split") in (None, "train")
            groups.append(self._ids.get((str(ds.root), pid), -1) if ok else -1)
        return PKSource(src, groups, self.k) if max(groups, default=-1) >= 0 else src

    # ------------------------------------------------------------------ model and loss
    def build_model(self, arch: str, in_channels: int, image_size: tuple[int, int], **kw: Any) -> ReidModel:
        emb = kw.get("embedding_dim")
        from simreal.nn.registry import create_model

        backbone = create_model(arch, "classifier", num_classes=1, in_channels=in_channels,
                                width=int(kw.get("width", 32)),
                                base_width=int(kw.get("base_width", 64)))
        return ReidModel(ReidNet(backbone, self.num_ids, int(emb) if emb else None))

    def loss(self, out: dict[str, torch.Tensor], targets: list[Any], labelled: torch.Tensor) -> torch.Tensor:
        lab = torch.tensor([t["label"] if t is not None else -1 for t in targets], dtype=torch.long)
        keep = labelled & (lab >= 0)
        if not bool(keep.any()):
            return out["logits"].sum() * 0.0
        y = lab[keep].to(out["logits"].device, non_blocking=True)
        loss = F.cross_entropy(out["logits"][keep], y, label_smoothing=self.label_smoothing)
        if self.triplet_weight > 0:
            loss = loss + self.triplet_weight * batch_hard_triplet(out["feat"][keep], y, self.margin)
        return loss

    @torch.no_grad()
    def predict(self, model: TaskModel, x: torch.Tensor) -> dict[str, Any]:
        out, feat = model(x)
        return {"emb": out["emb"].float().cpu().numpy(), "feat": feat.float().cpu().numpy()}

    # ------------------------------------------------------------------ retrieval scores
    def retrieval(self, preds: list[dict[str, Any]], targets: list[Any], protocol: str = "market1501",
                  **kw: Any) -> dict[str, Any]:
        from simreal.metrics.reid import evaluate_reid

        emb = np.concatenate([p["emb"] for p in preds])
        qg = query_gallery(targets)
        dist = embedding_distance(emb[qg["q"]], emb[qg["g"]], self.distance, self.normalize)
        res = evaluate_reid(dist, qg["q_pids"], qg["g_pids"], qg["q_cams"], qg["g_cams"], protocol=protocol, **kw)
        res.update(num_query=len(qg["q"]), num_gallery=len(qg["g"]), mode=qg["mode"])
        return res

    def quality(self, preds: list[dict[str, Any]], targets: list[Any]) -> float:
        """(rank-1 + mAP) / 2 on the validation data (Market-1501 rules). Validation data where no query
        has a match raise the retrieval error (a selection score of 0 would hide a broken split)."""
        r = self.retrieval(preds, targets)
        return 0.5 * (float(r["rank1"]) + float(r["mAP"]))

    def sample_losses(self, preds: list[dict[str, Any]], targets: list[Any]) -> np.ndarray:
        """Per-image batch-hard triplet hinge over the whole validation set (identities, normalised
        embeddings); images without a positive or a negative get the mean of the others."""
        emb = torch.from_numpy(np.concatenate([p["emb"] for p in preds])).double()
        if self.normalize or self.distance == "cosine":
            emb = F.normalize(emb, dim=1)
        pids = torch.tensor([t["pid"] if t is not None else -1 - i for i, t in enumerate(targets)])
        per = batch_hard_triplet(emb, pids, self.margin, reduction="none").numpy()
        ok = ~np.isnan(per)
        return np.where(ok, per, per[ok].mean() if ok.any() else 0.0)

    def evaluate(self, preds: list[dict[str, Any]], targets: list[Any], out: Path) -> dict[str, Any]:
        """CMC rank 1/5/10/20 and mAP, Market-1501 and CUHK03 single-shot (10 seeded repeats); cmc.png."""
        from simreal.metrics.plots import save_curves

        m = self.retrieval(preds, targets, "market1501")
        c = self.retrieval(preds, targets, "cuhk03", repeats=10, seed=0)
        res: dict[str, Any] = {k: m[k] for k in ("rank1", "rank5", "rank10", "rank20", "mAP") if k in m}
        res.update({f"cuhk03_{k}": c[k] for k in ("rank1", "rank5", "rank10", "rank20", "mAP") if k in c})
        res.update(num_query=m["num_query"], num_gallery=m["num_gallery"], num_valid_queries=m["num_valid_queries"],
                   query_gallery=m["mode"], distance=self.distance, cmc_market1501=m["cmc"], cmc_cuhk03=c["cmc"])
        n = int(min(len(m["cmc"]), max(m["num_gallery"], 1)))
        ranks = np.arange(1, n + 1)
        save_curves(out / "cmc.png", [(ranks, m["cmc"][:n], f"Market-1501 (rank-1 {m['rank1']:.3f})"),
                                      (ranks, c["cmc"][:n], f"CUHK03 single-shot (rank-1 {c['rank1']:.3f})")],
                    "rank", "matching rate", "CMC")
        return res
