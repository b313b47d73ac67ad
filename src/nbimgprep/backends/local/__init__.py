"""LocalBackend: every operation offline, with Pillow and classical computer vision.

Why it exists: a user with no FAL_KEY (or behind a firewall, or in CI) still gets real results
through the same cache and the same faces. Nothing is downloaded at run time: upscaling is
Pillow's Lanczos resampler, background removal is OpenCV's GrabCut, and face detail finds faces
with the Haar cascades that ship inside ``opencv-python-headless`` 4.x. The results are honest
but plainly below the fal.ai models (BiRefNet, SeedVR, CodeFormer).

The pixel work runs in a worker thread so the event loop (and a notebook's widgets) stay
responsive; cancelling the awaiting task stops the work at its next checkpoint.
"""

from .backend import LocalBackend

__all__ = ["LocalBackend"]

# ``backend``   LocalBackend: the Backend protocol, the worker thread, the operation table
# ``work``      what every operation's work shares: its signature, checkpoints, OpenCV
# ``upscale``   Lanczos plus a mild unsharp mask, a band of rows at a time
# ``cutout``    background removal: GrabCut on a small copy, guided-filter edges
# ``faces``     face detail: Haar cascades, a gentle lift of each face
