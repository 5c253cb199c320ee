"""Subject crops kept during the frame loop, so the report's key frames need no second decode.

Why: the heel-strike stills used to decode the video again up to the last chosen strike (on the
Sports2D demo about 0.4 s of CPU, a tenth of the whole job). The frame loop already holds every
decoded frame for a moment. Keeping a finished 320x320 RGB crop of each frame cost 1-1.4 ms a frame
on the thread that runs the models (three plane warps and a colour conversion), enough to take the
student's loop below 85 % of decode-only speed on short clips, where nearly every frame is kept.
So the loop now keeps only a strided copy of the subject's square straight from the decoder's
planes (no filtering, no conversion: about a tenth of that cost, measured by
``benchmarks.stills_cost``), at most the still's side; the still itself is warped and
converted only for the few frames the report shows. Memory and time are bounded (``max_frames``
frames, 3 s at 30 fps, about 14 MB): the first heel strike of each foot comes within about a stride
of the subject appearing (on the Sports2D demo 18 and 35 frames after); stills beyond the kept
frames are decoded as before.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gaitpose.geometry import get_affine_transform, warp_image
from gaitpose.io.planar import YuvImage

__all__ = ["SubjectFrames"]


class SubjectFrames:
    """``keep_frame`` callback for :func:`gaitpose.infer.track.track_video`; a mapping t -> (rgb, matrix).

    ``matrix`` is the 2x3 affine from video pixels to the crop's pixels. The crop is a square of
    ``span`` times the tracked box's longer side around its centre (room for the still's padding),
    ``side`` x ``side`` pixels, built when asked for (:meth:`get`).
    """

    def __init__(self, max_frames: int = 90, side: int = 320, span: float = 1.7) -> None:
        self.max_frames, self.side, self.span = int(max_frames), int(side), float(span)
        self._frames: dict[int, tuple[Any, np.ndarray, np.ndarray]] = {}

    def __call__(self, t: int, image: Any, box: np.ndarray) -> None:
        if len(self._frames) >= self.max_frames or t in self._frames or not np.isfinite(box).all():
            return
        x, y, w, h = (float(v) for v in box)
        size = self.span * max(w, h)
        if size <= 1:
            return
        centre = np.array([x + w / 2, y + h / 2])
        fw, fh = int(image.shape[1]), int(image.shape[0])
        frame_wh = np.array([fw, fh], float)
        # Inside the frame where it fits (no black bands in the stills), centred on the subject otherwise.
        centre = np.where(size <= frame_wh, np.clip(centre, size / 2, frame_wh - size / 2), centre)
        matrix = get_affine_transform(centre, np.array([size, size]), 0.0, (self.side, self.side))
        step = max(1, math.ceil(size / self.side))
        x0 = min(max(0, math.floor(centre[0] - size / 2)), fw - 1) & ~1  # even: chroma rows/columns align
        y0 = min(max(0, math.floor(centre[1] - size / 2)), fh - 1) & ~1
        x1 = max(x0 + 1, min(fw, math.ceil(centre[0] + size / 2)))
        y1 = max(y0 + 1, min(fh, math.ceil(centre[1] + size / 2)))
        if isinstance(image, np.ndarray):
            sub: Any = np.ascontiguousarray(image[y0:y1:step, x0:x1:step])
        else:  # planar frame: every step-th sample of each plane is the same 4:2:0 picture, smaller
            ys = image.y[y0:y1:step, x0:x1:step]
            ch = ((ys.shape[0] + 1) // 2, (ys.shape[1] + 1) // 2)
            uv = []
            for plane in (image.u, image.v):
                c = plane[y0 // 2::step, x0 // 2::step][: ch[0], : ch[1]]
                if c.shape != ch:  # the frame's last chroma row/column: repeat it
                    c = np.pad(c, ((0, ch[0] - c.shape[0]), (0, ch[1] - c.shape[1])), mode="edge")
                uv.append(np.ascontiguousarray(c))
            sub = YuvImage(np.ascontiguousarray(ys), uv[0], uv[1], matrix=image.matrix)
        # video pixel = (x0, y0) + step * sub pixel
        to_video = np.array([[step, 0.0, x0], [0.0, step, y0], [0.0, 0.0, 1.0]])
        self._frames[int(t)] = (sub, matrix, matrix @ to_video)

    def get(self, t: int) -> tuple[np.ndarray, np.ndarray] | None:
        kept = self._frames.get(int(t))
        if kept is None:
            return None
        sub, matrix, from_sub = kept
        return np.ascontiguousarray(warp_image(sub, from_sub, (self.side, self.side))), matrix

    def __contains__(self, t: object) -> bool:
        return t in self._frames

    def __len__(self) -> int:
        return len(self._frames)
