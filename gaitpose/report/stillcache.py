"""Subject crops kept during the frame loop, so the report's key frames need no second decode.

Why: the heel-strike stills used to decode the video again up to the last chosen strike (on the
Sports2D demo about 0.4 s of CPU, a tenth of the whole job). The frame loop already holds every
decoded frame for a moment; keeping a small square crop around the subject of the first frames
where it was found costs about a millisecond a frame. Memory and time are bounded (``max_frames``
crops of ``side`` x ``side`` RGB: 90 frames, 3 s at 30 fps, 28 MB): the first heel strike of each foot
comes within about a stride of the subject appearing (on the Sports2D demo 18 and 35 frames after);
stills beyond the kept frames are decoded as before.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gaitpose.geometry import crop

__all__ = ["SubjectFrames"]


class SubjectFrames:
    """``keep_frame`` callback for :func:`gaitpose.infer.track.track_video`; a mapping t -> (rgb, matrix).

    ``matrix`` is the 2x3 affine from video pixels to the crop's pixels. The crop is a square of
    ``span`` times the tracked box's longer side around its centre (room for the still's padding).
    """

    def __init__(self, max_frames: int = 90, side: int = 320, span: float = 1.7) -> None:
        self.max_frames, self.side, self.span = int(max_frames), int(side), float(span)
        self._frames: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, t: int, image: Any, box: np.ndarray) -> None:
        if len(self._frames) >= self.max_frames or t in self._frames or not np.isfinite(box).all():
            return
        x, y, w, h = (float(v) for v in box)
        size = self.span * max(w, h)
        if size <= 1:
            return
        centre = np.array([x + w / 2, y + h / 2])
        frame_wh = np.array([image.shape[1], image.shape[0]], float)
        # Inside the frame where it fits (no black bands in the stills), centred on the subject otherwise.
        centre = np.where(size <= frame_wh, np.clip(centre, size / 2, frame_wh - size / 2), centre)
        rgb, matrix = crop(image, centre, np.array([size, size]), (self.side, self.side))
        self._frames[int(t)] = (np.ascontiguousarray(rgb), matrix)

    def get(self, t: int) -> tuple[np.ndarray, np.ndarray] | None:
        return self._frames.get(int(t))

    def __contains__(self, t: object) -> bool:
        return t in self._frames

    def __len__(self) -> int:
        return len(self._frames)
