"""What the COCO readers people use take from an annotations.json, and a check that simreal's
fields clash with none of it.

Sources (read for this list, not copied):
- FiftyOne 1.22, fiftyone/utils/coco.py: ``COCOObject.from_anno_dict`` keeps every extra annotation key
  (merging a key ``attributes`` into the rest) and ``to_detection`` passes them to
  ``fiftyone.core.labels.Detection(label=, bounding_box=, mask=, confidence=, **attributes)`` together
  with ``coco_id``, ``supercategory`` and ``iscrowd``. A key that names a Detection field or property
  raises (``instance_id`` is a property: "reserved keyword for Detection objects"). Image records
  are read for id, file_name, width, height (and license, coco_url).
- Detectron2, detectron2/data/datasets/coco.py ``load_coco_json``: per annotation it copies
  iscrowd, bbox, keypoints, category_id (+ ``extra_annotation_keys``), rewrites segmentation, sets
  bbox_mode and asserts ``anno.get("ignore", 0) == 0``; per image it builds file_name (joined with
  ``image_root``), height, width, image_id, annotations. Other dataset-dict keys its loaders and
  mappers use: sem_seg_file_name, pan_seg_file_name, segments_info, image, sem_seg.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

COCO_ANNOTATION_KEYS = {"id", "image_id", "category_id", "bbox", "area", "segmentation", "iscrowd",
                        "keypoints", "num_keypoints", "score"}
COCO_IMAGE_KEYS = {"id", "file_name", "width", "height", "license", "coco_url", "flickr_url", "date_captured"}

FIFTYONE_DETECTION_RESERVED = {
    # fields and properties of fiftyone.core.labels.Detection (and its _HasID/_HasInstance bases)
    "id", "_id", "_cls", "tags", "label", "bounding_box", "mask", "mask_path", "confidence", "index",
    "attributes", "instance", "instance_id", "has_mask", "field_names",
    # 3-D detections
    "location", "dimensions", "rotation",
    # set by the COCO importer itself
    "coco_id", "supercategory", "iscrowd",
    # methods an attribute would shadow
    "copy", "merge", "clean", "validate", "to_dict", "to_json", "from_dict", "get_mask", "to_polyline",
    "to_segmentation", "to_shapely", "get_field", "set_field", "has_field", "clear_field",
}
FIFTYONE_SAMPLE_RESERVED = {"id", "_id", "filepath", "tags", "metadata", "media_type", "created_at",
                            "last_modified_at"}
DETECTRON2_ANNOTATION_KEYS = {"iscrowd", "bbox", "keypoints", "category_id", "segmentation", "bbox_mode",
                              "ignore"}
DETECTRON2_RECORD_KEYS = {"file_name", "height", "width", "image_id", "annotations", "sem_seg_file_name",
                          "pan_seg_file_name", "segments_info", "image", "sem_seg"}


def fiftyone_reserved() -> set[str]:
    """The hand-made list, plus every attribute of the installed FiftyOne's Detection when there is one."""
    names = set(FIFTYONE_DETECTION_RESERVED)
    try:
        import fiftyone.core.labels as fol
    except Exception:  # not installed, or its database layer unavailable: the list above stands
        return names
    return names | set(dir(fol.Detection)) | set(fol.Detection._fields)


def assert_clashes_with_no_tool(root: Path, doc: dict[str, Any]) -> None:
    """Every annotation key is standard COCO or names nothing FiftyOne or Detectron2 reserve; image
    files sit at ``root/images/<file_name>`` (FiftyOne ``data_path``, Detectron2 ``image_root``)."""
    reserved = fiftyone_reserved() | DETECTRON2_ANNOTATION_KEYS
    for ann in doc["annotations"]:
        extra = set(ann) - COCO_ANNOTATION_KEYS
        assert extra == {"simreal"}, extra
        assert not extra & reserved
        assert ann.get("ignore", 0) == 0  # Detectron2's load_coco_json asserts this
    for rec in doc["images"]:
        extra = set(rec) - COCO_IMAGE_KEYS
        assert not extra & (DETECTRON2_RECORD_KEYS | FIFTYONE_SAMPLE_RESERVED), extra
        assert not rec["file_name"].startswith("images/")
        assert (root / "images" / rec["file_name"]).is_file()
