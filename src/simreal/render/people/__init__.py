"""Synthetic people: anny bodies, poses, garments, hair, accessories, characters and people scenes.

Stable API of the anny core (``simreal.render.people.body``; other stages import these names):

- ``load_model()`` -> the anny model (float32, CPU), once per process; builds the cache on first use
- ``pose_body(shape, pose=None, expression=None)`` -> :class:`PosedBody` with ``vertices`` (V, 3),
  ``faces`` (F, 3), ``normals``, ``rest_vertices``, ``joints`` (J, 3) + ``joint_names`` +
  ``bone_matrices`` (J, 4, 4), ``keypoints`` (23, 3) + ``keypoint_names`` (17 COCO then 6 foot points;
  ``coco_keypoints``), ``expression`` (all 52 facial actions -> intensity), ``shape``, ``uvs`` +
  ``uv_faces``, ``head_vertices``, ``head_center``, ``height``, ``joint(name)``, ``bone_matrix(name)``
- ``BodyPose(rotations, root)`` and ``pose_from_world(world_rotations, root=None)``
- ``PHENOTYPES`` (shape parameter names, values in [0, 1]), ``anny_age(years)``, ``check_shape``
- ``expression_names()`` (52 ARKit-style names: ``jawOpen``, ``eyeBlinkLeft``, ``mouthSmileLeft``, ...),
  ``check_expression``
- ``bone_names()``, ``topology()`` (faces, bone parents, per-vertex dominant bone, head mask, UVs)
- ``COCO_KEYPOINTS``, ``COCO_SKELETON``, ``measurements(body)`` (height, waist, volume, mass)

Cache (``simreal.render.people.anny_cache``): ``anny_cache_dir()`` (``$SIMREAL_ANNY_CACHE``, else
``$SIMREAL_CACHE_DIR/anny``, else ``~/.cache/simreal/anny``), ``cache_ready()``, ``build_cache()``,
``require_cache(build=True)``. Build it once per machine: ``make anny-cache`` or
``python -m simreal.render.people.anny_cache``.

Body frame: metres, +Z up, feet on z = 0, pelvis above the origin, facing -Y, left side +X.
"""
