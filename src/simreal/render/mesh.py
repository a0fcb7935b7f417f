"""Triangle meshes as plain arrays: the one geometry type every asset produces and every backend
consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Mesh:
    """A triangle mesh in object space.

    ``vertices`` (N, 3) float32; ``faces`` (M, 3) int32 (counter-clockwise seen from outside);
    ``normals`` (N, 3) float32 per-vertex or None (flat shading); ``uvs`` (N, 2) float32 in [0, 1]
    or None.
    """

    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray | None = None
    uvs: np.ndarray | None = None
    name: str = "mesh"
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.vertices = np.ascontiguousarray(self.vertices, dtype=np.float32)
        self.faces = np.ascontiguousarray(self.faces, dtype=np.int32)
        if self.normals is not None:
            self.normals = np.ascontiguousarray(self.normals, dtype=np.float32)
        if self.uvs is not None:
            self.uvs = np.ascontiguousarray(self.uvs, dtype=np.float32)

    @property
    def bounds(self) -> np.ndarray:
        """(2, 3) array: min and max corner."""
        return np.stack([self.vertices.min(axis=0), self.vertices.max(axis=0)])

    def transformed(self, matrix: np.ndarray) -> Mesh:
        """A copy with a 4x4 affine transform applied to vertices and normals."""
        m = np.asarray(matrix, dtype=np.float64)
        v = self.vertices @ m[:3, :3].T + m[:3, 3]
        n = None
        if self.normals is not None:
            nm = np.linalg.inv(m[:3, :3]).T
            n = self.normals @ nm.T
            n /= np.linalg.norm(n, axis=1, keepdims=True).clip(1e-12)
        return Mesh(v, self.faces.copy(), n, None if self.uvs is None else self.uvs.copy(), self.name,
                    dict(self.meta))
